//! Everything that differs between Windows and the rest, in one place.

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
        let base = std::env::var_os("ProgramData")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(r"C:\ProgramData"));
        base.join("epost-shipper")
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

/// Resolves when the process is asked to stop: Ctrl-C everywhere, SIGTERM on Unix, and
/// Ctrl-Break / console close on Windows. (The Windows service stop goes through the service
/// control handler, which triggers the same shutdown.)
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(windows)]
    {
        use tokio::signal::windows::{ctrl_break, ctrl_close};
        let mut brk = ctrl_break().ok();
        let mut close = ctrl_close().ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match brk.as_mut() { Some(b) => { b.recv().await; } None => std::future::pending::<()>().await } } => {}
            _ = async { match close.as_mut() { Some(c) => { c.recv().await; } None => std::future::pending::<()>().await } } => {}
        }
    }
    #[cfg(not(any(unix, windows)))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Makes a rename durable: on Unix the folder entry must be fsynced too. Windows has no
/// equivalent (and `MoveFileEx` with write-through is what `rename` uses).
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
