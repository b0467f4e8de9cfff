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

    /// From a checkpoint. A length over [`LEN`] cannot have been written by us (a damaged
    /// file): refused, rather than allocating what it says when the file is compared.
    pub fn parse(hex: &str, len: u32) -> Option<Fingerprint> {
        if len > LEN {
            return None;
        }
        Some(Fingerprint {
            hash: u64::from_str_radix(hex, 16).ok()?,
            len,
        })
    }

    /// Hashes the first `min(LEN, size)` bytes of `f`, leaving the position unchanged.
    pub fn of(f: &mut std::fs::File) -> io::Result<Fingerprint> {
        Self::of_len(f, LEN)
    }

    /// Hashes the first `len` bytes (fewer if the file is shorter; never more than [`LEN`]).
    pub fn of_len(f: &mut std::fs::File, len: u32) -> io::Result<Fingerprint> {
        let pos = f.stream_position()?;
        f.seek(SeekFrom::Start(0))?;
        let mut buf = vec![0u8; len.min(LEN) as usize];
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
            len: u32::try_from(got).unwrap_or(LEN),
        })
    }

    /// Whether `f` still starts with the bytes this fingerprint was taken of.
    pub fn matches(&self, f: &mut std::fs::File) -> io::Result<bool> {
        if self.len == 0 {
            // nothing was taken (a file checkpointed empty): every file starts like that
            return Ok(true);
        }
        let now = Self::of_len(f, self.len)?;
        Ok(now.len == self.len && now.hash == self.hash)
    }
}

/// The generation of the file behind `f` ([`crate::record::generation_of`] its first line),
/// leaving the position unchanged; `None` while the file is empty.
pub fn generation(f: &mut std::fs::File) -> io::Result<Option<u64>> {
    // a first line longer than this is cut past GENERATION_BYTES anyway
    const READ: usize = 4096;
    let pos = f.stream_position()?;
    f.seek(SeekFrom::Start(0))?;
    let mut buf = [0u8; READ];
    let mut got = 0;
    while got < READ {
        let n = f.read(&mut buf[got..])?;
        if n == 0 {
            break;
        }
        got += n;
        if memchr::memchr(b'\n', &buf[..got]).is_some() {
            break;
        }
    }
    f.seek(SeekFrom::Start(pos))?;
    if got == 0 {
        return Ok(None);
    }
    let line = &buf[..got];
    let line = memchr::memchr(b'\n', line).map_or(line, |n| &line[..n]);
    Ok(Some(crate::record::generation_of(line)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn generation_from_the_file_equals_the_parsers() {
        let mut f = tempfile::tempfile().unwrap();
        assert_eq!(generation(&mut f).unwrap(), None);
        f.write_all(b"2017/11/30 10:00:00 first\r\nsecond\r\n")
            .unwrap();
        f.seek(SeekFrom::Start(7)).unwrap();
        assert_eq!(
            generation(&mut f).unwrap(),
            Some(crate::record::generation_of(b"2017/11/30 10:00:00 first\r"))
        );
        assert_eq!(f.stream_position().unwrap(), 7, "position kept");
    }

    #[test]
    fn a_damaged_fingerprint_length_is_refused() {
        assert!(Fingerprint::parse("00ff", u32::MAX).is_none());
        assert!(Fingerprint::parse("00ff", LEN).is_some());
    }
}
