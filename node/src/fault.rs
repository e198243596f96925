//! Faults a node can play for the Byzantine lab (`toycoin-node --fault`):
//! the lecture's ways a general fails, so that a class can watch the
//! honest nodes cope. So far:
//!
//! - `silent`: hears everything and keeps its own chain, sends nothing (no
//!   block, no catch-up request or answer, no status);
//! - `stuck`: mines its first block, then stops there: it mines no more
//!   and sends that same block again every few seconds, whatever the
//!   others do (a general whose answer never changes);
//! - `invalid`: announces blocks that break a rule, a different one each
//!   time ([`Breach`]): a Merkle root that does not match, too little
//!   work, an over-paid reward. It never adopts them itself, so it keeps
//!   mining on the honest tip.

use toycoin_common::block::Block;
use toycoin_common::transaction::Transaction;

/// A fault to play.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Fault {
    /// Hears everything, sends nothing.
    Silent,
    /// Stops after its first block and keeps sending that block.
    Stuck,
    /// Announces blocks that break a rule, in turn.
    Invalid,
}

/// The rule an `invalid` node's next block breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Breach {
    /// Its transactions changed after mining: the header's Merkle root no
    /// longer matches them.
    MerkleRoot,
    /// Its nonce changed (and its hash recomputed): too little work.
    TooLittleWork,
    /// Mined honestly, with a reward one coin more than the rules pay.
    OverpaidReward,
}

impl Breach {
    /// The breach of the `turn`th invalid block.
    pub fn of_turn(turn: u64) -> Breach {
        match turn % 3 {
            0 => Breach::MerkleRoot,
            1 => Breach::TooLittleWork,
            _ => Breach::OverpaidReward,
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Breach::MerkleRoot => "a Merkle root that does not match its transactions",
            Breach::TooLittleWork => "too little work",
            Breach::OverpaidReward => "an over-paid reward",
        }
    }

    /// Breaks the template of the block to mine, where the breach is in
    /// what is mined: an over-paid reward (the others break the block
    /// after mining, [`Breach::apply`]).
    pub fn prepare(self, txns: &mut [Transaction]) {
        if let (Breach::OverpaidReward, Some(reward)) = (self, txns.first_mut()) {
            reward.receiver_value = reward.receiver_value.saturating_add(1);
        }
    }

    /// The block as announced: `mined` broken the way this breach says
    /// (an over-paid reward was already in its template).
    pub fn apply(self, mined: &Block) -> Block {
        let mut block = mined.clone();
        match self {
            Breach::MerkleRoot => {
                if let Some(first) = block.txns.first_mut() {
                    first.receiver_value = first.receiver_value.saturating_add(1);
                }
            }
            Breach::TooLittleWork => {
                block.header.nonce = bytes::Bytes::from_static(b"0");
                block.header.this_hash = block.header.compute_hash();
            }
            Breach::OverpaidReward => {}
        }
        block
    }
}
