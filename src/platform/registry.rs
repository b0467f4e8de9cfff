//! Reading `HKEY_LOCAL_MACHINE` values (Windows only): E-Post keeps its mail work folder and
//! the log switches its GUI does not show in the registry (see `epost::enable`).

use std::ffi::OsString;
use std::os::windows::ffi::{OsStrExt, OsStringExt};

use windows_sys::Win32::Foundation::{ERROR_FILE_NOT_FOUND, ERROR_PATH_NOT_FOUND, ERROR_SUCCESS};
use windows_sys::Win32::System::Registry::{
    HKEY_LOCAL_MACHINE, RRF_RT_REG_DWORD, RRF_RT_REG_SZ, RRF_SUBKEY_WOW6432KEY,
    RRF_SUBKEY_WOW6464KEY, RegGetValueW,
};

use super::RegValue;

fn wide(s: &str) -> Vec<u16> {
    std::ffi::OsStr::new(s)
        .encode_wide()
        .chain(std::iter::once(0))
        .collect()
}

/// `RegGetValueW` into `buf`; the error code, or the number of bytes written.
fn get(subkey: &str, value: &str, flags: u32, buf: &mut [u8]) -> Result<usize, u32> {
    let (k, v) = (wide(subkey), wide(value));
    let mut len = u32::try_from(buf.len()).unwrap_or(u32::MAX);
    // SAFETY: NUL-terminated wide strings that outlive the call; `buf` is writable for `len`
    // bytes, and the call writes at most that many and updates `len`.
    let rc = unsafe {
        RegGetValueW(
            HKEY_LOCAL_MACHINE,
            k.as_ptr(),
            v.as_ptr(),
            flags,
            std::ptr::null_mut(),
            buf.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if rc == ERROR_SUCCESS {
        Ok((len as usize).min(buf.len()))
    } else {
        Err(rc)
    }
}

fn outcome<T>(r: Result<T, u32>) -> RegValue<T> {
    match r {
        Ok(v) => RegValue::Set(v),
        Err(ERROR_FILE_NOT_FOUND) | Err(ERROR_PATH_NOT_FOUND) => RegValue::Missing,
        Err(rc) => RegValue::Unreadable(std::io::Error::from_raw_os_error(rc as i32).to_string()),
    }
}

/// A `REG_DWORD` under `HKLM\<subkey>`, in the 64-bit view and then the 32-bit one (a 32-bit
/// E-Post writes `SOFTWARE\...` under `WOW6432Node`; `SYSTEM\...` is the same in both).
pub fn dword(subkey: &str, value: &str) -> RegValue<u32> {
    let mut last = RegValue::Missing;
    for view in [RRF_SUBKEY_WOW6464KEY, RRF_SUBKEY_WOW6432KEY] {
        let mut buf = [0u8; 4];
        let r =
            get(subkey, value, RRF_RT_REG_DWORD | view, &mut buf).map(|_| u32::from_le_bytes(buf));
        match outcome(r) {
            RegValue::Set(v) => return RegValue::Set(v),
            RegValue::Missing => {}
            other => last = other,
        }
    }
    last
}

/// A `REG_SZ` under `HKLM\<subkey>`, both views as [`dword`]. `RRF_RT_REG_SZ` also takes a
/// `REG_EXPAND_SZ`, expanded (asking for `RRF_RT_REG_EXPAND_SZ` without `RRF_NOEXPAND` would
/// fail with ERROR_INVALID_PARAMETER).
pub fn string(subkey: &str, value: &str) -> RegValue<String> {
    let mut last = RegValue::Missing;
    for view in [RRF_SUBKEY_WOW6464KEY, RRF_SUBKEY_WOW6432KEY] {
        // a folder path: 64 KiB is far beyond MAX_PATH and any value E-Post writes
        let mut buf = vec![0u8; 64 << 10];
        let r = get(subkey, value, RRF_RT_REG_SZ | view, &mut buf).map(|n| {
            let units: Vec<u16> = buf[..n]
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .take_while(|&u| u != 0)
                .collect();
            OsString::from_wide(&units).to_string_lossy().into_owned()
        });
        match outcome(r) {
            RegValue::Set(v) => return RegValue::Set(v),
            RegValue::Missing => {}
            other => last = other,
        }
    }
    last
}
