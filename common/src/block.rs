//! Block headers, blocks, and the header hash.

use bytes::Bytes;

use crate::hash::{BlockHash, Hash, Txid};
use crate::merkle::{merkle_root, MerkleProof, MerkleRoot, MerkleTree};
use crate::transaction::Transaction;

/// Most transactions a block may hold in the original (the `toycoin`
/// profile); a steady block is bounded by bytes instead
/// ([`Profile::max_block_txns`](crate::profile::Profile::max_block_txns)).
pub const MAX_BLOCK_TXNS: usize = 10;

/// A block header. `timestamp` and `nonce` are kept as the bytes that were
/// hashed (decimal digits when made by an honest node), so that any header
/// the original accepts re-hashes to the same value here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockHeader {
    pub timestamp: Bytes,
    pub previous_hash: BlockHash,
    pub nonce: Bytes,
    pub merkle_root: MerkleRoot,
    pub this_hash: BlockHash,
}

impl BlockHeader {
    /// SHA-512(timestamp || previous_hash || nonce || merkle_root): what
    /// `this_hash` must equal.
    pub fn compute_hash(&self) -> BlockHash {
        BlockHash::from_raw_hash(Hash::of_parts(&[
            &self.timestamp,
            self.previous_hash.as_ref(),
            &self.nonce,
            self.merkle_root.as_ref(),
        ]))
    }

    /// The timestamp in Unix seconds, when it is canonical decimal
    /// (digits only, no leading zero unless it is "0").
    pub fn timestamp_secs(&self) -> Option<u64> {
        parse_canonical_decimal(&self.timestamp)
    }
}

/// A block: a header and its transactions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    pub header: BlockHeader,
    pub txns: Vec<Transaction>,
}

impl Block {
    /// Its size: its header's fields and its transactions'
    /// [sizes](Transaction::size).
    pub fn size(&self) -> usize {
        let header = &self.header;
        header.timestamp.len()
            + header.nonce.len()
            + 2 * crate::hash::HASH_LEN
            + header.merkle_root.as_ref().len()
            + self.txns.iter().map(Transaction::size).sum::<usize>()
    }

    /// The hashes of the block's transactions, in order.
    pub fn txn_hashes(&self) -> Vec<Txid> {
        self.txns.iter().map(Transaction::hash).collect()
    }

    /// The Merkle root recomputed from the transactions (none when empty).
    pub fn compute_merkle_root(&self) -> Option<MerkleRoot> {
        merkle_root(&self.txn_hashes())
    }

    /// An inclusion proof for the transaction with the given hash.
    pub fn merkle_proof(&self, txn: &Txid) -> Option<MerkleProof> {
        let hashes = self.txn_hashes();
        let index = hashes.iter().position(|h| h == txn)?;
        MerkleTree::from_leaves(&hashes)?.proof(index)
    }
}

/// Parses decimal digits with no sign and no leading zero.
pub fn parse_canonical_decimal(bytes: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(bytes).ok()?;
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if text.len() > 1 && text.starts_with('0') {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_decimal_rejects_padding_signs_and_junk() {
        assert_eq!(parse_canonical_decimal(b"1795247465"), Some(1795247465));
        assert_eq!(parse_canonical_decimal(b"0"), Some(0));
        for bad in [
            &b"0123"[..],
            b"-1",
            b"+1",
            b"",
            b"12a",
            b"99999999999999999999999",
        ] {
            assert_eq!(parse_canonical_decimal(bad), None, "{bad:?}");
        }
    }
}
