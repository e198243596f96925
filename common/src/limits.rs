//! Byte limits (steady): how large a transaction, a block and each kind of
//! payload may be, so that nothing a student sends costs a node more than
//! its length. The original's are bounded only by the frame.

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
        ProfileKind::Steady if tag == crate::announce::ANNC_TAG => {
            Some(4 + crate::announce::MAX_ANNC_PAYLOAD)
        }
        ProfileKind::Steady => Some(MAX_BLOC_PAYLOAD),
    }
}
