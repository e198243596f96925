//! toycoin-listener: shows every frame on a relay topic, for people (text,
//! as the original, or `--brief`, one line each) or for scripts (`--json`,
//! one object per line).
//!
//! Beyond the original it keeps its own view of the best chain across
//! `BLOC` frames (a [`Follower`]), so its summary line describes the whole
//! chain even when a `BLOC` carries only new blocks, and it says what each
//! `BLOC` did: extend the tip, start a side branch, switch the best chain,
//! nothing, or fail (naming the block and the reason).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::Bytes;
use serde_json::{json, Value};
use toycoin_common::block::Block;
use toycoin_common::chain::ChainError;
use toycoin_common::follow::Follower;
use toycoin_common::hash::Hash;
use toycoin_common::ledger::{check_transaction, Overlay};
use toycoin_common::message::{GetBlocks, Message, TxnMessage};
use toycoin_common::profile::Profile;
use toycoin_common::transaction::{Token, Transaction};
use toycoin_common::tree::Received;

/// Most pending transactions remembered to judge chained spends.
const MAX_SEEN_PENDING: usize = 10_000;

/// How frames are shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A readable block of text per frame (as the original).
    Text,
    /// One line per frame.
    Brief,
    /// One JSON object per line per frame.
    Json,
}

/// What a listener shows for one frame.
#[derive(Debug)]
pub struct Shown {
    /// The text to print (one or more lines, no trailing newline).
    pub text: String,
    /// A catch-up request to publish, if blocks are missing.
    pub request: Option<Bytes>,
}

/// A listener's state: its view of the chain and how it shows frames.
#[derive(Debug)]
pub struct Listener {
    follower: Follower,
    pending: Overlay,
    mode: Mode,
    color: bool,
}

/// `"LS0tLS1CRU..."`: the first 10 base64 characters of `bytes`, as the
/// original prints bytes.
pub fn abbrev(bytes: &[u8]) -> String {
    let full = B64.encode(bytes);
    if full.len() > 10 {
        format!("\"{}...\"", &full[..10])
    } else {
        format!("\"{full}\"")
    }
}

fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

/// What a BLOC did to the best chain, in words and as a JSON tag.
struct Effect {
    tag: &'static str,
    words: String,
    valid: bool,
    error: Option<String>,
    reorg: Option<Value>,
}

impl Listener {
    pub fn new(profile: Profile, mode: Mode, color: bool) -> Listener {
        let id = format!(
            "listener-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        Listener {
            follower: Follower::new(profile, id),
            pending: Overlay::new(),
            mode,
            color,
        }
    }

    pub fn follower(&self) -> &Follower {
        &self.follower
    }

    /// A `GETB` to send on connecting (steady profile), to learn the chain.
    pub fn initial_request(&mut self) -> Option<Bytes> {
        self.follower.request(true)
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    fn yes_no(&self, valid: bool) -> String {
        if valid {
            self.paint("32", "True")
        } else {
            self.paint("1;31", "False")
        }
    }

    /// Decodes and shows one frame; `now` is the Unix time in seconds.
    pub fn handle(&mut self, payload: &[u8], now: u64) -> Shown {
        match Message::decode(payload) {
            Ok(Message::Txn(m)) => Shown {
                text: self.show_txn(&m),
                request: None,
            },
            Ok(Message::Bloc(blocks)) => self.show_bloc(blocks, now),
            Ok(Message::GetBlocks(request)) => Shown {
                text: self.show_getb(&request),
                request: None,
            },
            Err(e) => {
                let tag = payload
                    .get(..4)
                    .map(|t| String::from_utf8_lossy(t).trim().to_owned())
                    .unwrap_or_default();
                let text = match self.mode {
                    Mode::Json => json!({
                        "type": if tag.is_empty() { "unknown".to_owned() } else { tag },
                        "valid": false,
                        "error": e.to_string(),
                        "bytes": payload.len(),
                    })
                    .to_string(),
                    _ => self.paint(
                        "33",
                        &format!("Could not decode a frame of {} bytes: {e}", payload.len()),
                    ),
                };
                Shown {
                    text,
                    request: None,
                }
            }
        }
    }

    fn check_txn(&mut self, m: &TxnMessage) -> (Hash, Result<(), String>) {
        let hash = m.txn.hash();
        let ledger = self.follower.tree().chain().ledger();
        if self.pending.len() >= MAX_SEEN_PENDING {
            self.pending.clear();
        }
        let result = check_transaction(&self.pending.view(ledger), &m.txn, hash, Some(&m.tokens));
        match result {
            Ok(checked) => {
                self.pending.apply(ledger, &m.txn, &checked);
                (hash, Ok(()))
            }
            Err(e) => (hash, Err(e.to_string())),
        }
    }

    fn show_txn(&mut self, m: &TxnMessage) -> String {
        let (hash, verdict) = self.check_txn(m);
        let t = &m.txn;
        match self.mode {
            Mode::Json => json!({
                "type": "TXN",
                "valid": verdict.is_ok(),
                "error": verdict.err(),
                "hash": hash.to_hex(),
                "tokens": m.tokens.iter().map(token_json).collect::<Vec<_>>(),
                "txn": txn_json(t),
            })
            .to_string(),
            Mode::Brief => {
                let what = if t.is_coinbase() {
                    format!("funding of {} to {}", t.receiver_value, abbrev(&t.receiver))
                } else {
                    format!(
                        "{} from {} to {} (change {})",
                        t.receiver_value,
                        abbrev(&t.sender),
                        abbrev(&t.receiver),
                        t.sender_change
                    )
                };
                let verdict = match verdict {
                    Ok(()) => String::new(),
                    Err(e) => format!(" {}", self.paint("1;31", &format!("INVALID: {e}"))),
                };
                format!(
                    "{} {} {what}{verdict}",
                    self.paint("36", "TXN "),
                    hash.short()
                )
            }
            Mode::Text => {
                let mut out = format!(
                    "{} {}  Valid: {}",
                    self.paint("1;36", "TXN"),
                    hash.short(),
                    self.yes_no(verdict.is_ok())
                );
                if let Err(e) = verdict {
                    out.push_str(&format!(" ({e})"));
                }
                out.push_str("\n  Tokens:");
                if m.tokens.is_empty() {
                    out.push_str(" none (a coinbase funding)");
                }
                for tok in &m.tokens {
                    out.push_str(&format!("\n    {}", token_text(tok)));
                }
                out.push_str(&format!("\n  Transaction:\n    {}", txn_text(t)));
                out
            }
        }
    }

    fn effect(&self, result: &Result<Received, ChainError>, count: usize) -> Effect {
        let ok = |tag, words: String| Effect {
            tag,
            words,
            valid: true,
            error: None,
            reorg: None,
        };
        match result {
            Ok(Received::Known) => ok("known", format!("nothing new ({count} blocks known)")),
            Ok(Received::Adopted(a)) if !a.is_reorganization() => ok(
                "extends",
                format!(
                    "extends the best chain by {} to height {}",
                    a.added,
                    a.fork_height + a.added - 1
                ),
            ),
            Ok(Received::Adopted(a)) => {
                let returned: usize = a.rolled_back.iter().map(|b| b.txns.len()).sum();
                Effect {
                    tag: "switch",
                    words: self.paint(
                        "1;35",
                        &format!(
                            "SWITCHES the best chain: fork at height {}, {} blocks rolled back, {} added, {returned} transactions returned to the pools",
                            a.fork_height,
                            a.rolled_back.len(),
                            a.added
                        ),
                    ),
                    valid: true,
                    error: None,
                    reorg: Some(json!({
                        "fork_height": a.fork_height,
                        "rolled_back": a.rolled_back.len(),
                        "added": a.added,
                        "returned_txns": returned,
                        "old_tip": a.old_tip.to_hex(),
                    })),
                }
            }
            Ok(Received::SideBranch {
                fork_height,
                length,
                ..
            }) => ok(
                "fork",
                self.paint(
                    "35",
                    &format!(
                        "starts or grows a fork: side branch of {length} blocks from height {fork_height}, not (yet) better"
                    ),
                ),
            ),
            Ok(Received::Orphan { missing }) => ok(
                "orphan",
                format!(
                    "follows {}, which this listener has not seen (asking for missed blocks)",
                    missing.short()
                ),
            ),
            Err(e) => Effect {
                tag: "invalid",
                words: self.paint("1;31", &format!("INVALID: block {}: {}", e.index, e.error)),
                valid: false,
                error: Some(format!("block {}: {}", e.index, e.error)),
                reorg: None,
            },
        }
    }

    fn show_bloc(&mut self, blocks: Vec<Block>, now: u64) -> Shown {
        let count = blocks.len();
        let shown = blocks.clone();
        let (result, request) = self.follower.receive(blocks, now);
        if matches!(&result, Ok(Received::Adopted(a)) if a.is_reorganization()) {
            self.pending.clear();
        }
        let effect = self.effect(&result, count);
        let chain = self.follower.tree().chain();
        let total_txns = chain.total_block_txns();
        let first_height = shown.first().and_then(|b| {
            if b.header.previous_hash == *toycoin_common::hash::GENESIS {
                Some(0)
            } else {
                self.follower
                    .tree()
                    .chain()
                    .height_of(&b.header.previous_hash)
                    .map(|h| h + 1)
            }
        });
        let text = match self.mode {
            Mode::Json => json!({
                "type": "BLOC",
                "valid": effect.valid,
                "error": effect.error,
                "effect": effect.tag,
                "reorg": effect.reorg,
                "blocks": shown.iter().enumerate().map(|(i, b)| {
                    block_json(b, first_height.map(|h| h + i))
                }).collect::<Vec<_>>(),
                "chain": {
                    "blocks": chain.len(),
                    "total_txns": total_txns,
                    "tip": chain.tip_hash().to_hex(),
                    "work": chain.total_work().to_string(),
                },
            })
            .to_string(),
            Mode::Brief => format!(
                "{} {count} block{}: {} | chain: {} blocks, {} txns, tip {}",
                self.paint("33", "BLOC"),
                if count == 1 { "" } else { "s" },
                effect.words,
                chain.len(),
                total_txns,
                chain.tip_hash().short()
            ),
            Mode::Text => {
                let mut out = format!(
                    "{} of {count} block{}: {}\nBlocks: {} | Total Txns: {} | Valid: {}",
                    self.paint("1;33", "BLOC"),
                    if count == 1 { "" } else { "s" },
                    effect.words,
                    chain.len(),
                    total_txns,
                    self.yes_no(effect.valid)
                );
                for (i, b) in shown.iter().enumerate() {
                    let h = &b.header;
                    let height =
                        first_height.map_or_else(|| "?".to_owned(), |x| (x + i).to_string());
                    out.push_str(&format!(
                        "\n  Block {height} {}\n    Header: timestamp {}, previous_hash {}, nonce {}, merkle_root {}, this_hash {}\n    Txns:",
                        h.this_hash.short(),
                        String::from_utf8_lossy(&h.timestamp),
                        abbrev(h.previous_hash.as_ref()),
                        abbrev(&h.nonce),
                        abbrev(h.merkle_root.as_ref()),
                        abbrev(h.this_hash.as_ref()),
                    ));
                    for t in &b.txns {
                        let prev: Vec<String> = t
                            .previous_hashes
                            .iter()
                            .map(|p| abbrev(p.as_ref()))
                            .collect();
                        out.push_str(&format!(
                            "\n      [{}] -> {}",
                            prev.join(", "),
                            abbrev(t.hash().as_ref())
                        ));
                    }
                }
                out
            }
        };
        Shown { text, request }
    }

    fn show_getb(&self, request: &GetBlocks) -> String {
        let own = self.follower.is_own_request(request);
        match self.mode {
            Mode::Json => json!({
                "type": "GETB",
                "valid": true,
                "own": own,
                "id": request.id,
                "locator": request.locator.iter().map(|h| h.to_hex()).collect::<Vec<_>>(),
            })
            .to_string(),
            _ => {
                let whose = if own { " (this listener's)" } else { "" };
                format!(
                    "{} catch-up request {}{whose}: blocks after {}",
                    self.paint("34", "GETB"),
                    request.id,
                    request
                        .locator
                        .first()
                        .map_or_else(|| "genesis".to_owned(), |h| h.short())
                )
            }
        }
    }
}

fn token_json(t: &Token) -> Value {
    json!({
        "txn_hash": t.txn_hash.to_hex(),
        "owner": b64(&t.owner),
        "value": t.value,
        "signature": b64(&t.signature),
    })
}

fn txn_json(t: &Transaction) -> Value {
    json!({
        "previous_hashes": t.previous_hashes.iter().map(|h| h.to_hex()).collect::<Vec<_>>(),
        "receiver": b64(&t.receiver),
        "receiver_value": t.receiver_value,
        "receiver_signature": b64(&t.receiver_signature),
        "sender": b64(&t.sender),
        "sender_change": t.sender_change,
        "sender_signature": b64(&t.sender_signature),
    })
}

fn block_json(b: &Block, height: Option<usize>) -> Value {
    let h = &b.header;
    json!({
        "height": height,
        "header": {
            "timestamp": String::from_utf8_lossy(&h.timestamp),
            "previous_hash": h.previous_hash.to_hex(),
            "nonce": String::from_utf8_lossy(&h.nonce),
            "merkle_root": b64(h.merkle_root.as_ref()),
            "this_hash": h.this_hash.to_hex(),
        },
        "txns": b.txns.iter().map(|t| {
            let mut v = txn_json(t);
            v["hash"] = json!(t.hash().to_hex());
            v
        }).collect::<Vec<_>>(),
    })
}

fn token_text(t: &Token) -> String {
    format!(
        "{{\"txn_hash\": {}, \"owner\": {}, \"value\": {}, \"signature\": {}}}",
        abbrev(t.txn_hash.as_ref()),
        abbrev(&t.owner),
        t.value,
        abbrev(&t.signature)
    )
}

fn txn_text(t: &Transaction) -> String {
    let prev: Vec<String> = t
        .previous_hashes
        .iter()
        .map(|h| abbrev(h.as_ref()))
        .collect();
    format!(
        "{{\"previous_hashes\": [{}], \"receiver\": {}, \"receiver_value\": {}, \"receiver_signature\": {}, \"sender\": {}, \"sender_change\": {}, \"sender_signature\": {}}}",
        prev.join(", "),
        abbrev(&t.receiver),
        t.receiver_value,
        abbrev(&t.receiver_signature),
        abbrev(&t.sender),
        t.sender_change,
        abbrev(&t.sender_signature)
    )
}
