//! The oracle as a pBFT client: f+1 matching replies make its
//! transactions final, applied in order to the ledger the replicas agree on.

use super::*;

impl Oracle {
    /// A pBFT frame: with f+1 matching replies for a batch, the oracle's
    /// transactions it applied are final.
    pub(super) fn on_pbft(&mut self, payload: &[u8]) {
        let Some(tally) = &mut self.tally else {
            return;
        };
        self.pbft_frames += 1;
        // Only replies are the client's: the replicas' votes among
        // themselves are counted, not checked (a signature each).
        let is_reply = SignedWire::decode(payload)
            .and_then(|w| w.open())
            .is_ok_and(|(_, m)| matches!(m, Msg::Reply { .. }));
        if !is_reply {
            return;
        }
        let (seq, txns) = match tally.on_payload(payload) {
            Ok(Seen::Final { seq, txns, .. }) => (seq, txns),
            Ok(_) => return,
            Err(e) => {
                warn!(source = "pbft-refused", "Ignored a pBFT message: {e}");
                return;
            }
        };
        let (frames, weak) = (self.pbft_frames, tally.members().map_or(1, |m| m.weak()));
        let final_txns: HashSet<Txid> = txns.into_iter().collect();
        for i in 0..self.sent.len() {
            let s = &mut self.sent[i];
            if s.confirmed.is_some() || !final_txns.contains(&s.hash) {
                continue;
            }
            s.confirmed = Some(seq as usize);
            s.reported = FINAL_CONFIRMATIONS;
            info!(
                "Final: {} in pBFT batch {seq} after {:.2} s ({} pBFT messages; f+1 = {weak} replies)",
                s.label,
                s.first_sent.elapsed().as_secs_f64(),
                frames - s.frames_before
            );
            let hash = s.hash;
            if let Some(txn) = self.truth_txn(&hash) {
                self.deferred.push(txn);
            }
        }
        // Final in pBFT is final for good: nothing to watch any more.
        self.forget(|s| s.confirmed.is_some());
        // Apply in order what now can be (a later batch's replies may come
        // before an earlier one's).
        loop {
            let before = self.deferred.len();
            let agreed = &mut self.agreed;
            // Final for good: what it spent is forgotten at once.
            self.deferred
                .retain(|t| match agreed.apply_txns(std::slice::from_ref(t)) {
                    Ok(undo) => {
                        agreed.forget_spent(&undo);
                        false
                    }
                    Err(_) => true,
                });
            if self.deferred.len() == before {
                break;
            }
        }
        if self.unconfirmed() == 0 {
            let (agreed, truth) = (self.chain_balances(), self.truth_balances());
            if agreed == truth {
                info!("Balances agree: the replicas applied {agreed:?}, as the oracle knows");
            } else {
                warn!("!!! BALANCES DISAGREE: the replicas applied {agreed:?} but the oracle knows {truth:?} !!!");
            }
        }
    }
}
