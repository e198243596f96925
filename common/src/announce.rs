//! Who announced which block (issue 33): a steady node signs, with its
//! wallet's key, each block it announces (`ANNC` beside the `BLOC`), so
//! that an observer blames a node only for what it said itself: a block
//! it announced that breaks a rule, or a stale block it announced again
//! and again. A block someone else re-sent, altered or merely paid to a
//! node blames nobody.
//!
//! ```text
//! ANNC{"block":"<128 hex digits>","height":12,"key":"<base64 of the PEM>","at":1765000000,"sig":"<base64>"}
//! ```
//!
//! The signature is of `toycoin-annc`, the block's hash in hex, its
//! height and `at`, each ended by NUL (two blocks one key announced at
//! one height are the lecture's equivocation, on record); `at` (the signer's Unix time) makes each
//! announcement of the same block a new one, so observers count a node's
//! re-sends by their distinct signatures, and a replayed frame counts
//! once. The original Python programs print an error for the tag and go
//! on, as for `STAT`: only steady nodes send it.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::hash::{BlockHash, Hash};
use crate::transaction::Address;
use crate::wallet::Wallet;

/// The frame's tag.
pub const ANNC_TAG: &[u8; 4] = b"ANNC";
/// Largest `ANNC` body read.
pub const MAX_ANNC_PAYLOAD: usize = 2048;

#[derive(Serialize, Deserialize)]
struct AnncWire {
    block: String,
    height: u64,
    key: String,
    at: u64,
    sig: String,
}

/// A checked announcement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Announcement {
    pub block: BlockHash,
    /// The height its announcer says it is at.
    pub height: u64,
    /// The announcer's address.
    pub key: Address,
    pub at: u64,
    /// The hash of its signature: two announcements of one block differ
    /// by it.
    pub sig_hash: Hash,
}

/// What a node's key signs to announce `block` at `height`, at time `at`.
pub fn claim(block: &BlockHash, height: u64, at: u64) -> Vec<u8> {
    format!("toycoin-annc\0{}\0{height}\0{at}\0", block.to_hex()).into_bytes()
}

/// The `ANNC` frame announcing `block` at `height`, signed by `key` at
/// `at`.
pub fn encode(block: &BlockHash, height: u64, key: &Wallet, at: u64) -> Result<Bytes, String> {
    let sig = key
        .sign(&mut rand::thread_rng(), &claim(block, height, at))
        .map_err(|e| e.to_string())?;
    let wire = AnncWire {
        block: block.to_hex(),
        height,
        key: B64.encode(key.address()),
        at,
        sig: B64.encode(sig),
    };
    let mut out = ANNC_TAG.to_vec();
    out.extend(serde_json::to_vec(&wire).map_err(|e| e.to_string())?);
    Ok(Bytes::from(out))
}

/// Reads an `ANNC` frame and checks its signature; or says why not.
pub fn decode(payload: &[u8]) -> Result<Announcement, String> {
    let body = payload
        .strip_prefix(ANNC_TAG)
        .ok_or_else(|| "not an ANNC frame".to_string())?;
    if body.len() > MAX_ANNC_PAYLOAD {
        return Err(format!(
            "ANNC of {} bytes (at most {MAX_ANNC_PAYLOAD})",
            body.len()
        ));
    }
    let wire: AnncWire = serde_json::from_slice(body).map_err(|e| format!("ANNC: {e}"))?;
    let bytes = hex::decode(&wire.block).map_err(|_| "ANNC: block: not hex".to_string())?;
    let hash: [u8; crate::hash::HASH_LEN] = bytes
        .try_into()
        .map_err(|_| "ANNC: block: not a block hash".to_string())?;
    let block = BlockHash(Hash(hash));
    let key = Bytes::from(
        B64.decode(&wire.key)
            .map_err(|_| "ANNC: key: not base64".to_string())?,
    );
    let sig = B64
        .decode(&wire.sig)
        .map_err(|_| "ANNC: sig: not base64".to_string())?;
    crate::wallet::verify(&key, &claim(&block, wire.height, wire.at), &sig)
        .map_err(|_| "ANNC: the signature does not verify".to_string())?;
    Ok(Announcement {
        block,
        height: wire.height,
        key,
        at: wire.at,
        sig_hash: Hash::of(&sig),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn an_announcement_reads_back_and_a_rewritten_one_does_not() {
        let key = Wallet::generate(&mut StdRng::seed_from_u64(8)).unwrap();
        let block = BlockHash(Hash::of(b"block"));
        let frame = encode(&block, 7, &key, 100).unwrap();
        let read = decode(&frame).unwrap();
        assert_eq!((read.block, read.height, read.at), (block, 7, 100));
        assert_eq!(read.key, *key.address());
        let again = decode(&encode(&block, 7, &key, 103).unwrap()).unwrap();
        assert_ne!(again.sig_hash, read.sig_hash, "a new announcement");
        let other = BlockHash(Hash::of(b"other")).to_hex();
        let rewritten = String::from_utf8(frame.to_vec())
            .unwrap()
            .replace(&block.to_hex(), &other);
        assert!(decode(rewritten.as_bytes()).is_err());
    }
}
