//! The teacher's orders and the faults a node plays with its blocks and
//! answers (the Byzantine lab; the modes themselves: [`crate::fault`]).

use super::*;

impl Node {
    /// An order from the relay: obeyed when it proves the teacher's token.
    pub(super) fn on_order(&mut self, order: Result<Order, String>) {
        match read_order(order, &self.config.control_token) {
            Ok(fault) => self.set_fault(fault),
            Err(reason) => self.emit(Event::OrderRefused { reason }),
        }
    }

    /// Plays `fault` from now on (`None`: honest again).
    pub(super) fn set_fault(&mut self, fault: Option<Fault>) {
        self.config.fault = fault;
        fit_catch_up(&mut self.session, fault);
        self.liar.twin = None;
        self.stuck = match fault {
            Some(Fault::Stuck) => self.session.tree().chain().tip().cloned(),
            _ => None,
        };
        if let Some(m) = self.mining.as_mut() {
            // A fresh start under the new fault (or none).
            if m.cancelled_at.is_none() {
                m.cancel.cancel();
                m.cancelled_at = Some(Instant::now());
            }
        }
        self.emit(Event::Ordered { fault });
    }

    /// An invalid node's catch-up answer: cut off halfway, so that it is
    /// not even readable.
    pub(super) fn answer_malformed(&mut self, blocks: Vec<Block>) {
        let whole = encode_bloc(&blocks);
        let cut = whole.slice(..whole.len() / 2);
        self.emit(Event::FaultPlayed {
            what: format!(
                "sent a catch-up answer cut off after {} of its {} bytes",
                cut.len(),
                whole.len()
            ),
        });
        self.publish(cut);
    }

    /// A liar's catch-up answer: the blocks asked for, then one more on
    /// its tip, forged to claim work it lacks.
    pub(super) fn answer_with_a_lie(&mut self, mut blocks: Vec<Block>) {
        let now = self.session.local_now();
        let chain = self.session.tree().chain();
        let reaches_tip =
            blocks.last().map(|b| b.header.this_hash) == chain.tip().map(|b| b.header.this_hash);
        if let Some(forged) =
            Liar::forged_answer(chain, &self.config.reward_to, now).filter(|_| reaches_tip)
        {
            self.emit(Event::FaultPlayed {
                what: format!(
                    "answered a catch-up request with {} blocks and a forged one, {}",
                    blocks.len(),
                    forged.header.this_hash.short()
                ),
            });
            blocks.push(forged);
        }
        self.publish(encode_bloc(&blocks));
    }

    /// A liar found `block`: the first of two at its height is held back;
    /// with the second, it sends one to half the nodes it knows and the
    /// other to the rest, and keeps the first. Returns the block to adopt
    /// (and not announce), or `None` when there is nothing to adopt yet.
    pub(super) fn equivocate(&mut self, block: Block, height: usize) -> Option<Block> {
        let first = match self.liar.twin.take() {
            Some(first) if first.header.previous_hash == block.header.previous_hash => first,
            _ => {
                self.emit(Event::FaultPlayed {
                    what: format!(
                        "mined block {height} ({}) and holds it back to mine a twin beside it",
                        block.header.this_hash.short()
                    ),
                });
                self.liar.twin = Some(block);
                return None;
            }
        };
        let (to_first, to_second) = self.liar.halves();
        if to_second.is_empty() {
            self.emit(Event::FaultPlayed {
                what: "knows no two nodes to lie to (it learns names from their status): sends its block to all".into(),
            });
            self.publish(encode_bloc(std::slice::from_ref(&first)));
            return Some(first);
        }
        for (names, twin) in [(&to_first, &first), (&to_second, &block)] {
            let payload = encode_bloc(std::slice::from_ref(twin));
            for name in names {
                self.session.publish_to(name, payload.clone());
            }
        }
        // Both signed: the lie is on record.
        for twin in [first.header.this_hash, block.header.this_hash] {
            self.sign_announcement(&twin, height);
        }
        self.emit(Event::FaultPlayed {
            what: format!(
                "equivocated at height {height}: block {} to {}, block {} to {}",
                first.header.this_hash.short(),
                to_first.join(", "),
                block.header.this_hash.short(),
                to_second.join(", ")
            ),
        });
        Some(first)
    }
}
