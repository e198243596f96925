//! Who a status is from (issue 33): an observer shows a node's `STAT`
//! only under the name its key owns. The first signed status for a name
//! binds the name to its key, and the key to the name, for the observer's
//! life; then a status in that name signed by another key, or not signed
//! at all, or a second name for the key, is refused with its reason. A
//! name no key has signed for may still be shown unsigned (toycoin
//! profile nodes, nodes without a key), as a claim at its word.

use std::collections::HashMap;

use toycoin_common::hash::Hash;
use toycoin_common::message::Status;

/// Names bound at once: past that no new name is bound (those bound stay).
pub const MAX_BOUND: usize = 4096;

/// The names bound to keys, as this observer saw them first.
#[derive(Debug, Default)]
pub struct StatusNames {
    by_name: HashMap<String, Hash>,
    by_key: HashMap<Hash, String>,
}

impl StatusNames {
    /// Whether `status` may be shown under its name; if not, why.
    pub fn admit(&mut self, status: &Status) -> Result<(), String> {
        let name = &status.name;
        let Some(key) = status.signed_by()? else {
            return match self.by_name.contains_key(name) {
                true => Err(format!(
                    "{name}'s statuses are signed by its key, and this one is not"
                )),
                false => Ok(()),
            };
        };
        match (self.by_name.get(name), self.by_key.get(&key)) {
            (Some(owner), _) if *owner != key => Err(format!("{name} belongs to another key")),
            (_, Some(other)) if other != name => {
                Err(format!("signed by the key of {other}: one name per key"))
            }
            (Some(_), _) => Ok(()),
            (None, _) if self.by_name.len() >= MAX_BOUND => {
                Err(format!("{MAX_BOUND} names are bound already"))
            }
            (None, _) => {
                self.by_name.insert(name.clone(), key);
                self.by_key.insert(key, name.clone());
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use toycoin_common::wallet::Wallet;

    fn status(name: &str, height: u64) -> Status {
        Status {
            name: name.into(),
            tip: None,
            height: Some(height),
            hash_rate: 1.0,
            mining: true,
            threads: 1,
            wallet: None,
            signer: None,
        }
    }

    #[test]
    fn a_status_is_shown_only_under_the_name_its_key_owns() {
        let mut rng = StdRng::seed_from_u64(12);
        let (node1, student) = (
            Wallet::generate(&mut rng).unwrap(),
            Wallet::generate(&mut rng).unwrap(),
        );
        let mut names = StatusNames::default();
        let signed = |name: &str, key: &Wallet, height| {
            let mut s = status(name, height);
            s.sign(key).unwrap();
            s
        };
        assert_eq!(names.admit(&signed("node1", &node1, 3)), Ok(()));
        assert_eq!(names.admit(&signed("node1", &node1, 4)), Ok(()));
        // A student in node1's name: its own key, no key, a forged one.
        assert!(names.admit(&signed("node1", &student, 1_000_000)).is_err());
        assert!(names.admit(&status("node1", 1_000_000)).is_err());
        let mut altered = signed("node1", &node1, 4);
        altered.height = Some(1_000_000);
        assert!(names.admit(&altered).is_err(), "a rewritten claim");
        // One name per key: node1's key cannot also be node2.
        assert!(names.admit(&signed("node2", &node1, 3)).is_err());
        // A name no key owns is shown at its word.
        assert_eq!(names.admit(&status("old-node", 3)), Ok(()));
    }
}
