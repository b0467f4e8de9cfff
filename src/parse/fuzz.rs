//! A deterministic mutation fuzzer that runs on stable Rust (no cargo-fuzz, no nightly).
//!
//! Log-shaped inputs are built from the seed lines in `fuzz/seeds/<kind>.log` (real lines of
//! the example mail folder and the shared samples) by byte flips, insertions and deletions,
//! splices of lines of other kinds, CP932 multi-byte characters at word boundaries, spaces
//! before words, very long tokens, CR/LF/NUL, base64 lines and credential verbs. Every kind's
//! [`FileParser`] is fed (viruslog through the quarantine path with mutated `.RCP`/`.MSG`
//! bytes); every record is written with the JSON writer and read back with serde_json; the
//! redaction helpers and the checkpoint loader are fed directly. Each input runs under
//! `catch_unwind`. `examples/fuzz.rs` is the command line; a small run is a unit test.

use std::borrow::Cow;
use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Mutex;
use std::time::Instant;

use crate::checkpoint;
use crate::decode::Encoding;
use crate::kind::Kind;
use crate::parse::{DEFAULT_MAX_RECORD_BYTES, FileParser, ParseOptions, quarantine, redact};
use crate::record::{Record, Source, json};

/// xorshift64*: tiny, deterministic, good enough to pick mutations.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        // never zero, which xorshift cannot leave
        Rng((seed ^ 0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-ish in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        let Ok(n64) = u64::try_from(n) else { return 0 };
        if n64 == 0 {
            return 0;
        }
        usize::try_from(self.next_u64() % n64).unwrap_or(0)
    }

    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

fn seed_file(kind: Kind) -> &'static [u8] {
    match kind {
        Kind::Acceptlog => include_bytes!("../../fuzz/seeds/acceptlog.log"),
        Kind::Inlog => include_bytes!("../../fuzz/seeds/inlog.log"),
        Kind::Receivelog => include_bytes!("../../fuzz/seeds/receivelog.log"),
        Kind::Outlog => include_bytes!("../../fuzz/seeds/outlog.log"),
        Kind::Outlocallog => include_bytes!("../../fuzz/seeds/outlocallog.log"),
        Kind::Faillog => include_bytes!("../../fuzz/seeds/faillog.log"),
        Kind::Senderlog => include_bytes!("../../fuzz/seeds/senderlog.log"),
        Kind::Pop3log => include_bytes!("../../fuzz/seeds/pop3log.log"),
        Kind::Receivepop3 => include_bytes!("../../fuzz/seeds/receivepop3.log"),
        Kind::Imap4log => include_bytes!("../../fuzz/seeds/imap4log.log"),
        Kind::Receiveimap4 => include_bytes!("../../fuzz/seeds/receiveimap4.log"),
        Kind::Maildblog => include_bytes!("../../fuzz/seeds/maildblog.log"),
        Kind::Viruslog => include_bytes!("../../fuzz/seeds/viruslog.log"),
    }
}

const MSG_SEED: &[u8] = include_bytes!("../../fuzz/seeds/viruslog.msg");

fn lines_of(b: &[u8]) -> Vec<Vec<u8>> {
    b.split(|&c| c == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

/// CP932 characters (and broken halves of them), other encodings' bytes.
const MULTIBYTE: &[&[u8]] = &[
    b"\x82\xa0",
    b"\x93\xfa",
    b"\x91\x8b\x8c\xfb",
    b"\x81",
    b"\x82",
    b"\xa0",
    b"\xef\xbc",
    b"\xe3\x81\x82",
    b"\xe7\xaa\x93",
    b"\x1b$B",
    b"\x1b(B",
    b"\xff",
    b"\xc3",
];

/// Words that change what the parser and the redaction do.
const WORDS: &[&[u8]] = &[
    b"AUTH LOGIN",
    b"AUTH PLAIN ",
    b"AUTH NTLM ",
    b"AUTH XOAUTH2 ",
    b"AUTH CRAM-MD5",
    b"AUTH ",
    b"PASS ",
    b"APOP u ",
    b"USER bob",
    b"a LOGIN u p",
    b"A LOGIN ",
    b"a1 LOGIN {5}",
    b"{3+}",
    b"{99999999999999999999}",
    b"~{4}",
    b"\"",
    b"AUTHENTICATE PLAIN",
    b"334 ",
    b"+ ",
    b"+OK",
    b"354 go ahead",
    b"*",
    b".",
    b"DONE",
    b"235 ok",
    b"500 5.5.2 command unrecognized: \"",
    b"SendMailMess:",
    b"[08:22:11:705] ",
    b"[08:22:11] ",
    b"[B0000097587] ",
    b"[B0000097587-R0001] ",
    b"[           ] ",
    b"[30/Nov/2017:08:20:44], 0145a008, ",
    b"[30/Nov/2017:08:20:44], 00000000, ",
    b"[30/Nov/2017:08:20:44]",
    b"---- regestry ----",
    b"-------------------",
    b" from ",
    b" sent on ",
    b" send fail on ",
    b"<B0000097403@mx> ",
    b",<B0000097586>,ok",
    b", Client accept now.",
    b"=?iso-2022-jp?b?GyRCRTpJVSVVJSElJCVrJE4kNDBGRmIbKEI=?=",
    b"=?UTF-8?Q?=E3=81",
    b"=?",
    b"?=",
    b"Subject: ",
    b"Message-ID: <",
    b"Return-path: ",
    b"Recipient: ",
    b"  ------------ warning ------------",
    b"[IN=",
    b"[maildb=",
];

const BASE64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// A position where a word starts (after a space, or 0), from a random place on.
fn word_start(rng: &mut Rng, v: &[u8]) -> usize {
    let mut p = rng.below(v.len() + 1);
    while p > 0 && p < v.len() && v[p - 1] != b' ' {
        p += 1;
    }
    p.min(v.len())
}

fn insert(v: &mut Vec<u8>, at: usize, what: &[u8]) {
    let at = at.min(v.len());
    v.splice(at..at, what.iter().copied());
}

/// One to four mutations of `base`; `pool` holds lines of every kind for splices.
// Long on purpose: one `match` over the sixteen kinds of mutation, each a few lines; apart they
// would be harder to compare.
pub fn mutate(rng: &mut Rng, base: &[u8], pool: &[Vec<u8>]) -> Vec<u8> {
    let mut v = base.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = v.len();
        match rng.below(16) {
            0 if len > 0 => {
                let i = rng.below(len);
                v[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                v[i] = u8::try_from(rng.below(256)).unwrap_or(0);
            }
            2 => {
                let n = 1 + rng.below(8);
                let bytes: Vec<u8> = (0..n)
                    .map(|_| u8::try_from(rng.below(256)).unwrap_or(0))
                    .collect();
                let at = rng.below(len + 1);
                insert(&mut v, at, &bytes);
            }
            3 if len > 0 => {
                let a = rng.below(len);
                let b = (a + 1 + rng.below(16)).min(len);
                v.drain(a..b);
            }
            4 => {
                let other = rng.pick(pool);
                let a = rng.below(other.len() + 1);
                let b = a + rng.below(other.len() - a + 1);
                let seg = &other[a..b];
                if rng.one_in(2) {
                    let at = rng.below(len + 1);
                    v.truncate(at);
                    v.extend_from_slice(seg);
                } else {
                    let at = rng.below(len + 1);
                    insert(&mut v, at, seg);
                }
            }
            5 => {
                let at = word_start(rng, &v);
                let c = *rng.pick(MULTIBYTE);
                insert(&mut v, at, c);
            }
            6 => {
                let at = word_start(rng, &v);
                let n = 1 + rng.below(3);
                insert(&mut v, at, &b"   "[..n]);
            }
            7 if rng.one_in(8) => {
                let n = if rng.one_in(32) {
                    64 * 1024 + rng.below(8192)
                } else {
                    256 + rng.below(8192)
                };
                let c = *rng.pick(&[b'A', b'=', b'[', b' ', 0x82]);
                let at = rng.below(len + 1);
                insert(&mut v, at, &vec![c; n]);
            }
            8 => {
                let at = rng.below(len + 1);
                const CTRL: &[&[u8]] = &[b"\r", b"\n", b"\0", b"\r\r\n", b"\r\n\r\n", b"\t"];
                let c = *rng.pick(CTRL);
                insert(&mut v, at, c);
            }
            9 => {
                // a base64 token, alone or after the trace prefix
                let n = 4 + rng.below(120);
                let mut tok: Vec<u8> = (0..n).map(|_| *rng.pick(BASE64)).collect();
                let pad = rng.below(3);
                tok.extend(std::iter::repeat_n(b'=', pad));
                let keep = v
                    .windows(2)
                    .rposition(|w| w == b", " || w == b"s:")
                    .map_or(0, |p| p + 2);
                v.truncate(if rng.one_in(2) { keep } else { 0 });
                v.extend_from_slice(&tok);
            }
            10 => {
                let at = word_start(rng, &v);
                let w = *rng.pick(WORDS);
                insert(&mut v, at, w);
            }
            11 if len > 0 => v.truncate(rng.below(len)),
            12 if len > 0 => {
                let a = rng.below(len);
                let b = (a + 1 + rng.below(32)).min(len);
                let seg = v[a..b].to_vec();
                insert(&mut v, b, &seg);
            }
            14 => {
                // spaces, then a multi-byte character, where a word starts: the shape that
                // broke offset arithmetic in the redaction
                let at = word_start(rng, &v);
                let mut w = b"   "[..1 + rng.below(3)].to_vec();
                let c = MULTIBYTE[rng.below(MULTIBYTE.len())];
                w.extend_from_slice(c);
                insert(&mut v, at, &w);
            }
            13 if len > 0 => {
                let i = rng.below(len);
                if v[i].is_ascii_digit() {
                    v[i] = b'0' + u8::try_from(rng.below(10)).unwrap_or(0);
                } else if v[i].is_ascii_alphabetic() {
                    v[i] ^= 0x20;
                }
            }
            _ => {
                let w = *rng.pick(WORDS);
                let at = rng.below(len + 1);
                insert(&mut v, at, w);
            }
        }
    }
    v
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Config {
    pub lines_per_kind: u64,
    pub seed: u64,
    /// One kind only (its inputs are the same as in a run of all kinds).
    pub kind: Option<Kind>,
    /// Print at most this many panics in full.
    pub show_panics: usize,
}

/// What one row of the run did.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub name: &'static str,
    pub lines: u64,
    pub records: u64,
    pub panics: u64,
    pub secs: f64,
}

impl Stats {
    pub fn lines_per_sec(&self) -> f64 {
        if self.secs > 0.0 {
            // display only: u64 to f64 may round
            #[allow(clippy::cast_precision_loss)]
            let l = self.lines as f64;
            l / self.secs
        } else {
            0.0
        }
    }
}

thread_local! {
    /// Set while this thread runs fuzz inputs: its panics are recorded, not printed.
    static FUZZING: Cell<bool> = const { Cell::new(false) };
}

static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

fn install_hook() {
    let prev = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        if FUZZING.get() {
            let msg = format!("{info}");
            if let Ok(mut g) = LAST_PANIC.lock() {
                *g = Some(msg);
            }
        } else {
            prev(info);
        }
    }));
}

/// `f` under `catch_unwind`; `Err(message)` if it panicked.
fn guarded(f: impl FnOnce()) -> Result<(), String> {
    FUZZING.set(true);
    let r = panic::catch_unwind(AssertUnwindSafe(f));
    FUZZING.set(false);
    r.map_err(|_| {
        LAST_PANIC
            .lock()
            .ok()
            .and_then(|mut g| g.take())
            .unwrap_or_else(|| "panic".to_string())
    })
}

/// Every record through the JSON writer, read back by serde_json: it must parse and its
/// `message` must be the record's message.
fn check_record(r: &Record<'_>, options: &ParseOptions, buf: &mut Vec<u8>) {
    #[derive(serde::Deserialize)]
    struct Back<'a> {
        #[serde(borrow)]
        message: Cow<'a, str>,
    }
    buf.clear();
    r.write_json(buf);
    let back: Back<'_> = match serde_json::from_slice(buf) {
        Ok(b) => b,
        Err(e) => panic!(
            "JSON writer output does not parse ({e}): {}",
            String::from_utf8_lossy(buf)
        ),
    };
    assert_eq!(back.message, r.message, "message does not round-trip");
    // Longer than the limit is allowed only for one physical line (the tailer bounds those)
    // or where a mask replaced something shorter.
    if r.truncated && r.message.len() > options.max_record_bytes {
        assert!(
            !r.message.contains('\n') || r.message.contains(redact::MASK),
            "truncated record of several lines longer than max_record_bytes"
        );
    }
}

/// The redaction helpers and the string writer on one line of text.
fn check_helpers(text: &str, x: &mut redact::Exchange, buf: &mut Vec<u8>) {
    let _ = redact::scrub_unparsed(text);
    let _ = redact::scrub_echo(text);
    let _ = redact::looks_like_secret_token(text);
    if text.as_bytes().first().is_some_and(u8::is_ascii_digit) || text.starts_with('+') {
        x.server_line(text);
    } else {
        let _ = x.client_line(text);
    }
    buf.clear();
    json::write_str(buf, text);
    let back: String = match serde_json::from_slice(buf) {
        Ok(s) => s,
        Err(e) => panic!("write_str output does not parse: {e}"),
    };
    assert_eq!(back, text, "write_str does not round-trip");
}

const FILE_NAMES: &[&str] = &[
    "171130.log",
    "171130_09.log",
    "notes.log",
    "991231.log",
    "000229.log",
];

fn random_options(rng: &mut Rng) -> ParseOptions {
    ParseOptions {
        encoding: *rng.pick(&[Encoding::Cp932, Encoding::Utf8, Encoding::Auto]),
        redact: !rng.one_in(16),
        max_record_bytes: if rng.one_in(4) {
            16 + rng.below(4096)
        } else {
            DEFAULT_MAX_RECORD_BYTES
        },
        ..ParseOptions::default()
    }
}

/// Lines for one input: a run of seed lines from a random place (so that exchanges keep
/// their order), about half of them mutated.
fn input_lines(rng: &mut Rng, seeds: &[Vec<u8>], pool: &[Vec<u8>], n: usize) -> Vec<Vec<u8>> {
    let mut at = rng.below(seeds.len());
    (0..n)
        .map(|_| {
            let base = if rng.one_in(8) {
                rng.pick(seeds)
            } else {
                at = (at + 1) % seeds.len();
                &seeds[at]
            };
            if rng.one_in(2) {
                mutate(rng, base, pool)
            } else {
                base.clone()
            }
        })
        .collect()
}

fn escaped(b: &[u8]) -> String {
    let shown = &b[..b.len().min(4096)];
    let mut s = shown.escape_ascii().to_string();
    if shown.len() < b.len() {
        s.push_str(&format!("... ({} bytes in all)", b.len()));
    }
    s
}

struct Row<'c> {
    cfg: &'c Config,
    stats: Stats,
    shown: usize,
}

impl Row<'_> {
    fn panicked(&mut self, what: &str, input: &[u8], msg: &str) {
        self.stats.panics += 1;
        if self.shown < self.cfg.show_panics {
            self.shown += 1;
            eprintln!(
                "PANIC in {} ({what}): {msg}\n  input: \"{}\"",
                self.stats.name,
                escaped(input)
            );
        }
    }
}

fn fuzz_lines(kind: Kind, rng: &mut Rng, pool: &[Vec<u8>], row: &mut Row<'_>) {
    let seeds = lines_of(seed_file(kind));
    let mut buf = Vec::with_capacity(1024);
    let mut buf2 = Vec::with_capacity(1024);
    while row.stats.lines < row.cfg.lines_per_kind {
        let left = row.cfg.lines_per_kind - row.stats.lines;
        let n = (1 + rng.below(64)).min(usize::try_from(left).unwrap_or(64));
        let lines = input_lines(rng, &seeds, pool, n);
        let mut file = Vec::new();
        for l in &lines {
            file.extend_from_slice(l);
            file.push(b'\n');
        }
        let options = random_options(rng);
        let name = *rng.pick(FILE_NAMES);
        let source = Source::new("H", kind, &format!("/m/{}/H/{name}", kind.name()));
        let mut records = 0u64;
        let r = guarded(|| {
            let mut p = FileParser::new(source, options);
            let mut offset = 0u64;
            let mut emit = |rec: &Record<'_>| {
                records += 1;
                check_record(rec, &options, &mut buf);
            };
            for line in crate::lines::Lines::new(&file) {
                p.push_line(offset, line.bytes, &mut emit);
                offset = line.end;
            }
            p.flush(&mut emit);
            let mut x = redact::Exchange::default();
            for l in &lines {
                check_helpers(&String::from_utf8_lossy(l), &mut x, &mut buf2);
            }
        });
        row.stats.lines += u64::try_from(n).unwrap_or(0);
        row.stats.records += records;
        if let Err(msg) = r {
            row.panicked("lines", &file, &msg);
        }
    }
}

fn fuzz_quarantine(rng: &mut Rng, pool: &[Vec<u8>], row: &mut Row<'_>) {
    let seeds = lines_of(seed_file(Kind::Viruslog));
    let mut buf = Vec::new();
    let source = Source::new("H", Kind::Viruslog, "/m/viruslog/B0000097594.RCP");
    while row.stats.lines < row.cfg.lines_per_kind {
        let n = 1 + rng.below(12);
        let mut rcp = Vec::new();
        for l in input_lines(rng, &seeds, pool, n) {
            rcp.extend_from_slice(&l);
            rcp.push(b'\n');
        }
        let mut msg = MSG_SEED.to_vec();
        for _ in 0..rng.below(4) {
            msg = mutate(rng, &msg, pool);
        }
        let with_msg = !rng.one_in(8);
        let options = random_options(rng);
        let step = 1 + rng.below(4096);
        let mut records = 0u64;
        let r = guarded(|| {
            let m = with_msg.then_some(quarantine::Message {
                path: "/m/viruslog/B0000097594.MSG",
                bytes: &msg,
            });
            quarantine::record(&source, &options, &rcp, 0, m, &mut |rec| {
                records += 1;
                check_record(rec, &options, &mut buf);
            });
            let whole = quarantine::summarize(&msg[..], options.encoding).ok();
            let chunked = quarantine::summarize(Dribble(&msg, step), options.encoding).ok();
            assert_eq!(whole, chunked, "summary depends on read sizes");
            let (cut, _) = quarantine::read_rcp(&rcp[..], step).unwrap_or_default();
            assert!(cut.len() <= step);
        });
        row.stats.lines += 1;
        row.stats.records += records;
        if let Err(e) = r {
            let mut input = rcp.clone();
            input.extend_from_slice(b"\n--- .MSG ---\n");
            input.extend_from_slice(&msg);
            row.panicked("quarantine", &input, &e);
        }
    }
}

/// Reads at most `.1` bytes per call.
struct Dribble<'a>(&'a [u8], usize);

impl std::io::Read for Dribble<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.1.min(buf.len()).min(self.0.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

fn valid_checkpoint() -> Vec<u8> {
    let snap = checkpoint::Snapshot {
        version: 1,
        written_ms: 1_512_000_000_000,
        generation: 3,
        files: vec![checkpoint::FileState {
            path: "C:\\mail\\receivelog\\MAILSV01\\171130.log".into(),
            kind: "receivelog".into(),
            host: "MAILSV01".into(),
            fingerprint: "0123456789abcdef".into(),
            fp_len: 256,
            offset: 2219,
            size: 2219,
            updated_ms: 1_512_000_000_000,
        }],
        sinks: [(
            "es".to_string(),
            checkpoint::SinkState {
                last_ack_ms: 1,
                acked_records: 2,
                dead_lettered: 0,
            },
        )]
        .into_iter()
        .collect(),
    };
    serde_json::to_vec(&snap).unwrap_or_default()
}

fn with_checksum(body: &[u8]) -> Vec<u8> {
    let mut v = body.to_vec();
    let sum = xxhash_rust::xxh3::xxh3_64(body);
    v.extend_from_slice(format!("\nxxh3:{sum:016x}\n").as_bytes());
    v
}

fn fuzz_checkpoint(rng: &mut Rng, row: &mut Row<'_>) {
    let body = valid_checkpoint();
    let pool = vec![
        body.clone(),
        b"{\"version\":1,\"files\":[],\"written_ms\":0}".to_vec(),
    ];
    while row.stats.lines < row.cfg.lines_per_kind {
        let mut b = body.clone();
        for _ in 0..1 + rng.below(3) {
            b = mutate(rng, &b, &pool);
        }
        // with a matching checksum half of the time, so that the JSON is really parsed
        let data = if rng.one_in(2) {
            with_checksum(&b)
        } else {
            let mut d = with_checksum(&body);
            d = mutate(rng, &d, &pool);
            d
        };
        let mut ok = false;
        let r = guarded(|| {
            if let Ok(s) = checkpoint::decode_checked(&data) {
                ok = true;
                let again = serde_json::to_vec(&s).unwrap_or_default();
                assert!(checkpoint::decode_checked(&with_checksum(&again)).is_ok());
            }
            // the same bytes as a journal, and as a journal line after a valid header
            let mut journal =
                checkpoint::journal::line(&serde_json::json!({"base": 3})).unwrap_or_default();
            let _ = checkpoint::journal::decode(&data);
            journal.extend_from_slice(&data);
            // and the mutated body as a journal line with a matching checksum, so that
            // the delta's JSON is really parsed
            let sum = xxhash_rust::xxh3::xxh3_64(&b);
            journal.extend_from_slice(format!("\nxxh3:{sum:016x} ").as_bytes());
            journal.extend_from_slice(&b);
            journal.push(b'\n');
            let got = checkpoint::journal::decode(&journal);
            let mut snap = checkpoint::Snapshot::default();
            checkpoint::journal::replay(&mut snap, got.deltas);
        });
        row.stats.lines += 1;
        row.stats.records += u64::from(ok);
        if let Err(e) = r {
            row.panicked("checkpoint", &data, &e);
        }
    }
}

/// Runs every kind (or `cfg.kind`), then the checkpoint loader; calls `report` after each.
pub fn run(cfg: &Config, report: &mut dyn FnMut(&Stats)) -> Vec<Stats> {
    install_hook();
    let pool: Vec<Vec<u8>> = Kind::ALL
        .iter()
        .flat_map(|k| lines_of(seed_file(*k)))
        .collect();
    let mut out = Vec::new();
    for (i, kind) in Kind::ALL.iter().enumerate() {
        if cfg.kind.is_some_and(|k| k != *kind) {
            continue;
        }
        // one stream per kind, so `--kind K` sees the same inputs as a full run
        let mut rng = Rng::new(cfg.seed.wrapping_add(u64::try_from(i).unwrap_or(0) << 32));
        let mut row = Row {
            cfg,
            stats: Stats {
                name: kind.name(),
                ..Stats::default()
            },
            shown: 0,
        };
        let start = Instant::now();
        if *kind == Kind::Viruslog {
            fuzz_quarantine(&mut rng, &pool, &mut row);
        } else {
            fuzz_lines(*kind, &mut rng, &pool, &mut row);
        }
        row.stats.secs = start.elapsed().as_secs_f64();
        report(&row.stats);
        out.push(row.stats);
    }
    if cfg.kind.is_none() {
        let mut rng = Rng::new(cfg.seed.wrapping_add(99 << 32));
        let mut row = Row {
            cfg,
            stats: Stats {
                name: "checkpoint",
                ..Stats::default()
            },
            shown: 0,
        };
        let start = Instant::now();
        fuzz_checkpoint(&mut rng, &mut row);
        row.stats.secs = start.elapsed().as_secs_f64();
        report(&row.stats);
        out.push(row.stats);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A few thousand mutated lines per kind, in debug, so that `cargo test` runs the fuzzer.
    #[test]
    fn a_few_thousand_mutated_inputs_per_kind_do_not_panic() {
        let cfg = Config {
            lines_per_kind: 3000,
            seed: 20_261_201,
            kind: None,
            show_panics: 5,
        };
        let stats = run(&cfg, &mut |_| {});
        assert_eq!(stats.len(), Kind::ALL.len() + 1);
        for s in &stats {
            assert!(s.lines >= 3000, "{}: {} lines", s.name, s.lines);
            assert!(s.records > 0, "{}: no records", s.name);
            assert_eq!(s.panics, 0, "{}: {} panics", s.name, s.panics);
        }
    }

    #[test]
    fn same_seed_same_inputs() {
        let pool = vec![b"abc def".to_vec()];
        let run = |seed| {
            let mut r = Rng::new(seed);
            (0..50)
                .map(|_| mutate(&mut r, b"[30/Nov/2017:08:20:44], 0145a008, PASS x", &pool))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }
}
