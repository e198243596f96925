//! The node itself: one task owns the chain and the pool and reacts to
//! frames from the relay, finished mining jobs and catch-up timers; mining
//! runs on worker threads (`spawn_blocking`) and is cancelled the moment
//! the tip moves; a connection task keeps the relay connected with back-off.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use rand::Rng;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use toycoin_common::block::Block;
use toycoin_common::chain::{now_secs, ChainError};
use toycoin_common::follow::{Follower, CATCH_UP_BATCH};
use toycoin_common::frame::DEFAULT_MAX_FRAME_LEN;
use toycoin_common::hash::Hash;
use toycoin_common::message::{encode_bloc, GetBlocks, Message, TxnMessage};
use toycoin_common::pow::{CancelToken, MineOutcome, MineReport, Miner};
use toycoin_common::profile::{Profile, ProfileKind};
use toycoin_common::relay::{RelayClient, RelayPublisher, DEFAULT_TOPIC};
use toycoin_common::transaction::Transaction;
use toycoin_common::tree::{Adopted, Received};

use crate::event::Event;
use crate::pool::{Pool, DEFAULT_MAX_PENDING};

/// A node waits up to this long before answering a catch-up request, and
/// stays quiet if another node answers first.
const ANSWER_JITTER_MS: u64 = 200;
/// Most recent frames we sent that we remember, to recognise them.
const REMEMBER_SENT: usize = 64;
const MAX_BLOCK_TXNS: usize = toycoin_common::block::MAX_BLOCK_TXNS;

/// How a node runs.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// Shown in the start-up line.
    pub name: String,
    /// `host:port` of the relay.
    pub relay: String,
    pub topic: String,
    pub profile: Profile,
    /// Mining threads.
    pub threads: usize,
    /// Pending transactions needed before mining a block.
    pub min_txns: usize,
    /// Pause after each proof of work (plays a slow node).
    pub delay: Duration,
    /// Mine fewer than `min_txns` once the oldest pending transaction has
    /// waited this long (zero: never, as the original, whose last lone
    /// transaction waits for company forever).
    pub max_wait: Duration,
    pub max_frame_len: usize,
    pub max_pending: usize,
    /// Mine to at least this many leading zero bits even when the rules ask
    /// for fewer (a harder block is still valid). 0: what the rules ask.
    /// Keeps a miner busy, e.g. to watch it being cancelled.
    pub min_bits: u32,
    /// First reconnect delay; doubles up to `max_backoff`.
    pub backoff: Duration,
    pub max_backoff: Duration,
}

impl NodeConfig {
    pub fn new(relay: impl Into<String>, profile: Profile) -> NodeConfig {
        NodeConfig {
            name: short_id(),
            relay: relay.into(),
            topic: DEFAULT_TOPIC.to_owned(),
            profile,
            threads: 1,
            min_txns: 2,
            delay: Duration::ZERO,
            max_wait: Duration::from_secs(10),
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
            max_pending: DEFAULT_MAX_PENDING,
            min_bits: 0,
            backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(5),
        }
    }
}

/// A short random id, as the original prints (`4886adee`).
pub fn short_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_owned()
}

/// The node's state as of a [`NodeHandle::snapshot`].
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub blocks: Vec<Block>,
    pub tip: Hash,
    pub total_work: u128,
    pub pending: Vec<Hash>,
    pub mining: bool,
}

enum Command {
    Snapshot(oneshot::Sender<Snapshot>),
    Stop,
}

/// A running node.
#[derive(Debug)]
pub struct NodeHandle {
    commands: mpsc::Sender<Command>,
    events: broadcast::Sender<Event>,
    task: JoinHandle<()>,
}

impl NodeHandle {
    /// Events from now on. A receiver that falls more than 4096 events
    /// behind loses the oldest (and is told how many).
    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// The chain and pool as they are now (`None` once stopped).
    pub async fn snapshot(&self) -> Option<Snapshot> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(Command::Snapshot(tx)).await.ok()?;
        rx.await.ok()
    }

    /// Stops mining and the connection, and waits for the node to finish.
    pub async fn stop(self) {
        let _ = self.commands.send(Command::Stop).await;
        let _ = self.task.await;
    }
}

/// Starts a node on the current Tokio runtime; the receiver gets every
/// event from the first (`Started`) on.
pub fn spawn(config: NodeConfig) -> (NodeHandle, broadcast::Receiver<Event>) {
    let (events, first) = broadcast::channel(4096);
    let (commands, command_rx) = mpsc::channel(16);
    let node = Node::new(config, events.clone());
    let task = tokio::spawn(node.run(command_rx));
    (
        NodeHandle {
            commands,
            events,
            task,
        },
        first,
    )
}

enum Net {
    Connected(RelayPublisher, String),
    Frame(Bytes),
    Lost(String, Duration),
}

struct MiningTask {
    cancel: CancelToken,
    height: usize,
    previous: Hash,
    txns: Vec<Transaction>,
    cancelled_at: Option<Instant>,
    handle: JoinHandle<Option<MineReport>>,
}

struct Node {
    config: NodeConfig,
    events: broadcast::Sender<Event>,
    follower: Follower,
    pool: Pool,
    publisher: Option<RelayPublisher>,
    mining: Option<MiningTask>,
    sent: VecDeque<Hash>,
    /// A catch-up answer we will send: (first height, when).
    answer: Option<(usize, Instant)>,
    /// Since when the pool has been non-empty.
    pending_since: Option<Instant>,
}

impl Node {
    fn new(config: NodeConfig, events: broadcast::Sender<Event>) -> Node {
        Node {
            follower: Follower::new(config.profile, config.name.clone()),
            pool: Pool::new(config.max_pending),
            config,
            events,
            publisher: None,
            mining: None,
            sent: VecDeque::new(),
            answer: None,
            pending_since: None,
        }
    }

    fn emit(&self, event: Event) {
        let _ = self.events.send(event);
    }

    async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        self.emit(Event::Started {
            name: self.config.name.clone(),
            profile: self.config.profile,
            threads: self.config.threads,
            min_txns: self.config.min_txns,
            relay: self.config.relay.clone(),
            topic: self.config.topic.clone(),
        });
        let (net_tx, mut net) = mpsc::channel(1024);
        let connection = tokio::spawn(keep_connected(self.config.clone(), net_tx));
        loop {
            let answer_at = self.answer.map(|(_, at)| at);
            let lone_at = self.lone_deadline();
            tokio::select! {
                command = commands.recv() => match command {
                    Some(Command::Snapshot(reply)) => {
                        let _ = reply.send(self.snapshot());
                    }
                    Some(Command::Stop) | None => break,
                },
                item = net.recv() => match item {
                    Some(Net::Connected(publisher, local)) => {
                        self.publisher = Some(publisher);
                        self.emit(Event::Connected { relay: self.config.relay.clone(), local });
                        let request = self.follower.request(false);
                        self.send_request(request).await;
                    }
                    Some(Net::Frame(payload)) => self.on_frame(payload).await,
                    Some(Net::Lost(reason, retry_in)) => {
                        self.publisher = None;
                        self.emit(Event::Disconnected { reason, retry_in });
                    }
                    None => break,
                },
                report = async { (&mut self.mining.as_mut().expect("guarded").handle).await },
                    if self.mining.is_some() =>
                {
                    self.on_mined(report.ok().flatten()).await;
                }
                _ = tokio::time::sleep_until(answer_at.unwrap_or_else(Instant::now)), if answer_at.is_some() => {
                    self.send_answer().await;
                }
                _ = tokio::time::sleep_until(lone_at.unwrap_or_else(Instant::now)), if lone_at.is_some() => {
                    // maybe_mine below mines what has waited long enough.
                }
            }
            self.maybe_mine();
        }
        if let Some(m) = self.mining.take() {
            m.cancel.cancel();
            m.handle.abort();
            let _ = m.handle.await;
        }
        connection.abort();
        let _ = connection.await;
        self.emit(Event::Stopped);
    }

    fn snapshot(&self) -> Snapshot {
        let chain = self.follower.tree().chain();
        Snapshot {
            blocks: chain.blocks().cloned().collect(),
            tip: chain.tip_hash(),
            total_work: chain.total_work(),
            pending: self.pool.hashes().copied().collect(),
            mining: self.mining.is_some(),
        }
    }

    fn steady(&self) -> bool {
        self.config.profile.kind == ProfileKind::Steady
    }

    async fn publish(&mut self, payload: Bytes) {
        self.sent.push_back(Hash::of(&payload));
        while self.sent.len() > REMEMBER_SENT {
            self.sent.pop_front();
        }
        let Some(publisher) = self.publisher.as_mut() else {
            return;
        };
        if let Err(e) = publisher.publish(&self.config.topic, &payload).await {
            self.publisher = None;
            self.emit(Event::Disconnected {
                reason: format!("sending failed: {e}"),
                retry_in: self.config.backoff,
            });
        }
    }

    async fn on_frame(&mut self, payload: Bytes) {
        let message = match Message::decode(&payload) {
            Ok(m) => m,
            Err(e) => {
                self.emit(Event::Undecodable {
                    bytes: payload.len(),
                    reason: e.to_string(),
                });
                return;
            }
        };
        if self.sent.contains(&Hash::of(&payload)) {
            self.emit(Event::OwnMessage {
                kind: message.kind(),
            });
            return;
        }
        match message {
            Message::Txn(m) => self.on_txn(m),
            Message::Bloc(blocks) => self.on_bloc(blocks).await,
            Message::GetBlocks(request) => self.on_get_blocks(request),
        }
    }

    fn on_txn(&mut self, m: TxnMessage) {
        let hash = m.txn.hash();
        if self.follower.tree().chain().ledger().contains(&hash) {
            self.emit(Event::TxnRejected {
                hash: Some(hash),
                reason: "already in the chain".into(),
            });
            return;
        }
        match self.pool.add(
            self.follower.tree().chain().ledger(),
            m.txn,
            Some(&m.tokens),
        ) {
            Ok(hash) => self.emit(Event::TxnAccepted {
                hash,
                pending: self.pool.len(),
            }),
            Err(e) => self.emit(Event::TxnRejected {
                hash: Some(hash),
                reason: e.to_string(),
            }),
        }
    }

    async fn on_bloc(&mut self, blocks: Vec<Block>) {
        let count = blocks.len();
        let starts_after = blocks.first().map(|b| b.header.previous_hash);
        // Someone else answered the catch-up request we meant to answer.
        if let (Some((from, _)), Some(prev)) = (self.answer, starts_after) {
            if self.follower.tree().chain().hash_before(from) == Some(prev) {
                self.answer = None;
            }
        }
        let (result, follow_up) = self.follower.receive(blocks, now_secs());
        match result {
            Ok(Received::Known) => self.emit(Event::BlocKnown { blocks: count }),
            Ok(Received::Adopted(adopted)) => self.on_adopted(adopted, false),
            Ok(Received::SideBranch {
                fork_height,
                length,
                ..
            }) => self.emit(Event::SideBranch {
                fork_height,
                length,
                best_length: self.follower.tree().chain().len(),
            }),
            Ok(Received::Orphan { missing }) => {
                if self.steady() {
                    self.emit(Event::BlocRejected {
                        reason: format!(
                            "its first block follows {}, which we do not have",
                            missing.short()
                        ),
                    });
                } else {
                    self.emit(Event::BlocRejected {
                        reason: format!(
                            "block 0: previous_hash {} is not GENESIS",
                            missing.short()
                        ),
                    });
                }
            }
            Err(ChainError { index, error }) => self.emit(Event::BlocRejected {
                reason: format!("block {index}: {error}"),
            }),
        }
        // Missed blocks (an orphan) or more to come (a full catch-up batch).
        self.send_request(follow_up).await;
    }

    fn on_adopted(&mut self, adopted: Adopted, ours: bool) {
        let returned: Vec<Transaction> = adopted
            .rolled_back
            .iter()
            .flat_map(|b| b.txns.iter().cloned())
            .collect();
        let rebuilt = self
            .pool
            .rebuild(self.follower.tree().chain().ledger(), returned);
        self.emit(Event::Adopted {
            ours,
            old_tip: adopted.old_tip,
            new_tip: adopted.new_tip,
            height: self.follower.tree().chain().len().saturating_sub(1),
            fork_height: adopted.fork_height,
            rolled_back: adopted.rolled_back.len(),
            added: adopted.added,
            returned: rebuilt.returned,
            confirmed: rebuilt.confirmed,
        });
        for (hash, error) in rebuilt.dropped {
            self.emit(Event::TxnDropped {
                hash,
                reason: error.to_string(),
            });
        }
        if let Some(m) = &mut self.mining {
            if m.previous != self.follower.tree().chain().tip_hash() && m.cancelled_at.is_none() {
                m.cancel.cancel();
                m.cancelled_at = Some(Instant::now());
            }
        }
    }

    fn on_get_blocks(&mut self, request: GetBlocks) {
        if !self.steady() {
            return; // toycoin nodes announce whole chains instead
        }
        let from = self.follower.tree().fork_point(&request.locator);
        if from >= self.follower.tree().chain().len() || self.answer.is_some() {
            return;
        }
        let jitter = rand::thread_rng().gen_range(0..=ANSWER_JITTER_MS);
        self.answer = Some((from, Instant::now() + Duration::from_millis(jitter)));
    }

    async fn send_answer(&mut self) {
        let Some((from, _)) = self.answer.take() else {
            return;
        };
        let chain = self.follower.tree().chain();
        if from >= chain.len() {
            return;
        }
        let end = (from + CATCH_UP_BATCH).min(chain.len());
        let blocks: Vec<Block> = chain.entries()[from..end]
            .iter()
            .map(|e| e.block.clone())
            .collect();
        let count = blocks.len();
        self.publish(encode_bloc(&blocks)).await;
        self.emit(Event::CatchUpAnswered {
            from_height: from,
            blocks: count,
        });
    }

    /// Publishes a catch-up request the follower decided on, if any.
    async fn send_request(&mut self, request: Option<Bytes>) {
        let Some(request) = request else {
            return;
        };
        self.publish(request).await;
        self.emit(Event::CatchUpRequested {
            have: self.follower.tree().chain().len(),
        });
    }

    /// When too few transactions to fill a block have waited `max_wait`.
    fn lone_deadline(&self) -> Option<Instant> {
        if self.mining.is_some() || self.config.max_wait.is_zero() {
            return None;
        }
        self.pending_since.map(|at| at + self.config.max_wait)
    }

    /// Starts mining when idle and enough is pending (or has waited long
    /// enough).
    fn maybe_mine(&mut self) {
        match (self.pool.is_empty(), self.pending_since) {
            (true, _) => self.pending_since = None,
            (false, None) => self.pending_since = Some(Instant::now()),
            _ => {}
        }
        let waited = self.lone_deadline().is_some_and(|at| at <= Instant::now());
        if self.mining.is_some()
            || self.pool.is_empty()
            || (self.pool.len() < self.config.min_txns.max(1) && !waited)
        {
            return;
        }
        let txns = self.pool.select(MAX_BLOCK_TXNS);
        let chain = self.follower.tree().chain();
        let Some(mut job) = chain.mining_job(&txns, now_secs()) else {
            return;
        };
        job.required_bits = job.required_bits.max(self.config.min_bits);
        let height = chain.len();
        let cancel = CancelToken::new();
        let miner = Miner::new(self.config.threads);
        let delay = self.config.delay;
        let handle = tokio::spawn({
            let cancel = cancel.clone();
            let job = job.clone();
            async move {
                let report = tokio::task::spawn_blocking(move || miner.mine(&job, &cancel))
                    .await
                    .ok()?;
                if matches!(report.outcome, MineOutcome::Found(_)) && !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                Some(report)
            }
        });
        self.emit(Event::MiningStarted {
            height,
            txns: txns.len(),
            required_bits: job.required_bits,
        });
        self.mining = Some(MiningTask {
            cancel,
            height,
            previous: job.previous_hash,
            txns,
            cancelled_at: None,
            handle,
        });
    }

    async fn on_mined(&mut self, report: Option<MineReport>) {
        let Some(task) = self.mining.take() else {
            return;
        };
        let Some(report) = report else {
            return;
        };
        let hash_rate = report.hash_rate();
        let header = match report.outcome {
            MineOutcome::Cancelled => {
                let latency = task.cancelled_at.map_or(Duration::ZERO, |at| at.elapsed());
                self.emit(Event::MiningCancelled {
                    height: task.height,
                    latency,
                    attempts: report.attempts,
                });
                return;
            }
            MineOutcome::Found(header) => header,
        };
        let hash = header.this_hash;
        let block = Block {
            header: *header,
            txns: task.txns,
        };
        let txns = block.txns.len();
        match self.follower.receive(vec![block], now_secs()).0 {
            Ok(Received::Adopted(adopted)) => {
                self.emit(Event::Mined {
                    height: task.height,
                    hash,
                    txns,
                    elapsed: report.elapsed,
                    hash_rate,
                });
                self.on_adopted(adopted, true);
                self.announce().await;
            }
            Ok(_) => self.emit(Event::LostRace {
                height: task.height,
                hash,
            }),
            Err(e) => self.emit(Event::BlocRejected {
                reason: format!("our own block {e} (pool out of date)"),
            }),
        }
    }

    /// Tells the network about our new tip: the whole chain in the toycoin
    /// profile (as the original), the new block alone in the steady one.
    async fn announce(&mut self) {
        let chain = self.follower.tree().chain();
        let payload = if self.steady() {
            encode_bloc(chain.tip().map(std::slice::from_ref).unwrap_or_default())
        } else {
            let blocks: Vec<Block> = chain.blocks().cloned().collect();
            encode_bloc(&blocks)
        };
        self.publish(payload).await;
    }
}

/// Connects to the relay, forwards every frame, reconnects with back-off.
async fn keep_connected(config: NodeConfig, net: mpsc::Sender<Net>) {
    let mut backoff = config.backoff;
    loop {
        let reason = match RelayClient::connect_with_max(
            config.relay.as_str(),
            &config.topic,
            config.max_frame_len,
        )
        .await
        {
            Ok(client) => {
                backoff = config.backoff;
                let local = client
                    .local_addr()
                    .map_or_else(|_| "?".into(), |a| a.to_string());
                let (mut receiver, publisher) = client.into_split();
                if net.send(Net::Connected(publisher, local)).await.is_err() {
                    return;
                }
                loop {
                    match receiver.recv().await {
                        Ok(Some(frame)) => {
                            if net.send(Net::Frame(frame)).await.is_err() {
                                return;
                            }
                        }
                        Ok(None) => break "the relay closed the connection".to_owned(),
                        Err(e) => break format!("connection lost: {e}"),
                    }
                }
            }
            Err(e) => format!("cannot connect to {}: {e}", config.relay),
        };
        if net.send(Net::Lost(reason, backoff)).await.is_err() {
            return;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(config.max_backoff);
    }
}
