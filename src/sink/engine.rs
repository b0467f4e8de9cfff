//! The delivery engine: the one place that decides what happens to a batch after a sink has
//! answered. A network sink only encodes a request from some of the batch's records
//! (`Requests::send`) and classifies the answer into an `Outcome`; the engine owns
//!
//! - retrying: backoff with jitter, or the server's `Retry-After` / `RetryInfo` (capped at
//!   `MAX_SERVER_DELAY`), forever (the files on disk are the buffer);
//! - splitting a request that is too large, or refused as a whole for its data, by halves (or
//!   the sink's own `split`) until the records at fault are alone;
//! - isolating refused records and writing them, with the reason, to the dead-letter file:
//!   once, in one all-or-nothing append per batch, retried in place until it is on disk (never
//!   by sending the batch again, which would dead-letter the same records twice);
//! - the per-sink request, retry and latency statistics.
//!
//! A delivery never fails: it returns once every record of the batch is stored or
//! dead-lettered. Records are referred to by their index in the batch (`Records`).

use std::borrow::Cow;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use super::dead_letter::DeadLetter;
use super::http::{AnswerError, redact_text};
use super::{Delivered, SinkError};
use crate::batch::Segment;
use crate::metrics::SinkStats;
use crate::warn_limit;

/// A server's retry delay is honoured up to this long.
pub const MAX_SERVER_DELAY: Duration = Duration::from_secs(300);

/// Which protocol's status an answer carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Http(u16),
    Grpc(tonic::Code),
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Code::Http(c) => write!(f, "HTTP {c}"),
            Code::Grpc(c) => write!(f, "gRPC {c:?}"),
        }
    }
}

/// What an answer refusing the whole request means for its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing is wrong with the data (busy, down, misconfigured): send it again later.
    Retry,
    /// The server refuses this data: split the request to find the records at fault.
    Refused,
}

/// What one request came to, as the sink read the answer. Positions in `PartlyRefused` and
/// `resend` are positions in the request's record set, not batch indices.
#[derive(Debug)]
pub enum Outcome {
    /// Every record of the request is stored.
    Delivered,
    /// No answer (connection refused, reset, timeout, encoding failure): nothing is known to
    /// be stored; retried.
    Transport(String),
    /// An answer that could not be read (too large, cut off): retried.
    Unreadable(AnswerError),
    /// The whole request was answered with a failure status.
    Status {
        code: Code,
        excerpt: String,
        verdict: Verdict,
        /// The delay the server asked for (`Retry-After`, gRPC `RetryInfo`).
        after: Option<Duration>,
    },
    /// Credentials refused: retried, the records wait on disk until they are fixed.
    Auth { code: Code, excerpt: String },
    /// The request is over the server's size limit: split; one record alone is refused.
    TooLarge { code: Code, excerpt: String },
    /// Some records are refused for good; the others are stored, but `resend`, which go
    /// again: after a backoff when `wait` names why (ES items answered 429), at once when it
    /// is `None` (Loki: what a 400 did not name is pushed again, harmlessly).
    PartlyRefused {
        refused: Vec<(usize, String)>,
        resend: Vec<usize>,
        wait: Option<String>,
    },
    /// Stored, but for `rejected` records the server does not name (OTLP `partial_success`):
    /// every record of the request goes to the dead-letter file, `rejected` are counted.
    Unattributed { rejected: usize, reason: String },
}

impl Outcome {
    /// Whether the same request is worth sending again unchanged.
    pub fn retryable(&self) -> bool {
        match self {
            Outcome::Transport(_) | Outcome::Unreadable(_) | Outcome::Auth { .. } => true,
            Outcome::Status { verdict, .. } => *verdict == Verdict::Retry,
            Outcome::Delivered
            | Outcome::TooLarge { .. }
            | Outcome::PartlyRefused { .. }
            | Outcome::Unattributed { .. } => false,
        }
    }

    /// The delay the server asked for, if any.
    pub fn after(&self) -> Option<Duration> {
        match self {
            Outcome::Status { after, .. } => *after,
            _ => None,
        }
    }

    /// What logs and the dead-letter file say of it.
    /// What kind of fault, for telling repeated warnings apart: a retry storm of 503s is
    /// one warning, connection errors another.
    pub fn class(&self) -> String {
        match self {
            Outcome::Delivered => "delivered".into(),
            Outcome::Transport(_) => "transport".into(),
            Outcome::Unreadable(_) => "unreadable answer".into(),
            Outcome::Status { code, .. } => code.to_string(),
            Outcome::Auth { code, .. } => format!("auth {code}"),
            Outcome::TooLarge { .. } => "too large".into(),
            Outcome::PartlyRefused { .. } => "partly refused".into(),
            Outcome::Unattributed { .. } => "unattributed".into(),
        }
    }

    pub fn reason(&self) -> String {
        match self {
            Outcome::Delivered => "delivered".into(),
            Outcome::Transport(e) => e.clone(),
            Outcome::Unreadable(e) => e.to_string(),
            Outcome::Status { code, excerpt, .. } => format!("{code}: {excerpt}"),
            Outcome::Auth { code, excerpt } => format!(
                "authentication refused ({code}: {excerpt}); records wait on disk until the credentials are fixed"
            ),
            Outcome::TooLarge { code, excerpt } => {
                format!("{code}: too large for the server: {excerpt}")
            }
            Outcome::PartlyRefused { refused, .. } => {
                format!("{} records refused", refused.len())
            }
            Outcome::Unattributed { reason, .. } => reason.clone(),
        }
    }

    /// For `check` and `start`, which send nothing the engine splits: a refusal or auth
    /// failure is the configuration's fault; anything else may pass later.
    pub fn into_error(self, what: &str) -> SinkError {
        let why = self.reason();
        match self {
            Outcome::Auth { .. } => SinkError::Config(format!("{what}: {why}")),
            Outcome::Unreadable(source) => SinkError::Answer {
                what: what.to_string(),
                source,
            },
            o if o.retryable() => SinkError::Transient(format!("{what}: {why}")),
            _ => SinkError::Config(format!("{what}: refused: {why}")),
        }
    }
}

/// A batch as one sink sends it. The three network sinks implement this; the engine calls
/// `plan` once, then `send` for each request until every record is stored or refused.
pub trait Requests: Sync {
    /// The records to send, in requests (the sink's size limit), in order.
    fn plan(&self) -> Vec<Vec<usize>>;

    /// Sends one request of these records and classifies the answer.
    fn send(&self, set: &[usize]) -> impl Future<Output = Outcome> + Send;

    /// The segment (index in the batch) record `i` belongs to.
    fn segment(&self, i: usize) -> usize;

    /// Record `i` as the dead-letter file keeps it (JSON).
    fn dead_letter_json(&self, i: usize) -> Cow<'_, [u8]>;

    /// How to split a request of several records that was refused (`too_large` or for its
    /// data). Halves by default.
    fn split(&self, set: &[usize], _too_large: bool) -> Vec<Vec<usize>> {
        halves(set)
    }

    /// The dead-letter reason of one record refused alone.
    fn refusal_reason(&self, outcome: &Outcome) -> String {
        outcome.reason()
    }

    /// Records that cannot be sent at all (segment, bytes, reason): dead-lettered first.
    fn unsendable(&self) -> Vec<(usize, &[u8], String)> {
        Vec::new()
    }
}

pub fn halves(set: &[usize]) -> Vec<Vec<usize>> {
    let (a, b) = set.split_at(set.len() / 2);
    vec![a.to_vec(), b.to_vec()]
}

/// The records of a batch for one sink, by index: segment by segment, in order.
pub struct Records<'a> {
    pub idx: usize,
    pub batch: &'a [Arc<Segment>],
    /// (segment, record in segment) of each index
    refs: Vec<(u32, u32)>,
}

impl<'a> Records<'a> {
    pub fn new(idx: usize, batch: &'a [Arc<Segment>]) -> Records<'a> {
        let refs = batch
            .iter()
            .enumerate()
            .flat_map(|(s, seg)| {
                (0..seg.payloads[idx].records()).map(move |r| (s as u32, r as u32))
            })
            .collect();
        Records { idx, batch, refs }
    }

    pub fn len(&self) -> usize {
        self.refs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.refs.is_empty()
    }

    /// The encoded bytes of record `i`.
    pub fn record(&self, i: usize) -> &'a [u8] {
        let (s, r) = self.refs[i];
        self.batch[s as usize].payloads[self.idx].record(r as usize)
    }

    pub fn segment(&self, i: usize) -> usize {
        self.refs[i].0 as usize
    }

    /// Whether `set` is the whole batch (the plan's one request, never split).
    pub fn is_all(&self, set: &[usize]) -> bool {
        set.len() == self.refs.len()
    }

    pub fn all(&self) -> Vec<usize> {
        (0..self.refs.len()).collect()
    }
}

/// Exponential backoff with jitter, capped.
pub struct Backoff {
    attempt: u32,
    base: Duration,
    max: Duration,
}

impl Backoff {
    pub fn new(base: Duration, max: Duration) -> Backoff {
        Backoff {
            attempt: 0,
            base,
            max,
        }
    }

    pub fn next_delay(&mut self) -> Duration {
        let exp = self.base.saturating_mul(1u32 << self.attempt.min(16));
        self.attempt += 1;
        let capped = exp.min(self.max);
        // jitter in [capped/2, capped]
        let nanos = capped.as_nanos() as u64;
        Duration::from_nanos(nanos / 2 + (nanos / 2) * jitter_permille() / 1000)
    }

    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

fn jitter_permille() -> u64 {
    // No RNG dependency for this: the clock's nanoseconds are random enough for jitter.
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    u64::from(n % 1000)
}

/// The wait before trying again: the server's wish (capped, plus up to an eighth of jitter so
/// that shippers told the same second do not all come back at once), else the backoff.
pub fn delay(backoff: &mut Backoff, after: Option<Duration>) -> Duration {
    match after {
        Some(d) => {
            let d = d.min(MAX_SERVER_DELAY);
            d + d / 8 * u32::try_from(jitter_permille()).unwrap_or(0) / 1000
        }
        None => backoff.next_delay(),
    }
}

/// Waits before a retry, counting and logging it.
pub struct Retry<'a> {
    sink: &'a str,
    stats: &'a SinkStats,
    backoff: Backoff,
}

impl<'a> Retry<'a> {
    pub fn new(sink: &'a str, stats: &'a SinkStats) -> Retry<'a> {
        Retry {
            sink,
            stats,
            backoff: Backoff::new(Duration::from_millis(200), Duration::from_secs(30)),
        }
    }

    /// Counts the retry, logs it (limited per sink and `class` of fault: the first, then one
    /// line a minute with the count of those left out), and sleeps the delay.
    pub async fn wait(&mut self, class: &str, why: &str, after: Option<Duration>, records: usize) {
        self.stats.retries.fetch_add(1, Relaxed);
        let d = delay(&mut self.backoff, after);
        if let Some(repeated) = warn_limit::check("sink.retry", &format!("{} {class}", self.sink)) {
            tracing::warn!(sink = %self.sink, error = %redact_text(why), records, attempt = self.backoff.attempts(), retry_in = ?d, server_delay = after.is_some(), repeated, "delivery failed; will retry");
        }
        tokio::time::sleep(d).await;
    }

    pub fn reset(&mut self) {
        self.backoff.reset();
    }
}

/// Runs `attempt` until it succeeds, with the engine's retry policy: the file and stdout sinks,
/// which have no answer to classify.
pub async fn until_ok<F, Fut>(sink: &str, stats: &SinkStats, records: u64, mut attempt: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), SinkError>>,
{
    let mut retry = Retry::new(sink, stats);
    loop {
        stats.requests.fetch_add(1, Relaxed);
        stats.sent_records.fetch_add(records, Relaxed);
        let started = Instant::now();
        let r = attempt().await;
        stats.observe(started.elapsed());
        match r {
            Ok(()) => return,
            Err(e) => {
                stats.failed_requests.fetch_add(1, Relaxed);
                retry
                    .wait("write", &e.to_string(), None, records as usize)
                    .await;
            }
        }
    }
}

/// The engine of one network sink.
pub struct Engine {
    pub name: String,
    pub dead: Arc<DeadLetter>,
}

/// Refused records of one batch, as dead-letter lines waiting to be written together, and
/// the count per segment.
struct Refusals<'e> {
    sink: &'e str,
    lines: Vec<u8>,
    count: usize,
    first_reason: String,
    dead: Vec<u64>,
}

impl Refusals<'_> {
    fn note(&mut self, segment: usize, counted: bool, why: &str, record: &[u8]) {
        DeadLetter::encode(&mut self.lines, self.sink, why, record);
        if self.count == 0 {
            self.first_reason = why.to_string();
        }
        self.count += 1;
        if counted && let Some(d) = self.dead.get_mut(segment) {
            *d += 1;
        }
    }
}

impl Engine {
    pub fn new(name: &str, dead: Arc<DeadLetter>) -> Engine {
        Engine {
            name: name.to_string(),
            dead,
        }
    }

    /// Delivers a batch of `segments` segments: returns once every record is stored or
    /// written to the dead-letter file.
    pub async fn deliver<R: Requests>(
        &self,
        req: &R,
        segments: usize,
        stats: &SinkStats,
    ) -> Delivered {
        let mut refused = Refusals {
            sink: &self.name,
            lines: Vec::new(),
            count: 0,
            first_reason: String::new(),
            dead: vec![0u64; segments],
        };
        for (s, rec, why) in req.unsendable() {
            refused.note(s, true, &why, rec);
        }
        let mut work = req.plan();
        work.reverse();
        let mut retry = Retry::new(&self.name, stats);
        while let Some(set) = work.pop() {
            if set.is_empty() {
                continue;
            }
            stats.requests.fetch_add(1, Relaxed);
            stats.sent_records.fetch_add(set.len() as u64, Relaxed);
            let started = Instant::now();
            let outcome = req.send(&set).await;
            stats.observe(started.elapsed());
            match outcome {
                Outcome::Delivered => retry.reset(),
                Outcome::PartlyRefused {
                    refused: some,
                    resend,
                    wait,
                } => {
                    for (p, why) in some {
                        if let Some(&i) = set.get(p) {
                            refused.note(req.segment(i), true, &why, &req.dead_letter_json(i));
                        }
                    }
                    let again: Vec<usize> =
                        resend.iter().filter_map(|&p| set.get(p).copied()).collect();
                    if let Some(why) = wait
                        && !again.is_empty()
                    {
                        retry.wait("items", &why, None, again.len()).await;
                    }
                    work.push(again);
                }
                Outcome::Unattributed { rejected, reason } => {
                    for (n, &i) in set.iter().enumerate() {
                        let json = req.dead_letter_json(i);
                        refused.note(req.segment(i), n < rejected, &reason, &json);
                    }
                }
                o if o.retryable() => {
                    stats.failed_requests.fetch_add(1, Relaxed);
                    retry
                        .wait(&o.class(), &o.reason(), o.after(), set.len())
                        .await;
                    work.push(set);
                }
                o => {
                    stats.failed_requests.fetch_add(1, Relaxed);
                    self.isolate(req, set, &o, &mut refused, &mut work);
                }
            }
        }
        let dead_lettered = std::mem::take(&mut refused.dead);
        self.write_refusals(refused, stats).await;
        Delivered { dead_lettered }
    }

    /// A request too large, or refused for its data: one record is refused; several are
    /// split, the parts queued in order.
    fn isolate<R: Requests>(
        &self,
        req: &R,
        set: Vec<usize>,
        o: &Outcome,
        refused: &mut Refusals<'_>,
        work: &mut Vec<Vec<usize>>,
    ) {
        if let [i] = set[..] {
            let why = req.refusal_reason(o);
            refused.note(req.segment(i), true, &why, &req.dead_letter_json(i));
            return;
        }
        let too_large = matches!(o, Outcome::TooLarge { .. });
        tracing::debug!(sink = %self.name, records = set.len(), reason = %o.reason(), "request refused; splitting it");
        for part in split_strictly(req, &set, too_large).into_iter().rev() {
            work.push(part);
        }
    }

    /// One all-or-nothing append for the batch's refusals, retried in place until it is on
    /// disk, and one warning for all of them.
    async fn write_refusals(&self, r: Refusals<'_>, stats: &SinkStats) {
        if r.count == 0 {
            return;
        }
        let lines = bytes::Bytes::from(r.lines);
        let mut retry = Retry::new(&self.name, stats);
        loop {
            let (dead, lines2) = (self.dead.clone(), lines.clone());
            let res = tokio::task::spawn_blocking(move || dead.append(&lines2))
                .await
                .map_err(|e| std::io::Error::other(e.to_string()))
                .and_then(|r| r);
            match res {
                Ok(()) => break,
                Err(e) => {
                    let why = format!(
                        "cannot write the dead-letter file `{}`: {e}",
                        self.dead.path().display()
                    );
                    retry.wait("dead-letter", &why, None, r.count).await;
                }
            }
        }
        if let Some(repeated) = warn_limit::check("sink.refused", &self.name) {
            tracing::warn!(sink = %self.name, records = r.count, reason = %redact_text(&r.first_reason), file = %self.dead.path().display(), repeated, "records refused; written to the dead-letter file (the first one's reason shown)");
        }
    }
}

/// The sink's split, made sure to progress: two or more non-empty parts, else halves.
fn split_strictly<R: Requests>(req: &R, set: &[usize], too_large: bool) -> Vec<Vec<usize>> {
    let parts: Vec<Vec<usize>> = req
        .split(set, too_large)
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect();
    if parts.len() >= 2 && parts.iter().map(Vec::len).sum::<usize>() == set.len() {
        parts
    } else {
        halves(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::Payload;
    use std::sync::Mutex;

    /// Segments of `per` records each; record `n` is `{"n":n,"pad":"..."}` with `pad` bytes.
    fn batch(segments: usize, per: usize, pad: impl Fn(usize) -> usize) -> Vec<Arc<Segment>> {
        (0..segments)
            .map(|s| {
                let mut p = Payload::default();
                for r in 0..per {
                    let n = s * per + r;
                    let rec = format!("{{\"n\":{n},\"pad\":\"{}\"}}\n", "x".repeat(pad(n)));
                    p.data.extend_from_slice(rec.as_bytes());
                    p.ends.push(p.data.len() as u32);
                }
                Arc::new(Segment {
                    seq: s as u64,
                    file: 1,
                    end: 0,
                    records: per as u32,
                    log_bytes: 0,
                    kind: crate::kind::Kind::Inlog,
                    payloads: vec![p],
                })
            })
            .collect()
    }

    /// A server answering with `answer` for each request, keeping what it stored.
    struct Fake<'a, F: Fn(&Records<'_>, &[usize]) -> Outcome + Sync> {
        recs: Records<'a>,
        answer: F,
        stored: Mutex<Vec<usize>>,
        requests: Mutex<usize>,
    }

    impl<'a, F: Fn(&Records<'_>, &[usize]) -> Outcome + Sync> Fake<'a, F> {
        fn new(batch: &'a [Arc<Segment>], answer: F) -> Self {
            Fake {
                recs: Records::new(0, batch),
                answer,
                stored: Mutex::default(),
                requests: Mutex::default(),
            }
        }
    }

    impl<F: Fn(&Records<'_>, &[usize]) -> Outcome + Sync> Requests for Fake<'_, F> {
        fn plan(&self) -> Vec<Vec<usize>> {
            vec![self.recs.all()]
        }
        async fn send(&self, set: &[usize]) -> Outcome {
            *self.requests.lock().unwrap() += 1;
            let o = (self.answer)(&self.recs, set);
            if let Outcome::Delivered = o {
                self.stored.lock().unwrap().extend_from_slice(set);
            }
            o
        }
        fn segment(&self, i: usize) -> usize {
            self.recs.segment(i)
        }
        fn dead_letter_json(&self, i: usize) -> Cow<'_, [u8]> {
            Cow::Borrowed(self.recs.record(i))
        }
    }

    /// The dead-letter file's entries: `n` of each record, and the reasons.
    fn dead_letters(dl: &DeadLetter) -> Vec<(u64, String)> {
        let text = std::fs::read_to_string(dl.path()).unwrap_or_default();
        text.lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("valid JSON line");
                let n = v["record"]["n"].as_u64().expect("the record as sent");
                (n, v["reason"].as_str().unwrap_or("").to_string())
            })
            .collect()
    }

    /// 300 records refused while the disk fills four times: the refusals are written once,
    /// each as one valid line, and the batch is not sent again. (Seen failing with the cut
    /// back in `append_all_or_nothing` removed: torn lines, one not JSON.)
    #[tokio::test]
    async fn dead_letters_survive_a_filling_disk_exactly_once() {
        let d = tempfile::tempdir().unwrap();
        let dead = Arc::new(DeadLetter::new(d.path(), "es"));
        dead.budgets.lock().unwrap().extend([0, 1, 4000, 20_000]);
        let b = batch(3, 100, |_| 10);
        let fake = Fake::new(&b, |_, set| Outcome::PartlyRefused {
            refused: (0..set.len())
                .map(|p| (p, format!("mapper_parsing_exception {p}")))
                .collect(),
            resend: Vec::new(),
            wait: None,
        });
        let stats = SinkStats::default();
        let engine = Engine::new("es", dead.clone());
        let delivered = engine.deliver(&fake, b.len(), &stats).await;
        assert_eq!(delivered.dead_lettered, vec![100, 100, 100]);
        assert_eq!(
            *fake.requests.lock().unwrap(),
            1,
            "the batch is not sent again"
        );
        let lines = dead_letters(&dead);
        let ns: Vec<u64> = lines.iter().map(|(n, _)| *n).collect();
        assert_eq!(ns, (0..300).collect::<Vec<u64>>());
        assert_eq!(lines[7].1, "mapper_parsing_exception 7");
        assert!(
            dead.budgets.lock().unwrap().is_empty(),
            "every failure was met"
        );
        assert_eq!(stats.retries.load(Relaxed), 4);
    }

    /// Requests over `limit` bytes answered 413: split down to single records; the records
    /// over the limit alone are dead-lettered, every other one stored, each exactly once.
    #[tokio::test]
    async fn too_large_requests_are_split_down_to_one_record() {
        let d = tempfile::tempdir().unwrap();
        let dead = Arc::new(DeadLetter::new(d.path(), "es"));
        // every 37th record is larger than the limit on its own
        let b = batch(4, 50, |n| if n % 37 == 5 { 3000 } else { n % 200 });
        let limit = 2500;
        let fake = Fake::new(&b, |recs, set| {
            let size: usize = set.iter().map(|&i| recs.record(i).len()).sum();
            if size > limit {
                Outcome::TooLarge {
                    code: Code::Http(413),
                    excerpt: "Request Entity Too Large".into(),
                }
            } else {
                Outcome::Delivered
            }
        });
        let stats = SinkStats::default();
        let delivered = Engine::new("es", dead.clone())
            .deliver(&fake, b.len(), &stats)
            .await;
        let big: Vec<u64> = (0..200).filter(|n| n % 37 == 5).collect();
        let lines = dead_letters(&dead);
        assert_eq!(lines.iter().map(|(n, _)| *n).collect::<Vec<_>>(), big);
        assert!(
            lines[0].1.starts_with("HTTP 413: too large"),
            "{}",
            lines[0].1
        );
        let mut stored = fake.stored.lock().unwrap().clone();
        stored.sort_unstable();
        let want: Vec<usize> = (0..200).filter(|n| n % 37 != 5).collect();
        assert_eq!(stored, want, "every other record stored once");
        let per_segment: Vec<u64> = (0..4)
            .map(|s| big.iter().filter(|&&n| n / 50 == s).count() as u64)
            .collect();
        assert_eq!(delivered.dead_lettered, per_segment);
        assert_eq!(stats.retries.load(Relaxed), 0, "a split is not a retry");
    }

    /// A 429 with `Retry-After` is waited for (capped at MAX_SERVER_DELAY), then sent again.
    #[tokio::test]
    async fn retry_after_is_honoured() {
        let d = tempfile::tempdir().unwrap();
        let b = batch(1, 3, |_| 1);
        let calls = Mutex::new(0);
        let fake = Fake::new(&b, |_, _| {
            let mut c = calls.lock().unwrap();
            *c += 1;
            if *c == 1 {
                Outcome::Status {
                    code: Code::Http(429),
                    excerpt: "slow down".into(),
                    verdict: Verdict::Retry,
                    after: Some(Duration::from_millis(400)),
                }
            } else {
                Outcome::Delivered
            }
        });
        let started = Instant::now();
        let delivered = Engine::new("es", Arc::new(DeadLetter::new(d.path(), "es")))
            .deliver(&fake, 1, &SinkStats::default())
            .await;
        assert!(started.elapsed() >= Duration::from_millis(400));
        assert_eq!(delivered.dead_lettered, vec![0]);
        assert_eq!(*fake.stored.lock().unwrap(), vec![0, 1, 2]);
        let mut backoff = Backoff::new(Duration::from_millis(1), Duration::from_millis(2));
        let capped = delay(&mut backoff, Some(Duration::from_secs(100_000)));
        assert!(capped >= MAX_SERVER_DELAY && capped <= MAX_SERVER_DELAY * 9 / 8);
    }
}
