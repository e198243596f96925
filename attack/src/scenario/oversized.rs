//! `oversized`: a payment far past the size a transaction may have.

use crate::*;

/// Inputs of the oversized payment: some 130 KB, four times what a
/// steady transaction may be.
const INPUTS: u32 = 2_000;

impl Attacker {
    pub(crate) async fn oversized(&mut self) -> Verdict {
        let mut txn = Transaction::coinbase(self.wallet.address().clone(), 1);
        txn.sender = self.wallet.address().clone();
        txn.previous_hashes = (0..INPUTS)
            .map(|i| Txid::from_raw_hash(toycoin_common::hash::Hash::of(&i.to_be_bytes())))
            .collect();
        txn.receiver_signature = Bytes::from(vec![7u8; 256]);
        txn.sender_signature = Bytes::from(vec![7u8; 256]);
        let txid = txn.hash();
        // What the rules say of it, as every node will.
        let why = match self.chain().ledger().check(&txn, None) {
            Err(e) => e.to_string(),
            Ok(_) => "nothing".to_owned(),
        };
        self.say(format!(
            "1. The attacker sends a payment of {} bytes ({INPUTS} inputs, txn {}); the rules say: {why}",
            txn.size(),
            txid.short()
        ));
        self.publish(encode_txn(&[], &txn));
        self.say("2. It watches the next two blocks to see whether one takes it...");
        if self.included_within(txid, None, 2).await {
            return Verdict {
                held: false,
                line: "a block took a payment far past the size a transaction may have".into(),
            };
        }
        Verdict {
            held: true,
            line: if self.toycoin() {
                format!("no block took it: the original has no size limit but the frame's, and refused it only because {why}")
            } else {
                format!("refused before any signature was checked: {why}")
            },
        }
    }
}
