//! `malleate`: rewrite a pending transfer's amounts (signatures untouched) and send it again.

use crate::*;

impl Attacker {
    pub(crate) async fn malleate(&mut self) -> Verdict {
        self.say("1. The attacker waits for someone's transfer with change...");
        let patience = self.options.patience;
        let found = self
            .wait(patience, |a, _| {
                a.heard
                    .iter()
                    .any(|m| m.txn.sender_change > 0 && !m.txn.is_coinbase())
            })
            .await;
        let Some(original) = found
            .then(|| {
                self.heard
                    .iter()
                    .find(|m| m.txn.sender_change > 0 && !m.txn.is_coinbase())
                    .cloned()
            })
            .flatten()
        else {
            return Verdict {
                held: true,
                line: "no transfer with change came by: nothing to rewrite (start an oracle)"
                    .into(),
            };
        };
        let mut rewritten = original.txn.clone();
        rewritten.receiver_value = rewritten
            .receiver_value
            .saturating_add(rewritten.sender_change);
        rewritten.sender_change = 0;
        let txid = rewritten.hash();
        self.say(format!(
            "2. It rewrites transfer {} ({} to the receiver + {} change) into {} + 0 change, signatures untouched (txn {})",
            original.txn.hash().short(),
            original.txn.receiver_value,
            original.txn.sender_change,
            rewritten.receiver_value,
            txid.short()
        ));
        let signatures = check_signatures(&rewritten, self.options.profile.signing());
        self.say(format!(
            "   its signatures under the {} rules: {}",
            self.options.profile.kind,
            match &signatures {
                Ok(()) => "still valid".to_string(),
                Err(e) => format!("broken ({e})"),
            }
        ));
        self.publish(encode_txn(&original.tokens, &rewritten));
        self.say("3. It sends the rewritten transfer and watches until a block takes it or the original (three blocks at most)...");
        let confirmed = self
            .included_within(txid, Some(original.txn.hash()), 3)
            .await;
        match (confirmed, signatures.is_ok()) {
            (true, true) if self.toycoin() => Verdict {
                held: true,
                line: "the original's flaw, shown: the rewritten transfer was confirmed (signatures do not cover amounts; steady's do)".into(),
            },
            (true, _) => Verdict {
                held: false,
                line: "a rewritten transfer was confirmed".into(),
            },
            (false, true) if self.toycoin() => Verdict {
                held: true,
                line: "the original's flaw, shown: the rewritten transfer's signatures still verify; it lost only because the original was seen first".into(),
            },
            (false, true) => Verdict {
                held: false,
                line: "the rewritten transfer's signatures still verify under steady".into(),
            },
            (false, false) => Verdict {
                held: true,
                line: "refused: the signatures cover the amounts, so the rewrite broke them".into(),
            },
        }
    }
}
