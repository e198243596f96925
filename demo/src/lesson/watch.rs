//! The lesson's eyes: a client of the relay that judges every frame as the
//! listener does ([`toycoin_listener::Judge`]) and keeps the facts the
//! lessons' steps wait for — blocks and who mined them, side branches,
//! reorganisations, the bits, refusals, faults seen, pBFT batches.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use tokio::task::JoinHandle;
use tokio::time::Instant;
use toycoin_common::hash::{BlockHash, Txid};
use toycoin_common::message::Status;
use toycoin_common::pbft::{Membership, Seen};
use toycoin_common::profile::Profile;
use toycoin_common::session::{Session, SessionEvent};
use toycoin_common::tree::BlockTree;
use toycoin_listener::judge::{Effect, TxnCheck};
use toycoin_listener::{Judge, Verdict};

/// Most blocks remembered (a lesson mines a few hundred at most), and the
/// payments kept of each: bounded in bytes (about 17 MB at worst), however
/// many blocks a student's client sends.
const MAX_BLOCKS: usize = 4_096;
const MAX_TXIDS_KEPT: usize = 64;
/// Most refusal reasons kept (the counts go on).
const MAX_REASONS: usize = 64;

/// A block as heard.
#[derive(Clone, Debug)]
pub struct BlockSeen {
    pub height: usize,
    /// The fingerprint its reward pays (steady).
    pub miner: Option<String>,
    /// Its payments (not its reward).
    pub txids: Vec<Txid>,
    /// Seconds after the lesson began that it was first heard.
    pub at: f64,
}

/// One pBFT batch as heard.
#[derive(Clone, Debug, Default)]
pub struct Batch {
    pub pre_prepares: u32,
    pub prepares: u32,
    pub commits: u32,
    pub replies: u32,
    /// When its pre-prepare was heard, and when it was final.
    pub proposed_at: Option<f64>,
    pub final_at: Option<f64>,
    pub txns: usize,
    /// The payments it made final.
    pub txids: Vec<Txid>,
}

/// What pBFT did.
#[derive(Clone, Debug, Default)]
pub struct PbftFacts {
    pub view: u64,
    pub primary: Option<String>,
    pub view_changes: u64,
    pub new_views: u64,
    /// When the last new view was heard.
    pub new_view_at: Option<f64>,
    pub batches: BTreeMap<u64, Batch>,
    pub finals: usize,
}

/// Everything the lesson has seen, from the start of the network.
#[derive(Debug)]
pub struct Facts {
    started: Instant,
    /// The best chain: hashes, required bits and timestamps by height.
    pub best: Vec<BlockHash>,
    pub bits: Vec<u32>,
    pub times: Vec<u64>,
    pub next_bits: u32,
    pub blocks: HashMap<BlockHash, BlockSeen>,
    pub forks: usize,
    pub reorgs: usize,
    pub invalid_blocks: usize,
    pub refused: usize,
    pub reasons: Vec<String>,
    pub stuck: Vec<String>,
    pub lies: Vec<(String, String)>,
    /// Each node's last status and when it came.
    pub statuses: HashMap<String, (Status, f64)>,
    /// A wallet's fingerprint → the node that said it is its own.
    pub wallets: HashMap<String, String>,
    /// When each payment was first heard.
    pub heard: HashMap<Txid, f64>,
    pub pbft: PbftFacts,
    /// When the teacher's relay last cut the network (seconds since the
    /// start): the branches that lose after it are the partition's.
    pub partitioned_at: Option<f64>,
}

impl Facts {
    fn new() -> Facts {
        Facts {
            started: Instant::now(),
            best: Vec::new(),
            bits: Vec::new(),
            times: Vec::new(),
            next_bits: 0,
            blocks: HashMap::new(),
            forks: 0,
            reorgs: 0,
            invalid_blocks: 0,
            refused: 0,
            reasons: Vec::new(),
            stuck: Vec::new(),
            lies: Vec::new(),
            statuses: HashMap::new(),
            wallets: HashMap::new(),
            heard: HashMap::new(),
            pbft: PbftFacts::default(),
            partitioned_at: None,
        }
    }

    /// Seconds since the lesson's network started.
    pub fn now(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Blocks on the best chain (the genesis block is height 0).
    pub fn height(&self) -> usize {
        self.best.len().saturating_sub(1)
    }

    /// The node whose wallet `fingerprint` is, or the fingerprint's start.
    pub fn name_of(&self, fingerprint: Option<&str>) -> String {
        match fingerprint {
            None => "nobody".into(),
            Some(fp) => self
                .wallets
                .get(fp)
                .cloned()
                .unwrap_or_else(|| format!("wallet {}", &fp[..fp.len().min(8)])),
        }
    }

    /// Who mined the best chain's block at `height`.
    pub fn miner_at(&self, height: usize) -> String {
        let miner = self
            .best
            .get(height)
            .and_then(|h| self.blocks.get(h))
            .and_then(|b| b.miner.as_deref());
        self.name_of(miner)
    }

    /// Blocks of the best chain from `from` on, by miner, most first.
    pub fn shares(&self, from: usize) -> Vec<(String, usize)> {
        let mut count: BTreeMap<String, usize> = BTreeMap::new();
        for h in from.max(1)..self.best.len() {
            *count.entry(self.miner_at(h)).or_default() += 1;
        }
        let mut out: Vec<_> = count.into_iter().collect();
        out.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        out
    }

    /// The blocks heard that are not on the best chain.
    pub fn side_blocks(&self) -> Vec<(&BlockHash, &BlockSeen)> {
        let best: HashSet<&BlockHash> = self.best.iter().collect();
        let mut side: Vec<_> = self
            .blocks
            .iter()
            .filter(|(h, _)| !best.contains(h))
            .collect();
        side.sort_by(|a, b| a.1.at.total_cmp(&b.1.at));
        side
    }

    /// Every payment in the best chain's blocks, and the height of its block.
    pub fn best_txids(&self) -> HashMap<Txid, usize> {
        let mut out = HashMap::new();
        for (height, hash) in self.best.iter().enumerate() {
            if let Some(b) = self.blocks.get(hash) {
                for t in &b.txids {
                    out.insert(*t, height);
                }
            }
        }
        out
    }

    /// Mean seconds between the best chain's blocks from `from` to the tip
    /// (by their timestamps).
    pub fn mean_interval(&self, from: usize) -> Option<f64> {
        let from = from.max(1);
        let last = self.times.len().checked_sub(1)?;
        if last <= from {
            return None;
        }
        let span = self.times[last].saturating_sub(self.times[from]) as f64;
        Some(span / (last - from) as f64)
    }

    fn reason(&mut self, reason: String) {
        self.refused += 1;
        if self.reasons.len() < MAX_REASONS {
            self.reasons.push(reason);
        }
    }

    fn observe(&mut self, verdict: Verdict, tree: &BlockTree) {
        let now = self.now();
        match verdict {
            Verdict::Bloc { blocks, effect, .. } => {
                // A refused block is counted, not kept: only blocks with
                // their work done take room.
                let kept: &[toycoin_common::block::Block] =
                    if effect.is_valid() { &blocks } else { &[] };
                for b in kept {
                    if self.blocks.len() >= MAX_BLOCKS {
                        break;
                    }
                    let hash = b.header.this_hash;
                    if self.blocks.contains_key(&hash) {
                        continue;
                    }
                    let height = tree
                        .chain()
                        .height_of(&hash)
                        .or_else(|| {
                            tree.chain()
                                .height_of(&b.header.previous_hash)
                                .map(|h| h + 1)
                        })
                        .or_else(|| {
                            self.blocks
                                .get(&b.header.previous_hash)
                                .map(|p| p.height + 1)
                        })
                        .unwrap_or(0);
                    let miner = toycoin_listener::render::miner(b);
                    let txids = b
                        .txns
                        .iter()
                        .filter(|t| !t.is_coinbase())
                        .take(MAX_TXIDS_KEPT)
                        .map(|t| t.hash())
                        .collect();
                    self.blocks.insert(
                        hash,
                        BlockSeen {
                            height,
                            miner,
                            txids,
                            at: now,
                        },
                    );
                }
                match effect {
                    Effect::Fork { .. } => self.forks += 1,
                    Effect::Switch(_) => self.reorgs += 1,
                    Effect::Invalid { error, .. } => {
                        self.invalid_blocks += 1;
                        self.reason(format!("a block: {error}"));
                    }
                    Effect::Stuck { resent, behind } => {
                        let (height, by) = blocks
                            .first()
                            .map(|b| {
                                let hash = b.header.this_hash;
                                (
                                    tree.chain().height_of(&hash).unwrap_or(0),
                                    self.name_of(toycoin_listener::render::miner(b).as_deref()),
                                )
                            })
                            .unwrap_or_default();
                        if self.stuck.len() < MAX_REASONS {
                            self.stuck.push(format!(
                                "block {height} (mined by {by}) sent again and again: {resent} times, now {behind} blocks behind the tip"
                            ));
                        }
                    }
                    _ => {}
                }
                let chain = tree.chain();
                self.best = chain.entries().iter().map(|e| e.header.this_hash).collect();
                self.bits = chain.entries().iter().map(|e| e.required_bits).collect();
                self.times = chain
                    .entries()
                    .iter()
                    .map(|e| e.header.timestamp_secs().unwrap_or(0))
                    .collect();
                self.next_bits = chain.next_required_bits();
            }
            Verdict::Txn { hash, check, .. } => match check {
                TxnCheck::Invalid(reason) => self.reason(format!("a payment: {reason}")),
                _ => {
                    if self.heard.len() < MAX_BLOCKS {
                        self.heard.entry(hash).or_insert(now);
                    }
                }
            },
            Verdict::Undecodable { tag, reason, .. } => {
                self.reason(format!("a {tag} frame: {reason}"));
            }
            Verdict::Status { status, lie } => {
                // A name whose wallet the lesson knows (its own nodes')
                // counts only signed by that wallet's key: a classmate
                // cannot speak for node1.
                let known = self
                    .wallets
                    .iter()
                    .find(|(_, name)| **name == status.name)
                    .map(|(wallet, _)| wallet.clone());
                if let Some(wallet) = known {
                    let proved = status
                        .signed_by()
                        .ok()
                        .flatten()
                        .map(|key| toycoin_common::wallet::fingerprint_of(&key));
                    if proved.as_deref() != Some(wallet.as_str()) {
                        return;
                    }
                }
                if let Some(lie) = lie {
                    if self.lies.len() < MAX_REASONS {
                        self.lies.push((status.name.clone(), lie));
                    }
                }
                if let Some(wallet) = &status.wallet {
                    let named = self.wallets.values().any(|n| *n == status.name);
                    if self.wallets.len() < MAX_REASONS && !named {
                        self.wallets
                            .entry(wallet.clone())
                            .or_insert_with(|| status.name.clone());
                    }
                }
                if self.statuses.len() < MAX_REASONS || self.statuses.contains_key(&status.name) {
                    self.statuses.insert(status.name.clone(), (status, now));
                }
            }
            Verdict::Pbft(p) => {
                self.pbft.view = self.pbft.view.max(p.view);
                if p.primary.is_some() {
                    self.pbft.primary = p.primary.clone();
                }
                fn batch(pbft: &mut PbftFacts, seq: u64) -> Option<&mut Batch> {
                    if pbft.batches.len() >= MAX_BLOCKS && !pbft.batches.contains_key(&seq) {
                        return None;
                    }
                    Some(pbft.batches.entry(seq).or_default())
                }
                match p.seen {
                    Seen::PrePrepare { seq, txns, .. } => {
                        if let Some(b) = batch(&mut self.pbft, seq) {
                            b.pre_prepares += 1;
                            b.txns = txns;
                            b.proposed_at.get_or_insert(now);
                        }
                    }
                    Seen::Vote { seq, phase, .. } => {
                        if let Some(b) = batch(&mut self.pbft, seq) {
                            if phase == "commit" {
                                b.commits += 1;
                            } else {
                                b.prepares += 1;
                            }
                        }
                    }
                    Seen::Reply { seq, .. } => {
                        if let Some(b) = batch(&mut self.pbft, seq) {
                            b.replies += 1;
                        }
                    }
                    Seen::Final { seq, txns, .. } => {
                        self.pbft.finals += 1;
                        if let Some(b) = batch(&mut self.pbft, seq) {
                            b.final_at.get_or_insert(now);
                            b.txns = b.txns.max(txns.len());
                            if b.txids.is_empty() {
                                b.txids = txns.into_iter().take(MAX_REASONS).collect();
                            }
                        }
                    }
                    Seen::ViewChange { .. } => self.pbft.view_changes += 1,
                    Seen::NewView { view, .. } => {
                        self.pbft.new_views += 1;
                        self.pbft.view = self.pbft.view.max(view);
                        self.pbft.new_view_at = Some(now);
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
}

/// The facts, shared with the task that gathers them.
pub type Shared = Arc<Mutex<Facts>>;

/// Locks the facts (a panic elsewhere leaves them readable).
pub fn lock(facts: &Shared) -> std::sync::MutexGuard<'_, Facts> {
    facts.lock().unwrap_or_else(|e| e.into_inner())
}

/// Joins the relay at `relay` and gathers facts until the task is aborted.
pub fn spawn(
    relay: String,
    profile: Profile,
    members: Option<Arc<Membership>>,
) -> (Shared, JoinHandle<()>) {
    let facts = Arc::new(Mutex::new(Facts::new()));
    let mut config = toycoin_listener::session_config(relay, profile);
    // It listens only: the listener and the nodes ask for what is missing.
    config.ask = true;
    let mut session = Session::start(config);
    let mut judge = match members {
        Some(m) => Judge::with_replicas(m),
        None => Judge::new(),
    };
    let shared = facts.clone();
    let task = tokio::spawn(async move {
        while let Some(event) = session.next().await {
            if matches!(
                event,
                SessionEvent::Connected { .. } | SessionEvent::Lost { .. }
            ) {
                continue;
            }
            if let Some(verdict) = judge.judge(event, session.tree()) {
                lock(&shared).observe(verdict, session.tree());
            }
        }
    });
    (facts, task)
}

#[cfg(test)]
mod tests {
    use super::*;
    use toycoin_common::wallet::Wallet;

    fn status(name: &str, key: Option<&Wallet>, wallet: &str) -> Verdict {
        let mut status = Status {
            name: name.into(),
            tip: None,
            height: None,
            hash_rate: 42.0,
            mining: true,
            threads: 1,
            wallet: Some(wallet.into()),
            signer: None,
        };
        if let Some(key) = key {
            status.sign(key).expect("signs");
        }
        Verdict::Status { status, lie: None }
    }

    /// Once the lesson knows node1's wallet, only a status signed by that
    /// wallet's key speaks for node1; a classmate's claim changes nothing.
    #[test]
    fn a_status_speaks_for_a_lesson_node_only_with_its_key() {
        let node1 = Wallet::random().expect("key");
        let student = Wallet::random().expect("key");
        let tree = BlockTree::new(Profile::steady(1.0));
        let mut facts = Facts::new();
        facts
            .wallets
            .insert(node1.fingerprint(), "node1".to_owned());
        facts.observe(status("node1", None, &student.fingerprint()), &tree);
        facts.observe(
            status("node1", Some(&student), &student.fingerprint()),
            &tree,
        );
        assert!(!facts.statuses.contains_key("node1"));
        assert_eq!(facts.wallets.len(), 1, "no second wallet named node1");
        facts.observe(status("node1", Some(&node1), &node1.fingerprint()), &tree);
        assert_eq!(facts.statuses["node1"].0.hash_rate, 42.0);
        // A name the lesson does not know is a claim, kept as such.
        facts.observe(status("student", None, &student.fingerprint()), &tree);
        assert!(facts.statuses.contains_key("student"));
        assert_eq!(facts.name_of(Some(&student.fingerprint())), "student");
    }
}
