//! The teacher's nemesis (as in Jepsen's Maelstrom): the relay's clients
//! by name, and the rules that bend delivery between them — partitions,
//! holding and stepping, latency and loss per client.
//!
//! With no rule in force the hub never comes here on its way ([`Nemesis::engaged`]
//! is one atomic load); with rules, [`Nemesis::fate`] decides each
//! delivery. Held and delayed messages keep their payloads, and so stay
//! charged to the relay's one budget; both are bounded in count too.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use toycoin_common::control::{ClientStatus, NetworkStatus};

use crate::queue::{Payload, Queue};

/// Most messages held at once (`hold`); later ones are lost, counted.
pub const MAX_HELD: usize = 10_000;
/// Most deliveries waiting out a delay; later ones are lost, counted.
pub const MAX_DELAYED: usize = 100_000;
/// Longest delay a rule may set.
pub const MAX_DELAY: Duration = Duration::from_secs(30);

/// A client as the nemesis knows it.
#[derive(Debug)]
struct Client {
    name: Option<String>,
    /// Whether its name is a key's (bound by [`crate::names`]).
    signed: bool,
    /// Its `IP:PORT`, written out once: rules and groups are matched
    /// against it on every delivery while they are in force.
    addr: String,
    topic: String,
    queue: Arc<Queue>,
}

impl Client {
    /// What it is called in lists: its name, or its address.
    fn label(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.addr.clone())
    }

    /// Whether the teacher's word `who` means this client.
    fn is(&self, who: &str) -> bool {
        self.name.as_deref() == Some(who) || self.addr == who
    }
}

/// A rule for one client: what happens to messages to and from it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Rule {
    delay: Duration,
    drop_rate: f64,
}

/// A message held, with where it goes when released.
#[derive(Debug)]
struct Held {
    payload: Arc<Payload>,
    to: Vec<(Arc<Queue>, Duration)>,
}

#[derive(Debug, Default)]
struct State {
    clients: HashMap<u64, Client>,
    groups: Vec<Vec<String>>,
    /// Rules by the teacher's word for the client (name or address).
    rules: HashMap<String, Rule>,
    holding: bool,
    held: VecDeque<Held>,
}

impl State {
    fn group_of(&self, id: u64) -> Option<usize> {
        let client = self.clients.get(&id)?;
        self.groups
            .iter()
            .position(|g| g.iter().any(|who| client.is(who)))
    }

    fn rule_of(&self, id: u64) -> Rule {
        let Some(client) = self.clients.get(&id) else {
            return Rule::default();
        };
        self.rules
            .iter()
            .find(|(who, _)| client.is(who))
            .map(|(_, r)| *r)
            .unwrap_or_default()
    }

    fn engaged(&self) -> bool {
        self.holding || !self.groups.is_empty() || !self.rules.is_empty()
    }
}

/// What becomes of one delivery.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fate {
    Now,
    After(Duration),
    /// Not delivered: sender and receiver are in different groups.
    Withheld,
    /// Lost by a drop rule.
    Lost,
}

/// The nemesis: clients and rules.
#[derive(Debug, Default)]
pub struct Nemesis {
    state: Mutex<State>,
    engaged: AtomicBool,
    withheld: AtomicU64,
    lost: AtomicU64,
    delayed: AtomicU64,
    line: DelayLine,
}

/// Decides deliveries for one publication, under the nemesis' lock.
#[derive(Debug)]
pub struct Deciding<'a> {
    nemesis: &'a Nemesis,
    state: MutexGuard<'a, State>,
    from: u64,
    from_group: Option<usize>,
    from_rule: Rule,
    /// Deliveries to hold, when holding.
    hold: Vec<(Arc<Queue>, Duration)>,
}

impl Nemesis {
    fn state(&self) -> MutexGuard<'_, State> {
        // Every update is a single insert, remove or assignment: a
        // poisoned lock is still consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether any rule is in force (one atomic load: the hub's fast path).
    pub fn engaged(&self) -> bool {
        self.engaged.load(Ordering::Relaxed)
    }

    fn update(&self, state: &State) {
        self.engaged.store(state.engaged(), Ordering::Relaxed);
    }

    /// A client subscribed.
    pub fn join(&self, id: u64, addr: SocketAddr, topic: &str, queue: Arc<Queue>) {
        self.state().clients.insert(
            id,
            Client {
                name: None,
                signed: false,
                addr: addr.to_string(),
                topic: topic.to_owned(),
                queue,
            },
        );
    }

    /// A client left.
    pub fn leave(&self, id: u64) {
        self.state().clients.remove(&id);
    }

    /// Names a client: `name`, or `name~2`, `name~3`, ... when another
    /// client has it already. Returns the name given.
    pub fn name(&self, id: u64, name: &str, signed: bool) -> String {
        let mut state = self.state();
        if signed {
            // A key's claim takes the name from whoever holds it unsigned.
            for (other, c) in state.clients.iter_mut() {
                if *other != id && !c.signed && c.name.as_deref() == Some(name) {
                    c.name = None;
                }
            }
        }
        let taken = |n: &str, s: &State| {
            s.clients
                .iter()
                .any(|(other, c)| *other != id && c.name.as_deref() == Some(n))
        };
        let mut given = name.to_owned();
        let mut k = 2;
        while taken(&given, &state) {
            given = format!("{name}~{k}");
            k += 1;
        }
        if let Some(client) = state.clients.get_mut(&id) {
            client.name = Some(given.clone());
            client.signed = signed;
        }
        given
    }

    /// The name or address a client is shown by.
    pub fn label(&self, id: u64) -> Option<String> {
        self.state().clients.get(&id).map(Client::label)
    }

    /// The queues of the clients the teacher's word `who` means.
    pub fn queues_of(&self, who: &str) -> Vec<Arc<Queue>> {
        self.state()
            .clients
            .values()
            .filter(|c| c.is(who))
            .map(|c| c.queue.clone())
            .collect()
    }

    /// Starts deciding the deliveries of one publication from `from`.
    pub fn decide(&self, from: u64) -> Deciding<'_> {
        let state = self.state();
        Deciding {
            from_group: state.group_of(from),
            from_rule: state.rule_of(from),
            state,
            nemesis: self,
            from,
            hold: Vec::new(),
        }
    }

    pub fn partition(&self, groups: Vec<Vec<String>>) {
        let mut state = self.state();
        state.groups = groups;
        self.update(&state);
    }

    pub fn heal(&self) {
        let mut state = self.state();
        state.groups.clear();
        self.update(&state);
    }

    pub fn hold(&self) {
        let mut state = self.state();
        state.holding = true;
        self.update(&state);
    }

    /// Delivers the `count` oldest held messages: how many there were.
    pub fn step(&self, count: usize) -> usize {
        let stepped: Vec<Held> = {
            let mut state = self.state();
            let n = count.min(state.held.len());
            state.held.drain(..n).collect()
        };
        let n = stepped.len();
        for held in stepped {
            self.deliver(held);
        }
        n
    }

    /// Delivers everything held and stops holding: how many there were.
    pub fn release(&self) -> usize {
        let held: Vec<Held> = {
            let mut state = self.state();
            state.holding = false;
            self.update(&state);
            state.held.drain(..).collect()
        };
        let n = held.len();
        for held in held {
            self.deliver(held);
        }
        n
    }

    /// Sets the delay and drop rate for the client `who` means (a delay of
    /// zero and a rate of zero remove its rule).
    pub fn set_rule(&self, who: &str, delay: Option<Duration>, drop_rate: Option<f64>) {
        let mut state = self.state();
        let rule = state.rules.entry(who.to_owned()).or_default();
        if let Some(delay) = delay {
            rule.delay = delay.min(MAX_DELAY);
        }
        if let Some(rate) = drop_rate {
            rule.drop_rate = rate.clamp(0.0, 1.0);
        }
        if *rule == Rule::default() {
            state.rules.remove(who);
        }
        self.update(&state);
    }

    /// Whether some client answers to `who`.
    pub fn knows(&self, who: &str) -> bool {
        self.state().clients.values().any(|c| c.is(who))
    }

    fn deliver(&self, held: Held) {
        for (queue, delay) in held.to {
            if delay.is_zero() {
                let _ = queue.offer(&held.payload, false);
            } else if !self.line.push(delay, queue, held.payload.clone()) {
                self.lost.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The state of the network, for `status`.
    pub fn status(&self) -> NetworkStatus {
        let state = self.state();
        let mut clients: Vec<(u64, ClientStatus)> = state
            .clients
            .iter()
            .map(|(&id, c)| {
                let rule = state.rule_of(id);
                (
                    id,
                    ClientStatus {
                        name: c.label(),
                        addr: c.addr.clone(),
                        topic: c.topic.clone(),
                        group: state.group_of(id),
                        delay_ms: rule.delay.as_millis() as u64,
                        drop_rate: rule.drop_rate,
                    },
                )
            })
            .collect();
        clients.sort_by_key(|(id, _)| *id);
        NetworkStatus {
            clients: clients.into_iter().map(|(_, c)| c).collect(),
            groups: state.groups.clone(),
            holding: state.holding,
            held: state.held.len(),
            withheld: self.withheld.load(Ordering::Relaxed),
            lost: self.lost.load(Ordering::Relaxed),
            delayed: self.delayed.load(Ordering::Relaxed),
            replay: None,
        }
    }

    /// The rules in force, in a few words for the summary line (`None`:
    /// none).
    pub fn describe(&self) -> Option<String> {
        let state = self.state();
        let mut parts = Vec::new();
        if !state.groups.is_empty() {
            parts.push(format!("partitioned into {} groups", state.groups.len()));
        }
        if state.holding {
            parts.push(format!("holding {} messages", state.held.len()));
        }
        for (who, rule) in &state.rules {
            if !rule.delay.is_zero() {
                parts.push(format!("{who} delayed {} ms", rule.delay.as_millis()));
            }
            if rule.drop_rate > 0.0 {
                parts.push(format!("{who} losing {:.0}%", rule.drop_rate * 100.0));
            }
        }
        (!parts.is_empty()).then(|| parts.join(", "))
    }

    /// Delivers delayed messages when they are due, until `stop`.
    pub async fn run_delays(&self, stop: CancellationToken) {
        self.line.run(stop).await;
    }
}

impl Deciding<'_> {
    /// What becomes of the delivery to subscriber `to`.
    pub fn fate(&mut self, to: u64) -> Fate {
        if to == self.from {
            return Fate::Now;
        }
        let state = &self.state;
        let to_group = state.group_of(to);
        if let (Some(a), Some(b)) = (self.from_group, to_group) {
            if a != b {
                self.nemesis.withheld.fetch_add(1, Ordering::Relaxed);
                return Fate::Withheld;
            }
        }
        let to_rule = state.rule_of(to);
        let keep = (1.0 - self.from_rule.drop_rate) * (1.0 - to_rule.drop_rate);
        if keep < 1.0 && rand::random::<f64>() >= keep {
            self.nemesis.lost.fetch_add(1, Ordering::Relaxed);
            return Fate::Lost;
        }
        let delay = self.from_rule.delay + to_rule.delay;
        if delay.is_zero() {
            Fate::Now
        } else {
            Fate::After(delay)
        }
    }

    /// Whether subscriber `id` is called `name` (for `$to:NAME`).
    pub fn is_named(&self, id: u64, name: &str) -> bool {
        self.state
            .clients
            .get(&id)
            .is_some_and(|c| c.name.as_deref() == Some(name))
    }

    /// Whether deliveries are being held: then [`Deciding::hold`] them.
    pub fn holding(&self) -> bool {
        self.state.holding
    }

    pub fn hold(&mut self, queue: Arc<Queue>, delay: Duration) {
        self.hold.push((queue, delay));
    }

    /// Delays one delivery; false if the delay line is full (lost).
    pub fn delay(&self, delay: Duration, queue: Arc<Queue>, payload: &Arc<Payload>) -> bool {
        self.nemesis.delayed.fetch_add(1, Ordering::Relaxed);
        let pushed = self.nemesis.line.push(delay, queue, payload.clone());
        if !pushed {
            self.nemesis.lost.fetch_add(1, Ordering::Relaxed);
        }
        pushed
    }

    /// Ends the decision: what was held is queued for `step`/`release`
    /// (false if too many are held already: lost).
    pub fn finish(mut self, payload: &Arc<Payload>) -> bool {
        if self.hold.is_empty() {
            return true;
        }
        if self.state.held.len() >= MAX_HELD {
            self.nemesis
                .lost
                .fetch_add(self.hold.len() as u64, Ordering::Relaxed);
            return false;
        }
        let to = std::mem::take(&mut self.hold);
        self.state.held.push_back(Held {
            payload: payload.clone(),
            to,
        });
        true
    }
}

/// Deliveries waiting out a delay, in due order.
#[derive(Debug, Default)]
struct DelayLine {
    entries: Mutex<BinaryHeap<Reverse<Delayed>>>,
    pushed: Notify,
    next: AtomicU64,
}

#[derive(Debug)]
struct Delayed {
    due: Instant,
    /// Order of pushing: among equal due times, first in first out.
    order: u64,
    queue: Arc<Queue>,
    payload: Arc<Payload>,
}

impl PartialEq for Delayed {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.order) == (other.due, other.order)
    }
}
impl Eq for Delayed {}
impl PartialOrd for Delayed {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Delayed {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.due, self.order).cmp(&(other.due, other.order))
    }
}

impl DelayLine {
    fn entries(&self) -> MutexGuard<'_, BinaryHeap<Reverse<Delayed>>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, delay: Duration, queue: Arc<Queue>, payload: Arc<Payload>) -> bool {
        let mut entries = self.entries();
        if entries.len() >= MAX_DELAYED {
            return false;
        }
        let order = self.next.fetch_add(1, Ordering::Relaxed);
        entries.push(Reverse(Delayed {
            due: Instant::now() + delay,
            order,
            queue,
            payload,
        }));
        drop(entries);
        self.pushed.notify_one();
        true
    }

    async fn run(&self, stop: CancellationToken) {
        loop {
            let next_due = {
                let mut entries = self.entries();
                let now = Instant::now();
                while entries.peek().is_some_and(|Reverse(d)| d.due <= now) {
                    if let Some(Reverse(d)) = entries.pop() {
                        // A full queue loses it, as for any slow subscriber.
                        let _ = d.queue.offer(&d.payload, false);
                    }
                }
                entries.peek().map(|Reverse(d)| d.due)
            };
            let wait = async {
                match next_due {
                    Some(due) => tokio::time::sleep_until(due).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = stop.cancelled() => {
                    self.entries().clear();
                    return;
                }
                _ = self.pushed.notified() => {}
                _ = wait => {}
            }
        }
    }
}
