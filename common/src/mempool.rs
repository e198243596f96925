//! The pending pool: valid transactions waiting for a block.
//!
//! Transactions are kept in the order they arrived, so a transaction that
//! spends another pending one's outputs always comes after it, and the
//! first `n` are always a valid block. Two pending transactions never spend
//! the same output: the first seen wins. When the best chain changes,
//! [`Pool::rebuild`] re-checks everything against the new tip (taken-back
//! blocks' transactions first), drops what is now confirmed and reports
//! what no longer fits.

use std::collections::HashSet;

use toycoin_common::hash::Hash;
use toycoin_common::ledger::{check_signatures, check_spend, Ledger, Overlay, TxError};
use toycoin_common::transaction::{Token, Transaction};

/// Default most transactions pending at once.
pub const DEFAULT_MAX_PENDING: usize = 5_000;

/// Why a transaction was not added.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    #[error("already pending")]
    AlreadyPending,
    #[error("pool is full ({0} transactions pending)")]
    Full(usize),
    #[error("{0}")]
    Invalid(TxError),
}

/// What [`Pool::rebuild`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rebuilt {
    /// Pending transactions now in the best chain.
    pub confirmed: usize,
    /// Transactions of taken-back blocks that are pending again.
    pub returned: usize,
    /// Transactions that no longer fit the chain, and why.
    pub dropped: Vec<(Hash, TxError)>,
}

/// Valid transactions not yet in the best chain.
#[derive(Clone, Debug)]
pub struct Pool {
    txns: Vec<(Hash, Transaction)>,
    hashes: HashSet<Hash>,
    overlay: Overlay,
    max: usize,
}

impl Default for Pool {
    fn default() -> Pool {
        Pool::new(DEFAULT_MAX_PENDING)
    }
}

impl Pool {
    pub fn new(max: usize) -> Pool {
        Pool {
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

    pub fn contains(&self, hash: &Hash) -> bool {
        self.hashes.contains(hash)
    }

    /// Checks a received transaction completely (signatures included)
    /// against `ledger` and the pending ones, and keeps it.
    pub fn add(
        &mut self,
        ledger: &Ledger,
        txn: Transaction,
        tokens: Option<&[Token]>,
    ) -> Result<Hash, PoolError> {
        let hash = txn.hash();
        if self.hashes.contains(&hash) {
            return Err(PoolError::AlreadyPending);
        }
        if self.txns.len() >= self.max {
            return Err(PoolError::Full(self.txns.len()));
        }
        let checked = check_spend(&self.overlay.view(ledger), &txn, hash, tokens)
            .map_err(PoolError::Invalid)?;
        if !txn.is_coinbase() {
            check_signatures(&txn).map_err(PoolError::Invalid)?;
        }
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
    pub fn hashes(&self) -> impl Iterator<Item = &Hash> {
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
        let candidates = returned
            .into_iter()
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
