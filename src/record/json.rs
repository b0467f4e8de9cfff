//! A small JSON writer that turns the dotted field names of a record into nested objects,
//! writing straight into the caller's buffer (no intermediate `serde_json::Value`).

use super::{HexId, Name, Record, Value};

/// Which bytes need escaping inside a JSON string: 0 = none, else the escape letter
/// (`u` for `\u00XX`).
static ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = b'u';
        i += 1;
    }
    t[b'\n' as usize] = b'n';
    t[b'\r' as usize] = b'r';
    t[b'\t' as usize] = b't';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Whether any of the 8 bytes in `x` is a control character, `"` or `\\` (SWAR: eight
/// bytes per step; most record text needs no escaping at all).
#[inline]
fn needs_escape(x: u64) -> bool {
    let zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGHS;
    let below_space = x.wrapping_sub(ONES * 0x20) & !x & HIGHS;
    (below_space | zero(x ^ (ONES * u64::from(b'"'))) | zero(x ^ (ONES * u64::from(b'\\')))) != 0
}

/// Appends `s` as a JSON string literal.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        if i + 8 <= bytes.len() {
            let x = u64::from_le_bytes(bytes[i..i + 8].try_into().expect("8 bytes"));
            if !needs_escape(x) {
                i += 8;
                continue;
            }
        }
        let end = (i + 8).min(bytes.len());
        while i < end {
            let b = bytes[i];
            let e = ESCAPE[usize::from(b)];
            if e != 0 {
                out.extend_from_slice(&bytes[start..i]);
                start = i + 1;
                if e == b'u' {
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    out.extend_from_slice(b"\\u00");
                    out.push(HEX[usize::from(b >> 4)]);
                    out.push(HEX[usize::from(b & 15)]);
                } else {
                    out.push(b'\\');
                    out.push(e);
                }
            }
            i += 1;
        }
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

pub fn write_int(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

pub fn write_value(out: &mut Vec<u8>, v: Value<'_>) {
    match v {
        Value::Str(s) => write_str(out, s),
        Value::Int(i) => write_int(out, i),
        Value::Bool(b) => out.extend_from_slice(if b { b"true" } else { b"false" }),
        Value::Strs(list) => {
            out.push(b'[');
            for (i, s) in list.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(out, s);
            }
            out.push(b']');
        }
        Value::Time(t) => {
            out.push(b'"');
            t.write_rfc3339(out);
            out.push(b'"');
        }
    }
}

/// Segments of static names: the same literal is usually the same pointer, which spares
/// the byte comparison.
fn same(a: &str, b: &str) -> bool {
    (a.len() == b.len() && a.as_ptr() == b.as_ptr()) || a == b
}

/// Writes `{...}` for the record. The fields every record has come first, in the order of
/// [`Record::visit`], from fixed text and the source's pre-rendered parts (host, path and
/// dataset are the same for every record of a file); the optional fields follow through the
/// nesting writer.
pub fn write_record(rec: &Record<'_>, id: &HexId, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"@timestamp\":\"");
    rec.timestamp.write_rfc3339(out);
    out.extend_from_slice(b"\",\"message\":");
    write_str(out, &rec.message);
    out.extend_from_slice(b",\"event\":{\"id\":\"");
    out.extend_from_slice(id.as_str().as_bytes());
    out.extend_from_slice(rec.source.json.after_id.as_bytes());
    write_str(out, &rec.action);
    out.extend_from_slice(b",\"outcome\":\"");
    out.extend_from_slice(rec.outcome.as_str().as_bytes());
    out.extend_from_slice(rec.source.json.after_outcome.as_bytes());
    write_int(out, i64::try_from(rec.offset).unwrap_or(i64::MAX));
    out.push(b'}');
    let mut nest = Nester::new(false);
    rec.visit_fields(&mut |name, value| nest.field(out, name, value));
    nest.close(out);
    out.push(b'}');
}

/// The parts of a record's JSON that depend only on its source: after `event.id`,
/// `","dataset":"epost.inlog","module":"epost","action":`; after `event.outcome`'s value,
/// `"},"host":{"name":...},"log":{"file":{"path":...},"offset":`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceJson {
    after_id: Box<str>,
    after_outcome: Box<str>,
}

impl SourceJson {
    pub fn new(host: &str, kind: crate::kind::Kind, path: &str) -> SourceJson {
        let mut a = b"\",\"dataset\":".to_vec();
        write_str(&mut a, kind.dataset());
        a.extend_from_slice(b",\"module\":\"epost\",\"action\":");
        let mut b = b"\"},\"host\":{\"name\":".to_vec();
        write_str(&mut b, host);
        b.extend_from_slice(b"},\"log\":{\"file\":{\"path\":");
        write_str(&mut b, path);
        b.extend_from_slice(b"},\"offset\":");
        let text = |v: Vec<u8>| String::from_utf8(v).expect("JSON of str is UTF-8").into();
        SourceJson {
            after_id: text(a),
            after_outcome: text(b),
        }
    }
}

/// Writes fields given one by one, nesting dotted names: `client.ip` becomes
/// `"client":{"ip":...}`. Relies on fields of one object coming together (as
/// [`Record::visit`] gives them).
struct Nester {
    open: &'static [&'static str],
    /// Nothing written yet in the innermost open object: no comma before the next field.
    first: bool,
}

impl Nester {
    fn new(first: bool) -> Nester {
        Nester { open: &[], first }
    }

    #[inline]
    fn field(&mut self, out: &mut Vec<u8>, name: &'static Name, value: Value<'_>) {
        let depth = name.path.len() - 1;
        let parents = &name.path[..depth];
        let common = self
            .open
            .iter()
            .zip(parents)
            .take_while(|(a, b)| same(a, b))
            .count();
        for _ in common..self.open.len() {
            out.push(b'}');
            self.first = false;
        }
        for k in &name.json_keys[common..depth] {
            if !self.first {
                out.push(b',');
            }
            out.extend_from_slice(k.as_bytes());
            out.push(b'{');
            self.first = true;
        }
        self.open = parents;
        if !self.first {
            out.push(b',');
        }
        self.first = false;
        out.extend_from_slice(name.json_keys[depth].as_bytes());
        write_value(out, value);
    }

    fn close(self, out: &mut Vec<u8>) {
        for _ in 0..self.open.len() {
            out.push(b'}');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_at_every_position_of_a_word() {
        for len in 0..20 {
            for pos in 0..len {
                for c in ['"', '\\', '\n', '\u{1f}', 'é'] {
                    let mut s: String = "a".repeat(len);
                    s.replace_range(pos..pos + 1, &c.to_string());
                    let mut v = Vec::new();
                    write_str(&mut v, &s);
                    let back: String = serde_json::from_slice(&v).unwrap();
                    assert_eq!(back, s);
                    assert_eq!(v, serde_json::to_vec(&s).unwrap(), "{s:?}");
                }
            }
        }
    }

    #[test]
    fn escapes() {
        let mut v = Vec::new();
        write_str(&mut v, "a\"b\\c\nd\re\u{1}f窓\t");
        assert_eq!(
            std::str::from_utf8(&v).unwrap(),
            r#""a\"b\\c\nd\re\u0001f窓\t""#
        );
        let back: String = serde_json::from_slice(&v).unwrap();
        assert_eq!(back, "a\"b\\c\nd\re\u{1}f窓\t");
    }

    /// The fast writer gives, byte for byte, what the nesting writer gives over every field
    /// of `visit`, for records of every kind (and awkward hosts and paths).
    #[test]
    fn fast_writer_matches_nesting_writer() {
        use crate::kind::Kind;
        use crate::parse::{FileParser, ParseOptions};
        use crate::record::Source;
        let mut n = 0;
        for kind in Kind::ALL {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("examples/mail")
                .join(kind.name());
            let Ok(hosts) = std::fs::read_dir(&dir) else {
                continue;
            };
            for file in hosts
                .flatten()
                .flat_map(|h| std::fs::read_dir(h.path()).into_iter().flatten().flatten())
            {
                let Ok(bytes) = std::fs::read(file.path()) else {
                    continue;
                };
                let path = format!(
                    "C:\\Mail \"work\"\\{}\\{}",
                    kind.name(),
                    file.path().display()
                );
                let source = Source::new("MAIL\tSV\"01", kind, &path);
                let mut p = FileParser::new(source, ParseOptions::default());
                let mut check = |rec: &Record<'_>| {
                    let id = rec.event_id().to_hex();
                    let mut fast = Vec::new();
                    write_record(rec, &id, &mut fast);
                    let mut slow = vec![b'{'];
                    let mut nest = Nester::new(true);
                    rec.visit(id.as_str(), &mut |name, value| {
                        nest.field(&mut slow, name, value)
                    });
                    nest.close(&mut slow);
                    slow.push(b'}');
                    assert_eq!(
                        String::from_utf8_lossy(&fast),
                        String::from_utf8_lossy(&slow)
                    );
                    n += 1;
                };
                let mut offset = 0u64;
                for line in bytes.split(|&b| b == b'\n') {
                    p.push_line(offset, line, &mut check);
                    offset += line.len() as u64 + 1;
                }
                p.flush(&mut check);
            }
        }
        assert!(n > 100, "{n} records checked");
    }
}
