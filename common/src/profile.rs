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

/// How a network counts the zero bits a block needs (`crate::difficulty`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DifficultyRule {
    /// The original's: d(i) zero bytes for a block with i blocks before it.
    OriginalBytes,
    /// A level moved block by block by the median time past.
    Level,
}

/// The rules in which networks differ, as plain data: one constant per
/// kind of network ([`Rules::TOYCOIN`], [`Rules::STEADY`]), as
/// rust-bitcoin's `Params::MAINNET`. Each rule's code lives in the module
/// named after it and reads its field here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rules {
    /// How the bits a block needs are counted (`crate::difficulty`).
    pub difficulty: DifficultyRule,
    /// Timestamps are checked (canonical decimal seconds, within
    /// [`MAX_FUTURE_SECS`] of the median time past and of the checker's
    /// clock) and steer the difficulty. The original's check never runs.
    pub timestamps: bool,
    /// A block's work is 2^bits (most work wins); else one per block
    /// (the longest chain wins: `crate::fork_choice`).
    pub work_per_bit: bool,
    /// A node announces a block by sending its whole chain (the original)
    /// rather than the new block alone.
    pub whole_chain: bool,
    /// Nodes say where they stand in a `STAT` every few seconds
    /// (`docs/status.md`); the original prints an error for the tag.
    pub status: bool,
    /// Nodes ask for and answer missed blocks with `GETB`
    /// (`docs/catch-up.md`); the original has no such message.
    pub catch_up: bool,
    /// Nodes mine all the time, a block holding only its reward when
    /// nothing waits (the chain keeps time, honest work grows at the honest
    /// hash rate), rather than only when transactions wait (`--min-txns`,
    /// `--max-wait`).
    pub continuous_mining: bool,
    /// A block may repeat, verbatim, a transaction already in its chain:
    /// the original nodes do (the captured chains repeat block 2's
    /// transactions in block 4); the repeat is applied once. A *different*
    /// transaction spending a spent token is a double spend either way.
    pub repeated_txns: bool,
    /// Nodes take a transaction spending an output of one still pending;
    /// the Python nodes refuse any input not in their chain, so a wallet on
    /// a toycoin network pays with confirmed outputs only (the oracle).
    pub pending_inputs: bool,
    /// What a transaction's signatures cover (`crate::signatures`).
    pub signing: Signing,
    /// Every transaction must be in the canonical encoding
    /// (`crate::ledger::check_shape`): one key one address, signatures of
    /// one length, so transaction ids are unambiguous.
    pub canonical_encoding: bool,
    /// Where new coins come from (`crate::mint`).
    pub minting: Minting,
    /// The largest transaction by size (`crate::limits`); `None`: bounded
    /// only by the frame.
    pub max_txn_bytes: Option<usize>,
    /// The largest block by size; `None`: bounded only by the frame.
    pub max_block_bytes: Option<usize>,
    /// The most transactions a block holds: the original's 10, or as many
    /// as the wire carries, the bytes being the real bound.
    pub max_block_txns: usize,
    /// The largest amount an output may hold.
    pub max_amount: i64,
}

impl Rules {
    /// The original toycoin's rules, exactly.
    pub const TOYCOIN: Rules = Rules {
        difficulty: DifficultyRule::OriginalBytes,
        timestamps: false,
        work_per_bit: false,
        whole_chain: true,
        status: false,
        catch_up: false,
        continuous_mining: false,
        repeated_txns: true,
        pending_inputs: false,
        signing: Signing::Original,
        canonical_encoding: false,
        minting: Minting::AnyCoinbase,
        max_txn_bytes: None,
        max_block_bytes: None,
        max_block_txns: crate::block::MAX_BLOCK_TXNS,
        max_amount: i64::MAX,
    };

    /// Ours: a demo that keeps going, and is sound.
    pub const STEADY: Rules = Rules {
        difficulty: DifficultyRule::Level,
        timestamps: true,
        work_per_bit: true,
        whole_chain: false,
        status: true,
        catch_up: true,
        continuous_mining: true,
        repeated_txns: false,
        pending_inputs: true,
        signing: Signing::Amounts,
        canonical_encoding: true,
        minting: Minting::RewardsAndMint,
        max_txn_bytes: Some(MAX_TXN_BYTES),
        max_block_bytes: Some(MAX_BLOCK_BYTES),
        max_block_txns: crate::message::MAX_WIRE_BLOCK_TXNS,
        max_amount: MAX_SUPPLY,
    };

    /// The rules of a kind of network.
    pub const fn of(kind: ProfileKind) -> Rules {
        match kind {
            ProfileKind::Toycoin => Rules::TOYCOIN,
            ProfileKind::Steady => Rules::STEADY,
        }
    }
}

/// A network compiled for validation: its [`Rules`], its target, genesis
/// and mint (from [`crate::network::Network::profile`]). Plain data; the
/// methods below read it for the rule modules.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Profile {
    pub kind: ProfileKind,
    /// The rules this network follows.
    pub rules: Rules,
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
        match self.rules.difficulty {
            DifficultyRule::OriginalBytes => 8 * toycoin_zero_bytes(schedule.height),
            DifficultyRule::Level => schedule.steady_bits(),
        }
    }

    /// The schedule after appending a block with `timestamp` (seconds;
    /// `None` where timestamps mean nothing): see `crate::difficulty`.
    pub fn advance(&self, schedule: &Schedule, timestamp: Option<u64>) -> Schedule {
        let target = self.rules.timestamps.then_some(self.target_ms);
        schedule.after(timestamp, target)
    }

    /// [`Rules::whole_chain`].
    pub fn announces_whole_chain(&self) -> bool {
        self.rules.whole_chain
    }

    /// [`Rules::status`].
    pub fn announces_status(&self) -> bool {
        self.rules.status
    }

    /// [`Rules::catch_up`].
    pub fn uses_catch_up(&self) -> bool {
        self.rules.catch_up
    }

    /// [`Rules::timestamps`].
    pub fn checks_timestamps(&self) -> bool {
        self.rules.timestamps
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
        crate::fork_choice::block_work(self.rules.work_per_bit, bits)
    }

    /// [`Rules::max_block_txns`].
    pub fn max_block_txns(&self) -> usize {
        self.rules.max_block_txns
    }

    /// [`Rules::continuous_mining`].
    pub fn mines_continuously(&self) -> bool {
        self.rules.continuous_mining
    }

    /// The profile in words: `steady, target 5 s` or `toycoin`.
    pub fn describe(&self) -> String {
        match self.rules.timestamps {
            true => format!("{}, target {} s", self.kind, self.target_ms as f64 / 1000.0),
            false => self.kind.to_string(),
        }
    }

    /// [`Rules::repeated_txns`].
    pub fn tolerates_repeated_txns(&self) -> bool {
        self.rules.repeated_txns
    }

    /// [`Rules::pending_inputs`].
    pub fn pays_with_pending_outputs(&self) -> bool {
        self.rules.pending_inputs
    }

    /// [`Rules::signing`].
    pub fn signing(&self) -> Signing {
        self.rules.signing
    }

    /// [`Rules::canonical_encoding`].
    pub fn canonical_encoding(&self) -> bool {
        self.rules.canonical_encoding
    }

    /// [`Rules::minting`].
    pub fn minting(&self) -> Minting {
        self.rules.minting
    }

    /// What the block after `supply` coins exist pays its miner: `None`
    /// where blocks carry no reward (toycoin); never past [`MAX_SUPPLY`].
    pub fn block_reward(&self, supply: i64) -> Option<i64> {
        match self.rules.minting {
            Minting::AnyCoinbase => None,
            Minting::RewardsAndMint => Some(crate::mint::block_reward(supply)),
        }
    }

    /// [`Rules::max_txn_bytes`].
    pub fn max_txn_bytes(&self) -> Option<usize> {
        self.rules.max_txn_bytes
    }

    /// [`Rules::max_block_bytes`].
    pub fn max_block_bytes(&self) -> Option<usize> {
        self.rules.max_block_bytes
    }

    /// [`Rules::max_amount`].
    pub fn max_amount(&self) -> i64 {
        self.rules.max_amount
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
