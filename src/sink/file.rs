//! The `file` sink: NDJSON appended to a file, fsynced before acknowledging. The file is
//! (re)opened on demand, so a folder that is not there yet (a share not mounted) is retried
//! like any other failure instead of stopping the shipper.
//!
//! A batch's append is all-or-nothing: on an error (a full disk) the file is cut back to its
//! length before the batch, so the retry neither leaves a torn line nor writes the batch's
//! first segments twice.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::{Probe, SinkError};
use crate::batch::Segment;

pub struct FileSink {
    file: Arc<Mutex<Option<File>>>,
    path: PathBuf,
}

impl FileSink {
    pub fn new(path: &Path) -> FileSink {
        FileSink {
            file: Arc::new(Mutex::new(None)),
            path: path.to_path_buf(),
        }
    }

    pub async fn probe(&self) -> Result<Probe, SinkError> {
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || open(&path).map(|_| ()))
            .await
            .map_err(|e| SinkError::Transient(e.to_string()))?
            .map_err(SinkError::Transient)?;
        Ok(Probe {
            server: format!("file {}", self.path.display()),
        })
    }

    pub async fn deliver(&self, idx: usize, batch: &[Arc<Segment>]) -> Result<(), SinkError> {
        let file = self.file.clone();
        let batch: Vec<Arc<Segment>> = batch.to_vec();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = file.lock().unwrap_or_else(|p| p.into_inner());
            let mut f = match guard.take() {
                Some(f) => f,
                None => open(&path)?,
            };
            let parts = batch.iter().map(|s| &s.payloads[idx].data[..]);
            append_all_or_nothing(&mut f, parts)
                .map_err(|e| format!("writing `{}`: {e}", path.display()))?;
            *guard = Some(f);
            Ok(())
        })
        .await
        .map_err(|e| SinkError::Transient(e.to_string()))?
        .map_err(SinkError::Transient)
    }
}

/// What an all-or-nothing append needs of a file: a `File`, or in unit tests a file on a
/// disk that fills (`FillingDisk`).
pub(crate) trait AppendFile: Write {
    fn length(&self) -> std::io::Result<u64>;
    fn cut(&mut self, len: u64) -> std::io::Result<()>;
    fn sync(&mut self) -> std::io::Result<()>;
}

impl AppendFile for File {
    fn length(&self) -> std::io::Result<u64> {
        Ok(self.metadata()?.len())
    }
    fn cut(&mut self, len: u64) -> std::io::Result<()> {
        self.set_len(len)?;
        self.sync_data()
    }
    fn sync(&mut self) -> std::io::Result<()> {
        self.sync_data()
    }
}

/// Writes every part and fsyncs; on an error, cuts the file back to its length before and
/// returns the error (the caller drops the handle, so the next try starts with a fresh one).
/// If even the cut fails, a torn tail stays: the best a failing disk allows.
pub(crate) fn append_all_or_nothing<'p>(
    f: &mut impl AppendFile,
    mut parts: impl Iterator<Item = &'p [u8]>,
) -> std::io::Result<()> {
    let len = f.length()?;
    let res = parts
        .try_for_each(|p| f.write_all(p))
        .and_then(|()| f.sync());
    if res.is_err() {
        let _ = f.cut(len);
    }
    res
}

/// A file on a disk with `left` bytes free: writes what fits, then fails as a full disk does.
#[cfg(test)]
pub(crate) struct FillingDisk<'a> {
    pub file: &'a mut File,
    pub left: usize,
}

#[cfg(test)]
impl Write for FillingDisk<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                "no space left on device (test)",
            ));
        }
        let n = self.file.write(&buf[..buf.len().min(self.left)])?;
        self.left -= n;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
impl AppendFile for FillingDisk<'_> {
    fn length(&self) -> std::io::Result<u64> {
        self.file.length()
    }
    fn cut(&mut self, len: u64) -> std::io::Result<()> {
        self.file.cut(len)
    }
    fn sync(&mut self) -> std::io::Result<()> {
        self.file.sync()
    }
}

fn open(path: &Path) -> Result<File, String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create `{}`: {e}", dir.display()))?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("cannot open `{}`: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A batch that does not fit leaves the file as it was; the retry writes it once.
    /// (Seen failing with the cut removed: the file kept a torn half line.)
    #[test]
    fn appends_are_all_or_nothing() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("out.ndjson");
        let mut f = open(&path).unwrap();
        let lines: Vec<String> = (0..300).map(|i| format!("{{\"n\":{i}}}\n")).collect();
        let parts = || lines.iter().map(|l| l.as_bytes());
        append_all_or_nothing(&mut f, parts().take(100)).unwrap();
        for left in [0, 1, 500, 1500] {
            let mut disk = FillingDisk { file: &mut f, left };
            assert!(append_all_or_nothing(&mut disk, parts().skip(100)).is_err());
            let text = std::fs::read_to_string(&path).unwrap();
            assert_eq!(text.lines().count(), 100, "left {left}");
            assert!(text.ends_with('\n'));
        }
        append_all_or_nothing(&mut f, parts().skip(100)).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, lines.concat());
    }
}
