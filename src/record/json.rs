//! A small JSON writer that turns the dotted field names of a record into nested objects,
//! writing straight into the caller's buffer (no intermediate `serde_json::Value`).

use super::{Record, Value};

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

/// Appends `s` as a JSON string literal.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let e = ESCAPE[usize::from(b)];
        if e == 0 {
            continue;
        }
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

/// Field names are plain ASCII identifiers: written without escaping.
fn write_key(out: &mut Vec<u8>, k: &str) {
    out.push(b'"');
    out.extend_from_slice(k.as_bytes());
    out.extend_from_slice(b"\":");
}

/// Writes `{...}` for the record, nesting dotted names: `client.ip` becomes
/// `"client":{"ip":...}`. Relies on `Record::visit` giving fields of one object together.
pub fn write_record(rec: &Record<'_>, out: &mut Vec<u8>) {
    let id = rec.event_id().to_hex();
    let mut open: &[&str] = &[];
    let mut first = true;
    out.push(b'{');
    rec.visit(id.as_str(), &mut |name, value| {
        let parents = &name.path[..name.path.len() - 1];
        let common = open.iter().zip(parents).take_while(|(a, b)| a == b).count();
        for _ in common..open.len() {
            out.push(b'}');
            first = false;
        }
        for p in &parents[common..] {
            if !first {
                out.push(b',');
            }
            write_key(out, p);
            out.push(b'{');
            first = true;
        }
        open = parents;
        if !first {
            out.push(b',');
        }
        first = false;
        write_key(out, name.path[name.path.len() - 1]);
        write_value(out, value);
    });
    for _ in 0..open.len() {
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
        write_str(&mut v, "a\"b\\c\nd\re\u{1}f窓\t");
        assert_eq!(
            std::str::from_utf8(&v).unwrap(),
            r#""a\"b\\c\nd\re\u0001f窓\t""#
        );
        let back: String = serde_json::from_slice(&v).unwrap();
        assert_eq!(back, "a\"b\\c\nd\re\u{1}f窓\t");
    }
}
