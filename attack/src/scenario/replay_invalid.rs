//! `replay-invalid`: replay a confirmed transaction and an invalid block, many times.

use crate::*;

impl Attacker {
    pub(crate) async fn replay_invalid(&mut self) -> Verdict {
        let count = self.options.count.clamp(1, 100_000);
        self.say("1. The attacker waits for a confirmed transaction to replay...");
        let patience = self.options.patience;
        self.wait(patience, |a, _| a.chain().len() > 1).await;
        // A transfer if there is one, else a block's reward.
        let txns = || self.chain().transactions_newest_first();
        let Some(old) = txns()
            .find(|t| !t.is_coinbase())
            .or_else(|| txns().next())
            .map(std::borrow::Cow::into_owned)
        else {
            return Verdict {
                held: true,
                line: "no transaction was confirmed to replay".into(),
            };
        };
        let txid = old.hash();
        let before = self.times_in_chain(&txid);
        self.say(format!(
            "2. It replays confirmed transaction {} {count} times",
            txid.short()
        ));
        for _ in 0..count {
            self.publish(encode_txn(&[], &old));
        }
        let forged = self.forged_block();
        let forged_hash = forged.as_ref().map(|b| b.header.this_hash);
        if let Some(block) = forged {
            self.say(format!(
                "3. It sends a block with too little work on the tip, {} times ({})",
                count,
                block.header.this_hash.short()
            ));
            let payload = encode_bloc(&[block]);
            for _ in 0..count {
                self.publish(payload.clone());
            }
        }
        self.say("4. It watches two more blocks...");
        let grew = self.blocks_more(2, self.a_few_blocks()).await;
        let after = self.times_in_chain(&txid);
        let forged_in =
            forged_hash.is_some_and(|h| self.chain().blocks().any(|b| b.header.this_hash == h));
        if forged_in {
            return Verdict {
                held: false,
                line: "the invalid block is on the best chain".into(),
            };
        }
        if after > before {
            return Verdict {
                held: self.toycoin(),
                line: format!(
                    "a block repeated confirmed transaction {} ({})",
                    txid.short(),
                    if self.toycoin() {
                        "the original's flaw, applied once: it spends and creates nothing again"
                    } else {
                        "a replay"
                    }
                ),
            };
        }
        Verdict {
            held: true,
            line: format!(
                "refused every replay: the transaction is on the chain once, the invalid block nowhere{}",
                if grew {
                    ", and the network kept mining"
                } else {
                    " (no new block came meanwhile)"
                }
            ),
        }
    }
}
