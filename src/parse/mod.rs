//! Parse: decoded lines to records.
//!
//! A [`FileParser`] holds what one file's lines need from each other: the file's date for
//! time-only lines, the previous record's time, records that continue over several physical
//! lines, and SASL exchanges that span lines. It knows nothing of where the bytes come from.

pub mod kinds;
pub mod quarantine;
pub mod redact;
pub mod time;

use std::borrow::Cow;

use crate::decode::{Encoding, decode};
use crate::kind::Kind;
use crate::record::{Fields, Outcome, Record, Source};
use kinds::Shape;
use kinds::trace::{self, Sessions};
use time::{Clock, Date, LocalTime, Timestamp, Zone, date_from_file_name};

/// How lines are read: the same for every file of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseOptions {
    pub encoding: Encoding,
    pub zone: Zone,
    pub redact: bool,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            encoding: Encoding::Cp932,
            zone: Zone::default(),
            redact: true,
        }
    }
}

/// A record spanning several lines, waiting for the line that starts the next one.
#[derive(Debug)]
struct Pending {
    offset: u64,
    text: String,
    decode_error: bool,
}

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
            });
        } else if let Some(p) = &mut self.pending {
            p.text.push('\n');
            p.text.push_str(&d.text);
            p.decode_error |= d.replaced;
        } else {
            // A continuation with nothing before it to continue (say, the file was cut).
            self.pending = Some(Pending {
                offset,
                text: d.text.into_owned(),
                decode_error: d.replaced,
            });
        }
    }

    /// Emits the record still waiting for continuation lines (end of file, or idle).
    pub fn flush(&mut self, emit: &mut dyn FnMut(&Record<'_>)) {
        let Some(p) = self.pending.take() else { return };
        self.emit_multi(p, emit);
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
                        p.text.starts_with(trace::REGISTRY_START)
                            && p.text.lines().last().is_some_and(is_dash_rule)
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
            Kind::Receivelog | Kind::Receivepop3 | Kind::Receiveimap4 | Kind::Senderlog => {
                unreachable!("multi-line kinds go through emit_multi")
            }
        };
        let rec = self.build(offset, &text, None, shape, decode_error, None);
        emit(&rec);
    }

    fn emit_multi(&mut self, p: Pending, emit: &mut dyn FnMut(&Record<'_>)) {
        let redact = self.options.redact;
        let (shape, redacted, clock) = if self.source.kind == Kind::Senderlog {
            let clock = kinds::senderlog::clock_prefix(&p.text).map(|(c, _)| c);
            let (s, r) = kinds::senderlog::parse(&p.text, &mut self.sessions, redact);
            (s, r, clock)
        } else {
            let (s, r) = trace::parse(self.source.kind, &p.text, &mut self.sessions, redact);
            (s, r, None)
        };
        let rec = self.build(p.offset, &p.text, redacted, shape, p.decode_error, clock);
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
    Date::new(d.year(), d.month(), d.day()).expect("valid date")
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
    for line in crate::tail::lines::Lines::new(bytes) {
        p.push_line(offset, line.bytes, emit);
        offset = line.end;
    }
    p.flush(emit);
}
