//! `report`: pflogsumm for E-Post. One pass over every record of the window, counted as
//! docs/trace-report.md defines; the result is plain data (serde), printed as JSON, text or
//! HTML by the modules beside this one.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::kind::Kind;
use crate::record::Record;
use crate::time::Timestamp;

/// One `{"key", "count"}` entry of a ranked list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ranked {
    pub key: String,
    pub count: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub received: u64,
    pub delivered: u64,
    pub failed: u64,
    pub rejected_sessions: u64,
    pub auth_failures: u64,
}

impl Totals {
    /// The totals with their names, in the order the reports print them.
    pub fn rows(&self) -> [(u64, &'static str); 5] {
        [
            (self.received, "received"),
            (self.delivered, "delivered"),
            (self.failed, "failed"),
            (self.rejected_sessions, "rejected sessions"),
            (self.auth_failures, "auth failures"),
        ]
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Hour {
    /// Start of the local hour, RFC 3339 with its offset.
    pub hour: String,
    pub received: u64,
    pub delivered: u64,
    pub failed: u64,
    pub rejected_sessions: u64,
    pub auth_failures: u64,
    /// Every record of the hour by kind.
    pub records: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Delay {
    pub messages: u64,
    pub median: Option<i64>,
    pub p95: Option<i64>,
    pub max: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub totals: Totals,
    pub top_senders: Vec<Ranked>,
    pub top_recipients: Vec<Ranked>,
    pub failure_reasons: Vec<Ranked>,
    pub failures_by_destination: Vec<Ranked>,
    pub rejected_ips: Vec<Ranked>,
    pub auth_failures_by_ip: Vec<Ranked>,
    pub auth_failures_by_user: Vec<Ranked>,
    pub logins_by_user: Vec<Ranked>,
    pub records_by_kind: BTreeMap<String, u64>,
    pub per_hour: Vec<Hour>,
    pub delay_seconds: Delay,
    /// The first and last record's time (absent for an empty window).
    pub first: Option<String>,
    pub last: Option<String>,
    /// Files that could not be read (reported, skipped).
    pub unreadable: Vec<String>,
}

type Counter = HashMap<String, u64>;

/// Accumulates records; [`Tally::finish`] gives the report.
#[derive(Debug, Default)]
pub struct Tally {
    totals: Totals,
    senders: Counter,
    recipients: Counter,
    reasons: Counter,
    destinations: Counter,
    rejected_ips: Counter,
    auth_ip: Counter,
    auth_user: Counter,
    logins: Counter,
    kinds: BTreeMap<String, u64>,
    /// hour start (unix ms) → (its offset, the hour's counts)
    hours: BTreeMap<i64, (i32, Hour)>,
    /// (host, local id) → inlog time, last delivery time
    received_at: HashMap<(String, String), i64>,
    delivered_at: HashMap<(String, String), i64>,
    first: Option<Timestamp>,
    last: Option<Timestamp>,
}

fn bump(c: &mut Counter, k: &str) {
    match c.get_mut(k) {
        Some(v) => *v += 1,
        None => {
            c.insert(k.to_string(), 1);
        }
    }
}

/// Start of `t`'s local hour, as an instant.
fn hour_start(t: Timestamp) -> i64 {
    let off = i64::from(t.offset_secs) * 1000;
    let local = t.unix_ms.saturating_add(off);
    local.div_euclid(3_600_000) * 3_600_000 - off
}

impl Tally {
    pub fn add(&mut self, r: &Record<'_>) {
        let f = &r.fields;
        let kind = r.source.kind;
        let id = f.local_id.as_deref().filter(|s| !s.is_empty());
        *self.kinds.entry(kind.name().to_string()).or_default() += 1;
        let start = hour_start(r.timestamp);
        let hour = &mut self
            .hours
            .entry(start)
            .or_insert_with(|| (r.timestamp.offset_secs, Hour::default()))
            .1;
        *hour.records.entry(kind.name().to_string()).or_default() += 1;
        self.first = Some(match self.first {
            Some(t) if t.unix_ms <= r.timestamp.unix_ms => t,
            _ => r.timestamp,
        });
        self.last = Some(match self.last {
            Some(t) if t.unix_ms >= r.timestamp.unix_ms => t,
            _ => r.timestamp,
        });
        let key = |id: &str| (r.source.host.to_string(), id.to_string());
        match (kind, id) {
            (Kind::Inlog, Some(id)) => {
                self.totals.received += 1;
                hour.received += 1;
                f.from.iter().for_each(|a| bump(&mut self.senders, a));
                f.to.iter().for_each(|a| bump(&mut self.recipients, a));
                self.received_at
                    .entry(key(id))
                    .or_insert(r.timestamp.unix_ms);
            }
            (Kind::Outlog | Kind::Outlocallog, Some(id)) => {
                self.totals.delivered += 1;
                hour.delivered += 1;
                let t = self.delivered_at.entry(key(id)).or_insert(i64::MIN);
                *t = (*t).max(r.timestamp.unix_ms);
            }
            (Kind::Faillog, Some(_)) => {
                self.totals.failed += 1;
                hour.failed += 1;
                if let Some(m) = f.error_message.as_deref().filter(|s| !s.is_empty()) {
                    bump(&mut self.reasons, m);
                }
                f.to.iter().for_each(|a| bump(&mut self.destinations, a));
            }
            _ => {}
        }
        if kind == Kind::Acceptlog && f.session_status.as_deref() == Some("abort") {
            self.totals.rejected_sessions += 1;
            hour.rejected_sessions += 1;
            if let Some(ip) = f.client_ip.as_deref() {
                bump(&mut self.rejected_ips, ip);
            }
        }
        match f.auth_result.as_deref() {
            Some("failed") => {
                self.totals.auth_failures += 1;
                hour.auth_failures += 1;
                if let Some(ip) = f.client_ip.as_deref() {
                    bump(&mut self.auth_ip, ip);
                }
                if let Some(u) = f.user_name.as_deref() {
                    bump(&mut self.auth_user, u);
                }
            }
            Some("success") if matches!(kind, Kind::Pop3log | Kind::Imap4log) => {
                if let Some(u) = f.user_name.as_deref() {
                    bump(&mut self.logins, u);
                }
            }
            _ => {}
        }
    }

    pub fn finish(self) -> Report {
        let per_hour = self
            .hours
            .into_iter()
            .map(|(start, (offset_secs, mut h))| {
                h.hour = Timestamp {
                    unix_ms: start,
                    offset_secs,
                }
                .to_rfc3339();
                h
            })
            .collect();
        let mut delays: Vec<i64> = self
            .received_at
            .iter()
            .filter_map(|(k, rx)| {
                let last = self.delivered_at.get(k)?;
                Some(last.saturating_sub(*rx).div_euclid(1000))
            })
            .collect();
        delays.sort_unstable();
        Report {
            totals: self.totals,
            top_senders: ranked(self.senders),
            top_recipients: ranked(self.recipients),
            failure_reasons: ranked(self.reasons),
            failures_by_destination: ranked(self.destinations),
            rejected_ips: ranked(self.rejected_ips),
            auth_failures_by_ip: ranked(self.auth_ip),
            auth_failures_by_user: ranked(self.auth_user),
            logins_by_user: ranked(self.logins),
            records_by_kind: self.kinds,
            per_hour,
            delay_seconds: delay(&delays),
            first: self.first.map(|t| t.to_rfc3339()),
            last: self.last.map(|t| t.to_rfc3339()),
            unreadable: Vec::new(),
        }
    }
}

/// Sorted by count, largest first; ties by key in ascending byte order (as Elasticsearch's
/// `terms` aggregation orders equal counts).
pub fn ranked(c: Counter) -> Vec<Ranked> {
    let mut v: Vec<Ranked> = c
        .into_iter()
        .map(|(key, count)| Ranked { key, count })
        .collect();
    v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.key.cmp(&b.key)));
    v
}

/// Nearest-rank percentile of sorted values: the smallest value with at least `p` % of them
/// at or below it.
pub fn percentile(sorted: &[i64], p: usize) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len()).div_ceil(100).clamp(1, sorted.len());
    sorted.get(rank - 1).copied()
}

fn delay(sorted: &[i64]) -> Delay {
    Delay {
        messages: sorted.len() as u64,
        median: percentile(sorted, 50),
        p95: percentile(sorted, 95),
        max: sorted.last().copied(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_by_count_then_key() {
        let c: Counter = [("b", 2), ("a", 2), ("c", 5), ("d", 1)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let keys: Vec<String> = ranked(c).into_iter().map(|r| r.key).collect();
        assert_eq!(keys, ["c", "a", "b", "d"]);
    }

    #[test]
    fn nearest_rank() {
        let v: Vec<i64> = (1..=20).collect();
        assert_eq!(percentile(&v, 50), Some(10));
        assert_eq!(percentile(&v, 95), Some(19));
        assert_eq!(percentile(&[7], 95), Some(7));
        assert_eq!(percentile(&[], 50), None);
    }
}
