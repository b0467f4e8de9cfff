//! A small JSON writer that turns the dotted field names of a record into nested objects,
//! writing straight into the caller's buffer (no intermediate `serde_json::Value`).

use super::{Record, Value};

/// Appends `s` as a JSON string literal.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => {
                out.extend_from_slice(&bytes[start..i]);
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 15)]);
                start = i + 1;
                continue;
            }
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(esc);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

pub fn write_int(out: &mut Vec<u8>, v: i64) {
    use std::io::Write;
    let _ = write!(out, "{v}");
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

/// Writes `{...}` for the record, nesting dotted names: `client.ip` becomes
/// `"client":{"ip":...}`.
pub fn write_record(rec: &Record<'_>, out: &mut Vec<u8>) {
    let id = rec.event_id().to_hex();
    let mut open: [&str; 4] = [""; 4];
    let mut depth = 0usize;
    let mut first = true;
    out.push(b'{');
    rec.visit(id.as_str(), &mut |name, value| {
        let mut parts = name.split('.');
        let mut segs: [&str; 5] = [""; 5];
        let mut n = 0;
        for p in parts.by_ref() {
            segs[n] = p;
            n += 1;
        }
        let parents = &segs[..n - 1];
        let common = open[..depth]
            .iter()
            .zip(parents)
            .take_while(|(a, b)| a == b)
            .count();
        for _ in common..depth {
            out.push(b'}');
        }
        if common < depth {
            first = false;
        }
        depth = common;
        for p in &parents[common..] {
            if !first {
                out.push(b',');
            }
            write_str(out, p);
            out.extend_from_slice(b":{");
            open[depth] = p;
            depth += 1;
            first = true;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        write_str(out, segs[n - 1]);
        out.push(b':');
        write_value(out, value);
    });
    for _ in 0..depth {
        out.push(b'}');
    }
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        let mut v = Vec::new();
        write_str(&mut v, "a\"b\\c\nd\re\u{1}f窓");
        assert_eq!(
            std::str::from_utf8(&v).unwrap(),
            r#""a\"b\\c\nd\re\u0001f窓""#
        );
        let back: String = serde_json::from_slice(&v).unwrap();
        assert_eq!(back, "a\"b\\c\nd\re\u{1}f窓");
    }
}
