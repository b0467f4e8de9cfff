//! The open-handle budget: at most `max_open_files` log files are held open; a file that
//! needs a handle when all are in use takes one from a file with nothing left to read, or
//! waits its turn.

use std::io::{Seek, SeekFrom};
use std::time::Instant;

use super::reader::ReaderKey;
use super::{Tailer, fingerprint};

impl Tailer {
    pub(super) fn open_handle(&mut self, key: ReaderKey) -> bool {
        let Some(path) = self.files.get(&key).map(|t| t.log.path.clone()) else {
            return false;
        };
        if self.open >= self.cfg.max_open_files && !self.close_one_idle(key) {
            let t = self.files.get_mut(&key).expect("present");
            if t.waiting_since.is_none() {
                t.waiting_since = Some(Instant::now());
                tracing::debug!(path = %path.display(), max_open_files = self.cfg.max_open_files, "every handle is in use; the file waits its turn");
            }
            return false;
        }
        let mut file = match crate::platform::open_shared(&path) {
            Ok(f) => f,
            Err(e) => {
                self.failed(key, "open", &e);
                return false;
            }
        };
        self.succeeded(key);
        let t = self.files.get_mut(&key).expect("present");
        t.waiting_since = None;
        if t.fp.len > 0 {
            match t.fp.matches(&mut file) {
                Ok(true) => {}
                _ => {
                    drop(file);
                    if let Some(repeated) =
                        crate::warn_limit::check("tail.changed", &path.to_string_lossy())
                    {
                        tracing::warn!(path = %path.display(), repeated, "file changed under the same name; reading the new one from the start");
                    }
                    self.restart(key);
                    return false;
                }
            }
        }
        if t.pos > 0 && !t.generation_known {
            // resumed past the first line: the ids still need the file's generation
            match fingerprint::generation(&mut file) {
                Ok(Some(g)) => {
                    t.parser.set_generation(g);
                    t.source.generation = g;
                    t.generation_known = true;
                }
                Ok(None) => {}
                Err(e) => {
                    if let Some(repeated) =
                        crate::warn_limit::check("tail.first_line", &path.to_string_lossy())
                    {
                        tracing::warn!(path = %path.display(), error = %e, repeated, "cannot read the first line of log file; will retry");
                    }
                    return false;
                }
            }
        }
        if let Err(e) = file.seek(SeekFrom::Start(t.pos)) {
            if let Some(repeated) = crate::warn_limit::check("tail.seek", &path.to_string_lossy()) {
                tracing::warn!(path = %path.display(), error = %e, repeated, "cannot seek in log file; will retry");
            }
            return false;
        }
        match same_file::Handle::from_file(file) {
            Ok(h) => {
                t.handle = Some(h);
                self.open += 1;
                true
            }
            Err(e) => {
                if let Some(repeated) =
                    crate::warn_limit::check("tail.identify", &path.to_string_lossy())
                {
                    tracing::warn!(path = %path.display(), error = %e, repeated, "cannot identify log file; will retry");
                }
                false
            }
        }
    }

    /// Makes room for `for_path`: closes the handle of a file with nothing left to read, an
    /// old day's first, else the newest file of a folder idle longest (it is stat'ed on every
    /// scan and reopened when it grows). Without the second choice, more folders than
    /// `max_open_files` (central collection) held every handle on their newest files for good
    /// and no other file could ever be read.
    pub(super) fn close_one_idle(&mut self, for_key: ReaderKey) -> bool {
        let victim = self
            .files
            .iter()
            .filter(|(k, t)| {
                t.handle.is_some()
                    && **k != for_key
                    && t.carry.is_empty()
                    && t.parser.pending_offset().is_none()
                    && t.pos >= t.size
            })
            .min_by_key(|(_, t)| (t.newest, t.last_growth))
            .map(|(k, _)| *k);
        match victim {
            Some(k) => {
                let t = self.files.get_mut(&k).expect("present");
                t.handle = None;
                self.open -= 1;
                true
            }
            None => false,
        }
    }
}
