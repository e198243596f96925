//! The node itself: one task owns the chain and the mempool and reacts to
//! the relay session's events, finished mining jobs and commands; mining
//! runs on worker threads (`spawn_blocking`) and is cancelled the moment
//! the tip moves. Connecting, catch-up and recognising our own frames are
//! the session's ([`toycoin_common::session`]).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use toycoin_common::block::Block;
use toycoin_common::chain::ChainError;
use toycoin_common::control::{check_name, Order};
use toycoin_common::frame::DEFAULT_MAX_FRAME_LEN;
use toycoin_common::hash::{BlockHash, Hash, Txid};
use toycoin_common::log::clipped;
use toycoin_common::mempool::{Mempool, DEFAULT_MAX_PENDING};
use toycoin_common::message::{encode_bloc, encode_stat, Status, TxnMessage, MAX_STATUS_NAME};
use toycoin_common::pow::{CancelToken, MineOutcome, MineReport, Miner};
use toycoin_common::profile::{Minting, Profile};
use toycoin_common::session::{
    BlocReport, Session, SessionConfig, SessionEvent, BACKOFF, DEFAULT_TOPIC, MAX_BACKOFF,
};
use toycoin_common::spv::{self, HeaderWire, ProofWire, SpvMsg};
use toycoin_common::transaction::{Address, Transaction};
use toycoin_common::tree::{Adopted, Received};
use toycoin_common::wallet::fingerprint;

use crate::event::Event;
use crate::fault::{read_order, Breach, Fault, Liar};
use crate::pbft::{PbftConfig, PbftNode};

mod light_wallets;
mod orders;
mod status;

use light_wallets::RateBudget;
pub use light_wallets::{SPV_ADDRESS_BLOCKS, SPV_ANSWERS, SPV_ANSWERS_PER_ASKER};

/// How often a node mining continuously takes transactions that arrived
/// since its block's template was made into a new template (Bitcoin's
/// miners do the same): a transfer then waits for the block being mined,
/// not for the one after it. Proof of work has no memory, so nothing
/// found so far is lost; each refresh costs a selection and a Merkle root.
pub const TEMPLATE_REFRESH: Duration = Duration::from_secs(1);

/// How often a node announces its status (`STAT`, steady profile): its
/// tip, hash rate and whether it mines, for the web view.
pub const STATUS_INTERVAL: Duration = Duration::from_secs(3);
/// How soon after its tip changes a node says so (at most one status in
/// this time, however fast blocks come).
pub const TIP_STATUS_AFTER: Duration = Duration::from_millis(100);

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
    /// Most hashes per second, all threads together (`None`: as fast as
    /// they go): plays a weaker miner, or leaves the processor to others.
    pub max_hash_rate: Option<f64>,
    /// Mine when no transaction waits, a block of its reward alone (the
    /// default where the profile [mines continuously]); otherwise only
    /// when `min_txns` wait or the oldest has waited `max_wait`.
    ///
    /// [mines continuously]: Profile::mines_continuously
    pub mine_when_idle: bool,
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
    /// Seconds this node's clock is off (plays a laptop with a wrong
    /// clock: the steady rules take clocks up to 10 minutes apart).
    pub clock_skew: i64,
    /// Where this node's block rewards go (profiles with rewards): its
    /// wallet's address. The default, [`no_wallet`], is an address no key
    /// can spend.
    pub reward_to: Address,
    /// A fault to play (the Byzantine lab); `None`: an honest node.
    pub fault: Option<Fault>,
    /// The teacher's token (the relay's): with it, the node obeys the
    /// relay's orders to play a fault (`toycoin-ctl fault`).
    pub control_token: Option<String>,
    /// Agree by pBFT instead of proof of work (`--consensus pbft`).
    pub pbft: Option<PbftConfig>,
    /// The key its name belongs to (its wallet's): its `$hello` is signed
    /// with it, so no one else can take the name at the relay.
    pub key: Option<toycoin_common::wallet::Wallet>,
}

/// The reward address of a node given no wallet: a canonical address
/// whose key nobody has, so whatever it is paid can never be spent.
pub fn no_wallet() -> Address {
    toycoin_common::address::example(b"no wallet")
}

impl NodeConfig {
    pub fn new(relay: impl Into<String>, profile: Profile) -> NodeConfig {
        NodeConfig {
            name: short_id(),
            relay: relay.into(),
            topic: DEFAULT_TOPIC.to_owned(),
            profile,
            threads: 1,
            max_hash_rate: None,
            mine_when_idle: profile.mines_continuously(),
            min_txns: 2,
            delay: Duration::ZERO,
            max_wait: Duration::from_secs(10),
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
            max_pending: DEFAULT_MAX_PENDING,
            min_bits: 0,
            backoff: BACKOFF,
            max_backoff: MAX_BACKOFF,
            reward_to: no_wallet(),
            clock_skew: 0,
            fault: None,
            control_token: None,
            pbft: None,
            key: None,
        }
    }
}

/// Fits the session's catch-up to the fault played: a silent node neither
/// asks nor answers (it sends nothing); a liar's and an invalid node's due
/// answers are handed to it to break (forged, cut off).
fn fit_catch_up(session: &mut Session, fault: Option<Fault>) {
    let talks = fault != Some(Fault::Silent);
    session.set_catch_up(talks, talks);
    session.hand_over_answers(matches!(fault, Some(Fault::Liar | Fault::Invalid)));
}

/// A short random id, as the original prints (`4886adee`).
pub fn short_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_owned()
}

/// The node's state as of a [`NodeHandle::snapshot`].
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub blocks: Vec<Block>,
    pub tip: BlockHash,
    pub total_work: u128,
    pub pending: Vec<Txid>,
    pub mining: bool,
    /// pBFT: the batches executed, (sequence number, digest), in order.
    pub executed: Vec<(u64, Hash)>,
    /// pBFT: the view the replica is in.
    pub view: Option<u64>,
    /// Every owner's balance in the best chain (proof of work) or the
    /// executed ledger (pBFT).
    pub balances: BTreeMap<Address, i64>,
}

pub(crate) enum Command {
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
///
/// A pBFT node whose key is not one of its replicas' cannot start: the
/// error says so (checked first by the binary).
pub fn spawn(config: NodeConfig) -> (NodeHandle, broadcast::Receiver<Event>) {
    let (events, first) = broadcast::channel(4096);
    let (commands, command_rx) = mpsc::channel(16);
    let task = match config.pbft.clone() {
        Some(pbft) => match PbftNode::new(config, pbft, events.clone()) {
            Ok(node) => tokio::spawn(node.run(command_rx)),
            Err(reason) => {
                let events = events.clone();
                tokio::spawn(async move {
                    let _ = events.send(Event::PbftRefused { reason });
                    let _ = events.send(Event::Stopped);
                })
            }
        },
        None => tokio::spawn(Node::new(config, events.clone()).run(command_rx)),
    };
    (
        NodeHandle {
            commands,
            events,
            task,
        },
        first,
    )
}

struct MiningTask {
    cancel: CancelToken,
    height: usize,
    previous: BlockHash,
    txns: Vec<Transaction>,
    cancelled_at: Option<Instant>,
    /// The pool's version when the template was made.
    pool_version: u64,
    /// When this job started, and since when (and with how many hashes
    /// before this job) this height has been mined on, across refreshes.
    job_started: Instant,
    height_started: Instant,
    attempts_before: u64,
    /// Cancelled to take a new template, not because the tip moved.
    refreshing: bool,
    handle: JoinHandle<Option<MineReport>>,
    _cancel_on_drop: CancelOnDrop,
}

/// Cancels a mining job when dropped: however a job is let go of (its
/// node stopped, or its task dropped when the runtime shuts down), its
/// worker threads stop, and a runtime, which waits for blocking work
/// before it ends, ends.
struct CancelOnDrop(CancelToken);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

struct Node {
    config: NodeConfig,
    events: broadcast::Sender<Event>,
    session: Session,
    pool: Mempool,
    mining: Option<MiningTask>,
    /// Since when the pool has been non-empty.
    pending_since: Option<Instant>,
    /// Counts transactions added to the pool.
    pool_version: u64,
    /// A job cancelled for a new template: the tip it mined on, since
    /// when, and the hashes done.
    refreshed: Option<(BlockHash, Instant, u64)>,
    /// Hashes a second over the last mining job that ran a while.
    hash_rate: f64,
    /// Invalid blocks announced so far (`--fault invalid`).
    invalid_turn: u64,
    /// The block a `--fault stuck` node keeps sending, once it has one.
    stuck: Option<Block>,
    /// What a `--fault liar` node holds back and whom it lies to.
    liar: Liar,
    /// Light clients' requests answered: at most [`SPV_ANSWERS`] a second.
    spv_budget: RateBudget,
    /// Each asker's share of `spv_budget`, by the name its answers go to.
    spv_askers: HashMap<String, RateBudget>,
}

impl Node {
    fn new(config: NodeConfig, events: broadcast::Sender<Event>) -> Node {
        let mut session = Session::start(SessionConfig {
            relay: config.relay.clone(),
            topic: config.topic.clone(),
            profile: config.profile,
            name: config.name.clone(),
            max_frame_len: config.max_frame_len,
            backoff: config.backoff,
            max_backoff: config.max_backoff,
            // As the fault played says: fit_catch_up below, before the
            // session takes in anything.
            ask: true,
            answer: true,
            keep_blocks: false,
            clock_skew: config.clock_skew,
            hello: check_name(&config.name)
                .is_ok()
                .then(|| config.name.clone()),
            hello_key: config.key.clone(),
        });
        fit_catch_up(&mut session, config.fault);
        Node {
            session,
            pool: Mempool::new(config.max_pending),
            config,
            events,
            mining: None,
            pending_since: None,
            pool_version: 0,
            refreshed: None,
            hash_rate: 0.0,
            invalid_turn: 0,
            stuck: None,
            liar: Liar::default(),
            spv_budget: RateBudget::new(SPV_ANSWERS),
            spv_askers: HashMap::new(),
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
            max_hash_rate: self.config.max_hash_rate,
            min_txns: self.config.min_txns,
            reward_to: (self.config.profile.minting() == Minting::RewardsAndMint)
                .then(|| fingerprint(&self.config.reward_to)),
            relay: self.config.relay.clone(),
            topic: self.config.topic.clone(),
        });
        let announces = self.config.profile.announces_status();
        let mut status_at = Instant::now() + STATUS_INTERVAL;
        // The tip the last status named: a new one is said soon, so that
        // the web view can show when each node had each block.
        let mut status_tip = self.session.tree().chain().tip_hash();
        loop {
            let wake_at = match (self.lone_deadline(), self.refresh_deadline()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            tokio::select! {
                command = commands.recv() => match command {
                    Some(Command::Snapshot(reply)) => {
                        let _ = reply.send(self.snapshot());
                    }
                    Some(Command::Stop) | None => break,
                },
                event = self.session.next() => match event {
                    Some(event) => self.on_session(event),
                    None => break,
                },
                report = async { (&mut self.mining.as_mut().expect("guarded").handle).await },
                    if self.mining.is_some() =>
                {
                    self.on_mined(report.ok().flatten());
                }
                _ = tokio::time::sleep_until(status_at), if announces || self.stuck.is_some() => {
                    match &self.stuck {
                        Some(block) => {
                            let payload = encode_bloc(std::slice::from_ref(block));
                            let hash = block.header.this_hash;
                            let height = self.session.tree().chain().height_of(&hash).unwrap_or(0);
                            self.emit(Event::FaultPlayed {
                                what: format!("sent block {} again", hash.short()),
                            });
                            self.publish(payload);
                            self.sign_announcement(&hash, height);
                        }
                        None => {
                            self.announce_status();
                            status_tip = self.session.tree().chain().tip_hash();
                        }
                    }
                    status_at = Instant::now() + STATUS_INTERVAL;
                }
                _ = tokio::time::sleep_until(wake_at.unwrap_or_else(Instant::now)), if wake_at.is_some() => {
                    // maybe_mine below mines what has waited long enough,
                    // or takes a new template.
                }
            }
            self.maybe_mine();
            if announces
                && self.stuck.is_none()
                && self.session.tree().chain().tip_hash() != status_tip
            {
                status_at = status_at.min(Instant::now() + TIP_STATUS_AFTER);
            }
        }
        if let Some(m) = self.mining.take() {
            m.cancel.cancel();
            m.handle.abort();
            let _ = m.handle.await;
        }
        self.emit(Event::Stopped);
    }

    fn snapshot(&self) -> Snapshot {
        let chain = self.session.tree().chain();
        Snapshot {
            blocks: chain.blocks().map(std::borrow::Cow::into_owned).collect(),
            tip: chain.tip_hash(),
            total_work: chain.total_work(),
            pending: self.pool.hashes().copied().collect(),
            mining: self.mining.is_some(),
            executed: Vec::new(),
            view: None,
            balances: chain.ledger().balances(),
        }
    }

    fn on_session(&mut self, event: SessionEvent) {
        match event {
            SessionEvent::Connected { relay, local } => {
                self.emit(Event::Connected { relay, local });
            }
            SessionEvent::Lost { reason, retry_in } => {
                self.emit(Event::Disconnected { reason, retry_in });
            }
            SessionEvent::Txn(m) => self.on_txn(m),
            SessionEvent::Bloc(report) => self.on_bloc(report),
            SessionEvent::GetBlocks(_) => {}
            SessionEvent::AnswerDue { blocks, .. } => match self.config.fault {
                Some(Fault::Invalid) => self.answer_malformed(blocks),
                _ => self.answer_with_a_lie(blocks),
            },
            SessionEvent::Status(status) => self.liar.heard_of(&status.name),
            // Another network's way to agree: not ours to act on; and
            // announcements are for observers.
            SessionEvent::Pbft(_) | SessionEvent::Announce(_) => {}
            SessionEvent::Spv(payload) => self.on_spv(&payload),
            SessionEvent::Order(order) => self.on_order(order),
            SessionEvent::Own(message) => self.emit(Event::OwnMessage {
                kind: message.kind(),
            }),
            SessionEvent::Undecodable { bytes, reason, .. } => {
                self.emit(Event::Undecodable { bytes, reason });
            }
            SessionEvent::Replayed { bytes, reason, .. } => self.emit(Event::Undecodable {
                bytes,
                reason: toycoin_common::refused_frames::refused_again(&reason),
            }),
            SessionEvent::Requested { have } => self.emit(Event::CatchUpRequested { have }),
            SessionEvent::Answered {
                from_height,
                blocks,
            } => self.emit(Event::CatchUpAnswered {
                from_height,
                blocks,
            }),
            SessionEvent::Unsent { bytes } => self.emit(Event::Unsent { bytes }),
            // Only a watcher of a replay follows one; a node never does.
            SessionEvent::Timeline { .. } => {}
        }
    }

    fn on_txn(&mut self, m: TxnMessage) {
        let hash = m.txn.hash();
        match self
            .pool
            .add(self.session.tree().chain().ledger(), m.txn, Some(&m.tokens))
        {
            Ok(hash) => {
                self.pool_version += 1;
                self.emit(Event::TxnAccepted {
                    hash,
                    pending: self.pool.len(),
                })
            }
            Err(e) => self.emit(Event::TxnRejected {
                hash: Some(hash),
                reason: e.to_string(),
            }),
        }
    }

    fn on_bloc(&mut self, report: BlocReport) {
        match report.result {
            Ok(Received::Known) => self.emit(Event::BlocKnown {
                blocks: report.count,
            }),
            Ok(Received::Adopted(adopted)) => self.on_adopted(adopted, false),
            Ok(Received::SideBranch {
                fork_height,
                length,
                ..
            }) => self.emit(Event::SideBranch {
                fork_height,
                length,
                best_length: self.session.tree().chain().len(),
            }),
            Ok(Received::Orphan { missing }) => {
                let reason = if self.config.profile.announces_whole_chain() {
                    format!("block 0: previous_hash {} is not GENESIS", missing.short())
                } else {
                    format!(
                        "its first block follows {}, which we do not have",
                        missing.short()
                    )
                };
                self.emit(Event::BlocRejected { reason });
            }
            Err(ChainError { index, error }) => self.emit(Event::BlocRejected {
                reason: format!("block {index}: {error}"),
            }),
        }
    }

    fn on_adopted(&mut self, adopted: Adopted, ours: bool) {
        let returned: Vec<Transaction> = adopted
            .rolled_back
            .iter()
            .flat_map(|b| b.txns.iter().cloned())
            .collect();
        let rebuilt = self
            .pool
            .rebuild(self.session.tree().chain().ledger(), returned);
        self.emit(Event::Adopted {
            ours,
            old_tip: adopted.old_tip,
            new_tip: adopted.new_tip,
            height: self.session.tree().chain().len().saturating_sub(1),
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
            if m.previous != self.session.tree().chain().tip_hash() && m.cancelled_at.is_none() {
                m.cancel.cancel();
                m.cancelled_at = Some(Instant::now());
            }
        }
    }

    /// When too few transactions to fill a block have waited `max_wait`.
    fn lone_deadline(&self) -> Option<Instant> {
        if self.mining.is_some() || self.config.max_wait.is_zero() {
            return None;
        }
        self.pending_since.map(|at| at + self.config.max_wait)
    }

    /// When the block being mined should take the transactions that
    /// arrived since its template was made ([`TEMPLATE_REFRESH`]): only
    /// when mining continuously, and when the template had room for more.
    fn refresh_deadline(&self) -> Option<Instant> {
        let task = self.mining.as_ref()?;
        let room = task.txns.len() < self.config.profile.max_block_txns();
        (self.config.mine_when_idle
            && room
            && !task.refreshing
            && task.cancelled_at.is_none()
            && task.pool_version != self.pool_version)
            .then_some(task.job_started + TEMPLATE_REFRESH)
    }

    /// Starts mining when idle and enough is pending (or has waited long
    /// enough); cancels the job to take a new template when it is time.
    fn maybe_mine(&mut self) {
        match (self.pool.is_empty(), self.pending_since) {
            (true, _) => self.pending_since = None,
            (false, None) => self.pending_since = Some(Instant::now()),
            _ => {}
        }
        if self
            .refresh_deadline()
            .is_some_and(|at| at <= Instant::now())
        {
            if let Some(task) = &mut self.mining {
                task.cancel.cancel();
                task.refreshing = true;
            }
            return;
        }
        if self.stuck.is_some() {
            return;
        }
        let waited = self.lone_deadline().is_some_and(|at| at <= Instant::now());
        let enough = self.config.mine_when_idle
            || (!self.pool.is_empty()
                && (self.pool.len() >= self.config.min_txns.max(1) || waited));
        if self.mining.is_some() || !enough {
            return;
        }
        let tip = self.session.tree().chain().tip_hash();
        if self
            .liar
            .twin
            .as_ref()
            .is_some_and(|twin| twin.header.previous_hash != tip)
        {
            self.liar.twin = None;
            self.emit(Event::FaultPlayed {
                what: "gave up the block it held back: the tip moved".into(),
            });
        }
        // A twin is stamped a second later than the block it stands beside,
        // so that it differs even with the same transactions.
        let mut now = self.session.local_now();
        if let Some(twin) = &self.liar.twin {
            now = now.max(twin.header.timestamp_secs().unwrap_or(0) + 1);
        }
        let chain = self.session.tree().chain();
        let most = chain.profile().max_block_txns();
        let mut txns = chain.block_txns(&self.config.reward_to, self.pool.select(most));
        if let Some(breach) = self.breach() {
            breach.prepare(&mut txns, chain);
        }
        let Some(mut job) = chain.mining_job(&txns, now) else {
            return;
        };
        job.required_bits = job.required_bits.max(self.config.min_bits);
        let height = chain.len();
        let now = Instant::now();
        let (height_started, attempts_before, refreshed) = match self.refreshed.take() {
            Some((previous, since, attempts)) if previous == job.previous_hash => {
                (since, attempts, true)
            }
            _ => (now, 0, false),
        };
        let cancel = CancelToken::new();
        let miner = Miner::new(self.config.threads).max_rate(self.config.max_hash_rate);
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
        if refreshed {
            self.emit(Event::TemplateRefreshed {
                height,
                txns: txns.len(),
            });
        } else {
            self.emit(Event::MiningStarted {
                height,
                txns: txns.len(),
                required_bits: job.required_bits,
            });
        }
        self.mining = Some(MiningTask {
            cancel: cancel.clone(),
            height,
            previous: job.previous_hash,
            txns,
            cancelled_at: None,
            pool_version: self.pool_version,
            job_started: now,
            height_started,
            attempts_before,
            refreshing: false,
            handle,
            _cancel_on_drop: CancelOnDrop(cancel),
        });
    }

    fn on_mined(&mut self, report: Option<MineReport>) {
        let Some(task) = self.mining.take() else {
            return;
        };
        let Some(report) = report else {
            return;
        };
        // A job of 20 ms or more (some 80,000 hashes) says what this
        // machine does; until one has, a shorter one says it roughly (a
        // status sent just after the first blocks must not say 0 H/s).
        let measured = report.elapsed >= Duration::from_millis(20);
        if measured || (self.hash_rate == 0.0 && report.attempts > 0) {
            self.hash_rate = report.hash_rate();
        }
        let header = match report.outcome {
            MineOutcome::Cancelled if task.refreshing && task.cancelled_at.is_none() => {
                self.refreshed = Some((
                    task.previous,
                    task.height_started,
                    task.attempts_before + report.attempts,
                ));
                return;
            }
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
        // Over every template this height was mined with.
        let elapsed = task.job_started - task.height_started + report.elapsed;
        let attempts = task.attempts_before + report.attempts;
        let hash_rate = attempts as f64 / elapsed.as_secs_f64().max(1e-9);
        let block = Block {
            header: *header,
            txns: task.txns,
        };
        let txns = block.txns.len();
        if let Some(breach) = self.breach() {
            // Announced, never adopted: it goes on mining on the honest tip.
            let bad = breach.apply(&block);
            self.invalid_turn += 1;
            self.emit(Event::FaultPlayed {
                what: format!(
                    "announced block {} ({}) with {}",
                    task.height,
                    bad.header.this_hash.short(),
                    breach.describe()
                ),
            });
            let hash = bad.header.this_hash;
            self.publish(encode_bloc(&[bad]));
            self.sign_announcement(&hash, task.height);
            return;
        }
        let (block, announce) = if self.config.fault == Some(Fault::Liar) {
            match self.equivocate(block, task.height) {
                Some(block) => (block, false),
                None => return,
            }
        } else {
            (block, true)
        };
        let hash = block.header.this_hash;
        let now = self.session.local_now();
        match self.session.tree_mut().receive(vec![block], now) {
            Ok(Received::Adopted(adopted)) => {
                self.emit(Event::Mined {
                    height: task.height,
                    hash,
                    txns,
                    elapsed,
                    hash_rate,
                });
                self.on_adopted(adopted, true);
                if announce {
                    self.announce();
                }
                if self.config.fault == Some(Fault::Stuck) {
                    // From now on: this block, again and again.
                    self.stuck = self.session.tree().chain().tip().cloned();
                }
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

    /// Sends a frame of ours to the relay; a `silent` node sends nothing
    /// (and its session neither asks nor answers catch-up).
    fn publish(&mut self, payload: bytes::Bytes) {
        if self.config.fault != Some(Fault::Silent) {
            self.session.publish(payload);
        }
    }

    /// The rule the next block breaks, when playing `invalid`.
    fn breach(&self) -> Option<Breach> {
        (self.config.fault == Some(Fault::Invalid))
            .then(|| Breach::of_turn(self.invalid_turn, self.session.tree().chain()))
    }
}
