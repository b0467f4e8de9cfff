//! The viruslog record: one per quarantined `.RCP`/`.MSG` pair.
//!
//! A `.MSG` can be any size (it is the quarantined mail, attachments included), so it is never
//! held in memory: [`summarize`] streams it through a fixed buffer for its size and SHA-256 and
//! keeps only the headers (at most [`HEADER_CAP`] bytes, up to the blank line) for the subject.
//! The `.RCP` envelope is read up to `max_record_bytes` ([`read_rcp`]); past that the record is
//! marked truncated.

use std::borrow::Cow;
use std::io::{self, Read};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::ParseOptions;
use super::kinds::viruslog::{parse_rcp, subject};
use crate::decode::{Encoding, decode};
use crate::record::{Fields, Outcome, Record, Source};
use crate::time::Clock;

/// Bytes read per step while hashing a `.MSG`.
const CHUNK: usize = 64 * 1024;

/// How much of a `.MSG` is kept to find its `Subject:`: the headers up to the first blank line,
/// at most this many bytes. A subject after 64 KiB of headers is not found.
pub const HEADER_CAP: usize = 64 * 1024;

/// The `.MSG` half of a pair, if it exists, in memory (the one-shot path and tests).
pub struct Message<'a> {
    pub path: &'a str,
    pub bytes: &'a [u8],
}

/// What a record needs of a `.MSG`: computed by [`summarize`] without holding the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub size: u64,
    /// lowercase hex
    pub sha256: String,
    pub subject: Option<String>,
}

/// Reads `r` to its end through a fixed buffer: size, SHA-256, and the subject from the
/// headers.
pub fn summarize(mut r: impl Read, encoding: Encoding) -> io::Result<Summary> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut head: Vec<u8> = Vec::new();
    let mut head_done = false;
    let mut size = 0u64;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        // a reader may not claim more than the buffer; take what is really there
        let chunk = buf.get(..n).unwrap_or(&buf);
        hasher.update(chunk);
        size = size.saturating_add(u64::try_from(chunk.len()).unwrap_or(u64::MAX));
        if !head_done {
            // the blank line may straddle two reads: look a few bytes back
            let from = head.len().saturating_sub(3);
            let room = HEADER_CAP.saturating_sub(head.len());
            head.extend_from_slice(chunk.get(..room.min(chunk.len())).unwrap_or(&[]));
            head_done = head.len() >= HEADER_CAP || ends_headers(head.get(from..).unwrap_or(&[]));
        }
    }
    Ok(Summary {
        size,
        sha256: hex(&hasher.finalize()),
        subject: subject(&head, encoding),
    })
}

fn ends_headers(b: &[u8]) -> bool {
    b.windows(2).any(|w| w == b"\n\n") || b.windows(3).any(|w| w == b"\n\r\n")
}

/// [`summarize`] of a file.
pub fn summarize_file(path: &Path, encoding: Encoding) -> io::Result<Summary> {
    summarize(std::fs::File::open(path)?, encoding)
}

/// Reads at most `max` bytes of an envelope; true when there was more.
pub fn read_rcp(r: impl Read, max: usize) -> io::Result<(Vec<u8>, bool)> {
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    let mut v = Vec::new();
    r.take(limit).read_to_end(&mut v)?;
    let truncated = v.len() > max;
    v.truncate(max);
    Ok((v, truncated))
}

/// [`read_rcp`] of a file.
pub fn read_rcp_file(path: &Path, max: usize) -> io::Result<(Vec<u8>, bool)> {
    read_rcp(std::fs::File::open(path)?, max)
}

/// Builds the record of one pair from bytes in memory. `source` describes the `.RCP` file;
/// `rcp_mtime_ms` is its modification time, the only time a quarantined message has.
pub fn record(
    source: &Source,
    options: &ParseOptions,
    rcp: &[u8],
    rcp_mtime_ms: i64,
    msg: Option<Message<'_>>,
    emit: &mut dyn FnMut(&Record<'_>),
) {
    let (rcp, truncated) = match rcp.get(..options.max_record_bytes) {
        Some(cut) if cut.len() < rcp.len() => (cut, true),
        _ => (rcp, false),
    };
    // reading from a slice cannot fail
    let summary = msg.and_then(|m| {
        summarize(m.bytes, options.encoding)
            .ok()
            .map(|s| (m.path, s))
    });
    record_summarized(source, options, rcp, truncated, rcp_mtime_ms, summary, emit);
}

/// Builds the record of one pair: `rcp` as read by [`read_rcp`] (`rcp_truncated` when the file
/// was longer), the `.MSG` as summarised by [`summarize`] with its path.
pub fn record_summarized(
    source: &Source,
    options: &ParseOptions,
    rcp: &[u8],
    rcp_truncated: bool,
    rcp_mtime_ms: i64,
    msg: Option<(&str, Summary)>,
    emit: &mut dyn FnMut(&Record<'_>),
) {
    // the envelope's first line is the pair's generation, as a log file's is (event.id)
    let first = rcp.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let source = &Source {
        generation: crate::record::generation_of(first),
        ..source.clone()
    };
    let decoded = decode(rcp, options.encoding);
    let text = decoded.text.replace("\r\n", "\n");
    let mut message = text.trim_end().to_string();
    // Decoding can make the text longer than the bytes read (a CP932 character takes three
    // bytes in UTF-8, an invalid byte becomes a three-byte U+FFFD): cut it again.
    let mut rcp_truncated = rcp_truncated;
    if message.len() > options.max_record_bytes {
        let mut cut = options.max_record_bytes;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
        rcp_truncated = true;
    }
    let clock = Clock::new(options.zone);
    let mut fields = Fields::default();
    let mut parse_error = None;
    let mut subject_text = None;
    let mut sha = None;
    match parse_rcp(&text) {
        Ok(env) => {
            fields.local_id = env.local_id.map(Cow::Owned);
            fields.server_domain = env.server_domain.map(Cow::Owned);
            fields.from = env.from.into_iter().map(Cow::Owned).collect();
            fields.to = env.to.into_iter().map(Cow::Owned).collect();
            fields.filter_warning = env.warnings.into_iter().map(Cow::Owned).collect();
            fields.unknown_virus = Some(env.unknown_virus);
        }
        Err(e) => parse_error = Some(Cow::Borrowed(e)),
    }
    match msg {
        Some((path, m)) => {
            subject_text = m.subject;
            sha = Some(m.sha256);
            fields.file_path = Some(Cow::Borrowed(path));
            fields.file_size = Some(m.size);
        }
        None if parse_error.is_none() => {
            parse_error = Some(Cow::Borrowed("the .MSG file of this pair is missing"));
        }
        None => {}
    }
    fields.subject = subject_text.map(Cow::Owned);
    // An envelope that did not parse is text of unknown shape, like any unparsed line.
    let message = match parse_error {
        Some(_) if options.redact => super::redact::scrub_unparsed(&message).into_owned(),
        _ => message,
    };
    fields.file_sha256 = sha.map(Cow::Owned);
    let rec = Record {
        source,
        timestamp: clock.at_unix_ms(rcp_mtime_ms),
        time_inferred: false,
        message: Cow::Owned(message),
        offset: 0,
        action: Cow::Borrowed("message-quarantined"),
        outcome: Outcome::Failure,
        parse_error,
        decode_error: decoded.replaced,
        truncated: rcp_truncated,
        fields,
    };
    emit(&rec);
}

fn hex(b: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for &x in b {
        s.push(HEX[usize::from(x >> 4)] as char);
        s.push(HEX[usize::from(x & 15)] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads at most `step` bytes per call, so that the blank line after the headers and the
    /// hash input straddle reads.
    struct Dribble<'a>(&'a [u8], usize);

    impl Read for Dribble<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.1.min(buf.len()).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn streamed_summary_equals_whole_file_summary() {
        let mut msg = b"From: a\r\nSubject: =?UTF-8?B?44GC?= x\r\n\r\n".to_vec();
        msg.extend(std::iter::repeat_n(b'z', 3 * CHUNK + 17));
        let whole = Summary {
            size: msg.len() as u64,
            sha256: hex(&Sha256::digest(&msg)),
            subject: subject(&msg, Encoding::Cp932),
        };
        assert_eq!(whole.subject.as_deref(), Some("あ x"));
        for step in [1, 2, 3, 7, 4096, CHUNK, usize::MAX] {
            let s = summarize(Dribble(&msg, step), Encoding::Cp932).unwrap();
            assert_eq!(s, whole, "step {step}");
        }
    }

    #[test]
    fn headers_are_kept_up_to_the_cap_only() {
        // no blank line at all: the subject in the first 64 KiB is found, one later is not
        let mut msg = b"Subject: early\r\n".to_vec();
        msg.extend(std::iter::repeat_n(b'x', 10 * HEADER_CAP));
        let s = summarize(&msg[..], Encoding::Cp932).unwrap();
        assert_eq!(s.size, msg.len() as u64);
        let mut late = b"X-Pad: ".to_vec();
        late.extend(std::iter::repeat_n(b'p', HEADER_CAP));
        late.extend_from_slice(b"\r\nSubject: late\r\n\r\n");
        assert_eq!(summarize(&late[..], Encoding::Cp932).unwrap().subject, None);
    }

    #[test]
    fn envelope_is_read_up_to_max_and_marked_truncated() {
        let rcp = b"Message-ID: <B0000000001@h>\r\nReturn-path: a@b\r\nRecipient: c@d\r\n";
        assert_eq!(read_rcp(&rcp[..], 1000).unwrap(), (rcp.to_vec(), false));
        assert_eq!(
            read_rcp(&rcp[..], rcp.len()).unwrap(),
            (rcp.to_vec(), false)
        );
        let (cut, t) = read_rcp(&rcp[..], 30).unwrap();
        assert!(t);
        assert_eq!(cut, rcp[..30].to_vec());
        let source = Source::new(
            "H",
            crate::kind::Kind::Viruslog,
            "/m/viruslog/B0000000001.RCP",
        );
        let options = ParseOptions {
            max_record_bytes: 30,
            ..ParseOptions::default()
        };
        let mut got = Vec::new();
        record(&source, &options, rcp, 0, None, &mut |r| {
            got.push((r.truncated, r.message.len(), r.to_json()))
        });
        assert_eq!(got.len(), 1);
        assert!(got[0].0 && got[0].1 <= 30);
        assert!(got[0].2.contains(r#""truncated":true"#));
    }
}
