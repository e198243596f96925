//! One subscriber's queue: the messages the hub has offered it and its
//! writer has not yet taken, bounded in messages and bytes.
//!
//! A published payload is charged to the relay's [`Budget`] once, however
//! many queues hold it (they share one allocation), and given back when the
//! last queue or writer lets it go ([`Payload`]). Unlike a channel, the hub
//! can empty a queue from outside ([`Queue::shed`]): that is how the
//! slowest subscriber gives its memory back under pressure.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::Notify;

use crate::budget::{Budget, Use};

/// A published payload, charged to the budget while anyone holds it.
#[derive(Debug)]
pub struct Payload {
    pub bytes: Bytes,
    /// Publication order: a queue whose oldest payload has the lowest
    /// number is the furthest behind.
    pub seq: u64,
    budget: Arc<Budget>,
}

impl Payload {
    /// Charges `bytes` to `budget`; `None` if they do not fit.
    pub fn charge(bytes: &Bytes, seq: u64, budget: &Arc<Budget>) -> Option<Arc<Payload>> {
        budget.try_charge(bytes.len(), Use::Queue).ok()?;
        Some(Arc::new(Payload {
            bytes: bytes.clone(),
            seq,
            budget: budget.clone(),
        }))
    }
}

impl Drop for Payload {
    fn drop(&mut self) {
        self.budget.release(self.bytes.len(), Use::Queue);
    }
}

/// What became of an offered message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offer {
    Queued,
    /// The subscriber's own queue is full: it is not keeping up.
    Full,
    /// The subscriber is gone.
    Closed,
}

#[derive(Debug, Default)]
struct State {
    items: VecDeque<Arc<Payload>>,
    /// Bytes of `items`.
    bytes: usize,
    /// Bytes the writer has taken and not yet written, and the oldest
    /// publication among them.
    in_flight: usize,
    in_flight_seq: Option<u64>,
    closed: bool,
}

/// How far behind a subscriber is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Bytes waiting and bytes being written.
    pub waiting: usize,
    pub writing: usize,
    /// The oldest publication it still holds.
    pub oldest: Option<u64>,
}

/// A bounded queue of payloads for one subscriber.
#[derive(Debug)]
pub struct Queue {
    state: Mutex<State>,
    ready: Notify,
    max_messages: usize,
    max_bytes: usize,
}

impl Queue {
    /// A queue of at most `max_messages` and `max_bytes` (but one message
    /// of any size fits an empty queue, so a frame larger than `max_bytes`
    /// can still be delivered to a subscriber that keeps up).
    pub fn new(max_messages: usize, max_bytes: usize) -> Queue {
        Queue {
            state: Mutex::new(State::default()),
            ready: Notify::new(),
            max_messages: max_messages.max(1),
            max_bytes,
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every update keeps the counts equal to the items before it can
        // panic, so a poisoned lock is still consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `payload` if the subscriber's limits allow.
    pub fn offer(&self, payload: &Arc<Payload>) -> Offer {
        let mut state = self.state();
        if state.closed {
            return Offer::Closed;
        }
        let len = payload.bytes.len();
        let empty = state.items.is_empty();
        if !empty
            && (state.items.len() >= self.max_messages
                || state.bytes.saturating_add(len) > self.max_bytes)
        {
            return Offer::Full;
        }
        state.items.push_back(payload.clone());
        state.bytes += len;
        drop(state);
        if empty {
            self.ready.notify_one();
        }
        Offer::Queued
    }

    /// How far behind it is now.
    pub fn backlog(&self) -> Backlog {
        let state = self.state();
        let front = state.items.front().map(|p| p.seq);
        Backlog {
            waiting: state.bytes,
            writing: state.in_flight,
            oldest: state.in_flight_seq.or(front),
        }
    }

    /// Drops everything waiting (what no other queue holds is given back
    /// to the budget): (messages, bytes).
    pub fn shed(&self) -> (usize, usize) {
        let mut state = self.state();
        let shed = (state.items.len(), state.bytes);
        let items = std::mem::take(&mut state.items);
        state.bytes = 0;
        drop(state);
        drop(items);
        shed
    }

    /// Closes the queue for good, dropping what waits.
    pub fn close(&self) -> (usize, usize) {
        self.state().closed = true;
        let shed = self.shed();
        self.ready.notify_one();
        shed
    }

    /// Waits for messages and moves them into `out`: up to `max` messages
    /// and `max_bytes` bytes, but always at least one. Returns their bytes,
    /// or `None` once the queue is closed. The writer reports them
    /// [`Queue::written`] once written.
    pub async fn take(
        &self,
        out: &mut Vec<Arc<Payload>>,
        max: usize,
        max_bytes: usize,
    ) -> Option<usize> {
        loop {
            {
                let mut state = self.state();
                if state.closed {
                    return None;
                }
                if let Some(front) = state.items.front() {
                    let seq = front.seq;
                    let mut bytes = 0;
                    while let Some(item) = state.items.front() {
                        let len = item.bytes.len();
                        if !out.is_empty() && (out.len() >= max || bytes + len > max_bytes) {
                            break;
                        }
                        bytes += len;
                        if let Some(item) = state.items.pop_front() {
                            out.push(item);
                        }
                    }
                    state.bytes -= bytes;
                    state.in_flight = bytes;
                    state.in_flight_seq = Some(seq);
                    return Some(bytes);
                }
            }
            self.ready.notified().await;
        }
    }

    /// The writer wrote what it took.
    pub fn written(&self) {
        let mut state = self.state();
        state.in_flight = 0;
        state.in_flight_seq = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(n: usize, seq: u64, budget: &Arc<Budget>) -> Arc<Payload> {
        Payload::charge(&Bytes::from(vec![b'x'; n]), seq, budget).expect("fits")
    }

    #[tokio::test]
    async fn queues_within_its_limits() {
        let budget = Arc::new(Budget::new(1000));
        let q = Queue::new(3, 100);
        assert_eq!(q.offer(&msg(60, 1, &budget)), Offer::Queued);
        assert_eq!(q.offer(&msg(50, 2, &budget)), Offer::Full, "bytes");
        assert_eq!(q.offer(&msg(20, 3, &budget)), Offer::Queued);
        assert_eq!(q.offer(&msg(1, 4, &budget)), Offer::Queued);
        assert_eq!(q.offer(&msg(1, 5, &budget)), Offer::Full, "messages");
        assert_eq!(budget.used(), 81, "what nobody holds is given back");
        let mut out = Vec::new();
        assert_eq!(q.take(&mut out, 2, 1000).await, Some(80));
        let b = q.backlog();
        assert_eq!((b.waiting, b.writing, b.oldest), (1, 80, Some(1)));
        q.written();
        drop(out);
        assert_eq!(q.backlog().oldest, Some(4));
        assert_eq!(budget.used(), 1);
    }

    #[test]
    fn a_payload_is_charged_once_however_many_queues_hold_it() {
        let budget = Arc::new(Budget::new(1000));
        let (a, b) = (Queue::new(10, 1000), Queue::new(10, 1000));
        let p = msg(400, 1, &budget);
        a.offer(&p);
        b.offer(&p);
        drop(p);
        assert_eq!(budget.used(), 400);
        a.shed();
        assert_eq!(budget.used(), 400, "still held by b");
        b.close();
        assert_eq!(budget.used(), 0);
        assert!(Payload::charge(&Bytes::from(vec![0; 1001]), 2, &budget).is_none());
    }

    #[tokio::test]
    async fn the_writer_takes_a_bounded_batch_but_at_least_one() {
        let budget = Arc::new(Budget::new(10_000));
        let q = Queue::new(100, 10_000);
        for (i, n) in [300, 300, 300, 5000].into_iter().enumerate() {
            q.offer(&msg(n, i as u64, &budget));
        }
        let mut out = Vec::new();
        assert_eq!(q.take(&mut out, 10, 700).await, Some(600));
        out.clear();
        assert_eq!(q.take(&mut out, 10, 700).await, Some(300));
        out.clear();
        assert_eq!(
            q.take(&mut out, 10, 700).await,
            Some(5000),
            "one, however large"
        );
        out.clear();
        assert_eq!(q.offer(&msg(1, 9, &budget)), Offer::Queued);
        q.close();
        assert_eq!(q.offer(&msg(1, 10, &budget)), Offer::Closed);
        assert_eq!(q.take(&mut out, 10, 700).await, None);
    }
}
