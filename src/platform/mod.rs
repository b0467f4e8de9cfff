//! Everything that differs between Windows and the rest, in one place.

#[cfg(windows)]
mod registry;
#[cfg(windows)]
pub mod service;
#[cfg(windows)]
mod windows;

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// Opens a log file for reading without ever getting in E-Post's way: on Windows with
/// read, write and delete sharing, so the writer can append, and the file can be deleted or
/// renamed, while we hold it.
pub fn open_shared(path: &Path) -> io::Result<File> {
    #[cfg(windows)]
    {
        use std::os::windows::fs::OpenOptionsExt;
        const FILE_SHARE_READ: u32 = 0x1;
        const FILE_SHARE_WRITE: u32 = 0x2;
        const FILE_SHARE_DELETE: u32 = 0x4;
        std::fs::OpenOptions::new()
            .read(true)
            .share_mode(FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE)
            .open(path)
    }
    #[cfg(not(windows))]
    {
        File::open(path)
    }
}

/// Where checkpoints and dead letters live when the config does not say:
/// `%ProgramData%\epost-shipper` on Windows, `state/` beside the config file elsewhere.
pub fn default_state_dir(config_dir: &Path) -> PathBuf {
    #[cfg(windows)]
    {
        let _ = config_dir;
        windows::program_data().join("epost-shipper")
    }
    #[cfg(not(windows))]
    {
        config_dir.join("state")
    }
}

/// `C:\mail`, `C:/mail` and `\\server\share` are absolute in a config file, whatever the
/// platform reading it (a central Linux collector may hold a Windows-style path by mistake;
/// this keeps the error message honest).
pub fn is_absolute_windows(p: &str) -> bool {
    let b = p.as_bytes();
    (b.len() >= 3 && b[0].is_ascii_alphabetic() && b[1] == b':' && (b[2] == b'\\' || b[2] == b'/'))
        || p.starts_with(r"\\")
}

/// A value read from the Windows registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegValue<T> {
    Set(T),
    /// The key or the value does not exist.
    Missing,
    /// It exists but could not be read (access denied, wrong type): the OS's message.
    Unreadable(String),
}

/// A `REG_DWORD` of `HKEY_LOCAL_MACHINE\<subkey>`; `None` where there is no registry (not
/// Windows).
pub fn registry_dword(subkey: &str, value: &str) -> Option<RegValue<u32>> {
    #[cfg(windows)]
    {
        Some(registry::dword(subkey, value))
    }
    #[cfg(not(windows))]
    {
        let _ = (subkey, value);
        None
    }
}

/// A `REG_SZ` of `HKEY_LOCAL_MACHINE\<subkey>`; `None` where there is no registry.
pub fn registry_string(subkey: &str, value: &str) -> Option<RegValue<String>> {
    #[cfg(windows)]
    {
        Some(registry::string(subkey, value))
    }
    #[cfg(not(windows))]
    {
        let _ = (subkey, value);
        None
    }
}

/// Resolves when the process is asked to stop: Ctrl-C everywhere, SIGTERM on Unix, and
/// Ctrl-Break / console close / system shutdown on Windows. (The Windows service stop goes
/// through the service control handler, which sets the pipeline's stop flag.) A signal that
/// cannot be listened for is logged and never fires: it must not stop the pipeline at once.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                None
            }
        };
        tokio::select! {
            _ = ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
        }
    }
    #[cfg(windows)]
    {
        use tokio::signal::windows::{ctrl_break, ctrl_close, ctrl_shutdown};
        async fn wait(l: Option<impl std::future::Future<Output = Option<()>>>) {
            match l {
                Some(f) => {
                    f.await;
                }
                None => std::future::pending::<()>().await,
            }
        }
        let mut brk = ctrl_break().ok();
        let mut close = ctrl_close().ok();
        let mut shutdown = ctrl_shutdown().ok();
        tokio::select! {
            _ = ctrl_c() => {}
            _ = wait(brk.as_mut().map(|s| s.recv())) => {}
            _ = wait(close.as_mut().map(|s| s.recv())) => {}
            _ = wait(shutdown.as_mut().map(|s| s.recv())) => {}
        }
    }
    #[cfg(not(any(unix, windows)))]
    {
        ctrl_c().await;
    }
}

async fn ctrl_c() {
    if let Err(e) = tokio::signal::ctrl_c().await {
        tracing::warn!(error = %e, "cannot listen for Ctrl-C");
        std::future::pending::<()>().await;
    }
}

/// Renames `from` to `to` (replacing it) so that the rename survives a power cut once this
/// returns: on Unix the folder entry is fsynced after the rename; on Windows `MoveFileExW` with
/// `MOVEFILE_WRITE_THROUGH` does not return until the move is on disk (plain `rename` does not
/// ask for that).
pub fn rename_durable(from: &Path, to: &Path) -> io::Result<()> {
    #[cfg(windows)]
    {
        windows::move_write_through(from, to)
    }
    #[cfg(not(windows))]
    {
        std::fs::rename(from, to)?;
        sync_dir(to.parent().unwrap_or(Path::new(".")))
    }
}

/// Makes the folder's entries durable (Unix: fsync of the folder). Windows has no such call:
/// [`rename_durable`] covers it there.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}
