//! A name belongs to a key (issue 33). A client that names itself
//! (`$hello`) may prove it holds a key by signing the name and the time
//! ([`toycoin_common::control::encode_signed_hello`]); the relay binds the
//! name to the first key that does, for its life. Then:
//! - the same key gets the name back, however often it reconnects;
//! - another key, or a hello with no key, is refused the name (the client
//!   stays unnamed, shown by its address);
//! - a name no key has claimed may still be taken unsigned (the Python
//!   programs give no name at all; older clients give one unsigned), and
//!   a signed claim takes it from an unsigned holder.
//!
//! So a student who says `$hello node1` while node1 is away gets neither
//! the name nor the teacher's orders to node1. A signed hello is good
//! within [`HELLO_WINDOW_SECS`] of the relay's clock, and once: the same
//! signature again is refused (a replay).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;

use toycoin_common::control::{Hello, HELLO_WINDOW_SECS};
use toycoin_common::hash::Hash;

/// Names bound at once; past that, no new name is bound (those bound
/// stay: a flood of keys cannot unbind the teacher's nodes).
pub const MAX_BOUND: usize = 4096;
/// Signed hellos remembered, to refuse them again.
pub const MAX_SEEN: usize = 65_536;

/// What a hello may have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// Signed by the key the name is bound to (now, or from before).
    Owner,
    /// Unsigned, for a name no key owns.
    Unsigned,
    /// Not the name: why.
    Refused(String),
}

#[derive(Debug, Default)]
struct State {
    bound: HashMap<String, Hash>,
    seen: HashSet<Hash>,
    /// (when, signature's hash), oldest first.
    seen_order: VecDeque<(u64, Hash)>,
}

/// The names bound to keys.
#[derive(Debug, Default)]
pub struct Names {
    state: Mutex<State>,
}

impl Names {
    /// What `hello` may have at `now` (Unix seconds).
    pub fn claim(&self, hello: &Hello, now: u64) -> Claim {
        let key = match hello.signer(now) {
            Err(why) => return Claim::Refused(why),
            Ok(key) => key,
        };
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let Some(key) = key else {
            return if state.bound.contains_key(&hello.name) {
                Claim::Refused(format!(
                    "{} belongs to a key, and this hello is not signed",
                    hello.name
                ))
            } else {
                Claim::Unsigned
            };
        };
        // Forget the signatures too old to be taken anyway.
        while let Some(&(at, old)) = state.seen_order.front() {
            if now.saturating_sub(at) <= 2 * HELLO_WINDOW_SECS && state.seen_order.len() < MAX_SEEN
            {
                break;
            }
            state.seen_order.pop_front();
            state.seen.remove(&old);
        }
        let sig = Hash::of(hello.sig.as_deref().unwrap_or_default().as_bytes());
        if !state.seen.insert(sig) {
            return Claim::Refused("a signed hello seen before (a replay)".into());
        }
        state.seen_order.push_back((now, sig));
        match state.bound.get(&hello.name) {
            Some(owner) if *owner == key => Claim::Owner,
            Some(_) => Claim::Refused(format!("{} belongs to another key", hello.name)),
            None if state.bound.len() >= MAX_BOUND => {
                Claim::Refused(format!("{MAX_BOUND} names are bound already"))
            }
            None => {
                state.bound.insert(hello.name.clone(), key);
                Claim::Owner
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use toycoin_common::control::{encode_hello, encode_signed_hello};
    use toycoin_common::wallet::Wallet;

    fn read(frame: &[u8]) -> Hello {
        serde_json::from_slice(frame).unwrap()
    }

    #[test]
    fn a_name_belongs_to_the_first_key_that_signs_for_it() {
        let mut rng = StdRng::seed_from_u64(4);
        let (node, student) = (
            Wallet::generate(&mut rng).unwrap(),
            Wallet::generate(&mut rng).unwrap(),
        );
        let names = Names::default();
        let now = 1_000_000;
        // Unclaimed: an unsigned hello may take it.
        assert_eq!(
            names.claim(&read(&encode_hello("node1")), now),
            Claim::Unsigned
        );
        let first = read(&encode_signed_hello("node1", &node, now));
        assert_eq!(names.claim(&first, now), Claim::Owner);
        // Bound: no unsigned hello, no other key; the owner again.
        assert!(matches!(
            names.claim(&read(&encode_hello("node1")), now),
            Claim::Refused(_)
        ));
        assert!(matches!(
            names.claim(&read(&encode_signed_hello("node1", &student, now)), now),
            Claim::Refused(why) if why.contains("another key")
        ));
        assert_eq!(
            names.claim(
                &read(&encode_signed_hello("node1", &node, now + 5)),
                now + 5
            ),
            Claim::Owner
        );
        // A replay of the first hello, and one from long ago.
        assert!(matches!(
            names.claim(&first, now + 6),
            Claim::Refused(why) if why.contains("replay")
        ));
        let old = read(&encode_signed_hello(
            "node1",
            &node,
            now - 2 * HELLO_WINDOW_SECS,
        ));
        assert!(matches!(names.claim(&old, now), Claim::Refused(_)));
        // A forged signature for the student's own key and node1's name.
        let mut forged = read(&encode_signed_hello("node2", &student, now));
        forged.name = "node1".into();
        assert!(matches!(names.claim(&forged, now), Claim::Refused(_)));
    }
}
