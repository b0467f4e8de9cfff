use std::fmt;

use super::Source;

/// How many bytes of a file's first line name its generation: E-Post's first line starts with
/// a timestamp or a message id, so this tells two files of one name apart, and a line this
/// long is complete (hence the same) however far the file has been written.
pub const GENERATION_BYTES: usize = 256;

/// A file's generation: XXH3-64 of the first [`GENERATION_BYTES`] bytes of its first line
/// (without its line end). Only the file's content goes in, so the same file read twice, or
/// through a drive letter and a UNC share, has the same generation, while a file deleted and
/// re-created under the same name (E-Post does that when a day's log is cleared) has another.
pub fn generation_of(first_line: &[u8]) -> u64 {
    let mut end = first_line.len();
    while end > 0 && first_line[end - 1] == b'\r' {
        end -= 1;
    }
    let line = first_line.get(..end.min(GENERATION_BYTES)).unwrap_or(&[]);
    xxhash_rust::xxh3::xxh3_64(line)
}

/// `event.id`: a 128-bit XXH3 hash of host, kind, file name, the file's generation and the
/// record's byte offset. XXH3 is specified byte for byte, so every machine and every version
/// of the shipper computes the same id, which is what lets Elasticsearch drop a replayed
/// record.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct EventId(pub u128);

impl EventId {
    pub fn new(source: &Source, offset: u64) -> EventId {
        let mut buf = [0u8; 256];
        let parts = [
            source.host.as_bytes(),
            source.kind.name().as_bytes(),
            source.file_name.as_bytes(),
        ];
        let need: usize = parts.iter().map(|p| p.len() + 1).sum::<usize>() + 16;
        let mut heap;
        let bytes: &mut [u8] = if need <= buf.len() {
            &mut buf[..need]
        } else {
            heap = vec![0u8; need];
            &mut heap
        };
        let mut i = 0;
        for p in parts {
            bytes[i..i + p.len()].copy_from_slice(p);
            i += p.len();
            bytes[i] = 0;
            i += 1;
        }
        bytes[i..i + 8].copy_from_slice(&source.generation.to_le_bytes());
        bytes[i + 8..i + 16].copy_from_slice(&offset.to_le_bytes());
        EventId(xxhash_rust::xxh3::xxh3_128(bytes))
    }

    /// Lowercase hex, 32 characters.
    pub fn to_hex(self) -> HexId {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 32];
        for (i, b) in self.0.to_be_bytes().iter().enumerate() {
            out[2 * i] = HEX[usize::from(b >> 4)];
            out[2 * i + 1] = HEX[usize::from(b & 15)];
        }
        HexId(out)
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.to_hex().as_str())
    }
}

/// A hex id on the stack.
#[derive(Clone, Copy)]
pub struct HexId([u8; 32]);

impl HexId {
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("hex is ASCII")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kind::Kind;

    #[test]
    fn stable_and_distinct() {
        let a = Source::new("MAILSV01", Kind::Inlog, "/x/inlog/MAILSV01/171130.log");
        let b = Source::new(
            "MAILSV01",
            Kind::Inlog,
            r"\\srv\mail\inlog\MAILSV01\171130.log",
        );
        assert_eq!(EventId::new(&a, 0), EventId::new(&b, 0));
        assert_ne!(EventId::new(&a, 0), EventId::new(&a, 1));
        let c = Source::new("MAILSV02", Kind::Inlog, "/x/inlog/MAILSV02/171130.log");
        assert_ne!(EventId::new(&a, 0), EventId::new(&c, 0));
        // Pinned: an id must never change between versions, or replays would duplicate.
        // (Changed once, deliberately, when the generation went in: see docs/records.md.)
        let mut g = a.clone();
        g.generation = generation_of(b"2017/11/30 10:00:00 first line\r");
        assert_eq!(EventId::new(&g, 0).to_hex().as_str(), PINNED_GEN_0);
        assert_eq!(EventId::new(&c, 4096).to_hex().as_str(), PINNED_C_4096);
        assert_eq!(EventId::new(&a, 0).to_hex().as_str().len(), 32);
    }

    const PINNED_GEN_0: &str = "9abad266200dbafe6a32f28eefb49926";
    const PINNED_C_4096: &str = "7e804571145362265aceffaf53982908";

    #[test]
    fn a_recreated_file_gets_other_ids_the_same_file_the_same() {
        let mut old = Source::new("MX1", Kind::Inlog, "/m/inlog/MX1/171130.log");
        let mut new = old.clone();
        old.generation = generation_of(b"2017/11/30 00:00:01 B0000000001 first");
        new.generation = generation_of(b"2017/11/30 09:12:44 B0000000777 other");
        assert_ne!(EventId::new(&old, 0), EventId::new(&new, 0));
        assert_ne!(EventId::new(&old, 120), EventId::new(&new, 120));
        // the same first line (CR or not, and whatever follows past the cut) is the same file
        let long = [b'x'; 300];
        let mut longer = long.to_vec();
        longer.extend_from_slice(b"yyyy");
        assert_eq!(generation_of(&long), generation_of(&longer));
        assert_eq!(generation_of(b"abc\r"), generation_of(b"abc"));
        assert_ne!(generation_of(b"abc"), generation_of(b"abd"));
    }
}
