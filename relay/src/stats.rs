//! Counters for the periodic summary and for tests.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Most addresses named in one summary (shed subscribers, refused
/// addresses); the rest are counted.
pub const MAX_NAMED: usize = 8;

/// What one publication did (the hub returns it, the counters add it up).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Delivery {
    pub delivered: usize,
    pub dropped: usize,
    /// Messages of other publishers with more queued that this one took
    /// the place of (lost; see [`crate::queue`]).
    pub displaced: usize,
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
    shed_messages: AtomicU64,
    shed_bytes: AtomicU64,
    shed_disconnects: AtomicU64,
    /// Since the last summary: who was shed, who was refused.
    named: Mutex<Named>,
}

#[derive(Debug, Default)]
struct Named {
    shed: BTreeMap<SocketAddr, u64>,
    refused: BTreeMap<IpAddr, u64>,
    refused_others: u64,
}

/// What the summary names since the last one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Names {
    /// Subscribers shed under memory pressure, and bytes shed for each.
    pub shed: Vec<(SocketAddr, u64)>,
    /// Addresses refused at the per-address limit, and how many times.
    pub refused: Vec<(IpAddr, u64)>,
    /// Refusals of addresses beyond the first [`MAX_NAMED`].
    pub refused_others: u64,
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
    /// Messages dropped for the slowest subscribers under memory pressure.
    pub shed_messages: u64,
    /// Bytes freed that way.
    pub shed_bytes: u64,
    /// Subscribers disconnected that way.
    pub shed_disconnects: u64,
    /// Bytes held for clients now (queues and frames being read).
    pub memory_used: u64,
    /// The relay's memory budget.
    pub memory_limit: u64,
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
            shed_messages: get(&self.shed_messages),
            shed_bytes: get(&self.shed_bytes),
            shed_disconnects: get(&self.shed_disconnects),
            memory_used: 0,
            memory_limit: 0,
        }
    }

    fn named(&self) -> std::sync::MutexGuard<'_, Named> {
        self.named.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn record_shed(
        &self,
        peer: SocketAddr,
        messages: usize,
        bytes: usize,
        disconnected: bool,
    ) {
        self.shed_messages
            .fetch_add(messages as u64, Ordering::Relaxed);
        self.shed_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        if disconnected {
            self.shed_disconnects.fetch_add(1, Ordering::Relaxed);
        }
        let mut named = self.named();
        if named.shed.len() < MAX_NAMED || named.shed.contains_key(&peer) {
            *named.shed.entry(peer).or_default() += bytes as u64;
        }
    }

    /// A connection refused because its address has too many.
    pub(crate) fn refused_address(&self, ip: IpAddr) {
        self.refused.fetch_add(1, Ordering::Relaxed);
        let mut named = self.named();
        if named.refused.len() < MAX_NAMED || named.refused.contains_key(&ip) {
            *named.refused.entry(ip).or_default() += 1;
        } else {
            named.refused_others += 1;
        }
    }

    /// Who was shed or refused since the last call.
    pub fn take_names(&self) -> Names {
        let named = std::mem::take(&mut *self.named());
        Names {
            shed: named.shed.into_iter().collect(),
            refused: named.refused.into_iter().collect(),
            refused_others: named.refused_others,
        }
    }

    pub(crate) fn record_publish(&self, len: usize, delivery: Delivery) {
        self.messages.fetch_add(1, Ordering::Relaxed);
        self.bytes_in.fetch_add(len as u64, Ordering::Relaxed);
        self.deliveries
            .fetch_add(delivery.delivered as u64, Ordering::Relaxed);
        self.dropped.fetch_add(
            (delivery.dropped + delivery.displaced) as u64,
            Ordering::Relaxed,
        );
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

    pub(crate) fn bad_client(&self) {
        self.bad_clients.fetch_add(1, Ordering::Relaxed);
    }
}

/// Bytes in MiB, for people.
fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

impl Snapshot {
    /// Whether anything happened between `before` and this one (an idle
    /// relay prints no summary).
    pub fn changed_since(&self, before: &Snapshot) -> bool {
        let counters = |s: &Snapshot| {
            [
                s.clients,
                s.messages,
                s.dropped,
                s.refused,
                s.bad_clients,
                s.shed_messages,
                s.shed_disconnects,
            ]
        };
        counters(self) != counters(before)
    }

    /// The summary: one line of rates over `secs` since `before`, then one
    /// line naming who was shed and one per address refused.
    pub fn summary_since(&self, before: &Snapshot, secs: f64, names: &Names) -> String {
        let rate = |now: u64, then: u64| now.saturating_sub(then) as f64 / secs.max(1e-9);
        let mut out = format!(
            "Summary: {} clients | {:.1} msg/s in | {:.1} deliveries/s | {:.1} KB/s in | {:.1} KB/s out | dropped {} | shed {} | refused {} | bad clients {} | memory {:.1} of {:.0} MiB",
            self.clients,
            rate(self.messages, before.messages),
            rate(self.deliveries, before.deliveries),
            rate(self.bytes_in, before.bytes_in) / 1024.0,
            rate(self.bytes_out, before.bytes_out) / 1024.0,
            self.dropped,
            self.shed_messages + self.shed_disconnects,
            self.refused,
            self.bad_clients,
            mib(self.memory_used),
            mib(self.memory_limit),
        );
        if !names.shed.is_empty() {
            let who: Vec<String> = names
                .shed
                .iter()
                .map(|(peer, bytes)| format!("{peer} ({:.1} MiB)", mib(*bytes)))
                .collect();
            let _ = write!(
                out,
                "\nShed the slowest subscribers to stay within the memory budget: {}",
                who.join(", ")
            );
        }
        for (ip, n) in &names.refused {
            let _ = write!(
                out,
                "\nRefused {n} connections from {ip}: too many from one address"
            );
        }
        if names.refused_others > 0 {
            let _ = write!(
                out,
                "\nRefused {} connections from other addresses: too many from one address",
                names.refused_others
            );
        }
        out
    }
}
