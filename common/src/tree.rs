//! Fork choice: the best valid chain, plus the recent blocks of other
//! branches, and what to do with each `BLOC` that arrives.
//!
//! A `BLOC` carries consecutive blocks: a whole chain from genesis (the
//! toycoin profile, as the original sends it) or only the newest blocks (the
//! steady profile). [`BlockTree::receive`] skips the blocks it already has,
//! finds where the rest attach (the best chain or a kept side branch), and
//! checks the headers of the resulting branch first, which is cheap: only a
//! branch whose proof of work beats the best chain is validated completely
//! (transactions and signatures) and adopted. So a peer cannot make a node
//! do expensive work without doing more proof of work than the whole
//! network, and nothing changes unless the new chain is entirely valid.
//!
//! Which of two chains is better is the profile's fork-choice rule,
//! [`Profile::prefers`](crate::profile::Profile::prefers).

use std::collections::{HashMap, VecDeque};

use crate::block::Block;
use crate::chain::{check_body, check_header, BlockError, Chain, ChainError};
use crate::hash::BlockHash;
use crate::message::MAX_LOCATOR;
use crate::profile::{ChainScore, Profile, Schedule};

/// Hashes describing a chain of `len` blocks whose block `i` has hash
/// `hash(i)`, for a catch-up request (a full node's `GETB`, a light
/// wallet's headers request): the tip, the 9 before it, then going back 2,
/// 4, 8, ... blocks, and the first block (Bitcoin's "block locator"), at
/// most [`MAX_LOCATOR`]. Empty for an empty chain.
pub fn locator(len: usize, hash: impl Fn(usize) -> BlockHash) -> Vec<BlockHash> {
    let mut out = Vec::new();
    let mut step = 1;
    let mut i = len;
    while i > 0 && out.len() < MAX_LOCATOR - 1 {
        out.push(hash(i - 1));
        if out.len() >= 10 {
            step *= 2;
        }
        i = i.saturating_sub(step);
    }
    if len > 0 && out.last() != Some(&hash(0)) {
        out.push(hash(0));
    }
    out
}

/// Most side-branch blocks kept (the oldest are forgotten first).
pub const DEFAULT_MAX_SIDE_BLOCKS: usize = 256;
/// Most bytes of side-branch blocks kept, by [`Block::size`] (the oldest
/// are forgotten first).
pub const DEFAULT_MAX_SIDE_BYTES: usize = 16 * 1024 * 1024;

/// Most invalid blocks remembered (the oldest are forgotten first): about
/// 200 bytes each.
pub const MAX_INVALID_REMEMBERED: usize = 4096;

/// The best chain changed.
#[derive(Clone, Debug)]
pub struct Adopted {
    pub old_tip: BlockHash,
    pub new_tip: BlockHash,
    /// Height of the first block that is not shared with the old chain.
    pub fork_height: usize,
    /// Blocks of the old chain taken back, oldest first (empty when the new
    /// blocks simply extend the tip).
    pub rolled_back: Vec<Block>,
    /// Blocks added on top of the fork point.
    pub added: usize,
}

impl Adopted {
    pub fn is_reorganization(&self) -> bool {
        !self.rolled_back.is_empty()
    }
}

/// What a `BLOC` did.
#[derive(Clone, Debug)]
pub enum Received {
    /// Every block was already known.
    Known,
    /// The best chain changed.
    Adopted(Adopted),
    /// Valid headers, but the branch does not beat the best chain (less
    /// work, or equal work and a higher tip hash): kept aside in case it
    /// grows.
    SideBranch {
        fork_height: usize,
        /// Length of the side branch.
        length: usize,
        /// Its accumulated work and the best chain's.
        work: u128,
        best_work: u128,
    },
    /// The first new block's parent is unknown: the node should catch up.
    Orphan { missing: BlockHash },
}

/// A block off the best chain, with what its header checks computed, so a
/// block on top of it is checked alone.
#[derive(Clone, Debug)]
struct SideBlock {
    block: Block,
    /// Its height.
    height: usize,
    /// Work of its branch up to and including it, and the schedule after it.
    work: u128,
    schedule: Schedule,
}

/// The best chain and the recent side-branch blocks.
#[derive(Clone, Debug)]
pub struct BlockTree {
    chain: Chain,
    side: HashMap<BlockHash, SideBlock>,
    side_order: VecDeque<BlockHash>,
    side_bytes: usize,
    max_side: usize,
    max_side_bytes: usize,
    /// Blocks found invalid for good, and why: a replayed one costs a
    /// lookup, not a validation.
    invalid: HashMap<BlockHash, Invalid>,
    invalid_order: VecDeque<BlockHash>,
}

/// Why a block is known invalid: the block whose failure it is (`None`:
/// its own), and that failure, shared by every descendant. A descendant
/// names the block that failed, never the chain of blocks between: a run
/// of descendants costs a hash each, not a reason growing with each
/// generation.
#[derive(Clone, Debug)]
struct Invalid {
    root: Option<BlockHash>,
    cause: std::sync::Arc<str>,
}

impl Invalid {
    fn reason(&self) -> String {
        match self.root {
            Some(root) => format!("descends from {}: {}", root.short(), self.cause),
            None => self.cause.to_string(),
        }
    }
}

impl BlockTree {
    pub fn new(profile: Profile) -> BlockTree {
        BlockTree::with_max_side(profile, DEFAULT_MAX_SIDE_BLOCKS)
    }

    pub fn with_max_side(profile: Profile, max_side: usize) -> BlockTree {
        BlockTree {
            chain: Chain::new(profile),
            side: HashMap::new(),
            side_order: VecDeque::new(),
            side_bytes: 0,
            max_side,
            max_side_bytes: DEFAULT_MAX_SIDE_BYTES,
            invalid: HashMap::new(),
            invalid_order: VecDeque::new(),
        }
    }

    /// Why a block was found invalid, if it was (and is still remembered).
    pub fn known_invalid(&self, hash: &BlockHash) -> Option<String> {
        self.invalid.get(hash).map(Invalid::reason)
    }

    /// Remembers `blocks` as invalid: the first fails with `error`, the
    /// rest descend from it. Only blocks whose hash is their header's are
    /// remembered, so nobody can have a good block refused by sending a
    /// bad one under its hash.
    fn remember_invalid(&mut self, blocks: &[Block], error: &BlockError) {
        let Some(first) = blocks.first() else {
            return;
        };
        if !error.is_proved_by_hash(self.chain.profile(), first) {
            return;
        }
        // Against a known invalid ancestor every block descends from the
        // block that failed; otherwise the first block is the cause.
        let (ancestor, cause) = match error {
            BlockError::KnownInvalid { hash, reason } => match self.invalid.get(hash) {
                Some(known) => (Some(known.root.unwrap_or(*hash)), known.cause.clone()),
                None => (Some(*hash), std::sync::Arc::from(reason.as_str())),
            },
            other => (None, std::sync::Arc::from(other.to_string())),
        };
        for (i, block) in blocks.iter().enumerate() {
            let hash = block.header.this_hash;
            if block.header.compute_hash() != hash {
                return;
            }
            let invalid = Invalid {
                root: ancestor.or((i > 0).then_some(first.header.this_hash)),
                cause: cause.clone(),
            };
            if self.invalid.insert(hash, invalid).is_none() {
                self.invalid_order.push_back(hash);
            }
        }
        while self.invalid.len() > MAX_INVALID_REMEMBERED {
            match self.invalid_order.pop_front() {
                Some(old) => {
                    self.invalid.remove(&old);
                }
                None => break,
            }
        }
    }

    /// The best chain.
    pub fn chain(&self) -> &Chain {
        &self.chain
    }

    pub fn side_blocks(&self) -> usize {
        self.side.len()
    }

    /// Bytes of the side-branch blocks kept (by [`Block::size`]).
    pub fn side_bytes(&self) -> usize {
        self.side_bytes
    }

    /// Keeps at most `max` bytes of side-branch blocks.
    pub fn set_max_side_bytes(&mut self, max: usize) {
        self.max_side_bytes = max;
        self.trim_side();
    }

    /// The height of a block on the best chain or a side branch.
    pub fn height_of(&self, hash: &BlockHash) -> Option<usize> {
        self.chain
            .height_of(hash)
            .or_else(|| self.side.get(hash).map(|s| s.height))
    }

    /// Whether a block with this hash is known (best chain or side branch).
    pub fn knows(&self, hash: &BlockHash) -> bool {
        *hash == self.chain.profile().genesis
            || self.chain.height_of(hash).is_some()
            || self.side.contains_key(hash)
    }

    /// Takes in consecutive blocks. On an error the best chain is unchanged;
    /// the error's `index` is the failing block's height when its parent is
    /// known, else its position in `blocks`.
    pub fn receive(&mut self, blocks: Vec<Block>, now: u64) -> Result<Received, ChainError> {
        for (index, pair) in blocks.windows(2).enumerate() {
            if pair[1].header.previous_hash != pair[0].header.this_hash {
                return Err(ChainError {
                    index: index + 1,
                    error: BlockError::PreviousHash {
                        got: pair[1].header.previous_hash,
                    },
                });
            }
        }
        if let Some((index, hash, reason)) = blocks.iter().enumerate().find_map(|(i, b)| {
            let hash = b.header.this_hash;
            self.known_invalid(&hash).map(|r| (i, hash, r))
        }) {
            return Err(ChainError {
                index,
                error: BlockError::KnownInvalid { hash, reason },
            });
        }
        let Some(first_new) = blocks.iter().position(|b| !self.knows(&b.header.this_hash)) else {
            return Ok(Received::Known);
        };
        let mut new_blocks = blocks;
        new_blocks.drain(..first_new);
        // Children of an invalid block are invalid.
        let parent = new_blocks[0].header.previous_hash;
        if let Some(reason) = self.known_invalid(&parent) {
            let error = BlockError::KnownInvalid {
                hash: parent,
                reason,
            };
            self.remember_invalid(&new_blocks, &error);
            return Err(ChainError {
                index: first_new,
                error,
            });
        }

        // Where the new blocks attach: the best chain (or genesis), or a
        // kept side block whose checks are remembered. Either way only the
        // new blocks' headers are checked here.
        let parent = new_blocks[0].header.previous_hash;
        let (start_height, mut work, mut schedule) =
            if let Some(height) = self.chain.height_after(&parent) {
                let (work, schedule) = self.chain.state_at(height);
                (height, work, schedule)
            } else if let Some(side) = self.side.get(&parent) {
                (side.height + 1, side.work, side.schedule)
            } else if self.chain.profile().announces_whole_chain() && first_new == 0 {
                // A toycoin `BLOC` is a whole chain, whose first block is
                // block 0: one that names no block we know names another
                // network's genesis (a steady one's, since v3).
                return Err(ChainError {
                    index: 0,
                    error: BlockError::OtherNetwork { got: parent },
                });
            } else {
                return Ok(Received::Orphan { missing: parent });
            };

        // Headers and bodies first: cheap, and they decide the branch's work.
        let profile = *self.chain.profile();
        let mut previous = parent;
        let mut states = Vec::with_capacity(new_blocks.len());
        for (offset, block) in new_blocks.iter().enumerate() {
            let checked = check_header(&profile, previous, &schedule, &block.header, now)
                .and_then(|info| check_body(&profile, block).map(|_| info));
            let info = match checked {
                Ok(info) => info,
                Err(error) => {
                    self.remember_invalid(&new_blocks[offset..], &error);
                    return Err(ChainError {
                        index: start_height + offset,
                        error,
                    });
                }
            };
            work += profile.block_work(info.required_bits);
            schedule = profile.advance(&schedule, info.timestamp);
            states.push((work, schedule));
            previous = block.header.this_hash;
        }

        let best_work = self.chain.total_work();
        let candidate = ChainScore {
            work,
            tip: previous,
        };
        if !profile.prefers(candidate, self.chain.score()) {
            let fork_height = self.fork_height_of(&parent);
            let tip_height = start_height + new_blocks.len() - 1;
            for (offset, (block, (work, schedule))) in
                new_blocks.into_iter().zip(states).enumerate()
            {
                self.keep_aside(SideBlock {
                    block,
                    height: start_height + offset,
                    work,
                    schedule,
                });
            }
            return Ok(Received::SideBranch {
                fork_height,
                length: tip_height + 1 - fork_height,
                work,
                best_work,
            });
        }
        // It wins: gather its kept blocks back to the best chain.
        let mut branch: Vec<Block> = Vec::new();
        let mut at = parent;
        while let Some(side) = self.side.get(&at) {
            branch.push(side.block.clone());
            at = side.block.header.previous_hash;
        }
        branch.reverse();
        let fork_len = start_height - branch.len();
        branch.extend(new_blocks);
        self.switch(fork_len, branch, now)
    }

    /// The height at which the branch through `hash` (a side block, or a
    /// block of the best chain, or GENESIS) leaves the best chain.
    fn fork_height_of(&self, hash: &BlockHash) -> usize {
        let mut at = *hash;
        let mut steps = 0;
        while let Some(side) = self.side.get(&at) {
            at = side.block.header.previous_hash;
            steps += 1;
            if steps > self.side.len() {
                break;
            }
        }
        self.chain.height_after(&at).unwrap_or(0)
    }

    /// Validates `branch` completely on top of the first `fork_len` blocks
    /// and makes it the best chain, or changes nothing.
    fn switch(
        &mut self,
        fork_len: usize,
        branch: Vec<Block>,
        now: u64,
    ) -> Result<Received, ChainError> {
        let old_tip = self.chain.tip_hash();
        let old_states: Vec<(u128, Schedule)> = (fork_len.min(self.chain.len())..self.chain.len())
            .map(|i| self.chain.state_at(i + 1))
            .collect();
        let rolled_back = self.chain.truncate(fork_len);
        let added = branch.len();
        let mut failure = None;
        if let Err((offset, error)) = self.chain.extend(&branch, now) {
            self.remember_invalid(&branch[offset..], &error);
            failure = Some(ChainError {
                index: fork_len + offset,
                error,
            });
        }
        if let Some(error) = failure {
            // Put the old chain back; its blocks were valid before and are
            // checked again as they go back.
            self.chain.truncate(fork_len);
            for block in rolled_back {
                if self.chain.push(block, now).is_err() {
                    break;
                }
            }
            return Err(error);
        }
        // Index, not `blocks().skip()`: skipping a mapped iterator walks
        // every block before the fork.
        let adopted: Vec<BlockHash> = self.chain.entries()[fork_len.min(self.chain.len())..]
            .iter()
            .map(|e| e.header.this_hash)
            .collect();
        for hash in &adopted {
            self.forget_side(hash);
        }
        for (offset, (block, (work, schedule))) in rolled_back.iter().zip(old_states).enumerate() {
            self.keep_aside(SideBlock {
                block: block.clone(),
                height: fork_len + offset,
                work,
                schedule,
            });
        }
        Ok(Received::Adopted(Adopted {
            old_tip,
            new_tip: self.chain.tip_hash(),
            fork_height: fork_len,
            rolled_back,
            added,
        }))
    }

    fn keep_aside(&mut self, side: SideBlock) {
        if self.max_side == 0 {
            return;
        }
        let hash = side.block.header.this_hash;
        let size = side.block.size();
        match self.side.insert(hash, side) {
            None => self.side_order.push_back(hash),
            Some(old) => self.side_bytes -= old.block.size(),
        }
        self.side_bytes += size;
        self.trim_side();
    }

    /// Forgets the oldest side blocks while over either limit.
    fn trim_side(&mut self) {
        while self.side.len() > self.max_side || self.side_bytes > self.max_side_bytes {
            match self.side_order.pop_front() {
                Some(old) => {
                    if let Some(gone) = self.side.remove(&old) {
                        self.side_bytes -= gone.block.size();
                    }
                }
                None => break,
            }
        }
    }

    fn forget_side(&mut self, hash: &BlockHash) {
        if let Some(gone) = self.side.remove(hash) {
            self.side_bytes -= gone.block.size();
            self.side_order.retain(|h| h != hash);
        }
    }

    /// The best chain's [`locator`], for a catch-up request.
    pub fn locator(&self) -> Vec<BlockHash> {
        let entries = self.chain.entries();
        locator(entries.len(), |i| entries[i].header.this_hash)
    }

    /// For a catch-up request: the height after the first locator hash on
    /// the best chain (0 when none is, meaning from genesis).
    pub fn fork_point(&self, locator: &[BlockHash]) -> usize {
        locator
            .iter()
            .find_map(|h| self.chain.height_of(h))
            .map_or(0, |height| height + 1)
    }
}
