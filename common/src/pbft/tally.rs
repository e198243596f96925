//! What an observer of a pBFT network counts (the listener, the web view,
//! the oracle as client): per batch its phase and votes — prepares against
//! 2f, commits against 2f+1, replies against f+1 — the view and its
//! primary, and view changes under way. With the replicas file it checks
//! every signature; without, it counts what the messages claim and says so.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::hash::{Hash, Txid};

use super::wire::{parse_hash, Membership, Msg, PbftError, SignedWire, MAX_REPLICAS};
use crate::block::MAX_BLOCK_TXNS;
use crate::refused_frames::{refused_again, FrameDigest, RefusedFrames};

/// Batches remembered, newest first kept.
pub const MAX_TALLIED: usize = 64;
/// Messages remembered as counted (by their signed body), newest kept:
/// enough for the batches tallied at the largest n.
pub const MAX_COUNTED: usize = 8192;

/// One batch's votes as seen.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Votes {
    pub view: u64,
    pub digest: Option<Hash>,
    /// Transactions in the batch (from its pre-prepare).
    pub txns: usize,
    pub prepares: BTreeSet<usize>,
    pub commits: BTreeSet<usize>,
    /// Replicas that replied, by what they replied (digest and the
    /// transactions applied).
    pub replies: BTreeMap<(Hash, Vec<Txid>), BTreeSet<usize>>,
    /// The transactions f+1 replicas replied were applied, once they did.
    pub final_txns: Option<Vec<Txid>>,
}

/// What one message was, for the observer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seen {
    PrePrepare {
        from: usize,
        view: u64,
        seq: u64,
        digest: Hash,
        txns: usize,
    },
    /// A prepare or commit, and that phase's count for the batch now.
    Vote {
        from: usize,
        phase: &'static str,
        view: u64,
        seq: u64,
        count: usize,
        needed: usize,
    },
    Checkpoint {
        from: usize,
        seq: u64,
    },
    /// A replica that fell behind asks for committed batches (`batches:
    /// None`), or another sends it `batches` of them.
    Catching {
        from: usize,
        after: Option<u64>,
        batches: usize,
    },
    ViewChange {
        from: usize,
        to: u64,
        count: usize,
        needed: usize,
    },
    NewView {
        view: u64,
        primary: usize,
        batches: usize,
    },
    Reply {
        from: usize,
        seq: u64,
        count: usize,
        needed: usize,
    },
    /// f+1 matching replies: these transactions are final.
    Final {
        seq: u64,
        digest: Hash,
        txns: Vec<Txid>,
    },
}

/// An observer's tally.
#[derive(Debug)]
pub struct Tally {
    members: Option<Arc<Membership>>,
    /// Replicas, where known (from the replicas file).
    n: Option<usize>,
    batches: BTreeMap<u64, Votes>,
    view: u64,
    view_changes: BTreeMap<u64, BTreeSet<usize>>,
    /// The messages counted, by the digest of their signed body: each is
    /// counted once, and a replay is called one.
    counted: std::collections::HashSet<FrameDigest>,
    counted_order: std::collections::VecDeque<FrameDigest>,
    /// Frames refused for what their bytes fix (a forged signature, a
    /// sender who is no replica), by their digest: the same bytes again
    /// cost a hash, not a signature check (a student's forged votes sent
    /// round and round).
    refused: RefusedFrames,
    /// PBFT frames seen.
    pub frames: u64,
}

impl Tally {
    /// An observer that checks signatures with `members` (or, without,
    /// takes messages at their word).
    pub fn new(members: Option<Arc<Membership>>) -> Tally {
        Tally {
            n: members.as_ref().map(|m| m.n()),
            members,
            batches: BTreeMap::new(),
            view: 0,
            view_changes: BTreeMap::new(),
            counted: Default::default(),
            counted_order: Default::default(),
            refused: RefusedFrames::default(),
            frames: 0,
        }
    }

    /// Whether signatures are checked.
    pub fn verifies(&self) -> bool {
        self.members.is_some()
    }

    pub fn view(&self) -> u64 {
        self.view
    }

    /// The primary of the current view, where the replicas are known.
    pub fn primary(&self) -> Option<usize> {
        self.members.as_ref().map(|m| m.primary(self.view))
    }

    pub fn members(&self) -> Option<&Arc<Membership>> {
        self.members.as_ref()
    }

    /// The batches tallied, by sequence number.
    pub fn batches(&self) -> &BTreeMap<u64, Votes> {
        &self.batches
    }

    fn f(&self) -> Option<usize> {
        self.n.map(|n| (n - 1) / 3)
    }

    /// Needed counts: (2f prepares, 2f+1 commits, f+1 replies), or zeros
    /// where n is unknown.
    pub fn needed(&self) -> (usize, usize, usize) {
        self.f().map_or((0, 0, 0), |f| (2 * f, 2 * f + 1, f + 1))
    }

    fn batch(&mut self, seq: u64) -> &mut Votes {
        if !self.batches.contains_key(&seq) && self.batches.len() >= MAX_TALLIED {
            self.batches.pop_first();
        }
        self.batches.entry(seq).or_default()
    }

    /// Replicas a frame may come from: `n`, or, unchecked, whatever
    /// number a frame claims, kept to what a replicas file can hold so
    /// that no set grows past it.
    fn senders(&self) -> usize {
        self.n.unwrap_or(MAX_REPLICAS)
    }

    /// `payload`'s message and its sender, checked as far as its bytes
    /// alone allow: every refusal here is [`PbftError::is_fixed_by_bytes`].
    fn open(&self, payload: &[u8]) -> Result<(SignedWire, usize, Msg), PbftError> {
        let wire = SignedWire::decode(payload)?;
        let (from, msg) = match &self.members {
            Some(m) => m.verify(&wire)?,
            None => wire.open()?,
        };
        let n = self.senders();
        if from >= n {
            return Err(PbftError::UnknownReplica(from, n));
        }
        Ok((wire, from, msg))
    }

    /// Takes one `PBFT` payload.
    pub fn on_payload(&mut self, payload: &[u8]) -> Result<Seen, PbftError> {
        self.frames += 1;
        let frame = FrameDigest::of(payload);
        if let Some(reason) = self.refused.get(&frame) {
            return Err(PbftError::Refused(refused_again(reason)));
        }
        let (wire, from, msg) = match self.open(payload) {
            Ok(opened) => opened,
            Err(e) => {
                self.refused.remember(frame, &e.to_string());
                return Err(e);
            }
        };
        let n = self.senders();
        // The same message again, however re-signed: a replay, which the
        // replicas ignore too. Remembered once checked, so a forgery of a
        // body cannot have the real message called a replay.
        let body = FrameDigest::of(wire.body.as_bytes());
        if self.counted.contains(&body) {
            return Err(PbftError::Refused(format!(
                "a replay: this {} from replica {from} was counted already",
                msg.kind()
            )));
        }
        self.counted.insert(body);
        self.counted_order.push_back(body);
        while self.counted_order.len() > MAX_COUNTED {
            if let Some(old) = self.counted_order.pop_front() {
                self.counted.remove(&old);
            }
        }
        let (prepares, commits, weak) = self.needed();
        Ok(match msg {
            Msg::PrePrepare {
                view,
                seq,
                digest,
                batch,
            } => {
                let digest = parse_hash(&digest)?;
                // Counted, not decoded: the replicas check the batch.
                let txns = serde_json::from_str::<Vec<serde::de::IgnoredAny>>(&batch)
                    .map_or(0, |v| v.len());
                self.view = self.view.max(view);
                let votes = self.batch(seq);
                if votes.view < view || votes.digest.is_none() {
                    votes.view = view;
                    votes.digest = Some(digest);
                    votes.txns = txns;
                    votes.prepares.clear();
                    votes.commits.clear();
                }
                Seen::PrePrepare {
                    from,
                    view,
                    seq,
                    digest,
                    txns,
                }
            }
            Msg::Prepare { view, seq, digest } => {
                self.vote(from, "prepare", view, seq, &digest, prepares)?
            }
            Msg::Commit { view, seq, digest } => {
                self.vote(from, "commit", view, seq, &digest, commits)?
            }
            Msg::Checkpoint { seq, .. } => Seen::Checkpoint { from, seq },
            Msg::Fetch { after } => Seen::Catching {
                from,
                after: Some(after),
                batches: 0,
            },
            Msg::Committed { items } => Seen::Catching {
                from,
                after: None,
                batches: items.len(),
            },
            Msg::ViewChange { view, .. } => {
                let set = self.view_changes.entry(view).or_default();
                set.insert(from);
                let count = set.len();
                while self.view_changes.len() > MAX_TALLIED {
                    self.view_changes.pop_first();
                }
                Seen::ViewChange {
                    from,
                    to: view,
                    count,
                    needed: commits,
                }
            }
            Msg::NewView {
                view, pre_prepares, ..
            } => {
                self.view = self.view.max(view);
                self.view_changes.retain(|&v, _| v > view);
                Seen::NewView {
                    view,
                    primary: from,
                    batches: pre_prepares.len(),
                }
            }
            Msg::Reply {
                seq, digest, txns, ..
            } => {
                let digest = parse_hash(&digest)?;
                if txns.len() > MAX_BLOCK_TXNS {
                    return Err(PbftError::Refused(format!(
                        "a reply naming {} transactions (a batch holds {MAX_BLOCK_TXNS})",
                        txns.len()
                    )));
                }
                let txns: Vec<Txid> = txns
                    .iter()
                    .map(|t| parse_hash(t).map(Txid::from_raw_hash))
                    .collect::<Result<_, _>>()?;
                let votes = self.batch(seq);
                let key = (digest, txns.clone());
                if !votes.replies.contains_key(&key) && votes.replies.len() >= n {
                    return Err(PbftError::Refused(format!(
                        "more different replies for batch {seq} than there are replicas"
                    )));
                }
                let set = votes.replies.entry(key).or_default();
                set.insert(from);
                let count = set.len();
                if count >= weak.max(1) && votes.final_txns.is_none() {
                    votes.final_txns = Some(txns.clone());
                    Seen::Final { seq, digest, txns }
                } else {
                    Seen::Reply {
                        from,
                        seq,
                        count,
                        needed: weak,
                    }
                }
            }
        })
    }

    /// A prepare or commit: counted where it matches the batch's
    /// pre-prepare (view and digest).
    fn vote(
        &mut self,
        from: usize,
        phase: &'static str,
        view: u64,
        seq: u64,
        digest: &str,
        needed: usize,
    ) -> Result<Seen, PbftError> {
        let digest = parse_hash(digest)?;
        let votes = self.batch(seq);
        let matches = votes.view == view && votes.digest.map_or(true, |d| d == digest);
        let set = if phase == "prepare" {
            &mut votes.prepares
        } else {
            &mut votes.commits
        };
        if matches {
            set.insert(from);
        }
        Ok(Seen::Vote {
            from,
            phase,
            view,
            seq,
            count: set.len(),
            needed,
        })
    }

    /// View changes heard for views above the current one: (view, how many
    /// replicas asked for it).
    pub fn view_changes(&self) -> Vec<(u64, usize)> {
        self.view_changes
            .iter()
            .filter(|(&v, _)| v > self.view)
            .map(|(&v, s)| (v, s.len()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;
    use crate::wallet::Wallet;

    /// `n` keys from `seed`.
    fn keys(seed: u64, n: usize) -> Vec<Wallet> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..n)
            .map(|_| Wallet::generate(&mut rng).expect("key"))
            .collect()
    }

    /// A tally that checks signatures against `keys` as replicas.
    fn checking(keys: &[Wallet]) -> Tally {
        let members = Membership::new(
            keys.iter()
                .enumerate()
                .map(|(i, k)| (format!("r{i}"), k.address().clone()))
                .collect(),
        )
        .expect("members");
        Tally::new(Some(Arc::new(members)))
    }

    /// Issue 33: a replayed COMMIT or NEW-VIEW (the same frame, or the
    /// same message signed again) is called a replay, not counted again.
    #[test]
    fn a_replayed_message_is_counted_once_and_called_a_replay() {
        let keys = keys(5, 4);
        let mut tally = checking(&keys);
        let commit = Msg::Commit {
            view: 0,
            seq: 1,
            digest: Hash::of(b"batch").to_hex(),
        };
        let frame = SignedWire::sign(&keys[1], 1, commit.clone()).encode();
        assert!(matches!(
            tally.on_payload(&frame),
            Ok(Seen::Vote { count: 1, .. })
        ));
        for again in [
            frame.clone(),
            SignedWire::sign(&keys[1], 1, commit).encode(),
        ] {
            match tally.on_payload(&again) {
                Err(PbftError::Refused(why)) => assert!(why.contains("a replay"), "{why}"),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(tally.batches()[&1].commits.len(), 1);
        // Another replica's commit still counts.
        let other = SignedWire::sign(
            &keys[2],
            2,
            Msg::Commit {
                view: 0,
                seq: 1,
                digest: Hash::of(b"batch").to_hex(),
            },
        );
        assert!(matches!(
            tally.on_payload(&other.encode()),
            Ok(Seen::Vote { count: 2, .. })
        ));
    }

    /// A student's forged vote sent round and round: refused for its
    /// signature once, then known by its bytes; the replica's own vote
    /// still counts.
    #[test]
    fn a_forged_frame_sent_again_is_known_by_its_bytes() {
        // Four replicas, and a student's key.
        let keys = keys(7, 5);
        let mut tally = checking(&keys[..4]);
        let prepare = Msg::Prepare {
            view: 0,
            seq: 1,
            digest: Hash::of(b"batch").to_hex(),
        };
        let forged = SignedWire::sign(&keys[4], 1, prepare.clone()).encode();
        assert_eq!(tally.on_payload(&forged), Err(PbftError::BadSignature(1)));
        for _ in 0..3 {
            match tally.on_payload(&forged) {
                Err(PbftError::Refused(why)) => assert_eq!(
                    why,
                    "the same bytes were refused before: signature of replica 1 does not verify"
                ),
                other => panic!("{other:?}"),
            }
        }
        let genuine = SignedWire::sign(&keys[1], 1, prepare).encode();
        assert!(matches!(
            tally.on_payload(&genuine),
            Ok(Seen::Vote { count: 1, .. })
        ));
    }

    /// Unchecked frames cannot grow an observer's tally: a sender past
    /// what a replicas file holds, a reply naming more than a batch, and
    /// more different replies for one batch than replicas are refused.
    #[test]
    fn an_observer_bounds_what_unchecked_frames_make_it_keep() {
        let key = Wallet::generate(&mut StdRng::seed_from_u64(3)).expect("key");
        let mut tally = Tally::new(None);
        let reply = |from: usize, txns: usize, digest: &[u8]| {
            SignedWire::sign(
                &key,
                from,
                Msg::Reply {
                    view: 0,
                    seq: 1,
                    digest: Hash::of(digest).to_hex(),
                    txns: vec![Hash::of(b"t").to_hex(); txns],
                },
            )
            .encode()
        };
        assert_eq!(
            tally.on_payload(&reply(MAX_REPLICAS, 1, b"d")),
            Err(PbftError::UnknownReplica(MAX_REPLICAS, MAX_REPLICAS))
        );
        assert!(tally
            .on_payload(&reply(0, MAX_BLOCK_TXNS + 1, b"d"))
            .is_err());
        for i in 0..MAX_REPLICAS {
            tally
                .on_payload(&reply(1, 1, &i.to_be_bytes()))
                .expect("a reply");
        }
        assert!(tally.on_payload(&reply(1, 1, b"one more")).is_err());
        assert_eq!(tally.batches()[&1].replies.len(), MAX_REPLICAS);
    }
}
