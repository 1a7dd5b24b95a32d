//! Rate limits: a token bucket per limited party (an API key, an address).
//!
//! Each party may send `burst` requests at once, then `per_sec` a second on
//! average. The instant is a parameter, as the time elapsed since any fixed
//! origin on a monotonic clock (limits are about real elapsed time, not the
//! business clock), so the rules are tested with chosen instants.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::Duration;

/// How fast a party may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Requests a second, on average (at least 1).
    pub per_sec: u32,
    /// Requests at once (at least 1).
    pub burst: u32,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Duration,
}

/// Token buckets keyed by party, holding at most `capacity` parties (full
/// buckets are forgotten first, so memory stays bounded).
#[derive(Debug)]
pub struct Buckets<K> {
    rate: Rate,
    capacity: usize,
    buckets: HashMap<K, Bucket>,
}

impl<K: Hash + Eq> Buckets<K> {
    /// Buckets for `rate` (a zero is taken as 1), for up to `capacity` parties.
    pub fn new(rate: Rate, capacity: usize) -> Buckets<K> {
        Buckets {
            rate: Rate {
                per_sec: rate.per_sec.max(1),
                burst: rate.burst.max(1),
            },
            capacity: capacity.max(1),
            buckets: HashMap::new(),
        }
    }

    /// The rate in force.
    pub fn rate(&self) -> Rate {
        self.rate
    }

    /// Counts one request of `key` at `now` (time since the caller's fixed
    /// origin): `Ok` if it may go, else how long until one more would be
    /// allowed.
    pub fn take(&mut self, key: K, now: Duration) -> Result<(), Duration> {
        let (per_sec, burst) = (f64::from(self.rate.per_sec), f64::from(self.rate.burst));
        if self.buckets.len() >= self.capacity && !self.buckets.contains_key(&key) {
            // forget the parties whose buckets have refilled: they lose nothing
            self.buckets
                .retain(|_, b| b.tokens + now.saturating_sub(b.at).as_secs_f64() * per_sec < burst);
            if self.buckets.len() >= self.capacity {
                return Err(Duration::from_secs_f64(1.0 / per_sec));
            }
        }
        let bucket = self.buckets.entry(key).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        if now > bucket.at {
            let refill = (now - bucket.at).as_secs_f64() * per_sec;
            bucket.tokens = (bucket.tokens + refill).min(burst);
            bucket.at = now;
        }
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / per_sec))
        }
    }
}

/// The `Retry-After` value for a wait: whole seconds, rounded up, at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    let whole = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    whole.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An arbitrary origin: every instant the tests use is chosen from it.
    fn origin() -> Duration {
        Duration::from_secs(1000)
    }

    const RATE: Rate = Rate {
        per_sec: 2,
        burst: 5,
    };

    #[test]
    fn a_burst_then_the_rate() {
        let t0 = origin();
        let mut b = Buckets::new(RATE, 10);
        for _ in 0..5 {
            assert_eq!(b.take("door", t0), Ok(()));
        }
        let wait = b.take("door", t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        assert_eq!(retry_after_secs(wait), 1);
        // refused requests do not spend: half a second later one goes
        assert!(b.take("door", t0 + Duration::from_millis(499)).is_err());
        assert_eq!(b.take("door", t0 + Duration::from_millis(500)), Ok(()));
        assert!(b.take("door", t0 + Duration::from_millis(500)).is_err());
        // other parties have their own buckets
        assert_eq!(b.take("desk", t0), Ok(()));
        // a long pause refills to the burst, not beyond
        let later = t0 + Duration::from_secs(3600);
        for _ in 0..5 {
            assert_eq!(b.take("door", later), Ok(()));
        }
        assert!(b.take("door", later).is_err());
    }

    #[test]
    fn sustained_traffic_gets_the_rate() {
        let t0 = origin();
        let mut b = Buckets::new(RATE, 10);
        let mut allowed = 0;
        // one request every 10 ms for 10 s
        for i in 0..1000 {
            if b.take(1, t0 + Duration::from_millis(10 * i)).is_ok() {
                allowed += 1;
            }
        }
        // burst 5 + 2 a second for 9.99 s
        assert_eq!(allowed, 5 + 19);
    }

    #[test]
    fn memory_stays_bounded_and_refilled_parties_are_forgotten() {
        let t0 = origin();
        let mut b = Buckets::new(RATE, 3);
        for k in 0..3 {
            assert!(b.take(k, t0).is_ok());
        }
        // full of parties with spent tokens: a new one waits
        assert!(b.take(99, t0).is_err());
        // once they have refilled they are forgotten and the newcomer goes
        assert!(b.take(99, t0 + Duration::from_secs(1)).is_ok());
        assert!(b.buckets.len() <= 3);
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(2)), 2);
        assert_eq!(retry_after_secs(Duration::from_millis(2001)), 3);
    }

    #[test]
    fn zero_is_taken_as_one() {
        let b: Buckets<u8> = Buckets::new(
            Rate {
                per_sec: 0,
                burst: 0,
            },
            0,
        );
        assert_eq!(
            b.rate(),
            Rate {
                per_sec: 1,
                burst: 1
            }
        );
    }
}
