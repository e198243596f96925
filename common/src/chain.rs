//! A validated chain: its blocks, the difficulty schedule and accumulated
//! work after each, and the ledger at its tip.
//!
//! [`Chain::push`] accepts a block on top of the tip after every check, in
//! time proportional to that block; [`Chain::pop`] takes the tip back (the
//! ledger with it), which is what a reorganisation needs.

use std::borrow::Cow;
use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};

use crate::block::{Block, BlockHeader};
use crate::block_store::{BlockStore, Popped};
use crate::difficulty::MEDIAN_SPAN;
use crate::hash::{BlockHash, Txid};
use crate::ledger::{tokens_of, BlockTxError, Ledger, OutputKey, TxError};
use crate::maps::Map;
use crate::merkle::merkle_root;
use crate::pow::MiningJob;
use crate::profile::{ChainScore, Profile, Schedule, MAX_FUTURE_SECS};
use crate::signatures::{
    known_txid, signature_pool, txn_names, verify_ahead, SignaturesAhead, TxnKey,
};
use crate::transaction::{Address, Signature, Token, Transaction};

/// Why a block cannot go on top of a chain.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    #[error("previous_hash {} is not the tip's hash", got.short())]
    PreviousHash { got: BlockHash },
    #[error("block 0 names {} as its genesis, not this network's: a block of another network", got.short())]
    OtherNetwork { got: BlockHash },
    #[error("this_hash does not match the header")]
    HeaderHash,
    #[error("proof of work too weak: {got} leading zero bits, {required} required")]
    InsufficientWork { required: u32, got: u32 },
    #[error("block has no transactions")]
    NoTransactions,
    #[error("block has {got} transactions, more than {max}")]
    TooManyTransactions { got: usize, max: usize },
    #[error("block of {size} bytes is larger than the {max} allowed")]
    TooLarge { size: usize, max: usize },
    #[error("merkle_root does not match the transactions")]
    MerkleRoot,
    #[error("timestamp is not decimal seconds")]
    TimestampNotDecimal,
    #[error("timestamp {got} is more than {MAX_FUTURE_SECS} s before {median}, the median of the last 11 blocks' timestamps")]
    TimestampBackwards { median: u64, got: u64 },
    #[error("timestamp {got} is more than {MAX_FUTURE_SECS} s ahead of now ({now})")]
    TimestampInFuture { got: u64, now: u64 },
    #[error("transaction {index}: {error}")]
    Transaction { index: usize, error: TxError },
    #[error("block {} was found invalid before ({reason})", hash.short())]
    KnownInvalid { hash: BlockHash, reason: String },
}

impl BlockError {
    /// Whether a block that fails this way fails for good, whatever the
    /// time and whoever sends it: the failure follows from the block's
    /// header, or from transactions its Merkle root commits to, on top of
    /// the ancestors its hash commits to. Only such a block is remembered
    /// as invalid; a wrong body under a good header is not (an honest
    /// block with its transactions tampered with in transit must still be
    /// accepted when it arrives intact), nor a timestamp in the future.
    ///
    /// A failure of the body (its transactions, their count or bytes) is
    /// permanent only where the Merkle root commits to exactly this body:
    /// see [`BlockError::is_proved_by_hash`].
    pub fn is_permanent(&self) -> bool {
        match self {
            BlockError::Transaction { error, .. } => !error.is_malformed(),
            BlockError::InsufficientWork { .. }
            | BlockError::TimestampNotDecimal
            | BlockError::TimestampBackwards { .. }
            | BlockError::TooManyTransactions { .. }
            | BlockError::TooLarge { .. }
            | BlockError::KnownInvalid { .. } => true,
            BlockError::OtherNetwork { .. }
            | BlockError::PreviousHash { .. }
            | BlockError::NoTransactions
            | BlockError::HeaderHash
            | BlockError::MerkleRoot
            | BlockError::TimestampInFuture { .. } => false,
        }
    }
}

impl BlockError {
    /// Whether the bytes of the block fix this failure, whatever our chain
    /// and clock: all but an unknown parent (it may arrive) and a time
    /// ahead of ours (it may pass). A frame refused this way is refused
    /// again unread ([`crate::refused_frames`]).
    pub fn is_fixed_by_bytes(&self) -> bool {
        !matches!(
            self,
            BlockError::PreviousHash { .. } | BlockError::TimestampInFuture { .. }
        )
    }

    /// Whether `block`'s hash alone proves it fails this way, so the hash
    /// may be remembered as invalid (Bitcoin Core's "mutated block"
    /// lesson): a permanent failure of the header, or of a body the hash
    /// commits to. The original's transaction hash joins fields without
    /// separators, so two bodies can share a Merkle root; in steady every
    /// transaction must be in the canonical encoding
    /// ([`crate::ledger::check_shape`]), under which the root commits to
    /// one body. A toycoin body's failure, or a steady body with a
    /// malformed transaction, proves nothing of the hash: a tampered copy
    /// of a good block would get the good block refused.
    pub fn is_proved_by_hash(&self, profile: &Profile, block: &Block) -> bool {
        if !self.is_permanent() {
            return false;
        }
        match self {
            BlockError::Transaction { .. }
            | BlockError::TooManyTransactions { .. }
            | BlockError::TooLarge { .. } => {
                profile.canonical_encoding()
                    && block
                        .txns
                        .iter()
                        .all(|t| crate::ledger::check_shape(t).is_ok())
            }
            _ => true,
        }
    }
}

impl From<BlockTxError> for BlockError {
    fn from(e: BlockTxError) -> BlockError {
        BlockError::Transaction {
            index: e.index,
            error: e.error,
        }
    }
}

/// A block of a chain that is not valid, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("block {index}: {error}")]
pub struct ChainError {
    pub index: usize,
    pub error: BlockError,
}

/// What the header checks found, needed to append the block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeaderInfo {
    /// Leading zero bits the block needed.
    pub required_bits: u32,
    /// Its timestamp in seconds, when the profile reads timestamps.
    pub timestamp: Option<u64>,
}

/// A block in a chain, with what was computed when it was accepted. Its
/// transactions are in the chain's [`BlockStore`]: [`Chain::block`].
#[derive(Clone, Debug)]
pub struct ChainEntry {
    pub header: BlockHeader,
    /// Transactions in the block.
    pub txn_count: usize,
    /// The block's [`Block::size`].
    pub size: usize,
    /// Leading zero bits this block needed.
    pub required_bits: u32,
    /// Work of the chain up to and including this block.
    pub total_work: u128,
    /// The difficulty level after this block ([`Schedule::level`]): with
    /// the timestamps of the blocks up to it, its schedule
    /// ([`Chain::state_at`]). A schedule kept for every block was 128 of an
    /// entry's 450 bytes, for the chain's whole life (issue 34).
    level: i64,
    /// Transactions in the blocks up to and including this one, repeats
    /// counted (what the original's `Total Txns` counts).
    pub total_txns: usize,
    repeats: usize,
}

impl ChainEntry {
    /// Transactions of this block that repeated ones already in the chain
    /// (accepted only in the toycoin profile, and applied once).
    pub fn repeated_txns(&self) -> usize {
        self.repeats
    }
}

/// A chain of valid blocks under one profile: the headers and figures of
/// every block, and the ledger at the tip, in memory; the blocks' bodies in
/// a [`BlockStore`], the older ones on disk.
#[derive(Clone, Debug)]
pub struct Chain {
    profile: Profile,
    entries: Vec<ChainEntry>,
    /// Heights by the first bytes of their blocks' hashes
    /// ([`height_key`]).
    index: Map<HeightKey, u32>,
    ledger: Ledger,
    bodies: BlockStore,
    /// Heights of the blocks whose transactions name each address, as
    /// receiver or sender, ascending: a light wallet's question is answered
    /// without reading every block back.
    addresses: Map<Address, Vec<u32>>,
    /// The entries' timestamps and nonces.
    header_bytes: HeaderBytes,
    /// The difficulty schedule after the tip.
    schedule: Schedule,
}

/// Where a chain keeps its headers' timestamps and nonces: a few bytes
/// each, copied into shared chunks. Each kept in an allocation of its own
/// (with a shared header beside it once cloned) was four small allocations
/// a block for the chain's whole life, scattered among the block's passing
/// ones: they keep the allocator's arenas from giving memory back
/// (issue 34).
#[derive(Clone, Debug, Default)]
struct HeaderBytes {
    chunk: BytesMut,
}

/// Bytes of one [`HeaderBytes`] chunk (some 700 blocks' fields).
const HEADER_CHUNK: usize = 16 * 1024;

impl HeaderBytes {
    /// A copy of `bytes` in the current chunk (a new chunk when it is full).
    fn keep(&mut self, bytes: &[u8]) -> Bytes {
        if self.chunk.capacity() < bytes.len() {
            self.chunk = BytesMut::with_capacity(HEADER_CHUNK.max(bytes.len()));
        }
        self.chunk.extend_from_slice(bytes);
        self.chunk.split().freeze()
    }
}

impl Chain {
    /// An empty chain (its tip hash is GENESIS).
    pub fn new(profile: Profile) -> Chain {
        Chain::with_store(profile, BlockStore::new())
    }

    /// An empty chain keeping its bodies in `bodies` (which must be empty):
    /// [`BlockStore::with_max_recent`] for a smaller window in memory.
    pub fn with_store(profile: Profile, bodies: BlockStore) -> Chain {
        debug_assert!(bodies.is_empty());
        Chain {
            profile,
            entries: Vec::new(),
            index: Map::default(),
            ledger: Ledger::for_chain(profile),
            bodies,
            addresses: Map::default(),
            header_bytes: HeaderBytes::default(),
            schedule: Schedule::default(),
        }
    }

    /// Validates `blocks` from genesis and builds the chain, or says which
    /// block is wrong and why. `now` is the current Unix time in seconds.
    pub fn from_blocks(
        profile: Profile,
        blocks: impl IntoIterator<Item = Block>,
        now: u64,
    ) -> Result<Chain, ChainError> {
        let mut chain = Chain::new(profile);
        for (index, block) in blocks.into_iter().enumerate() {
            chain
                .push(block, now)
                .map_err(|error| ChainError { index, error })?;
        }
        Ok(chain)
    }

    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn entries(&self) -> &[ChainEntry] {
        &self.entries
    }

    /// The block at `height`: from memory near the tip, read back from the
    /// store below ([`crate::block_store`]). `None` past the tip, or if the
    /// store cannot read it back (logged).
    pub fn block(&self, height: usize) -> Option<Cow<'_, Block>> {
        self.bodies.get(height)
    }

    /// The blocks from `height` to the tip, oldest first, each as
    /// [`Chain::block`] gives it (one that cannot be read back ends them).
    pub fn blocks_from(&self, height: usize) -> impl Iterator<Item = Cow<'_, Block>> {
        (height..self.len()).map_while(move |h| self.block(h))
    }

    /// Every block, oldest first: [`Chain::blocks_from`] 0. Blocks below
    /// the window in memory are read back one by one.
    pub fn blocks(&self) -> impl Iterator<Item = Cow<'_, Block>> {
        self.blocks_from(0)
    }

    /// Every transaction of every block, oldest first, read back as
    /// [`Chain::blocks`] reads their blocks.
    pub fn transactions(&self) -> impl Iterator<Item = Cow<'_, Transaction>> {
        self.blocks().flat_map(txns_of)
    }

    /// Every transaction, newest block first ([`Chain::blocks_newest_first`]),
    /// in block order within a block.
    pub fn transactions_newest_first(&self) -> impl Iterator<Item = Cow<'_, Transaction>> {
        self.blocks_newest_first().flat_map(txns_of)
    }

    /// Every block, newest first: the newest are in memory, so a search of
    /// recent history that stops early reads nothing back.
    pub fn blocks_newest_first(&self) -> impl Iterator<Item = Cow<'_, Block>> {
        (0..self.len()).rev().map_while(move |h| self.block(h))
    }

    /// Heights, ascending, of the blocks with a transaction naming
    /// `address` as its receiver or sender.
    pub fn heights_naming(&self, address: &[u8]) -> &[u32] {
        self.addresses.get(address).map_or(&[], Vec::as_slice)
    }

    /// Every address a transaction of the chain names, with the heights of
    /// the blocks that name it ([`Chain::heights_naming`]).
    pub fn addresses(&self) -> impl Iterator<Item = (&Address, &[u32])> {
        self.addresses.iter().map(|(a, h)| (a, h.as_slice()))
    }

    /// The blocks' bodies: how many are in memory and how many on disk.
    pub fn store(&self) -> &BlockStore {
        &self.bodies
    }

    /// The newest block (always in memory).
    pub fn tip(&self) -> Option<&Block> {
        self.bodies.last()
    }

    /// The hash the next block must name as `previous_hash`.
    pub fn tip_hash(&self) -> BlockHash {
        self.entries
            .last()
            .map_or(self.profile.genesis, |e| e.header.this_hash)
    }

    /// Accumulated work (the toycoin profile counts blocks).
    pub fn total_work(&self) -> u128 {
        self.entries.last().map_or(0, |e| e.total_work)
    }

    /// What fork choice compares ([`Profile::prefers`]).
    pub fn score(&self) -> ChainScore {
        ChainScore {
            work: self.total_work(),
            tip: self.tip_hash(),
        }
    }

    /// The difficulty schedule after the tip.
    pub fn schedule(&self) -> Schedule {
        self.schedule
    }

    /// The difficulty schedule after the first `len` blocks (`len` at most
    /// the chain's length), rebuilt from the level the last of them left
    /// and their last [`MEDIAN_SPAN`] timestamps.
    fn schedule_after(&self, len: usize) -> Schedule {
        let Some(last) = len.checked_sub(1).and_then(|i| self.entries.get(i)) else {
            return Schedule::default();
        };
        let mut recent = [0u64; MEDIAN_SPAN];
        let mut kept = 0;
        if self.profile.checks_timestamps() {
            for entry in &self.entries[len.saturating_sub(MEDIAN_SPAN)..len] {
                // Every timestamp a chain took was canonical decimal.
                recent[kept] = entry.header.timestamp_secs().unwrap_or_default();
                kept += 1;
            }
        }
        Schedule::resumed(last.level, len as u64, &recent[..kept])
    }

    /// Leading zero bits the next block needs.
    pub fn next_required_bits(&self) -> u32 {
        self.profile.required_bits(&self.schedule())
    }

    /// The unspent tokens owned by `owner` (see [`Chain::unspent_of`]).
    pub fn unspent(&self, owner: &[u8]) -> Vec<Token> {
        self.unspent_of(&[owner]).pop().unwrap_or_default()
    }

    /// The unspent tokens of each of `owners`, in their order: the ledger
    /// says which outputs, and each one's signature is read back from its
    /// block (once per block, from the store's file for an old one). An
    /// output whose block cannot be read back, or whose signature no
    /// longer matches the ledger's digest, is left out (and logged).
    pub fn unspent_of(&self, owners: &[&[u8]]) -> Vec<Vec<Token>> {
        let outputs = self.ledger.unspent_outputs_of(owners);
        let mut by_height: BTreeMap<u32, Vec<OutputKey>> = BTreeMap::new();
        for (key, state) in outputs.iter().flatten() {
            by_height.entry(state.height).or_default().push(*key);
        }
        // Each wanted output's transaction id and signature.
        let mut found: Map<OutputKey, (Txid, Signature)> = Map::default();
        for (height, wanted) in by_height {
            let Some(block) = self.block(height as usize) else {
                tracing::warn!(
                    "block {height} cannot be read back: its unspent outputs are left out"
                );
                continue;
            };
            for txn in &block.txns {
                let hash = txn.hash();
                for key in wanted.iter().filter(|key| key.is_of(&hash)) {
                    let token = txn.output(hash, key.kind());
                    found.insert(*key, (hash, token.signature));
                }
            }
        }
        tokens_of(outputs, &found)
    }

    /// The ledger at the tip.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Height (0-based) of the block with this hash, if it is in the chain.
    pub fn height_of(&self, hash: &BlockHash) -> Option<usize> {
        let height = *self.index.get(&height_key(hash))? as usize;
        (self.entries.get(height)?.header.this_hash == *hash).then_some(height)
    }

    /// Transactions in all the chain's blocks, repeats counted (the
    /// original's `Total Txns`; [`Chain::txn_count`] counts each once).
    pub fn total_block_txns(&self) -> usize {
        self.entries.last().map_or(0, |e| e.total_txns)
    }

    /// Total number of transactions in the chain.
    pub fn txn_count(&self) -> usize {
        self.ledger.txn_count()
    }

    /// The checks on a header that need no transactions: it follows the tip,
    /// its hash is right, its proof of work is enough, its timestamp is
    /// acceptable (steady profile).
    pub fn check_header(&self, header: &BlockHeader, now: u64) -> Result<HeaderInfo, BlockError> {
        check_header(
            &self.profile,
            self.tip_hash(),
            &self.schedule(),
            header,
            now,
        )
    }

    /// The proof-of-work search for a block of `txns` on the tip, stamped
    /// `now` (or the tip's timestamp if that is later, so a steady chain's
    /// timestamps never go backwards). `None` for no transactions.
    pub fn mining_job(&self, txns: &[Transaction], now: u64) -> Option<MiningJob> {
        let hashes: Vec<Txid> = txns.iter().map(Transaction::hash).collect();
        let merkle_root = merkle_root(&hashes)?;
        let timestamp = self.profile.mining_timestamp(now, &self.schedule());
        Some(MiningJob {
            timestamp,
            previous_hash: self.tip_hash(),
            merkle_root,
            required_bits: self.next_required_bits(),
        })
    }

    /// The transactions of the next block a miner paid at `miner` would
    /// mine: its reward first where the profile rewards blocks, then as
    /// many of `pending`, in order, as fit the profile's count and bytes
    /// (they must be valid in that order).
    pub fn block_txns(
        &self,
        miner: &Address,
        pending: impl IntoIterator<Item = Transaction>,
    ) -> Vec<Transaction> {
        let reward = self
            .ledger
            .next_reward()
            .map(|value| Transaction::reward(miner.clone(), value, self.len() as u64));
        let mut txns: Vec<Transaction> = reward.into_iter().collect();
        // What a header takes, generously (its nonce grows as it is mined).
        const HEADER_ROOM: usize = 1024;
        let max_bytes = self.profile.max_block_bytes().unwrap_or(usize::MAX);
        let mut bytes = HEADER_ROOM + txns.iter().map(Transaction::size).sum::<usize>();
        for txn in pending {
            bytes = bytes.saturating_add(txn.size());
            if txns.len() >= self.profile.max_block_txns() || bytes > max_bytes {
                break;
            }
            txns.push(txn);
        }
        txns
    }

    /// A block on the tip holding `txns` whose hash lacks the work the
    /// next block needs: what a faulty node or an attacker sends, to be
    /// refused. `None` where no template can be made, or where each of the
    /// 64 nonces tried happens to have enough (too few bits required).
    pub fn weak_block(&self, txns: Vec<Transaction>, now: u64) -> Option<Block> {
        let job = self.mining_job(&txns, now)?;
        let required = self.next_required_bits();
        let mut block = Block {
            header: crate::block::BlockHeader {
                timestamp: bytes::Bytes::from(job.timestamp.to_string()),
                previous_hash: job.previous_hash,
                nonce: bytes::Bytes::new(),
                merkle_root: job.merkle_root,
                this_hash: job.previous_hash,
            },
            txns,
        };
        (0..64u32).find_map(|nonce| {
            block.header.nonce = bytes::Bytes::from(nonce.to_string());
            block.header.this_hash = block.header.compute_hash();
            (block.header.this_hash.leading_zero_bits() < required).then(|| block.clone())
        })
    }

    /// The next block, mined here on one thread: [`Chain::block_txns`] of
    /// `miner` and `txns`, stamped `timestamp`, with the work the rules ask.
    /// For tests, benchmarks and tools (a node mines on worker threads it
    /// can cancel). `None` when the block would hold no transaction.
    pub fn mine_next(
        &self,
        miner: &Address,
        txns: Vec<Transaction>,
        timestamp: u64,
    ) -> Option<Block> {
        let txns = self.block_txns(miner, txns);
        let job = self.mining_job(&txns, timestamp)?;
        match crate::pow::Miner::new(1)
            .mine(&job, &crate::pow::CancelToken::new())
            .outcome
        {
            crate::pow::MineOutcome::Found(header) => Some(Block {
                header: *header,
                txns,
            }),
            crate::pow::MineOutcome::Cancelled => None,
        }
    }

    /// Whether `block` had room for one more transaction of the largest
    /// size (`crate::limits`): a transaction it left out was not left out
    /// for lack of room.
    pub fn had_room(&self, block: &Block) -> bool {
        let rules = &self.profile.rules;
        let fits = |max: usize| block.size().saturating_add(crate::limits::MAX_TXN_BYTES) <= max;
        block.txns.len() < rules.max_block_txns && rules.max_block_bytes.map_or(true, fits)
    }

    /// The hash a block at `height` must name as `previous_hash`: GENESIS
    /// for height 0, else the hash of the block before it (`None` past the
    /// tip).
    pub fn hash_before(&self, height: usize) -> Option<BlockHash> {
        match height.checked_sub(1) {
            None => Some(self.profile.genesis),
            Some(i) => self.entries.get(i).map(|e| e.header.this_hash),
        }
    }

    /// The height of a block whose `previous_hash` is `previous`, if that
    /// is GENESIS or a block of this chain.
    pub fn height_after(&self, previous: &BlockHash) -> Option<usize> {
        if *previous == self.profile.genesis {
            Some(0)
        } else {
            self.height_of(previous).map(|h| h + 1)
        }
    }

    /// Work of the chain's first `len` blocks and the schedule after them.
    pub fn state_at(&self, len: usize) -> (u128, Schedule) {
        match len.checked_sub(1).and_then(|i| self.entries.get(i)) {
            Some(e) if len == self.entries.len() => (e.total_work, self.schedule),
            Some(e) => (e.total_work, self.schedule_after(len)),
            None => (0, Schedule::default()),
        }
    }

    /// Checks `block` completely and appends it. On error nothing changes.
    pub fn push(&mut self, block: Block, now: u64) -> Result<(), BlockError> {
        self.push_with(block, now, None)
    }

    /// Appends `blocks` in order, each checked completely as by
    /// [`Chain::push`], their signatures verified ahead of them on the
    /// signature threads (`SignaturesAhead`): how a node takes a branch
    /// or catches up. Stops at the first block refused, with its position;
    /// the blocks before it stay.
    pub fn extend(&mut self, blocks: &[Block], now: u64) -> Result<(), (usize, BlockError)> {
        let signing = self.profile.signing();
        let mut push_all = |ahead: Option<&SignaturesAhead>| {
            for (k, block) in blocks.iter().enumerate() {
                self.push_with(block.clone(), now, ahead.map(|a| (a, k)))
                    .map_err(|e| (k, e))?;
            }
            Ok(())
        };
        match signature_pool() {
            Some((pool, threads)) if blocks.len() > 1 => {
                let ahead = SignaturesAhead::new(
                    blocks
                        .iter()
                        .map(|b| b.txns.iter().enumerate().map(|(i, t)| (i, t, None))),
                    signing,
                );
                pool.in_place_scope(|s| {
                    for _ in 1..threads {
                        s.spawn(|_| ahead.help());
                    }
                    let pushed = push_all(Some(&ahead));
                    ahead.stop();
                    pushed
                })
            }
            _ => push_all(None),
        }
    }

    /// [`Chain::push`], with the block's signatures from `ahead` (verified
    /// there as block `k`) or, without, verified while its body is hashed.
    fn push_with(
        &mut self,
        block: Block,
        now: u64,
        ahead: Option<(&SignaturesAhead, usize)>,
    ) -> Result<(), BlockError> {
        let info = self.check_header(&block.header, now)?;
        let height = self.entries.len() as u64;
        let signing = self.profile.signing();
        // Each transaction named once, for its id (a transaction the pool
        // took is not hashed again) and its signatures.
        let names = match ahead {
            Some((ahead, k)) => ahead.names_of_block(k, block.txns.len()),
            None => txn_names(&block.txns, signing),
        };
        // The body and the ledger on this thread, the signatures on the
        // others meanwhile.
        let mut body_and_ledger = |signed_elsewhere: usize| {
            let hashes = check_body_named(&self.profile, &block, &names)?;
            self.ledger
                .apply_block(&block.txns, &hashes, &names, height, signed_elsewhere)
                .map_err(BlockError::from)
        };
        let (applied, bad_signature) = match ahead {
            Some((ahead, k)) => (body_and_ledger(usize::MAX), ahead.block(k)),
            None => verify_ahead(signing, &block.txns, &names, body_and_ledger),
        };
        // The first failure by position, as if checked in order: the body's
        // first, then a signature before the ledger's first refusal.
        let undo = match (applied, bad_signature) {
            (Ok(undo), Some((index, error))) => {
                self.ledger.undo_block(undo);
                return Err(BlockError::Transaction { index, error });
            }
            (Err(BlockError::Transaction { index: spent, .. }), Some((index, error)))
                if index < spent =>
            {
                return Err(BlockError::Transaction { index, error });
            }
            (applied, _) => applied?,
        };
        let schedule = self.profile.advance(&self.schedule(), info.timestamp);
        let total_work = self.total_work() + self.profile.block_work(info.required_bits);
        let total_txns = self.total_block_txns() + block.txns.len();
        self.index.insert(
            height_key(&block.header.this_hash),
            u32::try_from(self.entries.len()).unwrap_or(u32::MAX),
        );
        let header = BlockHeader {
            timestamp: self.header_bytes.keep(&block.header.timestamp),
            nonce: self.header_bytes.keep(&block.header.nonce),
            ..block.header.clone()
        };
        self.entries.push(ChainEntry {
            header,
            txn_count: block.txns.len(),
            size: block.size(),
            required_bits: info.required_bits,
            total_work,
            level: schedule.level,
            total_txns,
            repeats: undo.repeats(),
        });
        self.schedule = schedule;
        debug_assert_eq!(self.schedule_after(self.entries.len()), schedule);
        let height = u32::try_from(self.entries.len() - 1).unwrap_or(u32::MAX);
        for address in named_addresses(&block) {
            let heights = self.addresses.entry(address.clone()).or_default();
            if heights.last() != Some(&height) {
                heights.push(height);
            }
        }
        self.bodies.push(block, undo);
        self.archive_old();
        Ok(())
    }

    /// Moves the oldest bodies in memory to the store's file while over
    /// its window, each with the outputs it spent (which left the ledger
    /// when they were spent): taking the block back reads them again.
    fn archive_old(&mut self) {
        while let Some((_, undo)) = self.bodies.over_limit() {
            let Some(spent) = self.ledger.spent_outputs(undo) else {
                // Cannot happen for a block this chain applied: keep every
                // block in memory from now on.
                tracing::warn!(
                    "a block's undo does not hold the outputs it spent: old blocks stay in memory"
                );
                self.bodies.keep_in_memory();
                return;
            };
            // Past the window, what only taking it back from memory needed.
            self.ledger.forget_spent(undo);
            if self.bodies.archive_oldest(&spent).is_none() {
                return;
            }
        }
    }

    /// Removes the tip block and takes back its effect on the ledger.
    /// `None` when empty, or when the tip is an archived block the store
    /// cannot read back (logged; the chain is then unchanged).
    pub fn pop(&mut self) -> Option<Block> {
        let (block, undo) = match self.bodies.pop()? {
            Popped::Recent(block, undo) => (block, undo),
            Popped::Archived(archived) => (
                archived.block,
                archived.undo.with_spent_states(archived.spent),
            ),
        };
        if let Some(entry) = self.entries.pop() {
            let key = height_key(&entry.header.this_hash);
            if self
                .index
                .get(&key)
                .is_some_and(|&h| h as usize == self.entries.len())
            {
                self.index.remove(&key);
            }
        }
        self.schedule = self.schedule_after(self.entries.len());
        let height = u32::try_from(self.entries.len()).unwrap_or(u32::MAX);
        for address in named_addresses(&block) {
            if let Some(heights) = self.addresses.get_mut(address) {
                if heights.last() == Some(&height) {
                    heights.pop();
                }
                if heights.is_empty() {
                    self.addresses.remove(address);
                }
            }
        }
        self.ledger.undo_block(undo);
        Some(block)
    }

    /// Pops blocks until `len` remain; returns them oldest first.
    pub fn truncate(&mut self, len: usize) -> Vec<Block> {
        let mut removed = Vec::new();
        while self.entries.len() > len {
            match self.pop() {
                Some(block) => removed.push(block),
                None => break,
            }
        }
        removed.reverse();
        removed
    }
}

/// What a chain's index keys a block by: the first 16 bytes of its
/// hash, 20 bytes an entry with its height where the whole hash and a
/// `usize` took 72, one more entry a block for a lesson's whole life
/// (issue 34). A lookup compares the whole hash with the block's entry;
/// two blocks of one chain whose hashes share 16 bytes would take some
/// 2^64 hashes to find.
type HeightKey = [u8; 16];

fn height_key(hash: &BlockHash) -> HeightKey {
    let mut key = [0u8; 16];
    key.copy_from_slice(&hash.as_bytes()[..16]);
    key
}

/// The addresses a block's transactions name, as receiver or sender (what
/// [`Chain::heights_naming`] indexes).
fn named_addresses(block: &Block) -> impl Iterator<Item = &Address> {
    block.txns.iter().flat_map(|t| [&t.receiver, &t.sender])
}

/// A block's transactions, borrowed or owned as the block is.
fn txns_of(block: Cow<'_, Block>) -> Vec<Cow<'_, Transaction>> {
    match block {
        Cow::Borrowed(block) => block.txns.iter().map(Cow::Borrowed).collect(),
        Cow::Owned(block) => block.txns.into_iter().map(Cow::Owned).collect(),
    }
}

/// The checks on a header that need no transactions, for a block that
/// follows `previous_hash` with difficulty schedule `schedule`: it names
/// that block, its hash is right, its proof of work is enough, and its
/// timestamp is acceptable (steady profile).
pub fn check_header(
    profile: &Profile,
    previous_hash: BlockHash,
    schedule: &Schedule,
    header: &BlockHeader,
    now: u64,
) -> Result<HeaderInfo, BlockError> {
    if header.previous_hash != previous_hash {
        if previous_hash == profile.genesis {
            return Err(BlockError::OtherNetwork {
                got: header.previous_hash,
            });
        }
        return Err(BlockError::PreviousHash {
            got: header.previous_hash,
        });
    }
    if header.compute_hash() != header.this_hash {
        return Err(BlockError::HeaderHash);
    }
    let required_bits = profile.required_bits(schedule);
    let got = header.this_hash.leading_zero_bits();
    if got < required_bits {
        return Err(BlockError::InsufficientWork {
            required: required_bits,
            got,
        });
    }
    let timestamp = if profile.checks_timestamps() {
        let got = header
            .timestamp_secs()
            .ok_or(BlockError::TimestampNotDecimal)?;
        if let (Some(earliest), Some(median)) =
            (schedule.earliest_timestamp(), schedule.median_time())
        {
            if got < earliest {
                return Err(BlockError::TimestampBackwards { median, got });
            }
        }
        if got > now.saturating_add(MAX_FUTURE_SECS) {
            return Err(BlockError::TimestampInFuture { got, now });
        }
        Some(got)
    } else {
        None
    };
    Ok(HeaderInfo {
        required_bits,
        timestamp,
    })
}

/// The checks on a block's body that need no ledger: it has transactions,
/// its Merkle root matches them, and they are at most the profile's
/// [`Profile::max_block_txns`] and [`Profile::max_block_bytes`] (counted after the root
/// matched, so the count is the block's own and not a tamperer's: see
/// [`BlockError::is_permanent`]). Returns the transactions' hashes, which
/// it computed for the root.
pub fn check_body(profile: &Profile, block: &Block) -> Result<Vec<Txid>, BlockError> {
    check_body_named(profile, block, &[])
}

/// [`check_body`], the ids of transactions whose signatures verified
/// lately taken from the signature cache by their names (`names`, as
/// [`txn_names`]; empty: none known), the others hashed.
fn check_body_named(
    profile: &Profile,
    block: &Block,
    names: &[Option<TxnKey>],
) -> Result<Vec<Txid>, BlockError> {
    if block.txns.is_empty() {
        return Err(BlockError::NoTransactions);
    }
    let hashes: Vec<Txid> = block
        .txns
        .iter()
        .enumerate()
        .map(|(i, t)| {
            names
                .get(i)
                .copied()
                .flatten()
                .and_then(|named| known_txid(&named))
                .unwrap_or_else(|| t.hash())
        })
        .collect();
    if merkle_root(&hashes) != Some(block.header.merkle_root) {
        return Err(BlockError::MerkleRoot);
    }
    let max = profile.max_block_txns();
    if block.txns.len() > max {
        return Err(BlockError::TooManyTransactions {
            got: block.txns.len(),
            max,
        });
    }
    if let Some(max) = profile.max_block_bytes() {
        let size = block.size();
        if size > max {
            return Err(BlockError::TooLarge { size, max });
        }
    }
    Ok(hashes)
}

/// The current Unix time in seconds.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_fields_are_copied_one_after_another_into_shared_chunks() {
        let mut kept = HeaderBytes::default();
        let a = kept.keep(b"1700000000");
        let b = kept.keep(b"42");
        assert_eq!((&a[..], &b[..]), (&b"1700000000"[..], &b"42"[..]));
        assert_eq!(a.as_ptr().wrapping_add(a.len()), b.as_ptr(), "one chunk");
        // A field larger than a chunk gets one of its own; the next field
        // starts a new chunk.
        let big = vec![7u8; HEADER_CHUNK + 1];
        assert_eq!(&kept.keep(&big)[..], &big[..]);
        assert_eq!(&kept.keep(b"x")[..], b"x");
    }
}
