//! `mint`: make coins out of nothing, a coinbase outside any block.

use crate::*;

impl Attacker {
    pub(crate) async fn mint(&mut self) -> Verdict {
        let txn = Transaction::coinbase(self.wallet.address().clone(), 1_000);
        let txid = txn.hash();
        self.say(format!(
            "1. The attacker sends a coinbase paying itself 1,000 coins, outside any block (txn {})",
            txid.short()
        ));
        self.publish(encode_txn(&[], &txn));
        self.say("2. It watches the next three blocks to see whether one takes it...");
        let minted = self.included_within(txid, None, 3).await;
        match (minted, self.toycoin()) {
            (true, true) => Verdict {
                held: true,
                line: format!(
                    "the original's flaw, shown: block {} took the attacker's 1,000 coins out of nothing (steady refuses this)",
                    self.chain().len() - self.confirmations(&txid).unwrap_or(1)
                ),
            },
            (true, false) => Verdict {
                held: false,
                line: "a block took coins made out of nothing".into(),
            },
            (false, _) => Verdict {
                held: true,
                line: "no block took it: a coinbase outside a block's first transaction is refused (rule Minting)".into(),
            },
        }
    }
}
