//! Replays cost a lookup: the frames a program refused for a reason that
//! their bytes alone fix (an undecodable frame, a block that breaks a rule
//! whatever our chain) are remembered by the [`FrameDigest`] of their
//! bytes, so the same bytes sent again are recognised before they are
//! decoded. A student replaying one large invalid branch a thousand times
//! costs each node a hash and a lookup per copy, not a decode and a check.
//!
//! Bounded: the [`MAX_REFUSED_FRAMES`] most recently refused are kept.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use sha2::{Digest, Sha256};

/// A frame's identity: the SHA-256 of its bytes. Not the protocol's hash
/// (SHA-512): this one never leaves the program, and SHA-256 runs on the
/// CPU's SHA extensions where it has them (2.3 times SHA-512's speed on
/// the development machine, `openssl speed`), which is most of what a
/// replay costs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FrameDigest([u8; 32]);

impl FrameDigest {
    pub fn of(payload: &[u8]) -> FrameDigest {
        FrameDigest(Sha256::digest(payload).into())
    }
}

/// What a program says of a frame it knew unread: the same bytes as one
/// refused for `reason`.
pub fn refused_again(reason: &str) -> String {
    format!("the same bytes were refused before: {reason}")
}

/// Refused frames remembered (each costs its hash and a shared reason).
pub const MAX_REFUSED_FRAMES: usize = 1024;

/// The frames refused lately, by the hash of their bytes.
#[derive(Debug, Default)]
pub struct RefusedFrames {
    reasons: HashMap<FrameDigest, Arc<str>>,
    order: VecDeque<FrameDigest>,
}

impl RefusedFrames {
    /// Why the frame whose bytes hash to `digest` was refused, if it was.
    pub fn get(&self, digest: &FrameDigest) -> Option<&Arc<str>> {
        self.reasons.get(digest)
    }

    /// Remembers that the frame hashing to `digest` was refused, and why.
    pub fn remember(&mut self, digest: FrameDigest, reason: &str) {
        if self.reasons.insert(digest, Arc::from(reason)).is_none() {
            self.order.push_back(digest);
        }
        while self.reasons.len() > MAX_REFUSED_FRAMES {
            match self.order.pop_front() {
                Some(old) => {
                    self.reasons.remove(&old);
                }
                None => break,
            }
        }
    }

    pub fn len(&self) -> usize {
        self.reasons.len()
    }

    pub fn is_empty(&self) -> bool {
        self.reasons.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_frames_are_recognised_and_the_oldest_forgotten() {
        let mut refused = RefusedFrames::default();
        let first = FrameDigest::of(b"frame 0");
        refused.remember(first, "bad");
        assert_eq!(refused.get(&first).map(|r| &**r), Some("bad"));
        assert_eq!(refused.get(&FrameDigest::of(b"another")), None);
        for i in 1..=MAX_REFUSED_FRAMES {
            refused.remember(FrameDigest::of(format!("frame {i}").as_bytes()), "bad");
        }
        assert_eq!(refused.len(), MAX_REFUSED_FRAMES);
        assert_eq!(refused.get(&first), None, "the oldest is forgotten");
    }
}
