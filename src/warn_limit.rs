//! Repeated warnings limited in one place: a fault that repeats every 200 ms (a full disk under
//! the checkpoint, a sink refusing every batch, a file that cannot be read, a folder that
//! cannot be listed) logs its first occurrence, then at most one line per interval saying how
//! many were left out (`repeated = N`), so that a bad hour cannot fill `C:` with the
//! service's own log.
//!
//! [`check`] is the one gate for every warning that can repeat per record, batch, retry, poll
//! or scan: the site names the warning, the key what makes two of them different (a sink's
//! name, a file's path), so that one bad file does not silence the warning about another.
//! [`Limited`] is the same gate for a site with a single key.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often one warning (site and key) may be logged.
pub const INTERVAL: Duration = Duration::from_secs(60);

/// Keys kept at most; past this, keys quiet for a whole interval are forgotten (a later
/// occurrence is then logged as a first one), so that the map stays small.
const MAX_KEYS: usize = 4096;

/// The shared key of a site's keys past `MAX_KEYS`.
const OVERFLOW: &str = "\u{0}other keys";

/// When a line was last let through, and how many were held back since.
type Slot = (Option<Instant>, u64);

pub struct Limited {
    interval: Duration,
    state: Mutex<Slot>,
}

impl Limited {
    pub const fn new(interval: Duration) -> Limited {
        Limited {
            interval,
            state: Mutex::new((None, 0)),
        }
    }

    /// `Some(n)` when this occurrence is to be logged, `n` being how many were held back
    /// since the last one logged; `None` to stay quiet.
    pub fn check(&self) -> Option<u64> {
        self.check_at(Instant::now())
    }

    fn check_at(&self, now: Instant) -> Option<u64> {
        let mut st = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let interval = self.interval;
        admit(&mut st, now, interval)
    }
}

/// The decision for one slot.
fn admit(slot: &mut Slot, now: Instant, interval: Duration) -> Option<u64> {
    let due = slot
        .0
        .is_none_or(|t| now.saturating_duration_since(t) >= interval);
    if due {
        let held = slot.1;
        *slot = (Some(now), 0);
        Some(held)
    } else {
        slot.1 += 1;
        None
    }
}

/// Limits by site and key, each on its own.
pub struct Keyed {
    interval: Duration,
    slots: Mutex<BTreeMap<(&'static str, String), Slot>>,
}

impl Keyed {
    pub const fn new(interval: Duration) -> Keyed {
        Keyed {
            interval,
            slots: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn check(&self, site: &'static str, key: &str) -> Option<u64> {
        self.check_at(site, key, Instant::now())
    }

    fn check_at(&self, site: &'static str, key: &str, now: Instant) -> Option<u64> {
        let mut slots = self
            .slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(slot) = slots.get_mut(&(site, key.to_string())) {
            return admit(slot, now, self.interval);
        }
        if slots.len() >= MAX_KEYS {
            let interval = self.interval;
            slots.retain(|_, (t, held)| {
                *held > 0 || t.is_some_and(|t| now.saturating_duration_since(t) < interval)
            });
        }
        // still full: the site's other keys share one slot rather than grow the map
        let key = if slots.len() >= MAX_KEYS {
            OVERFLOW
        } else {
            key
        };
        let slot = slots.entry((site, key.to_string())).or_insert((None, 0));
        admit(slot, now, self.interval)
    }
}

static ALL: Keyed = Keyed::new(INTERVAL);

/// `Some(n)` when this occurrence of warning `site` for `key` is to be logged (the first, or
/// the first after an interval), `n` being how many were held back since the last one
/// logged: log it with `repeated = n`. `None`: stay quiet.
pub fn check(site: &'static str, key: &str) -> Option<u64> {
    ALL.check(site, key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_then_one_per_interval_with_the_count() {
        let l = Limited::new(Duration::from_secs(60));
        let t0 = Instant::now();
        assert_eq!(l.check_at(t0), Some(0));
        let logged = (1..=50)
            .filter(|i| l.check_at(t0 + Duration::from_secs(*i)).is_some())
            .count();
        assert_eq!(logged, 0, "quiet within the interval");
        assert_eq!(l.check_at(t0 + Duration::from_secs(61)), Some(50));
        assert_eq!(l.check_at(t0 + Duration::from_secs(62)), None);
    }

    /// Five minutes of a warning every 200 ms for two files: per file, the first and then one
    /// line a minute carrying the count of the 299 left out before it.
    #[test]
    fn keys_are_limited_each_on_its_own() {
        let l = Keyed::new(Duration::from_secs(60));
        let t0 = Instant::now();
        let mut logged: Vec<(&str, u64)> = Vec::new();
        for i in 0..1500u64 {
            let now = t0 + Duration::from_millis(200 * i);
            for key in ["a.log", "b.log"] {
                if let Some(held) = l.check_at("site", key, now) {
                    logged.push((key, held));
                }
            }
        }
        let a: Vec<u64> = logged
            .iter()
            .filter(|(k, _)| *k == "a.log")
            .map(|x| x.1)
            .collect();
        assert_eq!(a, vec![0, 299, 299, 299, 299]);
        assert_eq!(logged.len(), 10);
        // another site with the same key is another warning
        assert_eq!(l.check_at("other", "a.log", t0), Some(0));
    }

    #[test]
    fn the_map_stays_bounded() {
        let l = Keyed::new(Duration::from_secs(60));
        let t0 = Instant::now();
        for i in 0..3 * MAX_KEYS {
            // each key once, a minute apart per batch of MAX_KEYS: old ones are forgotten
            let now = t0 + Duration::from_secs(61 * (i / MAX_KEYS) as u64);
            assert_eq!(l.check_at("s", &i.to_string(), now), Some(0));
        }
        assert!(l.slots.lock().unwrap().len() <= MAX_KEYS);
        // past the cap within one interval, the new keys share one slot
        let now = t0 + Duration::from_secs(61 * 3);
        for i in 0..MAX_KEYS {
            l.check_at("s", &format!("n{i}"), now);
        }
        assert_eq!(l.check_at("s", "one more", now), Some(0));
        assert_eq!(l.check_at("s", "and another", now), None, "the same slot");
        assert!(l.slots.lock().unwrap().len() <= MAX_KEYS + 1);
    }
}
