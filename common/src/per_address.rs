//! A token bucket per client address: what one laptop may do so often
//! (guess the teacher's token, ask the faucet), whatever number of
//! connections it opens. Bounded: at most [`MAX_ADDRESSES`] followed; past
//! that, the full buckets (nothing owed) are forgotten first.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Addresses followed at once.
pub const MAX_ADDRESSES: usize = 4096;

#[derive(Clone, Copy, Debug)]
struct Bucket {
    left: f64,
    at: Instant,
}

/// `burst` at once per address, then one per `every`.
#[derive(Debug)]
pub struct AddressBuckets {
    burst: f64,
    every: Duration,
    by_address: Mutex<HashMap<IpAddr, Bucket>>,
}

impl AddressBuckets {
    pub fn new(burst: f64, every: Duration) -> AddressBuckets {
        AddressBuckets {
            burst: burst.max(1.0),
            every: every.max(Duration::from_millis(1)),
            by_address: Mutex::default(),
        }
    }

    fn refilled(&self, bucket: Bucket, now: Instant) -> Bucket {
        let earned = now.duration_since(bucket.at).as_secs_f64() / self.every.as_secs_f64();
        Bucket {
            left: (bucket.left + earned).min(self.burst),
            at: now,
        }
    }

    /// How long `addr` must wait for its next turn; `None`: it has one now.
    pub fn wait(&self, addr: IpAddr, now: Instant) -> Option<Duration> {
        let map = self.by_address.lock().unwrap_or_else(|e| e.into_inner());
        let bucket = self.refilled(*map.get(&addr)?, now);
        (bucket.left < 1.0).then(|| self.every.mul_f64(1.0 - bucket.left))
    }

    /// Takes a turn of `addr`'s (whether it had one or not).
    pub fn take(&self, addr: IpAddr, now: Instant) {
        let mut map = self.by_address.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_ADDRESSES && !map.contains_key(&addr) {
            map.retain(|_, b| self.refilled(*b, now).left < self.burst);
            if map.len() >= MAX_ADDRESSES {
                return;
            }
        }
        let bucket = map.entry(addr).or_insert(Bucket {
            left: self.burst,
            at: now,
        });
        *bucket = self.refilled(*bucket, now);
        bucket.left = (bucket.left - 1.0).max(0.0);
    }

    /// Takes a turn of `addr`'s if it has one: whether it had.
    pub fn try_take(&self, addr: IpAddr, now: Instant) -> bool {
        if self.wait(addr, now).is_some() {
            return false;
        }
        self.take(addr, now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_has_its_burst_then_a_turn_per_interval() {
        let buckets = AddressBuckets::new(3.0, Duration::from_secs(20));
        let (student, classmate): (IpAddr, IpAddr) =
            ("10.0.0.7".parse().unwrap(), "10.0.0.8".parse().unwrap());
        let t0 = Instant::now();
        assert_eq!((0..10).filter(|_| buckets.try_take(student, t0)).count(), 3);
        assert!(buckets.try_take(classmate, t0), "another address");
        let wait = buckets.wait(student, t0).unwrap();
        assert!(wait <= Duration::from_secs(20), "{wait:?}");
        assert!(buckets.try_take(student, t0 + Duration::from_secs(20)));
        assert!(!buckets.try_take(student, t0 + Duration::from_secs(21)));
    }
}
