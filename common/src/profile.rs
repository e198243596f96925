//! Network profiles: the consensus rules that differ between the original
//! toycoin network and our default, steady one.
//!
//! * `toycoin` — the original's rules exactly: block i needs d(i) leading
//!   zero *bytes*, d(0) = 1, d(i) = 1 + floor(log2 i); the longest chain
//!   wins; timestamps are not checked (the original's check never runs).
//!   From block 8 on a block needs 2^32 hashes on average, so such a network
//!   stalls after a few minutes, as the original does.
//! * `steady` (the default) — a demo that keeps going. Nodes mine all the
//!   time; block i needs a number of leading zero *bits* computed only from
//!   the timestamps of the blocks before it, steering the average interval
//!   to a target (5 s by default) whatever the hash power; the chain with
//!   the most accumulated work (sum of 2^bits) wins, and at equal work the
//!   one seen first; timestamps are canonical decimal seconds, not before
//!   the median of the last [`MEDIAN_SPAN`] and at most [`MAX_FUTURE_SECS`]
//!   ahead of the checking node's clock.
//!
//! The steady difficulty moves in epochs of [`EPOCH_BLOCKS`] blocks: when
//! one ends, the bits change by log2(expected time / actual time), rounded
//! and at most [`MAX_EPOCH_STEP`] either way, the time measured between the
//! epoch's first and last median time past (so one miner's clock moves
//! nothing). Each epoch is compared with the target alone: early blocks are
//! answered by the next epoch's bits and never repaid later. An epoch ends
//! early when its blocks already come far too fast (a cold start, or the
//! class joining at once): see [`EARLY_LAG`]. The bits stay within
//! [`MIN_BITS`]..=[`MAX_BITS`].

use std::fmt;
use std::str::FromStr;

use crate::hash::{BlockHash, Hash};
use crate::network::Network;

/// Bits of block 0 and block 1 in the steady profile: a few hundred
/// thousand hashes, well under a second on one thread.
pub const START_BITS: u32 = 18;
/// Fewest bits the steady profile ever asks for.
pub const MIN_BITS: u32 = 12;
/// Most bits the steady profile ever asks for (keeps work in a u128).
pub const MAX_BITS: u32 = 96;
/// Blocks per difficulty epoch: the required bits change only when an
/// epoch ends, by how long its blocks took. Sixteen, not eight: in a
/// simulation at 4 MH/s and a 5 s target, eight-block epochs kept the
/// average interval of 8-block windows within ±50% of the target 59% of
/// the time (2.2% of blocks took over 30 s); sixteen, 73% (0.7%).
pub const EPOCH_BLOCKS: u64 = 16;
/// Most the required bits move when an epoch ends, either way (a factor
/// of 8 in work).
pub const MAX_EPOCH_STEP: i64 = 3;
/// An epoch may end early, after [`EARLY_LAG`] + [`EARLY_BLOCKS`] blocks,
/// when the blocks since its [`EARLY_LAG`]th already call for the largest
/// step up ([`MAX_EPOCH_STEP`]: they came more than 5.6 times too fast).
/// Only up: a miner may stamp its blocks up to [`MAX_FUTURE_SECS`] ahead,
/// so on a branch of its own (a private fork) it could make an epoch look
/// slow and take a cheap block after six, but it cannot make one look fast
/// (a timestamp is never before the median time past).
/// Measured from the epoch's [`EARLY_LAG`]th block because the median time
/// past trails the tip by about half of [`MEDIAN_SPAN`]: from there on it
/// times only blocks mined at this epoch's bits. In a simulation
/// (`python3 bench/scripts/difficulty_sim.py`: 2 to 12 MH/s, a 5 s target,
/// 60 runs) the median 8-block mean interval stays within ±50% of the
/// target after 21 blocks from a cold start, 7 after the hash power
/// doubles and 13 after it halves, where 16-block epochs alone take 31, 5
/// and 19; later on 1.2% of blocks take over 30 s against 0.6%.
pub const EARLY_LAG: u64 = MEDIAN_SPAN as u64 / 2 + 1;
/// Blocks past [`EARLY_LAG`] before an epoch may end early.
pub const EARLY_BLOCKS: u64 = 4;
/// How far in the future (by the checking node's clock) a steady-profile
/// timestamp may be: laptops in a classroom without NTP are often minutes
/// apart, and one whose clock is up to 10 minutes off still takes part.
pub const MAX_FUTURE_SECS: u64 = 600;
/// A steady-profile timestamp may not be earlier than the median of this
/// many blocks before it (Bitcoin's "median time past"), so one miner's
/// clock cannot hold the others back.
pub const MEDIAN_SPAN: usize = 11;
/// Longest target block interval the steady profile takes (a day).
pub const MAX_TARGET_SECS: f64 = 86_400.0;
/// Default target block interval of the steady profile.
pub const DEFAULT_TARGET_SECS: f64 = 5.0;
/// Confirmations after which a transaction is final: the lecture's figure
/// for proof of work (Bitcoin's six blocks). The oracle and the listener
/// count up to it.
pub const FINAL_CONFIRMATIONS: usize = 6;
/// What a steady block's reward (its first transaction) pays its miner.
pub const BLOCK_REWARD: i64 = 50;
/// The most coins a steady chain ever holds, rewards and the mint's grants
/// together; no amount may exceed it, so no sum of amounts overflows.
pub const MAX_SUPPLY: i64 = 1_000_000_000_000;

/// Largest transaction the steady profile takes, by [`Transaction::size`]
/// (a transfer with one input is about 1.5 KB; this allows some 450
/// inputs).
///
/// [`Transaction::size`]: crate::transaction::Transaction::size
pub const MAX_TXN_BYTES: usize = 32 * 1024;
/// Largest block the steady profile takes, by [`Block::size`]: well inside
/// one frame on the wire (base64 and JSON add about a third), so a block
/// and a catch-up answer always fit.
///
/// [`Block::size`]: crate::block::Block::size
pub const MAX_BLOCK_BYTES: usize = 1024 * 1024;

/// Largest `TXN ` payload a steady node decodes: a largest transaction
/// with its tokens, as sent, with room to spare. Anything larger is refused
/// by its length alone, before any decoding.
pub const MAX_TXN_PAYLOAD: usize = 1024 * 1024;
/// Largest `BLOC` or `GETB` payload a steady node decodes: a largest block
/// as sent, or a catch-up answer (at most 1 MiB), with room to spare.
pub const MAX_BLOC_PAYLOAD: usize = 4 * 1024 * 1024;
/// Largest `PBFT` payload (steady): a new view of 13 replicas carrying a
/// whole window of full batches is some 5 MiB.
pub const MAX_PBFT_PAYLOAD: usize = 8 * 1024 * 1024;

/// What a transaction's two signatures cover.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signing {
    /// The original's: the previous hashes and one address. The amounts
    /// are not covered, so anyone relaying a transfer can rewrite them.
    Original,
    /// Every field that moves value, and which signature it is.
    Amounts,
}

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

/// Which rules a network follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum ProfileKind {
    /// Difficulty retargeted by timestamps, most work wins (the default).
    #[default]
    Steady,
    /// The original toycoin's rules.
    Toycoin,
}

impl ProfileKind {
    pub const ALL: [ProfileKind; 2] = [ProfileKind::Steady, ProfileKind::Toycoin];

    pub fn name(self) -> &'static str {
        match self {
            ProfileKind::Steady => "steady",
            ProfileKind::Toycoin => "toycoin",
        }
    }
}

impl fmt::Display for ProfileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ProfileKind {
    type Err = String;

    fn from_str(s: &str) -> Result<ProfileKind, String> {
        ProfileKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| format!("unknown profile {s:?} (expected steady or toycoin)"))
    }
}

/// The difficulty state after a block: what the next block's rule needs
/// from the blocks before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// Timestamp (seconds) of the last block; `None` before block 0.
    pub last_timestamp: Option<u64>,
    /// The last [`MEDIAN_SPAN`] timestamps, oldest first (`recent_len` of
    /// them filled).
    recent: [u64; MEDIAN_SPAN],
    recent_len: usize,
    /// Leading zero bits the next block needs (steady).
    pub bits: u32,
    /// The median time past when the current epoch began (steady), and
    /// the blocks since.
    pub epoch_start: Option<u64>,
    pub epoch_blocks: u64,
    /// The median time past at the epoch's [`EARLY_LAG`]th block, from
    /// which an early end is timed.
    pub lag_start: Option<u64>,
    /// Number of blocks so far.
    pub height: u64,
}

impl Default for Schedule {
    fn default() -> Schedule {
        Schedule {
            last_timestamp: None,
            recent: [0; MEDIAN_SPAN],
            recent_len: 0,
            bits: START_BITS,
            epoch_start: None,
            epoch_blocks: 0,
            lag_start: None,
            height: 0,
        }
    }
}

/// Which block's timestamp the median time past after `height` blocks
/// stands for, were the timestamps in order: the middle one of the last
/// [`MEDIAN_SPAN`] (of all of them, while there are fewer). Used to count
/// the blocks between two medians: while the chain is shorter than
/// [`MEDIAN_SPAN`] the median moves half a block per block.
fn median_position(height: u64) -> u64 {
    let span = height.min(MEDIAN_SPAN as u64);
    height - span + span / 2
}

/// How many bits an epoch's end moves the difficulty: the epoch should
/// have taken `expected` and took `actual` (milliseconds); the step is
/// log2(expected / actual) rounded, so the bits stay put while blocks come
/// within a factor of the square root of 2 of the target, at most
/// [`MAX_EPOCH_STEP`] either way. Integers only: every node computes the
/// same.
fn epoch_step(expected: u128, actual: u128) -> i64 {
    let square = |x: u128| x.saturating_mul(x);
    let (e2, a2) = (square(expected), square(actual));
    for k in (1..=MAX_EPOCH_STEP).rev() {
        let times = |x: u128| x.saturating_mul(1 << (2 * k - 1));
        if e2 >= times(a2) {
            return k;
        }
        if a2 >= times(e2) {
            return -k;
        }
    }
    0
}

impl Schedule {
    /// The median of the last [`MEDIAN_SPAN`] timestamps (of all of them
    /// while there are fewer); `None` before block 0 or where timestamps
    /// are not read.
    pub fn median_time(&self) -> Option<u64> {
        let recent = &self.recent[..self.recent_len];
        if recent.is_empty() {
            return None;
        }
        let mut sorted = [0u64; MEDIAN_SPAN];
        sorted[..recent.len()].copy_from_slice(recent);
        let sorted = &mut sorted[..recent.len()];
        sorted.sort_unstable();
        Some(sorted[sorted.len() / 2])
    }

    fn begin_epoch(&mut self, median: u64) {
        self.epoch_start = Some(median);
        self.epoch_blocks = 0;
        self.lag_start = None;
    }

    fn remember(&mut self, timestamp: u64) {
        if self.recent_len == MEDIAN_SPAN {
            self.recent.copy_within(1.., 0);
            self.recent[MEDIAN_SPAN - 1] = timestamp;
        } else {
            self.recent[self.recent_len] = timestamp;
            self.recent_len += 1;
        }
    }
}

/// What fork choice compares: a chain's accumulated work and its tip.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainScore {
    pub work: u128,
    pub tip: BlockHash,
}

/// A profile with its parameters.
///
/// Every rule in which `steady` differs from `toycoin` is a method here:
/// [`Profile::required_bits`] and [`Profile::advance`] (difficulty),
/// [`Profile::block_work`] and [`Profile::prefers`] (fork choice),
/// [`Profile::checks_timestamps`] and [`Profile::mining_timestamp`],
/// [`Profile::tolerates_repeated_txns`], [`Profile::announces_whole_chain`],
/// [`Profile::uses_catch_up`], [`Profile::signing`] (what signatures cover),
/// [`Profile::minting`] and [`Profile::block_reward`] (money).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Profile {
    pub kind: ProfileKind,
    /// Target interval in milliseconds (steady only).
    pub target_ms: i64,
    /// What block 0 names as its `previous_hash`: the original's GENESIS
    /// in toycoin, a hash of the network's id in steady
    /// ([`crate::network::Network::genesis`]).
    pub genesis: BlockHash,
    /// SHA-512 of the mint's address (steady): the one sender whose grants
    /// create coins, fixed with the network. `None`: nobody grants.
    pub mint: Option<Hash>,
}

impl Default for Profile {
    fn default() -> Profile {
        Profile::steady(DEFAULT_TARGET_SECS)
    }
}

impl Profile {
    /// The original's network.
    pub fn toycoin() -> Profile {
        Network::toycoin().profile()
    }

    /// A steady network with a target interval in seconds, kept between
    /// 1 ms and [`MAX_TARGET_SECS`] (a NaN gives the default), and no mint
    /// (nobody grants coins): for the other rules. A class's network names
    /// its mint: [`Network::steady`].
    pub fn steady(target_secs: f64) -> Profile {
        Network::steady(target_secs, None).profile()
    }

    /// The profile of a given kind with the given steady target.
    pub fn new(kind: ProfileKind, target_secs: f64) -> Profile {
        match kind {
            ProfileKind::Steady => Profile::steady(target_secs),
            ProfileKind::Toycoin => Profile::toycoin(),
        }
    }

    /// Leading zero bits the next block needs, given the schedule after
    /// the blocks before it.
    pub fn required_bits(&self, schedule: &Schedule) -> u32 {
        match self.kind {
            ProfileKind::Toycoin => 8 * toycoin_zero_bytes(schedule.height),
            ProfileKind::Steady => schedule.bits.clamp(MIN_BITS, MAX_BITS),
        }
    }

    /// The schedule after appending a block with `timestamp` (seconds;
    /// `None` for the toycoin profile, where timestamps mean nothing).
    ///
    /// Steady: every [`EPOCH_BLOCKS`] blocks the required bits move by how
    /// long the epoch took against `EPOCH_BLOCKS` targets ([`epoch_step`]),
    /// timed by the median time past of the last [`MEDIAN_SPAN`] blocks, so
    /// one miner's clock, or a block stamped in the future, moves nothing.
    /// An epoch only compares itself with the target: a burst of early
    /// blocks is answered once, by the next epoch's bits, and never has to
    /// be repaid by slow blocks later.
    pub fn advance(&self, schedule: &Schedule, timestamp: Option<u64>) -> Schedule {
        let mut next = Schedule {
            last_timestamp: timestamp,
            height: schedule.height + 1,
            ..*schedule
        };
        if !self.checks_timestamps() {
            return next;
        }
        if let Some(now) = timestamp {
            next.remember(now);
        }
        let Some(median) = next.median_time() else {
            return next;
        };
        let Some(start) = schedule.epoch_start else {
            next.begin_epoch(median);
            return next;
        };
        next.epoch_blocks = schedule.epoch_blocks + 1;
        if next.epoch_blocks == EARLY_LAG {
            next.lag_start = Some(median);
        }
        // Expected time between two medians: as many targets as blocks
        // between the timestamps they stand for.
        let (now, start_height) = (next.height, next.height - next.epoch_blocks);
        let expected = |since_height: u64| {
            let blocks = median_position(now).saturating_sub(median_position(since_height));
            u128::from(blocks) * self.target_ms.max(1) as u128
        };
        let elapsed = |since: u64| u128::from(median.saturating_sub(since)) * 1000;
        let step = match schedule.lag_start {
            _ if next.epoch_blocks >= EPOCH_BLOCKS => {
                epoch_step(expected(start_height), elapsed(start))
            }
            Some(lag) if next.epoch_blocks >= EARLY_LAG + EARLY_BLOCKS => {
                epoch_step(expected(start_height + EARLY_LAG), elapsed(lag))
            }
            _ => 0,
        };
        if step < MAX_EPOCH_STEP && next.epoch_blocks < EPOCH_BLOCKS {
            return next;
        }
        let bits = i64::from(schedule.bits) + step;
        next.bits = bits.clamp(i64::from(MIN_BITS), i64::from(MAX_BITS)) as u32;
        next.begin_epoch(median);
        next
    }

    /// Whether a node announces a block by sending its whole chain (the
    /// original does) rather than the new block alone.
    pub fn announces_whole_chain(&self) -> bool {
        self.kind == ProfileKind::Toycoin
    }

    /// Whether nodes announce their tip, hash rate and whether they mine
    /// in a `STAT` every few seconds (see `docs/status.md`); the original
    /// prints an error for a tag it does not know.
    pub fn announces_status(&self) -> bool {
        self.kind == ProfileKind::Steady
    }

    /// Whether nodes ask for and answer missed blocks with `GETB` (see
    /// `docs/catch-up.md`); the original has no such message.
    pub fn uses_catch_up(&self) -> bool {
        self.kind == ProfileKind::Steady
    }

    /// Whether timestamps are checked (canonical decimal seconds, not
    /// before the median of the last [`MEDIAN_SPAN`], at most
    /// [`MAX_FUTURE_SECS`] ahead) and steer difficulty. The original's
    /// timestamp check never runs.
    pub fn checks_timestamps(&self) -> bool {
        self.kind == ProfileKind::Steady
    }

    /// The timestamp a miner stamps a new block with at `now`, given the
    /// schedule after the block before it: never before the median time
    /// where timestamps are checked (a miner whose clock is slow stamps
    /// the earliest time the rules allow).
    pub fn mining_timestamp(&self, now: u64, schedule: &Schedule) -> u64 {
        match schedule.median_time() {
            Some(median) if self.checks_timestamps() => now.max(median),
            _ => now,
        }
    }

    /// Fork choice: whether a chain `candidate` beats the best chain `best`:
    /// only by more work (in toycoin a block is one unit of work, so the
    /// longer chain). At equal work a node keeps the chain it saw first, as
    /// Bitcoin's nodes and the original's do: a race between two blocks of
    /// one height is settled by the next block, and a block that arrives
    /// late loses even when its hash is lower.
    pub fn prefers(&self, candidate: ChainScore, best: ChainScore) -> bool {
        candidate.work > best.work
    }

    /// Whether nodes mine all the time, a block holding only its reward
    /// when nothing waits (steady: the chain keeps time, and honest work
    /// grows at the honest hash rate), rather than only when transactions
    /// wait (toycoin, as the original; `--min-txns`, `--max-wait`).
    pub fn mines_continuously(&self) -> bool {
        self.kind == ProfileKind::Steady
    }

    /// The profile in words: `steady, target 5 s` or `toycoin`.
    pub fn describe(&self) -> String {
        match self.kind {
            ProfileKind::Steady => format!("steady, target {} s", self.target_ms as f64 / 1000.0),
            ProfileKind::Toycoin => "toycoin".to_owned(),
        }
    }

    /// Whether a block may repeat, verbatim, a transaction already in its
    /// chain. The original nodes do this (they keep mining transactions
    /// that a block already holds; the captured chains repeat block 2's
    /// transactions in block 4), so the toycoin profile accepts a repeat and
    /// applies it only once: it spends nothing again and creates nothing
    /// again. A *different* transaction spending a spent token is still a
    /// double spend in both profiles.
    pub fn tolerates_repeated_txns(&self) -> bool {
        self.kind == ProfileKind::Toycoin
    }

    /// Whether nodes take a transaction that spends an output of one still
    /// pending. Ours do in both profiles; the original Python nodes refuse
    /// any input not already in their chain, so a wallet on a `toycoin`
    /// network pays only with confirmed outputs (see the oracle).
    pub fn pays_with_pending_outputs(&self) -> bool {
        self.kind == ProfileKind::Steady
    }

    /// What a transaction's signatures cover: the original's way in
    /// toycoin (so Python wallets interoperate), every amount in steady.
    pub fn signing(&self) -> Signing {
        match self.kind {
            ProfileKind::Toycoin => Signing::Original,
            ProfileKind::Steady => Signing::Amounts,
        }
    }

    /// Whether every transaction must be in the canonical encoding
    /// ([`crate::ledger::check_shape`]: canonical addresses, one key one
    /// address; signatures of one length), which makes transaction hashes
    /// unambiguous (steady). The original takes any key and any bytes.
    pub fn canonical_encoding(&self) -> bool {
        self.kind == ProfileKind::Steady
    }

    /// Where new coins come from.
    pub fn minting(&self) -> Minting {
        match self.kind {
            ProfileKind::Toycoin => Minting::AnyCoinbase,
            ProfileKind::Steady => Minting::RewardsAndMint,
        }
    }

    /// What the block after `supply` coins exist pays its miner: `None`
    /// where blocks carry no reward (toycoin); never past [`MAX_SUPPLY`].
    pub fn block_reward(&self, supply: i64) -> Option<i64> {
        match self.minting() {
            Minting::AnyCoinbase => None,
            Minting::RewardsAndMint => Some(BLOCK_REWARD.min(MAX_SUPPLY - supply.min(MAX_SUPPLY))),
        }
    }

    /// The largest transaction (by size) the rules take; `None`: the
    /// original's, bounded only by the frame.
    pub fn max_txn_bytes(&self) -> Option<usize> {
        match self.kind {
            ProfileKind::Toycoin => None,
            ProfileKind::Steady => Some(MAX_TXN_BYTES),
        }
    }

    /// The most transactions a block may hold: the original's 10 in
    /// toycoin; in steady as many as the wire carries, the block's bytes
    /// being the real bound ([`MAX_BLOCK_BYTES`]: some 650 one-input
    /// transfers, room for a class).
    pub fn max_block_txns(&self) -> usize {
        match self.kind {
            ProfileKind::Toycoin => crate::block::MAX_BLOCK_TXNS,
            ProfileKind::Steady => crate::message::MAX_WIRE_BLOCK_TXNS,
        }
    }

    /// Whether `block` had room for one more transaction of the largest
    /// size: a transaction it left out was not left out for lack of room.
    pub fn had_room(&self, block: &crate::block::Block) -> bool {
        let fits = |max: usize| block.size().saturating_add(MAX_TXN_BYTES) <= max;
        block.txns.len() < self.max_block_txns() && self.max_block_bytes().map_or(true, fits)
    }

    /// The largest block (by size) the rules take; `None`: the original's.
    pub fn max_block_bytes(&self) -> Option<usize> {
        match self.kind {
            ProfileKind::Toycoin => None,
            ProfileKind::Steady => Some(MAX_BLOCK_BYTES),
        }
    }

    /// The largest payload with this 4-byte tag worth decoding: past it no
    /// valid message fits, so it is refused by its length alone. `None`:
    /// the original's, bounded only by the frame.
    pub fn max_payload_len(&self, tag: &[u8]) -> Option<usize> {
        match self.kind {
            ProfileKind::Toycoin => None,
            ProfileKind::Steady if tag == b"TXN " => Some(MAX_TXN_PAYLOAD),
            ProfileKind::Steady if tag == crate::message::STAT_TAG => {
                Some(4 + crate::message::MAX_STATUS_PAYLOAD)
            }
            ProfileKind::Steady if tag == crate::pbft::PBFT_TAG => Some(MAX_PBFT_PAYLOAD),
            ProfileKind::Steady => Some(MAX_BLOC_PAYLOAD),
        }
    }

    /// The largest amount a transaction output may hold.
    pub fn max_amount(&self) -> i64 {
        match self.minting() {
            Minting::AnyCoinbase => i64::MAX,
            Minting::RewardsAndMint => MAX_SUPPLY,
        }
    }

    /// The work a block with `bits` required bits adds to its chain:
    /// 1 per block in toycoin (longest chain wins), 2^bits in steady.
    pub fn block_work(&self, bits: u32) -> u128 {
        match self.kind {
            ProfileKind::Toycoin => 1,
            ProfileKind::Steady => 1u128 << bits.min(MAX_BITS),
        }
    }
}

/// The original's difficulty in zero bytes for a block with `index` blocks
/// before it: 1, then 1 + floor(log2 index).
pub fn toycoin_zero_bytes(index: u64) -> u32 {
    if index < 1 {
        1
    } else {
        1 + index.ilog2()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toycoin_difficulty_is_the_originals() {
        let d: Vec<u32> = (0..10).map(toycoin_zero_bytes).collect();
        assert_eq!(d, vec![1, 1, 2, 2, 3, 3, 3, 3, 4, 4]);
        let p = Profile::toycoin();
        let s = Schedule {
            height: 8,
            ..Schedule::default()
        };
        assert_eq!(p.required_bits(&s), 32);
    }

    #[test]
    fn profile_names_parse() {
        assert_eq!("steady".parse(), Ok(ProfileKind::Steady));
        assert_eq!("toycoin".parse(), Ok(ProfileKind::Toycoin));
        assert!("bitcoin".parse::<ProfileKind>().is_err());
        assert_eq!(ProfileKind::default(), ProfileKind::Steady);
    }

    fn schedule_after(p: &Profile, timestamps: &[u64]) -> Schedule {
        timestamps
            .iter()
            .fold(Schedule::default(), |s, &t| p.advance(&s, Some(t)))
    }

    #[test]
    fn steady_starts_low_and_rises_when_blocks_come_fast() {
        let p = Profile::steady(5.0);
        assert_eq!(p.required_bits(&Schedule::default()), START_BITS);
        // Eleven blocks in the same second: far off the target, so the
        // first epoch (from block 1) ends early with the largest step, and
        // the next one after ten more blocks.
        assert_eq!(p.required_bits(&schedule_after(&p, &[100; 10])), START_BITS);
        assert_eq!(
            p.required_bits(&schedule_after(&p, &[100; 11])),
            START_BITS + 3
        );
        assert_eq!(
            p.required_bits(&schedule_after(&p, &[100; 20])),
            START_BITS + 3
        );
        assert_eq!(
            p.required_bits(&schedule_after(&p, &[100; 21])),
            START_BITS + 6
        );
    }

    #[test]
    fn an_epoch_ends_early_only_when_its_blocks_are_far_off_the_target() {
        let p = Profile::steady(8.0);
        // Blocks every 2 s against 8: four times too fast, two bits, but
        // not the largest step: the first epoch (from block 1) runs its 16
        // blocks.
        let fast: Vec<u64> = (0..40).map(|i| 1000 + 2 * i).collect();
        let bits = |n: usize| p.required_bits(&schedule_after(&p, &fast[..n]));
        assert_eq!(bits(16), START_BITS);
        assert_eq!(bits(17), START_BITS + 2);
        // Blocks every second against 8: eight times too fast; the epoch
        // ends after EARLY_LAG + EARLY_BLOCKS blocks.
        let faster: Vec<u64> = (0..40).map(|i| 1000 + i).collect();
        let bits = |n: usize| p.required_bits(&schedule_after(&p, &faster[..n]));
        let early = 1 + (EARLY_LAG + EARLY_BLOCKS) as usize;
        assert_eq!(bits(early - 1), START_BITS);
        assert_eq!(bits(early), START_BITS + 3);
    }

    #[test]
    fn an_epoch_step_is_log2_of_the_time_ratio_rounded_and_bounded() {
        let t = 40_000;
        assert_eq!(epoch_step(t, t), 0);
        assert_eq!(epoch_step(t, t * 3 / 4), 0, "within a factor of 1.41");
        assert_eq!(epoch_step(t, t * 13 / 10), 0);
        assert_eq!(epoch_step(t, t / 2), 1);
        assert_eq!(epoch_step(t, t * 2), -1);
        assert_eq!(epoch_step(t, t / 4), 2);
        assert_eq!(epoch_step(t, 0), MAX_EPOCH_STEP);
        assert_eq!(epoch_step(t, t * 1000), -MAX_EPOCH_STEP);
    }

    #[test]
    fn steady_falls_when_blocks_come_slowly_but_not_below_the_floor() {
        let p = Profile::steady(5.0);
        let slow: Vec<u64> = (0..43).map(|i| 100 + 20 * i).collect();
        let s = schedule_after(&p, &slow);
        // Blocks four times slower than the target: two bits per epoch.
        assert_eq!(p.required_bits(&s), START_BITS - 4);
        let idle: Vec<u64> = (0..100).map(|i| 100 + 3600 * i).collect();
        assert_eq!(p.required_bits(&schedule_after(&p, &idle)), MIN_BITS);
    }

    #[test]
    fn steady_holds_when_blocks_come_on_target() {
        let p = Profile::steady(5.0);
        let on_time: Vec<u64> = (0..50).map(|i| 100 + 5 * i).collect();
        assert_eq!(p.required_bits(&schedule_after(&p, &on_time)), START_BITS);
    }

    #[test]
    fn the_median_time_is_of_the_last_eleven_timestamps() {
        let p = Profile::steady(5.0);
        assert_eq!(Schedule::default().median_time(), None);
        let s = schedule_after(&p, &[100, 300, 200]);
        assert_eq!(s.median_time(), Some(200));
        // One clock far ahead moves it by one place, not to its time.
        let stamps: Vec<u64> = (0..10).map(|i| 1000 + 5 * i).chain([9999]).collect();
        assert_eq!(schedule_after(&p, &stamps).median_time(), Some(1025));
        let more: Vec<u64> = (0..30).map(|i| 1000 + 5 * i).collect();
        assert_eq!(schedule_after(&p, &more).median_time(), Some(1000 + 5 * 24));
    }

    #[test]
    fn a_block_stamped_in_the_future_moves_nothing() {
        let p = Profile::steady(5.0);
        let on_time: Vec<u64> = (0..60).map(|i| 1000 + 5 * i).collect();
        let honest = schedule_after(&p, &on_time);
        // The same, but each epoch's last block (where the step is taken)
        // stamped 5 minutes ahead.
        let mut lying = on_time.clone();
        for i in (16..60).step_by(16) {
            lying[i] += 300;
        }
        let bent = schedule_after(&p, &lying);
        assert_eq!(p.required_bits(&bent), p.required_bits(&honest));
        assert_eq!(p.required_bits(&honest), START_BITS);
    }

    #[test]
    fn absurd_targets_are_clamped_not_overflowed() {
        assert_eq!(Profile::steady(1e300).target_ms, 86_400_000);
        assert_eq!(Profile::steady(-3.0).target_ms, 1);
        assert_eq!(Profile::steady(f64::NAN).target_ms, 5_000);
        let p = Profile::steady(1e300);
        // On the (day-long) target, then from the 23rd block on at the end
        // of time: the epoch from block 17 to 33 ends with the most one step
        // falls (a slow epoch never ends early), and nothing overflows.
        let day = 86_400;
        let stamps: Vec<u64> = (0..33)
            .map(|i| if i < 22 { i * day } else { u64::MAX })
            .collect();
        assert_eq!(
            p.required_bits(&schedule_after(&p, &stamps[..32])),
            START_BITS
        );
        assert_eq!(
            p.required_bits(&schedule_after(&p, &stamps)),
            START_BITS - 3
        );
    }

    fn score(work: u128, first_byte: u8) -> ChainScore {
        let mut tip = [0x55; 64];
        tip[0] = first_byte;
        ChainScore {
            work,
            tip: BlockHash(crate::hash::Hash(tip)),
        }
    }

    #[test]
    fn fork_choice_takes_more_work_and_keeps_the_first_seen_at_a_tie() {
        for p in [Profile::steady(5.0), Profile::toycoin()] {
            assert!(
                p.prefers(score(11, 0xff), score(10, 0x00)),
                "more work wins"
            );
            assert!(
                !p.prefers(score(9, 0x00), score(10, 0xff)),
                "less work loses"
            );
            assert!(
                !p.prefers(score(10, 0x01), score(10, 0x02)),
                "a tie keeps the first seen, even against a lower hash"
            );
            assert!(!p.prefers(score(10, 0x01), score(10, 0x01)), "itself");
        }
    }

    #[test]
    fn only_steady_checks_timestamps_and_catches_up() {
        let (s, t) = (Profile::steady(5.0), Profile::toycoin());
        assert!(s.checks_timestamps() && s.uses_catch_up() && !s.announces_whole_chain());
        assert!(!t.checks_timestamps() && !t.uses_catch_up() && t.announces_whole_chain());
        let after_120 = s.advance(&Schedule::default(), Some(120));
        assert_eq!(s.mining_timestamp(100, &after_120), 120);
        assert_eq!(t.mining_timestamp(100, &after_120), 100);
        assert_eq!(s.mining_timestamp(130, &after_120), 130);
        assert_eq!(s.describe(), "steady, target 5 s");
        assert_eq!(t.describe(), "toycoin");
    }

    #[test]
    fn steady_work_doubles_per_bit_and_toycoin_counts_blocks() {
        assert_eq!(Profile::steady(5.0).block_work(20), 1 << 20);
        assert_eq!(Profile::toycoin().block_work(24), 1);
    }

    /// Mines a chain with exponentially distributed block times at the
    /// given hash rates, each for a number of blocks: each block's required
    /// bits and timestamp (seconds, fractional).
    fn simulate(p: &Profile, phases: &[(f64, usize)], seed: u64) -> Vec<(u32, f64)> {
        let mut s = Schedule::default();
        let mut now = 1_000_000.0_f64;
        let mut rng_state = 0x9e3779b97f4a7c15_u64 ^ seed;
        let mut blocks = Vec::new();
        for &(hashes_per_sec, count) in phases {
            for _ in 0..count {
                let bits = p.required_bits(&s);
                rng_state ^= rng_state << 13;
                rng_state ^= rng_state >> 7;
                rng_state ^= rng_state << 17;
                let u = (rng_state >> 11) as f64 / (1u64 << 53) as f64;
                let expected = 2f64.powi(bits as i32) / hashes_per_sec;
                now += -expected * (1.0 - u).ln();
                s = p.advance(&s, Some(now as u64));
                blocks.push((bits, now));
            }
        }
        blocks
    }

    /// A simulation: miners of very different power all end up near the
    /// target interval on average, once the ramp is over.
    #[test]
    fn steady_converges_to_the_target_for_any_hash_power() {
        for hashes_per_sec in [1.0e5, 3.0e6, 5.0e7] {
            let p = Profile::steady(5.0);
            let blocks = simulate(&p, &[(hashes_per_sec, 600)], 0);
            let tail = &blocks[200..];
            let avg = (tail[tail.len() - 1].1 - tail[0].1) / (tail.len() - 1) as f64;
            assert!(
                (3.5..7.0).contains(&avg),
                "{hashes_per_sec} H/s: average {avg}"
            );
        }
    }

    /// A second node as strong as the first joins at block 200 and leaves
    /// at block 400: the required bits rise within 40 blocks of the join
    /// and fall within 40 blocks of the leave, in every one of ten runs.
    #[test]
    fn the_bits_rise_when_a_second_node_joins_and_fall_when_it_leaves() {
        let p = Profile::steady(5.0);
        for seed in 0..10 {
            // One node finds a 24-bit block in 5 s on average (3.4 MH/s).
            let one = 2f64.powi(24) / 5.0;
            let blocks = simulate(&p, &[(one, 200), (2.0 * one, 200), (one, 200)], seed);
            let bits: Vec<u32> = blocks.iter().map(|b| b.0).collect();
            let mean = |range: std::ops::Range<usize>| {
                let n = range.len() as f64;
                bits[range].iter().map(|&b| f64::from(b)).sum::<f64>() / n
            };
            let (alone, together, alone_again) = (mean(100..200), mean(300..400), mean(500..600));
            assert!(
                together >= alone + 0.4,
                "run {seed}: bits {alone:.2} alone, {together:.2} with the second node"
            );
            assert!(
                alone_again <= together - 0.4,
                "run {seed}: bits {together:.2} together, {alone_again:.2} after it left"
            );
            // Against the level of the phase before: one noisy epoch may
            // already have moved the bits at the moment of the change.
            let rose = bits[200..240].iter().any(|&b| f64::from(b) > alone.round());
            assert!(
                rose,
                "run {seed}: no rise within 40 blocks: {:?}",
                &bits[190..240]
            );
            let fell = bits[400..440]
                .iter()
                .any(|&b| f64::from(b) < together.round());
            assert!(
                fell,
                "run {seed}: no fall within 40 blocks: {:?}",
                &bits[390..440]
            );
        }
    }
}
