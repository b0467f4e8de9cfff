//! Discover: which files under a mail work folder are logs, of which kind and host.
//!
//! E-Post writes `<workdir>/<kind>/<COMPUTERNAME>/YYMMDD.log`, or without the computer level
//! when clustering is off, and quarantines pairs in `<workdir>/viruslog/Bxxxx.RCP|.MSG`.

pub mod scan;

use std::io;
use std::path::{Path, PathBuf};

use crate::kind::Kind;
use crate::time::{Date, date_from_file_name};

/// A log file found on disk.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LogFile {
    pub kind: Kind,
    /// The `<COMPUTERNAME>` folder, when there is one.
    pub host: Option<String>,
    pub path: PathBuf,
}

impl LogFile {
    pub fn file_name(&self) -> &str {
        self.path.file_name().and_then(|n| n.to_str()).unwrap_or("")
    }

    /// The date in the file name (`YYMMDD.log`), if it has one.
    pub fn date(&self) -> Option<Date> {
        date_from_file_name(self.file_name()).map(|(d, _)| d)
    }
}

fn dir_kind(p: Option<&Path>) -> Option<Kind> {
    let name = p?.file_name()?.to_str()?;
    name.parse().ok()
}

/// Whether a file name is one E-Post writes for line logs (`*.log`, and `*.log.gz` as
/// compressed by the retention job).
pub fn is_log_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.ends_with(".log") || lower.ends_with(".log.gz")
}

fn has_ext(name: &str, ext: &str) -> bool {
    name.len() > ext.len() && name[name.len() - ext.len()..].eq_ignore_ascii_case(ext)
}

/// The kind and host of a path, from its folders: `<kind>/<HOST>/file` or `<kind>/file`.
pub fn classify(path: &Path) -> Option<LogFile> {
    let name = path.file_name()?.to_str()?;
    let parent = path.parent();
    let grandparent = parent.and_then(Path::parent);
    let (kind, host) = if let Some(k) = dir_kind(parent) {
        (k, None)
    } else if let Some(k) = dir_kind(grandparent) {
        let host = parent?.file_name()?.to_str()?.to_string();
        (k, Some(host))
    } else {
        return None;
    };
    let wanted = if kind == Kind::Viruslog {
        has_ext(name, ".rcp")
    } else {
        is_log_name(name)
    };
    wanted.then(|| LogFile {
        kind,
        host,
        path: path.to_path_buf(),
    })
}

/// Every log file below `root`, which may be a mail work folder, a kind's folder or a host's
/// folder. Sorted by kind, host and name, so that days come in order.
pub fn walk(root: &Path) -> io::Result<Vec<LogFile>> {
    let mut out = Vec::new();
    walk_into(root, 0, &mut out)?;
    out.sort();
    Ok(out)
}

fn walk_into(dir: &Path, depth: usize, out: &mut Vec<LogFile>) -> io::Result<()> {
    // workdir/kind/host/file is three levels; a little slack for a folder above the workdir.
    if depth > 4 {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let ft = entry.file_type()?;
        let path = entry.path();
        if ft.is_dir() {
            walk_into(&path, depth + 1, out)?;
        } else if let Some(f) = classify(&path) {
            out.push(f);
        }
    }
    Ok(())
}

/// The `.MSG` file beside a `.RCP` file, whatever the case of its extension.
pub fn message_of(rcp: &Path) -> Option<PathBuf> {
    let stem = rcp.file_stem()?.to_str()?;
    for ext in ["MSG", "msg", "Msg"] {
        let p = rcp.with_file_name(format!("{stem}.{ext}"));
        if p.is_file() {
            return Some(p);
        }
    }
    None
}

/// The host name to use when the path has no `<COMPUTERNAME>` folder: this machine's name.
pub fn local_host_name() -> String {
    std::env::var("COMPUTERNAME")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| gethostname::gethostname().to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_paths() {
        let f = classify(Path::new("/mail/inlog/MAILSV01/171130.log")).unwrap();
        assert_eq!(f.kind, Kind::Inlog);
        assert_eq!(f.host.as_deref(), Some("MAILSV01"));
        assert_eq!(f.date(), Date::new(2017, 11, 30));
        let f = classify(Path::new("/mail/senderlog/171130_09.log")).unwrap();
        assert_eq!(f.kind, Kind::Senderlog);
        assert_eq!(f.host, None);
        let f = classify(Path::new("/mail/viruslog/B0000097594.RCP")).unwrap();
        assert_eq!(f.kind, Kind::Viruslog);
        assert!(classify(Path::new("/mail/viruslog/B0000097594.MSG")).is_none());
        assert!(classify(Path::new("/mail/inlog/MAILSV01/README.txt")).is_none());
        assert!(classify(Path::new("/mail/other/MAILSV01/171130.log")).is_none());
        let f = classify(Path::new("/mail/faillog/H/171130.log.gz")).unwrap();
        assert_eq!(f.kind, Kind::Faillog);
    }
}
