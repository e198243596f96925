//! The web view for the projector: what the listener's judge found, as a
//! page that updates itself (`toycoin-listener --web ADDR`).
//!
//! [`WebModel`] is fed the same [`Verdict`]s the text and JSON outputs
//! print, and makes a JSON snapshot of the network: the block tree (the
//! best chain's recent blocks and every side branch, older blocks
//! collapsed), pending transactions, recent transfers' confirmations,
//! required bits and intervals per height, and the event log in the
//! listener's own sentences. [`serve`] answers `/` (the page, embedded in
//! the binary: a classroom may be offline), `/api/snapshot` and
//! `/api/events` (server-sent events, one snapshot per change, at most
//! every [`BATCH`]).
//!
//! A browser never slows the listener: snapshots go through a `watch`
//! channel, which keeps only the latest and never waits for a reader; at
//! most [`MAX_BROWSERS`] event streams are open at once, and connections
//! are bounded in number, overall and per address ([`limit`]).

use std::collections::{HashMap, HashSet, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{ConnectInfo, State};
use axum::http::{header, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use tokio::sync::watch;
use toycoin_common::block::Block;
use toycoin_common::hash::{BlockHash, Txid};
use toycoin_common::log::clipped;
use toycoin_common::mempool::Mempool;
use toycoin_common::message::Status;
use toycoin_common::profile::FINAL_CONFIRMATIONS;
use toycoin_common::tree::BlockTree;
use toycoin_common::wallet::fingerprint;

pub mod limit;
pub mod wallets;

use toycoin_common::pbft::Seen;

use crate::judge::{Effect, PbftSeen, TxnCheck, Verdict};
use crate::render::miner;

/// Snapshots are sent at most this often, however fast the network.
pub const BATCH: Duration = Duration::from_millis(400);
/// Most browsers following the event stream at once; more get 503.
pub const MAX_BROWSERS: usize = 64;
/// Heights of the best chain drawn block by block; older ones are shown
/// as one collapsed run ("37 blocks").
pub const SHOWN_HEIGHTS: usize = 40;
/// Heights kept for the charts.
pub const CHART_HEIGHTS: usize = 500;
/// Blocks remembered for the tree (side branches included), oldest
/// forgotten first.
pub const MAX_BLOCKS: usize = 4_000;
/// Lines of the event log kept.
pub const LOG_LINES: usize = 200;
/// Longest log line kept, in bytes: a refusal's reason may quote what a
/// student sent (a decoder's error quotes the bad string), and a frame
/// may be megabytes.
pub const MAX_LOG_LINE: usize = 400;
/// Recent transfers whose confirmations are shown.
pub const RECENT_TXNS: usize = 30;
/// Pending transactions listed.
pub const SHOWN_PENDING: usize = 50;
/// Wallets blamed at most (each needs a key and signed evidence).
pub const MAX_BLAMED: usize = 4096;
/// Announcements remembered (by block), the oldest forgotten first.
pub const MAX_ANNOUNCED: usize = 4096;

/// What an observer knows to blame a node for: who announced which block
/// (signed), and which blocks were refused for a failure their hash
/// proves. Blame needs both, for the same hash.
#[derive(Debug, Default)]
struct Blame {
    announced: HashMap<BlockHash, Announced>,
    announced_order: VecDeque<BlockHash>,
    invalid: HashSet<BlockHash>,
    invalid_order: VecDeque<BlockHash>,
    /// The block each node announced at each height.
    heights: HashMap<(String, u64), BlockHash>,
}

#[derive(Debug)]
struct Announced {
    by: String,
    /// Its distinct signed announcements (a replay is the same one).
    sigs: HashSet<toycoin_common::hash::Hash>,
    blamed: bool,
}

/// Most nodes whose status is kept: an unsigned status costs nothing to
/// make up, so the table is bounded. When it is full, a new name takes
/// the place of the least recently heard unsigned status, then of a
/// signed one; never of a node that mined a block the view shows: made-up
/// names cannot push the class's miners out.
pub const MAX_NODES: usize = 64;
/// A node not heard from for this long is no longer shown.
pub const NODE_TIMEOUT_MS: u64 = 15_000;
/// Hash rates kept per node for its chart (one per status: 3 minutes).
pub const RATE_SAMPLES: usize = 60;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A block as the page draws it.
#[derive(Clone, Debug)]
struct BlockView {
    height: usize,
    previous: BlockHash,
    miner: Option<String>,
    txns: usize,
    /// Each node that said this block was its tip, and when it first
    /// said so (at most [`MAX_HEARD`]): the race, as the nodes saw it.
    heard: Vec<(String, u64)>,
}

/// Most nodes whose hearing of one block is kept.
pub const MAX_HEARD: usize = 16;

/// A transaction as the page lists it.
#[derive(Clone, Debug)]
struct TxnView {
    from: String,
    to: String,
    amount: i64,
    seen_ms: u64,
}

/// A node as it says it stands.
#[derive(Clone, Debug)]
struct NodeView {
    status: Status,
    /// Why its last status was a lie, if it was.
    lie: Option<String>,
    heard_ms: u64,
    rates: VecDeque<f64>,
}

/// What the web view knows, fed by verdicts.
#[derive(Debug, Default)]
pub struct WebModel {
    /// The class network's join code, id and description (`set_network`).
    network: Option<Value>,
    blocks: HashMap<BlockHash, BlockView>,
    txns: HashMap<Txid, TxnView>,
    /// Transfers mined recently: where, when first seen (if it was), and
    /// whether its time to final was counted; newest last.
    mined: VecDeque<(Txid, BlockHash, Option<u64>, bool)>,
    log: VecDeque<String>,
    /// When the best chain last switched branch, and from which tip.
    last_reorg: Option<(u64, usize, BlockHash)>,
    /// `BLOC`s refused as invalid.
    refused: usize,
    /// Invalid blocks refused, by the wallet of the node that signed
    /// their announcement (at most [`MAX_BLAMED`] wallets): a block that
    /// merely pays a node blames nobody.
    refused_by: HashMap<String, usize>,
    /// Wallets whose node announced one old block again and again
    /// (stuck), each time signed anew.
    stuck_by: HashSet<String>,
    /// Who announced each block (signed `ANNC`), newest kept.
    blame: Blame,
    /// Whether the page shows the teacher's buttons.
    controls: bool,
    /// Wallets whose node signed two blocks at one height.
    equivocated_by: HashSet<String>,
    /// What each node last said (`STAT`), when, and its last hash rates.
    nodes: HashMap<String, NodeView>,
    /// pBFT, once a PBFT frame is seen: the view, its primary, each recent
    /// batch's votes, view changes asked for.
    pbft: Option<PbftView>,
    /// Seconds from a transaction first seen to final, last ones: under
    /// pBFT (f+1 replies) and proof of work (6 confirmations).
    final_pbft: VecDeque<f64>,
    final_pow: VecDeque<f64>,
    /// Where the replay watched is (`None`: a live class).
    replay: Option<toycoin_common::timeline::Position>,
    /// A lesson's state ([`crate::lesson_panel`]), as its file says.
    lesson: Option<Value>,
    /// The replicas by name, in order (from the replicas file): the
    /// diagram's lanes, a silent one included.
    replicas: Vec<String>,
}

/// Finality times kept for the meter.
pub const FINALITY_SAMPLES: usize = 50;
/// pBFT batches shown.
pub const SHOWN_BATCHES: usize = 12;

/// A pBFT batch as the page shows it.
#[derive(Clone, Debug, Default)]
struct BatchView {
    view: u64,
    txns: usize,
    prepares: usize,
    commits: usize,
    replies: usize,
    is_final: bool,
}

#[derive(Clone, Debug, Default)]
struct PbftView {
    view: u64,
    primary: Option<String>,
    /// (2f, 2f+1, f+1), zeros when the replicas are not known.
    needed: (usize, usize, usize),
    batches: std::collections::BTreeMap<u64, BatchView>,
    /// View asked for, and by how many.
    view_change: Option<(u64, usize)>,
    verified: bool,
    /// The newest batch's messages, for the paper's diagram, and the one
    /// before (shown while the newest is not final yet).
    diagram: Option<Diagram>,
    previous: Option<Diagram>,
    /// The last view change's messages, drawn the same way.
    change: Option<ChangeDiagram>,
    /// Replicas seen (when the replicas file is not known), in order.
    seen_lanes: Vec<String>,
}

/// Most messages a diagram keeps (four phases of 16 replicas).
const MAX_DIAGRAM_MESSAGES: usize = 64;
/// Most replicas drawn.
const MAX_LANES: usize = 16;

/// One batch as the paper draws it: who sent what, phase by phase.
#[derive(Clone, Debug, Default)]
struct Diagram {
    seq: u64,
    view: u64,
    /// The pre-prepare's sender and digest (the first heard).
    primary: String,
    digest: Option<toycoin_common::hash::Hash>,
    /// (sender, phase, conflicting): each sender once per phase; a second
    /// pre-prepare with another digest is a conflict (equivocation).
    messages: Vec<(String, &'static str, bool)>,
    is_final: bool,
}

impl Diagram {
    fn add(&mut self, from: &str, phase: &'static str, conflict: bool) {
        let known = self
            .messages
            .iter()
            .any(|(f, p, c)| f == from && *p == phase && *c == conflict);
        if !known && self.messages.len() < MAX_DIAGRAM_MESSAGES {
            self.messages.push((from.to_owned(), phase, conflict));
        }
    }
}

/// A view change as the paper draws it: who asked, who took over.
#[derive(Clone, Debug, Default)]
struct ChangeDiagram {
    to: u64,
    asked: Vec<String>,
    new_view: Option<String>,
}

fn push_sample(samples: &mut VecDeque<f64>, x: f64) {
    if samples.len() == FINALITY_SAMPLES {
        samples.pop_front();
    }
    samples.push_back(x);
}

fn median(samples: &VecDeque<f64>) -> Option<f64> {
    let mut v: Vec<f64> = samples.iter().copied().collect();
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied()
}

impl WebModel {
    pub fn new() -> WebModel {
        WebModel::default()
    }

    /// Shows the teacher's buttons (`--controls`).
    pub fn set_controls(&mut self, on: bool) {
        self.controls = on;
    }

    /// The replicas, in order, for the pBFT diagram's lanes.
    pub fn set_replicas(&mut self, names: Vec<String>) {
        self.replicas = names.into_iter().take(MAX_LANES).collect();
    }

    /// A lesson's state for the lesson panel (`None`: no panel); a new
    /// step, and what it found, go into "What happened" too.
    pub fn set_lesson(&mut self, lesson: Option<Value>) {
        let key = |l: &Option<Value>| l.as_ref().map(|l| (l["step"].clone(), l["state"].clone()));
        if key(&lesson) != key(&self.lesson) {
            if let Some(line) = lesson.as_ref().and_then(lesson_line) {
                self.observe_line(&line);
            }
        }
        self.lesson = lesson;
    }

    /// The class network, shown in the page's header: its join code and
    /// id, for students to check against what their programs print.
    pub fn set_network(&mut self, network: &toycoin_common::network::Network) {
        self.network = Some(json!({
            "join_code": network.join_code(),
            "id": network.id().short(),
            "describe": network.describe(),
        }));
    }

    /// Takes in one verdict and the line the listener printed for it.
    pub fn observe(&mut self, verdict: &Verdict, sentence: &str) {
        if let Verdict::Timeline {
            position,
            restarted,
        } = verdict
        {
            // Sought back: the class is taken in again from nothing.
            if *restarted {
                *self = WebModel {
                    network: self.network.take(),
                    controls: self.controls,
                    ..WebModel::default()
                };
                self.observe_line(sentence);
            }
            self.replay = Some(position.clone());
            return;
        }
        // "What happened" is what a person wants to read: blocks that
        // changed something, refusals, lies, faults, grants, pBFT's view
        // changes and final batches (`Verdict::is_news`, what `--quiet`
        // prints). Statuses are the nodes table's, pending transfers the
        // pool's, announcements and requests nobody's.
        if verdict.is_news() {
            self.observe_line(sentence);
        }
        match verdict {
            Verdict::Txn {
                hash,
                message,
                check: TxnCheck::Valid,
            } if self.txns.len() < crate::judge::MAX_SEEN_PENDING => {
                let t = &message.txn;
                self.txns.insert(
                    *hash,
                    TxnView {
                        from: fingerprint(&t.sender),
                        to: fingerprint(&t.receiver),
                        amount: t.receiver_value,
                        seen_ms: now_ms(),
                    },
                );
            }
            Verdict::Bloc {
                first_height,
                blocks,
                effect,
                ..
            } => {
                match effect {
                    Effect::Switch(reorg) => {
                        self.last_reorg = Some((now_ms(), reorg.fork_height, reorg.old_tip));
                    }
                    Effect::Invalid { proved, .. } => {
                        self.refused += 1;
                        // Blamed on whoever signed its announcement, if
                        // anyone did: now, or when the ANNC comes.
                        if let Some(hash) = proved {
                            if self.blame.invalid.insert(*hash) {
                                self.blame.invalid_order.push_back(*hash);
                                while self.blame.invalid_order.len() > MAX_ANNOUNCED {
                                    if let Some(old) = self.blame.invalid_order.pop_front() {
                                        self.blame.invalid.remove(&old);
                                    }
                                }
                            }
                            self.blame_announcer(hash);
                        }
                    }
                    _ => {}
                }
                if effect.is_valid() {
                    self.add_blocks(*first_height, blocks);
                }
            }
            Verdict::Pbft(p) => self.observe_pbft(p),
            Verdict::Announce {
                block,
                height,
                by,
                sig_hash,
            } => self.on_announce(*block, *height, by, *sig_hash),
            Verdict::Status { status, lie } => {
                if !self.nodes.contains_key(&status.name) && self.nodes.len() >= MAX_NODES {
                    let miners: HashSet<&str> = self
                        .blocks
                        .values()
                        .filter_map(|b| b.miner.as_deref())
                        .collect();
                    let mined = |n: &NodeView| {
                        n.status
                            .wallet
                            .as_deref()
                            .is_some_and(|w| miners.contains(w))
                    };
                    let evicted = self
                        .nodes
                        .iter()
                        .filter(|(_, n)| !mined(n))
                        .min_by_key(|(_, n)| (n.status.signer.is_some(), n.heard_ms))
                        .map(|(name, _)| name.clone());
                    match evicted {
                        Some(name) => {
                            self.nodes.remove(&name);
                        }
                        // Every place is a miner's: this one waits.
                        None => return,
                    }
                }
                let node = self
                    .nodes
                    .entry(status.name.clone())
                    .or_insert_with(|| NodeView {
                        status: status.clone(),
                        lie: None,
                        heard_ms: 0,
                        rates: VecDeque::new(),
                    });
                let moved = node.status.tip != status.tip || node.heard_ms == 0;
                node.status = status.clone();
                node.lie = lie.clone();
                node.heard_ms = now_ms();
                if let Some(block) = status
                    .tip
                    .filter(|_| moved)
                    .and_then(|t| self.blocks.get_mut(&t))
                {
                    if block.heard.len() < MAX_HEARD
                        && !block.heard.iter().any(|(n, _)| *n == status.name)
                    {
                        block.heard.push((status.name.clone(), now_ms()));
                    }
                }
                if node.rates.len() == RATE_SAMPLES {
                    node.rates.pop_front();
                }
                node.rates.push_back(status.hash_rate);
            }
            _ => {}
        }
    }

    /// The first line of `sentence` into "What happened".
    fn observe_line(&mut self, sentence: &str) {
        if let Some(first) = sentence.lines().next() {
            if self.log.len() == LOG_LINES {
                self.log.pop_front();
            }
            self.log.push_back(clipped(first, MAX_LOG_LINE).to_owned());
        }
    }

    /// A node's signed announcement of `block`: blame, if the block was
    /// refused for a failure its hash proves, or if it is an old block
    /// announced again and again.
    fn on_announce(
        &mut self,
        block: BlockHash,
        height: u64,
        by: &str,
        sig_hash: toycoin_common::hash::Hash,
    ) {
        // Two blocks one node signed for one height: it equivocated.
        let key = (by.to_owned(), height);
        match self.blame.heights.get(&key) {
            Some(other) if *other != block => {
                if self.equivocated_by.contains(by) || self.equivocated_by.len() < MAX_BLAMED {
                    self.equivocated_by.insert(by.to_owned());
                }
            }
            Some(_) => {}
            None => {
                if self.blame.heights.len() >= MAX_ANNOUNCED {
                    self.blame.heights.clear();
                }
                self.blame.heights.insert(key, block);
            }
        }
        let blame = &mut self.blame;
        if !blame.announced.contains_key(&block) {
            blame.announced_order.push_back(block);
            while blame.announced_order.len() > MAX_ANNOUNCED {
                if let Some(old) = blame.announced_order.pop_front() {
                    blame.announced.remove(&old);
                }
            }
        }
        let entry = blame.announced.entry(block).or_insert_with(|| Announced {
            by: by.to_owned(),
            sigs: HashSet::new(),
            blamed: false,
        });
        if entry.by != by {
            // Another node announcing the same block: the first is kept.
            return;
        }
        if entry.sigs.len() < 64 {
            entry.sigs.insert(sig_hash);
        }
        let announcements = entry.sigs.len();
        self.blame_announcer(&block);
        // Stuck: an old block (STUCK_BEHIND or more under the tip)
        // announced anew STUCK_AFTER times by its own node.
        let tip = self.blocks.values().map(|b| b.height).max();
        let height = self.blocks.get(&block).map(|b| b.height);
        let stale =
            matches!((tip, height), (Some(t), Some(h)) if t >= h + crate::judge::STUCK_BEHIND);
        if stale
            && announcements >= crate::judge::STUCK_AFTER as usize
            && (self.stuck_by.contains(by) || self.stuck_by.len() < MAX_BLAMED)
        {
            self.stuck_by.insert(by.to_owned());
        }
    }

    /// Counts `block` against its announcer once both the announcement
    /// and the proved refusal are known.
    fn blame_announcer(&mut self, block: &BlockHash) {
        if !self.blame.invalid.contains(block) {
            return;
        }
        let Some(entry) = self.blame.announced.get_mut(block) else {
            return;
        };
        if entry.blamed {
            return;
        }
        entry.blamed = true;
        if self.refused_by.contains_key(&entry.by) || self.refused_by.len() < MAX_BLAMED {
            *self.refused_by.entry(entry.by.clone()).or_default() += 1;
        }
    }

    fn observe_pbft(&mut self, p: &PbftSeen) {
        let now = now_ms();
        let view = self.pbft.get_or_insert_with(PbftView::default);
        view.view = p.view;
        view.primary = p.primary.clone();
        view.verified = p.verified;
        if !view.seen_lanes.contains(&p.from) && view.seen_lanes.len() < MAX_LANES {
            view.seen_lanes.push(p.from.clone());
        }
        Self::draw_message(view, p);
        let seq = match &p.seen {
            Seen::PrePrepare {
                seq, txns, view: v, ..
            } => {
                let b = view.batches.entry(*seq).or_default();
                if b.view != *v || b.txns == 0 {
                    *b = BatchView {
                        view: *v,
                        txns: *txns,
                        ..BatchView::default()
                    };
                }
                Some(*seq)
            }
            Seen::Vote {
                phase,
                seq,
                count,
                needed,
                view: v,
                ..
            } => {
                let b = view.batches.entry(*seq).or_default();
                b.view = *v;
                if *phase == "prepare" {
                    b.prepares = *count;
                    view.needed.0 = *needed;
                } else {
                    b.commits = *count;
                    view.needed.1 = *needed;
                }
                Some(*seq)
            }
            Seen::Reply {
                seq, count, needed, ..
            } => {
                let b = view.batches.entry(*seq).or_default();
                b.replies = b.replies.max(*count);
                view.needed.2 = *needed;
                Some(*seq)
            }
            Seen::Final { seq, txns, .. } => {
                let b = view.batches.entry(*seq).or_default();
                b.is_final = true;
                b.replies = b.replies.max(view.needed.2);
                for t in txns {
                    if let Some(v) = self.txns.get(t) {
                        push_sample(
                            &mut self.final_pbft,
                            now.saturating_sub(v.seen_ms) as f64 / 1e3,
                        );
                    }
                }
                Some(*seq)
            }
            Seen::ViewChange { to, count, .. } => {
                view.view_change = Some((*to, *count));
                None
            }
            Seen::NewView { .. } => {
                view.view_change = None;
                None
            }
            Seen::Checkpoint { .. } | Seen::Catching { .. } => None,
        };
        if seq.is_some() {
            while view.batches.len() > SHOWN_BATCHES {
                view.batches.pop_first();
            }
        }
    }

    /// Adds a message to the newest batch's diagram, or the view
    /// change's.
    fn draw_message(view: &mut PbftView, p: &PbftSeen) {
        let from = p.from.as_str();
        match &p.seen {
            Seen::PrePrepare {
                seq,
                view: v,
                digest,
                ..
            } => {
                let newer = match &view.diagram {
                    None => true,
                    Some(d) => (*v, *seq) > (d.view, d.seq),
                };
                if newer {
                    let fresh = Diagram {
                        seq: *seq,
                        view: *v,
                        primary: from.to_owned(),
                        digest: Some(*digest),
                        ..Diagram::default()
                    };
                    view.previous = view.diagram.replace(fresh);
                }
                let Some(d) = view.diagram.as_mut() else {
                    return;
                };
                if (*v, *seq) == (d.view, d.seq) {
                    d.add(from, "pre-prepare", d.digest != Some(*digest));
                }
            }
            Seen::Vote {
                phase,
                seq,
                view: v,
                ..
            } => {
                if let Some(d) = view
                    .diagram
                    .as_mut()
                    .filter(|d| (d.view, d.seq) == (*v, *seq))
                {
                    d.add(
                        from,
                        if *phase == "prepare" {
                            "prepare"
                        } else {
                            "commit"
                        },
                        false,
                    );
                }
            }
            Seen::Reply { seq, .. } => {
                for d in [view.diagram.as_mut(), view.previous.as_mut()]
                    .into_iter()
                    .flatten()
                    .filter(|d| d.seq == *seq)
                {
                    d.add(from, "reply", false);
                }
            }
            Seen::Final { seq, .. } => {
                for d in [view.diagram.as_mut(), view.previous.as_mut()]
                    .into_iter()
                    .flatten()
                    .filter(|d| d.seq == *seq)
                {
                    d.is_final = true;
                }
            }
            Seen::ViewChange { to, .. } => {
                let c = view.change.get_or_insert_with(ChangeDiagram::default);
                if c.to != *to {
                    *c = ChangeDiagram {
                        to: *to,
                        ..ChangeDiagram::default()
                    };
                }
                if !c.asked.iter().any(|a| a == from) && c.asked.len() < MAX_LANES {
                    c.asked.push(from.to_owned());
                }
            }
            Seen::NewView { view: v, .. } => {
                let c = view.change.get_or_insert_with(ChangeDiagram::default);
                if c.to != *v {
                    *c = ChangeDiagram {
                        to: *v,
                        ..ChangeDiagram::default()
                    };
                }
                c.new_view = Some(from.to_owned());
            }
            _ => {}
        }
    }

    /// The pBFT panel's and the finality meter's part of a snapshot.
    fn pbft_snapshot(&self, target_secs: Option<f64>) -> Value {
        let finality = json!({
            "pbft_s": median(&self.final_pbft),
            "pbft_n": self.final_pbft.len(),
            "pow_s": median(&self.final_pow),
            "pow_n": self.final_pow.len(),
            "pow_expected_s": target_secs.map(|t| t * FINAL_CONFIRMATIONS as f64),
        });
        let Some(p) = &self.pbft else {
            return json!({ "finality": finality });
        };
        let batches: Vec<Value> = p
            .batches
            .iter()
            .rev()
            .map(|(seq, b)| {
                let phase = if b.is_final {
                    "final"
                } else if p.needed.1 > 0 && b.commits >= p.needed.1 {
                    "committed"
                } else if p.needed.0 > 0 && b.prepares >= p.needed.0 {
                    "prepared"
                } else {
                    "pre-prepared"
                };
                json!({
                    "seq": seq, "view": b.view, "txns": b.txns,
                    "prepares": b.prepares, "commits": b.commits, "replies": b.replies,
                    "phase": phase,
                })
            })
            .collect();
        let lanes = if self.replicas.is_empty() {
            &p.seen_lanes
        } else {
            &self.replicas
        };
        // The newest batch once final; until then the one before, whole.
        let shown = match (&p.diagram, &p.previous) {
            (Some(d), Some(before)) if !d.is_final => Some(before),
            (d, _) => d.as_ref(),
        };
        let diagram = shown.map(|d| {
            json!({
                "seq": d.seq,
                "view": d.view,
                "primary": d.primary,
                "final": d.is_final,
                "messages": d.messages.iter().map(|(from, phase, conflict)| {
                    json!({ "from": from, "phase": phase, "conflict": conflict })
                }).collect::<Vec<_>>(),
            })
        });
        let change = p
            .change
            .as_ref()
            .map(|c| json!({ "to": c.to, "asked": c.asked, "new_view": c.new_view }));
        json!({
            "finality": finality,
            "lanes": lanes,
            "diagram": diagram,
            "change": change,
            "view": p.view,
            "primary": p.primary,
            "verified": p.verified,
            "needed": { "prepare": p.needed.0, "commit": p.needed.1, "reply": p.needed.2 },
            "batches": batches,
            "view_change": p.view_change.map(|(v, n)| json!({ "view": v, "count": n })),
        })
    }

    /// When each node said `hash` was its tip, in milliseconds after the
    /// first node that did, earliest first (every node says so as late
    /// after its tip changed, so the differences are the race).
    fn heard_json(&self, hash: &BlockHash) -> Value {
        let Some(b) = self.blocks.get(hash) else {
            return json!([]);
        };
        let first = b.heard.iter().map(|(_, at)| *at).min().unwrap_or(0);
        let mut heard: Vec<&(String, u64)> = b.heard.iter().collect();
        heard.sort_by_key(|(n, at)| (*at, n.clone()));
        Value::Array(
            heard
                .into_iter()
                .map(|(node, at)| json!({ "node": node, "after_ms": at - first }))
                .collect(),
        )
    }

    fn add_blocks(&mut self, first_height: Option<usize>, blocks: &[Block]) {
        for (i, b) in blocks.iter().enumerate() {
            let previous = b.header.previous_hash;
            let height = first_height
                .map(|h| h + i)
                .or_else(|| self.blocks.get(&previous).map(|p| p.height + 1));
            let Some(height) = height else { continue };
            let hash = b.header.this_hash;
            if self.blocks.contains_key(&hash) {
                continue;
            }
            self.blocks.insert(
                hash,
                BlockView {
                    height,
                    previous,
                    miner: miner(b),
                    txns: b.txns.len(),
                    heard: Vec::new(),
                },
            );
            // Only the last RECENT_TXNS transfers are kept: hash no more
            // (a catch-up may bring thousands of blocks).
            let transfers = b.txns.get(1..).unwrap_or_default();
            for t in &transfers[transfers.len().saturating_sub(RECENT_TXNS)..] {
                if self.mined.len() == RECENT_TXNS {
                    self.mined.pop_front();
                }
                let id = t.hash();
                let seen = self.txns.get(&id).map(|v| v.seen_ms);
                self.mined.push_back((id, hash, seen, false));
            }
        }
        if self.blocks.len() > MAX_BLOCKS {
            let mut heights: Vec<usize> = self.blocks.values().map(|b| b.height).collect();
            heights.sort_unstable();
            let cut = heights[self.blocks.len() - MAX_BLOCKS];
            self.blocks.retain(|_, b| b.height >= cut);
        }
    }

    /// The snapshot the page draws, of `tree` (the session's view) and the
    /// judge's `pool`.
    pub fn snapshot(&mut self, tree: &BlockTree, pool: &Mempool) -> Value {
        let chain = tree.chain();
        let entries = chain.entries();
        let len = entries.len();
        let first_shown = len.saturating_sub(SHOWN_HEIGHTS);
        let mut blocks: Vec<Value> = Vec::new();
        for (i, (e, b)) in entries[first_shown..]
            .iter()
            .zip(chain.blocks_from(first_shown))
            .enumerate()
        {
            blocks.push(json!({
                "hash": b.header.this_hash.to_hex(),
                "short": b.header.this_hash.short(),
                "previous": b.header.previous_hash.to_hex(),
                "height": first_shown + i,
                "miner": miner(&b),
                "txns": b.txns.len(),
                "bits": e.required_bits,
                "best": true,
                "heard": self.heard_json(&b.header.this_hash),
            }));
        }
        // Side branches in the shown range: blocks seen that are not on
        // the best chain (stale, or a fork still racing).
        for (hash, v) in &self.blocks {
            if v.height >= first_shown && chain.height_of(hash).is_none() {
                blocks.push(json!({
                    "hash": hash.to_hex(),
                    "short": hash.short(),
                    "previous": v.previous.to_hex(),
                    "height": v.height,
                    "miner": v.miner,
                    "txns": v.txns,
                    "bits": Value::Null,
                    "best": false,
                    "heard": self.heard_json(hash),
                }));
            }
        }
        // Charts: bits and interval per height.
        let from = len.saturating_sub(CHART_HEIGHTS);
        let chart: Vec<Value> = entries[from..]
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let stamp = e.header.timestamp_secs();
                let before = (from + i)
                    .checked_sub(1)
                    .and_then(|j| entries[j].header.timestamp_secs());
                let interval = match (stamp, before) {
                    (Some(t), Some(b)) => Some(t.saturating_sub(b)),
                    _ => None,
                };
                json!({ "height": from + i, "bits": e.required_bits, "interval": interval })
            })
            .collect();
        // Pending: what the judge's pool holds, oldest first.
        self.txns.retain(|hash, _| pool.contains(hash));
        let mut pending: Vec<(&Txid, &TxnView)> = self.txns.iter().collect();
        pending.sort_by_key(|(_, v)| v.seen_ms);
        let now = now_ms();
        let pending: Vec<Value> = pending
            .iter()
            .take(SHOWN_PENDING)
            .map(|(hash, v)| {
                json!({
                    "hash": hash.short(),
                    "from": v.from,
                    "to": v.to,
                    "amount": v.amount,
                    "age_s": now.saturating_sub(v.seen_ms) / 1000,
                })
            })
            .collect();
        // Proof of work's time to final: first seen to 6 confirmations.
        for (_, block, seen, counted) in self.mined.iter_mut() {
            let deep = chain
                .height_of(block)
                .is_some_and(|h| len - h >= FINAL_CONFIRMATIONS);
            if let (false, true, Some(seen)) = (*counted, deep, *seen) {
                *counted = true;
                push_sample(&mut self.final_pow, now.saturating_sub(seen) as f64 / 1e3);
            }
        }
        // Recent transfers and their confirmations (0: no longer on the
        // best chain).
        let recent: Vec<Value> = self
            .mined
            .iter()
            .rev()
            .map(|(txid, block, _, _)| {
                let confirmations = chain.height_of(block).map_or(0, |h| len - h);
                json!({
                    "hash": txid.short(),
                    "confirmations": confirmations.min(FINAL_CONFIRMATIONS),
                    "final": confirmations >= FINAL_CONFIRMATIONS,
                })
            })
            .collect();
        // Nodes heard from lately, by name.
        self.nodes
            .retain(|_, n| now.saturating_sub(n.heard_ms) < NODE_TIMEOUT_MS);
        let mut nodes: Vec<&NodeView> = self.nodes.values().collect();
        nodes.sort_by(|a, b| a.status.name.cmp(&b.status.name));
        let nodes: Vec<Value> = nodes
            .iter()
            .map(|n| {
                let (st, at) = (&n.status, &n.heard_ms);
                json!({
                    "name": st.name,
                    "tip": st.tip.map(|t| t.to_hex()),
                    "tip_short": st.tip.map(|t| t.short()),
                    "height": st.height,
                    "hash_rate": st.hash_rate,
                    "mining": st.mining,
                    "threads": st.threads,
                    "wallet": st.wallet,
                    "age_s": now.saturating_sub(*at) / 1000,
                    // Invalid blocks paying this node's wallet: a faulty
                    // (or lying) node.
                    "refused": st.wallet.as_ref().and_then(|w| self.refused_by.get(w)).copied().unwrap_or(0),
                    "rates": n.rates,
                    "lie": n.lie,
                    "stuck": st.wallet.as_ref().is_some_and(|w| self.stuck_by.contains(w)),
                    "equivocated": st.wallet.as_ref().is_some_and(|w| self.equivocated_by.contains(w)),
                })
            })
            .collect();
        json!({
            "profile": chain.profile().describe(),
            "network": self.network,
            "controls": self.controls,
            "replay": self.replay,
            "lesson": self.lesson,
            "nodes": nodes,
            "height": len.checked_sub(1),
            "tip": chain.tip_hash().short(),
            "collapsed": first_shown,
            "blocks": blocks,
            "next_bits": chain.next_required_bits(),
            "chart": chart,
            "pending_count": pool.len(),
            "pending": pending,
            "recent": recent,
            "log": self.log.iter().rev().take(60).collect::<Vec<_>>(),
            "refused": self.refused,
            "refused_by": self.refused_by,
            "pbft": self.pbft_snapshot(
                (chain.profile().kind == toycoin_common::profile::ProfileKind::Steady)
                    .then(|| chain.profile().target_ms as f64 / 1e3),
            ),
            "last_reorg": self.last_reorg.map(|(at, fork, old)| json!({
                "age_ms": now.saturating_sub(at),
                "fork_height": fork,
                "old_tip": old.to_hex(),
            })),
        })
    }
}

/// A lesson's state in one line for "What happened", when it says
/// something new: a step begun, what it found, the end.
fn lesson_line(l: &Value) -> Option<String> {
    let text = |k: &str| l[k].as_str().unwrap_or_default().to_owned();
    match l["state"].as_str()? {
        "waiting" => Some(format!(
            "LESSON step {} of {}: {} (waiting for {})",
            l["step"],
            l["steps"],
            text("step_title"),
            text("waiting_for")
        )),
        "happened" => Some(format!("LESSON step {}: ✓ {}", l["step"], text("said"))),
        "missed" => Some(format!("LESSON step {}: ✗ {}", l["step"], text("said"))),
        "ended" => Some(text("said")),
        _ => None,
    }
}

const INDEX_HTML: &str = include_str!("web/index.html");

#[derive(Clone)]
struct Shared {
    snapshots: watch::Receiver<Arc<str>>,
    browsers: Arc<limit::Browsers>,
    controls: Option<Arc<Controls>>,
    wallets: Option<Arc<wallets::Gateway>>,
}

/// The teacher's buttons on the projector: hold, step and release a live
/// class (`--controls`), and a replay's timeline (`toycoin-replay`: play,
/// pause, step, seek, speed) whenever the view watches one. Only a
/// browser on this machine may press them; the token is the relay's, read
/// from its file (or `TOYCOIN_CONTROL_TOKEN`) at each press.
#[derive(Clone, Debug)]
pub struct Controls {
    /// The relay, `host:port`.
    pub relay: String,
    pub port: u16,
    /// The buttons for a live class (`--controls`).
    pub live: bool,
    /// Set once the relay said it is a replay: its timeline works.
    pub replay: Arc<std::sync::atomic::AtomicBool>,
    /// A lesson's directory (`--lesson-dir`): the Next button writes there.
    pub lesson: Option<std::path::PathBuf>,
    /// The students' wallet pages' way to the class (`/wallet`).
    pub wallets: Option<wallets::Wallets>,
}

/// Serves the web view on `addr` until the runtime ends; returns the
/// address it listens on (the port the OS picked, for `:0`).
pub async fn serve(
    addr: SocketAddr,
    snapshots: watch::Receiver<Arc<str>>,
) -> std::io::Result<SocketAddr> {
    serve_with(addr, snapshots, None).await
}

/// As [`serve`], with the teacher's buttons when `controls` is given.
pub async fn serve_with(
    addr: SocketAddr,
    snapshots: watch::Receiver<Arc<str>>,
    controls: Option<Controls>,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let gateway = controls
        .as_ref()
        .and_then(|c| c.wallets.clone())
        .map(|w| Arc::new(wallets::Gateway::start(w, local)));
    let shared = Shared {
        snapshots,
        browsers: limit::Browsers::new(MAX_BROWSERS),
        controls: controls.map(Arc::new),
        wallets: gateway,
    };
    let app = Router::new()
        .route("/", get(index))
        .route("/api/snapshot", get(snapshot))
        .route("/api/events", get(events))
        .route("/api/control/{cmd}", axum::routing::post(control))
        .route("/api/lesson/next", axum::routing::post(lesson_next))
        .route("/wallet", get(wallets::page))
        .route("/wallet/wallet.js", get(wallets::script))
        .route("/wallet/qr.svg", get(wallets::qr))
        .route("/api/wallet/network", get(wallets::network))
        .route("/api/wallet/ask", axum::routing::post(wallets::ask))
        .route("/api/wallet/send", axum::routing::post(wallets::send))
        .route("/api/wallet/headers", axum::routing::post(wallets::headers))
        .layer(axum::extract::DefaultBodyLimit::max(wallets::MAX_BODY))
        .with_state(shared);
    tokio::spawn(async move {
        let mut listener = limit::Limited::new(listener);
        loop {
            let connection = listener.accept().await;
            tokio::spawn(serve_connection(app.clone(), connection));
        }
    });
    Ok(local)
}

/// Serves one connection with hyper, whose `header_read_timeout` closes
/// one that sends nothing, or half a request, within
/// [`limit::HEADER_TIMEOUT`] (`axum::serve` sets no timeout at all).
async fn serve_connection(app: Router, connection: limit::Connection) {
    use tower::ServiceExt;
    let peer = connection.peer();
    let service =
        hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
            let mut request = request.map(axum::body::Body::new);
            request.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(request)
        });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limit::HEADER_TIMEOUT);
    let io = hyper_util::rt::TokioIo::new(connection);
    // A connection that fails or times out just ends; the view goes on.
    let _ = http.serve_connection(io, service).await;
}

/// The page, with the current snapshot in it, so that it is drawn as soon
/// as it loads (`</` escaped: the JSON sits in a script).
async fn index(State(shared): State<Shared>) -> impl IntoResponse {
    let snapshot = shared.snapshots.borrow().replace("</", "<\\/");
    let page = INDEX_HTML.replacen("/*SNAPSHOT*/null", &snapshot, 1);
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], page)
}

async fn snapshot(State(shared): State<Shared>) -> impl IntoResponse {
    let body = shared.snapshots.borrow().clone();
    (
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
}

/// A teacher's button, sent to the relay, from a browser on this machine
/// only: `hold`, `step` or `release` (a live class with `--controls`, or
/// a replay, where they pause, step and play), and on a replay
/// `seek?to=SECS` and `speed?x=SPEED`.
async fn control(
    State(shared): State<Shared>,
    ConnectInfo(peer): ConnectInfo<limit::Peer>,
    axum::extract::Path(cmd): axum::extract::Path<String>,
    axum::extract::Query(query): axum::extract::Query<HashMap<String, String>>,
) -> Response {
    use toycoin_common::control::Command;
    let Some(controls) = shared.controls.as_deref() else {
        return (StatusCode::NOT_FOUND, "this view has no buttons").into_response();
    };
    let replay = controls.replay.load(std::sync::atomic::Ordering::Relaxed);
    if !controls.live && !replay {
        return (
            StatusCode::NOT_FOUND,
            "this view was started without --controls, and watches no replay",
        )
            .into_response();
    }
    if !peer.this_machine {
        return (
            StatusCode::FORBIDDEN,
            "the teacher's buttons work on the teacher's machine only",
        )
            .into_response();
    }
    let number = |key: &str| query.get(key).and_then(|v| v.parse::<f64>().ok());
    let command = match (cmd.as_str(), replay) {
        ("hold", _) => Command::Hold,
        ("step", _) => Command::Step { count: 1 },
        ("release", _) => Command::Release,
        ("seek", true) => match number("to") {
            Some(secs) => Command::Seek { secs },
            None => return (StatusCode::BAD_REQUEST, "seek?to=SECONDS").into_response(),
        },
        ("speed", true) => match number("x") {
            Some(speed) => Command::Speed { speed },
            None => return (StatusCode::BAD_REQUEST, "speed?x=SPEED").into_response(),
        },
        _ => {
            return (
                StatusCode::NOT_FOUND,
                "hold, step or release; on a replay also seek and speed",
            )
                .into_response()
        }
    };
    let file = toycoin_common::control::token_file(controls.port);
    let token = match toycoin_common::control::read_token(None, Some(&file)) {
        Ok(Some(token)) => token,
        _ => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "no token for the relay on this machine",
            )
                .into_response()
        }
    };
    match toycoin_common::control::command(controls.relay.as_str(), &token, command).await {
        Ok(reply) if reply.ok => (StatusCode::OK, reply.message).into_response(),
        Ok(reply) => (StatusCode::CONFLICT, reply.message).into_response(),
        Err(e) => (StatusCode::BAD_GATEWAY, e).into_response(),
    }
}

/// The lesson panel's Next button, from a browser on this machine only:
/// `next?step=N` says the teacher is done with step N.
async fn lesson_next(
    State(shared): State<Shared>,
    ConnectInfo(peer): ConnectInfo<limit::Peer>,
    axum::extract::Query(query): axum::extract::Query<HashMap<String, String>>,
) -> Response {
    let Some(dir) = shared.controls.as_deref().and_then(|c| c.lesson.as_deref()) else {
        return (StatusCode::NOT_FOUND, "this view shows no lesson").into_response();
    };
    if !peer.this_machine {
        return (
            StatusCode::FORBIDDEN,
            "the lesson goes on from the teacher's machine only",
        )
            .into_response();
    }
    let Some(step) = query.get("step").and_then(|s| s.parse::<u64>().ok()) else {
        return (StatusCode::BAD_REQUEST, "next?step=N").into_response();
    };
    match crate::lesson_panel::press_next(dir, step) {
        Ok(()) => (StatusCode::OK, format!("on to the step after {step}")).into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    }
}

async fn events(
    State(shared): State<Shared>,
    ConnectInfo(peer): ConnectInfo<limit::Peer>,
) -> Response {
    let Some(permit) = shared.browsers.admit(peer.addr.ip(), peer.this_machine) else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "too many browsers are following this listener",
        )
            .into_response();
    };
    let mut rx = shared.snapshots.clone();
    rx.mark_changed();
    let stream = futures_util::stream::unfold((rx, permit), |(mut rx, permit)| async move {
        rx.changed().await.ok()?;
        let data = rx.borrow_and_update().clone();
        let event = Event::default().event("snapshot").data(&*data);
        Some((Ok::<_, Infallible>(event), (rx, permit)))
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use toycoin_common::chain::Chain;
    use toycoin_common::profile::Profile;

    /// The pBFT panel: each batch's votes against 2f, 2f+1 and f+1 and
    /// its phase, the view and primary, a view change under way, and only
    /// the last batches kept.
    #[test]
    fn the_pbft_panel_shows_each_batchs_phase_and_keeps_the_last_ones() {
        let seen = |seen: Seen| {
            Verdict::Pbft(PbftSeen {
                seen,
                from: "node2".into(),
                verified: true,
                view: 1,
                primary: Some("node2".into()),
            })
        };
        let mut model = WebModel::new();
        let digest = toycoin_common::hash::Hash::of(b"batch");
        for seq in 1..=20u64 {
            model.observe(
                &seen(Seen::PrePrepare {
                    from: 1,
                    view: 1,
                    seq,
                    digest,
                    txns: 2,
                }),
                "",
            );
            for count in 1..=2 {
                model.observe(
                    &seen(Seen::Vote {
                        from: 2,
                        phase: "prepare",
                        view: 1,
                        seq,
                        count,
                        needed: 2,
                    }),
                    "",
                );
            }
            if seq < 20 {
                for count in 1..=3 {
                    model.observe(
                        &seen(Seen::Vote {
                            from: 2,
                            phase: "commit",
                            view: 1,
                            seq,
                            count,
                            needed: 3,
                        }),
                        "",
                    );
                }
            }
            if seq < 19 {
                model.observe(
                    &seen(Seen::Final {
                        seq,
                        digest,
                        txns: Vec::new(),
                    }),
                    "",
                );
            }
        }
        model.observe(
            &seen(Seen::ViewChange {
                from: 3,
                to: 2,
                count: 1,
                needed: 3,
            }),
            "",
        );
        let p = model.pbft_snapshot(Some(5.0));
        assert_eq!(p["view"], 1);
        assert_eq!(p["primary"], "node2");
        assert_eq!(p["needed"]["commit"], 3);
        let batches = p["batches"].as_array().expect("batches");
        assert_eq!(batches.len(), SHOWN_BATCHES);
        assert_eq!(batches[0]["seq"], 20);
        assert_eq!(batches[0]["phase"], "prepared");
        assert_eq!(batches[1]["phase"], "committed");
        assert_eq!(batches[2]["phase"], "final");
        assert_eq!(
            batches[2]["replies"], 0,
            "f+1 unknown here: no reply counted"
        );
        assert_eq!(p["view_change"]["view"], 2);
        assert_eq!(p["finality"]["pow_expected_s"], 30.0);
    }

    /// The paper's diagram: the newest batch's messages by sender and
    /// phase, a silent replica with none, a second pre-prepare with another
    /// digest marked as a conflict, and the view change's messages.
    #[test]
    fn the_pbft_diagram_draws_who_sent_what() {
        let said = |from: &str, seen: Seen| {
            Verdict::Pbft(PbftSeen {
                seen,
                from: from.into(),
                verified: true,
                view: 0,
                primary: Some("node1".into()),
            })
        };
        let mut model = WebModel::new();
        model.set_replicas(vec![
            "node1".into(),
            "node2".into(),
            "node3".into(),
            "node4".into(),
        ]);
        let digest = toycoin_common::hash::Hash::of(b"batch");
        let pre_prepare = |digest| Seen::PrePrepare {
            from: 0,
            view: 0,
            seq: 7,
            digest,
            txns: 1,
        };
        let vote = |phase| Seen::Vote {
            from: 0,
            phase,
            view: 0,
            seq: 7,
            count: 1,
            needed: 2,
        };
        model.observe(&said("node1", pre_prepare(digest)), "");
        // node1 equivocates: another batch under the same number.
        model.observe(
            &said(
                "node1",
                pre_prepare(toycoin_common::hash::Hash::of(b"other")),
            ),
            "",
        );
        // node4 is silent.
        for who in ["node2", "node3"] {
            model.observe(&said(who, vote("prepare")), "");
            model.observe(&said(who, vote("prepare")), "");
        }
        for who in ["node1", "node2", "node3"] {
            model.observe(&said(who, vote("commit")), "");
            model.observe(
                &said(
                    who,
                    Seen::Reply {
                        from: 0,
                        seq: 7,
                        count: 1,
                        needed: 2,
                    },
                ),
                "",
            );
        }
        for who in ["node2", "node3", "node4"] {
            model.observe(
                &said(
                    who,
                    Seen::ViewChange {
                        from: 0,
                        to: 1,
                        count: 1,
                        needed: 3,
                    },
                ),
                "",
            );
        }
        model.observe(
            &said(
                "node2",
                Seen::NewView {
                    view: 1,
                    primary: 1,
                    batches: 0,
                },
            ),
            "",
        );
        let p = model.pbft_snapshot(None);
        assert_eq!(p["lanes"], json!(["node1", "node2", "node3", "node4"]));
        let d = &p["diagram"];
        assert_eq!(d["seq"], 7);
        assert_eq!(d["primary"], "node1");
        let messages = d["messages"].as_array().unwrap();
        let count = |phase: &str| messages.iter().filter(|m| m["phase"] == phase).count();
        assert_eq!(count("pre-prepare"), 2);
        assert_eq!(count("prepare"), 2, "each sender once: {messages:?}");
        assert_eq!(count("commit"), 3);
        assert_eq!(count("reply"), 3);
        assert_eq!(messages.iter().filter(|m| m["conflict"] == true).count(), 1);
        assert!(!messages.iter().any(|m| m["from"] == "node4"));
        assert_eq!(p["change"]["to"], 1);
        assert_eq!(p["change"]["asked"], json!(["node2", "node3", "node4"]));
        assert_eq!(p["change"]["new_view"], "node2");
        // batch 7 final; batch 8 begun: 7 is still the one drawn, whole.
        model.observe(
            &said(
                "node1",
                Seen::Final {
                    seq: 7,
                    digest,
                    txns: Vec::new(),
                },
            ),
            "",
        );
        model.observe(
            &said(
                "node2",
                Seen::PrePrepare {
                    from: 1,
                    view: 1,
                    seq: 8,
                    digest,
                    txns: 1,
                },
            ),
            "",
        );
        let p = model.pbft_snapshot(None);
        assert_eq!(p["diagram"]["seq"], 7);
        assert_eq!(p["diagram"]["final"], true);
        model.observe(
            &said(
                "node2",
                Seen::Final {
                    seq: 8,
                    digest,
                    txns: Vec::new(),
                },
            ),
            "",
        );
        assert_eq!(model.pbft_snapshot(None)["diagram"]["seq"], 8);
    }

    /// A lesson's steps go into "What happened" once each: begun, found,
    /// ended; the same state again adds nothing.
    #[test]
    fn a_lessons_steps_are_logged_once_each() {
        let mut model = WebModel::new();
        let state = |step: u64, state: &str, said: &str| {
            Some(json!({
                "lesson": "forks", "steps": 7, "step": step, "state": state,
                "step_title": "A partition", "waiting_for": "a side branch", "said": said,
            }))
        };
        model.set_lesson(state(5, "waiting", ""));
        model.set_lesson(state(5, "waiting", ""));
        model.set_lesson(state(5, "happened", "two branches"));
        model.set_lesson(state(7, "ended", "Lesson forks: 7 of 7 steps happened"));
        let log: Vec<&String> = model.log.iter().collect();
        assert_eq!(
            log,
            vec![
                "LESSON step 5 of 7: A partition (waiting for a side branch)",
                "LESSON step 5: ✓ two branches",
                "Lesson forks: 7 of 7 steps happened",
            ]
        );
    }

    /// When each node said a block was its tip: once per node and block,
    /// earliest first, a repeated status changing nothing.
    #[test]
    fn each_block_records_when_each_node_had_it() {
        let profile = Profile::steady(5.0);
        let mut chain = Chain::new(profile);
        let mut blocks = Vec::new();
        for who in [b"a", b"b"] {
            let block = chain
                .mine_next(
                    &toycoin_common::address::example(who),
                    Vec::new(),
                    toycoin_common::chain::now_secs(),
                )
                .unwrap();
            chain
                .push(block.clone(), toycoin_common::chain::now_secs())
                .unwrap();
            blocks.push(block);
        }
        let mut model = WebModel::new();
        model.add_blocks(Some(0), &blocks);
        let status = |name: &str, tip: &Block| Verdict::Status {
            status: Status {
                name: name.into(),
                tip: Some(tip.header.this_hash),
                height: Some(0),
                hash_rate: 1.0,
                mining: true,
                threads: 1,
                wallet: None,
                signer: None,
            },
            lie: None,
        };
        model.observe(&status("node2", &blocks[0]), "");
        model.observe(&status("node1", &blocks[0]), "");
        model.observe(&status("node2", &blocks[0]), "");
        model.observe(&status("node1", &blocks[1]), "");
        let first = model.heard_json(&blocks[0].header.this_hash);
        let names: Vec<&str> = first
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["node"].as_str().unwrap())
            .collect();
        assert_eq!(names.len(), 2, "{first}");
        assert!(names.contains(&"node1") && names.contains(&"node2"));
        assert_eq!(first[0]["after_ms"], 0);
        assert!(first[1]["after_ms"].as_u64() >= first[0]["after_ms"].as_u64());
        let second = model.heard_json(&blocks[1].header.this_hash);
        assert_eq!(second, json!([{ "node": "node1", "after_ms": 0 }]));
        // A block this view never had: nobody.
        assert_eq!(model.heard_json(&blocks[0].header.previous_hash), json!([]));
    }

    /// A 1,000-block chain: 40 blocks drawn, the rest one collapsed run,
    /// 500 heights charted, and a snapshot of bounded size.
    #[test]
    fn a_thousand_block_chain_is_drawn_as_forty_blocks_and_one_run() {
        let profile = Profile::steady(5.0);
        let mut chain = Chain::new(profile);
        // Stamped three targets apart: the bits fall to their floor, so
        // the chain is quick to mine.
        let start = toycoin_common::chain::now_secs() - 15 * 1_001;
        let mut blocks = Vec::new();
        for i in 0..1_000u64 {
            let block = chain
                .mine_next(
                    &toycoin_common::address::example(b"miner"),
                    Vec::new(),
                    start + 15 * i,
                )
                .expect("mined");
            chain
                .push(block.clone(), start + 15 * 1_001)
                .expect("valid");
            blocks.push(block);
        }
        let mut tree = BlockTree::new(profile);
        tree.receive(blocks, start + 15 * 1_001).expect("valid");
        let mut model = WebModel::new();
        let snap = model.snapshot(&tree, &Mempool::new(10));
        assert_eq!(snap["height"], 999);
        assert_eq!(snap["blocks"].as_array().map(Vec::len), Some(SHOWN_HEIGHTS));
        assert_eq!(snap["collapsed"], 1_000 - SHOWN_HEIGHTS);
        assert_eq!(snap["blocks"][0]["height"], 1_000 - SHOWN_HEIGHTS);
        assert_eq!(snap["chart"].as_array().map(Vec::len), Some(CHART_HEIGHTS));
        let size = snap.to_string().len();
        assert!(size < 64 * 1024, "{size} bytes");
    }

    /// A log line quoting megabytes a student sent is kept clipped.
    #[test]
    fn log_lines_are_bounded_in_bytes() {
        let mut model = WebModel::new();
        let verdict = Verdict::Undecodable {
            bytes: 4 << 20,
            tag: "TXN".into(),
            reason: "x".repeat(4 << 20),
        };
        let huge = format!("Could not decode: {}", "x".repeat(4 << 20));
        for _ in 0..LOG_LINES + 5 {
            model.observe(&verdict, &huge);
        }
        assert_eq!(model.log.len(), LOG_LINES);
        assert!(model.log.iter().all(|l| l.len() <= MAX_LOG_LINE));
    }
}
