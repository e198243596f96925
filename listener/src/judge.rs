//! The judge: what each frame on the topic is and what it did, as a typed
//! [`Verdict`]. Every way of showing frames (text, brief, JSON, and the web
//! view to come) formats verdicts and judges nothing itself.
//!
//! `BLOC`s are judged by the relay session's view of the best chain (the
//! session has already taken them in); `TXN`s by a [`Mempool`] over that
//! chain, the node's own, so a transaction that spends a pending one is
//! judged as the nodes judge it.

use toycoin_common::block::Block;
use toycoin_common::hash::{BlockHash, Txid};
use toycoin_common::ledger::TxError;
use toycoin_common::mempool::{Mempool, MempoolError};
use toycoin_common::message::{GetBlocks, Message, Status, TxnMessage};
use toycoin_common::session::{BlocReport, SessionEvent};
use toycoin_common::tree::{BlockTree, Received};

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
    Invalid { index: usize, error: String },
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
    /// A node's status: a claim, which the listener shows as such.
    Status(Status),
    Undecodable {
        bytes: usize,
        tag: String,
        reason: String,
    },
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
            Verdict::GetBlocks { .. } | Verdict::Status(_) => false,
            Verdict::Undecodable { .. } => true,
        }
    }
}

/// Judges frames; keeps the pending transactions it has seen.
#[derive(Debug)]
pub struct Judge {
    pool: Mempool,
}

impl Default for Judge {
    fn default() -> Judge {
        Judge {
            pool: Mempool::new(MAX_SEEN_PENDING),
        }
    }
}

impl Judge {
    pub fn new() -> Judge {
        Judge::default()
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
            SessionEvent::Status(status) => Some(Verdict::Status(status)),
            SessionEvent::Undecodable { bytes, tag, reason } => {
                Some(Verdict::Undecodable { bytes, tag, reason })
            }
            _ => None,
        }
    }

    fn judge_txn(&mut self, message: TxnMessage, tree: &BlockTree) -> Verdict {
        let hash = message.txn.hash();
        let ledger = tree.chain().ledger();
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
                format!("parent unknown: {e}, which this listener has not seen"),
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

    fn judge_bloc(&mut self, report: BlocReport, tree: &BlockTree) -> Verdict {
        let chain = tree.chain();
        let effect = match report.result {
            Ok(Received::Known) => Effect::Known,
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
            Err(e) => Effect::Invalid {
                index: e.index,
                error: e.error.to_string(),
            },
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
