//! Small Windows API helpers (Windows only).

use std::ffi::OsString;
use std::os::windows::ffi::OsStringExt;
use std::path::PathBuf;

/// The machine-wide application data folder (`C:\ProgramData`), asked of the shell
/// (`FOLDERID_ProgramData`) rather than read from `%ProgramData%`, so that a service, whose
/// environment comes from elsewhere, and an elevated console agree; the environment variable
/// and then `C:\ProgramData` are the fallbacks.
pub fn program_data() -> PathBuf {
    known_program_data()
        .or_else(|| std::env::var_os("ProgramData").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(r"C:\ProgramData"))
}

fn known_program_data() -> Option<PathBuf> {
    use windows_sys::Win32::System::Com::CoTaskMemFree;
    use windows_sys::Win32::UI::Shell::{FOLDERID_ProgramData, SHGetKnownFolderPath};
    let mut raw: *mut u16 = std::ptr::null_mut();
    // SAFETY: a valid GUID pointer and out pointer; on success `raw` is a NUL-terminated wide
    // string that we own and free with CoTaskMemFree (also on failure, as documented).
    unsafe {
        let hr = SHGetKnownFolderPath(&FOLDERID_ProgramData, 0, std::ptr::null_mut(), &mut raw);
        let path = if hr >= 0 && !raw.is_null() {
            let len = (0..).take_while(|&i| *raw.add(i) != 0).count();
            let wide = std::slice::from_raw_parts(raw, len);
            Some(PathBuf::from(OsString::from_wide(wide)))
        } else {
            None
        };
        CoTaskMemFree(raw as *const _);
        path.filter(|p| !p.as_os_str().is_empty())
    }
}

/// `MoveFileExW(from, to, MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH)`.
pub fn move_write_through(from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
    use std::os::windows::ffi::OsStrExt;
    use windows_sys::Win32::Storage::FileSystem::{
        MOVEFILE_REPLACE_EXISTING, MOVEFILE_WRITE_THROUGH, MoveFileExW,
    };
    let wide = |p: &std::path::Path| -> Vec<u16> {
        p.as_os_str()
            .encode_wide()
            .chain(std::iter::once(0))
            .collect()
    };
    let (f, t) = (wide(from), wide(to));
    // SAFETY: both are NUL-terminated wide strings that outlive the call.
    let ok = unsafe {
        MoveFileExW(
            f.as_ptr(),
            t.as_ptr(),
            MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH,
        )
    };
    if ok == 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
