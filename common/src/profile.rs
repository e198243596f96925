//! Network profiles: the parameters and rule switches in which the
//! original toycoin network and our default, steady one differ. A
//! [`Profile`] is compiled from a [`Network`] (the teacher's data: rules,
//! target, mint, genesis); each rule lives in a module named after it:
//!
//! | rule | module |
//! |---|---|
//! | difficulty and timestamps | [`crate::difficulty`] |
//! | fork choice (most work, first seen) | [`Profile::prefers`] (here) |
//! | rewards, the mint, transaction checks | [`crate::ledger`] |
//! | signatures and their thread pool | [`crate::signatures`] |
//! | canonical addresses | [`crate::address`] |
//! | byte limits | the `MAX_*_BYTES` and `MAX_*_PAYLOAD` constants here |
//!
//! * `toycoin` — the original's rules exactly; such a network stalls
//!   after a few minutes, as the original does.
//! * `steady` (the default) — a demo that keeps going: nodes mine all the
//!   time, the difficulty follows the hash power, the chain with the most
//!   work wins, and the money and bytes are bounded.

use std::fmt;
use std::str::FromStr;

use crate::hash::{BlockHash, Hash};
use crate::network::Network;

pub use crate::difficulty::{
    toycoin_zero_bytes, Schedule, MAX_BITS, MAX_FUTURE_SECS, MEDIAN_SPAN, MIN_BITS, START_BITS,
};

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
    /// the blocks before it (`crate::difficulty`).
    pub fn required_bits(&self, schedule: &Schedule) -> u32 {
        match self.kind {
            ProfileKind::Toycoin => 8 * toycoin_zero_bytes(schedule.height),
            ProfileKind::Steady => schedule.steady_bits(),
        }
    }

    /// The schedule after appending a block with `timestamp` (seconds;
    /// `None` for the toycoin profile, where timestamps mean nothing): see
    /// `crate::difficulty`.
    pub fn advance(&self, schedule: &Schedule, timestamp: Option<u64>) -> Schedule {
        let target = self.checks_timestamps().then_some(self.target_ms);
        schedule.after(timestamp, target)
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
    /// schedule after the block before it: its own clock, unless that is
    /// before the earliest time the rules allow (see `crate::difficulty`).
    pub fn mining_timestamp(&self, now: u64, schedule: &Schedule) -> u64 {
        match schedule.earliest_timestamp() {
            Some(earliest) if self.checks_timestamps() => now.max(earliest),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_names_parse() {
        assert_eq!("steady".parse(), Ok(ProfileKind::Steady));
        assert_eq!("toycoin".parse(), Ok(ProfileKind::Toycoin));
        assert!("bitcoin".parse::<ProfileKind>().is_err());
        assert_eq!(ProfileKind::default(), ProfileKind::Steady);
    }

    #[test]
    fn absurd_targets_are_clamped_not_overflowed() {
        assert_eq!(Profile::steady(1e300).target_ms, 86_400_000);
        assert_eq!(Profile::steady(-3.0).target_ms, 1);
        assert_eq!(Profile::steady(f64::NAN).target_ms, 5_000);
        let p = Profile::steady(1e300);
        let s = [0, 86_400, u64::MAX]
            .iter()
            .fold(Schedule::default(), |s, &t| p.advance(&s, Some(t)));
        assert!((MIN_BITS..=MAX_BITS).contains(&p.required_bits(&s)));
    }

    #[test]
    fn toycoin_needs_the_originals_bytes_and_steady_the_level() {
        let s = (0..8).fold(Schedule::default(), |s, _| {
            Profile::toycoin().advance(&s, None)
        });
        assert_eq!(Profile::toycoin().required_bits(&s), 32);
        assert_eq!(Profile::steady(5.0).required_bits(&s), START_BITS);
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
        let after_1000 = s.advance(&Schedule::default(), Some(1000));
        // Steady miners stamp their own clock, even behind the median
        // time past, down to MAX_FUTURE_SECS before it.
        assert_eq!(s.mining_timestamp(900, &after_1000), 900);
        assert_eq!(s.mining_timestamp(10, &after_1000), 1000 - MAX_FUTURE_SECS);
        assert_eq!(t.mining_timestamp(10, &after_1000), 10);
        assert_eq!(s.describe(), "steady, target 5 s");
        assert_eq!(t.describe(), "toycoin");
    }

    #[test]
    fn steady_work_doubles_per_bit_and_toycoin_counts_blocks() {
        assert_eq!(Profile::steady(5.0).block_work(20), 1 << 20);
        assert_eq!(Profile::toycoin().block_work(24), 1);
    }
}
