//! One subscriber's queue: the messages the hub has offered it and its
//! writer has not yet taken, bounded in messages and bytes.
//!
//! Fair between publishers (issue 34; fq_codel's idea, per subscriber):
//! each publisher's messages wait in a flow of their own, in order, and
//! the writer takes one message from each flow in turn, so a student
//! flooding the topic cannot make a node's vote wait behind the flood.
//! When the queue is full, a message from a publisher with less queued
//! displaces the oldest of the publisher with the most bytes queued: the
//! flooder loses its own frames, never anyone else's.
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

/// Largest message a publisher writes to an idle subscriber's socket
/// itself; larger ones go through the writer task, so one publisher's read
/// loop never spends long copying into another client's socket.
pub const MAX_INLINE: usize = 64 * 1024;

/// A published payload, charged to the budget while anyone holds it.
#[derive(Debug)]
pub struct Payload {
    pub bytes: Bytes,
    /// Publication order: a queue whose oldest payload has the lowest
    /// number is the furthest behind.
    pub seq: u64,
    /// Who published it (its connection's id; 0: the relay itself).
    pub from: u64,
    budget: Arc<Budget>,
}

impl Payload {
    /// Charges `bytes`, published by `from`, to `budget`; `None` if they
    /// do not fit.
    pub fn charge(
        bytes: &Bytes,
        seq: u64,
        from: u64,
        budget: &Arc<Budget>,
    ) -> Option<Arc<Payload>> {
        budget.try_charge(bytes.len(), Use::Queue).ok()?;
        Some(Arc::new(Payload {
            bytes: bytes.clone(),
            seq,
            from,
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
    /// Queued, in the place of this many messages of a publisher with more
    /// queued (lost).
    Displaced(usize),
    /// The subscriber's own queue is full: it is not keeping up.
    Full,
    /// The subscriber is gone.
    Closed,
    /// Nothing waits and nobody is writing: the caller now holds the
    /// subscriber's socket and writes this message itself (no task woken),
    /// then calls [`Queue::wrote_inline`].
    WriteNow,
}

/// One publisher's messages in a queue, in the order published.
#[derive(Debug)]
struct Flow {
    from: u64,
    items: VecDeque<Arc<Payload>>,
    bytes: usize,
}

/// What one queued message costs beyond its payload (its place in the
/// queue, the payload's header): charged to the budget for every queue
/// that holds it, so that a flood of tiny messages is bounded in bytes
/// like any other. Charged as a message is queued, given back as it
/// leaves (written, displaced, shed), a batch at a time.
pub const ENTRY_BYTES: usize = 64;

#[derive(Debug, Default)]
struct State {
    /// The flows with messages waiting, in turn: the front one gives the
    /// next message and goes to the back.
    flows: VecDeque<Flow>,
    /// Messages and bytes of every flow.
    messages: usize,
    bytes: usize,
    /// Bytes the writer has taken and not yet written, and the oldest
    /// publication among them.
    in_flight: usize,
    in_flight_seq: Option<u64>,
    /// Someone holds the socket: the writer task or a publisher writing
    /// inline. Only the holder writes, so frames never interleave.
    writing: bool,
    /// A frame a publisher began writing inline and could not finish, and
    /// how many of its bytes (prefix included) are written: the writer
    /// task finishes it before anything queued.
    partial: Option<(Arc<Payload>, usize)>,
    closed: bool,
}

/// What the writer task took: payloads and how much of the first frame is
/// already written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Taken {
    /// Payload bytes taken, the first frame's whole payload included.
    pub bytes: usize,
    /// Bytes of the first frame (its 4-byte prefix included) written before.
    pub skip: usize,
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
    /// The relay's budget: each message's place is charged to it, and
    /// `max_bytes` holds only while it is half used or more.
    budget: Option<Arc<Budget>>,
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
            budget: None,
        }
    }

    /// As [`Queue::new`], within the relay's `budget`: a subscriber that
    /// is merely behind loses nothing while the budget is less than half
    /// used (its `max_bytes` holds from then on, and the slowest is shed
    /// when the budget fills); every message's place is charged to it.
    pub fn within(max_messages: usize, max_bytes: usize, budget: Arc<Budget>) -> Queue {
        Queue {
            budget: Some(budget),
            ..Queue::new(max_messages, max_bytes)
        }
    }

    /// Gives back the places of `n` messages that left the queue.
    fn release_places(&self, n: usize) {
        if let (Some(budget), true) = (&self.budget, n > 0) {
            budget.release(n * ENTRY_BYTES, Use::Queue);
        }
    }

    /// Whether the budget is half used or more (always, without one): the
    /// per-subscriber byte limit holds.
    fn pressed(&self) -> bool {
        self.budget
            .as_ref()
            .map_or(true, |b| b.used().saturating_mul(2) >= b.limit())
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every update keeps the counts equal to the items before it can
        // panic, so a poisoned lock is still consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `payload` if the subscriber's limits allow; with `inline`,
    /// hands an idle subscriber's socket to the caller instead. The
    /// message's place is charged to the budget here.
    pub fn offer(&self, payload: &Arc<Payload>, inline: bool) -> Offer {
        self.offer_charging(payload, inline, true)
    }

    /// As [`Queue::offer`], the message's place ([`ENTRY_BYTES`]) already
    /// charged by the caller, who gives it back unless the offer was
    /// [`Offer::Queued`] or [`Offer::Displaced`]: the hub charges the
    /// places of every subscriber of a topic at once, not one atomic
    /// operation per subscriber.
    pub fn offer_prepaid(&self, payload: &Arc<Payload>, inline: bool) -> Offer {
        self.offer_charging(payload, inline, false)
    }

    fn offer_charging(&self, payload: &Arc<Payload>, inline: bool, charge: bool) -> Offer {
        let mut state = self.state();
        if state.closed {
            return Offer::Closed;
        }
        let len = payload.bytes.len();
        let empty = state.messages == 0;
        if inline && empty && !state.writing && state.partial.is_none() && len <= MAX_INLINE {
            state.writing = true;
            return Offer::WriteNow;
        }
        let mut displaced = 0;
        if !empty
            && (state.messages >= self.max_messages
                || (state.bytes.saturating_add(len) > self.max_bytes && self.pressed()))
        {
            match self.displace(&mut state, payload.from, len) {
                Some(n) => displaced = n,
                None => return Offer::Full,
            }
        }
        let flow = match state.flows.iter().rposition(|f| f.from == payload.from) {
            Some(i) => &mut state.flows[i],
            None => {
                state.flows.push_back(Flow {
                    from: payload.from,
                    items: VecDeque::new(),
                    bytes: 0,
                });
                let last = state.flows.len() - 1;
                &mut state.flows[last]
            }
        };
        if let (Some(budget), true) = (&self.budget, charge) {
            budget.force_charge(ENTRY_BYTES, Use::Queue);
        }
        flow.items.push_back(payload.clone());
        flow.bytes += len;
        state.messages += 1;
        state.bytes += len;
        let wake = !state.writing;
        drop(state);
        // Whoever holds the socket looks at the queue again when it lets
        // go of it; otherwise the writer task must be woken.
        if wake {
            self.ready.notify_one();
        }
        if displaced > 0 {
            Offer::Displaced(displaced)
        } else {
            Offer::Queued
        }
    }

    /// Makes room for `len` bytes from `from` in a full queue by dropping
    /// the oldest messages of the publisher with the most bytes queued,
    /// if that is another with more than `from` would have: how many were
    /// dropped, or `None` (then `from`'s message is the one lost).
    fn displace(&self, state: &mut State, from: u64, len: usize) -> Option<usize> {
        let own = state
            .flows
            .iter()
            .find(|f| f.from == from)
            .map_or(0, |f| f.bytes);
        let fattest = (0..state.flows.len()).max_by_key(|&i| state.flows[i].bytes)?;
        let flow = &state.flows[fattest];
        let need_messages = (state.messages + 1).saturating_sub(self.max_messages);
        let need_bytes = (state.bytes + len).saturating_sub(self.max_bytes);
        if flow.from == from
            || flow.bytes <= own + len
            || flow.items.len() < need_messages
            || flow.bytes < need_bytes
        {
            return None;
        }
        let (mut dropped, mut bytes) = (0, 0);
        let flow = &mut state.flows[fattest];
        while dropped < need_messages || bytes < need_bytes {
            let Some(item) = flow.items.pop_front() else {
                break;
            };
            dropped += 1;
            bytes += item.bytes.len();
        }
        flow.bytes -= bytes;
        if flow.items.is_empty() {
            state.flows.remove(fattest);
        }
        state.messages -= dropped;
        state.bytes -= bytes;
        self.release_places(dropped);
        Some(dropped)
    }

    /// The next message in turn: the front flow's oldest; that flow goes
    /// to the back.
    fn next_in_turn(state: &mut State) -> Option<Arc<Payload>> {
        let item = if state.flows.len() == 1 {
            // One publisher (the common case): no turns to take.
            let flow = state.flows.front_mut()?;
            let item = flow.items.pop_front()?;
            flow.bytes -= item.bytes.len();
            if flow.items.is_empty() {
                state.flows.clear();
            }
            item
        } else {
            let mut flow = state.flows.pop_front()?;
            let item = flow.items.pop_front()?;
            flow.bytes -= item.bytes.len();
            if !flow.items.is_empty() {
                state.flows.push_back(flow);
            }
            item
        };
        state.messages -= 1;
        state.bytes -= item.bytes.len();
        Some(item)
    }

    /// A publisher that was told [`Offer::WriteNow`] lets go of the socket,
    /// handing over the frame it could not finish (with the bytes written).
    pub fn wrote_inline(&self, unfinished: Option<(Arc<Payload>, usize)>) {
        let mut state = self.state();
        state.writing = false;
        if state.closed {
            return;
        }
        state.partial = unfinished;
        let wake = state.partial.is_some() || state.messages > 0;
        drop(state);
        if wake {
            self.ready.notify_one();
        }
    }

    /// How far behind it is now.
    pub fn backlog(&self) -> Backlog {
        let state = self.state();
        let front = state
            .flows
            .iter()
            .filter_map(|f| f.items.front().map(|p| p.seq))
            .min();
        let partial = state.partial.as_ref();
        Backlog {
            waiting: state.bytes,
            writing: state.in_flight + partial.map_or(0, |(p, _)| p.bytes.len()),
            oldest: state
                .in_flight_seq
                .or(partial.map(|(p, _)| p.seq))
                .or(front),
        }
    }

    /// Drops everything waiting (what no other queue holds is given back
    /// to the budget): (messages, bytes).
    pub fn shed(&self) -> (usize, usize) {
        let mut state = self.state();
        let shed = (state.messages, state.bytes);
        let flows = std::mem::take(&mut state.flows);
        state.messages = 0;
        state.bytes = 0;
        drop(state);
        drop(flows);
        self.release_places(shed.0);
        shed
    }

    /// Closes the queue for good, dropping what waits.
    pub fn close(&self) -> (usize, usize) {
        let partial = {
            let mut state = self.state();
            state.closed = true;
            state.partial.take()
        };
        drop(partial);
        let shed = self.shed();
        self.ready.notify_one();
        shed
    }

    /// Waits for messages and moves them into `out`: an unfinished frame
    /// first, then up to `max` messages and `max_bytes` bytes, but always at
    /// least one. Returns what it took, or `None` once the queue is closed.
    /// The writer holds the socket until it reports [`Queue::written`].
    pub async fn take(
        &self,
        out: &mut Vec<Arc<Payload>>,
        max: usize,
        max_bytes: usize,
    ) -> Option<Taken> {
        loop {
            {
                let mut state = self.state();
                if state.closed {
                    return None;
                }
                if !state.writing && (state.partial.is_some() || state.messages > 0) {
                    let mut taken = Taken { bytes: 0, skip: 0 };
                    let mut seq = None;
                    if let Some((payload, written)) = state.partial.take() {
                        taken = Taken {
                            bytes: payload.bytes.len(),
                            skip: written,
                        };
                        seq = Some(payload.seq);
                        out.push(payload);
                    }
                    let mut places = 0;
                    while let Some(len) = state
                        .flows
                        .front()
                        .and_then(|f| f.items.front())
                        .map(|item| item.bytes.len())
                    {
                        if !out.is_empty() && (out.len() >= max || taken.bytes + len > max_bytes) {
                            break;
                        }
                        let Some(item) = Self::next_in_turn(&mut state) else {
                            break;
                        };
                        seq = Some(seq.map_or(item.seq, |s: u64| s.min(item.seq)));
                        taken.bytes += len;
                        places += 1;
                        out.push(item);
                    }
                    self.release_places(places);
                    state.in_flight = taken.bytes;
                    state.in_flight_seq = seq;
                    state.writing = true;
                    return Some(taken);
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
        state.writing = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(n: usize, seq: u64, budget: &Arc<Budget>) -> Arc<Payload> {
        from(1, n, seq, budget)
    }

    fn from(publisher: u64, n: usize, seq: u64, budget: &Arc<Budget>) -> Arc<Payload> {
        Payload::charge(&Bytes::from(vec![b'x'; n]), seq, publisher, budget).expect("fits")
    }

    /// Issue 39: each queued message's place is charged to the budget
    /// beside its payload, and given back as it leaves: taken by the
    /// writer, or shed.
    #[tokio::test]
    async fn every_queued_place_is_charged_and_given_back() {
        let budget = Arc::new(Budget::new(1 << 20));
        let q = Queue::within(usize::MAX, 1 << 20, budget.clone());
        for i in 0..10 {
            assert_eq!(q.offer(&msg(10, i, &budget), false), Offer::Queued);
        }
        assert_eq!(budget.used(), 10 * (10 + ENTRY_BYTES));
        let mut out = Vec::new();
        q.take(&mut out, 4, usize::MAX).await.expect("taken");
        assert_eq!(out.len(), 4);
        assert_eq!(budget.used(), 10 * 10 + 6 * ENTRY_BYTES);
        drop(out);
        q.written();
        assert_eq!(budget.used(), 6 * (10 + ENTRY_BYTES));
        assert_eq!(q.shed(), (6, 60));
        assert_eq!(budget.used(), 0);
    }

    /// Issue 34: a flooding publisher fills a subscriber's queue; a node's
    /// message still gets in (displacing the flood's oldest) and goes out
    /// next in turn, not behind the flood.
    #[tokio::test]
    async fn a_flood_loses_its_own_messages_and_others_go_out_in_turn() {
        let budget = Arc::new(Budget::new(1_000_000));
        let q = Queue::new(10, 10_000);
        assert_eq!(q.offer(&from(9, 1, 0, &budget), true), Offer::WriteNow);
        for seq in 1..=10 {
            assert_eq!(q.offer(&from(9, 10, seq, &budget), true), Offer::Queued);
        }
        // The flooder's next is its own loss.
        assert_eq!(q.offer(&from(9, 10, 11, &budget), true), Offer::Full);
        // A node's vote displaces the flood's oldest.
        assert_eq!(
            q.offer(&from(2, 10, 12, &budget), true),
            Offer::Displaced(1)
        );
        assert_eq!(
            q.offer(&from(3, 10, 13, &budget), true),
            Offer::Displaced(1)
        );
        q.wrote_inline(None);
        let mut out = Vec::new();
        q.take(&mut out, 4, 100_000).await;
        let order: Vec<(u64, u64)> = out.iter().map(|p| (p.from, p.seq)).collect();
        // One from each publisher in turn: the votes are not behind the flood.
        assert_eq!(order, [(9, 3), (2, 12), (3, 13), (9, 4)]);
        q.written();
        assert_eq!(q.backlog().oldest, Some(5));
    }

    fn taken(bytes: usize) -> Option<Taken> {
        Some(Taken { bytes, skip: 0 })
    }

    #[tokio::test]
    async fn queues_within_its_limits_while_someone_writes() {
        let budget = Arc::new(Budget::new(1000));
        let q = Queue::new(3, 100);
        assert_eq!(q.offer(&msg(5, 0, &budget), true), Offer::WriteNow, "idle");
        assert_eq!(q.offer(&msg(60, 1, &budget), true), Offer::Queued);
        assert_eq!(q.offer(&msg(50, 2, &budget), true), Offer::Full, "bytes");
        assert_eq!(q.offer(&msg(20, 3, &budget), true), Offer::Queued);
        assert_eq!(q.offer(&msg(1, 4, &budget), true), Offer::Queued);
        assert_eq!(q.offer(&msg(1, 5, &budget), true), Offer::Full, "messages");
        assert_eq!(budget.used(), 81, "what nobody holds is given back");
        q.wrote_inline(None);
        let mut out = Vec::new();
        assert_eq!(q.take(&mut out, 2, 1000).await, taken(80));
        let b = q.backlog();
        assert_eq!((b.waiting, b.writing, b.oldest), (1, 80, Some(1)));
        assert_eq!(
            q.offer(&msg(1, 6, &budget), true),
            Offer::Queued,
            "writer holds it"
        );
        q.written();
        drop(out);
        assert_eq!(q.backlog().oldest, Some(4));
        assert_eq!(budget.used(), 2);
    }

    #[test]
    fn a_payload_is_charged_once_however_many_queues_hold_it() {
        let budget = Arc::new(Budget::new(1000));
        let (a, b) = (Queue::new(10, 1000), Queue::new(10, 1000));
        for q in [&a, &b] {
            assert_eq!(q.offer(&msg(0, 0, &budget), true), Offer::WriteNow);
        }
        let p = msg(400, 1, &budget);
        a.offer(&p, true);
        b.offer(&p, true);
        drop(p);
        assert_eq!(budget.used(), 400);
        a.shed();
        assert_eq!(budget.used(), 400, "still held by b");
        b.close();
        assert_eq!(budget.used(), 0);
        assert!(Payload::charge(&Bytes::from(vec![0; 1001]), 2, 1, &budget).is_none());
    }

    #[tokio::test]
    async fn the_writer_takes_a_bounded_batch_but_at_least_one() {
        let budget = Arc::new(Budget::new(10_000));
        let q = Queue::new(100, 10_000);
        assert_eq!(q.offer(&msg(0, 0, &budget), true), Offer::WriteNow);
        for (i, n) in [300, 300, 300, 5000].into_iter().enumerate() {
            q.offer(&msg(n, i as u64 + 1, &budget), true);
        }
        q.wrote_inline(None);
        let mut out = Vec::new();
        assert_eq!(q.take(&mut out, 10, 700).await, taken(600));
        q.written();
        out.clear();
        assert_eq!(q.take(&mut out, 10, 700).await, taken(300));
        q.written();
        out.clear();
        assert_eq!(
            q.take(&mut out, 10, 700).await,
            taken(5000),
            "one, however large"
        );
        out.clear();
        assert_eq!(q.offer(&msg(1, 9, &budget), true), Offer::Queued);
        q.close();
        assert_eq!(q.offer(&msg(1, 10, &budget), true), Offer::Closed);
        assert_eq!(q.take(&mut out, 10, 700).await, None);
    }

    #[tokio::test]
    async fn an_unfinished_inline_frame_is_finished_before_what_was_queued() {
        let budget = Arc::new(Budget::new(10_000));
        let q = Queue::new(100, 10_000);
        let first = msg(100, 1, &budget);
        assert_eq!(q.offer(&first, true), Offer::WriteNow);
        assert_eq!(q.offer(&msg(7, 2, &budget), true), Offer::Queued);
        q.wrote_inline(Some((first, 30)));
        let b = q.backlog();
        assert_eq!((b.waiting, b.writing, b.oldest), (7, 100, Some(1)));
        let mut out = Vec::new();
        let got = q.take(&mut out, 10, 1000).await;
        assert_eq!(
            got,
            Some(Taken {
                bytes: 107,
                skip: 30
            })
        );
        assert_eq!(out.iter().map(|p| p.seq).collect::<Vec<_>>(), [1, 2]);
        q.written();
        assert_eq!(
            q.offer(&msg(1, 3, &budget), false),
            Offer::Queued,
            "more follow"
        );
        assert_eq!(q.take(&mut Vec::new(), 10, 1000).await, taken(1));
        q.written();
        assert_eq!(
            q.offer(&msg(1, 4, &budget), true),
            Offer::WriteNow,
            "idle again"
        );
    }

    #[tokio::test]
    async fn the_writer_waits_while_a_publisher_writes() {
        let budget = Arc::new(Budget::new(10_000));
        let q = Arc::new(Queue::new(100, 10_000));
        assert_eq!(q.offer(&msg(1, 1, &budget), true), Offer::WriteNow);
        assert_eq!(q.offer(&msg(2, 2, &budget), true), Offer::Queued);
        let writer = {
            let q = q.clone();
            tokio::spawn(async move { q.take(&mut Vec::new(), 10, 1000).await })
        };
        tokio::task::yield_now().await;
        assert!(!writer.is_finished(), "the socket is held");
        q.wrote_inline(None);
        let got = tokio::time::timeout(std::time::Duration::from_secs(5), writer).await;
        assert_eq!(got.expect("woken").expect("ran"), taken(2));
    }
}
