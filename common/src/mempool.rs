//! The mempool: valid transactions waiting for a block (the node's pending
//! pool; the listener judges transactions with one too).
//!
//! Transactions are kept in the order they arrived, so a transaction that
//! spends another pending one's outputs always comes after it. Two pending
//! transactions never spend the same output: the first seen wins. When the
//! best chain changes, [`Mempool::rebuild`] re-checks everything against the
//! new tip (taken-back blocks' transactions first), drops what is now
//! confirmed and reports what no longer fits.
//!
//! Bounded in transactions and in bytes ([`Transaction::size`]), and fair
//! between senders: one sender may hold at most a [`SENDER_SHARE`]th of
//! either bound, and [`Mempool::select`] takes transactions round-robin
//! between senders, so one client's flood can neither keep others'
//! transactions out of the pool nor out of the next block.

use std::collections::{HashMap, HashSet, VecDeque};

use crate::hash::Txid;
use crate::ledger::{check_spend, check_transaction, Ledger, OutputView, Overlay, TxError};
use crate::profile::Minting;
use crate::transaction::{Address, Token, Transaction};

/// Default most transactions pending at once.
pub const DEFAULT_MAX_PENDING: usize = 5_000;
/// Default most bytes of transactions pending at once.
pub const DEFAULT_MAX_PENDING_BYTES: usize = 16 * 1024 * 1024;
/// One sender may hold at most this fraction (1/N) of the pool's
/// transactions and of its bytes.
pub const SENDER_SHARE: usize = 16;

/// Why a transaction was not added.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MempoolError {
    #[error("pool is full ({0} transactions pending)")]
    Full(usize),
    #[error("pool is full ({0} bytes pending)")]
    FullBytes(usize),
    #[error("its sender already has {txns} transactions ({bytes} bytes) pending, its share of the pool: wait for a block")]
    SenderShare { txns: usize, bytes: usize },
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

/// What one sender has pending.
#[derive(Clone, Copy, Debug, Default)]
struct Share {
    txns: usize,
    bytes: usize,
}

/// Valid transactions not yet in the best chain.
#[derive(Clone, Debug)]
pub struct Mempool {
    txns: Vec<(Txid, Transaction)>,
    hashes: HashSet<Txid>,
    overlay: Overlay,
    bytes: usize,
    senders: HashMap<Address, Share>,
    max: usize,
    max_bytes: usize,
}

impl Default for Mempool {
    fn default() -> Mempool {
        Mempool::new(DEFAULT_MAX_PENDING)
    }
}

impl Mempool {
    /// A pool of at most `max` transactions and
    /// [`DEFAULT_MAX_PENDING_BYTES`].
    pub fn new(max: usize) -> Mempool {
        Mempool::with_bytes(max, DEFAULT_MAX_PENDING_BYTES)
    }

    /// A pool of at most `max` transactions and `max_bytes` bytes.
    pub fn with_bytes(max: usize, max_bytes: usize) -> Mempool {
        Mempool {
            txns: Vec::new(),
            hashes: HashSet::new(),
            overlay: Overlay::new(),
            bytes: 0,
            senders: HashMap::new(),
            max,
            max_bytes,
        }
    }

    pub fn len(&self) -> usize {
        self.txns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.txns.is_empty()
    }

    /// Bytes of the pending transactions.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn contains(&self, hash: &Txid) -> bool {
        self.hashes.contains(hash)
    }

    /// Whether one more transaction of `size` bytes from `sender` fits.
    fn room_for(&self, sender: &Address, size: usize) -> Result<(), MempoolError> {
        if self.txns.len() >= self.max {
            return Err(MempoolError::Full(self.txns.len()));
        }
        if self.bytes + size > self.max_bytes {
            return Err(MempoolError::FullBytes(self.bytes));
        }
        let share = self.senders.get(sender).copied().unwrap_or_default();
        let (max_txns, max_bytes) = (
            (self.max / SENDER_SHARE).max(1),
            (self.max_bytes / SENDER_SHARE).max(1),
        );
        if share.txns >= max_txns || share.bytes + size > max_bytes {
            return Err(MempoolError::SenderShare {
                txns: share.txns,
                bytes: share.bytes,
            });
        }
        Ok(())
    }

    fn keep(&mut self, hash: Txid, txn: Transaction) {
        let size = txn.size();
        let share = self.senders.entry(txn.sender.clone()).or_default();
        share.txns += 1;
        share.bytes += size;
        self.bytes += size;
        self.hashes.insert(hash);
        self.txns.push((hash, txn));
    }

    /// Checks a received transaction completely (signatures included)
    /// against `ledger` and the pending ones, and keeps it if the pool and
    /// its sender's share have room.
    pub fn add(
        &mut self,
        ledger: &Ledger,
        txn: Transaction,
        tokens: Option<&[Token]>,
    ) -> Result<Txid, MempoolError> {
        let hash = txn.hash();
        if !self.hashes.contains(&hash) {
            self.room_for(&txn.sender, txn.size())?;
        }
        let checked = check_transaction(&self.overlay.view(ledger), &txn, hash, tokens)
            .map_err(MempoolError::Invalid)?;
        self.overlay.apply(ledger, &txn, &checked);
        self.keep(hash, txn);
        Ok(hash)
    }

    /// Up to `n` pending transactions for a block, taken round-robin
    /// between senders (each sender's in the order they arrived, senders in
    /// the order they first sent), a transaction only after the pending
    /// ones it spends: a valid block's worth, fair to every sender.
    pub fn select(&self, n: usize) -> Vec<Transaction> {
        let mut order: Vec<&Address> = Vec::new();
        let mut queues: HashMap<&Address, VecDeque<usize>> = HashMap::new();
        for (i, (_, txn)) in self.txns.iter().enumerate() {
            let queue = queues.entry(&txn.sender).or_insert_with(|| {
                order.push(&txn.sender);
                VecDeque::new()
            });
            queue.push_back(i);
        }
        let mut taken: HashSet<Txid> = HashSet::new();
        let mut out = Vec::new();
        while out.len() < n {
            let mut progress = false;
            for sender in &order {
                if out.len() >= n {
                    break;
                }
                let Some(queue) = queues.get_mut(sender) else {
                    continue;
                };
                let Some(&i) = queue.front() else {
                    continue;
                };
                let (hash, txn) = &self.txns[i];
                let ready = txn
                    .previous_hashes
                    .iter()
                    .all(|p| !self.hashes.contains(p) || taken.contains(p));
                if ready {
                    queue.pop_front();
                    taken.insert(*hash);
                    out.push(txn.clone());
                    progress = true;
                }
            }
            if !progress {
                break;
            }
        }
        out
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
        self.senders.clear();
        self.bytes = 0;
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
            // A pool over its limits after a switch keeps the oldest.
            if self.room_for(&txn.sender, txn.size()).is_err() {
                continue;
            }
            match check_spend(&self.overlay.view(ledger), &txn, hash, None) {
                Ok(checked) => {
                    self.overlay.apply(ledger, &txn, &checked);
                    self.keep(hash, txn);
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
    use crate::hash::Txid;
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
        // Every coinbase has one sender, whose share of 32 is 2.
        let mut pool = Mempool::new(32);
        let (a, b, c) = (coinbase("a", 1), coinbase("b", 2), coinbase("c", 3));
        assert_eq!(pool.add(&ledger, a.clone(), Some(&[])), Ok(a.hash()));
        assert_eq!(
            pool.add(&ledger, a.clone(), Some(&[])),
            Err(MempoolError::Invalid(TxError::AlreadyPending))
        );
        pool.add(&ledger, b.clone(), Some(&[])).unwrap();
        assert!(matches!(
            pool.add(&ledger, c, Some(&[])),
            Err(MempoolError::SenderShare { txns: 2, .. })
        ));
        assert_eq!(
            pool.add(&ledger, a.clone(), Some(&[])),
            Err(MempoolError::Invalid(TxError::AlreadyPending)),
            "a repeat is named as such even when the share is used up"
        );
        assert_eq!(pool.select(10), vec![a.clone(), b.clone()]);
        assert_eq!(pool.select(1), vec![a]);
        assert_eq!(pool.len(), 2);
        assert_eq!(pool.bytes(), 2 * coinbase("a", 1).size());
    }

    /// A transaction from `sender` of about `size` bytes spending `inputs`
    /// (unchecked: for the pool's bookkeeping alone).
    fn from(sender: &str, size: usize, inputs: Vec<Txid>) -> Transaction {
        let mut t = coinbase("r", 1);
        t.sender = Bytes::from(sender.to_owned());
        t.previous_hashes = inputs;
        t.receiver = Bytes::new();
        t.receiver = Bytes::from(vec![b'r'; size.saturating_sub(t.size())]);
        t
    }

    fn keep(pool: &mut Mempool, t: &Transaction) -> Txid {
        pool.room_for(&t.sender, t.size()).unwrap();
        pool.keep(t.hash(), t.clone());
        t.hash()
    }

    #[test]
    fn bounded_in_transactions_and_bytes_and_per_sender() {
        // 32 transactions, 32,000 bytes: a sender may hold 2 and 2,000.
        let mut pool = Mempool::with_bytes(32, 32_000);
        keep(&mut pool, &from("flood", 100, vec![]));
        keep(&mut pool, &from("flood", 100, vec![]));
        assert_eq!(
            pool.room_for(&Bytes::from("flood"), 100),
            Err(MempoolError::SenderShare {
                txns: 2,
                bytes: 200
            })
        );
        assert!(matches!(
            pool.room_for(&Bytes::from("big"), 2_001),
            Err(MempoolError::SenderShare { txns: 0, .. })
        ));
        for i in 0..30 {
            keep(&mut pool, &from(&format!("s{i}"), 100, vec![]));
        }
        assert_eq!(
            pool.room_for(&Bytes::from("late"), 100),
            Err(MempoolError::Full(32))
        );
        let mut pool = Mempool::with_bytes(1000, 16_000);
        for i in 0..16 {
            keep(&mut pool, &from(&format!("s{i}"), 1000, vec![]));
        }
        assert_eq!(
            pool.room_for(&Bytes::from("late"), 100),
            Err(MempoolError::FullBytes(16_000))
        );
    }

    #[test]
    fn a_block_takes_senders_in_turn_and_parents_before_children() {
        let mut pool = Mempool::with_bytes(1000, 1_000_000);
        let flood: Vec<Txid> = (0..50)
            .map(|i| keep(&mut pool, &from("flood", 100 + i, vec![])))
            .collect();
        let honest = keep(&mut pool, &from("honest", 100, vec![]));
        // Spends the flood's 3rd transaction: only after it.
        let child = keep(&mut pool, &from("child", 100, vec![flood[2]]));
        let picked: Vec<Txid> = pool.select(9).iter().map(Transaction::hash).collect();
        assert_eq!(picked.len(), 9);
        assert_eq!(&picked[..2], &[flood[0], honest], "the honest one at once");
        let at = |h: &Txid| picked.iter().position(|p| p == h);
        assert!(at(&child) > at(&flood[2]), "{picked:?}");
        assert!(at(&child).is_some(), "in once its parent is");
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
