//! The `file` sink: NDJSON appended to a file, fsynced before acknowledging. The file is
//! (re)opened on demand, so a folder that is not there yet (a share not mounted) is retried
//! like any other failure instead of stopping the shipper.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::{Delivered, Probe, SinkError};
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

    pub async fn deliver(
        &self,
        idx: usize,
        batch: &[Arc<Segment>],
    ) -> Result<Delivered, SinkError> {
        let file = self.file.clone();
        let batch: Vec<Arc<Segment>> = batch.to_vec();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = file.lock().unwrap();
            if guard.is_none() {
                *guard = Some(open(&path)?);
            }
            let f = guard.as_mut().expect("opened above");
            let res = batch
                .iter()
                .try_for_each(|s| f.write_all(&s.payloads[idx].data))
                .and_then(|()| f.sync_data());
            if res.is_err() {
                // start over with a fresh handle next time
                *guard = None;
            }
            res.map_err(|e| format!("writing `{}`: {e}", path.display()))
        })
        .await
        .map_err(|e| SinkError::Transient(e.to_string()))?
        .map_err(SinkError::Transient)?;
        Ok(Delivered::default())
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
