//! Watching the oracle's transactions to final under proof of work:
//! confirmations as blocks bury them, re-sends of those a reorganisation
//! took back or the nodes never mined, and forgetting the final ones.

use super::*;

impl Oracle {
    pub(super) fn on_bloc(&mut self, report: BlocReport) {
        match report.result {
            Ok(Received::Adopted(adopted)) => {
                if adopted.is_reorganization() {
                    info!(
                        "Best chain switched at height {} ({} blocks rolled back)",
                        adopted.fork_height,
                        adopted.rolled_back.len()
                    );
                }
                self.update_confirmations(adopted.fork_height);
            }
            Ok(_) => {}
            Err(e) => warn!(
                source = "bloc-rejected",
                "Ignored an invalid BLOC: block {}: {}", e.index, e.error
            ),
        }
    }

    /// Forgets the transactions sent that `done` says need no more
    /// watching (counted in `forgotten`).
    pub(super) fn forget(&mut self, done: impl Fn(&Sent) -> bool) {
        let before = self.sent.len();
        let sent_txns = &mut self.sent_txns;
        self.sent.retain(|s| {
            let keep = !done(s);
            if !keep {
                sent_txns.remove(&s.hash);
            }
            keep
        });
        self.forgotten += before - self.sent.len();
    }

    /// One of the oracle's own transactions, by hash.
    pub(super) fn truth_txn(&self, hash: &Txid) -> Option<Transaction> {
        self.sent_txns.get(hash).cloned()
    }

    /// After the best chain changed from `fork_height` up: blocks below it
    /// are as they were, so only the new ones are looked through.
    pub(super) fn update_confirmations(&mut self, fork_height: usize) {
        let chain: &Chain = self.session.tree().chain();
        let mut heights: HashMap<Txid, usize> = HashMap::new();
        // New blocks that had room for more transactions (their timestamps).
        let mut with_room: Vec<u64> = Vec::new();
        for (offset, block) in chain.blocks_from(fork_height).enumerate() {
            for txn in &block.txns {
                heights.entry(txn.hash()).or_insert(fork_height + offset);
            }
            if chain.had_room(&block) {
                with_room.extend(block.header.timestamp_secs());
            }
        }
        let tip_height = chain.len().saturating_sub(1);
        for s in &mut self.sent {
            let now = if s.confirmed.is_some_and(|h| h < fork_height) {
                s.confirmed
            } else {
                heights.get(&s.hash).copied()
            };
            if let (Some(_), None) = (s.confirmed, now) {
                warn!(
                    "No longer in the best chain: {} (sending it again)",
                    s.label
                );
                s.reported = 0;
                s.lost = true;
            }
            if now.is_none() {
                s.missed += with_room
                    .iter()
                    // Begun after it was sent (a second's grace for clocks).
                    .filter(|&&stamped| stamped > s.sent_at + 1)
                    .count();
            }
            s.confirmed = now;
            let Some(h) = now else { continue };
            // Confirmations as blocks bury it: each step up to final.
            let n = (tip_height + 1 - h).min(FINAL_CONFIRMATIONS);
            if n <= s.reported {
                continue;
            }
            let first = s.reported == 0;
            s.reported = n;
            let plural = if n == 1 { "" } else { "s" };
            if first {
                info!(
                    "Confirmed: {} in block {h} ({n} confirmation{plural})",
                    s.label
                );
            } else if n < FINAL_CONFIRMATIONS {
                info!(target: TRAFFIC, "  {} in block {h}: {n} confirmation{plural}", s.label);
            }
            if n == FINAL_CONFIRMATIONS {
                info!(
                    "Final: {} in block {h} ({n} confirmations: as final as proof of work gets)",
                    s.label
                );
            }
        }
        // Buried deeper than any reorganisation a class will see.
        self.forget(|s| {
            s.confirmed
                .is_some_and(|h| tip_height.saturating_sub(h) >= FORGET_DEPTH)
        });
        let (chain_b, truth_b) = (self.chain_balances(), self.truth_balances());
        let pending = self.unconfirmed();
        if pending > 0 {
            info!(target: TRAFFIC, "Chain balances {chain_b:?}; {pending} transactions still to be confirmed (then {truth_b:?})");
        } else if chain_b == truth_b {
            info!("Balances agree: the chain says {chain_b:?}, as the oracle knows");
        } else {
            warn!("!!! BALANCES DISAGREE: the chain says {chain_b:?} but the oracle knows {truth_b:?} !!!");
        }
    }

    /// Re-sends, in their order, only the transactions that may really be
    /// lost: taken back by a reorganisation, left out of `resend_blocks`
    /// blocks that had room for them (the nodes may never have got them),
    /// or not confirmed after `resend_secs` seconds (no block at all). A
    /// transaction the nodes hold and will mine is not sent again.
    pub(super) fn resend_lost(&mut self) {
        let after = Duration::from_secs_f64(self.config.resend_secs.max(0.1));
        let blocks = self.config.resend_blocks.max(1);
        let due: Vec<usize> = (0..self.sent.len())
            .filter(|&i| {
                let s = &self.sent[i];
                s.confirmed.is_none()
                    && (s.lost || s.missed >= blocks || s.last_sent.elapsed() >= after)
            })
            .collect();
        if due.is_empty() {
            return;
        }
        info!(
            "Re-sending {} transactions: taken back by a reorganisation, left out of {blocks} blocks with room, or not confirmed in {} s",
            due.len(),
            self.config.resend_secs
        );
        for i in due {
            let sent = &mut self.sent[i];
            sent.last_sent = Instant::now();
            sent.sent_at = now_secs();
            sent.missed = 0;
            sent.lost = false;
            info!(target: TRAFFIC, "  re-sending {}", sent.label);
            let payload = encode_txn(&sent.message.tokens, &sent.message.txn);
            self.session.publish(payload);
        }
    }
}
