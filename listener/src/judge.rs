//! The judge: what each frame on the topic is and what it did, as a typed
//! [`Verdict`]. Every way of showing frames (text, brief, JSON, and the web
//! view to come) formats verdicts and judges nothing itself.
//!
//! `BLOC`s are judged by the relay session's view of the best chain (the
//! session has already taken them in); `TXN`s by a [`Mempool`] over that
//! chain, the node's own, so a transaction that spends a pending one is
//! judged as the nodes judge it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use toycoin_common::block::Block;
use toycoin_common::hash::{BlockHash, Txid};
use toycoin_common::ledger::{Ledger, TxError};
use toycoin_common::mempool::{Mempool, MempoolError};
use toycoin_common::message::{GetBlocks, Message, Status, TxnMessage};
use toycoin_common::pbft::{Membership, Seen, Tally};
use toycoin_common::session::{BlocReport, SessionEvent};
use toycoin_common::spv::{self, SpvMsg};
use toycoin_common::transaction::Transaction;
use toycoin_common::tree::{BlockTree, Received};
use toycoin_common::wallet::fingerprint;

/// Most pending transactions the listener keeps to judge chained spends.
pub const MAX_SEEN_PENDING: usize = 10_000;

/// What the judge found a transaction to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxnCheck {
    Valid,
    Invalid(String),
    /// Not judged (the listener's pool is full).
    Unchecked(String),
}

/// What a `BLOC` did to the best chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Every block was known.
    Known,
    /// The best chain grew by `added` blocks to `height`.
    Extends { added: usize, height: usize },
    /// The best chain switched to another branch.
    Switch(Reorg),
    /// A side branch that is not (yet) better.
    Fork { fork_height: usize, length: usize },
    /// Its first block follows one this listener has not seen.
    Orphan { missing: BlockHash },
    /// A block is invalid; nothing changed.
    Invalid {
        index: usize,
        error: String,
        /// The failing block's hash, when that hash proves the failure
        /// (its header's own, and not a body altered in transit): the
        /// block whose announcer is to blame.
        proved: Option<BlockHash>,
    },
    /// One block, known, sent again and again while the chain has moved
    /// on: its sender is stuck (the lecture's second failure).
    Stuck { resent: u32, behind: usize },
}

/// A reorganisation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reorg {
    pub fork_height: usize,
    pub rolled_back: usize,
    pub added: usize,
    /// Transactions of the rolled-back blocks that are pending again (as
    /// the nodes count them).
    pub returned_txns: usize,
    pub old_tip: BlockHash,
}

/// The best chain after a frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainSummary {
    pub blocks: usize,
    /// Transactions in its blocks, repeats counted (the original's `Total
    /// Txns`).
    pub total_txns: usize,
    pub tip: BlockHash,
    pub work: u128,
}

/// What one frame was and did.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    Txn {
        hash: Txid,
        message: TxnMessage,
        check: TxnCheck,
    },
    Bloc {
        count: usize,
        /// Height of its first block, when known.
        first_height: Option<usize>,
        /// The blocks, to show.
        blocks: Vec<Block>,
        effect: Effect,
        chain: ChainSummary,
    },
    GetBlocks {
        request: GetBlocks,
        /// This listener's own request, back from the relay.
        own: bool,
    },
    /// A node's status: a claim, which the listener shows as such, and
    /// why it is a lie when it plainly is one.
    Status { status: Status, lie: Option<String> },
    Undecodable {
        bytes: usize,
        tag: String,
        reason: String,
    },
    /// A pBFT message, as the tally counted it.
    Pbft(PbftSeen),
    /// A light wallet's request, or an answer to one (`SPV `): what it
    /// asks or says, in words, and its kind as on the wire.
    Spv { kind: String, says: String },
    /// A node's signed announcement of a block: who (its wallet's
    /// fingerprint) said it is theirs, and which announcement it is (the
    /// hash of its signature: a replay is the same one).
    Announce {
        block: BlockHash,
        height: u64,
        by: String,
        sig_hash: toycoin_common::hash::Hash,
    },
    /// Where the replay we watch is; `restarted`: sought back, everything
    /// known before forgotten (the judge's own memory too).
    Timeline {
        position: toycoin_common::timeline::Position,
        restarted: bool,
    },
}

/// A pBFT message as seen: what it was, from whom, and whether its
/// signature was checked (with `--replicas`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PbftSeen {
    pub seen: Seen,
    /// The sender's name (from the replicas file) or `replica i`.
    pub from: String,
    pub verified: bool,
    /// The view as the tally stands, and its primary's name where known.
    pub view: u64,
    pub primary: Option<String>,
}

impl Effect {
    pub fn is_valid(&self) -> bool {
        !matches!(self, Effect::Invalid { .. })
    }
}

impl Verdict {
    /// Whether this frame changed the best chain or was refused — what
    /// `--quiet` still shows. A valid transaction waiting for a block, a
    /// `BLOC` of known blocks and a catch-up request only pass through.
    pub fn is_news(&self) -> bool {
        match self {
            Verdict::Txn { check, .. } => matches!(check, TxnCheck::Invalid(_)),
            Verdict::Bloc { effect, .. } => !matches!(effect, Effect::Known),
            Verdict::Status { lie, .. } => lie.is_some(),
            Verdict::GetBlocks { .. } => false,
            Verdict::Undecodable { .. } => true,
            Verdict::Spv { kind, .. } => kind == "granted",
            Verdict::Announce { .. } => false,
            Verdict::Timeline { restarted, .. } => *restarted,
            Verdict::Pbft(p) => matches!(
                p.seen,
                Seen::ViewChange { .. } | Seen::NewView { .. } | Seen::Final { .. }
            ),
        }
    }
}

/// Judges frames; keeps the pending transactions it has seen.
#[derive(Debug)]
pub struct Judge {
    pool: Mempool,
    /// pBFT messages counted (checked where the replicas are known).
    tally: Tally,
    /// On a pBFT network (from its first final batch): the transactions
    /// f+1 replicas applied, what pending ones are judged against (there
    /// are no blocks).
    pbft_ledger: Option<Ledger>,
    /// Single known blocks sent again, and how often.
    resent: HashMap<BlockHash, u32>,
    /// Who a status may be from.
    names: crate::names::StatusNames,
    /// The replicas, to check pBFT messages (kept when a replay starts
    /// again).
    members: Option<Arc<Membership>>,
}

/// Times one known block must come again, while this many blocks behind
/// the tip, before its sender is called stuck.
pub const STUCK_AFTER: u32 = 3;
pub const STUCK_BEHIND: usize = 2;
/// Most re-sent blocks counted at once (then the count starts over).
const MAX_RESENT: usize = 1024;

impl Default for Judge {
    fn default() -> Judge {
        Judge {
            pool: Mempool::new(MAX_SEEN_PENDING),
            tally: Tally::new(None),
            pbft_ledger: None,
            resent: HashMap::new(),
            names: Default::default(),
            members: None,
        }
    }
}

impl Judge {
    pub fn new() -> Judge {
        Judge::default()
    }

    /// A judge that checks pBFT messages' signatures against `members`.
    pub fn with_replicas(members: Arc<Membership>) -> Judge {
        Judge {
            tally: Tally::new(Some(members.clone())),
            members: Some(members),
            ..Judge::default()
        }
    }

    /// The pBFT tally.
    pub fn tally(&self) -> &Tally {
        &self.tally
    }

    /// Pending transactions.
    pub fn pool(&self) -> &Mempool {
        &self.pool
    }

    /// The verdict on a session event about a frame; `None` for events
    /// that are not about a frame (connections, our own requests going
    /// out). `tree` is the session's view, after the event.
    pub fn judge(&mut self, event: SessionEvent, tree: &BlockTree) -> Option<Verdict> {
        match event {
            SessionEvent::Txn(message) => Some(self.judge_txn(message, tree)),
            SessionEvent::Bloc(report) => Some(self.judge_bloc(report, tree)),
            SessionEvent::GetBlocks(request) => Some(Verdict::GetBlocks {
                request,
                own: false,
            }),
            SessionEvent::Own(Message::GetBlocks(request)) => {
                Some(Verdict::GetBlocks { request, own: true })
            }
            SessionEvent::Status(status) => match self.names.admit(&status) {
                Ok(()) => {
                    let lie = status_lie(&status, tree);
                    Some(Verdict::Status { status, lie })
                }
                Err(why) => Some(Verdict::Undecodable {
                    bytes: toycoin_common::message::encode_stat(&status).len(),
                    tag: "STAT".into(),
                    reason: format!("a status in {}'s name refused: {why}", status.name),
                }),
            },
            SessionEvent::Undecodable { bytes, tag, reason } => {
                Some(Verdict::Undecodable { bytes, tag, reason })
            }
            SessionEvent::Replayed { bytes, tag, reason } => Some(Verdict::Undecodable {
                bytes,
                tag,
                reason: toycoin_common::refused_frames::refused_again(&reason),
            }),
            SessionEvent::Pbft(payload) => Some(self.judge_pbft(&payload, tree)),
            SessionEvent::Timeline {
                position,
                restarted,
            } => {
                if restarted {
                    *self = match self.members.take() {
                        Some(members) => Judge::with_replicas(members),
                        None => Judge::new(),
                    };
                }
                Some(Verdict::Timeline {
                    position,
                    restarted,
                })
            }
            SessionEvent::Spv(payload) => Some(judge_spv(&payload)),
            SessionEvent::Announce(payload) => {
                Some(match toycoin_common::announce::decode(&payload) {
                    Ok(a) => Verdict::Announce {
                        block: a.block,
                        height: a.height,
                        by: fingerprint(&a.key),
                        sig_hash: a.sig_hash,
                    },
                    Err(reason) => Verdict::Undecodable {
                        bytes: payload.len(),
                        tag: "ANNC".into(),
                        reason,
                    },
                })
            }
            _ => None,
        }
    }

    fn judge_pbft(&mut self, payload: &[u8], tree: &BlockTree) -> Verdict {
        match self.tally.on_payload(payload) {
            Ok(seen) => {
                if let Seen::Final { txns, .. } = &seen {
                    self.finalize(txns, tree);
                }
                let from = match &seen {
                    Seen::PrePrepare { from, .. }
                    | Seen::Vote { from, .. }
                    | Seen::Checkpoint { from, .. }
                    | Seen::Catching { from, .. }
                    | Seen::ViewChange { from, .. }
                    | Seen::Reply { from, .. } => Some(*from),
                    Seen::NewView { primary, .. } => Some(*primary),
                    Seen::Final { .. } => None,
                };
                let name = |i: usize| match self.tally.members() {
                    Some(m) => m.name(i),
                    None => format!("replica {i}"),
                };
                Verdict::Pbft(PbftSeen {
                    from: from.map(name).unwrap_or_default(),
                    verified: self.tally.verifies(),
                    view: self.tally.view(),
                    primary: self.tally.primary().map(name),
                    seen,
                })
            }
            Err(e) => Verdict::Undecodable {
                bytes: payload.len(),
                tag: "PBFT".to_owned(),
                reason: e.to_string(),
            },
        }
    }

    /// A pBFT batch is final: the pending transactions it applied join the
    /// pBFT ledger (each after those it spends) and leave the pool.
    fn finalize(&mut self, txns: &[Txid], tree: &BlockTree) {
        let ledger = self
            .pbft_ledger
            .get_or_insert_with(|| Ledger::new(*tree.chain().profile()));
        let wanted: HashSet<Txid> = txns.iter().copied().collect();
        let mut todo: Vec<Transaction> = self
            .pool
            .select(self.pool.len())
            .into_iter()
            .filter(|t| wanted.contains(&t.hash()))
            .collect();
        loop {
            let before = todo.len();
            todo.retain(|t| ledger.apply_txns(std::slice::from_ref(t)).is_err());
            if todo.len() == before {
                break;
            }
        }
        self.pool.rebuild(ledger, Vec::new());
    }

    fn judge_txn(&mut self, message: TxnMessage, tree: &BlockTree) -> Verdict {
        let hash = message.txn.hash();
        let ledger = self.pbft_ledger.as_ref().unwrap_or(tree.chain().ledger());
        let check = match self
            .pool
            .add(ledger, message.txn.clone(), Some(&message.tokens))
        {
            Ok(_) => TxnCheck::Valid,
            // What a listener that joined late, or a re-send, looks like:
            // not a fault of the transaction.
            Err(MempoolError::Invalid(TxError::AlreadyPending)) => {
                TxnCheck::Unchecked("already pending: sent again".to_owned())
            }
            Err(MempoolError::Invalid(TxError::Duplicate)) => {
                TxnCheck::Unchecked("already in the chain: sent again".to_owned())
            }
            Err(MempoolError::Invalid(e @ TxError::UnknownInput { .. })) => TxnCheck::Unchecked(
                format!("parent unknown: {e}; or one this listener has not seen"),
            ),
            Err(MempoolError::Invalid(e)) => TxnCheck::Invalid(e.to_string()),
            // No room to keep it: not judged (a node would not keep it
            // either, but it may well be valid).
            Err(
                e @ (MempoolError::Full(_)
                | MempoolError::FullBytes(_)
                | MempoolError::SenderShare { .. }),
            ) => TxnCheck::Unchecked(e.to_string()),
        };
        Verdict::Txn {
            hash,
            message,
            check,
        }
    }

    /// A `BLOC` of known blocks: [`Effect::Stuck`] when it is one block
    /// sent again [`STUCK_AFTER`] times or more, [`STUCK_BEHIND`] or more
    /// blocks behind the tip; else [`Effect::Known`].
    fn stuck(&mut self, blocks: Option<&[Block]>, tree: &BlockTree) -> Effect {
        let Some([block]) = blocks else {
            return Effect::Known;
        };
        let hash = block.header.this_hash;
        let chain = tree.chain();
        // On the best chain or a side branch, however deep: a node stuck
        // on a tip that lost a race may sit two or more blocks into the
        // losing branch.
        let Some(height) = tree.height_of(&hash) else {
            return Effect::Known;
        };
        let behind = chain.len().saturating_sub(1 + height);
        if behind < STUCK_BEHIND {
            return Effect::Known;
        }
        if self.resent.len() >= MAX_RESENT && !self.resent.contains_key(&hash) {
            self.resent.clear();
        }
        let resent = self.resent.entry(hash).or_default();
        *resent += 1;
        if *resent >= STUCK_AFTER {
            Effect::Stuck {
                resent: *resent,
                behind,
            }
        } else {
            Effect::Known
        }
    }

    fn judge_bloc(&mut self, report: BlocReport, tree: &BlockTree) -> Verdict {
        let chain = tree.chain();
        let effect = match report.result {
            Ok(Received::Known) => self.stuck(report.blocks.as_deref(), tree),
            Ok(Received::Adopted(a)) => {
                let returned: Vec<_> = a
                    .rolled_back
                    .iter()
                    .flat_map(|b| b.txns.iter().cloned())
                    .collect();
                let rebuilt = self.pool.rebuild(chain.ledger(), returned);
                if a.is_reorganization() {
                    Effect::Switch(Reorg {
                        fork_height: a.fork_height,
                        rolled_back: a.rolled_back.len(),
                        added: a.added,
                        returned_txns: rebuilt.returned,
                        old_tip: a.old_tip,
                    })
                } else {
                    Effect::Extends {
                        added: a.added,
                        height: a.fork_height + a.added - 1,
                    }
                }
            }
            Ok(Received::SideBranch {
                fork_height,
                length,
                ..
            }) => Effect::Fork {
                fork_height,
                length,
            },
            Ok(Received::Orphan { missing }) => Effect::Orphan { missing },
            Err(e) => {
                // Which block failed: `index` is its height when the
                // parent is known, else its place in the BLOC.
                let blocks = report.blocks.as_deref().unwrap_or_default();
                let at = match (blocks.len(), report.first_height) {
                    (1, _) => 0,
                    (_, Some(h)) if e.index >= h => e.index - h,
                    _ => e.index,
                };
                let proved = blocks
                    .get(at)
                    .filter(|b| b.header.compute_hash() == b.header.this_hash)
                    .filter(|b| e.error.is_proved_by_hash(chain.profile(), b))
                    .map(|b| b.header.this_hash);
                Effect::Invalid {
                    index: e.index,
                    error: e.error.to_string(),
                    proved,
                }
            }
        };
        Verdict::Bloc {
            count: report.count,
            first_height: report.first_height,
            blocks: report.blocks.unwrap_or_default(),
            effect,
            chain: ChainSummary {
                blocks: chain.len(),
                total_txns: chain.total_block_txns(),
                tip: chain.tip_hash(),
                work: chain.total_work(),
            },
        }
    }
}

/// How far past the longest chain a listener has seen a node may claim to
/// be before its claim is called a lie (a listener catching up is a few
/// batches behind at most).
pub const LIE_MARGIN: u64 = 100;

/// Why a node's status is plainly a lie: it claims a chain more than
/// [`LIE_MARGIN`] blocks longer than the longest this listener has seen.
pub fn status_lie(status: &Status, tree: &BlockTree) -> Option<String> {
    let claimed = status.height?;
    let seen = tree.chain().len() as u64;
    (claimed > seen.saturating_sub(1) + LIE_MARGIN).then(|| {
        format!(
            "claims height {claimed}, {} blocks past the longest chain seen",
            claimed + 1 - seen
        )
    })
}

/// A light-client frame in words.
fn judge_spv(payload: &[u8]) -> Verdict {
    let msg = match SpvMsg::decode(payload) {
        Ok(msg) => msg,
        Err(reason) => {
            return Verdict::Undecodable {
                bytes: payload.len(),
                tag: "SPV".to_owned(),
                reason,
            }
        }
    };
    let wallet = |address: &str| {
        spv::address_from_text(address).map_or_else(
            |_| "an unreadable address".to_owned(),
            |a| format!("wallet {}", fingerprint(&a)),
        )
    };
    let (kind, says) = match &msg {
        SpvMsg::GetHeaders { locator, .. } => (
            "get-headers",
            format!(
                "a light wallet asks for headers after {}",
                locator
                    .first()
                    .and_then(|h| spv::block_hash(h).ok())
                    .map_or_else(|| "genesis".to_owned(), |h| h.short())
            ),
        ),
        SpvMsg::Headers { headers, .. } => (
            "headers",
            format!("a node sends a light wallet {} headers", headers.len()),
        ),
        SpvMsg::GetProofs { address, .. } => (
            "get-proofs",
            format!(
                "{} asks the nodes to prove its transactions",
                wallet(address)
            ),
        ),
        SpvMsg::Proofs { address, items, .. } => (
            "proofs",
            format!(
                "a node proves {} transactions of {} by Merkle paths",
                items.len(),
                wallet(address)
            ),
        ),
        SpvMsg::GetAddress { fingerprint, .. } => (
            "get-address",
            format!("a light wallet asks for the address of wallet {fingerprint}"),
        ),
        SpvMsg::Address { fingerprint, .. } => (
            "address",
            format!("a node gives the address of wallet {fingerprint}"),
        ),
        SpvMsg::Faucet { address, .. } => (
            "faucet",
            format!("{} asks the faucet for coins", wallet(address)),
        ),
        SpvMsg::Granted { value, refused, .. } => match refused {
            None => ("granted", format!("the faucet grants {value} coins")),
            Some(why) => ("refused", format!("the faucet says no: {why}")),
        },
    };
    Verdict::Spv {
        kind: kind.to_owned(),
        says,
    }
}

#[cfg(test)]
mod tests {
    use toycoin_common::chain;
    use toycoin_common::profile::Profile;

    use super::*;

    /// The next block on `tree`'s best chain, its reward to `who`.
    fn mine(tree: &BlockTree, who: &[u8]) -> Block {
        tree.chain()
            .mine_next(
                &toycoin_common::address::example(who),
                Vec::new(),
                chain::now_secs(),
            )
            .unwrap()
    }

    /// `block` heard (again): the effect the judge calls.
    fn resend(judge: &mut Judge, tree: &mut BlockTree, block: &Block) -> Effect {
        let result = tree.receive(vec![block.clone()], chain::now_secs());
        let report = BlocReport {
            count: 1,
            first_height: None,
            blocks: Some(vec![block.clone()]),
            result,
        };
        match judge.judge(SessionEvent::Bloc(report), tree) {
            Some(Verdict::Bloc { effect, .. }) => effect,
            other => panic!("{other:?}"),
        }
    }

    /// `block` sent [`STUCK_AFTER`] times to a new judge: the last effect.
    fn last_of_resends(tree: &mut BlockTree, block: &Block) -> Effect {
        let mut judge = Judge::new();
        let mut last = None;
        for _ in 0..STUCK_AFTER {
            last = Some(resend(&mut judge, tree, block));
        }
        last.unwrap()
    }

    /// A best chain of `length` blocks in one tree, and a second tree that
    /// holds only its first block (to mine a rival branch off it).
    fn chain_and_twin(length: usize) -> (BlockTree, BlockTree) {
        let profile = Profile::steady(5.0);
        let (mut tree, mut twin_tree) = (BlockTree::new(profile), BlockTree::new(profile));
        for i in 0..length {
            let block = mine(&tree, b"m");
            tree.receive(vec![block.clone()], chain::now_secs())
                .unwrap();
            if i == 0 {
                twin_tree.receive(vec![block], chain::now_secs()).unwrap();
            }
        }
        (tree, twin_tree)
    }

    #[test]
    fn one_old_block_sent_again_and_again_marks_its_sender_stuck() {
        let mut tree = BlockTree::new(Profile::steady(5.0));
        let mut blocks = Vec::new();
        for _ in 0..4 {
            let block = mine(&tree, b"m");
            tree.receive(vec![block.clone()], chain::now_secs())
                .unwrap();
            blocks.push(block);
        }
        let mut judge = Judge::new();
        // The tip, sent again, is only known.
        for _ in 0..4 {
            assert_eq!(resend(&mut judge, &mut tree, &blocks[3]), Effect::Known);
        }
        // Block 0, three blocks behind: the third time it is stuck.
        assert_eq!(resend(&mut judge, &mut tree, &blocks[0]), Effect::Known);
        assert_eq!(resend(&mut judge, &mut tree, &blocks[0]), Effect::Known);
        assert_eq!(
            resend(&mut judge, &mut tree, &blocks[0]),
            Effect::Stuck {
                resent: 3,
                behind: 3
            }
        );
    }

    #[test]
    fn a_side_block_sent_again_and_again_marks_its_sender_stuck() {
        // A node got stuck on a tip that lost its race: its block is off
        // the best chain, one block past a block of it.
        let (mut tree, twin_tree) = chain_and_twin(5);
        let twin = mine(&twin_tree, b"stuck");
        tree.receive(vec![twin.clone()], chain::now_secs()).unwrap();
        assert_eq!(tree.chain().height_of(&twin.header.this_hash), None);
        assert_eq!(
            last_of_resends(&mut tree, &twin),
            Effect::Stuck {
                resent: STUCK_AFTER,
                behind: 3
            }
        );
    }

    #[test]
    fn a_block_deep_in_a_losing_branch_sent_again_and_again_marks_its_sender_stuck() {
        let (mut tree, mut twin_tree) = chain_and_twin(6);
        // A branch of two off block 0; the stuck node sends its second.
        let mut branch = Vec::new();
        for _ in 0..2 {
            let b = mine(&twin_tree, b"stuck");
            twin_tree
                .receive(vec![b.clone()], chain::now_secs())
                .unwrap();
            tree.receive(vec![b.clone()], chain::now_secs()).unwrap();
            branch.push(b);
        }
        let deep = branch[1].clone();
        assert_eq!(tree.chain().height_of(&deep.header.this_hash), None);
        assert_eq!(tree.chain().height_of(&deep.header.previous_hash), None);
        assert_eq!(
            last_of_resends(&mut tree, &deep),
            Effect::Stuck {
                resent: STUCK_AFTER,
                behind: 3
            }
        );
    }

    #[test]
    fn a_status_far_past_the_longest_chain_seen_is_called_a_lie() {
        let tree = BlockTree::new(Profile::steady(5.0));
        let status = |height| Status {
            name: "n".into(),
            tip: None,
            height,
            hash_rate: 0.0,
            mining: false,
            threads: 1,
            wallet: None,
            signer: None,
        };
        assert_eq!(status_lie(&status(None), &tree), None);
        assert_eq!(status_lie(&status(Some(LIE_MARGIN - 1)), &tree), None);
        let lie = status_lie(&status(Some(1_000)), &tree).unwrap();
        assert_eq!(
            lie,
            "claims height 1000, 1001 blocks past the longest chain seen"
        );
    }
}
