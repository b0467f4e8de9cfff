//! Parse: decoded lines to records.
//!
//! A [`FileParser`] holds what one file's lines need from each other: the file's date for
//! time-only lines, the previous record's time, records that continue over several physical
//! lines, and SASL exchanges that span lines. It knows nothing of where the bytes come from.

/// The stable-Rust fuzzer behind `examples/fuzz.rs` (not part of the shipper's API).
#[doc(hidden)]
pub mod fuzz;
pub mod kinds;
pub mod quarantine;
pub mod redact;
#[cfg(test)]
mod redaction_e2e;
/// Times moved to the leaf module [`crate::time`]; the old path stays for callers.
pub use crate::time;

use std::borrow::Cow;

use crate::decode::{Encoding, decode};
use crate::kind::Kind;
use crate::record::{Fields, Outcome, Record, Source};
use crate::time::{Clock, Date, LocalTime, Timestamp, Zone, date_from_file_name};
use kinds::Shape;
use kinds::trace::{self, Sessions};

/// Default of [`ParseOptions::max_record_bytes`]: 1 MiB.
pub const DEFAULT_MAX_RECORD_BYTES: usize = 1_048_576;

/// How lines are read: the same for every file of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseOptions {
    pub encoding: Encoding,
    pub zone: Zone,
    pub redact: bool,
    /// A multi-line record is cut when adding a line would make its text longer than this
    /// (bytes of decoded UTF-8): it is emitted with `epost.truncated`, and the lines that
    /// follow start a record of their own. One physical line is never cut here (the tailer
    /// bounds line length), so a record can exceed this only by being one such line.
    /// Also the cap on how much of a viruslog `.RCP` file is read.
    pub max_record_bytes: usize,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            encoding: Encoding::Cp932,
            zone: Zone::default(),
            redact: true,
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
        }
    }
}

/// A record spanning several lines, waiting for the line that starts the next one.
#[derive(Debug)]
struct Pending {
    offset: u64,
    text: String,
    decode_error: bool,
    /// The record began where a longer one was cut at `max_record_bytes`: its text is the
    /// middle of another record, not a record start.
    continued: bool,
}

/// Why a record that is the rest of a cut one has no fields.
const CUT_CONTINUATION: &str = "continuation of a record cut at max_record_bytes";

pub struct FileParser {
    source: Source,
    options: ParseOptions,
    clock: Clock,
    file_date: Option<(Date, Option<u32>)>,
    last_time: Option<Timestamp>,
    pending: Option<Pending>,
    /// senderlog: time-prefixed lines were seen, so unprefixed ones are continuations.
    prefixed: bool,
    sessions: Sessions,
}

impl FileParser {
    pub fn new(source: Source, options: ParseOptions) -> FileParser {
        let file_date = date_from_file_name(&source.file_name);
        FileParser {
            clock: Clock::new(options.zone),
            source,
            options,
            file_date,
            last_time: None,
            pending: None,
            prefixed: false,
            sessions: Sessions::default(),
        }
    }

    pub fn source(&self) -> &Source {
        &self.source
    }

    /// Offset of the first byte not yet part of an emitted record: a checkpoint may not pass it.
    pub fn pending_offset(&self) -> Option<u64> {
        self.pending.as_ref().map(|p| p.offset)
    }

    /// Whether this kind's records can continue over several physical lines.
    pub fn is_multiline(&self) -> bool {
        self.source.kind.is_trace() || self.source.kind == Kind::Senderlog
    }

    /// Sets the file's generation (part of every `event.id`), for a file read from a checkpoint
    /// rather than from its first line: see [`crate::record::generation_of`].
    /// The file was moved: records from here on name `source` (its path, its host), while
    /// what the parser holds of the file (a pending record, sessions, the date) stays.
    pub fn set_source(&mut self, source: Source) {
        self.source = source;
    }

    pub fn set_generation(&mut self, generation: u64) {
        self.source.generation = generation;
    }

    /// Feeds one physical line (without its `\n`; trailing `\r`s are removed here).
    /// Blank lines carry nothing and are skipped. Calls `emit` for each completed record.
    pub fn push_line(&mut self, offset: u64, line: &[u8], emit: &mut dyn FnMut(&Record<'_>)) {
        if crate::fault::hit("parse-panic", line) {
            panic!("injected fault: parse-panic");
        }
        if offset == 0 {
            // the file's first line names its generation
            self.source.generation = crate::record::generation_of(line);
        }
        let mut end = line.len();
        while end > 0 && line[end - 1] == b'\r' {
            end -= 1;
        }
        let line = &line[..end];
        if line.iter().all(|&b| b == b' ' || b == b'\t' || b == b'\r') {
            return;
        }
        let d = decode(line, self.options.encoding);
        if !self.is_multiline() {
            self.emit_single(offset, d.text, d.replaced, emit);
            return;
        }
        if self.starts_record(&d.text) {
            self.flush(emit);
            self.pending = Some(Pending {
                offset,
                text: d.text.into_owned(),
                decode_error: d.replaced,
                continued: false,
            });
        } else if let Some(p) = &mut self.pending
            && p.text.len().saturating_add(1 + d.text.len()) <= self.options.max_record_bytes
        {
            p.text.push('\n');
            p.text.push_str(&d.text);
            p.decode_error |= d.replaced;
        } else {
            // Either the record before is full (it is emitted as truncated and this line
            // begins the rest), or a continuation with nothing before it to continue (say,
            // the file was cut).
            let continued = match self.pending.take() {
                Some(full) => {
                    self.emit_multi(full, true, emit);
                    true
                }
                None => false,
            };
            self.pending = Some(Pending {
                offset,
                text: d.text.into_owned(),
                decode_error: d.replaced,
                continued,
            });
        }
    }

    /// Emits the record still waiting for continuation lines (end of file, or idle).
    pub fn flush(&mut self, emit: &mut dyn FnMut(&Record<'_>)) {
        let Some(p) = self.pending.take() else { return };
        self.emit_multi(p, false, emit);
    }

    /// After a panic inside this parser (a bug, met on some line): forgets what earlier lines
    /// had built up (a pending record, SASL sessions) so that the next line starts clean, and
    /// emits one `parse_error` record for the `len` bytes from `offset` that were lost. Their
    /// text is withheld: it never went through redaction.
    pub fn recover(&mut self, offset: u64, len: u64, emit: &mut dyn FnMut(&Record<'_>)) {
        self.pending = None;
        self.sessions = Sessions::default();
        let rec = Record {
            source: &self.source,
            timestamp: self.inferred_time(),
            time_inferred: true,
            message: Cow::Owned(format!(
                "[{len} bytes not shown: the parser failed on them]"
            )),
            offset,
            action: Cow::Borrowed("unparsed"),
            outcome: Outcome::Unknown,
            parse_error: Some(Cow::Borrowed(
                "internal error: the parser failed on these bytes; their text is withheld because it was not redacted",
            )),
            decode_error: false,
            truncated: false,
            fields: Fields::default(),
        };
        emit(&rec);
    }

    fn starts_record(&mut self, text: &str) -> bool {
        match self.source.kind {
            Kind::Senderlog => {
                if kinds::senderlog::clock_prefix(text).is_some() {
                    self.prefixed = true;
                    true
                } else {
                    !self.prefixed || kinds::senderlog::id_prefix(text)
                }
            }
            _ => {
                trace::record_start(text).is_some()
                    || text.starts_with(trace::REGISTRY_START)
                    || (self.pending.as_ref().is_some_and(|p| {
                        // the last line only: scanning all of a long record per line would
                        // be quadratic
                        p.text.starts_with(trace::REGISTRY_START)
                            && p.text.rsplit('\n').next().is_some_and(is_dash_rule)
                    }))
            }
        }
    }

    fn emit_single(
        &mut self,
        offset: u64,
        text: Cow<'_, str>,
        decode_error: bool,
        emit: &mut dyn FnMut(&Record<'_>),
    ) {
        let shape: Shape<'_> = match self.source.kind {
            Kind::Acceptlog => kinds::acceptlog::parse(&text),
            Kind::Inlog => kinds::inlog::parse(&text),
            Kind::Outlog | Kind::Outlocallog => kinds::delivery::parse(&text),
            Kind::Faillog => kinds::faillog::parse(&text),
            Kind::Pop3log => kinds::pop3log::parse(&text),
            Kind::Imap4log => kinds::imap4log::parse(&text),
            Kind::Maildblog => kinds::maildblog::parse(&text),
            Kind::Viruslog => Err("viruslog is read as .RCP/.MSG pairs, not as lines"),
            // Multi-line kinds go through emit_multi; should one ever get here, it is shipped
            // as unparsed text rather than bringing the parser down.
            Kind::Receivelog | Kind::Receivepop3 | Kind::Receiveimap4 | Kind::Senderlog => {
                Err("multi-line kind read as single lines")
            }
        };
        let rec = self.build(offset, &text, None, shape, decode_error, None);
        emit(&rec);
    }

    fn emit_multi(&mut self, p: Pending, truncated: bool, emit: &mut dyn FnMut(&Record<'_>)) {
        let redact = self.options.redact;
        let (shape, redacted, clock) = if p.continued {
            // The middle of a cut record: no shape to parse, and its time is inferred.
            (Err(CUT_CONTINUATION), None, None)
        } else if self.source.kind == Kind::Senderlog {
            let clock = kinds::senderlog::clock_prefix(&p.text).map(|(c, _)| c);
            let (s, r) = kinds::senderlog::parse(&p.text, &mut self.sessions, redact);
            (s, r, clock)
        } else {
            let (s, r) = trace::parse(self.source.kind, &p.text, &mut self.sessions, redact);
            (s, r, None)
        };
        let mut rec = self.build(p.offset, &p.text, redacted, shape, p.decode_error, clock);
        rec.truncated = truncated;
        emit(&rec);
    }

    fn build<'a>(
        &'a mut self,
        offset: u64,
        text: &'a str,
        redacted: Option<String>,
        shape: Shape<'a>,
        decode_error: bool,
        clock: Option<(u32, u32, u32, u32)>,
    ) -> Record<'a> {
        let (mut parsed, parse_error) = match shape {
            Ok(p) => (Some(p), None),
            Err(e) => (None, Some(Cow::Borrowed(e))),
        };
        let message = match redacted.or_else(|| parsed.as_mut().and_then(|p| p.redacted.take())) {
            Some(r) => Cow::Owned(r),
            // Text that did not parse keeps its raw words: mask whatever looks like a
            // credential in it, since no shape says where one would be.
            None if parse_error.is_some() && self.options.redact => redact::scrub_unparsed(text),
            None => Cow::Borrowed(text),
        };
        let own_time = match (&parsed, clock) {
            (Some(p), _) if p.time.is_some() => p.time,
            (_, Some((h, m, s, ms))) => Some(LocalTime {
                date: self.file_day(),
                hour: h,
                minute: m,
                second: s,
                milli: ms,
            }),
            _ => None,
        };
        let (timestamp, time_inferred) = match own_time {
            Some(t) => {
                let ts = self.clock.resolve(&t);
                self.last_time = Some(ts);
                (ts, false)
            }
            None => (self.inferred_time(), true),
        };
        let (action, outcome, fields) = match parsed {
            Some(p) => (p.action, p.outcome.unwrap_or(Outcome::Unknown), p.fields),
            None => (
                Cow::Borrowed("unparsed"),
                Outcome::Unknown,
                Fields::default(),
            ),
        };
        Record {
            source: &self.source,
            timestamp,
            time_inferred,
            message,
            offset,
            action,
            outcome,
            parse_error,
            decode_error,
            truncated: false,
            fields,
        }
    }

    fn file_day(&self) -> Date {
        match self.file_date {
            Some((d, _)) => d,
            None => today(self.clock.zone()),
        }
    }

    /// The previous record's time, else the file's date at 00:00 (or its hour, for hourly
    /// senderlog files).
    fn inferred_time(&self) -> Timestamp {
        if let Some(t) = self.last_time {
            return t;
        }
        let hour = self.file_date.and_then(|(_, h)| h).unwrap_or(0);
        self.clock.resolve(&LocalTime {
            date: self.file_day(),
            hour,
            minute: 0,
            second: 0,
            milli: 0,
        })
    }
}

fn is_dash_rule(line: &str) -> bool {
    let t = line.trim();
    t.len() >= 3 && t.bytes().all(|b| b == b'-')
}

fn today(zone: Zone) -> Date {
    use chrono::{Datelike, TimeZone, Utc};
    let now = Utc::now();
    let d = match zone {
        Zone::Named(tz) => tz.from_utc_datetime(&now.naive_utc()).date_naive(),
        Zone::Local => chrono::Local
            .from_utc_datetime(&now.naive_utc())
            .date_naive(),
    };
    // chrono's date is always valid; the fallback only keeps this free of a panic path.
    Date::new(d.year(), d.month(), d.day()).unwrap_or(Date {
        year: 1970,
        month: 1,
        day: 1,
    })
}

/// Parses a whole in-memory file: every record, in order. For tests and one-shot use.
pub fn parse_bytes(
    source: Source,
    options: ParseOptions,
    bytes: &[u8],
    emit: &mut dyn FnMut(&Record<'_>),
) {
    let mut p = FileParser::new(source, options);
    let mut offset = 0u64;
    for line in crate::lines::Lines::new(bytes) {
        p.push_line(offset, line.bytes, emit);
        offset = line.end;
    }
    p.flush(emit);
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Out {
        message: String,
        truncated: bool,
        time_inferred: bool,
        parse_error: Option<String>,
        json: String,
    }

    fn parse_all(kind: Kind, options: ParseOptions, bytes: &[u8]) -> Vec<Out> {
        let source = Source::new("H", kind, "/m/receivelog/H/171130.log");
        let mut out = Vec::new();
        parse_bytes(source, options, bytes, &mut |r| {
            out.push(Out {
                message: r.message.to_string(),
                truncated: r.truncated,
                time_inferred: r.time_inferred,
                parse_error: r.parse_error.as_deref().map(str::to_string),
                json: r.to_json(),
            })
        });
        out
    }

    /// A receivelog record that never ends (5 MiB of continuation lines) is cut into records
    /// of at most `max_record_bytes`, all but the last flagged, and no byte of text is lost.
    #[test]
    fn never_ending_record_is_cut_at_max_record_bytes() {
        let options = ParseOptions::default();
        let max = options.max_record_bytes;
        let mut lines = vec!["[30/Nov/2017:08:20:44], 0145a008, 250-first".to_string()];
        let mut total = lines[0].len();
        let mut i = 0u64;
        while total < 5 * 1024 * 1024 {
            let l = format!("250-{i:096}");
            total += l.len() + 2;
            lines.push(l);
            i += 1;
        }
        let bytes = lines.join("\r\n") + "\r\n";
        let recs = parse_all(Kind::Receivelog, options, bytes.as_bytes());

        // every continuation line is 100 bytes; a record holds k of them with k-1 newlines
        let line_len = lines[1].len();
        assert_eq!(line_len, 100);
        let per_record = (max + 1) / (line_len + 1);
        let first_holds = 1 + (max - lines[0].len()) / (line_len + 1);
        let rest = lines.len() - first_holds;
        let expected = 1 + rest.div_ceil(per_record);
        assert_eq!(recs.len(), expected);
        assert!(recs.len() >= 5, "{} records", recs.len());
        for (n, r) in recs.iter().enumerate() {
            assert!(
                r.message.len() <= max,
                "record {n}: {} bytes",
                r.message.len()
            );
            let last = n + 1 == recs.len();
            assert_eq!(r.truncated, !last, "record {n}");
            assert_eq!(r.json.contains(r#""truncated":true"#), !last, "record {n}");
            if n > 0 {
                assert!(r.time_inferred, "record {n}");
                assert_eq!(r.parse_error.as_deref(), Some(CUT_CONTINUATION));
            }
        }
        assert!(recs[0].parse_error.is_none());
        let joined: Vec<&str> = recs.iter().map(|r| r.message.as_str()).collect();
        assert_eq!(joined.join("\n"), lines.join("\n"));
    }

    /// Issue 14: a client line that is a space and a CP932 character panicked in the
    /// redaction ("byte index is not a char boundary"), in every protocol trace and in
    /// senderlog's `SendMailMess:` lines.
    #[test]
    fn space_then_cp932_in_client_lines_parses_in_every_trace_kind() {
        let t = b"[30/Nov/2017:08:20:44], 0145a008, ";
        let cases: [(Kind, Vec<u8>); 4] = [
            (
                Kind::Receivelog,
                [&t[..], b"MAIL FROM:<a@b>\r\n \x82\xa0x\r\n"].concat(),
            ),
            (
                Kind::Receivepop3,
                [&t[..], b"USER bob\r\n \x93\xfa\r\n"].concat(),
            ),
            (
                Kind::Receiveimap4,
                [&t[..], b"a1 SELECT x\r\n  \x91\x8b\x8c\xfb\r\n"].concat(),
            ),
            (
                Kind::Senderlog,
                b"[08:22:12:001] [B0000097587] SendMailMess: \x82\xa0\r\n".to_vec(),
            ),
        ];
        for (kind, bytes) in cases {
            let recs = parse_all(kind, ParseOptions::default(), &bytes);
            assert_eq!(recs.len(), 1, "{kind:?}");
            assert!(
                recs[0].message.contains('\u{3042}')
                    || recs[0].message.contains('\u{65e5}')
                    || recs[0].message.contains('\u{7a93}'),
                "{kind:?}: {}",
                recs[0].message
            );
        }
    }

    /// After a cut, the next real record start begins a normal record again.
    #[test]
    fn record_after_a_cut_parses_normally() {
        let options = ParseOptions {
            max_record_bytes: 100,
            ..ParseOptions::default()
        };
        let text = "[30/Nov/2017:08:20:44], 0145a008, 250-a\r\n250-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\r\n250-cccccccccccccccccccccccccccccccccccccccccccccccccccc\r\n[30/Nov/2017:08:20:45], 0145a008, QUIT\r\n";
        let recs = parse_all(Kind::Receivelog, options, text.as_bytes());
        assert_eq!(recs.len(), 3);
        assert!(recs[0].truncated && !recs[1].truncated && !recs[2].truncated);
        assert_eq!(recs[2].message, "[30/Nov/2017:08:20:45], 0145a008, QUIT");
        assert!(recs[2].parse_error.is_none() && !recs[2].time_inferred);
    }
}
