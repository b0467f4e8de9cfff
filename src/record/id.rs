use std::fmt;

use super::Source;

/// `event.id`: a 128-bit XXH3 hash of host, kind, file name and byte offset. XXH3 is specified
/// byte for byte, so every machine and every version of the shipper computes the same id, which
/// is what lets Elasticsearch drop a replayed record.
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
        let need: usize = parts.iter().map(|p| p.len() + 1).sum::<usize>() + 8;
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
        bytes[i..i + 8].copy_from_slice(&offset.to_le_bytes());
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
        assert_eq!(
            EventId::new(&a, 0).to_hex().as_str(),
            "038417139098cb44ad6b5026e35f0628"
        );
        assert_eq!(
            EventId::new(&c, 4096).to_hex().as_str(),
            "a6fc2cc0f87ada78af3e9d03cdc682b0"
        );
        assert_eq!(EventId::new(&a, 0).to_hex().as_str().len(), 32);
    }
}
