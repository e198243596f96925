//! Fan-out: topics, their subscribers, and delivery to bounded queues.
//!
//! Publishing never waits for a subscriber. Each subscriber has a bounded
//! [`Queue`] (in messages and in bytes); the hub offers each payload to
//! every queue, sharing one allocation among all subscribers (no copy per
//! subscriber), charged once to the relay's one [`Budget`].
//!
//! Two ways a subscriber can fall behind, and what happens:
//! - its own queue is full: the message is dropped for it and counted, or,
//!   with the `disconnect` policy, it is told to leave;
//! - the budget is full: [`Hub::make_room`] sheds the slowest subscriber —
//!   the one still holding the oldest message — first, dropping what waits
//!   for it (or disconnecting it), until the message fits. A subscriber
//!   that keeps up holds only the newest messages, so it is shed last.
//!
//! Nobody else ever waits for a slow subscriber.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use tokio::net::tcp::OwnedWriteHalf;
use tokio_util::sync::CancellationToken;

use crate::budget::{Budget, Use};
use crate::nemesis::{Fate, Nemesis};
use crate::queue::{Offer, Payload, Queue, ENTRY_BYTES};
pub use crate::stats::Delivery;
use crate::stats::Stats;
use crate::writer::write_inline;

/// What to do with a subscriber that falls behind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SlowPolicy {
    /// Drop messages for that subscriber (counted and reported).
    #[default]
    Drop,
    /// Disconnect the subscriber.
    Disconnect,
}

/// The hub's end of one subscriber.
#[derive(Clone, Debug)]
pub struct Subscriber {
    pub id: u64,
    pub peer: SocketAddr,
    pub queue: Arc<Queue>,
    /// Its socket's write half, for a publisher to write to it directly
    /// while its queue is idle ([`Offer::WriteNow`]).
    pub socket: Arc<OwnedWriteHalf>,
    /// Cancelled to make the connection leave.
    pub kick: CancellationToken,
}

/// A topic's subscribers now, and how many subscriptions it has taken
/// since it last had none: a client that subscribed and left between two
/// looks is still counted (`toycoin-check` grades "subscribes" by it). The
/// count goes with the topic, so it costs nothing once nobody listens.
#[derive(Debug, Default)]
struct Topic {
    subs: Vec<Subscriber>,
    joined: u64,
}

type Topics = HashMap<Bytes, Topic>;

/// Topics and their subscribers.
#[derive(Debug)]
pub struct Hub {
    topics: Mutex<Topics>,
    budget: Arc<Budget>,
    policy: SlowPolicy,
    stats: Arc<Stats>,
    next_seq: AtomicU64,
    /// Clients by name and the teacher's rules for delivery.
    pub nemesis: Nemesis,
    /// The journal (`--record`): each frame recorded as it is offered, in
    /// the order subscribers get them.
    recorder: Option<Arc<crate::record::Recorder>>,
}

impl Hub {
    pub fn new(budget: Arc<Budget>, policy: SlowPolicy, stats: Arc<Stats>) -> Hub {
        Hub {
            topics: Mutex::new(HashMap::new()),
            budget,
            policy,
            stats,
            next_seq: AtomicU64::new(0),
            nemesis: Nemesis::default(),
            recorder: None,
        }
    }

    /// Records every frame published into `recorder`'s journal.
    pub fn recording(mut self, recorder: Option<Arc<crate::record::Recorder>>) -> Hub {
        self.recorder = recorder;
        self
    }

    fn topics(&self) -> MutexGuard<'_, Topics> {
        // A panic while holding this lock cannot leave the map inconsistent
        // (every update is a single insert or retain), so a poisoned lock is
        // still usable.
        self.topics.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn subscribe(&self, topic: Bytes, subscriber: Subscriber) {
        let mut topics = self.topics();
        let entry = topics.entry(topic).or_default();
        entry.subs.push(subscriber);
        entry.joined += 1;
    }

    pub fn unsubscribe(&self, topic: &[u8], id: u64) {
        let mut topics = self.topics();
        if let Some(entry) = topics.get_mut(topic) {
            entry.subs.retain(|s| s.id != id);
            if entry.subs.is_empty() {
                topics.remove(topic);
            }
        }
    }

    /// Offers `data` from client `from` to every subscriber of `topic`
    /// (with `only`, to those named so), never waiting, as the teacher's
    /// rules allow ([`Nemesis`]). With `inline` (the publisher has nothing
    /// more to read), it writes to idle subscribers' sockets itself: no
    /// task woken, lowest latency; while more messages follow, writer tasks
    /// write them in batches.
    pub fn publish(
        &self,
        from: u64,
        topic: &[u8],
        data: &Bytes,
        inline: bool,
        only: Option<&str>,
    ) -> Delivery {
        let mut delivery = Delivery::default();
        let topics = self.topics();
        let Some(Topic { subs, .. }) = topics.get(topic) else {
            return delivery;
        };
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let mut payload = Payload::charge(data, seq, from, &self.budget);
        if payload.is_none() && self.shed_slowest(&topics, data.len()) {
            payload = Payload::charge(data, seq, from, &self.budget);
        }
        let Some(payload) = payload else {
            // No room even after shedding: lost for everyone, counted.
            delivery.dropped = subs.len();
            drop(topics);
            self.stats.record_publish(data.len(), delivery);
            return delivery;
        };
        // Subscribers whose sockets this task now holds, written to once the
        // topics are unlocked (most publications, at a classroom's pace).
        let mut write_now: Vec<(Arc<Queue>, Arc<OwnedWriteHalf>)> = Vec::new();
        let mut deciding =
            (only.is_some() || self.nemesis.engaged()).then(|| self.nemesis.decide(from));
        // Every subscriber's place in its queue, charged at once; those
        // not taken are given back after the loop.
        self.budget
            .force_charge(subs.len() * ENTRY_BYTES, Use::Queue);
        let mut places_taken = 0;
        for sub in subs {
            if let Some(deciding) = deciding.as_mut() {
                if only.is_some_and(|name| !deciding.is_named(sub.id, name)) {
                    continue;
                }
                let delay = match deciding.fate(sub.id) {
                    Fate::Withheld | Fate::Lost => continue,
                    Fate::Now => Duration::ZERO,
                    Fate::After(delay) => delay,
                };
                if deciding.holding() {
                    deciding.hold(sub.queue.clone(), delay);
                    delivery.delivered += 1;
                    continue;
                }
                if !delay.is_zero() {
                    if deciding.delay(delay, sub.queue.clone(), &payload) {
                        delivery.delivered += 1;
                    }
                    continue;
                }
            }
            match sub.queue.offer_prepaid(&payload, inline) {
                Offer::Queued => {
                    delivery.delivered += 1;
                    places_taken += 1;
                }
                Offer::Displaced(lost) => {
                    // Queued; a publisher with more queued lost as many.
                    delivery.delivered += 1;
                    delivery.displaced += lost;
                    places_taken += 1;
                }
                Offer::WriteNow => {
                    delivery.delivered += 1;
                    write_now.push((sub.queue.clone(), sub.socket.clone()));
                }
                Offer::Closed => {}
                Offer::Full => {
                    delivery.dropped += 1;
                    if self.policy == SlowPolicy::Disconnect {
                        sub.kick.cancel();
                    }
                }
            }
        }
        self.budget
            .release((subs.len() - places_taken) * ENTRY_BYTES, Use::Queue);
        if let Some(deciding) = deciding {
            deciding.finish(&payload);
        }
        if let Some(recorder) = &self.recorder {
            // Under the topics' lock: in the order the frames were offered.
            let sender = self.nemesis.label(from).unwrap_or_default();
            let on = match only {
                Some(name) => format!("$to:{name}").into_bytes(),
                None => topic.to_vec(),
            };
            recorder.record(
                toycoin_common::journal::Kind::Frame,
                &on,
                sender,
                data.clone(),
            );
        }
        drop(topics);
        for (queue, socket) in write_now {
            let written = write_inline(&socket, data);
            if written == data.len() + 4 {
                self.stats.record_written(data.len());
                queue.wrote_inline(None);
            } else {
                queue.wrote_inline(Some((payload.clone(), written)));
            }
        }
        self.stats.record_publish(data.len(), delivery);
        delivery
    }

    /// Queues `data` for one client alone (a reply to its command, an
    /// order), past every rule; false if there was no room.
    pub fn send_direct(&self, queue: &Queue, data: &Bytes) -> bool {
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let Some(payload) = Payload::charge(data, seq, 0, &self.budget) else {
            return false;
        };
        matches!(
            queue.offer(&payload, false),
            Offer::Queued | Offer::Displaced(_)
        )
    }

    /// Sheds the slowest subscribers until `bytes` more would fit the
    /// budget (for a connection reading a frame); false if shedding every
    /// queue would not make it fit.
    pub fn make_room(&self, bytes: usize) -> bool {
        let topics = self.topics();
        self.shed_slowest(&topics, bytes)
    }

    /// Sheds subscribers, the one holding the oldest message first, until
    /// `bytes` fit the budget. False if none is left to shed.
    fn shed_slowest(&self, topics: &Topics, bytes: usize) -> bool {
        let mut shed: Vec<u64> = Vec::new();
        while self.budget.used().saturating_add(bytes) > self.budget.limit() {
            let slowest = topics
                .values()
                .flat_map(|t| &t.subs)
                .filter(|s| !shed.contains(&s.id))
                .map(|s| (s.queue.backlog(), s))
                .filter_map(|(b, s)| Some((b.oldest?, b, s)))
                .min_by_key(|(oldest, _, _)| *oldest);
            let Some((_, backlog, sub)) = slowest else {
                return false;
            };
            shed.push(sub.id);
            if backlog.waiting > 0 && self.policy == SlowPolicy::Drop {
                let (messages, bytes) = sub.queue.shed();
                self.stats.record_shed(sub.peer, messages, bytes, false);
            } else {
                // What its writer holds is freed only by ending the
                // connection: it goes (with the disconnect policy, always).
                let (messages, bytes) = sub.queue.close();
                sub.kick.cancel();
                self.stats
                    .record_shed(sub.peer, messages, bytes + backlog.writing, true);
            }
        }
        true
    }

    /// Bytes waiting (or being written) for the subscriber of `topic`
    /// furthest behind.
    pub fn most_waiting(&self, topic: &[u8]) -> usize {
        self.topics().get(topic).map_or(0, |t| {
            t.subs
                .iter()
                .map(|s| {
                    let backlog = s.queue.backlog();
                    backlog.waiting + backlog.writing
                })
                .max()
                .unwrap_or(0)
        })
    }

    /// Subscribers of `topic`.
    pub fn subscribers(&self, topic: &[u8]) -> usize {
        self.topics().get(topic).map_or(0, |t| t.subs.len())
    }

    /// Subscriptions `topic` has taken since it last had no subscriber,
    /// those that have left included.
    pub fn joined(&self, topic: &[u8]) -> u64 {
        self.topics().get(topic).map_or(0, |t| t.joined)
    }

    /// Number of subscriptions, all topics together.
    pub fn subscriptions(&self) -> usize {
        self.topics().values().map(|t| t.subs.len()).sum()
    }

    /// Number of topics with at least one subscriber.
    pub fn topic_count(&self) -> usize {
        self.topics().len()
    }
}
