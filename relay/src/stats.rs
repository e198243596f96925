//! Counters for the periodic summary and for tests.

use std::sync::atomic::{AtomicU64, Ordering};

/// What one publication did (the hub returns it, the counters add it up).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Delivery {
    pub delivered: usize,
    pub dropped: usize,
}

/// Running totals since start.
#[derive(Debug, Default)]
pub struct Stats {
    clients: AtomicU64,
    messages: AtomicU64,
    bytes_in: AtomicU64,
    deliveries: AtomicU64,
    bytes_out: AtomicU64,
    dropped: AtomicU64,
    refused: AtomicU64,
    bad_clients: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Connections open now.
    pub clients: u64,
    /// Messages published.
    pub messages: u64,
    /// Payload bytes published.
    pub bytes_in: u64,
    /// Messages queued for subscribers.
    pub deliveries: u64,
    /// Payload bytes written to subscribers.
    pub bytes_out: u64,
    /// Messages dropped for slow subscribers.
    pub dropped: u64,
    /// Connections refused at the connection limit.
    pub refused: u64,
    /// Connections dropped for breaking the protocol.
    pub bad_clients: u64,
}

impl Stats {
    pub fn snapshot(&self) -> Snapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Snapshot {
            clients: get(&self.clients),
            messages: get(&self.messages),
            bytes_in: get(&self.bytes_in),
            deliveries: get(&self.deliveries),
            bytes_out: get(&self.bytes_out),
            dropped: get(&self.dropped),
            refused: get(&self.refused),
            bad_clients: get(&self.bad_clients),
        }
    }

    pub(crate) fn record_publish(&self, len: usize, delivery: Delivery) {
        self.messages.fetch_add(1, Ordering::Relaxed);
        self.bytes_in.fetch_add(len as u64, Ordering::Relaxed);
        self.deliveries
            .fetch_add(delivery.delivered as u64, Ordering::Relaxed);
        self.dropped
            .fetch_add(delivery.dropped as u64, Ordering::Relaxed);
    }

    pub(crate) fn record_written(&self, bytes: usize) {
        self.bytes_out.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub(crate) fn client_joined(&self) {
        self.clients.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn client_left(&self) {
        self.clients.fetch_sub(1, Ordering::Relaxed);
    }

    pub(crate) fn refused(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn bad_client(&self) {
        self.bad_clients.fetch_add(1, Ordering::Relaxed);
    }
}

impl Snapshot {
    /// One summary line: rates over `secs` since `before`.
    pub fn summary_since(&self, before: &Snapshot, secs: f64) -> String {
        let rate = |now: u64, then: u64| now.saturating_sub(then) as f64 / secs.max(1e-9);
        format!(
            "Summary: {} clients | {:.1} msg/s in | {:.1} deliveries/s | {:.1} KB/s in | {:.1} KB/s out | dropped {} | refused {} | bad clients {}",
            self.clients,
            rate(self.messages, before.messages),
            rate(self.deliveries, before.deliveries),
            rate(self.bytes_in, before.bytes_in) / 1024.0,
            rate(self.bytes_out, before.bytes_out) / 1024.0,
            self.dropped,
            self.refused,
            self.bad_clients,
        )
    }
}
