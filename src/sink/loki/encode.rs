//! Records as Loki entries: the per-record layout the tailer writes into a segment, the
//! entry timestamp, and the two push bodies (protobuf + snappy, JSON + gzip).
//!
//! Layout of one record in the payload (all integers little-endian):
//!
//! ```text
//! u16 labels length | labels  ({host="MAILSV01", job="epost", log="inlog"}, sorted by name)
//! i64 timestamp, nanoseconds since the epoch (see `entry_nanos`)
//! u32 line length   | line    (message, or the record as JSON)
//! u8  pairs         | pairs × (u8 key index into METADATA, u16 length, value)
//! ```
//!
//! Deliveries group entries into streams by the labels bytes, without parsing anything.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use flate2::Compression as GzLevel;
use flate2::write::GzEncoder;

use super::proto;
use crate::config::LokiLine;
/// The label rules are owned by `config`, which checks them at load.
pub use crate::config::{BUILTIN_LABELS, valid_label_name};
use crate::kind::Kind;
use crate::record::Record;
use crate::record::json::write_str;

/// Structured metadata keys, in the order records.md lists them. The layout stores the index.
pub const METADATA: [&str; 5] = ["event_id", "local_id", "client_ip", "user", "outcome"];

/// The entry timestamp of a record, in nanoseconds.
///
/// E-Post writes whole seconds (senderlog: milliseconds), and Loki keeps only one of two
/// entries of a stream with the same timestamp and the same line. Two different records
/// (two identical `mach!!` lines in one second) must both survive, while a replay of one
/// record after a crash must collapse into the original. So the part below the written
/// resolution comes from the record's byte offset in its file: the same record always gets
/// the same timestamp, two records of one file never share one, and a file's records stay in
/// offset order within each second.
///
/// - second resolution: `second + offset mod 10^9` ns
/// - millisecond resolution (senderlog, viruslog's file times, or any time that has
///   milliseconds): `millisecond + offset mod 10^6` ns
///
/// Two records of a file collide only if they are 10^9 (10^6) bytes apart within the same
/// second (millisecond), which a mail server's log does not do.
pub fn entry_nanos(rec: &Record<'_>) -> i64 {
    let ms = rec.timestamp.unix_ms;
    let ms_resolution =
        matches!(rec.source.kind, Kind::Senderlog | Kind::Viruslog) || ms.rem_euclid(1000) != 0;
    let sub = if ms_resolution {
        rec.offset % 1_000_000
    } else {
        rec.offset % 1_000_000_000
    };
    ms.saturating_mul(1_000_000).saturating_add(sub as i64)
}

/// Appends `value` as a label value: Go/Prometheus quoting, which Loki's label parser reads.
fn push_label_value(out: &mut Vec<u8>, value: &str) {
    out.push(b'"');
    for c in value.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.extend_from_slice(format!("\\x{:02x}", c as u32).as_bytes())
            }
            c => {
                let mut b = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            }
        }
    }
    out.push(b'"');
}

/// Encodes records for Loki on the tailer's thread.
#[derive(Debug)]
pub struct LokiEncoder {
    /// `job` and the static labels, sorted by name together with `host` and `log`.
    labels: BTreeMap<String, String>,
    line: LokiLine,
    metadata: bool,
    /// The labels of the last few (host, kind) streams, so that each is formatted once.
    cache: Mutex<Vec<CachedLabels>>,
}

/// (host, kind) and their labels text.
type CachedLabels = (Arc<str>, Kind, Vec<u8>);

impl LokiEncoder {
    /// `labels` are the static labels; the caller has checked their names.
    pub fn new(
        job: &str,
        labels: &BTreeMap<String, String>,
        line: LokiLine,
        metadata: bool,
    ) -> LokiEncoder {
        let mut all = labels.clone();
        all.insert("job".into(), job.into());
        LokiEncoder {
            labels: all,
            line,
            metadata,
            cache: Mutex::new(Vec::new()),
        }
    }

    /// `{host="H", job="epost", log="inlog", ...}`: what Loki's `labels` field expects, sorted
    /// by name so that one stream always has one spelling.
    pub fn labels_for(&self, host: &str, kind: Kind) -> Vec<u8> {
        let mut all: Vec<(&str, &str)> = self
            .labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        all.push(("host", host));
        all.push(("log", kind.name()));
        all.sort_by(|a, b| a.0.cmp(b.0));
        let mut out = Vec::with_capacity(64);
        out.push(b'{');
        for (i, (k, v)) in all.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(b", ");
            }
            out.extend_from_slice(k.as_bytes());
            out.push(b'=');
            push_label_value(&mut out, v);
        }
        out.push(b'}');
        out
    }

    pub fn encode(&self, rec: &Record<'_>, out: &mut Vec<u8>) {
        {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            let hit = cache
                .iter()
                .position(|(h, k, _)| *k == rec.source.kind && **h == *rec.source.host);
            let i = match hit {
                Some(i) => i,
                None => {
                    if cache.len() >= 32 {
                        cache.remove(0);
                    }
                    let l = self.labels_for(&rec.source.host, rec.source.kind);
                    cache.push((rec.source.host.clone(), rec.source.kind, l));
                    cache.len() - 1
                }
            };
            let labels = &cache[i].2;
            out.extend_from_slice(&(labels.len().min(usize::from(u16::MAX)) as u16).to_le_bytes());
            out.extend_from_slice(&labels[..labels.len().min(usize::from(u16::MAX))]);
        }
        out.extend_from_slice(&entry_nanos(rec).to_le_bytes());
        let at = out.len();
        out.extend_from_slice(&[0u8; 4]);
        match self.line {
            LokiLine::Message => out.extend_from_slice(rec.message.as_bytes()),
            LokiLine::Json => rec.write_json(out),
        }
        let len = (out.len() - at - 4) as u32;
        out[at..at + 4].copy_from_slice(&len.to_le_bytes());
        if !self.metadata {
            out.push(0);
            return;
        }
        let id = rec.event_id().to_hex();
        let f = &rec.fields;
        fn nonempty<'v>(v: &'v Option<std::borrow::Cow<'_, str>>) -> Option<&'v str> {
            v.as_deref().filter(|s| !s.is_empty())
        }
        let values: [Option<&str>; 5] = [
            Some(id.as_str()),
            nonempty(&f.local_id),
            nonempty(&f.client_ip),
            nonempty(&f.user_name),
            Some(rec.outcome.as_str()),
        ];
        let count = values.iter().filter(|v| v.is_some()).count();
        out.push(count as u8);
        for (key, v) in values.iter().enumerate() {
            if let Some(v) = v {
                let mut end = v.len().min(usize::from(u16::MAX));
                while !v.is_char_boundary(end) {
                    end -= 1;
                }
                out.push(key as u8);
                out.extend_from_slice(&(end as u16).to_le_bytes());
                out.extend_from_slice(&v.as_bytes()[..end]);
            }
        }
    }
}

/// One record of a payload, read back without copying.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    pub labels: &'a [u8],
    pub ts: i64,
    pub line: &'a [u8],
    /// The encoded pairs (count byte excluded).
    meta: &'a [u8],
    meta_count: u8,
}

/// Reads one record of the layout; `None` if the bytes are not one (a bug, never data).
pub fn decode(b: &[u8]) -> Option<Entry<'_>> {
    fn take<'b>(b: &mut &'b [u8], n: usize) -> Option<&'b [u8]> {
        if b.len() < n {
            return None;
        }
        let (h, t) = b.split_at(n);
        *b = t;
        Some(h)
    }
    let mut rest = b;
    let n = u16::from_le_bytes(take(&mut rest, 2)?.try_into().ok()?) as usize;
    let labels = take(&mut rest, n)?;
    let ts = i64::from_le_bytes(take(&mut rest, 8)?.try_into().ok()?);
    let n = u32::from_le_bytes(take(&mut rest, 4)?.try_into().ok()?) as usize;
    let line = take(&mut rest, n)?;
    let meta_count = *take(&mut rest, 1)?.first()?;
    // check the pairs once here, so that `pairs` can trust them
    let mut pairs = Pairs {
        rest,
        left: meta_count,
    };
    for _ in pairs.by_ref() {}
    (pairs.left == 0 && pairs.rest.is_empty()).then_some(Entry {
        labels,
        ts,
        line,
        meta: rest,
        meta_count,
    })
}

/// The structured metadata pairs of an entry, read in place.
pub struct Pairs<'a> {
    rest: &'a [u8],
    left: u8,
}

impl<'a> Iterator for Pairs<'a> {
    type Item = (&'static str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 || self.rest.len() < 3 {
            return None;
        }
        let key = *METADATA.get(usize::from(self.rest[0]))?;
        let n = usize::from(u16::from_le_bytes([self.rest[1], self.rest[2]]));
        let value = std::str::from_utf8(self.rest.get(3..3 + n)?).ok()?;
        self.rest = &self.rest[3 + n..];
        self.left -= 1;
        Some((key, value))
    }
}

impl<'a> Entry<'a> {
    pub fn pairs(&self) -> Pairs<'a> {
        Pairs {
            rest: self.meta,
            left: self.meta_count,
        }
    }

    /// The structured metadata pairs, collected.
    pub fn metadata(&self) -> Vec<(&'static str, &'a str)> {
        self.pairs().collect()
    }

    pub fn line_str(&self) -> std::borrow::Cow<'a, str> {
        String::from_utf8_lossy(self.line)
    }

    pub fn labels_str(&self) -> std::borrow::Cow<'a, str> {
        String::from_utf8_lossy(self.labels)
    }

    /// The entry as sent, as one JSON object: what the dead-letter file keeps.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.line.len() + 256);
        out.extend_from_slice(b"{\"stream\":");
        out.extend_from_slice(self.labels_json().as_bytes());
        out.extend_from_slice(b",\"timestamp\":");
        write_str(&mut out, &rfc3339_nanos(self.ts));
        out.extend_from_slice(b",\"timestamp_ns\":\"");
        out.extend_from_slice(self.ts.to_string().as_bytes());
        out.extend_from_slice(b"\",\"line\":");
        write_str(&mut out, &self.line_str());
        out.extend_from_slice(b",\"structured_metadata\":{");
        for (i, (k, v)) in self.pairs().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_str(&mut out, k);
            out.push(b':');
            write_str(&mut out, v);
        }
        out.extend_from_slice(b"}}");
        out
    }

    /// The labels as a JSON object (`{"host":"H","job":"epost",...}`).
    pub fn labels_json(&self) -> String {
        let mut out = Vec::with_capacity(self.labels.len() + 8);
        out.push(b'{');
        for (i, (k, v)) in parse_labels(&self.labels_str()).iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_str(&mut out, k);
            out.push(b':');
            write_str(&mut out, v);
        }
        out.push(b'}');
        String::from_utf8(out).unwrap_or_default()
    }
}

/// Reads back a labels string this module wrote (`{a="b", c="d\"e"}`).
pub fn parse_labels(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let inner = s.trim().trim_start_matches('{').trim_end_matches('}');
    let mut chars = inner.chars().peekable();
    loop {
        while matches!(chars.peek(), Some(' ' | ',')) {
            chars.next();
        }
        let mut name = String::new();
        for c in chars.by_ref() {
            if c == '=' {
                break;
            }
            name.push(c);
        }
        if name.is_empty() || chars.next() != Some('"') {
            return out;
        }
        let mut value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '"' => break,
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some('r') => value.push('\r'),
                    Some('t') => value.push('\t'),
                    Some(o) => value.push(o),
                    None => {}
                },
                c => value.push(c),
            }
        }
        out.push((name.trim().to_string(), value));
    }
}

/// `2017-11-29T23:20:44.000000079Z`
pub fn rfc3339_nanos(ns: i64) -> String {
    let t = proto::Timestamp::from_nanos(ns);
    match chrono::DateTime::from_timestamp(t.seconds, t.nanos as u32) {
        Some(d) => d.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        None => ns.to_string(),
    }
}

/// The streams of a push: entries grouped by labels (in order of first appearance), each
/// stream's entries in timestamp order. The sort is stable, so records of one file with the
/// same timestamp keep their file order.
pub fn streams<'e, 'a>(entries: &'e [Entry<'a>], set: &[usize]) -> Vec<(&'a [u8], Vec<usize>)> {
    let mut index: std::collections::HashMap<&'a [u8], usize> = std::collections::HashMap::new();
    let mut out: Vec<(&'a [u8], Vec<usize>)> = Vec::new();
    for &i in set {
        let l = entries[i].labels;
        let s = *index.entry(l).or_insert_with(|| {
            out.push((l, Vec::new()));
            out.len() - 1
        });
        out[s].1.push(i);
    }
    for (_, v) in &mut out {
        v.sort_by_key(|&i| entries[i].ts);
    }
    out
}

fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A length-delimited field: key, length, bytes.
fn put_bytes(out: &mut Vec<u8>, key: u8, b: &[u8]) {
    out.push(key);
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn bytes_len(n: usize) -> usize {
    1 + varint_len(n as u64) + n
}

/// `google.protobuf.Timestamp` body: seconds (1), nanos (2), zeros omitted as proto3 does.
fn timestamp_len(t: proto::Timestamp) -> usize {
    let s = if t.seconds != 0 {
        1 + varint_len(t.seconds as u64)
    } else {
        0
    };
    let n = if t.nanos != 0 {
        1 + varint_len(i64::from(t.nanos) as u64)
    } else {
        0
    };
    s + n
}

/// `EntryAdapter` body: timestamp (1), line (2), structuredMetadata (3).
fn entry_len(e: &Entry<'_>) -> usize {
    let mut n = bytes_len(timestamp_len(proto::Timestamp::from_nanos(e.ts)));
    if !e.line.is_empty() {
        n += bytes_len(e.line.len());
    }
    for (k, v) in e.pairs() {
        n += bytes_len(bytes_len(k.len()) + bytes_len(v.len()));
    }
    n
}

fn put_entry(out: &mut Vec<u8>, e: &Entry<'_>) {
    let t = proto::Timestamp::from_nanos(e.ts);
    out.push(0x0a);
    put_varint(out, timestamp_len(t) as u64);
    if t.seconds != 0 {
        out.push(0x08);
        put_varint(out, t.seconds as u64);
    }
    if t.nanos != 0 {
        out.push(0x10);
        put_varint(out, i64::from(t.nanos) as u64);
    }
    if !e.line.is_empty() {
        put_bytes(out, 0x12, e.line);
    }
    for (k, v) in e.pairs() {
        out.push(0x1a);
        put_varint(out, (bytes_len(k.len()) + bytes_len(v.len())) as u64);
        put_bytes(out, 0x0a, k.as_bytes());
        put_bytes(out, 0x12, v.as_bytes());
    }
}

/// Protobuf `PushRequest` (see `proto`), snappy block-compressed. Written straight from the
/// payload bytes: no message structs, no copies of the lines but this one.
pub fn protobuf_body(entries: &[Entry<'_>], set: &[usize]) -> Vec<u8> {
    let streams = streams(entries, set);
    let mut raw = Vec::with_capacity(
        set.iter()
            .map(|&i| entries[i].line.len() + 160)
            .sum::<usize>(),
    );
    for (labels, idx) in &streams {
        // StreamAdapter: labels (1), entries (2); hash (3) stays 0 and is omitted
        let lens: Vec<usize> = idx.iter().map(|&i| entry_len(&entries[i])).collect();
        let body = bytes_len(labels.len()) + lens.iter().map(|&n| bytes_len(n)).sum::<usize>();
        raw.push(0x0a);
        put_varint(&mut raw, body as u64);
        put_bytes(&mut raw, 0x0a, labels);
        for (&i, &n) in idx.iter().zip(&lens) {
            raw.push(0x12);
            put_varint(&mut raw, n as u64);
            put_entry(&mut raw, &entries[i]);
        }
    }
    // snappy's block format cannot fail on input below 2^32 bytes; a batch is far smaller
    snap::raw::Encoder::new()
        .compress_vec(&raw)
        .unwrap_or_default()
}

/// JSON push body (`{"streams":[{"stream":{..},"values":[["ns","line",{..}]]}]}`), gzipped.
pub fn json_body(entries: &[Entry<'_>], set: &[usize]) -> std::io::Result<Vec<u8>> {
    let mut raw = Vec::with_capacity(set.len() * 200);
    raw.extend_from_slice(b"{\"streams\":[");
    for (n, (_, idx)) in streams(entries, set).into_iter().enumerate() {
        if n > 0 {
            raw.push(b',');
        }
        raw.extend_from_slice(b"{\"stream\":");
        raw.extend_from_slice(entries[idx[0]].labels_json().as_bytes());
        raw.extend_from_slice(b",\"values\":[");
        for (k, &i) in idx.iter().enumerate() {
            let e = &entries[i];
            if k > 0 {
                raw.push(b',');
            }
            raw.extend_from_slice(b"[\"");
            raw.extend_from_slice(e.ts.to_string().as_bytes());
            raw.extend_from_slice(b"\",");
            write_str(&mut raw, &e.line_str());
            if e.meta_count > 0 {
                raw.extend_from_slice(b",{");
                for (j, (key, v)) in e.pairs().enumerate() {
                    if j > 0 {
                        raw.push(b',');
                    }
                    write_str(&mut raw, key);
                    raw.push(b':');
                    write_str(&mut raw, v);
                }
                raw.push(b'}');
            }
            raw.push(b']');
        }
        raw.extend_from_slice(b"]}");
    }
    raw.extend_from_slice(b"]}");
    let mut gz = GzEncoder::new(Vec::with_capacity(raw.len() / 6), GzLevel::new(1));
    gz.write_all(&raw)?;
    gz.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{ParseOptions, parse_bytes};
    use crate::record::Source;

    fn records(kind: Kind, text: &str) -> Vec<(i64, Vec<u8>)> {
        let enc = LokiEncoder::new("epost", &BTreeMap::new(), LokiLine::Message, true);
        let mut out = Vec::new();
        parse_bytes(
            Source::new(
                "MAILSV01",
                kind,
                &format!("/m/{}/MAILSV01/171130.log", kind.name()),
            ),
            ParseOptions::default(),
            text.as_bytes(),
            &mut |r| {
                let mut b = Vec::new();
                enc.encode(r, &mut b);
                out.push((entry_nanos(r), b));
            },
        );
        out
    }

    #[test]
    fn identical_lines_in_one_second_get_distinct_increasing_times() {
        let line =
            "[30/Nov/2017:10:00:00] [IN=alice@example.net] / [maildb=alice@example.net] mach!!\r\n";
        let recs = records(Kind::Maildblog, &line.repeat(3));
        assert_eq!(recs.len(), 3);
        let base = 1_512_003_600i64 * 1_000_000_000; // 10:00:00+09:00
        let len = line.len() as i64;
        assert_eq!(recs[0].0, base);
        assert_eq!(recs[1].0, base + len);
        assert_eq!(recs[2].0, base + 2 * len);
        // and the same record encodes to the same bytes every time (replays collapse)
        assert_eq!(records(Kind::Maildblog, &line.repeat(3))[2].1, recs[2].1);
    }

    #[test]
    fn senderlog_keeps_its_milliseconds() {
        let text = "[08:22:11:020] [B0000097587] SendGlbalMail:domain=a\r\n[08:22:11:020] [B0000097587] SendGlbalMail:domain=a\r\n";
        let recs = records(Kind::Senderlog, text);
        let ms = (1_511_997_731i64 * 1000 + 20) * 1_000_000; // 08:22:11.020+09:00
        assert_eq!(recs[0].0, ms);
        assert_eq!(recs[1].0, ms + (text.len() / 2) as i64);
        assert!(recs[1].0 < ms + 1_000_000, "still inside the millisecond");
    }

    #[test]
    fn layout_round_trip() {
        let recs = records(
            Kind::Inlog,
            "<B0000000001@mx.example.jp> [30/Nov/2017:08:00:00] 203.0.113.5 client.example.net alice@example.net bob@example.jp\r\n",
        );
        let e = decode(&recs[0].1).unwrap();
        assert_eq!(
            e.labels_str(),
            r#"{host="MAILSV01", job="epost", log="inlog"}"#
        );
        assert_eq!(e.ts, recs[0].0);
        assert!(e.line_str().starts_with("<B0000000001@mx.example.jp>"));
        let meta = e.metadata();
        let keys: Vec<&str> = meta.iter().map(|p| p.0).collect();
        assert_eq!(keys, ["event_id", "local_id", "client_ip", "outcome"]);
        assert_eq!(meta[1].1, "B0000000001");
        assert_eq!(meta[2].1, "203.0.113.5");
        assert_eq!(meta[3].1, "success");
        let j: serde_json::Value = serde_json::from_slice(&e.to_json()).unwrap();
        assert_eq!(j["stream"]["log"], "inlog");
        assert_eq!(j["timestamp"], "2017-11-29T23:00:00.000000000Z");
        assert_eq!(j["structured_metadata"]["local_id"], "B0000000001");
        assert!(decode(&recs[0].1[..recs[0].1.len() - 1]).is_none());
    }

    #[test]
    fn protobuf_edge_values() {
        use prost::Message;
        let labels = br#"{job="epost"}"#;
        let mk = |ts: i64, line: &'static [u8]| Entry {
            labels,
            ts,
            line,
            meta: &[],
            meta_count: 0,
        };
        // zero seconds/nanos/line are omitted by proto3; negative times need 10-byte varints
        let entries = [
            mk(0, b""),
            mk(5, b"x"),
            mk(-1_500_000_000, b"\xe6\x9d\xb1"),
            mk(i64::MAX, b"y"),
        ];
        let body = protobuf_body(&entries, &[0, 1, 2, 3]);
        let raw = snap::raw::Decoder::new().decompress_vec(&body).unwrap();
        let req = proto::PushRequest::decode(&raw[..]).unwrap();
        assert_eq!(req.encode_to_vec(), raw);
        let got: Vec<(i64, String)> = req.streams[0]
            .entries
            .iter()
            .map(|e| (e.timestamp.unwrap_or_default().nanos(), e.line.clone()))
            .collect();
        assert_eq!(
            got,
            [
                (-1_500_000_000, "東".to_string()),
                (0, String::new()),
                (5, "x".to_string()),
                (i64::MAX, "y".to_string())
            ]
        );
    }

    #[test]
    fn labels_are_sorted_and_quoted() {
        let mut st = BTreeMap::new();
        st.insert("env".to_string(), "p\"r\\od".to_string());
        st.insert("zone".to_string(), "東京".to_string());
        let enc = LokiEncoder::new("mail", &st, LokiLine::Message, false);
        let l = String::from_utf8(enc.labels_for("MX\n1", Kind::Faillog)).unwrap();
        assert_eq!(
            l,
            r#"{env="p\"r\\od", host="MX\n1", job="mail", log="faillog", zone="東京"}"#
        );
        let back = parse_labels(&l);
        assert_eq!(back[0], ("env".into(), "p\"r\\od".into()));
        assert_eq!(back[1], ("host".into(), "MX\n1".into()));
        assert!(valid_label_name("_a1"));
        assert!(!valid_label_name("1a"));
        assert!(!valid_label_name("a-b"));
        assert!(!valid_label_name(""));
    }

    #[test]
    fn bodies_decode_and_streams_are_in_time_order() {
        use prost::Message;
        let text = "<B0000000002@mx> [30/Nov/2017:08:00:02] 1.2.3.4 h a@b c@d\r\n<B0000000001@mx> [30/Nov/2017:08:00:01] 1.2.3.4 h a@b c@d\r\n";
        let mut recs = records(Kind::Inlog, text);
        recs.extend(records(
            Kind::Faillog,
            "B0000000009@mx send fail on [30/Nov/2017:00:00:01] from a@b to c@d [550 x]\r\n",
        ));
        let entries: Vec<Entry<'_>> = recs.iter().map(|r| decode(&r.1).unwrap()).collect();
        let body = protobuf_body(&entries, &[0, 1, 2]);
        let raw = snap::raw::Decoder::new().decompress_vec(&body).unwrap();
        let req = proto::PushRequest::decode(&raw[..]).unwrap();
        // byte for byte what a generated encoder writes
        assert_eq!(req.encode_to_vec(), raw);
        assert_eq!(req.streams.len(), 2);
        let s = &req.streams[0];
        assert_eq!(s.labels, r#"{host="MAILSV01", job="epost", log="inlog"}"#);
        assert!(
            s.entries[0].line.starts_with("<B0000000001"),
            "sorted by time"
        );
        assert_eq!(s.entries[0].timestamp.unwrap().nanos(), entries[1].ts);
        assert_eq!(s.entries[0].structured_metadata[1].name, "local_id");

        let gz = json_body(&entries, &[0, 1, 2]).unwrap();
        let mut plain = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut plain).unwrap();
        let j: serde_json::Value = serde_json::from_slice(&plain).unwrap();
        assert_eq!(j["streams"][0]["stream"]["log"], "inlog");
        assert_eq!(j["streams"][0]["values"][0][0], entries[1].ts.to_string());
        assert_eq!(j["streams"][0]["values"][0][2]["local_id"], "B0000000001");
        assert_eq!(j["streams"][1]["stream"]["log"], "faillog");
    }
}
