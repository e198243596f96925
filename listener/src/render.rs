//! Renderers: text (as the original), brief (one line) and JSON (one
//! object per line). They format [`Verdict`]s and judge nothing.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Value};
use toycoin_common::block::Block;
use toycoin_common::hash::COINBASE;
use toycoin_common::profile::FINAL_CONFIRMATIONS;
use toycoin_common::transaction::{Token, Transaction};
use toycoin_common::wallet::fingerprint;

use toycoin_common::pbft::Seen;

use crate::judge::{Effect, PbftSeen, TxnCheck, Verdict};

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

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Text => "text",
            Mode::Brief => "brief",
            Mode::Json => "JSON",
        }
    }
}

/// Formats verdicts in one mode, with or without colours.
#[derive(Clone, Copy, Debug)]
pub struct Renderer {
    pub mode: Mode,
    pub color: bool,
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

/// An address as people read it: `wallet ab12cd34` (its fingerprint, as
/// the node and oracle print it), or COINBASE.
pub fn wallet_name(address: &[u8]) -> String {
    if address == COINBASE.as_bytes() {
        "COINBASE".to_owned()
    } else {
        format!("wallet {}", fingerprint(address))
    }
}

fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

impl Renderer {
    pub fn new(mode: Mode, color: bool) -> Renderer {
        Renderer { mode, color }
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

    /// The verdict as text to print (one or more lines, no trailing
    /// newline).
    pub fn render(&self, verdict: &Verdict) -> String {
        match verdict {
            Verdict::Txn {
                hash,
                message,
                check,
            } => self.txn(hash, &message.tokens, &message.txn, check),
            Verdict::Bloc {
                count,
                first_height,
                blocks,
                effect,
                chain,
            } => self.bloc(*count, *first_height, blocks, effect, chain),
            Verdict::GetBlocks { request, own } => match self.mode {
                Mode::Json => json!({
                    "type": "GETB",
                    "valid": true,
                    "own": own,
                    "id": request.id,
                    "locator": request.locator.iter().map(|h| h.to_hex()).collect::<Vec<_>>(),
                })
                .to_string(),
                _ => {
                    let whose = if *own { " (this listener's)" } else { "" };
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
            },
            Verdict::Status { status: st, lie } => match self.mode {
                Mode::Json => json!({
                    "type": "STAT",
                    "valid": lie.is_none(),
                    "lie": lie,
                    "name": st.name,
                    "tip": st.tip.map(|t| t.to_hex()),
                    "height": st.height,
                    "hash_rate": st.hash_rate,
                    "mining": st.mining,
                    "threads": st.threads,
                    "wallet": st.wallet,
                })
                .to_string(),
                _ => format!(
                    "{} {} says: height {}, tip {}, {:.2} MH/s on {} thread{}, {}{}",
                    self.paint("34", "STAT"),
                    st.name,
                    st.height.map_or_else(|| "-".to_owned(), |h| h.to_string()),
                    st.tip.map_or_else(|| "none".to_owned(), |t| t.short()),
                    st.hash_rate / 1e6,
                    st.threads,
                    if st.threads == 1 { "" } else { "s" },
                    if st.mining { "mining" } else { "not mining" },
                    lie.as_ref().map_or_else(String::new, |lie| self
                        .paint("31", &format!(" — FAULTY, a lie: it {lie}")))
                ),
            },
            Verdict::Pbft(p) => self.pbft(p),
            Verdict::Announce {
                block, height, by, ..
            } => match self.mode {
                Mode::Json => json!({
                    "type": "ANNC",
                    "valid": true,
                    "block": block.to_hex(),
                    "height": height,
                    "by": by,
                })
                .to_string(),
                _ => format!(
                    "{} wallet {by} announces block {height} {} (signed)",
                    self.paint("34", "ANNC"),
                    block.short()
                ),
            },
            Verdict::Spv { kind, says } => match self.mode {
                Mode::Json => json!({
                    "type": "SPV",
                    "valid": true,
                    "kind": kind,
                    "says": says,
                })
                .to_string(),
                _ => format!("{} {says}", self.paint("36", "SPV")),
            },
            Verdict::Timeline {
                position,
                restarted,
            } => match self.mode {
                Mode::Json => json!({
                    "type": "REPLAY",
                    "valid": true,
                    "restarted": restarted,
                    "epoch": position.epoch,
                    "at": position.at,
                    "length": position.length,
                    "playing": position.playing,
                    "speed": position.speed,
                    "sent": position.sent,
                    "frames": position.frames,
                })
                .to_string(),
                _ => format!(
                    "{} {}{}",
                    self.paint("35", "REPLAY"),
                    position.describe(),
                    if *restarted {
                        ": sought back, the view starts again from nothing"
                    } else {
                        ""
                    }
                ),
            },
            Verdict::Undecodable { bytes, tag, reason } => match self.mode {
                Mode::Json => json!({
                    "type": if tag.is_empty() { "unknown" } else { tag.as_str() },
                    "valid": false,
                    "error": reason,
                    "bytes": bytes,
                })
                .to_string(),
                _ => self.paint(
                    "33",
                    &format!("Could not decode a frame of {bytes} bytes: {reason}"),
                ),
            },
        }
    }

    /// A pBFT message: its phase and the batch's count against what the
    /// phase needs.
    fn pbft(&self, p: &PbftSeen) -> String {
        let check = if p.verified {
            ""
        } else {
            " (signature not checked: no --replicas)"
        };
        if self.mode == Mode::Json {
            let mut v = match &p.seen {
                Seen::PrePrepare {
                    view,
                    seq,
                    digest,
                    txns,
                    ..
                } => json!({
                    "kind": "pre-prepare", "view": view, "seq": seq,
                    "digest": digest.to_hex(), "txns": txns,
                }),
                Seen::Vote {
                    phase,
                    view,
                    seq,
                    count,
                    needed,
                    ..
                } => json!({
                    "kind": phase, "view": view, "seq": seq, "count": count, "needed": needed,
                }),
                Seen::Checkpoint { seq, .. } => json!({ "kind": "checkpoint", "seq": seq }),
                Seen::Catching { after, batches, .. } => json!({
                    "kind": if after.is_some() { "fetch" } else { "committed" },
                    "after": after, "batches": batches,
                }),
                Seen::ViewChange {
                    to, count, needed, ..
                } => json!({
                    "kind": "view-change", "view": to, "count": count, "needed": needed,
                }),
                Seen::NewView { view, batches, .. } => json!({
                    "kind": "new-view", "view": view, "batches": batches,
                }),
                Seen::Reply {
                    seq, count, needed, ..
                } => json!({
                    "kind": "reply", "seq": seq, "count": count, "needed": needed,
                }),
                Seen::Final { seq, digest, txns } => json!({
                    "kind": "final", "seq": seq, "digest": digest.to_hex(),
                    "txns": txns.iter().map(|t| t.to_hex()).collect::<Vec<_>>(),
                }),
            };
            if let Value::Object(map) = &mut v {
                map.insert("type".into(), json!("PBFT"));
                map.insert("valid".into(), json!(true));
                map.insert("from".into(), json!(p.from));
                map.insert("verified".into(), json!(p.verified));
                map.insert("primary".into(), json!(p.primary));
            }
            return v.to_string();
        }
        let tag = self.paint("35", "PBFT");
        let from = &p.from;
        let line = match &p.seen {
            Seen::PrePrepare { view, seq, digest, txns, .. } => format!(
                "{from} PRE-PREPARE batch {seq} in view {view} ({txns} txns, {}): the primary orders it",
                digest.short()
            ),
            Seen::Vote { phase, view, seq, count, needed, .. } => {
                let (name, rule) = if *phase == "prepare" {
                    ("PREPARE", "2f")
                } else {
                    ("COMMIT", "2f+1")
                };
                let done = if *needed > 0 && count >= needed {
                    self.paint("32", if *phase == "prepare" { " prepared" } else { " committed" })
                } else {
                    String::new()
                };
                format!("{from} {name} batch {seq} in view {view}: {count}/{needed} ({rule}){done}")
            }
            Seen::Checkpoint { seq, .. } => format!("{from} CHECKPOINT after batch {seq}"),
            Seen::Catching { after: Some(after), .. } => self.paint(
                "33",
                &format!("{from} FETCH: fell behind at batch {after}; asks for what the others committed"),
            ),
            Seen::Catching { batches, .. } => {
                format!("{from} COMMITTED: sends {batches} committed batches, each with 2f+1 signed commits, to a replica catching up")
            }
            Seen::ViewChange { to, count, needed, .. } => self.paint(
                "33",
                &format!("{from} VIEW-CHANGE to view {to}: {count}/{needed} (2f+1) replicas want it"),
            ),
            Seen::NewView { view, batches, .. } => self.paint(
                "33",
                &format!("{from} NEW-VIEW {view}: {from} is primary; {batches} batches ordered again"),
            ),
            Seen::Reply { seq, count, needed, .. } => {
                format!("{from} REPLY batch {seq}: {count}/{needed} (f+1) matching")
            }
            Seen::Final { seq, txns, .. } => self.paint(
                "1;32",
                &format!("batch {seq} FINAL: f+1 matching replies; {} txns applied, final at once (proof of work waits for {FINAL_CONFIRMATIONS} blocks)", txns.len()),
            ),
        };
        format!("{tag} {line}{check}")
    }

    fn txn(
        &self,
        hash: &toycoin_common::hash::Txid,
        tokens: &[Token],
        t: &Transaction,
        check: &TxnCheck,
    ) -> String {
        let (valid, error) = match check {
            TxnCheck::Valid => (Some(true), None),
            TxnCheck::Invalid(e) => (Some(false), Some(e.as_str())),
            TxnCheck::Unchecked(e) => (None, Some(e.as_str())),
        };
        match self.mode {
            Mode::Json => json!({
                "type": "TXN",
                "valid": valid,
                "error": error,
                "hash": hash.to_hex(),
                "tokens": tokens.iter().map(token_json).collect::<Vec<_>>(),
                "txn": txn_json(t),
            })
            .to_string(),
            Mode::Brief => {
                let what = if t.is_coinbase() {
                    format!(
                        "funding of {} to {}",
                        t.receiver_value,
                        wallet_name(&t.receiver)
                    )
                } else if t.previous_hashes.is_empty() {
                    format!(
                        "grant of {} from the mint ({}) to {}",
                        t.receiver_value,
                        wallet_name(&t.sender),
                        wallet_name(&t.receiver)
                    )
                } else {
                    format!(
                        "{} from {} to {} (change {})",
                        t.receiver_value,
                        wallet_name(&t.sender),
                        wallet_name(&t.receiver),
                        t.sender_change
                    )
                };
                let verdict = match check {
                    TxnCheck::Valid => String::new(),
                    TxnCheck::Invalid(e) => {
                        format!(" {}", self.paint("1;31", &format!("INVALID: {e}")))
                    }
                    TxnCheck::Unchecked(e) => format!(" (not checked: {e})"),
                };
                format!(
                    "{} {} {what}{verdict}",
                    self.paint("36", "TXN "),
                    hash.short()
                )
            }
            Mode::Text => {
                let shown = match valid {
                    Some(v) => self.yes_no(v),
                    None => "?".to_owned(),
                };
                let mut out = format!(
                    "{} {}  Valid: {shown}",
                    self.paint("1;36", "TXN"),
                    hash.short()
                );
                if let Some(e) = error {
                    out.push_str(&format!(" ({e})"));
                }
                out.push_str("\n  Tokens:");
                if tokens.is_empty() {
                    out.push_str(if t.is_coinbase() {
                        " none (a coinbase funding)"
                    } else {
                        " none (a grant from the mint)"
                    });
                }
                for tok in tokens {
                    out.push_str(&format!("\n    {}", token_text(tok)));
                }
                out.push_str(&format!("\n  Transaction:\n    {}", txn_text(t)));
                out
            }
        }
    }

    /// The effect in words, its JSON tag, and the reorganisation in JSON.
    fn effect(&self, effect: &Effect, count: usize) -> (&'static str, String, Option<Value>) {
        match effect {
            Effect::Known => ("known", format!("nothing new ({count} blocks known)"), None),
            Effect::Extends { added, height } => (
                "extends",
                format!("extends the best chain by {added} to height {height}"),
                None,
            ),
            Effect::Switch(r) => (
                "switch",
                self.paint(
                    "1;35",
                    &format!(
                        "SWITCHES the best chain: fork at height {}, {} blocks rolled back, {} added, {} txns back in the pool",
                        r.fork_height, r.rolled_back, r.added, r.returned_txns
                    ),
                ),
                Some(json!({
                    "fork_height": r.fork_height,
                    "rolled_back": r.rolled_back,
                    "added": r.added,
                    "returned_txns": r.returned_txns,
                    "old_tip": r.old_tip.to_hex(),
                })),
            ),
            Effect::Fork {
                fork_height,
                length,
            } => (
                "fork",
                self.paint(
                    "35",
                    &format!(
                        "starts or grows a fork: side branch of {length} blocks from height {fork_height}, not (yet) better"
                    ),
                ),
                None,
            ),
            Effect::Orphan { missing } => (
                "orphan",
                format!(
                    "follows {}, which this listener has not seen (asking for missed blocks)",
                    missing.short()
                ),
                None,
            ),
            Effect::Invalid { index, error, .. } => (
                "invalid",
                self.paint("1;31", &format!("INVALID: block {index}: {error}")),
                None,
            ),
            Effect::Stuck { resent, behind } => (
                "stuck",
                self.paint(
                    "1;31",
                    &format!(
                        "a known block sent again ({resent} times), {behind} blocks behind the tip — FAULTY: its sender is stuck"
                    ),
                ),
                None,
            ),
        }
    }

    fn bloc(
        &self,
        count: usize,
        first_height: Option<usize>,
        blocks: &[Block],
        effect: &Effect,
        chain: &crate::judge::ChainSummary,
    ) -> String {
        let (tag, words, reorg) = self.effect(effect, count);
        let error = match effect {
            Effect::Invalid { index, error, .. } => Some(format!("block {index}: {error}")),
            _ => None,
        };
        // Blocks that are now on the best chain, and the one this BLOC made
        // final (buried by the lecture's six blocks).
        let on_best = matches!(effect, Effect::Extends { .. } | Effect::Switch(_));
        let confirmations = |height: Option<usize>| match height {
            Some(h) if on_best => chain.blocks.saturating_sub(h),
            _ => 0,
        };
        let now_final = (on_best && chain.blocks >= FINAL_CONFIRMATIONS)
            .then(|| chain.blocks - FINAL_CONFIRMATIONS);
        match self.mode {
            Mode::Json => json!({
                "type": "BLOC",
                "valid": effect.is_valid(),
                "error": error,
                "effect": tag,
                "reorg": reorg,
                "blocks": blocks.iter().enumerate().map(|(i, b)| {
                    let height = first_height.map(|h| h + i);
                    block_json(b, height, confirmations(height))
                }).collect::<Vec<_>>(),
                "final_height": now_final,
                "chain": {
                    "blocks": chain.blocks,
                    "total_txns": chain.total_txns,
                    "tip": chain.tip.to_hex(),
                    "work": chain.work.to_string(),
                },
            })
            .to_string(),
            Mode::Brief => format!(
                "{} {count} block{}: {words} | chain: {} blocks, {} txns, tip {}",
                self.paint("33", "BLOC"),
                if count == 1 { "" } else { "s" },
                chain.blocks,
                chain.total_txns,
                chain.tip.short()
            ),
            Mode::Text => {
                let mut out = format!(
                    "{} of {count} block{}: {words}\nBlocks: {} | Total Txns: {} | Valid: {}",
                    self.paint("1;33", "BLOC"),
                    if count == 1 { "" } else { "s" },
                    chain.blocks,
                    chain.total_txns,
                    self.yes_no(effect.is_valid())
                );
                if let Some(h) = now_final {
                    out.push_str(&format!(
                        "\nBlock {h} is now final: {FINAL_CONFIRMATIONS} confirmations"
                    ));
                }
                for (i, b) in blocks.iter().enumerate() {
                    let h = &b.header;
                    let height =
                        first_height.map_or_else(|| "?".to_owned(), |x| (x + i).to_string());
                    let miner = miner(b)
                        .map(|m| format!(" mined by {m}"))
                        .unwrap_or_default();
                    out.push_str(&format!(
                        "\n  Block {height} {}{miner}\n    Header: timestamp {}, previous_hash {}, nonce {}, merkle_root {}, this_hash {}\n    Txns:",
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
        }
    }
}

fn token_json(t: &Token) -> Value {
    json!({
        "txn_hash": t.txn_hash.to_hex(),
        "owner": b64(&t.owner),
        "owner_wallet": fingerprint(&t.owner),
        "value": t.value,
        "signature": b64(&t.signature),
    })
}

fn txn_json(t: &Transaction) -> Value {
    json!({
        "previous_hashes": t.previous_hashes.iter().map(|h| h.to_hex()).collect::<Vec<_>>(),
        "receiver": b64(&t.receiver),
        "receiver_wallet": fingerprint(&t.receiver),
        "receiver_value": t.receiver_value,
        "receiver_signature": b64(&t.receiver_signature),
        "sender": b64(&t.sender),
        "sender_wallet": fingerprint(&t.sender),
        "sender_change": t.sender_change,
        "sender_signature": b64(&t.sender_signature),
    })
}

/// The fingerprint of the wallet a block's reward pays (steady), if it
/// has one: its first transaction is a coinbase tagged with a height.
/// The fingerprint of the wallet a block's reward pays (steady).
pub fn miner(b: &Block) -> Option<String> {
    let reward = b.txns.first()?;
    (reward.is_coinbase() && !reward.sender_signature.is_empty())
        .then(|| fingerprint(&reward.receiver))
}

fn block_json(b: &Block, height: Option<usize>, confirmations: usize) -> Value {
    let h = &b.header;
    json!({
        "height": height,
        "miner": miner(b),
        "confirmations": confirmations,
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
            v["confirmations"] = json!(confirmations);
            v
        }).collect::<Vec<_>>(),
    })
}

fn token_text(t: &Token) -> String {
    format!(
        "{{\"txn_hash\": {}, \"owner\": {}, \"value\": {}, \"signature\": {}}}",
        abbrev(t.txn_hash.as_ref()),
        wallet_name(&t.owner),
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
        wallet_name(&t.receiver),
        t.receiver_value,
        abbrev(&t.receiver_signature),
        wallet_name(&t.sender),
        t.sender_change,
        abbrev(&t.sender_signature)
    )
}
