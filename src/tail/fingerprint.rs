//! A file's identity beyond its name: a hash of its first bytes. A file replaced under the
//! same name (a restore, a copy) has different first bytes and is read again from the start.

use std::io::{self, Read, Seek, SeekFrom};

/// How many leading bytes identify a file. E-Post lines start with a timestamp or a message
/// id, so a few hundred bytes tell days and restores apart.
pub const LEN: u32 = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint {
    pub hash: u64,
    pub len: u32,
}

impl Fingerprint {
    pub fn hex(&self) -> String {
        format!("{:016x}", self.hash)
    }

    pub fn parse(hex: &str, len: u32) -> Option<Fingerprint> {
        Some(Fingerprint {
            hash: u64::from_str_radix(hex, 16).ok()?,
            len,
        })
    }

    /// Hashes the first `min(LEN, size)` bytes of `f`, leaving the position unchanged.
    pub fn of(f: &mut std::fs::File) -> io::Result<Fingerprint> {
        Self::of_len(f, LEN)
    }

    /// Hashes the first `len` bytes (fewer if the file is shorter).
    pub fn of_len(f: &mut std::fs::File, len: u32) -> io::Result<Fingerprint> {
        let pos = f.stream_position()?;
        f.seek(SeekFrom::Start(0))?;
        let mut buf = vec![0u8; len as usize];
        let mut got = 0;
        while got < buf.len() {
            let n = f.read(&mut buf[got..])?;
            if n == 0 {
                break;
            }
            got += n;
        }
        f.seek(SeekFrom::Start(pos))?;
        Ok(Fingerprint {
            hash: xxhash_rust::xxh3::xxh3_64(&buf[..got]),
            len: got as u32,
        })
    }

    /// Whether `f` still starts with the bytes this fingerprint was taken of.
    pub fn matches(&self, f: &mut std::fs::File) -> io::Result<bool> {
        let now = Self::of_len(f, self.len)?;
        Ok(now.len == self.len && now.hash == self.hash)
    }
}
