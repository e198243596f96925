//! `flood`: thousands of transactions with forged signatures, as fast as the socket takes them.

use crate::*;

impl Attacker {
    pub(crate) async fn flood(&mut self) -> Verdict {
        let count = self.options.count.clamp(1, 1_000_000);
        let mut txn = Transaction::coinbase(self.wallet.address().clone(), 1);
        txn.sender = self.wallet.address().clone();
        txn.previous_hashes = vec![Txid::from_raw_hash(toycoin_common::hash::Hash::of(b"none"))];
        txn.receiver_signature = Bytes::from(vec![7u8; 256]);
        txn.sender_signature = Bytes::from(vec![7u8; 256]);
        self.say(format!(
            "1. The attacker sends {count} transactions with forged signatures, as fast as its socket takes them"
        ));
        let start = Instant::now();
        let height = self.chain().len();
        for i in 0..count {
            txn.receiver_value = i as i64 + 1;
            self.publish(encode_txn(&[], &txn));
            if i % 256 == 0 {
                // Let the connection drain what is queued.
                self.listen(Duration::from_millis(1)).await;
            }
        }
        let secs = start.elapsed().as_secs_f64();
        self.say(format!(
            "   sent in {secs:.2} s ({:.0} a second)",
            count as f64 / secs.max(1e-9)
        ));
        // What must still work: new blocks, and (under toycoin, where nodes
        // mine only what waits) a valid transaction getting in.
        let probe = self.toycoin().then(|| {
            let probe = Transaction::coinbase(self.wallet.address().clone(), 2);
            (probe.hash(), encode_txn(&[], &probe))
        });
        if let Some((hash, payload)) = &probe {
            self.say(format!(
                "2. It sends one valid transaction ({}) and waits for a block to take it",
                hash.short()
            ));
            self.publish(payload.clone());
        } else {
            self.say("2. It waits for the network to mine two more blocks");
        }
        let patience = self.a_few_blocks();
        let carried_on = match probe {
            Some((hash, _)) => {
                self.wait(patience, |a, _| a.confirmations(&hash).is_some())
                    .await
            }
            None => self.blocks_more(2, patience).await,
        };
        let forged_in = self
            .chain()
            .transactions()
            .any(|t| t.sender_signature.first() == Some(&7) && t.sender == *self.wallet.address());
        if forged_in {
            return Verdict {
                held: false,
                line: "a transaction with a forged signature was confirmed".into(),
            };
        }
        Verdict {
            held: carried_on,
            line: if carried_on {
                format!(
                    "the network carried on: {} blocks since the flood began, none of the forgeries in them",
                    self.chain().len() - height
                )
            } else {
                format!(
                    "the network stalled: nothing confirmed within {:.0} s of the flood",
                    patience.as_secs_f64()
                )
            },
        }
    }
}
