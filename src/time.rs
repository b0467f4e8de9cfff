//! Local times written by E-Post, read in the configured zone.

use std::cell::Cell;
use std::fmt;
use std::str::FromStr;

use chrono::{LocalResult, NaiveDate, Offset, TimeZone};

/// An instant with the offset of the zone it was written in, so that it prints as the admin
/// reads it (`2017-11-30T08:20:44.000+09:00`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp {
    pub unix_ms: i64,
    pub offset_secs: i32,
}

impl Timestamp {
    /// RFC 3339 with milliseconds and the offset. Records of one day share the date part,
    /// so the last one is kept per thread, and the rest is written into a stack buffer that is
    /// copied once (this runs for every record of every sink).
    pub fn write_rfc3339(&self, out: &mut Vec<u8>) {
        thread_local! {
            static DAY: Cell<(i64, [u8; 10])> = const { Cell::new((i64::MIN, [0; 10])) };
        }
        let local_ms = self
            .unix_ms
            .saturating_add(i64::from(self.offset_secs) * 1000);
        let day = local_ms.div_euclid(86_400_000);
        let (cached, mut date) = DAY.get();
        if cached != day {
            let (y, m, d) = civil_from_days(day);
            if !(0..=9999).contains(&y) {
                return self.write_full(out);
            }
            // 0..=9999, checked just above
            put_digits(&mut date[0..4], y as u32);
            date[4] = b'-';
            put_digits(&mut date[5..7], m);
            date[7] = b'-';
            put_digits(&mut date[8..10], d);
            DAY.set((day, date));
        }
        // rem_euclid: 0..86_400_000, fits a u32
        let ms_of_day = local_ms.rem_euclid(86_400_000) as u32;
        let secs = ms_of_day / 1000;
        let mut b = *b"0000-00-00T00:00:00.000+00:00";
        b[..10].copy_from_slice(&date);
        put_digits(&mut b[11..13], secs / 3600);
        put_digits(&mut b[14..16], secs / 60 % 60);
        put_digits(&mut b[17..19], secs % 60);
        put_digits(&mut b[20..23], ms_of_day % 1000);
        let len = if self.offset_secs == 0 {
            b[23] = b'Z';
            24
        } else {
            let a = self.offset_secs.unsigned_abs();
            b[23] = if self.offset_secs < 0 { b'-' } else { b'+' };
            put_digits(&mut b[24..26], a / 3600 % 100);
            put_digits(&mut b[27..29], a / 60 % 60);
            29
        };
        out.extend_from_slice(&b[..len]);
    }

    fn write_offset(&self, out: &mut Vec<u8>) {
        let off = self.offset_secs;
        if off == 0 {
            out.push(b'Z');
        } else {
            out.push(if off < 0 { b'-' } else { b'+' });
            let a = i64::from(off.unsigned_abs());
            push_num(out, a / 3600, 2);
            out.push(b':');
            push_num(out, a / 60 % 60, 2);
        }
    }

    fn write_full(&self, out: &mut Vec<u8>) {
        let local_ms = self
            .unix_ms
            .saturating_add(i64::from(self.offset_secs) * 1000);
        let days = local_ms.div_euclid(86_400_000);
        let ms_of_day = local_ms.rem_euclid(86_400_000);
        let (y, m, d) = civil_from_days(days);
        let secs = ms_of_day / 1000;
        let ms = ms_of_day % 1000;
        push_num(out, y, 4);
        out.push(b'-');
        push_num(out, i64::from(m), 2);
        out.push(b'-');
        push_num(out, i64::from(d), 2);
        out.push(b'T');
        push_num(out, secs / 3600, 2);
        out.push(b':');
        push_num(out, secs / 60 % 60, 2);
        out.push(b':');
        push_num(out, secs % 60, 2);
        out.push(b'.');
        push_num(out, ms, 3);
        self.write_offset(out);
    }

    pub fn to_rfc3339(&self) -> String {
        let mut v = Vec::with_capacity(29);
        self.write_rfc3339(&mut v);
        String::from_utf8(v).expect("ASCII")
    }

    pub fn unix_nanos(&self) -> i128 {
        i128::from(self.unix_ms) * 1_000_000
    }
}

/// `v` as exactly `out.len()` decimal digits, zero-padded (higher digits are dropped).
fn put_digits(out: &mut [u8], mut v: u32) {
    for d in out.iter_mut().rev() {
        *d = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

fn push_num(out: &mut Vec<u8>, mut v: i64, width: usize) {
    if v < 0 {
        out.push(b'-');
        v = -v;
    }
    let mut buf = [b'0'; 20];
    let mut i = buf.len();
    while v > 0 || buf.len() - i < width {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
    out.extend_from_slice(&buf[i..]);
}

/// Howard Hinnant's days-to-civil: days since 1970-01-01 to (year, month, day).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    // day 1..=31 and month 1..=12 by construction of the algorithm
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Inverse of [`civil_from_days`].
/// Unix milliseconds now (0 before 1970, saturating far after): the clock of checkpoints and
/// acknowledgements.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A calendar date, as taken from a file name or a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    pub year: i32,
    pub month: u32,
    pub day: u32,
}

impl Date {
    pub fn new(year: i32, month: u32, day: u32) -> Option<Date> {
        NaiveDate::from_ymd_opt(year, month, day)?;
        Some(Date { year, month, day })
    }

    pub fn days(self) -> i64 {
        days_from_civil(i64::from(self.year), self.month, self.day)
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl FromStr for Date {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let d = NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map_err(|e| format!("`{s}` is not a date YYYY-MM-DD: {e}"))?;
        use chrono::Datelike;
        Ok(Date {
            year: d.year(),
            month: d.month(),
            day: d.day(),
        })
    }
}

/// A wall-clock time in the log's local zone, down to milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalTime {
    pub date: Date,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub milli: u32,
}

impl LocalTime {
    fn local_ms(&self) -> i64 {
        // i64 throughout: the fields are public, and u32 arithmetic on them could overflow.
        self.date.days() * 86_400_000
            + (i64::from(self.hour) * 3600 + i64::from(self.minute) * 60 + i64::from(self.second))
                * 1000
            + i64::from(self.milli)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown time zone `{0}` (expected an IANA name such as Asia/Tokyo, or `local`)")]
pub struct UnknownZone(pub String);

/// The configured zone: a named IANA zone, or the machine's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    Named(chrono_tz::Tz),
    Local,
}

impl Default for Zone {
    fn default() -> Self {
        Zone::Named(chrono_tz::Asia::Tokyo)
    }
}

impl FromStr for Zone {
    type Err = UnknownZone;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("local") {
            return Ok(Zone::Local);
        }
        s.parse::<chrono_tz::Tz>()
            .map(Zone::Named)
            .map_err(|_| UnknownZone(s.to_string()))
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Zone::Named(tz) => f.write_str(tz.name()),
            Zone::Local => f.write_str("local"),
        }
    }
}

/// Turns local wall-clock times into instants. Offsets change at most a few times a year, so
/// the last hour's offset is cached: the zone database is consulted once per hour of log.
#[derive(Debug)]
pub struct Clock {
    zone: Zone,
    cache: Cell<(i64, i32)>,
}

impl Clock {
    pub fn new(zone: Zone) -> Clock {
        Clock {
            zone,
            cache: Cell::new((i64::MIN, 0)),
        }
    }

    pub fn zone(&self) -> Zone {
        self.zone
    }

    pub fn resolve(&self, t: &LocalTime) -> Timestamp {
        let local_ms = t.local_ms();
        let hour_key = local_ms.div_euclid(3_600_000);
        let (key, off) = self.cache.get();
        let offset_secs = if key == hour_key {
            off
        } else {
            let off = self.offset_for(t);
            self.cache.set((hour_key, off));
            off
        };
        Timestamp {
            unix_ms: local_ms - i64::from(offset_secs) * 1000,
            offset_secs,
        }
    }

    /// The offset of a Unix instant (for file modification times).
    pub fn at_unix_ms(&self, unix_ms: i64) -> Timestamp {
        let utc = chrono::DateTime::from_timestamp_millis(unix_ms)
            .unwrap_or_default()
            .naive_utc();
        let offset_secs = match self.zone {
            Zone::Named(tz) => tz.offset_from_utc_datetime(&utc).fix().local_minus_utc(),
            Zone::Local => chrono::Local
                .offset_from_utc_datetime(&utc)
                .fix()
                .local_minus_utc(),
        };
        Timestamp {
            unix_ms,
            offset_secs,
        }
    }

    fn offset_for(&self, t: &LocalTime) -> i32 {
        let Some(naive) = NaiveDate::from_ymd_opt(t.date.year, t.date.month, t.date.day)
            .and_then(|d| d.and_hms_opt(t.hour, t.minute, t.second))
        else {
            return 0;
        };
        // Transitions are months apart: a day earlier is safely before a gap.
        let before = naive - chrono::Duration::days(1);
        match self.zone {
            Zone::Named(tz) => pick(tz.offset_from_local_datetime(&naive), || {
                tz.offset_from_utc_datetime(&before).fix()
            }),
            Zone::Local => pick(chrono::Local.offset_from_local_datetime(&naive), || {
                chrono::Local.offset_from_utc_datetime(&before).fix()
            }),
        }
    }
}

/// In the autumn overlap the earlier reading wins; in the spring gap (a time that did not
/// exist) the offset from just before the gap is used.
fn pick<O: Offset>(r: LocalResult<O>, gap: impl FnOnce() -> chrono::FixedOffset) -> i32 {
    match r {
        LocalResult::Single(o) | LocalResult::Ambiguous(o, _) => o.fix().local_minus_utc(),
        LocalResult::None => gap().local_minus_utc(),
    }
}

fn month_from_abbr(m: &[u8]) -> Option<u32> {
    let n = match m {
        b"Jan" => 1,
        b"Feb" => 2,
        b"Mar" => 3,
        b"Apr" => 4,
        b"May" => 5,
        b"Jun" => 6,
        b"Jul" => 7,
        b"Aug" => 8,
        b"Sep" => 9,
        b"Oct" => 10,
        b"Nov" => 11,
        b"Dec" => 12,
        _ => return None,
    };
    Some(n)
}

fn two(b: &[u8]) -> Option<u32> {
    match b {
        [a @ b'0'..=b'9', c @ b'0'..=b'9'] => Some(u32::from(a - b'0') * 10 + u32::from(c - b'0')),
        _ => None,
    }
}

fn digits(b: &[u8]) -> Option<u32> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0u32, |a, &d| a * 10 + u32::from(d - b'0')))
}

/// `dd/Mon/yyyy:HH:MM:SS`, exactly 20 bytes.
pub fn parse_epost_time(s: &str) -> Option<LocalTime> {
    let b = s.as_bytes();
    if b.len() != 20
        || b[2] != b'/'
        || b[6] != b'/'
        || b[11] != b':'
        || b[14] != b':'
        || b[17] != b':'
    {
        return None;
    }
    let day = two(&b[0..2])?;
    let month = month_from_abbr(&b[3..6])?;
    let year = i32::try_from(digits(&b[7..11])?).ok()?;
    let hour = two(&b[12..14])?;
    let minute = two(&b[15..17])?;
    let second = two(&b[18..20])?;
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    Some(LocalTime {
        date: Date::new(year, month, day)?,
        hour,
        minute,
        second: second.min(59),
        milli: 0,
    })
}

/// `HH:MM:SS` or `HH:MM:SS:mmm` (senderlog's prefix), returning (h, m, s, ms).
pub fn parse_clock(s: &str) -> Option<(u32, u32, u32, u32)> {
    let b = s.as_bytes();
    if !(b.len() == 8 || b.len() == 12) || b[2] != b':' || b[5] != b':' {
        return None;
    }
    let h = two(&b[0..2])?;
    let m = two(&b[3..5])?;
    let sec = two(&b[6..8])?;
    let ms = if b.len() == 12 {
        if b[8] != b':' {
            return None;
        }
        digits(&b[9..12])?
    } else {
        0
    };
    if h > 23 || m > 59 || sec > 60 {
        return None;
    }
    Some((h, m, sec.min(59), ms))
}

/// The date (and hour, for hourly senderlog files) in an E-Post file name:
/// `YYMMDD.log`, `YYMMDD_HH.log`, optionally `.gz`.
pub fn date_from_file_name(name: &str) -> Option<(Date, Option<u32>)> {
    let stem = name.strip_suffix(".gz").unwrap_or(name);
    let stem = stem
        .strip_suffix(".log")
        .or_else(|| stem.strip_suffix(".LOG"))?;
    let b = stem.as_bytes();
    if b.len() != 6 && !(b.len() == 9 && b[6] == b'_') {
        return None;
    }
    let yy = i32::try_from(two(&b[0..2])?).ok()?;
    let year = if yy < 70 { 2000 + yy } else { 1900 + yy };
    let date = Date::new(year, two(&b[2..4])?, two(&b[4..6])?)?;
    let hour = if b.len() == 9 {
        let h = two(&b[7..9])?;
        (h < 24).then_some(h)?;
        Some(h)
    } else {
        None
    };
    Some((date, hour))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokyo_offset_and_format() {
        let c = Clock::new("Asia/Tokyo".parse().unwrap());
        let t = parse_epost_time("30/Nov/2017:08:20:44").unwrap();
        let ts = c.resolve(&t);
        assert_eq!(ts.to_rfc3339(), "2017-11-30T08:20:44.000+09:00");
        assert_eq!(ts.unix_ms, 1_511_997_644_000);
    }

    #[test]
    fn dst_zone_offsets() {
        let c = Clock::new("Europe/Berlin".parse().unwrap());
        let winter = c.resolve(&parse_epost_time("30/Nov/2017:08:20:44").unwrap());
        assert_eq!(winter.offset_secs, 3600);
        let summer = c.resolve(&parse_epost_time("30/Jun/2017:08:20:44").unwrap());
        assert_eq!(summer.to_rfc3339(), "2017-06-30T08:20:44.000+02:00");
        // 02:30 on 26 Mar 2017 did not exist in Berlin: must not panic.
        let gap = c.resolve(&parse_epost_time("26/Mar/2017:02:30:00").unwrap());
        assert_eq!(gap.offset_secs, 3600);
        let utc = Clock::new("UTC".parse().unwrap());
        assert_eq!(
            utc.resolve(&parse_epost_time("01/Jan/2000:00:00:00").unwrap())
                .to_rfc3339(),
            "2000-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn bad_times_are_rejected() {
        for s in [
            "30/Nov/2017:08:20:4",
            "30/Xyz/2017:08:20:44",
            "31/Feb/2017:08:20:44",
            "30/Nov/2017:25:20:44",
            "30-Nov-2017:08:20:44",
        ] {
            assert!(parse_epost_time(s).is_none(), "{s}");
        }
    }

    #[test]
    fn clock_prefixes() {
        assert_eq!(parse_clock("08:22:11"), Some((8, 22, 11, 0)));
        assert_eq!(parse_clock("08:22:11:650"), Some((8, 22, 11, 650)));
        assert_eq!(parse_clock("08:22:11.650"), None);
        assert_eq!(parse_clock("B000009701"), None);
    }

    #[test]
    fn file_names() {
        assert_eq!(
            date_from_file_name("171130.log"),
            Some((Date::new(2017, 11, 30).unwrap(), None))
        );
        assert_eq!(
            date_from_file_name("171130_09.log"),
            Some((Date::new(2017, 11, 30).unwrap(), Some(9)))
        );
        assert_eq!(
            date_from_file_name("081111.log.gz"),
            Some((Date::new(2008, 11, 11).unwrap(), None))
        );
        assert_eq!(date_from_file_name("171340.log"), None);
        assert_eq!(date_from_file_name("notes.txt"), None);
    }

    #[test]
    fn civil_round_trip() {
        for days in [-1_000_000, -1, 0, 1, 17_500, 2_000_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    /// The cached fast path prints exactly what the plain formatter prints, across day
    /// boundaries, offsets of both signs, and years it hands back to the plain formatter.
    #[test]
    fn fast_format_matches_plain() {
        let mut ms = -62_198_755_200_000i64 - 5_000; // just before 0000-01-01
        let offsets = [0, 9 * 3600, -5 * 3600 - 1800, 5 * 3600 + 2700, -12 * 3600];
        let mut n = 0;
        while ms < 253_402_300_800_000 + 100_000 {
            for off in offsets {
                let t = Timestamp {
                    unix_ms: ms,
                    offset_secs: off,
                };
                let (mut fast, mut plain) = (Vec::new(), Vec::new());
                t.write_rfc3339(&mut fast);
                t.write_full(&mut plain);
                assert_eq!(
                    String::from_utf8(fast).unwrap(),
                    String::from_utf8(plain).unwrap()
                );
                n += 1;
            }
            // an irregular step, so milliseconds, seconds and days all vary
            ms += 86_399_999 * 97 + 1_237;
        }
        assert!(n > 1000);
        let t = Timestamp {
            unix_ms: 1_512_000_000_123,
            offset_secs: -3 * 3600 - 1800,
        };
        assert_eq!(t.to_rfc3339(), "2017-11-29T20:30:00.123-03:30");
    }
}
