//! Fork choice: which of two chains a node follows. The chain with the
//! most accumulated work ([`block_work`] summed), and at equal work the one
//! seen first ([`prefers`]).

use crate::difficulty::MAX_BITS;
use crate::hash::BlockHash;
use crate::network::ProfileKind;

/// What fork choice compares: a chain's accumulated work and its tip.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainScore {
    pub work: u128,
    pub tip: BlockHash,
}

/// Whether a chain `candidate` beats the best chain `best`: only by more
/// work (in toycoin a block is one unit of work, so the longer chain). At
/// equal work a node keeps the chain it saw first, as Bitcoin's nodes and
/// the original's do: a race between two blocks of one height is settled by
/// the next block, and a block that arrives late loses even when its hash
/// is lower.
pub fn prefers(candidate: ChainScore, best: ChainScore) -> bool {
    candidate.work > best.work
}

/// The work a block with `bits` required bits adds to its chain: 1 per
/// block in toycoin (longest chain wins), 2^bits in steady.
pub fn block_work(kind: ProfileKind, bits: u32) -> u128 {
    match kind {
        ProfileKind::Toycoin => 1,
        ProfileKind::Steady => 1u128 << bits.min(MAX_BITS),
    }
}
