//! The mempool: valid transactions waiting for a block (the node's pending
//! pool; the listener judges transactions with one too).
//!
//! Transactions are kept in the order they arrived, so a transaction that
//! spends another pending one's outputs always comes after it, and the
//! first `n` are always a valid block. Two pending transactions never spend
//! the same output: the first seen wins. When the best chain changes,
//! [`Mempool::rebuild`] re-checks everything against the new tip (taken-back
//! blocks' transactions first), drops what is now confirmed and reports
//! what no longer fits.

use std::collections::HashSet;

use crate::hash::Txid;
use crate::ledger::{check_spend, check_transaction, Ledger, OutputView, Overlay, TxError};
use crate::profile::Minting;
use crate::transaction::{Token, Transaction};

/// Default most transactions pending at once.
pub const DEFAULT_MAX_PENDING: usize = 5_000;

/// Why a transaction was not added.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MempoolError {
    #[error("pool is full ({0} transactions pending)")]
    Full(usize),
    #[error("{0}")]
    Invalid(TxError),
}

/// What [`Mempool::rebuild`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rebuilt {
    /// Pending transactions now in the best chain.
    pub confirmed: usize,
    /// Transactions of taken-back blocks that are pending again.
    pub returned: usize,
    /// Transactions that no longer fit the chain, and why.
    pub dropped: Vec<(Txid, TxError)>,
}

/// Valid transactions not yet in the best chain.
#[derive(Clone, Debug)]
pub struct Mempool {
    txns: Vec<(Txid, Transaction)>,
    hashes: HashSet<Txid>,
    overlay: Overlay,
    max: usize,
}

impl Default for Mempool {
    fn default() -> Mempool {
        Mempool::new(DEFAULT_MAX_PENDING)
    }
}

impl Mempool {
    pub fn new(max: usize) -> Mempool {
        Mempool {
            txns: Vec::new(),
            hashes: HashSet::new(),
            overlay: Overlay::new(),
            max,
        }
    }

    pub fn len(&self) -> usize {
        self.txns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.txns.is_empty()
    }

    pub fn contains(&self, hash: &Txid) -> bool {
        self.hashes.contains(hash)
    }

    /// Checks a received transaction completely (signatures included)
    /// against `ledger` and the pending ones, and keeps it.
    pub fn add(
        &mut self,
        ledger: &Ledger,
        txn: Transaction,
        tokens: Option<&[Token]>,
    ) -> Result<Txid, MempoolError> {
        let hash = txn.hash();
        if self.txns.len() >= self.max && !self.hashes.contains(&hash) {
            return Err(MempoolError::Full(self.txns.len()));
        }
        let checked = check_transaction(&self.overlay.view(ledger), &txn, hash, tokens)
            .map_err(MempoolError::Invalid)?;
        self.overlay.apply(ledger, &txn, &checked);
        self.hashes.insert(hash);
        self.txns.push((hash, txn));
        Ok(hash)
    }

    /// The first `n` pending transactions: a valid block's worth, parents
    /// before children.
    pub fn select(&self, n: usize) -> Vec<Transaction> {
        self.txns.iter().take(n).map(|(_, t)| t.clone()).collect()
    }

    /// Hashes of the pending transactions, in order.
    pub fn hashes(&self) -> impl Iterator<Item = &Txid> {
        self.txns.iter().map(|(h, _)| h)
    }

    /// Re-checks the pool against a new best chain's `ledger`. `returned`
    /// are the transactions of blocks the switch took back, oldest first;
    /// they come before what was pending (they were seen first). No
    /// signature is verified again: each was verified when first seen.
    pub fn rebuild(&mut self, ledger: &Ledger, returned: Vec<Transaction>) -> Rebuilt {
        let mut report = Rebuilt::default();
        let was_pending = std::mem::take(&mut self.txns);
        self.hashes.clear();
        self.overlay.clear();
        // A taken-back block's reward is no transaction to mine again: the
        // block that replaces it pays its own.
        let rewards = ledger.profile().minting() == Minting::RewardsAndMint;
        let candidates = returned
            .into_iter()
            .filter(|t| !(rewards && t.is_coinbase()))
            .map(|t| (t.hash(), t, true))
            .chain(was_pending.into_iter().map(|(h, t)| (h, t, false)));
        for (hash, txn, from_block) in candidates {
            if self.hashes.contains(&hash) {
                continue;
            }
            if ledger.contains(&hash) {
                if !from_block {
                    report.confirmed += 1;
                }
                continue;
            }
            // A pool over its limit after a switch keeps the oldest.
            if self.txns.len() >= self.max {
                continue;
            }
            match check_spend(&self.overlay.view(ledger), &txn, hash, None) {
                Ok(checked) => {
                    self.overlay.apply(ledger, &txn, &checked);
                    self.hashes.insert(hash);
                    self.txns.push((hash, txn));
                    if from_block {
                        report.returned += 1;
                    }
                }
                Err(e) => report.dropped.push((hash, e)),
            }
        }
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::{Profile, Signing};
    use crate::transaction::OutputKind;
    use crate::wallet::Wallet;
    use bytes::Bytes;
    use rand::rngs::OsRng;

    // Pool mechanics, with the toycoin profile's free coinbases as the
    // cheapest valid transactions (steady's money rules: tests/rules.rs).
    fn coinbase(tag: &str, value: i64) -> Transaction {
        Transaction::coinbase(Bytes::from(tag.to_owned()), value)
    }

    #[test]
    fn keeps_arrival_order_and_refuses_repeats_and_overflow() {
        let ledger = Ledger::new(Profile::toycoin());
        let mut pool = Mempool::new(2);
        let (a, b, c) = (coinbase("a", 1), coinbase("b", 2), coinbase("c", 3));
        assert_eq!(pool.add(&ledger, a.clone(), Some(&[])), Ok(a.hash()));
        assert_eq!(
            pool.add(&ledger, a.clone(), Some(&[])),
            Err(MempoolError::Invalid(TxError::AlreadyPending))
        );
        pool.add(&ledger, b.clone(), Some(&[])).unwrap();
        assert_eq!(pool.add(&ledger, c, Some(&[])), Err(MempoolError::Full(2)));
        assert_eq!(
            pool.add(&ledger, a.clone(), Some(&[])),
            Err(MempoolError::Invalid(TxError::AlreadyPending)),
            "a repeat is named as such even when the pool is full"
        );
        assert_eq!(pool.select(10), vec![a.clone(), b.clone()]);
        assert_eq!(pool.select(1), vec![a]);
        assert_eq!(pool.len(), 2);
    }

    #[test]
    fn chained_spends_are_kept_and_the_first_of_two_double_spends_wins() {
        let (alice, bob) = (
            Wallet::generate(&mut OsRng).unwrap(),
            Wallet::generate(&mut OsRng).unwrap(),
        );
        let ledger = Ledger::new(Profile::toycoin());
        let mut pool = Mempool::default();
        let funding = Transaction::coinbase(alice.address().clone(), 10);
        let funded = pool.add(&ledger, funding.clone(), Some(&[])).unwrap();
        let token = funding.output(funded, OutputKind::Receiver);
        let pay = alice
            .transfer(
                &mut OsRng,
                bob.address(),
                4,
                vec![token.clone()],
                Signing::Original,
            )
            .unwrap();
        pool.add(&ledger, pay.txn.clone(), Some(&pay.tokens))
            .expect("spends a pending output");
        let again = alice
            .transfer(
                &mut OsRng,
                alice.address(),
                10,
                vec![token],
                Signing::Original,
            )
            .unwrap();
        assert!(matches!(
            pool.add(&ledger, again.txn, Some(&again.tokens)),
            Err(MempoolError::Invalid(TxError::AlreadySpent { .. }))
        ));
        assert_eq!(pool.select(10), vec![funding, pay.txn]);
    }

    #[test]
    fn rebuild_drops_the_confirmed_and_takes_back_rolled_back_blocks_first() {
        let mut chain_ledger = Ledger::new(Profile::toycoin());
        let mut pool = Mempool::default();
        let (a, b, old) = (coinbase("a", 1), coinbase("b", 2), coinbase("old", 3));
        pool.add(&chain_ledger, a.clone(), Some(&[])).unwrap();
        pool.add(&chain_ledger, b.clone(), Some(&[])).unwrap();
        // A new tip confirms `a`; a rolled-back block held `old` and `b`.
        chain_ledger.apply_txns(std::slice::from_ref(&a)).unwrap();
        let report = pool.rebuild(&chain_ledger, vec![old.clone(), b.clone()]);
        assert_eq!(report.confirmed, 1);
        assert_eq!(report.returned, 2, "both of the block's transactions");
        assert!(report.dropped.is_empty());
        assert_eq!(pool.select(10), vec![old, b]);
        assert!(!pool.contains(&a.hash()));
    }
}
