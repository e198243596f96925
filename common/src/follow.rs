//! Following the best chain from a relay topic: the node, the oracle and
//! the listener each hold a [`Follower`]. It feeds each `BLOC` to a
//! [`BlockTree`] and, in the steady profile, says when to ask for missed
//! blocks with a `GETB` (see `docs/catch-up.md`): on connecting, when a
//! block's parent is unknown (at most once a second), and after a full
//! catch-up batch.

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::block::Block;
use crate::chain::ChainError;
use crate::message::{encode_getb, GetBlocks};
use crate::profile::{Profile, ProfileKind};
use crate::tree::{BlockTree, Received};

/// Most blocks one catch-up answer carries; a full batch means "ask again".
pub const CATCH_UP_BATCH: usize = 100;
/// Orphans trigger at most one request per this interval.
pub const CATCH_UP_INTERVAL: Duration = Duration::from_secs(1);

/// A best-chain view that knows when to ask for more.
#[derive(Debug)]
pub struct Follower {
    tree: BlockTree,
    id: String,
    requests: u64,
    last_request: Option<Instant>,
}

impl Follower {
    /// `id` prefixes this follower's request ids (so it knows its own).
    pub fn new(profile: Profile, id: impl Into<String>) -> Follower {
        Follower {
            tree: BlockTree::new(profile),
            id: id.into(),
            requests: 0,
            last_request: None,
        }
    }

    pub fn tree(&self) -> &BlockTree {
        &self.tree
    }

    fn steady(&self) -> bool {
        self.tree.chain().profile().kind == ProfileKind::Steady
    }

    /// Whether a `GETB` is one of ours.
    pub fn is_own_request(&self, request: &GetBlocks) -> bool {
        request
            .id
            .strip_prefix(self.id.as_str())
            .is_some_and(|rest| rest.starts_with('-'))
    }

    /// A `GETB` payload to publish now (steady profile only; `force` skips
    /// the once-a-second limit).
    pub fn request(&mut self, force: bool) -> Option<Bytes> {
        if !self.steady() {
            return None;
        }
        if !force
            && self
                .last_request
                .is_some_and(|at| at.elapsed() < CATCH_UP_INTERVAL)
        {
            return None;
        }
        self.last_request = Some(Instant::now());
        self.requests += 1;
        Some(encode_getb(&GetBlocks {
            locator: self.tree.locator(),
            id: format!("{}-{}", self.id, self.requests),
        }))
    }

    /// Takes in a `BLOC`; also returns a `GETB` to publish, if one is due.
    pub fn receive(
        &mut self,
        blocks: Vec<Block>,
        now: u64,
    ) -> (Result<Received, ChainError>, Option<Bytes>) {
        let full_batch = blocks.len() >= CATCH_UP_BATCH;
        let result = self.tree.receive(blocks, now);
        let follow_up = match &result {
            Ok(Received::Orphan { .. }) => self.request(false),
            Ok(Received::Adopted(_)) if full_batch => self.request(true),
            _ => None,
        };
        (result, follow_up)
    }
}
