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
//!   work, an over-paid reward, a transaction already in the chain. It
//!   never adopts them itself, so it keeps mining on the honest tip, and
//!   its catch-up answers are cut off halfway;
//! - `liar`: equivocates and lies ([`Liar`]). Each time it finds a block
//!   it holds it back and mines a twin at the same height, then sends one
//!   to half of the nodes it knows and the other to the rest (the relay's
//!   `$to:NAME`). Its status claims a chain 1,000 blocks longer than its
//!   own, and it answers every catch-up request with a forged block.
//!
//! Any of them can be switched on, off or to another live by the teacher
//! (`toycoin-ctl fault NODE MODE`), when the node has the token.

use std::collections::BTreeSet;
use std::fmt;

use toycoin_common::block::Block;
use toycoin_common::chain::Chain;
use toycoin_common::control::check_name;
use toycoin_common::hash::{BlockHash, Hash};
use toycoin_common::message::Status;
use toycoin_common::profile::ProfileKind;
use toycoin_common::transaction::{Address, Transaction};

/// A fault to play.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Fault {
    /// Hears everything, sends nothing.
    Silent,
    /// Stops after its first block and keeps sending that block.
    Stuck,
    /// Announces blocks that break a rule, in turn.
    Invalid,
    /// Sends different blocks to different nodes, lies in its status and
    /// catch-up answers.
    Liar,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = clap::ValueEnum::to_possible_value(self)
            .map(|v| v.get_name().to_owned())
            .unwrap_or_default();
        f.write_str(&name)
    }
}

/// Reads an order from the relay: the fault to play (`None`: honest), when
/// it proves the teacher's `token`; otherwise why it is ignored.
pub fn read_order(
    order: Result<toycoin_common::control::Order, String>,
    token: &Option<String>,
) -> Result<Option<Fault>, String> {
    let order = order?;
    let Some(token) = token else {
        return Err(format!(
            "ignored an order to play {}: this node was started without the teacher's token (--control-token-file)",
            order.fault
        ));
    };
    if order.proof != toycoin_common::control::proof(token) {
        return Err(format!(
            "ignored an order to play {}: it does not prove our token",
            order.fault
        ));
    }
    if order.fault == "honest" {
        return Ok(None);
    }
    <Fault as clap::ValueEnum>::from_str(&order.fault, true)
        .map(Some)
        .map_err(|_| format!("ignored an order to play {:?}: no such fault", order.fault))
}

/// Most peer names a liar keeps (learnt from status frames).
pub const MAX_PEERS: usize = 64;

/// How much longer than its own a liar claims its chain is.
pub const CLAIMED_EXTRA: u64 = 1_000;

/// What a `liar` keeps: the block it holds back while mining its twin,
/// and the names of the nodes it lies to.
#[derive(Debug, Default)]
pub struct Liar {
    /// The first of two blocks at one height, not yet sent.
    pub twin: Option<Block>,
    peers: BTreeSet<String>,
}

impl Liar {
    /// A node called `name` said where it stands: one more to lie to
    /// (names the relay would refuse in `$to:` are left out).
    pub fn heard_of(&mut self, name: &str) {
        if check_name(name).is_ok() && self.peers.len() < MAX_PEERS {
            self.peers.insert(name.to_owned());
        }
    }

    /// The peers split in two: who gets the first twin, who the second.
    /// Either half is empty with fewer than two peers.
    pub fn halves(&self) -> (Vec<String>, Vec<String>) {
        let all: Vec<String> = self.peers.iter().cloned().collect();
        let (a, b) = all.split_at(all.len() / 2);
        (b.to_vec(), a.to_vec())
    }

    /// Its status, made to lie: a chain [`CLAIMED_EXTRA`] blocks longer,
    /// with a tip no one has.
    pub fn lie_about(status: &mut Status) {
        let height = status.height.unwrap_or(0) + CLAIMED_EXTRA;
        status.height = Some(height);
        status.tip = Some(BlockHash::from_raw_hash(Hash::of(
            format!("a tip at height {height} that does not exist").as_bytes(),
        )));
    }

    /// A catch-up answer that lies: a block on `chain`'s tip paying
    /// `reward_to` (so the lie is the liar's own) that claims work it
    /// lacks ([`Chain::weak_block`]).
    pub fn forged_answer(chain: &Chain, reward_to: &Address, now: u64) -> Option<Block> {
        chain.weak_block(chain.block_txns(reward_to, Vec::new()), now)
    }
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
    /// Mined honestly, holding a transaction its chain already holds:
    /// the same coins spent twice (steady; the original takes a verbatim
    /// repeat, so under toycoin this turn breaks the Merkle root instead).
    DoubleSpend,
}

impl Breach {
    /// The breach of the `turn`th invalid block on `chain`: a double
    /// spend only where there is a transfer to repeat and a repeat is
    /// refused.
    pub fn of_turn(turn: u64, chain: &Chain) -> Breach {
        match turn % 4 {
            0 => Breach::MerkleRoot,
            1 => Breach::TooLittleWork,
            2 => Breach::OverpaidReward,
            _ if chain.profile().kind == ProfileKind::Steady && spent(chain).is_some() => {
                Breach::DoubleSpend
            }
            _ => Breach::MerkleRoot,
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Breach::MerkleRoot => "a Merkle root that does not match its transactions",
            Breach::TooLittleWork => "too little work",
            Breach::OverpaidReward => "an over-paid reward",
            Breach::DoubleSpend => "a transaction already in the chain, spending its coins again",
        }
    }

    /// Breaks the template of the block to mine, where the breach is in
    /// what is mined: an over-paid reward (the others break the block
    /// after mining, [`Breach::apply`]).
    pub fn prepare(self, txns: &mut Vec<Transaction>, chain: &Chain) {
        match self {
            Breach::OverpaidReward => {
                if let Some(reward) = txns.first_mut() {
                    reward.receiver_value = reward.receiver_value.saturating_add(1);
                }
            }
            Breach::DoubleSpend => txns.extend(spent(chain)),
            _ => {}
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
            Breach::OverpaidReward | Breach::DoubleSpend => {}
        }
        block
    }
}

/// The latest transfer on `chain` (not a reward): what a double spend
/// repeats.
fn spent(chain: &Chain) -> Option<Transaction> {
    chain
        .blocks_newest_first()
        .find_map(|b| b.txns.iter().skip(1).find(|t| !t.is_coinbase()).cloned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fault_can_be_ordered_by_the_name_it_goes_by() {
        for fault in <Fault as clap::ValueEnum>::value_variants() {
            let name = fault.to_string();
            assert!(
                toycoin_common::control::FAULTS.contains(&name.as_str()),
                "{name}"
            );
            assert_eq!(
                <Fault as clap::ValueEnum>::from_str(&name, true),
                Ok(*fault)
            );
        }
    }

    #[test]
    fn a_liar_splits_the_nodes_it_knows_in_two_and_claims_a_longer_chain() {
        let mut liar = Liar::default();
        for name in ["node3", "node1", "bad name", "node2", "node4"] {
            liar.heard_of(name);
        }
        let (a, b) = liar.halves();
        assert_eq!(a, ["node3", "node4"]);
        assert_eq!(b, ["node1", "node2"]);
        let mut status = Status {
            name: "liar".into(),
            tip: None,
            height: Some(7),
            hash_rate: 0.0,
            mining: true,
            threads: 1,
            wallet: None,
            signer: None,
        };
        Liar::lie_about(&mut status);
        assert_eq!(status.height, Some(7 + CLAIMED_EXTRA));
        assert!(status.tip.is_some());
    }
}
