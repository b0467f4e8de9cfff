//! Reading Loki's 400 answers.
//!
//! Loki refuses a push with 400 when some of its entries are invalid, and stores the others.
//! The answer names the entries' reasons in text. Two of them, the ones E-Post history meets,
//! come with a cutoff below which every entry of the stream is refused:
//!
//! - distributor, `reject_old_samples_max_age` (default one week):
//!   `entry for stream '{..}' has timestamp too old: <t>, oldest acceptable timestamp is: <cutoff>`
//! - ingester, out of order beyond half of `max_chunk_age` behind the stream's newest entry:
//!   `entry with timestamp <t> ignored, reason: 'entry too far behind, entry timestamp is: <t>,
//!   oldest acceptable timestamp is: <cutoff>',`
//!
//! Both cutoffs only move forward (the clock, the stream's newest entry), so an entry older
//! than a cutoff Loki named for its stream is refused for the same reason if pushed again.

/// A cutoff named in a 400 answer, with the answer's line that named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cutoff {
    pub nanos: i64,
    pub line: String,
}

const MARK: &str = "oldest acceptable timestamp is:";

/// Every cutoff the answer names.
pub fn cutoffs(body: &str) -> Vec<Cutoff> {
    let mut out = Vec::new();
    for line in body.lines() {
        let mut rest = line;
        while let Some(i) = rest.find(MARK) {
            rest = &rest[i + MARK.len()..];
            let end = rest.find(['\'', ',', '\n', '\r']).unwrap_or(rest.len());
            if let Some(nanos) = parse_time(rest[..end].trim()) {
                out.push(Cutoff {
                    nanos,
                    line: line.trim().trim_end_matches(',').to_string(),
                });
            }
        }
    }
    out
}

/// RFC 3339 (`2026-11-21T04:00:00Z`) or Go's `time.Time` text
/// (`2026-11-21 04:00:00.123456789 +0000 UTC`).
pub fn parse_time(s: &str) -> Option<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return t.timestamp_nanos_opt();
    }
    let mut parts = s.split_whitespace();
    let (date, time, offset) = (parts.next()?, parts.next()?, parts.next()?);
    chrono::DateTime::parse_from_str(
        &format!("{date} {time} {offset}"),
        "%Y-%m-%d %H:%M:%S%.f %z",
    )
    .ok()?
    .timestamp_nanos_opt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distributor_and_ingester_answers() {
        let body = "entry for stream '{host=\"MAILSV01\", job=\"epost\", log=\"inlog\"}' has timestamp too old: 2017-11-29 23:00:00.000000079 +0000 UTC, oldest acceptable timestamp is: 2026-11-21 04:00:00.5 +0000 UTC\n";
        let c = cutoffs(body);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].nanos, 1_795_233_600_500_000_000);
        assert!(c[0].line.starts_with("entry for stream"));

        let body = "entry with timestamp 2017-11-30 00:00:00 +0000 UTC ignored, reason: 'entry too far behind, entry timestamp is: 2017-11-30T00:00:00Z, oldest acceptable timestamp is: 2017-11-30T23:00:00Z',\nuser 'fake', total ignored: 1 out of 3 for stream: {job=\"epost\"}";
        let c = cutoffs(body);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].nanos, 1_512_082_800_000_000_000);
        assert!(c[0].line.contains("entry too far behind"));
        assert!(!c[0].line.ends_with(','));

        assert!(cutoffs("Max entry size '256' bytes exceeded").is_empty());
        assert_eq!(
            parse_time("2017-11-30 09:00:00 +0900 JST"),
            Some(1_512_000_000_000_000_000)
        );
    }
}
