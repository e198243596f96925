//! Byte limits (steady): how large a transaction, a block and each kind of
//! payload may be, so that nothing a student sends costs a node more than
//! its length. The original's are bounded only by the frame.

use crate::block::Block;
use crate::network::ProfileKind;

/// Largest transaction the steady profile takes, by [`Transaction::size`]
/// (a transfer with one input is about 1.5 KB; this allows some 450
/// inputs).
///
/// [`Transaction::size`]: crate::transaction::Transaction::size
pub const MAX_TXN_BYTES: usize = 32 * 1024;
/// Largest block the steady profile takes, by [`Block::size`]: well inside
/// one frame on the wire (base64 and JSON add about a third), so a block
/// and a catch-up answer always fit.
///
/// [`Block::size`]: crate::block::Block::size
pub const MAX_BLOCK_BYTES: usize = 1024 * 1024;

/// Largest `TXN ` payload a steady node decodes: a largest transaction
/// with its tokens, as sent, with room to spare. Anything larger is refused
/// by its length alone, before any decoding.
pub const MAX_TXN_PAYLOAD: usize = 1024 * 1024;
/// Largest `BLOC` or `GETB` payload a steady node decodes: a largest block
/// as sent, or a catch-up answer (at most 1 MiB), with room to spare.
pub const MAX_BLOC_PAYLOAD: usize = 4 * 1024 * 1024;
/// Largest `PBFT` payload (steady): a new view of 13 replicas carrying a
/// whole window of full batches is some 5 MiB.
pub const MAX_PBFT_PAYLOAD: usize = 8 * 1024 * 1024;

/// The most transactions a block may hold: the original's 10 in toycoin;
/// in steady as many as the wire carries, the block's bytes being the real
/// bound ([`MAX_BLOCK_BYTES`]: some 650 one-input transfers, room for a
/// class).
pub fn max_block_txns(kind: ProfileKind) -> usize {
    match kind {
        ProfileKind::Toycoin => crate::block::MAX_BLOCK_TXNS,
        ProfileKind::Steady => crate::message::MAX_WIRE_BLOCK_TXNS,
    }
}

/// Whether `block` had room for one more transaction of the largest size:
/// a transaction it left out was not left out for lack of room.
pub fn had_room(kind: ProfileKind, block: &Block) -> bool {
    let fits = |max: usize| block.size().saturating_add(MAX_TXN_BYTES) <= max;
    block.txns.len() < max_block_txns(kind) && max_block_bytes(kind).map_or(true, fits)
}

/// The largest transaction (by [`crate::transaction::Transaction::size`])
/// the rules take; `None`: the original's, bounded only by the frame.
pub fn max_txn_bytes(kind: ProfileKind) -> Option<usize> {
    match kind {
        ProfileKind::Toycoin => None,
        ProfileKind::Steady => Some(MAX_TXN_BYTES),
    }
}

/// The largest block (by [`Block::size`]) the rules take; `None`: the
/// original's.
pub fn max_block_bytes(kind: ProfileKind) -> Option<usize> {
    match kind {
        ProfileKind::Toycoin => None,
        ProfileKind::Steady => Some(MAX_BLOCK_BYTES),
    }
}

/// The largest payload with this 4-byte tag worth decoding: past it no
/// valid message fits, so it is refused by its length alone. `None`: the
/// original's, bounded only by the frame.
pub fn max_payload_len(kind: ProfileKind, tag: &[u8]) -> Option<usize> {
    match kind {
        ProfileKind::Toycoin => None,
        ProfileKind::Steady if tag == b"TXN " => Some(MAX_TXN_PAYLOAD),
        ProfileKind::Steady if tag == crate::message::STAT_TAG => {
            Some(4 + crate::message::MAX_STATUS_PAYLOAD)
        }
        ProfileKind::Steady if tag == crate::pbft::PBFT_TAG => Some(MAX_PBFT_PAYLOAD),
        ProfileKind::Steady => Some(MAX_BLOC_PAYLOAD),
    }
}
