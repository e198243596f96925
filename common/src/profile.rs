//! Network profiles: the consensus rules that differ between the original
//! toycoin network and our default, steady one.
//!
//! * `toycoin` — the original's rules exactly: block i needs d(i) leading
//!   zero *bytes*, d(0) = 1, d(i) = 1 + floor(log2 i); the longest chain
//!   wins; timestamps are not checked (the original's check never runs).
//!   From block 8 on a block needs 2^32 hashes on average, so such a network
//!   stalls after a few minutes, as the original does.
//! * `steady` (the default) — a demo that keeps going. Block i needs a
//!   number of leading zero *bits* computed only from the timestamps of the
//!   blocks before it, steering the average interval to a target (5 s by
//!   default) whatever the hash power; the chain with the most accumulated
//!   work (sum of 2^bits) wins; timestamps are canonical decimal seconds that
//!   never go backwards and are at most [`MAX_FUTURE_SECS`] ahead of the
//!   checking node's clock.
//!
//! The steady rule is an "absolute schedule" controller (the idea of
//! Bitcoin Cash's ASERT): every block that comes faster than the target puts
//! the chain ahead of schedule, every slower one behind, and the required
//! bits are the starting bits plus one per [`HALF_LIFE_INTERVALS`] target
//! intervals ahead. Integer bits can only double or halve the work, but the
//! controller alternates between the two levels around the target so that
//! the long-run average interval meets it. An interval counts as at most
//! [`MAX_COUNTED_INTERVALS`] targets (a pause with no transactions to mine
//! must not make the next blocks nearly free), and the schedule offset is
//! clamped so that the bits stay within [`MIN_BITS`]..=[`MAX_BITS`].

use std::fmt;
use std::str::FromStr;

use crate::hash::BlockHash;

/// Bits of block 0 and block 1 in the steady profile: a few hundred
/// thousand hashes, well under a second on one thread.
pub const START_BITS: u32 = 18;
/// Fewest bits the steady profile ever asks for.
pub const MIN_BITS: u32 = 12;
/// Most bits the steady profile ever asks for (keeps work in a u128).
pub const MAX_BITS: u32 = 96;
/// The required bits change by one per this many target intervals that the
/// chain is ahead of (or behind) its schedule.
pub const HALF_LIFE_INTERVALS: i64 = 2;
/// One interval counts as at most this many target intervals.
pub const MAX_COUNTED_INTERVALS: i64 = 3;
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Schedule {
    /// Timestamp (seconds) of the last block; `None` before block 0.
    pub last_timestamp: Option<u64>,
    /// The last [`MEDIAN_SPAN`] timestamps, oldest first (`recent_len` of
    /// them filled).
    recent: [u64; MEDIAN_SPAN],
    recent_len: usize,
    /// Milliseconds the chain is ahead of its schedule (negative: behind).
    pub offset_ms: i64,
    /// Number of blocks so far.
    pub height: u64,
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
}

impl Default for Profile {
    fn default() -> Profile {
        Profile::steady(DEFAULT_TARGET_SECS)
    }
}

impl Profile {
    pub fn toycoin() -> Profile {
        Profile {
            kind: ProfileKind::Toycoin,
            target_ms: (DEFAULT_TARGET_SECS * 1000.0) as i64,
        }
    }

    /// The steady profile with a target interval in seconds, kept between
    /// 1 ms and [`MAX_TARGET_SECS`] (a NaN gives the default).
    pub fn steady(target_secs: f64) -> Profile {
        let secs = if target_secs.is_nan() {
            DEFAULT_TARGET_SECS
        } else {
            target_secs.clamp(0.001, MAX_TARGET_SECS)
        };
        Profile {
            kind: ProfileKind::Steady,
            target_ms: (secs * 1000.0) as i64,
        }
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
            ProfileKind::Steady => {
                let half_life = self.target_ms * HALF_LIFE_INTERVALS;
                let steps = schedule.offset_ms.div_euclid(half_life);
                (i64::from(START_BITS) + steps).clamp(i64::from(MIN_BITS), i64::from(MAX_BITS))
                    as u32
            }
        }
    }

    /// The schedule after appending a block with `timestamp` (seconds;
    /// `None` for the toycoin profile, where timestamps mean nothing).
    ///
    /// The interval counted is this timestamp minus the last one, between
    /// minus and plus [`MAX_COUNTED_INTERVALS`] targets: negative when a
    /// block is stamped before the one it follows (allowed down to the
    /// median of the last [`MEDIAN_SPAN`]), so that a block stamped in the
    /// future gains its miner nothing once the next honest block is
    /// stamped at the real time.
    pub fn advance(&self, schedule: &Schedule, timestamp: Option<u64>) -> Schedule {
        let mut next = Schedule {
            last_timestamp: timestamp,
            height: schedule.height + 1,
            ..*schedule
        };
        if self.checks_timestamps() {
            if let Some(now) = timestamp {
                next.remember(now);
            }
            if let (Some(prev), Some(now)) = (schedule.last_timestamp, timestamp) {
                let elapsed_ms = (i128::from(now) - i128::from(prev)).saturating_mul(1000);
                let cap = self.target_ms * MAX_COUNTED_INTERVALS;
                let counted = elapsed_ms.clamp(-i128::from(cap), i128::from(cap)) as i64;
                let half_life = self.target_ms * HALF_LIFE_INTERVALS;
                let lowest = (i64::from(MIN_BITS) - i64::from(START_BITS)) * half_life;
                let highest = (i64::from(MAX_BITS) - i64::from(START_BITS) + 1) * half_life - 1;
                next.offset_ms =
                    (schedule.offset_ms + self.target_ms - counted).clamp(lowest, highest);
            }
        }
        next
    }

    /// Whether a node announces a block by sending its whole chain (the
    /// original does) rather than the new block alone.
    pub fn announces_whole_chain(&self) -> bool {
        self.kind == ProfileKind::Toycoin
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

    /// Fork choice: whether a chain `candidate` beats the best chain `best`.
    /// More work wins (in toycoin a block is one unit of work, so the
    /// longest chain wins); between equal work the lower tip hash wins, so
    /// that nodes that mined competing blocks agree as soon as each has
    /// seen both.
    pub fn prefers(&self, candidate: ChainScore, best: ChainScore) -> bool {
        candidate.work > best.work || (candidate.work == best.work && candidate.tip < best.tip)
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
        // Ten blocks in the same second: ten intervals ahead of schedule.
        let s = schedule_after(&p, &[100; 11]);
        assert_eq!(p.required_bits(&s), START_BITS + 5);
    }

    #[test]
    fn steady_falls_when_blocks_come_slowly_but_not_below_the_floor() {
        let p = Profile::steady(5.0);
        let slow: Vec<u64> = (0..5).map(|i| 100 + 15 * i).collect();
        let s = schedule_after(&p, &slow);
        // Four intervals of 15 s count 3 targets each: 8 targets behind.
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
    fn a_block_stamped_in_the_future_is_repaid_by_the_next_honest_one() {
        let p = Profile::steady(5.0);
        let on_time: Vec<u64> = (0..20).map(|i| 1000 + 5 * i).collect();
        let honest = schedule_after(&p, &on_time);
        // The same, but the 10th block stamped 5 minutes ahead.
        let mut lying = on_time.clone();
        lying[10] += 300;
        let bent = schedule_after(&p, &lying);
        // Counted +15 s then -15 s instead of 5 s twice: a little harder,
        // never easier.
        assert_eq!(bent.offset_ms - honest.offset_ms, 10_000);
        assert!(p.required_bits(&bent) >= p.required_bits(&honest));
    }

    #[test]
    fn absurd_targets_are_clamped_not_overflowed() {
        assert_eq!(Profile::steady(1e300).target_ms, 86_400_000);
        assert_eq!(Profile::steady(-3.0).target_ms, 1);
        assert_eq!(Profile::steady(f64::NAN).target_ms, 5_000);
        let p = Profile::steady(1e300);
        let s = p.advance(&Schedule::default(), Some(0));
        let s = p.advance(&s, Some(u64::MAX));
        assert_eq!(p.required_bits(&s), MIN_BITS.max(START_BITS - 1));
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
    fn fork_choice_prefers_more_work_then_the_lower_tip_hash() {
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
                p.prefers(score(10, 0x01), score(10, 0x02)),
                "tie: lower hash"
            );
            assert!(!p.prefers(score(10, 0x02), score(10, 0x01)));
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

    /// A simulation: miners of very different power all end up near the
    /// target interval on average, once the ramp is over.
    #[test]
    fn steady_converges_to_the_target_for_any_hash_power() {
        for hashes_per_sec in [1.0e5, 3.0e6, 5.0e7] {
            let p = Profile::steady(5.0);
            let mut s = Schedule::default();
            let mut now = 1_000_000.0_f64;
            let mut rng_state = 0x9e3779b97f4a7c15_u64;
            let mut stamps = Vec::new();
            for _ in 0..600 {
                let bits = p.required_bits(&s);
                // Exponentially distributed time to find the block.
                rng_state ^= rng_state << 13;
                rng_state ^= rng_state >> 7;
                rng_state ^= rng_state << 17;
                let u = (rng_state >> 11) as f64 / (1u64 << 53) as f64;
                let expected = 2f64.powi(bits as i32) / hashes_per_sec;
                now += -expected * (1.0 - u).ln();
                s = p.advance(&s, Some(now as u64));
                stamps.push(now);
            }
            let tail = &stamps[200..];
            let avg = (tail[tail.len() - 1] - tail[0]) / (tail.len() - 1) as f64;
            assert!(
                (3.5..7.0).contains(&avg),
                "{hashes_per_sec} H/s: average {avg}"
            );
        }
    }
}
