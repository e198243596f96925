//! Signatures: checking a transaction's two signatures (over what
//! [`Signing`] says they cover, `Transaction::signed_message`) with the sender's key ([`check_signatures`]), and the
//! pool of threads that verifies a block's signatures alongside its other
//! checks ([`verify_ahead`], `SignaturesAhead`).

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};

use crate::hash::Txid;
use crate::ledger::TxError;
use crate::transaction::{OutputKind, Signing, Transaction};
use crate::wallet::{self, SignatureError};

/// Both signatures of a non-coinbase transaction verify with the sender's
/// key, over what `signing` says they cover.
pub fn check_signatures(txn: &Transaction, signing: Signing) -> Result<(), TxError> {
    check_signatures_named(txn, &txn_key(txn, signing), signing)
}

/// [`check_signatures`] for a transaction already named ([`txn_key`]).
fn check_signatures_named(
    txn: &Transaction,
    named: &TxnKey,
    signing: Signing,
) -> Result<(), TxError> {
    verify_one(txn, named, signing, 0)?;
    verify_one(txn, named, signing, 1)
}

/// [`check_signatures`] for a transaction whose id is `txid`: once both
/// verified, the cache keeps the id too, so that its block does not hash
/// it again ([`known_txid`]).
pub(crate) fn check_signatures_of(
    txn: &Transaction,
    txid: Txid,
    signing: Signing,
) -> Result<(), TxError> {
    let named = txn_key(txn, signing);
    check_signatures_named(txn, &named, signing)?;
    remember_txid(&named, txid);
    Ok(())
}

/// The name of each of `txns` ([`txn_key`]; `None` for a coinbase, which
/// has no signatures): computed once for a block, for its ids
/// ([`known_txid`]) and its signatures.
pub(crate) fn txn_names(txns: &[Transaction], signing: Signing) -> Vec<Option<TxnKey>> {
    txns.iter()
        .map(|t| (!t.is_coinbase()).then(|| txn_key(t, signing)))
        .collect()
}

/// The key a transaction's signatures verify with: its sender's.
fn sender_key(txn: &Transaction) -> Result<std::sync::Arc<wallet::PublicKey>, TxError> {
    wallet::public_key(&txn.sender).map_err(|_| TxError::BadSenderAddress)
}

/// One of `txn`'s signatures (0: the receiver's, 1: the sender's), named
/// `named`, with its sender's key: from the cache when it verified lately
/// (the key is not even looked up), else verified.
fn verify_one(
    txn: &Transaction,
    named: &TxnKey,
    signing: Signing,
    which: usize,
) -> Result<(), TxError> {
    let (name, role, signature) = if which == 0 {
        ("receiver", OutputKind::Receiver, &txn.receiver_signature)
    } else {
        ("sender", OutputKind::Change, &txn.sender_signature)
    };
    if verified_before(named, which) {
        return Ok(());
    }
    let key = sender_key(txn)?;
    let msg = txn.signed_message(signing, role);
    wallet::verify_with(&key, &msg, signature).map_err(|e| match e {
        SignatureError::BadAddress => TxError::BadSenderAddress,
        _ => TxError::BadSignature { which: name },
    })?;
    remember_verified(named, which);
    Ok(())
}

/// Transactions whose signatures verified lately, so that a block of
/// transactions a node took into its pool already costs no RSA check
/// (Bitcoin Core's signature cache), nor hashing each again for its id:
/// by [`txn_key`], the SHA-256 of the transaction's fields, each with its
/// length, so only the very same transaction is spared (never one that
/// merely shares its id). Only successes are kept, at most
/// [`MAX_SIGNATURE_CACHE`] transactions, the oldest forgotten first: what
/// the newest 2,048 transactions need (a busy class's 10 minutes; a block
/// needs only what is pending). Its memory, some 400 KB by heaptrack, is
/// taken whole with the first check, so that a program's memory does not
/// grow with it through a lesson (issue 34's soak: it had grown by
/// doubling).
pub const MAX_SIGNATURE_CACHE: usize = 2_048;

/// What the cache knows of one transaction.
#[derive(Clone, Copy, Default)]
struct Checked {
    /// Bit `which` set: that signature verified.
    verified: u8,
    /// Its id, once both verified where the id was at hand.
    txid: Option<Txid>,
}

#[derive(Default)]
struct SignatureCache {
    entries: crate::maps::Map<TxnKey, Checked>,
    order: std::collections::VecDeque<TxnKey>,
    enabled: bool,
}

fn signature_cache() -> &'static std::sync::Mutex<SignatureCache> {
    static CACHE: std::sync::OnceLock<std::sync::Mutex<SignatureCache>> =
        std::sync::OnceLock::new();
    CACHE.get_or_init(|| {
        std::sync::Mutex::new(SignatureCache {
            entries: crate::maps::Map::with_capacity_and_hasher(
                MAX_SIGNATURE_CACHE + 1,
                Default::default(),
            ),
            order: std::collections::VecDeque::with_capacity(MAX_SIGNATURE_CACHE + 1),
            enabled: true,
        })
    })
}

fn lock_cache() -> std::sync::MutexGuard<'static, SignatureCache> {
    signature_cache().lock().unwrap_or_else(|e| e.into_inner())
}

/// A transaction named for the signature cache: the SHA-256 of every
/// field it has, each with its length, and what `signing` says the
/// signatures cover. Unlike its id (SHA-512 over the fields run together,
/// whose borders are open: two transactions can share it, issue 23's
/// ambiguity), it names the fields themselves, hence the key, the
/// messages and the signatures its checks depend on. Computed once for
/// both signatures: hashing the transaction once (some 1.5 KB) spares
/// building both signed messages and hashing each (some 3.4 KB).
pub(crate) type TxnKey = [u8; 32];

fn txn_key(txn: &Transaction, signing: Signing) -> TxnKey {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update([signing as u8]);
    h.update((txn.previous_hashes.len() as u64).to_be_bytes());
    for previous in &txn.previous_hashes {
        h.update(previous.as_bytes());
    }
    for (field, amount) in [
        (&txn.receiver, txn.receiver_value),
        (&txn.sender, txn.sender_change),
    ] {
        h.update((field.len() as u64).to_be_bytes());
        h.update(field);
        h.update(amount.to_be_bytes());
    }
    for signature in [&txn.receiver_signature, &txn.sender_signature] {
        h.update((signature.len() as u64).to_be_bytes());
        h.update(signature);
    }
    h.finalize().into()
}

thread_local! {
    /// Per thread, so that a test counting its own hits is not moved by
    /// another test running beside it.
    static CACHE_HITS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Signature checks the cache has spared so far on this thread (a block's
/// checks made on helper threads count on theirs).
pub fn signature_cache_hits() -> usize {
    CACHE_HITS.with(std::cell::Cell::get)
}

fn verified_before(named: &TxnKey, which: usize) -> bool {
    let cache = lock_cache();
    let hit = cache.enabled
        && cache
            .entries
            .get(named)
            .is_some_and(|c| c.verified & (1 << which) != 0);
    if hit {
        CACHE_HITS.with(|hits| hits.set(hits.get() + 1));
    }
    hit
}

fn remember_verified(named: &TxnKey, which: usize) {
    let mut cache = lock_cache();
    if !cache.enabled {
        return;
    }
    match cache.entries.entry(*named) {
        std::collections::hash_map::Entry::Occupied(mut e) => {
            e.get_mut().verified |= 1 << which;
            return;
        }
        std::collections::hash_map::Entry::Vacant(e) => {
            e.insert(Checked {
                verified: 1 << which,
                txid: None,
            });
        }
    }
    cache.order.push_back(*named);
    while cache.order.len() > MAX_SIGNATURE_CACHE {
        if let Some(old) = cache.order.pop_front() {
            cache.entries.remove(&old);
        }
    }
}

/// Keeps `txid` as the id of the transaction `named`, if both its
/// signatures are in the cache (nothing else is kept: a refused block's
/// transactions take no place).
fn remember_txid(named: &TxnKey, txid: Txid) {
    let mut cache = lock_cache();
    if let Some(c) = cache.entries.get_mut(named) {
        if c.verified == 0b11 {
            c.txid = Some(txid);
        }
    }
}

/// The id of the transaction `named`, if the cache has it: the same fields
/// (the name covers each with its length), hence the same id.
pub(crate) fn known_txid(named: &TxnKey) -> Option<Txid> {
    let cache = lock_cache();
    if !cache.enabled {
        return None;
    }
    cache.entries.get(named).and_then(|c| c.txid)
}

/// Empties the signature cache and turns it on or off: for benchmarks
/// that time the checks themselves.
pub fn reset_signature_cache(enabled: bool) {
    let mut cache = lock_cache();
    cache.entries.clear();
    cache.order.clear();
    cache.enabled = enabled;
}

/// Threads that verify a block's signatures; 0: one per core, up to
/// [`MAX_SIGNATURE_THREADS`].
static SIGNATURE_THREADS: AtomicUsize = AtomicUsize::new(0);
/// Most threads verifying one block's signatures by default.
pub const MAX_SIGNATURE_THREADS: usize = 8;
/// Transactions a thread must have to be worth handing work to (two RSA
/// verifications each, some 35 µs).
const MIN_TXNS_PER_THREAD: usize = 2;
/// Transactions checked ahead of their signatures, per verifying thread:
/// what a block that fails a cheap check late costs in signatures at most.
pub(crate) const WINDOW_PER_THREAD: usize = 16;

/// Sets how many threads verify a block's signatures (0: one per core).
/// For benchmarks comparing one thread with several.
pub fn set_signature_threads(threads: usize) {
    SIGNATURE_THREADS.store(threads, Ordering::Relaxed);
}

/// One thread per core, at most [`MAX_SIGNATURE_THREADS`]: how many
/// verify by default, and the pool's size.
fn cores_for_signatures() -> usize {
    // Asking the system for its cores reads files (cgroup limits): once.
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(MAX_SIGNATURE_THREADS)
    })
}

pub(crate) fn signature_threads() -> usize {
    match SIGNATURE_THREADS.load(Ordering::Relaxed) {
        0 => cores_for_signatures(),
        n => n,
    }
}

/// The threads that help this one verify signatures, one per core (at most
/// [`MAX_SIGNATURE_THREADS`]): a block's work goes to whichever is awake,
/// so one fewer (tried) waited longer for a sleeping thread to wake. With
/// them, how many threads verify ([`set_signature_threads`]); `None` for
/// one thread, or where no helper could start.
pub(crate) fn signature_pool() -> Option<(&'static rayon::ThreadPool, usize)> {
    static POOL: std::sync::OnceLock<Option<rayon::ThreadPool>> = std::sync::OnceLock::new();
    let threads = signature_threads();
    if threads <= 1 {
        return None;
    }
    let pool = POOL
        .get_or_init(|| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(cores_for_signatures())
                .thread_name(|i| format!("toycoin-signatures-{i}"))
                .build()
                .ok()
        })
        .as_ref()?;
    Some((pool, threads))
}

/// Runs `work` on this thread while the signatures of `txns` (each with
/// its position) are verified on the signature threads, this one joining
/// in once `work` is done: what `work` returned, and the first signature
/// failure by position. On one thread, `work` first, then the signatures
/// in order up to the first that fails.
pub(crate) fn verify_alongside<R>(
    txns: &[(usize, &Transaction, Option<TxnKey>)],
    signing: Signing,
    work: impl FnOnce() -> R,
) -> (R, Option<(usize, TxError)>) {
    let signatures = SignaturesAhead::new([txns.iter().copied()], signing);
    let threads = signature_threads().min(txns.len() / MIN_TXNS_PER_THREAD);
    match signature_pool() {
        // The helpers are pool threads, started once and kept: a thread
        // started per block cost as much as three signatures.
        Some((pool, _)) if threads > 1 => pool.in_place_scope(|s| {
            for _ in 1..threads {
                s.spawn(|_| signatures.help());
            }
            let done = work();
            let failure = signatures.block(0);
            signatures.stop();
            (done, failure)
        }),
        _ => (work(), signatures.block(0)),
    }
}

/// The signatures of a run of blocks, verified by the signature threads in
/// order, ahead of the blocks themselves ([`crate::chain::Chain::extend`];
/// one block's, [`verify_alongside`]): while this thread checks and applies
/// one block, the helpers verify its signatures and the next blocks'; this
/// thread verifies those of its block that no helper has taken yet. Every
/// thread takes the next signature nobody has taken, so the shares balance
/// themselves however the machine schedules them. The helpers never wait
/// for a block, so a node catching up keeps every core busy (one block at
/// a time, a helper woke and slept for each). After the first signature
/// that fails nobody takes another: the ones after it cannot come first.
#[derive(Debug)]
pub(crate) struct SignaturesAhead<'a> {
    signing: Signing,
    /// One per signature, in order: (position in its block, which of the
    /// two, transaction, index of its name in `names`).
    items: Vec<(usize, usize, &'a Transaction, usize)>,
    /// Each transaction's [`txn_key`], computed once by whichever thread
    /// checks one of its signatures first.
    names: Vec<std::sync::OnceLock<TxnKey>>,
    /// Each block's first item, then one past the last.
    starts: Vec<usize>,
    /// The first item nobody has taken.
    next: AtomicUsize,
    /// Per item: 0 not verified yet, 1 valid, 2 invalid.
    verdicts: Vec<AtomicU8>,
    /// Set when a signature failed or the blocks' checks stopped: nobody
    /// takes anything more.
    stop: AtomicBool,
}

impl<'a> SignaturesAhead<'a> {
    /// The signatures of `blocks` (each a block's transactions with their
    /// positions and, where known already, their names), in order.
    pub fn new<B, T>(blocks: B, signing: Signing) -> Self
    where
        B: IntoIterator<Item = T>,
        T: IntoIterator<Item = (usize, &'a Transaction, Option<TxnKey>)>,
    {
        let mut items = Vec::new();
        let mut names = Vec::new();
        let mut starts = vec![0];
        for txns in blocks {
            for (i, txn, named) in txns {
                if !txn.is_coinbase() {
                    let k = names.len();
                    names.push(named.map_or_else(std::sync::OnceLock::new, Into::into));
                    items.extend([(i, 0, txn, k), (i, 1, txn, k)]);
                }
            }
            starts.push(items.len());
        }
        let verdicts = items.iter().map(|_| AtomicU8::new(0)).collect();
        SignaturesAhead {
            signing,
            items,
            names,
            starts,
            next: AtomicUsize::new(0),
            verdicts,
            stop: AtomicBool::new(false),
        }
    }

    /// The names of block `k`'s `len` transactions (`None` for a
    /// coinbase), as [`txn_names`]: those a helper named already are not
    /// named again.
    pub fn names_of_block(&self, k: usize, len: usize) -> Vec<Option<TxnKey>> {
        let mut named = vec![None; len];
        for &(i, which, txn, n) in &self.items[self.starts[k]..self.starts[k + 1]] {
            if which == 0 && i < len {
                named[i] = Some(*self.names[n].get_or_init(|| txn_key(txn, self.signing)));
            }
        }
        named
    }

    /// Item `at`'s signature (0: the receiver's, 1: the sender's) verifies
    /// with its sender's key.
    fn check(&self, at: usize) -> Result<(), TxError> {
        let (_, which, txn, k) = self.items[at];
        let named = self.names[k].get_or_init(|| txn_key(txn, self.signing));
        verify_one(txn, named, self.signing, which)
    }

    fn verify(&self, at: usize) {
        // A verdict is stored whatever happens: the block's thread waits
        // for it (a panic, a bug, counts as invalid rather than a hang).
        let valid =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.check(at).is_ok()))
                .unwrap_or(false);
        if !valid {
            self.stop();
        }
        self.verdicts[at].store(if valid { 1 } else { 2 }, Ordering::Release);
    }

    /// A helper's part: takes and verifies signatures in order until all
    /// are taken or the checks stopped.
    pub fn help(&self) {
        while !self.stop.load(Ordering::Relaxed) {
            let at = self.next.fetch_add(1, Ordering::Relaxed);
            if at >= self.items.len() {
                return;
            }
            self.verify(at);
        }
    }

    /// Tells the helpers to take nothing more.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Block `k`'s signatures: those no helper has taken are verified
    /// here, the others waited for. The first failure by position.
    pub fn block(&self, k: usize) -> Option<(usize, TxError)> {
        let (lo, hi) = (self.starts[k], self.starts[k + 1]);
        while !self.stop.load(Ordering::Relaxed) {
            let at = self.next.load(Ordering::Relaxed);
            if at >= hi {
                break;
            }
            if self
                .next
                .compare_exchange(at, at + 1, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
            {
                self.verify(at);
            }
        }
        // Every item taken is verified by whoever took it; those nobody took
        // come after a failure (taking stopped there), which comes first.
        let taken = self.next.load(Ordering::Relaxed).min(hi);
        let mut failure = None;
        for at in lo..taken {
            let verdict = loop {
                match self.verdicts[at].load(Ordering::Acquire) {
                    0 => std::thread::yield_now(),
                    v => break v,
                }
            };
            if verdict == 2 && failure.is_none() {
                // The reason, found again: a refused block's cost, once.
                if let Err(e) = self.check(at) {
                    failure = Some((self.items[at].0, e));
                }
            }
        }
        failure
    }
}

/// Runs `work` (a block's checks and its ledger, some 50 µs for ten
/// transfers) on this thread while the signatures of the block's first
/// window of transactions are verified on the signature threads; `work` is
/// told how many transactions that window holds, whose signatures are not
/// its to verify ([`Ledger::apply_block`](crate::ledger::Ledger::apply_block)'s `signed_elsewhere`). Returns
/// what `work` returned and the window's first signature failure by
/// position. On one thread, only `work`, told 0: its checks come before any
/// signature.
pub(crate) fn verify_ahead<R>(
    signing: Signing,
    txns: &[Transaction],
    names: &[Option<TxnKey>],
    work: impl FnOnce(usize) -> R,
) -> (R, Option<(usize, TxError)>) {
    let threads = signature_threads();
    if threads <= 1 {
        return (work(0), None);
    }
    let upto = txns.len().min(WINDOW_PER_THREAD * threads);
    let signed: Vec<(usize, &Transaction, Option<TxnKey>)> = txns[..upto]
        .iter()
        .zip(names)
        .enumerate()
        .filter(|(_, (t, _))| !t.is_coinbase())
        .map(|(i, (t, named))| (i, t, *named))
        .collect();
    verify_alongside(&signed, signing, || work(upto))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wallet::Wallet;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    /// Issue 39: a transaction's signatures checked once (in the pool)
    /// are not checked again (in its block); a signature changed since is.
    #[test]
    fn a_signature_verified_once_is_not_verified_again_and_a_changed_one_fails() {
        let mut rng = StdRng::seed_from_u64(39);
        let (mint, payee) = (
            Wallet::generate(&mut rng).unwrap(),
            Wallet::generate(&mut rng).unwrap(),
        );
        let grant = mint.grant(&mut rng, payee.address(), 5).unwrap();
        let signing = Signing::Amounts;
        check_signatures(&grant, signing).unwrap();
        let before = signature_cache_hits();
        check_signatures(&grant, signing).unwrap();
        assert!(signature_cache_hits() >= before + 2, "both from the cache");
        let mut changed = grant.clone();
        let mut sig = changed.sender_signature.to_vec();
        sig[10] ^= 1;
        changed.sender_signature = sig.into();
        assert!(matches!(
            check_signatures(&changed, signing),
            Err(TxError::BadSignature { which: "sender" })
        ));
        let mut rewritten = grant.clone();
        rewritten.receiver_value += 1;
        assert!(check_signatures(&rewritten, signing).is_err());
    }

    /// A payment of 20 (signed over its amounts) and a transaction with the
    /// same id and other fields: the amount's last digit moved into the
    /// receiver's signature (20 and a signature, or 2 and "0" before it).
    fn paid_and_alias(seed: u64) -> (Transaction, Transaction) {
        let mut rng = StdRng::seed_from_u64(seed);
        let (payer, payee) = (
            Wallet::generate(&mut rng).unwrap(),
            Wallet::generate(&mut rng).unwrap(),
        );
        let mint = Wallet::generate(&mut rng).unwrap();
        let grant = mint.grant(&mut rng, payer.address(), 50).unwrap();
        let token = grant.output(grant.hash(), OutputKind::Receiver);
        let paid = payer
            .transfer(&mut rng, payee.address(), 20, vec![token], Signing::Amounts)
            .unwrap()
            .txn;
        let mut alias = paid.clone();
        alias.receiver_value = 2;
        let mut rsig = b"0".to_vec();
        rsig.extend_from_slice(&paid.receiver_signature);
        alias.receiver_signature = rsig.into();
        assert_eq!(alias.hash(), paid.hash(), "the same id");
        assert_ne!(alias, paid);
        (paid, alias)
    }

    /// Two transactions can share an id: the id runs the fields together,
    /// so a byte moved from one field to the next keeps it (issue 23's
    /// ambiguity). The cache names a transaction by each field with its
    /// length: the second transaction's signatures are checked, and fail
    /// (with the id as the cache's name, the forgery was taken).
    #[test]
    fn a_cached_signature_is_not_trusted_for_a_transaction_with_the_same_id() {
        let (paid, alias) = paid_and_alias(23);
        let signing = Signing::Amounts;
        check_signatures(&paid, signing).unwrap();
        let before = signature_cache_hits();
        assert!(check_signatures(&alias, signing).is_err());
        assert_eq!(
            signature_cache_hits(),
            before,
            "nothing taken from the cache"
        );
        // The transaction itself is still found there.
        check_signatures(&paid, signing).unwrap();
        assert!(signature_cache_hits() >= before + 2);
    }

    /// Issue 39: a transaction the pool checked is not hashed again in its
    /// block: its id is kept by its name, for that transaction alone, and
    /// only once both its signatures verified.
    #[test]
    fn a_checked_transactions_id_is_kept_for_it_alone() {
        let (paid, alias) = paid_and_alias(390);
        let signing = Signing::Amounts;
        let named = |t: &Transaction| txn_names(std::slice::from_ref(t), signing)[0].unwrap();
        assert_eq!(known_txid(&named(&paid)), None);
        check_signatures_of(&paid, paid.hash(), signing).unwrap();
        assert_eq!(known_txid(&named(&paid)), Some(paid.hash()));
        // The same id, other fields: not known.
        assert_eq!(known_txid(&named(&alias)), None);
        assert!(check_signatures_of(&alias, alias.hash(), signing).is_err());
        assert_eq!(
            known_txid(&named(&alias)),
            None,
            "a refused one is not kept"
        );
    }
}
