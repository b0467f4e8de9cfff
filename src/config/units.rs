//! `"30s"`, `"5m"`, `"7d"`, `"256KiB"`: the units admins write.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (e.g. 500ms, 30s, 5m, 2h, 7d)"))?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "s" | "" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86_400.0,
        u => {
            return Err(format!(
                "unknown unit `{u}` in `{s}` (use ms, s, m, h or d)"
            ));
        }
    };
    // `from_secs_f64` panics past u64::MAX seconds (`"99999999999999999d"`); the checked
    // form refuses instead. Each key's own maximum is checked by the config's validation.
    Duration::try_from_secs_f64(secs).map_err(|_| format!("`{s}` is too long a duration"))
}

pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|e: std::num::ParseIntError| {
        if matches!(e.kind(), std::num::IntErrorKind::PosOverflow) {
            format!("`{s}` is too large a size")
        } else {
            format!("`{s}` is not a size (e.g. 512KiB, 5MiB)")
        }
    })?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => 1024 * 1024,
        "g" | "gb" | "gib" => 1024 * 1024 * 1024,
        u => {
            return Err(format!(
                "unknown unit `{u}` in `{s}` (use B, KiB, MiB or GiB)"
            ));
        }
    };
    // `99999999999999GiB` overflows u64: refused rather than wrapped or panicking.
    n.checked_mul(mult)
        .ok_or_else(|| format!("`{s}` is too large a size"))
}

#[derive(Deserialize)]
#[serde(untagged)]
enum StrOrInt {
    S(String),
    // i64, as TOML integers are: a negative number is refused with a message of ours
    // rather than serde's "did not match any variant".
    I(i64),
}

fn non_negative(n: i64) -> Result<u64, String> {
    u64::try_from(n).map_err(|_| format!("`{n}` is negative"))
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match StrOrInt::deserialize(d)? {
            StrOrInt::S(s) => parse_duration(&s)
                .map(HumanDuration)
                .map_err(serde::de::Error::custom),
            StrOrInt::I(n) => non_negative(n)
                .map(|n| HumanDuration(Duration::from_secs(n)))
                .map_err(serde::de::Error::custom),
        }
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match StrOrInt::deserialize(d)? {
            StrOrInt::S(s) => parse_bytes(&s)
                .map(ByteSize)
                .map_err(serde::de::Error::custom),
            StrOrInt::I(n) => non_negative(n)
                .map(ByteSize)
                .map_err(serde::de::Error::custom),
        }
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        for (unit, size) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
            if b >= size && b % size == 0 {
                return write!(f, "{}{unit}", b / size);
            }
        }
        write!(f, "{b}B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes() {
        assert_eq!(parse_duration("7d").unwrap(), Duration::from_secs(604_800));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("5 fortnights").is_err());
        assert_eq!(parse_bytes("256KiB").unwrap(), 262_144);
        assert_eq!(parse_bytes("5MiB").unwrap(), 5 * 1024 * 1024);
        assert!(parse_bytes("1XB").is_err());
    }

    #[test]
    fn overflow_is_an_error_not_a_panic() {
        for d in ["99999999999999999999d", "1e400s", "184467440737095516160s"] {
            assert!(parse_duration(d).is_err(), "{d}");
        }
        let e = parse_duration("99999999999999999999d").unwrap_err();
        assert!(e.contains("too long"), "{e}");
        for b in [
            "99999999999999GiB",
            "18446744073709551616",
            "17179869184GiB",
        ] {
            let e = parse_bytes(b).unwrap_err();
            assert!(e.contains("too large"), "{b}: {e}");
        }
    }
}
