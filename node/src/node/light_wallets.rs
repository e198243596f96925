//! Light wallets' answers: a node answers `SPV ` requests from its best
//! chain, to the asker alone, within a budget (docs/spv.md).

use super::*;

/// Light-client requests a node answers a second, at most (in bursts of
/// as many).
pub const SPV_ANSWERS: u32 = 10;
/// Of those, one asker's (by the name its answers go to): one student
/// asking again and again leaves the rest to the class.
pub const SPV_ANSWERS_PER_ASKER: u32 = 2;
/// Askers followed at once (past that, the table starts afresh).
const SPV_ASKERS: usize = 1024;

/// Blocks searched for an address by its fingerprint (the newest).
pub const SPV_ADDRESS_BLOCKS: usize = 2_000;

/// A token bucket: `per_sec` a second, in bursts of as many.
#[derive(Debug)]
pub(crate) struct RateBudget {
    per_sec: u32,
    tokens: f64,
    at: Instant,
}

impl RateBudget {
    pub(crate) fn new(per_sec: u32) -> RateBudget {
        RateBudget {
            per_sec,
            tokens: f64::from(per_sec),
            at: Instant::now(),
        }
    }

    /// Takes one token if there is one.
    pub(crate) fn take(&mut self, now: Instant) -> bool {
        let rate = f64::from(self.per_sec);
        self.tokens = (self.tokens + now.duration_since(self.at).as_secs_f64() * rate).min(rate);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

impl Node {
    /// A light client's request: answered from the best chain, within the
    /// rate budget (a request costs a scan of the chain; a flood of them
    /// costs the node at most [`SPV_ANSWERS`] scans a second).
    pub(super) fn on_spv(&mut self, payload: &[u8]) {
        let msg = match SpvMsg::decode_request(payload) {
            Ok(Some(msg)) => msg,
            Ok(None) => return,
            Err(reason) => {
                self.emit(Event::Undecodable {
                    bytes: payload.len(),
                    reason,
                });
                return;
            }
        };
        if matches!(msg, SpvMsg::Faucet { .. }) {
            return;
        }
        let reply_to = msg.reply_to().map(str::to_owned);
        // In steady an answer goes to its asker alone (`$to:`, the name the
        // relay checked is the asker's): a request naming no one would
        // send the answer to the whole class.
        if reply_to.is_none() && self.config.profile.canonical_encoding() {
            self.emit(Event::SpvAnswered {
                what:
                    "nothing: the request names no one to answer (steady answers the asker alone)"
                        .into(),
            });
            return;
        }
        let now = Instant::now();
        let asker = reply_to.clone().unwrap_or_default();
        if self.spv_askers.len() >= SPV_ASKERS && !self.spv_askers.contains_key(&asker) {
            self.spv_askers.clear();
        }
        let own = self
            .spv_askers
            .entry(asker)
            .or_insert_with(|| RateBudget::new(SPV_ANSWERS_PER_ASKER));
        if !own.take(now) || !self.spv_budget.take(now) {
            self.emit(Event::SpvAnswered {
                what: "nothing: too many light-client requests this second".into(),
            });
            return;
        }
        let chain = self.session.tree().chain();
        let (answer, what) = match msg {
            SpvMsg::GetHeaders { id, locator, .. } => {
                let locator: Vec<BlockHash> = locator
                    .iter()
                    .filter_map(|h| spv::block_hash(h).ok())
                    .collect();
                let from = self.session.tree().fork_point(&locator);
                let headers: Vec<HeaderWire> = chain
                    .entries()
                    .get(from..)
                    .unwrap_or_default()
                    .iter()
                    .take(spv::MAX_HEADERS)
                    .map(|e| HeaderWire::from_header(&e.header))
                    .collect();
                let what = format!("{} headers from height {from}", headers.len());
                (SpvMsg::Headers { id, headers }, what)
            }
            SpvMsg::GetProofs { id, address, .. } => {
                let Ok(owner) = spv::address_from_text(&address) else {
                    return;
                };
                let mut items = Vec::new();
                // Only the blocks that name the wallet are read.
                let heights = chain.heights_naming(&owner).iter().map(|&h| h as usize);
                'blocks: for height in heights {
                    let Some(block) = chain.block(height) else {
                        break;
                    };
                    for txn in &block.txns {
                        if txn.receiver != owner && txn.sender != owner {
                            continue;
                        }
                        if items.len() == spv::MAX_PROOF_ITEMS {
                            break 'blocks;
                        }
                        if let Some(proof) = block.merkle_proof(&txn.hash()) {
                            items.push(ProofWire::new(
                                txn,
                                height,
                                &block.header.this_hash,
                                &proof,
                            ));
                        }
                    }
                }
                let what = format!(
                    "{} proofs of inclusion for wallet {}",
                    items.len(),
                    fingerprint(&owner)
                );
                (SpvMsg::Proofs { id, address, items }, what)
            }
            SpvMsg::GetAddress {
                id,
                fingerprint: wanted,
                ..
            } => {
                // The addresses named in the newest blocks, each hashed
                // once: a class has a few dozen.
                let recent = chain.len().saturating_sub(SPV_ADDRESS_BLOCKS);
                let found = chain
                    .addresses()
                    .filter(|(_, heights)| heights.last().is_some_and(|&h| h as usize >= recent))
                    .map(|(a, _)| a)
                    .find(|a| toycoin_common::wallet::fingerprint_matches(a, &wanted))
                    .cloned();
                let Some(address) = found else { return };
                let what = format!("the address of wallet {wanted}");
                let address = spv::address_text(&address);
                (
                    SpvMsg::Address {
                        id,
                        fingerprint: wanted,
                        address,
                    },
                    what,
                )
            }
            _ => return,
        };
        self.emit(Event::SpvAnswered { what });
        match (&reply_to, self.config.fault) {
            (_, Some(Fault::Silent)) => {}
            (Some(name), _) => self.session.publish_to(name, answer.encode()),
            (None, _) => self.session.publish(answer.encode()),
        }
    }
}
