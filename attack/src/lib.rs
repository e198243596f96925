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
        let goal = self.chain().len() + blocks;
        let patience = self.options.patience;
        self.wait(patience, |a, _| {
            a.confirmations(&txid).is_some()
                || rival.is_some_and(|r| a.confirmations(&r).is_some())
                || a.chain().len() >= goal
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

    async fn mint(&mut self) -> Verdict {
        let txn = Transaction::coinbase(self.wallet.address().clone(), 1_000);
        let txid = txn.hash();
        self.say(format!(
            "1. The attacker sends a coinbase paying itself 1,000 coins, outside any block (txn {})",
            txid.short()
        ));
        self.publish(encode_txn(&[], &txn));
        self.say("2. It watches the next three blocks to see whether one takes it...");
        let minted = self.included_within(txid, None, 3).await;
        match (minted, self.toycoin()) {
            (true, true) => Verdict {
                held: true,
                line: format!(
                    "the original's flaw, shown: block {} took the attacker's 1,000 coins out of nothing (steady refuses this)",
                    self.chain().len() - self.confirmations(&txid).unwrap_or(1)
                ),
            },
            (true, false) => Verdict {
                held: false,
                line: "a block took coins made out of nothing".into(),
            },
            (false, _) => Verdict {
                held: true,
                line: "no block took it: a coinbase outside a block's first transaction is refused (rule Minting)".into(),
            },
        }
    }

    async fn malleate(&mut self) -> Verdict {
        self.say("1. The attacker waits for someone's transfer with change...");
        let patience = self.options.patience;
        let found = self
            .wait(patience, |a, _| {
                a.heard
                    .iter()
                    .any(|m| m.txn.sender_change > 0 && !m.txn.is_coinbase())
            })
            .await;
        let Some(original) = found
            .then(|| {
                self.heard
                    .iter()
                    .find(|m| m.txn.sender_change > 0 && !m.txn.is_coinbase())
                    .cloned()
            })
            .flatten()
        else {
            return Verdict {
                held: true,
                line: "no transfer with change came by: nothing to rewrite (start an oracle)"
                    .into(),
            };
        };
        let mut rewritten = original.txn.clone();
        rewritten.receiver_value = rewritten
            .receiver_value
            .saturating_add(rewritten.sender_change);
        rewritten.sender_change = 0;
        let txid = rewritten.hash();
        self.say(format!(
            "2. It rewrites transfer {} ({} to the receiver + {} change) into {} + 0 change, signatures untouched (txn {})",
            original.txn.hash().short(),
            original.txn.receiver_value,
            original.txn.sender_change,
            rewritten.receiver_value,
            txid.short()
        ));
        let signatures = check_signatures(&rewritten, self.options.profile.signing());
        self.say(format!(
            "   its signatures under the {} rules: {}",
            self.options.profile.kind,
            match &signatures {
                Ok(()) => "still valid".to_string(),
                Err(e) => format!("broken ({e})"),
            }
        ));
        self.publish(encode_txn(&original.tokens, &rewritten));
        self.say("3. It sends the rewritten transfer and watches until a block takes it or the original (three blocks at most)...");
        let confirmed = self
            .included_within(txid, Some(original.txn.hash()), 3)
            .await;
        match (confirmed, signatures.is_ok()) {
            (true, true) if self.toycoin() => Verdict {
                held: true,
                line: "the original's flaw, shown: the rewritten transfer was confirmed (signatures do not cover amounts; steady's do)".into(),
            },
            (true, _) => Verdict {
                held: false,
                line: "a rewritten transfer was confirmed".into(),
            },
            (false, true) if self.toycoin() => Verdict {
                held: true,
                line: "the original's flaw, shown: the rewritten transfer's signatures still verify; it lost only because the original was seen first".into(),
            },
            (false, true) => Verdict {
                held: false,
                line: "the rewritten transfer's signatures still verify under steady".into(),
            },
            (false, false) => Verdict {
                held: true,
                line: "refused: the signatures cover the amounts, so the rewrite broke them".into(),
            },
        }
    }

    async fn replay_invalid(&mut self) -> Verdict {
        let count = self.options.count.clamp(1, 100_000);
        self.say("1. The attacker waits for a confirmed transaction to replay...");
        let patience = self.options.patience;
        self.wait(patience, |a, _| a.chain().len() > 1).await;
        // A transfer if there is one, else a block's reward.
        let txns = || self.chain().transactions_newest_first();
        let Some(old) = txns()
            .find(|t| !t.is_coinbase())
            .or_else(|| txns().next())
            .map(std::borrow::Cow::into_owned)
        else {
            return Verdict {
                held: true,
                line: "no transaction was confirmed to replay".into(),
            };
        };
        let txid = old.hash();
        let before = self.times_in_chain(&txid);
        self.say(format!(
            "2. It replays confirmed transaction {} {count} times",
            txid.short()
        ));
        for _ in 0..count {
            self.publish(encode_txn(&[], &old));
        }
        let forged = self.forged_block();
        let forged_hash = forged.as_ref().map(|b| b.header.this_hash);
        if let Some(block) = forged {
            self.say(format!(
                "3. It sends a block with too little work on the tip, {} times ({})",
                count,
                block.header.this_hash.short()
            ));
            let payload = encode_bloc(&[block]);
            for _ in 0..count {
                self.publish(payload.clone());
            }
        }
        self.say("4. It watches two more blocks...");
        let grew = self.blocks_more(2, self.a_few_blocks()).await;
        let after = self.times_in_chain(&txid);
        let forged_in =
            forged_hash.is_some_and(|h| self.chain().blocks().any(|b| b.header.this_hash == h));
        if forged_in {
            return Verdict {
                held: false,
                line: "the invalid block is on the best chain".into(),
            };
        }
        if after > before {
            return Verdict {
                held: self.toycoin(),
                line: format!(
                    "a block repeated confirmed transaction {} ({})",
                    txid.short(),
                    if self.toycoin() {
                        "the original's flaw, applied once: it spends and creates nothing again"
                    } else {
                        "a replay"
                    }
                ),
            };
        }
        Verdict {
            held: true,
            line: format!(
                "refused every replay: the transaction is on the chain once, the invalid block nowhere{}",
                if grew {
                    ", and the network kept mining"
                } else {
                    " (no new block came meanwhile)"
                }
            ),
        }
    }

    /// A block on the tip paying the attacker that lacks the work asked
    /// for (`None` where every hash has enough).
    fn forged_block(&self) -> Option<Block> {
        let chain = self.chain();
        chain.weak_block(block_txns(chain, self.wallet.address()), now_secs())
    }

    async fn flood(&mut self) -> Verdict {
        let count = self.options.count.clamp(1, 1_000_000);
        let mut txn = Transaction::coinbase(self.wallet.address().clone(), 1);
        txn.sender = self.wallet.address().clone();
        txn.previous_hashes = vec![Txid::from_raw_hash(toycoin_common::hash::Hash::of(b"none"))];
        txn.receiver_signature = Bytes::from(vec![7u8; 256]);
        txn.sender_signature = Bytes::from(vec![7u8; 256]);
        self.say(format!(
            "1. The attacker sends {count} transactions with forged signatures, as fast as its socket takes them"
        ));
        let start = Instant::now();
        let height = self.chain().len();
        for i in 0..count {
            txn.receiver_value = i as i64 + 1;
            self.publish(encode_txn(&[], &txn));
            if i % 256 == 0 {
                // Let the connection drain what is queued.
                self.listen(Duration::from_millis(1)).await;
            }
        }
        let secs = start.elapsed().as_secs_f64();
        self.say(format!(
            "   sent in {secs:.2} s ({:.0} a second)",
            count as f64 / secs.max(1e-9)
        ));
        // What must still work: new blocks, and (under toycoin, where nodes
        // mine only what waits) a valid transaction getting in.
        let probe = self.toycoin().then(|| {
            let probe = Transaction::coinbase(self.wallet.address().clone(), 2);
            (probe.hash(), encode_txn(&[], &probe))
        });
        if let Some((hash, payload)) = &probe {
            self.say(format!(
                "2. It sends one valid transaction ({}) and waits for a block to take it",
                hash.short()
            ));
            self.publish(payload.clone());
        } else {
            self.say("2. It waits for the network to mine two more blocks");
        }
        let patience = self.a_few_blocks();
        let carried_on = match probe {
            Some((hash, _)) => {
                self.wait(patience, |a, _| a.confirmations(&hash).is_some())
                    .await
            }
            None => self.blocks_more(2, patience).await,
        };
        let forged_in = self
            .chain()
            .transactions()
            .any(|t| t.sender_signature.first() == Some(&7) && t.sender == *self.wallet.address());
        if forged_in {
            return Verdict {
                held: false,
                line: "a transaction with a forged signature was confirmed".into(),
            };
        }
        Verdict {
            held: carried_on,
            line: if carried_on {
                format!(
                    "the network carried on: {} blocks since the flood began, none of the forgeries in them",
                    self.chain().len() - height
                )
            } else {
                format!(
                    "the network stalled: nothing confirmed within {:.0} s of the flood",
                    patience.as_secs_f64()
                )
            },
        }
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

    async fn private_fork(&mut self) -> Verdict {
        let base = self.chain().clone();
        let (work_before, len_before) = (base.total_work(), base.len());
        let (secs, most) = (self.options.secret_secs, self.options.secret_blocks.max(1));
        self.say(format!(
            "1. The attacker mines in secret on block {} with {} thread{} for {secs:.0} s{}",
            len_before.saturating_sub(1),
            self.options.threads,
            if self.options.threads == 1 { "" } else { "s" },
            if most == usize::MAX {
                String::new()
            } else {
                format!(" or {}", blocks(most))
            }
        ));
        let (mut secret, mut hashes) = self.mine_secretly(base.clone(), secs, most, false).await;
        if secret.is_empty() {
            // Nothing yet: on until a first block, as long as patience lasts.
            let patience = self.options.patience.as_secs_f64();
            let (found, more) = self.mine_secretly(base.clone(), patience, 1, false).await;
            (secret, hashes) = (found, hashes + more);
        }
        let mut secret_chain = base.clone();
        for block in &secret {
            let _ = secret_chain.push(block.clone(), now_secs());
        }
        let honest_blocks = self.chain().len().saturating_sub(len_before);
        let (secret_work, honest_work) = (
            secret_chain.total_work() - work_before,
            self.chain().total_work().saturating_sub(work_before),
        );
        self.say(format!(
            "2. In secret: {} ({hashes} hashes). Meanwhile the network mined {} on the same fork point.",
            blocks(secret.len()),
            blocks(honest_blocks)
        ));
        if secret.is_empty() {
            return Verdict {
                held: true,
                line: "the attacker found no block in its time: nothing to release".into(),
            };
        }
        let tip = secret_chain.tip_hash();
        self.say(format!(
            "3. It releases its branch ({}, tip {}), {} the network's",
            blocks(secret.len()),
            tip.short(),
            if secret_work > honest_work {
                "heavier than"
            } else if secret_work == honest_work {
                "as heavy as"
            } else {
                "lighter than"
            }
        ));
        let payload = self.announcement(&base, &secret);
        self.publish(payload);
        // Our own frame does not come back into our view: take the branch
        // in, then judge by the next block a node announces, which shows
        // the chain it mines on.
        let now = now_secs();
        let _ = self.session.tree_mut().receive(secret.clone(), now);
        if self.toycoin() {
            // Nodes mine only what waits: give them something.
            let probe = Transaction::coinbase(self.wallet.address().clone(), 7);
            self.publish(encode_txn(&[], &probe));
        }
        let on_best =
            |a: &Attacker, h: BlockHash| a.chain().blocks().any(|b| b.header.this_hash == h);
        // A block mined before a node heard the release may still come:
        // up to three announcements, until one is on the best chain.
        let mut peer_tip = None;
        for _ in 0..3 {
            let mut announced = None;
            let patience = self.a_few_blocks();
            self.wait(patience, |_, e| {
                if let Some(SessionEvent::Bloc(report)) = e {
                    announced = report
                        .blocks
                        .as_ref()
                        .and_then(|b| b.last())
                        .map(|b| b.header.this_hash);
                }
                announced.is_some()
            })
            .await;
            peer_tip = announced;
            if !peer_tip.is_some_and(|t| !on_best(self, t)) {
                break;
            }
        }
        let Some(peer_tip) = peer_tip else {
            return Verdict {
                held: true,
                line: "no node announced a block after the release: no verdict".into(),
            };
        };
        match (on_best(self, peer_tip), on_best(self, tip)) {
            (true, true) => Verdict {
                held: true,
                line: format!(
                    "the attacker's branch won: the nodes mine on it; {} undone, their transactions back in the pool (it cost {hashes} hashes)",
                    blocks(honest_blocks)
                ),
            },
            (true, false) => Verdict {
                held: true,
                line: format!(
                    "the honest chain won: it had as much work or more; the attacker's {hashes} hashes are wasted"
                ),
            },
            (false, _) => Verdict {
                held: secret_work <= honest_work,
                line: format!(
                    "a node mines on a branch lighter than the best one seen ({})",
                    peer_tip.short()
                ),
            },
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
        let tokens = self.chain().ledger().unspent(&me);
        let total: i64 = tokens.iter().map(|t| t.value).sum();
        (total > 0).then_some((tokens, total))
    }

    async fn double_spend(&mut self) -> Verdict {
        let Some(token) = self.options.token.clone() else {
            return Verdict {
                held: true,
                line: "needs the teacher's token to cut the network (--token-file, or run it on the relay's machine)".into(),
            };
        };
        // The nodes: named clients at the relay that said where they
        // stand, so neither us nor the oracle or listener (toycoin nodes
        // say nothing: there, the clients named node*).
        let heard_for = self.joined.elapsed();
        if !self.toycoin() && heard_for < NODES_HEARD_WITHIN {
            self.listen(NODES_HEARD_WITHIN - heard_for).await;
        }
        if !self.toycoin() && self.nodes.len() < 2 {
            // A node still connecting when its status was due says it
            // again 3 s later.
            self.wait(NODES_HEARD_WITHIN, |a, _| a.nodes.len() >= 2)
                .await;
        }
        let status = match command(self.options.relay.as_str(), &token, Command::Status).await {
            Ok(reply) if reply.ok => reply.status.unwrap_or_default(),
            Ok(reply) => {
                return Verdict {
                    held: true,
                    line: format!("the relay refused: {}", reply.message),
                }
            }
            Err(e) => {
                return Verdict {
                    held: true,
                    line: format!("cannot command the relay: {e}"),
                }
            }
        };
        let mut nodes: Vec<String> = status
            .clients
            .iter()
            .map(|c| c.name.clone())
            .filter(|n| self.nodes.contains(n) || (self.toycoin() && n.starts_with("node")))
            .collect();
        nodes.sort();
        nodes.dedup();
        if nodes.len() < 2 {
            return Verdict {
                held: true,
                line: format!(
                    "needs two named nodes to split; found {}",
                    if nodes.is_empty() {
                        "none".to_string()
                    } else {
                        nodes.join(", ")
                    }
                ),
            };
        }
        let (left, right) = nodes.split_at(nodes.len() / 2);
        let (left, right) = (left.to_vec(), right.to_vec());
        self.say("1. The attacker gets coins to spend twice:");
        let Some((tokens, total)) = self.get_coins().await else {
            return Verdict {
                held: true,
                line: "the attacker could not get coins in time".into(),
            };
        };
        self.say(format!("   it has {total} coins"));
        let cut = command(
            self.options.relay.as_str(),
            &token,
            Command::Partition {
                groups: vec![left.clone(), right.clone()],
            },
        )
        .await;
        if !cut.as_ref().is_ok_and(|r| r.ok) {
            return Verdict {
                held: true,
                line: format!("the relay did not cut the network: {cut:?}"),
            };
        }
        self.say(format!(
            "2. The teacher's relay cuts the network: {} | {}",
            left.join(","),
            right.join(",")
        ));
        let merchants = [
            Wallet::random().map_err(|e| e.to_string()),
            Wallet::random().map_err(|e| e.to_string()),
        ];
        let mut payments = Vec::new();
        for (merchant, side) in merchants.iter().zip([&left, &right]) {
            let Ok(merchant) = merchant else {
                return Verdict {
                    held: true,
                    line: "cannot make a merchant's key".into(),
                };
            };
            let Ok(transfer) = self.wallet.transfer(
                &mut OsRng,
                merchant.address(),
                total,
                tokens.clone(),
                self.options.profile.signing(),
            ) else {
                return Verdict {
                    held: true,
                    line: "cannot sign the payment".into(),
                };
            };
            let payload = encode_txn(&transfer.tokens, &transfer.txn);
            for name in side.iter() {
                self.session.publish_to(name, payload.clone());
            }
            payments.push(transfer.txn.hash());
        }
        self.say(format!(
            "3. It pays merchant A ({}) in the first half with {} and merchant B ({}) in the second with {}: the same {total} coins",
            left.join(","),
            payments[0].short(),
            right.join(","),
            payments[1].short()
        ));
        let patience = self.options.patience;
        let both = self
            .wait(patience, |a, _| payments.iter().all(|p| a.in_any_block(p)))
            .await;
        if !both {
            let _ = command(self.options.relay.as_str(), &token, Command::Heal).await;
            return Verdict {
                held: true,
                line: "the payments were not both mined in time; healed".into(),
            };
        }
        self.say("4. Each half put its payment in a block: each merchant sees 1 confirmation and, if it pays out now, hands over the goods");
        self.listen(Duration::from_secs_f64(self.options.target * 2.0))
            .await;
        let _ = command(self.options.relay.as_str(), &token, Command::Heal).await;
        self.say("5. The teacher heals the network; the halves' chains meet");
        let deep = |a: &Attacker, _: Option<&SessionEvent>| {
            payments
                .iter()
                .any(|p| a.confirmations(p).is_some_and(|c| c >= 3))
        };
        let settled = if self.toycoin() {
            // Nodes mine only what waits: coins minted through the backdoor,
            // one at a time, keep the blocks coming until it settles.
            let deadline = Instant::now() + self.options.patience;
            let mut settled = false;
            for k in 0.. {
                if settled || Instant::now() >= deadline {
                    break;
                }
                let probe = Transaction::coinbase(self.wallet.address().clone(), 1000 + k);
                let hash = probe.hash();
                self.publish(encode_txn(&[], &probe));
                let left = deadline.saturating_duration_since(Instant::now());
                self.wait(left, |a, e| deep(a, e) || a.confirmations(&hash).is_some())
                    .await;
                settled = deep(self, None);
            }
            settled
        } else {
            self.wait(self.a_few_blocks(), deep).await
        };
        let kept: Vec<bool> = payments
            .iter()
            .map(|p| self.confirmations(p).is_some())
            .collect();
        match (kept[0], kept[1], settled) {
            (true, true, _) => Verdict {
                held: false,
                line: "both payments of the same coins are on the best chain".into(),
            },
            (a, b, true) if a != b => {
                let (won, lost) = if a { ("A", "B") } else { ("B", "A") };
                Verdict {
                    held: true,
                    line: format!(
                        "merchant {won}'s payment stands; merchant {lost}'s vanished with its half's chain. Paid out after 1 confirmation, {lost} lost the goods; waiting for 6 would have been safe"
                    ),
                }
            }
            _ => Verdict {
                held: true,
                line: "the halves did not settle on one payment in time (too little mining?)"
                    .into(),
            },
        }
    }
}
