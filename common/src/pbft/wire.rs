//! pBFT on the wire: the replicas and their keys, the signed messages, and
//! the batches (blocks) the primary orders.
//!
//! A payload is the tag `PBFT` then `{"body": BODY, "sig": SIG}`: `BODY` is
//! the JSON text `{"replica": i, "msg": {"kind": ..., ...}}`, and `SIG` the
//! base64 RSA-PSS signature (as the wallets sign) of `toycoin-pbft:` then
//! `BODY`'s bytes, by replica `i`'s key. What is signed is the text as
//! sent, so nothing depends on JSON being written one way. The message
//! kinds are in [`Msg`]; `docs/pbft.md` shows each.

use std::path::Path;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::block::MAX_BLOCK_TXNS;
use crate::hash::{Hash, Txid};
use crate::message::{transaction_from_json, transaction_to_json};
use crate::transaction::{Address, Transaction};
use crate::wallet::{self, fingerprint, Wallet};

/// Tag of a pBFT payload.
pub const PBFT_TAG: &[u8; 4] = b"PBFT";
/// Most replicas a network may have (n = 3f + 1 up to f = 21).
pub const MAX_REPLICAS: usize = 64;
/// What every signature covers first, so that a pBFT signature is never
/// also a transaction's.
const DOMAIN: &[u8] = b"toycoin-pbft:";

/// Why a pBFT message was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PbftError {
    #[error("not a pBFT message: {0}")]
    Malformed(String),
    #[error("replica {0} is not one of the {1} replicas")]
    UnknownReplica(usize, usize),
    #[error("signature of replica {0} does not verify")]
    BadSignature(usize),
    #[error("{0}")]
    Refused(String),
}

impl PbftError {
    /// Whether the message's bytes alone fix this refusal (not the
    /// replica's state): the same bytes will be refused again.
    pub fn is_fixed_by_bytes(&self) -> bool {
        !matches!(self, PbftError::Refused(_))
    }
}

/// One replica: its name (for the teacher's `$to:` and people) and its
/// wallet's address (the key its messages are signed with).
#[derive(Clone, Debug)]
pub struct Member {
    pub name: String,
    pub address: Address,
    key: std::sync::Arc<wallet::PublicKey>,
}

/// The replicas, in order: replica `i` is primary of views `i`, `i + n`,
/// ... Fixed at start-up from the replicas file.
#[derive(Clone, Debug)]
pub struct Membership {
    members: Vec<Member>,
}

impl Membership {
    /// The replicas named and keyed so, in this order.
    pub fn new(members: Vec<(String, Address)>) -> Result<Membership, String> {
        if members.is_empty() || members.len() > MAX_REPLICAS {
            return Err(format!(
                "{} replicas: between 1 and {MAX_REPLICAS} are needed (n = 3f + 1)",
                members.len()
            ));
        }
        let mut out = Vec::with_capacity(members.len());
        for (i, (name, address)) in members.into_iter().enumerate() {
            crate::control::check_name(&name).map_err(|e| format!("replica {i}: {e}"))?;
            let key =
                wallet::public_key(&address).map_err(|e| format!("replica {i} ({name}): {e}"))?;
            if out.iter().any(|m: &Member| m.name == name) {
                return Err(format!("replica name {name} given twice"));
            }
            if out.iter().any(|m: &Member| m.address == address) {
                return Err(format!("replica {name}: the same key as another replica"));
            }
            out.push(Member { name, address, key });
        }
        Ok(Membership { members: out })
    }

    /// Reads a replicas file: one replica a line, `NAME FINGERPRINT
    /// ADDRESS` (the address as base64 of its PEM); `#` starts a comment.
    pub fn parse(text: &str) -> Result<Membership, String> {
        let mut members = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [name, print, address] = fields[..] else {
                return Err(format!(
                    "line {}: expected NAME FINGERPRINT ADDRESS, got {} fields",
                    n + 1,
                    fields.len()
                ));
            };
            let address = B64
                .decode(address)
                .map_err(|e| format!("line {}: address: {e}", n + 1))?;
            if fingerprint(&address) != print {
                return Err(format!(
                    "line {}: {name}'s address has fingerprint {}, not {print}",
                    n + 1,
                    fingerprint(&address)
                ));
            }
            members.push((name.to_owned(), Bytes::from(address)));
        }
        Membership::new(members)
    }

    /// The replicas file's text for this membership.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "# toycoin pBFT replicas: n = {}, f = {}. One a line: NAME FINGERPRINT ADDRESS (base64 of the PEM public key).\n",
            self.n(),
            self.f()
        );
        for m in &self.members {
            out.push_str(&format!(
                "{} {} {}\n",
                m.name,
                fingerprint(&m.address),
                B64.encode(&m.address)
            ));
        }
        out
    }

    /// Reads the replicas file at `path`.
    pub fn load(path: &Path) -> Result<Membership, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read replicas file {}: {e}", path.display()))?;
        Membership::parse(&text).map_err(|e| format!("replicas file {}: {e}", path.display()))
    }

    /// Replicas.
    pub fn n(&self) -> usize {
        self.members.len()
    }

    /// Faulty replicas tolerated: the largest f with 3f + 1 <= n.
    pub fn f(&self) -> usize {
        (self.n() - 1) / 3
    }

    /// Matching messages that make a certificate: 2f + 1.
    pub fn quorum(&self) -> usize {
        2 * self.f() + 1
    }

    /// Matching replies a client needs: f + 1 (one at least is honest).
    pub fn weak(&self) -> usize {
        self.f() + 1
    }

    /// The primary of `view`: view mod n.
    pub fn primary(&self, view: u64) -> usize {
        (view % self.n() as u64) as usize
    }

    pub fn member(&self, i: usize) -> Option<&Member> {
        self.members.get(i)
    }

    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// The replica whose key `address` is.
    pub fn index_of(&self, address: &[u8]) -> Option<usize> {
        self.members.iter().position(|m| m.address == address)
    }

    /// Replica `i`'s name, or `#i` for one that is not.
    pub fn name(&self, i: usize) -> String {
        self.members
            .get(i)
            .map_or_else(|| format!("#{i}"), |m| m.name.clone())
    }

    /// Checks `wire`'s signature with its replica's key, and gives the
    /// message.
    pub fn verify(&self, wire: &SignedWire) -> Result<(usize, Msg), PbftError> {
        let (replica, msg) = wire.open()?;
        self.check_signature(replica, wire)?;
        Ok((replica, msg))
    }

    /// Checks that `wire` was signed by replica `replica`.
    pub fn check_signature(&self, replica: usize, wire: &SignedWire) -> Result<(), PbftError> {
        let member = self
            .members
            .get(replica)
            .ok_or(PbftError::UnknownReplica(replica, self.n()))?;
        let sig = B64
            .decode(&wire.sig)
            .map_err(|_| PbftError::BadSignature(replica))?;
        let mut signed = DOMAIN.to_vec();
        signed.extend_from_slice(wire.body.as_bytes());
        wallet::verify_with(&member.key, &signed, &sig)
            .map_err(|_| PbftError::BadSignature(replica))
    }
}

/// A signed message as sent: its body's text and the signature over it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedWire {
    pub body: String,
    pub sig: String,
}

#[derive(Serialize, Deserialize)]
struct Body {
    replica: usize,
    msg: Msg,
}

impl SignedWire {
    /// Signs `msg` as replica `replica` with `wallet`.
    pub fn sign(wallet: &Wallet, replica: usize, msg: Msg) -> SignedWire {
        let body = serde_json::to_string(&Body { replica, msg }).unwrap_or_default();
        let mut signed = DOMAIN.to_vec();
        signed.extend_from_slice(body.as_bytes());
        let sig = wallet
            .sign(&mut rand::thread_rng(), &signed)
            .map(|s| B64.encode(s))
            .unwrap_or_default();
        SignedWire { body, sig }
    }

    /// The replica and message it says it is, not yet checked.
    pub fn open(&self) -> Result<(usize, Msg), PbftError> {
        let body: Body = serde_json::from_str(&self.body)
            .map_err(|e| PbftError::Malformed(format!("body: {e}")))?;
        Ok((body.replica, body.msg))
    }

    /// The payload that carries it.
    pub fn encode(&self) -> Bytes {
        let mut out = PBFT_TAG.to_vec();
        out.extend_from_slice(serde_json::to_string(self).unwrap_or_default().as_bytes());
        Bytes::from(out)
    }

    /// A payload's signed message.
    pub fn decode(payload: &[u8]) -> Result<SignedWire, PbftError> {
        let body = payload
            .strip_prefix(PBFT_TAG)
            .ok_or_else(|| PbftError::Malformed("no PBFT tag".into()))?;
        serde_json::from_slice(body).map_err(|e| PbftError::Malformed(e.to_string()))
    }
}

/// A prepared certificate: a pre-prepare and 2f matching prepares from
/// other replicas, all signed (the paper's P set entry).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertWire {
    pub pre_prepare: SignedWire,
    pub prepares: Vec<SignedWire>,
}

/// A committed batch with its proof: the pre-prepare that ordered it and
/// 2f+1 matching commits, all signed (what a replica that fell behind
/// fetches).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommittedWire {
    pub pre_prepare: SignedWire,
    pub commits: Vec<SignedWire>,
}

/// The messages, as the paper names them. Hashes are hex SHA-512.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Msg {
    /// The primary assigns sequence number `seq` to `batch` (its JSON text)
    /// in `view`; `digest` is the batch's hash.
    PrePrepare {
        view: u64,
        seq: u64,
        digest: String,
        batch: String,
    },
    Prepare {
        view: u64,
        seq: u64,
        digest: String,
    },
    Commit {
        view: u64,
        seq: u64,
        digest: String,
    },
    /// The state after executing every batch up to `seq` (a multiple of
    /// the checkpoint interval).
    Checkpoint {
        seq: u64,
        state: String,
    },
    /// "Move to `view`": the last stable checkpoint `stable` with its 2f+1
    /// signed checkpoints, and a prepared certificate for every sequence
    /// number above it that this replica prepared.
    ViewChange {
        view: u64,
        stable: u64,
        proof: Vec<SignedWire>,
        prepared: Vec<CertWire>,
    },
    /// The new primary's 2f+1 view changes and the pre-prepares it
    /// derives from them (the paper's V and O).
    NewView {
        view: u64,
        view_changes: Vec<SignedWire>,
        pre_prepares: Vec<SignedWire>,
    },
    /// A replica that fell behind asks for the committed batches after
    /// `after` (state transfer, done here by replaying batches).
    Fetch {
        after: u64,
    },
    /// The answer, to that replica alone: committed batches in order, each
    /// with its proof.
    Committed {
        items: Vec<CommittedWire>,
    },
    /// To the client (the oracle): batch `seq` executed, and which of its
    /// transactions it applied.
    Reply {
        view: u64,
        seq: u64,
        digest: String,
        txns: Vec<String>,
    },
}

impl Msg {
    /// The kind's name, as on the wire.
    pub fn kind(&self) -> &'static str {
        match self {
            Msg::PrePrepare { .. } => "pre-prepare",
            Msg::Prepare { .. } => "prepare",
            Msg::Commit { .. } => "commit",
            Msg::Checkpoint { .. } => "checkpoint",
            Msg::ViewChange { .. } => "view-change",
            Msg::NewView { .. } => "new-view",
            Msg::Fetch { .. } => "fetch",
            Msg::Committed { .. } => "committed",
            Msg::Reply { .. } => "reply",
        }
    }
}

/// A hex SHA-512 from a message.
pub fn parse_hash(hex_text: &str) -> Result<Hash, PbftError> {
    hex::decode(hex_text)
        .ok()
        .and_then(|b| Hash::from_slice(&b))
        .ok_or_else(|| PbftError::Malformed(format!("not a hex SHA-512: {:.20}", hex_text)))
}

/// A batch of transactions the primary orders: the pBFT block. Its JSON
/// text is an array of transactions as a `BLOC` writes them; its digest
/// the SHA-512 of that text. An empty batch is the paper's null request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    pub json: String,
    pub digest: Hash,
    pub txns: Vec<Transaction>,
}

impl Batch {
    pub fn new(txns: Vec<Transaction>) -> Batch {
        let texts: Vec<String> = txns.iter().map(transaction_to_json).collect();
        let json = serde_json::to_string(&texts).unwrap_or_default();
        Batch {
            digest: Hash::of(json.as_bytes()),
            json,
            txns,
        }
    }

    /// A batch from its JSON text: at most [`MAX_BLOCK_TXNS`]
    /// transactions, each well formed, none twice.
    pub fn parse(json: &str) -> Result<Batch, PbftError> {
        let texts: Vec<String> =
            serde_json::from_str(json).map_err(|e| PbftError::Malformed(format!("batch: {e}")))?;
        if texts.len() > MAX_BLOCK_TXNS {
            return Err(PbftError::Refused(format!(
                "batch of {} transactions: at most {MAX_BLOCK_TXNS}",
                texts.len()
            )));
        }
        let txns = texts
            .iter()
            .enumerate()
            .map(|(i, t)| transaction_from_json(t, &format!("batch transaction {i}")))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| PbftError::Malformed(e.to_string()))?;
        let ids: std::collections::HashSet<Txid> = txns.iter().map(Transaction::hash).collect();
        if ids.len() != txns.len() {
            return Err(PbftError::Refused("batch lists a transaction twice".into()));
        }
        Ok(Batch {
            digest: Hash::of(json.as_bytes()),
            json: json.to_owned(),
            txns,
        })
    }
}
