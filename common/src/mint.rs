//! Where coins come from (steady): each block's reward to its miner, and
//! the grants of the network's mint, fixed with the network
//! ([`crate::network::Network`]) before any block; never more than
//! [`MAX_SUPPLY`] in all. The original lets any coinbase mint any amount
//! ([`Minting::AnyCoinbase`]).

use crate::hash::Txid;
use crate::ledger::{check_shape, CheckedTxn, OutputView, TxError};
use crate::transaction::Transaction;

/// What a steady block's reward (its first transaction) pays its miner.
pub const BLOCK_REWARD: i64 = 50;
/// The most coins a steady chain ever holds, rewards and the mint's grants
/// together; no amount may exceed it, so no sum of amounts overflows.
pub const MAX_SUPPLY: i64 = 1_000_000_000_000;

/// Where new coins may come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Minting {
    /// The original's: any coinbase transaction from anyone, any amount.
    AnyCoinbase,
    /// Each block's first transaction, a coinbase of the block reward to
    /// its miner, and grants from the network's mint (see
    /// `docs/profiles.md`).
    RewardsAndMint,
}

/// What the block after `supply` coins exist pays its miner:
/// [`BLOCK_REWARD`], never past [`MAX_SUPPLY`].
pub fn block_reward(supply: i64) -> i64 {
    BLOCK_REWARD.min(MAX_SUPPLY - supply.min(MAX_SUPPLY))
}

/// A grant (steady): new coins from the mint, spending nothing. The mint
/// is fixed with the network ([`crate::network::Network`]), before any
/// block: nobody becomes it by being first. Its signatures, checked with
/// every transfer's, cover the amount.
pub(crate) fn check_grant(
    view: &impl OutputView,
    txn: &Transaction,
    hash: Txid,
) -> Result<CheckedTxn, TxError> {
    match view.profile().mint {
        None => return Err(TxError::NoMint),
        Some(mint) if mint != crate::hash::Hash::of(&txn.sender) => {
            return Err(TxError::NotTheMint {
                mint: crate::wallet::fingerprint_of(&mint),
            })
        }
        Some(_) => {}
    }
    if txn.sender_change != 0 {
        return Err(TxError::GrantWithChange(txn.sender_change));
    }
    if view.supply() + i128::from(txn.receiver_value) > i128::from(MAX_SUPPLY) {
        return Err(TxError::SupplyExceeded {
            value: txn.receiver_value,
        });
    }
    Ok(CheckedTxn::creating(hash, txn.receiver_value))
}

/// A block's first transaction in a profile with rewards: a coinbase of
/// exactly `expected` to the miner (a canonical address), tagged with the
/// block's `height`.
pub fn check_reward(txn: &Transaction, expected: i64, height: u64) -> Result<(), TxError> {
    if !txn.is_coinbase() {
        return Err(TxError::MissingReward);
    }
    check_shape(txn)?;
    if !txn.previous_hashes.is_empty() {
        return Err(TxError::RewardShape("spends tokens"));
    }
    if txn.receiver_value != expected {
        return Err(TxError::RewardAmount {
            got: txn.receiver_value,
            expected,
        });
    }
    if txn.sender_change != 0 || !txn.receiver_signature.is_empty() {
        return Err(TxError::RewardShape(
            "has change or a receiver signature (it must have neither)",
        ));
    }
    if txn.sender_signature[..] != *height.to_string().as_bytes() {
        return Err(TxError::RewardShape(
            "is not tagged with its block's height",
        ));
    }
    Ok(())
}
