//! Repeated warnings limited in one place: a fault that repeats every 200 ms (a full disk under
//! the checkpoint, say) logs its first occurrence, then at most one line per interval saying
//! how many were left out, so that a bad hour cannot fill `C:` with the service's own log.

use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Limited {
    interval: Duration,
    /// When a line was last let through, and how many were held back since.
    state: Mutex<(Option<Instant>, u64)>,
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
        let due =
            st.0.is_none_or(|t| now.saturating_duration_since(t) >= self.interval);
        if due {
            let held = st.1;
            *st = (Some(now), 0);
            Some(held)
        } else {
            st.1 += 1;
            None
        }
    }
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
}
