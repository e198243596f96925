//! Light clients (simplified payment verification): a chain of block
//! headers only, and the `SPV ` frames a light wallet asks full nodes with
//! (`docs/spv.md`).
//!
//! A light client checks every header as a full node does — its hash, its
//! link to the one before, its proof of work against the difficulty the
//! profile requires there, its timestamp — and keeps the headers with the
//! most work. It never sees whole blocks: a node proves that a
//! transaction is in block h by the Merkle path from the transaction to
//! that header's root. A node can leave something out, but not make the
//! client believe in a transaction that is not in the chain with the most
//! work it knows.

use std::collections::VecDeque;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::block::BlockHeader;
use crate::chain::{check_header, BlockError};
use crate::hash::{BlockHash, Hash, Txid};
use crate::merkle::{MerkleNode, MerkleProof, MerkleRoot, ProofStep};
use crate::message::{transaction_from_json, transaction_to_json};
use crate::profile::{Profile, Schedule};
use crate::transaction::Transaction;

/// Tag of a light-client frame.
pub const SPV_TAG: &[u8; 4] = b"SPV ";
/// Most headers one answer carries.
pub const MAX_HEADERS: usize = 2_000;
/// Most proved transactions one answer carries.
pub const MAX_PROOF_ITEMS: usize = 500;
/// Longest Merkle path taken (a tree of 2^64 leaves).
pub const MAX_PATH: usize = 64;
/// Most hashes in a header request's locator (as in a full node's).
pub use crate::message::MAX_LOCATOR;
/// Longest request id.
pub const MAX_ID: usize = 64;
/// Largest request a node reads (a request is small; an answer is bounded
/// by the frame size).
pub const MAX_REQUEST: usize = 16 * 1024;

/// Faucet requests one address may send at once, then one per
/// [`FAUCET_ASK_EVERY`] (the faucet grants each wallet once a minute):
/// what the relay lets a laptop ask, and the web view a browser.
pub const FAUCET_ASKS_BURST: f64 = 3.0;
pub const FAUCET_ASK_EVERY: std::time::Duration = std::time::Duration::from_secs(20);

/// A header on the wire, its fields base64 as in a `BLOC`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderWire {
    pub timestamp: String,
    pub previous_hash: String,
    pub nonce: String,
    pub merkle_root: String,
    pub this_hash: String,
}

/// One step of a Merkle path on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepWire {
    /// The sibling's label (base64), none for an only child.
    pub sibling: Option<String>,
    /// The node on the path is its parent's right child.
    pub right: bool,
}

/// A transaction with its proof of inclusion.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofWire {
    /// The transaction as a `BLOC` carries it (JSON text).
    pub txn: String,
    pub height: u64,
    /// The block's hash (base64).
    pub block: String,
    pub path: Vec<StepWire>,
}

/// The frames, requests and answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum SpvMsg {
    /// "Send me the best chain's headers after the first of these hashes
    /// you have (newest first; empty: from genesis)."
    GetHeaders {
        id: String,
        locator: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply_to: Option<String>,
    },
    Headers {
        id: String,
        headers: Vec<HeaderWire>,
    },
    /// "Send me every transaction of the best chain that pays or is paid
    /// by this address (base64 of its PEM), each with its proof."
    GetProofs {
        id: String,
        address: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply_to: Option<String>,
    },
    Proofs {
        id: String,
        address: String,
        items: Vec<ProofWire>,
    },
    /// "Whose address has this fingerprint?" (to pay a classmate by the
    /// name every program prints).
    GetAddress {
        id: String,
        fingerprint: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply_to: Option<String>,
    },
    Address {
        id: String,
        fingerprint: String,
        address: String,
    },
    /// To the network's mint (the oracle's `--faucet`): coins, please.
    Faucet {
        id: String,
        address: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply_to: Option<String>,
    },
    /// The mint's answer: the grant's id, or why not, signed by the mint
    /// (steady): a wallet believes no other ([`check_granted`]).
    Granted {
        id: String,
        txn: Option<String>,
        value: i64,
        refused: Option<String>,
        /// The mint's address (base64 of its PEM).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mint: Option<String>,
        /// The mint's signature (base64) of [`granted_claim`].
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sig: Option<String>,
    },
}

impl SpvMsg {
    /// The request id.
    pub fn id(&self) -> &str {
        match self {
            SpvMsg::GetHeaders { id, .. }
            | SpvMsg::Headers { id, .. }
            | SpvMsg::GetProofs { id, .. }
            | SpvMsg::Proofs { id, .. }
            | SpvMsg::GetAddress { id, .. }
            | SpvMsg::Address { id, .. }
            | SpvMsg::Faucet { id, .. }
            | SpvMsg::Granted { id, .. } => id,
        }
    }

    /// Gives the message another id (a gateway asking for many askers
    /// under ids of its own: `toycoin-listener`'s wallet pages).
    pub fn set_id(&mut self, new: String) {
        match self {
            SpvMsg::GetHeaders { id, .. }
            | SpvMsg::Headers { id, .. }
            | SpvMsg::GetProofs { id, .. }
            | SpvMsg::Proofs { id, .. }
            | SpvMsg::GetAddress { id, .. }
            | SpvMsg::Address { id, .. }
            | SpvMsg::Faucet { id, .. }
            | SpvMsg::Granted { id, .. } => *id = new,
        }
    }

    /// Where a request wants its answers: the name its asker gave the
    /// relay (`$hello`), so that an answer goes to it alone (`$to:NAME`)
    /// and not to the whole class; `None`: to everyone.
    pub fn reply_to(&self) -> Option<&str> {
        match self {
            SpvMsg::GetHeaders { reply_to, .. }
            | SpvMsg::GetProofs { reply_to, .. }
            | SpvMsg::GetAddress { reply_to, .. }
            | SpvMsg::Faucet { reply_to, .. } => reply_to
                .as_deref()
                .filter(|name| crate::control::check_name(name).is_ok()),
            _ => None,
        }
    }

    /// Sets where a request's answers go (see [`SpvMsg::reply_to`]).
    pub fn set_reply_to(&mut self, name: Option<String>) {
        if let SpvMsg::GetHeaders { reply_to, .. }
        | SpvMsg::GetProofs { reply_to, .. }
        | SpvMsg::GetAddress { reply_to, .. }
        | SpvMsg::Faucet { reply_to, .. } = self
        {
            *reply_to = name;
        }
    }

    /// Whether it asks something (and so must be small).
    pub fn is_request(&self) -> bool {
        matches!(
            self,
            SpvMsg::GetHeaders { .. }
                | SpvMsg::GetProofs { .. }
                | SpvMsg::GetAddress { .. }
                | SpvMsg::Faucet { .. }
        )
    }

    pub fn encode(&self) -> Bytes {
        let mut out = SPV_TAG.to_vec();
        out.extend_from_slice(serde_json::to_string(self).unwrap_or_default().as_bytes());
        Bytes::from(out)
    }

    /// A request, for those that answer (nodes, the faucet): a frame
    /// larger than any request is an answer or junk and is not even
    /// parsed (`None`), nor is an answer kept.
    pub fn decode_request(payload: &[u8]) -> Result<Option<SpvMsg>, String> {
        if payload.len() > MAX_REQUEST {
            return Ok(None);
        }
        SpvMsg::decode(payload).map(|msg| msg.is_request().then_some(msg))
    }

    /// A payload's message, within the bounds above.
    pub fn decode(payload: &[u8]) -> Result<SpvMsg, String> {
        let body = payload.strip_prefix(SPV_TAG).ok_or("not an SPV frame")?;
        let msg: SpvMsg = serde_json::from_slice(body).map_err(|e| format!("SPV: {e}"))?;
        if msg.is_request() && payload.len() > MAX_REQUEST {
            return Err(format!(
                "SPV: a request of {} bytes (at most {MAX_REQUEST})",
                payload.len()
            ));
        }
        let too_many = match &msg {
            SpvMsg::GetHeaders { locator, .. } => locator.len() > MAX_LOCATOR,
            SpvMsg::Headers { headers, .. } => headers.len() > MAX_HEADERS,
            SpvMsg::Proofs { items, .. } => {
                items.len() > MAX_PROOF_ITEMS || items.iter().any(|i| i.path.len() > MAX_PATH)
            }
            _ => false,
        };
        if too_many || msg.id().len() > MAX_ID {
            return Err("SPV: more than a frame may carry".into());
        }
        Ok(msg)
    }
}

fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

fn unb64(text: &str, what: &str) -> Result<Vec<u8>, String> {
    B64.decode(text).map_err(|e| format!("{what}: {e}"))
}

fn hash_of(text: &str, what: &str) -> Result<Hash, String> {
    Hash::from_slice(&unb64(text, what)?).ok_or_else(|| format!("{what}: not a 64-byte hash"))
}

/// An address as `SPV ` frames write it (base64 of its PEM).
/// What the mint signs in a `granted` answer: the request's id, the value,
/// and the grant's id or why not, each field ended by NUL.
pub fn granted_claim(id: &str, value: i64, txn: Option<&str>, refused: Option<&str>) -> Vec<u8> {
    format!(
        "toycoin-granted\0{id}\0{value}\0{}\0{}\0",
        txn.unwrap_or(""),
        refused.unwrap_or("")
    )
    .into_bytes()
}

/// The claim a `granted` answer's signature covers ([`granted_claim`]).
fn claim_of(msg: &SpvMsg) -> Result<Vec<u8>, String> {
    match msg {
        SpvMsg::Granted {
            id,
            txn,
            value,
            refused,
            ..
        } => Ok(granted_claim(
            id,
            *value,
            txn.as_deref(),
            refused.as_deref(),
        )),
        _ => Err("not a granted answer".into()),
    }
}

/// Signs a `granted` answer with the mint's key (`mint`).
pub fn sign_granted(msg: &mut SpvMsg, mint: &crate::wallet::Wallet) -> Result<(), String> {
    let claim = claim_of(msg)?;
    let signature = mint
        .sign(&mut rand::thread_rng(), &claim)
        .map_err(|e| e.to_string())?;
    if let SpvMsg::Granted { mint: by, sig, .. } = msg {
        *by = Some(address_text(mint.address()));
        *sig = Some(B64.encode(signature));
    }
    Ok(())
}

/// Whether a `granted` answer is signed by the network's mint, whose
/// address hashes to `mint` (the network's, as [`Profile::mint`] holds
/// it); if not, why. A classmate's answer to someone else's request is
/// refused here.
pub fn check_granted(msg: &SpvMsg, mint: &Hash) -> Result<(), String> {
    let claim = claim_of(msg)?;
    let SpvMsg::Granted {
        mint: Some(by),
        sig: Some(sig),
        ..
    } = msg
    else {
        return Err("not signed by the mint".into());
    };
    let address = address_from_text(by)?;
    if Hash::of(&address) != *mint {
        return Err("not signed by the mint: signed by another key".into());
    }
    let sig = B64
        .decode(sig)
        .map_err(|_| "not signed by the mint: the signature is not base64".to_string())?;
    crate::wallet::verify(&address, &claim, &sig)
        .map_err(|_| "not signed by the mint: the signature does not verify".to_string())
}

pub fn address_text(address: &[u8]) -> String {
    b64(address)
}

/// An address from an `SPV ` frame.
pub fn address_from_text(text: &str) -> Result<crate::transaction::Address, String> {
    unb64(text, "address").map(Bytes::from)
}

/// A block hash from base64 (as in `SPV ` frames).
pub fn block_hash(text: &str) -> Result<BlockHash, String> {
    hash_of(text, "block hash").map(BlockHash::from_raw_hash)
}

/// A block hash as `SPV ` frames write it.
pub fn block_hash_text(hash: &BlockHash) -> String {
    b64(hash.as_ref())
}

impl HeaderWire {
    pub fn from_header(h: &BlockHeader) -> HeaderWire {
        HeaderWire {
            timestamp: b64(&h.timestamp),
            previous_hash: b64(h.previous_hash.as_ref()),
            nonce: b64(&h.nonce),
            merkle_root: b64(h.merkle_root.as_ref()),
            this_hash: b64(h.this_hash.as_ref()),
        }
    }

    pub fn to_header(&self) -> Result<BlockHeader, String> {
        Ok(BlockHeader {
            timestamp: Bytes::from(unb64(&self.timestamp, "timestamp")?),
            previous_hash: block_hash(&self.previous_hash)?,
            nonce: Bytes::from(unb64(&self.nonce, "nonce")?),
            merkle_root: MerkleRoot::from_slice(&unb64(&self.merkle_root, "merkle_root")?)
                .ok_or("merkle_root: wrong length")?,
            this_hash: block_hash(&self.this_hash)?,
        })
    }
}

impl ProofWire {
    /// The proof for `txn` at `height` in block `block` along `proof`.
    pub fn new(
        txn: &Transaction,
        height: usize,
        block: &BlockHash,
        proof: &MerkleProof,
    ) -> ProofWire {
        ProofWire {
            txn: transaction_to_json(txn),
            height: height as u64,
            block: block_hash_text(block),
            path: proof
                .steps
                .iter()
                .map(|s| StepWire {
                    sibling: s.sibling.map(|n| b64(n.as_bytes())),
                    right: s.path_is_right,
                })
                .collect(),
        }
    }

    /// The transaction, block and path it claims.
    pub fn open(&self) -> Result<(Transaction, BlockHash, MerkleProof), String> {
        let txn =
            transaction_from_json(&self.txn, "proved transaction").map_err(|e| e.to_string())?;
        let block = block_hash(&self.block)?;
        let steps = self
            .path
            .iter()
            .map(|s| {
                let sibling = match &s.sibling {
                    Some(t) => Some(
                        MerkleNode::from_slice(&unb64(t, "path")?).ok_or("path: wrong length")?,
                    ),
                    None => None,
                };
                Ok(ProofStep {
                    sibling,
                    path_is_right: s.right,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok((txn, block, MerkleProof { steps }))
    }
}

/// A transaction proved to be in the best header chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proved {
    pub txn: Transaction,
    pub txid: Txid,
    pub height: usize,
    pub block: BlockHash,
    /// Hashes in its Merkle path.
    pub path_len: usize,
}

#[derive(Clone, Debug)]
struct HeaderEntry {
    header: BlockHeader,
    total_work: u128,
}

/// Difficulty schedules kept, for the newest headers (a fork deeper than
/// this replays the schedule from genesis: rare, and linear in the chain).
pub const SCHEDULES_KEPT: usize = 128;

/// What [`HeaderChain::receive`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeadersTaken {
    /// The best chain grew (or switched to a branch with more work) to
    /// `height`; `switched_at`: the height of the first header replaced.
    Adopted {
        height: usize,
        switched_at: Option<usize>,
    },
    /// Every header is on our best chain already.
    Known,
    /// A branch with no more work than ours.
    Ignored,
    /// Its first header follows one we do not have.
    Orphan,
}

/// Block headers only: the best chain a light client knows. Per header it
/// keeps the header and the chain's work up to it; the difficulty
/// schedule only for the newest [`SCHEDULES_KEPT`].
#[derive(Clone, Debug)]
pub struct HeaderChain {
    profile: Profile,
    entries: Vec<HeaderEntry>,
    /// The schedules after the last `schedules.len()` entries, oldest first.
    schedules: VecDeque<Schedule>,
}

impl HeaderChain {
    pub fn new(profile: Profile) -> HeaderChain {
        HeaderChain {
            profile,
            entries: Vec::new(),
            schedules: VecDeque::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The network's rules the headers follow.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    pub fn tip_hash(&self) -> BlockHash {
        self.entries
            .last()
            .map_or(self.profile.genesis, |e| e.header.this_hash)
    }

    pub fn total_work(&self) -> u128 {
        self.entries.last().map_or(0, |e| e.total_work)
    }

    pub fn header(&self, height: usize) -> Option<&BlockHeader> {
        self.entries.get(height).map(|e| &e.header)
    }

    /// The height of `hash` on the best chain (searched from the tip:
    /// what is asked about is nearly always recent).
    pub fn height_of(&self, hash: &BlockHash) -> Option<usize> {
        self.entries
            .iter()
            .rposition(|e| e.header.this_hash == *hash)
    }

    /// The difficulty schedule after the first `len` headers: kept for
    /// the newest, replayed from genesis for older ones.
    fn schedule_at(&self, len: usize) -> Schedule {
        if len == 0 {
            return Schedule::default();
        }
        let first_kept = self.entries.len() - self.schedules.len();
        if len > first_kept {
            return self.schedules[len - 1 - first_kept];
        }
        let mut schedule = Schedule::default();
        for e in &self.entries[..len] {
            schedule = self.profile.advance(&schedule, self.timestamp(&e.header));
        }
        schedule
    }

    fn timestamp(&self, header: &BlockHeader) -> Option<u64> {
        if self.profile.checks_timestamps() {
            header.timestamp_secs()
        } else {
            None
        }
    }

    /// Bytes this chain holds in memory (headers and work per entry, the
    /// newest schedules), counted from what is allocated.
    pub fn heap_bytes(&self) -> usize {
        let header_bytes: usize = self
            .entries
            .iter()
            .map(|e| e.header.timestamp.len() + e.header.nonce.len())
            .sum();
        self.entries.capacity() * std::mem::size_of::<HeaderEntry>()
            + header_bytes
            + self.schedules.capacity() * std::mem::size_of::<Schedule>()
    }

    /// The best chain's [`locator`](crate::tree::locator), as a full
    /// node's, for [`SpvMsg::GetHeaders`].
    pub fn locator(&self) -> Vec<BlockHash> {
        crate::tree::locator(self.entries.len(), |i| self.entries[i].header.this_hash)
    }

    /// Takes headers in order (each after the one before): checked one by
    /// one from the header they follow; adopted when they make a chain
    /// with more work than ours. A header that fails is named by its
    /// index, and nothing changes.
    pub fn receive(
        &mut self,
        headers: &[BlockHeader],
        now: u64,
    ) -> Result<HeadersTaken, (usize, BlockError)> {
        let Some(first) = headers.first() else {
            return Ok(HeadersTaken::Known);
        };
        let start = if first.previous_hash == self.profile.genesis {
            0
        } else {
            match self.height_of(&first.previous_hash) {
                Some(h) => h + 1,
                None => return Ok(HeadersTaken::Orphan),
            }
        };
        // Skip what we already have on our chain.
        let mut skip = 0;
        while let (Some(h), Some(e)) = (headers.get(skip), self.entries.get(start + skip)) {
            if h.this_hash != e.header.this_hash {
                break;
            }
            skip += 1;
        }
        if skip == headers.len() {
            return Ok(HeadersTaken::Known);
        }
        let fork = start + skip;
        let (mut work, mut previous) = match fork.checked_sub(1) {
            Some(i) => (self.entries[i].total_work, self.entries[i].header.this_hash),
            None => (0, self.profile.genesis),
        };
        let mut schedule = self.schedule_at(fork);
        let mut branch = Vec::new();
        let mut schedules = Vec::new();
        for (i, header) in headers[skip..].iter().enumerate() {
            let info = check_header(&self.profile, previous, &schedule, header, now)
                .map_err(|e| (skip + i, e))?;
            work += self.profile.block_work(info.required_bits);
            schedule = self.profile.advance(&schedule, info.timestamp);
            previous = header.this_hash;
            branch.push(HeaderEntry {
                header: header.clone(),
                total_work: work,
            });
            schedules.push(schedule);
        }
        if work <= self.total_work() {
            return Ok(HeadersTaken::Ignored);
        }
        let switched_at = (fork < self.entries.len()).then_some(fork);
        // The schedules of the replaced headers go with them; those before
        // the fork that are kept stay.
        let first_kept = self.entries.len() - self.schedules.len();
        self.schedules.truncate(fork.saturating_sub(first_kept));
        self.entries.truncate(fork);
        self.entries.extend(branch);
        self.schedules.extend(schedules);
        while self.schedules.len() > SCHEDULES_KEPT {
            self.schedules.pop_front();
        }
        Ok(HeadersTaken::Adopted {
            height: self.entries.len() - 1,
            switched_at,
        })
    }

    /// Checks a node's proof: the block is the header at that height of
    /// our best chain and the path leads from the transaction to its
    /// Merkle root.
    pub fn verify(&self, item: &ProofWire) -> Result<Proved, String> {
        let (txn, block, proof) = item.open()?;
        let height = usize::try_from(item.height).map_err(|_| "height out of range")?;
        let header = self.header(height).ok_or_else(|| {
            format!(
                "block {height} is beyond our {} headers (or not on the chain with the most work)",
                self.len()
            )
        })?;
        if header.this_hash != block {
            return Err(format!(
                "block {} is not our block {height} ({}): not on the chain with the most work",
                block.short(),
                header.this_hash.short()
            ));
        }
        let txid = txn.hash();
        if !proof.verify(&txid, &header.merkle_root) {
            return Err(format!(
                "the Merkle path does not lead from transaction {} to block {height}'s root",
                txid.short()
            ));
        }
        Ok(Proved {
            txn,
            txid,
            height,
            block,
            path_len: proof.steps.len(),
        })
    }

    /// Blocks on top of and including `height`.
    pub fn confirmations(&self, height: usize) -> usize {
        self.entries.len().saturating_sub(height)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::Block;
    use crate::chain::{now_secs, Chain};
    use crate::wallet::Wallet;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn a_grant_counts_only_signed_by_the_networks_mint() {
        let mut rng = StdRng::seed_from_u64(9);
        let (mint, student) = (
            Wallet::generate(&mut rng).unwrap(),
            Wallet::generate(&mut rng).unwrap(),
        );
        let mint_hash = Hash::of(mint.address());
        let granted = || SpvMsg::Granted {
            id: "w-1".into(),
            txn: Some("ab".repeat(64)),
            value: 50,
            refused: None,
            mint: None,
            sig: None,
        };
        let unsigned = granted();
        assert!(check_granted(&unsigned, &mint_hash).is_err());
        let mut signed = granted();
        sign_granted(&mut signed, &mint).unwrap();
        assert_eq!(check_granted(&signed, &mint_hash), Ok(()));
        // It reads back, and a rewritten value no longer verifies.
        let back = SpvMsg::decode(&signed.encode()).unwrap();
        assert_eq!(check_granted(&back, &mint_hash), Ok(()));
        if let SpvMsg::Granted { value, .. } = &mut signed {
            *value = 1_000_000;
        }
        assert!(check_granted(&signed, &mint_hash).is_err());
        let mut by_student = granted();
        sign_granted(&mut by_student, &student).unwrap();
        let why = check_granted(&by_student, &mint_hash).unwrap_err();
        assert!(why.contains("another key"), "{why}");
    }

    /// A steady chain of `n` blocks stamped 15 s apart (the bits fall to
    /// their floor), block 3 holding a grant to `to`.
    /// The steady network whose mint is `mint`.
    fn network(mint: &Wallet) -> Profile {
        crate::network::Network::steady(5.0, Some(mint.address().clone())).profile()
    }

    fn chain(n: usize, mint: &Wallet, to: &Wallet) -> (Chain, Vec<Block>, u64) {
        let profile = network(mint);
        let mut chain = Chain::new(profile);
        let start = now_secs() - 15 * (n as u64 + 1);
        let now = now_secs();
        let mut rng = StdRng::seed_from_u64(1);
        let mut blocks = Vec::new();
        for i in 0..n {
            let txns = if i == 3 {
                vec![mint.grant(&mut rng, to.address(), 40).expect("grant")]
            } else {
                Vec::new()
            };
            let block = chain
                .mine_next(
                    &crate::address::example(b"miner"),
                    txns,
                    start + 15 * i as u64,
                )
                .expect("mined");
            chain.push(block.clone(), now).expect("valid");
            blocks.push(block);
        }
        (chain, blocks, now)
    }

    fn keys() -> (Wallet, Wallet) {
        let mut rng = StdRng::seed_from_u64(9);
        (
            Wallet::generate(&mut rng).expect("key"),
            Wallet::generate(&mut rng).expect("key"),
        )
    }

    #[test]
    fn headers_alone_prove_a_transaction_and_a_lie_is_caught() {
        let (mint, me) = keys();
        let (_, blocks, now) = chain(12, &mint, &me);
        let headers: Vec<BlockHeader> = blocks.iter().map(|b| b.header.clone()).collect();
        let mut light = HeaderChain::new(network(&mint));
        // Through the wire and back.
        let wire: Vec<HeaderWire> = headers.iter().map(HeaderWire::from_header).collect();
        let back: Vec<BlockHeader> = wire
            .iter()
            .map(|w| w.to_header().expect("header"))
            .collect();
        assert_eq!(
            light.receive(&back, now),
            Ok(HeadersTaken::Adopted {
                height: 11,
                switched_at: None
            })
        );
        assert_eq!(light.receive(&back[..5], now), Ok(HeadersTaken::Known));

        let block = &blocks[3];
        let grant = &block.txns[1];
        let proof = block.merkle_proof(&grant.hash()).expect("in the block");
        let item = ProofWire::new(grant, 3, &block.header.this_hash, &proof);
        let proved = light.verify(&item).expect("proved");
        assert_eq!((proved.height, light.confirmations(3)), (3, 9));
        assert_eq!(proved.txn, *grant);
        assert_eq!(proved.path_len, proof.steps.len());

        // A wrong path: one sibling changed.
        let mut bad = item.clone();
        bad.path[0].sibling = Some(b64(&[7u8; crate::merkle::LABEL_LEN]));
        assert!(light
            .verify(&bad)
            .expect_err("wrong path")
            .contains("Merkle path"));
        // The right path, another block named.
        let mut bad = item.clone();
        bad.block = block_hash_text(&blocks[4].header.this_hash);
        assert!(light
            .verify(&bad)
            .expect_err("wrong block")
            .contains("not our block 3"));
        // A block we do not have.
        let mut bad = item.clone();
        bad.height = 40;
        assert!(light
            .verify(&bad)
            .expect_err("beyond")
            .contains("beyond our 12 headers"));
        // A transaction that is not in the block, with the grant's path.
        let mut bad = item;
        bad.txn = transaction_to_json(&blocks[5].txns[0]);
        assert!(light.verify(&bad).is_err());
    }

    #[test]
    fn a_header_chain_with_too_little_work_is_refused_or_ignored() {
        let (mint, me) = keys();
        let (_, blocks, now) = chain(8, &mint, &me);
        let headers: Vec<BlockHeader> = blocks.iter().map(|b| b.header.clone()).collect();
        let mut light = HeaderChain::new(network(&mint));
        light.receive(&headers, now).expect("valid");
        // A header whose hash is right but whose work is not: refused,
        // named by its index, nothing changed.
        let mut weak = headers[7].clone();
        for nonce in 0u64.. {
            weak.nonce = Bytes::from(nonce.to_string());
            weak.this_hash = weak.compute_hash();
            if weak.this_hash.leading_zero_bits() == 0 {
                break;
            }
        }
        let err = light.receive(&[weak], now).expect_err("too little work");
        assert_eq!(err.0, 0);
        assert!(
            matches!(err.1, BlockError::InsufficientWork { .. }),
            "{:?}",
            err.1
        );
        assert_eq!(light.tip_hash(), headers[7].this_hash);
        // A valid branch with less work: ignored.
        let (_, other, _) = chain(3, &mint, &me);
        let short: Vec<BlockHeader> = other.iter().map(|b| b.header.clone()).collect();
        assert_eq!(light.receive(&short, now), Ok(HeadersTaken::Ignored));
        assert_eq!(light.len(), 8);
        // Headers after one we do not have.
        assert_eq!(light.receive(&short[1..], now), Ok(HeadersTaken::Orphan));
    }

    /// A fork deeper than the schedules kept: the schedule at the fork is
    /// replayed from genesis, every header of the heavier branch checks,
    /// and the branch is adopted.
    #[test]
    fn a_fork_below_the_kept_schedules_replays_them_and_switches() {
        let profile = Profile::steady(5.0);
        let now = now_secs();
        let start = now - 15 * 400;
        let mine = |chain: &mut Chain, from: usize, to: usize, miner: &'static [u8]| {
            let mut out = Vec::new();
            for i in from..to {
                let b = chain
                    .mine_next(
                        &crate::address::example(miner),
                        Vec::new(),
                        start + 15 * i as u64,
                    )
                    .expect("mined");
                chain.push(b.clone(), now).expect("valid");
                out.push(b.header);
            }
            out
        };
        let mut main = Chain::new(profile);
        let ours = mine(&mut main, 0, SCHEDULES_KEPT + 40, b"a");
        let mut other = Chain::new(profile);
        for b in main.blocks().take(10) {
            other.push(b.into_owned(), now).expect("valid");
        }
        let theirs = mine(&mut other, 10, SCHEDULES_KEPT + 60, b"b");
        let mut light = HeaderChain::new(profile);
        light.receive(&ours, now).expect("valid");
        assert_eq!(light.schedules.len(), SCHEDULES_KEPT);
        assert_eq!(
            light.receive(&theirs, now),
            Ok(HeadersTaken::Adopted {
                height: SCHEDULES_KEPT + 59,
                switched_at: Some(10)
            })
        );
        assert_eq!(light.tip_hash(), other.tip_hash());
        assert_eq!(light.total_work(), other.total_work());
        assert_eq!(light.schedule_at(light.len()), other.schedule());
        assert_eq!(light.schedule_at(50), other.state_at(50).1);
    }

    #[test]
    fn frames_round_trip_and_oversized_ones_are_refused() {
        let msg = SpvMsg::GetProofs {
            id: "w-1".into(),
            address: b64(b"me"),
            reply_to: Some("w-me".into()),
        };
        assert_eq!(SpvMsg::decode(&msg.encode()), Ok(msg));
        let big = SpvMsg::GetHeaders {
            id: "w-2".into(),
            locator: vec![b64(&[0u8; 64]); MAX_LOCATOR + 1],
            reply_to: None,
        };
        assert!(SpvMsg::decode(&big.encode()).is_err());
        let huge = SpvMsg::Faucet {
            id: "w-3".into(),
            address: "A".repeat(MAX_REQUEST),
            reply_to: None,
        };
        assert!(SpvMsg::decode(&huge.encode())
            .expect_err("too big")
            .contains("request of"));
        assert!(SpvMsg::decode(b"SPV {\"kind\":\"nope\"}").is_err());
        // Those that answer parse no frame larger than a request, and keep
        // no answer.
        assert_eq!(SpvMsg::decode_request(&huge.encode()), Ok(None));
        let mut junk = SPV_TAG.to_vec();
        junk.resize(MAX_REQUEST + 1, b'x');
        assert_eq!(SpvMsg::decode_request(&junk), Ok(None));
        let answer = SpvMsg::Headers {
            id: "w-4".into(),
            headers: Vec::new(),
        };
        assert_eq!(SpvMsg::decode_request(&answer.encode()), Ok(None));
        let ask = SpvMsg::GetAddress {
            id: "w-5".into(),
            fingerprint: "1a2b3c4d".into(),
            reply_to: None,
        };
        assert_eq!(SpvMsg::decode_request(&ask.encode()), Ok(Some(ask)));
    }
}
