//! Fan-out: topics, their subscribers, and delivery to bounded queues.
//!
//! Publishing never waits for a subscriber. Each subscriber has a bounded
//! queue (in messages and in bytes); the hub offers each payload with
//! `try_send`, sharing one `Bytes` among all subscribers (no copy per
//! subscriber). A full queue means a slow consumer: the message is dropped
//! for that subscriber and counted, or, with the `disconnect` policy, the
//! subscriber is told to leave. Nobody else ever waits for it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use crate::stats::Delivery;
use crate::stats::Stats;

/// What to do with a subscriber whose queue is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SlowPolicy {
    /// Drop the message for that subscriber (counted and reported).
    #[default]
    Drop,
    /// Disconnect the subscriber.
    Disconnect,
}

/// The hub's end of one subscriber's queue.
#[derive(Clone, Debug)]
pub struct Subscriber {
    pub id: u64,
    pub tx: mpsc::Sender<Bytes>,
    /// Bytes queued and not yet written to the socket.
    pub queued_bytes: Arc<AtomicUsize>,
    /// Cancelled to make the connection leave.
    pub kick: CancellationToken,
}

/// Topics and their subscribers.
#[derive(Debug)]
pub struct Hub {
    topics: Mutex<HashMap<Bytes, Vec<Subscriber>>>,
    max_queued_bytes: usize,
    policy: SlowPolicy,
    stats: Arc<Stats>,
}

impl Hub {
    pub fn new(max_queued_bytes: usize, policy: SlowPolicy, stats: Arc<Stats>) -> Hub {
        Hub {
            topics: Mutex::new(HashMap::new()),
            max_queued_bytes,
            policy,
            stats,
        }
    }

    fn topics(&self) -> MutexGuard<'_, HashMap<Bytes, Vec<Subscriber>>> {
        // A panic while holding this lock cannot leave the map inconsistent
        // (every update is a single insert or retain), so a poisoned lock is
        // still usable.
        self.topics.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn subscribe(&self, topic: Bytes, subscriber: Subscriber) {
        self.topics().entry(topic).or_default().push(subscriber);
    }

    pub fn unsubscribe(&self, topic: &[u8], id: u64) {
        let mut topics = self.topics();
        if let Some(subs) = topics.get_mut(topic) {
            subs.retain(|s| s.id != id);
            if subs.is_empty() {
                topics.remove(topic);
            }
        }
    }

    /// Offers `data` to every subscriber of `topic`, never waiting.
    pub fn publish(&self, topic: &[u8], data: &Bytes) -> Delivery {
        let mut delivery = Delivery::default();
        let topics = self.topics();
        let Some(subs) = topics.get(topic) else {
            return delivery;
        };
        for sub in subs {
            let queued = sub.queued_bytes.load(Ordering::Relaxed);
            let fits = queued.saturating_add(data.len()) <= self.max_queued_bytes;
            if fits && sub.tx.try_send(data.clone()).is_ok() {
                sub.queued_bytes.fetch_add(data.len(), Ordering::Relaxed);
                delivery.delivered += 1;
            } else if !sub.tx.is_closed() {
                delivery.dropped += 1;
                if self.policy == SlowPolicy::Disconnect {
                    sub.kick.cancel();
                }
            }
        }
        drop(topics);
        self.stats.record_publish(data.len(), delivery);
        delivery
    }

    /// Number of subscriptions, all topics together.
    pub fn subscriptions(&self) -> usize {
        self.topics().values().map(Vec::len).sum()
    }

    /// Number of topics with at least one subscriber.
    pub fn topic_count(&self) -> usize {
        self.topics().len()
    }
}
