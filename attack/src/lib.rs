//! toycoin-attack: the classic attacks on a running network, narrated
//! step by step — what the attacker does, what the network did — each
//! ending in a verdict. A verdict fails only when the network did
//! something it must not (the original's known flaws, under
//! `--profile toycoin`, are shown as such and do not fail).
//!
//! The attacker joins the relay like any client, named `attacker`,
//! follows the best chain and every branch it hears, and for
//! `double-spend` uses the teacher's controls (`toycoin-ctl`) to cut the
//! network in two.
//!
//! Each scenario is a file of [`scenario`]; what they share (joining,
//! following the chain, waiting, mining in secret) is here.

mod scenario;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use rand::rngs::OsRng;
use tokio::time::Instant;
use toycoin_common::block::Block;
use toycoin_common::chain::{now_secs, Chain};
use toycoin_common::control::{command, Command};
use toycoin_common::hash::{BlockHash, Txid};
use toycoin_common::log::{fit_to, terminal_width, Output};
use toycoin_common::message::{encode_bloc, encode_txn, TxnMessage};
use toycoin_common::pow::{CancelToken, MineOutcome, Miner};
use toycoin_common::profile::{Profile, ProfileKind};
use toycoin_common::session::{Session, SessionConfig, SessionEvent};
use toycoin_common::signatures::check_signatures;
use toycoin_common::transaction::Transaction;
use toycoin_common::tree::Received;
use toycoin_common::wallet::{fingerprint, Wallet};

/// The attacks there are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// Pay two merchants with the same coins, one in each half of a
    /// partitioned network, then heal it: one payment vanishes.
    DoubleSpend,
    /// Mine in secret, then release the branch: the heavier chain wins.
    PrivateFork,
    /// Rewrite a pending transfer's amounts and send it again.
    Malleate,
    /// Make coins out of nothing: a coinbase outside any block.
    Mint,
    /// Thousands of transactions with bad signatures, as fast as the
    /// socket takes them.
    Flood,
    /// A payment of 2,000 inputs, far past the size a transaction may
    /// have.
    Oversized,
    /// Replay a confirmed transaction and an invalid block, many times.
    ReplayInvalid,
}

/// How an attack runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// The relay, `host:port`.
    pub relay: String,
    pub topic: String,
    pub profile: Profile,
    /// The teacher's token (for `double-spend`'s partition).
    pub token: Option<String>,
    /// Mining threads (private fork, double-spend's coins).
    pub threads: usize,
    /// Seconds to mine in secret (private fork).
    pub secret_secs: f64,
    /// Blocks to mine in secret at most: the branch is released as soon
    /// as it has this many (private fork).
    pub secret_blocks: usize,
    /// Frames to send (flood) or replays (replay-invalid).
    pub count: usize,
    /// Longest wait for the network to do something.
    pub patience: Duration,
    /// Average seconds between blocks the network aims for.
    pub target: f64,
    /// How long to listen on joining, to catch up and hear the nodes,
    /// before the scenario starts. `double-spend` always hears the nodes
    /// for [`NODES_HEARD_WITHIN`] before it cuts the network.
    pub listen_first: Duration,
}

impl Options {
    pub fn new(relay: impl Into<String>, profile: Profile) -> Options {
        Options {
            relay: relay.into(),
            topic: toycoin_common::session::DEFAULT_TOPIC.to_owned(),
            profile,
            token: None,
            threads: 1,
            secret_secs: 20.0,
            secret_blocks: usize::MAX,
            count: 2_000,
            patience: Duration::from_secs(120),
            target: profile.target_ms as f64 / 1000.0,
            listen_first: NODES_HEARD_WITHIN,
        }
    }
}

/// How it ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// False when the network did something it must not.
    pub held: bool,
    pub line: String,
}

/// How a verdict that shows one of the original's known flaws begins.
pub const FLAW_SHOWN: &str = "the original's flaw";

impl Verdict {
    /// Whether the attack got through one of the original's known flaws
    /// (`--profile toycoin`): shown, not failed.
    pub fn shows_flaw(&self) -> bool {
        self.line.starts_with(FLAW_SHOWN)
    }
}

/// A steady node says where it stands every 3 s: listening this long
/// hears every node's name.
pub const NODES_HEARD_WITHIN: Duration = Duration::from_secs(4);

/// Transactions heard and kept, for `malleate`.
const KEEP_HEARD: usize = 256;
/// Branch blocks remembered by hash (what every `BLOC` carried).
const KEEP_BLOCKS: usize = 4096;

/// The attacker on the network.
#[derive(Debug)]
pub struct Attacker {
    session: Session,
    options: Options,
    wallet: Wallet,
    /// Node names heard in status frames.
    nodes: BTreeSet<String>,
    /// When it joined (it has heard the nodes since).
    joined: Instant,
    heard: VecDeque<TxnMessage>,
    /// Every block heard, on any branch: where each transaction is.
    blocks: HashMap<BlockHash, Block>,
    order: VecDeque<BlockHash>,
    /// What was said, for whoever runs it (tests read it back).
    pub said: Vec<String>,
    print: bool,
}

impl Attacker {
    /// Joins the relay as `attacker` and listens a moment to learn the
    /// chain and the nodes.
    pub async fn join(options: Options, print: bool) -> Result<Attacker, String> {
        let mut config = SessionConfig::new(options.relay.clone(), options.profile, "attacker");
        config.topic = options.topic.clone();
        config.keep_blocks = true;
        config.hello = Some("attacker".into());
        let wallet = Wallet::random().map_err(|e| e.to_string())?;
        let mut attacker = Attacker {
            session: Session::start(config),
            options,
            wallet,
            nodes: BTreeSet::new(),
            joined: Instant::now(),
            heard: VecDeque::new(),
            blocks: HashMap::new(),
            order: VecDeque::new(),
            said: Vec::new(),
            print,
        };
        let connected = attacker
            .wait(Duration::from_secs(10), |_, e| {
                matches!(e, Some(SessionEvent::Connected { .. }))
            })
            .await;
        if !connected {
            return Err(format!(
                "cannot reach the relay at {}",
                attacker.options.relay
            ));
        }
        attacker.joined = Instant::now();
        // Catch up and hear the nodes' status.
        let first = attacker.options.listen_first;
        attacker.listen(first).await;
        let line = format!(
            "The attacker joined: wallet {}, best chain {} blocks, nodes heard: {}",
            fingerprint(attacker.wallet.address()),
            attacker.chain().len(),
            if attacker.nodes.is_empty() {
                "none yet".to_string()
            } else {
                attacker
                    .nodes
                    .iter()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        );
        attacker.say(line);
        Ok(attacker)
    }

    fn say(&mut self, line: impl Into<String>) {
        let line = line.into();
        if self.print {
            // Wrapped to the terminal (the demo's pane) as every program's lines.
            let width = terminal_width(Output::Stdout);
            println!("{}", fit_to(&line, width));
        }
        self.said.push(line);
    }

    fn chain(&self) -> &Chain {
        self.session.tree().chain()
    }

    fn toycoin(&self) -> bool {
        self.options.profile.kind == ProfileKind::Toycoin
    }

    fn on_event(&mut self, event: &SessionEvent) {
        match event {
            SessionEvent::Status(status) if self.nodes.len() < 64 => {
                self.nodes.insert(status.name.clone());
            }
            SessionEvent::Txn(m) => {
                if self.heard.len() == KEEP_HEARD {
                    self.heard.pop_front();
                }
                self.heard.push_back(m.clone());
            }
            SessionEvent::Bloc(report) => {
                for block in report.blocks.iter().flatten() {
                    let hash = block.header.this_hash;
                    if self.blocks.insert(hash, block.clone()).is_none() {
                        self.order.push_back(hash);
                    }
                }
                while self.order.len() > KEEP_BLOCKS {
                    if let Some(old) = self.order.pop_front() {
                        self.blocks.remove(&old);
                    }
                }
            }
            _ => {}
        }
    }

    /// Follows the network until `done` says so (given the event just
    /// taken in, or `None` before the first) or `timeout` passes: whether
    /// it was done.
    async fn wait(
        &mut self,
        timeout: Duration,
        mut done: impl FnMut(&Attacker, Option<&SessionEvent>) -> bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        if done(self, None) {
            return true;
        }
        loop {
            let event = tokio::select! {
                event = self.session.next() => event,
                _ = tokio::time::sleep_until(deadline) => return false,
            };
            let Some(event) = event else {
                return false;
            };
            self.on_event(&event);
            if done(self, Some(&event)) {
                return true;
            }
        }
    }

    async fn listen(&mut self, time: Duration) {
        self.wait(time, |_, _| false).await;
    }

    /// Waits for `blocks` more blocks on the best chain.
    async fn blocks_more(&mut self, blocks: usize, timeout: Duration) -> bool {
        let goal = self.chain().len() + blocks;
        self.wait(timeout, |a, _| a.chain().len() >= goal).await
    }

    /// Waits until `txid` is on the best chain (true) or `blocks` more
    /// blocks came without it, or the patience ran out (false). A `rival`
    /// spending the same tokens ends the wait too once it is on the best
    /// chain: from then on `txid` could only be confirmed by undoing it.
    async fn included_within(&mut self, txid: Txid, rival: Option<Txid>, blocks: usize) -> bool {
        // An attacker that knows no chain yet (under the original's
        // rules nobody answers a catch-up: the chain comes whole with the
        // next block) counts from the first chain it hears, which may have
        // been mined before the transaction was sent.
        let mut goal = (!self.chain().is_empty()).then(|| self.chain().len() + blocks);
        let patience = self.options.patience;
        self.wait(patience, |a, _| {
            let len = a.chain().len();
            if goal.is_none() && len > 0 {
                goal = Some(len + blocks - 1);
            }
            a.confirmations(&txid).is_some()
                || rival.is_some_and(|r| a.confirmations(&r).is_some())
                || goal.is_some_and(|g| len >= g)
        })
        .await;
        self.confirmations(&txid).is_some()
    }

    /// Confirmations of `txid` on the best chain (1: in the tip).
    fn confirmations(&self, txid: &Txid) -> Option<usize> {
        let chain = self.chain();
        chain
            .blocks()
            .position(|b| b.txns.iter().any(|t| t.hash() == *txid))
            .map(|at| chain.len() - at)
    }

    /// How many times `txid` is on the best chain.
    fn times_in_chain(&self, txid: &Txid) -> usize {
        self.chain()
            .transactions()
            .filter(|t| t.hash() == *txid)
            .count()
    }

    /// Whether some block heard, on any branch, holds `txid`.
    fn in_any_block(&self, txid: &Txid) -> bool {
        let holds = |b: &Block| b.txns.iter().any(|t| t.hash() == *txid);
        self.blocks.values().any(holds) || self.chain().blocks().any(|b| holds(&b))
    }

    fn publish(&mut self, payload: Bytes) {
        self.session.publish(payload);
    }

    /// A block's worth of patience: several target intervals in steady.
    /// In toycoin the target means nothing: a block needs a zero byte more
    /// at each power of two (24 bits, some 16 million hashes, from height
    /// 4), so it is the whole patience.
    fn a_few_blocks(&self) -> Duration {
        if self.toycoin() {
            return self.options.patience;
        }
        Duration::from_secs_f64(self.options.target * 6.0 + 15.0).min(self.options.patience)
    }

    /// Runs `scenario` to its verdict.
    pub async fn run(&mut self, scenario: Scenario) -> Verdict {
        let verdict = match scenario {
            Scenario::Mint => self.mint().await,
            Scenario::Malleate => self.malleate().await,
            Scenario::ReplayInvalid => self.replay_invalid().await,
            Scenario::Flood => self.flood().await,
            Scenario::Oversized => self.oversized().await,
            Scenario::PrivateFork => self.private_fork().await,
            Scenario::DoubleSpend => self.double_spend().await,
        };
        let line = format!(
            "VERDICT ({}): {}",
            if verdict.held { "held" } else { "BROKEN" },
            verdict.line
        );
        self.say(line);
        verdict
    }

    /// A block on the tip paying the attacker that lacks the work asked
    /// for (`None` where every hash has enough).
    fn forged_block(&self) -> Option<Block> {
        let chain = self.chain();
        chain.weak_block(block_txns(chain, self.wallet.address()), now_secs())
    }

    /// Mines on `chain` for up to `secs`, or until `stop_after` blocks,
    /// following the network meanwhile: the blocks found and the hashes
    /// tried. With `on_tip` it gives up (nothing found) as soon as the
    /// network's best chain moves on from `chain`'s tip: a block on an old
    /// tip would lose its race.
    async fn mine_secretly(
        &mut self,
        chain: Chain,
        secs: f64,
        stop_after: usize,
        on_tip: bool,
    ) -> (Vec<Block>, u64) {
        let tip = chain.tip_hash();
        let mining = mine(
            self.options.threads,
            self.wallet.address().clone(),
            chain,
            secs,
            stop_after,
        );
        tokio::pin!(mining);
        loop {
            tokio::select! {
                found = &mut mining => return found,
                event = self.session.next() => {
                    if let Some(event) = event {
                        self.on_event(&event);
                    }
                    if on_tip && self.chain().tip_hash() != tip {
                        return (Vec::new(), 0);
                    }
                }
            }
        }
    }
}

/// Cancels mining when dropped.
struct CancelOnDrop(CancelToken);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// "1 block", "2 blocks".
fn blocks(n: usize) -> String {
    format!("{n} block{}", if n == 1 { "" } else { "s" })
}

/// What an attacker's block on `chain` holds: its reward, or under
/// toycoin, which pays none and takes no empty block, coins it mints
/// itself through the original's backdoor (a different amount each
/// height, so no two are the same transaction).
fn block_txns(chain: &Chain, me: &toycoin_common::transaction::Address) -> Vec<Transaction> {
    let mut txns = chain.block_txns(me, Vec::new());
    if txns.is_empty() {
        txns.push(Transaction::coinbase(me.clone(), chain.len() as i64 + 1));
    }
    txns
}

/// Mines on `chain` for up to `secs`, or until `stop_after` blocks, on
/// `threads` threads, paying `reward`.
async fn mine(
    threads: usize,
    reward: toycoin_common::transaction::Address,
    chain: Chain,
    secs: f64,
    stop_after: usize,
) -> (Vec<Block>, u64) {
    let cancel = CancelToken::new();
    let timer = {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs_f64(secs)).await;
            cancel.cancel();
        })
    };
    // Dropped (its caller gone, the runtime shutting down): the threads
    // stop.
    let _stop_on_drop = CancelOnDrop(cancel.clone());
    let found = tokio::task::spawn_blocking(move || {
        let mut chain = chain;
        let (mut blocks, mut hashes) = (Vec::new(), 0);
        let miner = Miner::new(threads);
        while blocks.len() < stop_after {
            let txns = block_txns(&chain, &reward);
            let Some(job) = chain.mining_job(&txns, now_secs()) else {
                break;
            };
            let report = miner.mine(&job, &cancel);
            hashes += report.attempts;
            let MineOutcome::Found(header) = report.outcome else {
                break;
            };
            let block = Block {
                header: *header,
                txns,
            };
            if chain.push(block.clone(), now_secs()).is_err() {
                break;
            }
            blocks.push(block);
        }
        (blocks, hashes)
    })
    .await
    .unwrap_or_default();
    timer.abort();
    found
}

impl Attacker {
    /// The frame announcing `chain` ending in `blocks` as the profile
    /// announces (the whole chain under toycoin).
    fn announcement(&self, base: &Chain, blocks: &[Block]) -> Bytes {
        if self.options.profile.announces_whole_chain() {
            let all: Vec<Block> = base
                .blocks()
                .map(std::borrow::Cow::into_owned)
                .chain(blocks.iter().cloned())
                .collect();
            encode_bloc(&all)
        } else {
            encode_bloc(blocks)
        }
    }

    /// Coins the attacker can spend: under toycoin, minted through the
    /// original's backdoor; under steady, a block reward it mines.
    async fn get_coins(&mut self) -> Option<(Vec<toycoin_common::transaction::Token>, i64)> {
        let me = self.wallet.address().clone();
        let deadline = Instant::now() + self.options.patience;
        if self.toycoin() {
            let txn = Transaction::coinbase(me.clone(), 100);
            let hash = txn.hash();
            self.say(format!(
                "   the attacker mints itself 100 coins through the original's coinbase backdoor ({})",
                hash.short()
            ));
            self.publish(encode_txn(&[], &txn));
            let patience = self.options.patience;
            self.wait(patience, |a, _| a.confirmations(&hash).is_some())
                .await;
        } else {
            self.say(format!(
                "   the attacker mines a block for its reward ({} thread{})",
                self.options.threads,
                if self.options.threads == 1 { "" } else { "s" }
            ));
            while self.chain().ledger().balance(&me) == 0 && Instant::now() < deadline {
                let base = self.chain().clone();
                let (blocks, _) = self.mine_secretly(base.clone(), 5.0, 1, true).await;
                if let Some(block) = blocks.first() {
                    let payload = self.announcement(&base, std::slice::from_ref(block));
                    self.publish(payload);
                    let hash = block.header.this_hash;
                    self.wait(Duration::from_secs(3), |a, e| {
                        a.chain().blocks().any(|b| b.header.this_hash == hash)
                            || matches!(e, Some(SessionEvent::Bloc(r)) if matches!(r.result, Ok(Received::Adopted(_))))
                    })
                    .await;
                } else if self.chain().tip_hash() == base.tip_hash() {
                    self.listen(Duration::from_millis(200)).await;
                }
            }
        }
        let tokens = self.chain().unspent(&me);
        let total: i64 = tokens.iter().map(|t| t.value).sum();
        (total > 0).then_some((tokens, total))
    }
}
