//! Network profiles: the parameters and rule switches in which the
//! original toycoin network and our default, steady one differ. A
//! [`Profile`] is compiled from a [`Network`](crate::network::Network) (the teacher's data: rules,
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

use crate::hash::{BlockHash, Hash};
pub use crate::network::{ProfileKind, DEFAULT_TARGET_SECS, MAX_TARGET_SECS};

pub use crate::difficulty::{
    toycoin_zero_bytes, Schedule, MAX_BITS, MAX_FUTURE_SECS, MEDIAN_SPAN, MIN_BITS, START_BITS,
};

/// Confirmations after which a transaction is final: the lecture's figure
/// for proof of work (Bitcoin's six blocks). The oracle and the listener
/// count up to it.
pub const FINAL_CONFIRMATIONS: usize = 6;
pub use crate::fork_choice::ChainScore;
pub use crate::limits::{
    MAX_BLOCK_BYTES, MAX_BLOC_PAYLOAD, MAX_PBFT_PAYLOAD, MAX_TXN_BYTES, MAX_TXN_PAYLOAD,
};
pub use crate::mint::{Minting, BLOCK_REWARD, MAX_SUPPLY};
pub use crate::transaction::Signing;

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

impl Profile {
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

    /// Fork choice ([`crate::fork_choice::prefers`]).
    pub fn prefers(&self, candidate: ChainScore, best: ChainScore) -> bool {
        crate::fork_choice::prefers(candidate, best)
    }

    /// The work a block adds to its chain
    /// ([`crate::fork_choice::block_work`]).
    pub fn block_work(&self, bits: u32) -> u128 {
        crate::fork_choice::block_work(self.kind, bits)
    }

    /// The most transactions a block may hold ([`crate::limits::max_block_txns`]).
    pub fn max_block_txns(&self) -> usize {
        crate::limits::max_block_txns(self.kind)
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
            Minting::RewardsAndMint => Some(crate::mint::block_reward(supply)),
        }
    }

    /// The largest transaction the rules take ([`crate::limits`]).
    pub fn max_txn_bytes(&self) -> Option<usize> {
        crate::limits::max_txn_bytes(self.kind)
    }

    /// The largest block the rules take ([`crate::limits`]).
    pub fn max_block_bytes(&self) -> Option<usize> {
        crate::limits::max_block_bytes(self.kind)
    }

    /// The largest amount a transaction output may hold.
    pub fn max_amount(&self) -> i64 {
        match self.minting() {
            Minting::AnyCoinbase => i64::MAX,
            Minting::RewardsAndMint => MAX_SUPPLY,
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
