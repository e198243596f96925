//! The relay's one memory budget: every byte it holds for clients — each
//! subscriber's queued messages and each connection's partly read frame —
//! is charged here first, and nothing is held that could not be charged.
//!
//! Partly read frames may take at most half of the budget, so that clients
//! which start frames and stall cannot starve the subscribers' queues; what
//! frees memory under pressure is shedding the slowest subscriber
//! ([`crate::hub::Hub::make_room`]).

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;

/// The budget's counters.
#[derive(Debug)]
pub struct Budget {
    limit: usize,
    used: AtomicUsize,
    reading: AtomicUsize,
    /// Readers waiting for bytes to come back: releases wake them only
    /// when there are some (every delivered message is a release).
    waiting: AtomicUsize,
    released: Notify,
}

/// Why a charge did not fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Full {
    /// Frames being read already take their half: only waiting helps.
    ReadingHalf,
    /// The whole budget: shedding a slow subscriber may make room.
    Total,
}

/// What a charge is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Use {
    /// Messages queued for a subscriber.
    Queue,
    /// A frame being read from a connection.
    Reading,
}

impl Budget {
    pub fn new(limit: usize) -> Budget {
        Budget {
            limit,
            used: AtomicUsize::new(0),
            reading: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            released: Notify::new(),
        }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes charged now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Bytes charged now for frames being read.
    pub fn reading(&self) -> usize {
        self.reading.load(Ordering::Relaxed)
    }

    /// Charges `n` bytes if they fit; if not, nothing is charged and the
    /// error says which limit they did not fit.
    pub fn try_charge(&self, n: usize, what: Use) -> Result<(), Full> {
        if what == Use::Reading {
            let fits = self
                .reading
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |r| {
                    r.checked_add(n).filter(|&t| t <= self.limit / 2)
                })
                .is_ok();
            if !fits {
                return Err(Full::ReadingHalf);
            }
        }
        let fits = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                u.checked_add(n).filter(|&t| t <= self.limit)
            })
            .is_ok();
        if fits {
            return Ok(());
        }
        if what == Use::Reading {
            self.reading.fetch_sub(n, Ordering::AcqRel);
        }
        Err(Full::Total)
    }

    /// Charges `n` bytes already allocated (an allocator rounding up), even
    /// past the limit.
    pub fn force_charge(&self, n: usize, what: Use) {
        if what == Use::Reading {
            self.reading.fetch_add(n, Ordering::AcqRel);
        }
        self.used.fetch_add(n, Ordering::AcqRel);
    }

    /// Gives back `n` bytes charged for `what`.
    pub fn release(&self, n: usize, what: Use) {
        if n == 0 {
            return;
        }
        if what == Use::Reading {
            self.reading.fetch_sub(n, Ordering::AcqRel);
        }
        self.used.fetch_sub(n, Ordering::AcqRel);
        if self.waiting.load(Ordering::Acquire) > 0 {
            self.released.notify_waiters();
        }
    }

    /// Counts the caller as waiting for bytes to come back until the guard
    /// is dropped; make each [`Budget::some_released`] while holding it.
    pub fn wait_guard(&self) -> WaitGuard<'_> {
        self.waiting.fetch_add(1, Ordering::AcqRel);
        WaitGuard(self)
    }

    /// Completes once some bytes are released after this call (the
    /// future listens from the moment it is made, before it is polled),
    /// provided a [`WaitGuard`] is held.
    pub fn some_released(&self) -> tokio::sync::futures::Notified<'_> {
        self.released.notified()
    }
}

/// See [`Budget::wait_guard`].
#[derive(Debug)]
pub struct WaitGuard<'a>(&'a Budget);

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_up_to_the_limit_and_no_further() {
        let b = Budget::new(100);
        assert_eq!(b.try_charge(60, Use::Queue), Ok(()));
        assert_eq!(b.try_charge(41, Use::Queue), Err(Full::Total));
        assert_eq!(b.try_charge(40, Use::Queue), Ok(()));
        assert_eq!(b.used(), 100);
        b.release(50, Use::Queue);
        assert_eq!(b.used(), 50);
    }

    #[test]
    fn reading_takes_at_most_half() {
        let b = Budget::new(100);
        assert_eq!(b.try_charge(50, Use::Reading), Ok(()));
        assert_eq!(
            b.try_charge(1, Use::Reading),
            Err(Full::ReadingHalf),
            "half is for reading"
        );
        assert_eq!(
            b.try_charge(50, Use::Queue),
            Ok(()),
            "the rest is for queues"
        );
        b.release(50, Use::Reading);
        assert_eq!((b.used(), b.reading()), (50, 0));
        // A reading charge that fits its half but not the whole is undone.
        assert_eq!(b.try_charge(40, Use::Queue), Ok(()));
        assert_eq!(b.try_charge(20, Use::Reading), Err(Full::Total));
        assert_eq!((b.used(), b.reading()), (90, 0));
    }
}
