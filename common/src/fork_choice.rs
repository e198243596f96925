//! Fork choice: which of two chains a node follows. The chain with the
//! most accumulated work ([`block_work`] summed), and at equal work the one
//! seen first ([`prefers`]).

use crate::difficulty::MAX_BITS;
use crate::hash::BlockHash;

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

/// The work a block with `bits` required bits adds to its chain: 2^bits
/// where work is counted per bit (steady), else 1 per block (toycoin: the
/// longest chain wins).
pub fn block_work(per_bit: bool, bits: u32) -> u128 {
    if per_bit {
        1u128 << bits.min(MAX_BITS)
    } else {
        1
    }
}
