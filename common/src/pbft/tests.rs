//! The protocol on an in-memory network: every message delivered at once
//! (or dropped, for a silent replica), time moved by hand.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::time::Instant;

use super::*;
use crate::hash::Hash;
use crate::profile::Signing;
use crate::transaction::Transaction;
use crate::wallet::Wallet;

/// Keys for up to 7 replicas and a mint, made once.
static KEYS: LazyLock<Vec<Wallet>> = LazyLock::new(|| {
    let mut rng = StdRng::seed_from_u64(7);
    (0..8)
        .map(|_| Wallet::generate(&mut rng).expect("key"))
        .collect()
});

fn grants(values: std::ops::Range<i64>) -> Vec<Transaction> {
    let mint = &KEYS[7];
    let mut rng = StdRng::seed_from_u64(values.start as u64);
    values
        .map(|v| mint.grant(&mut rng, KEYS[0].address(), v).expect("grant"))
        .collect()
}

struct Net {
    replicas: Vec<Replica>,
    silent: HashSet<usize>,
    /// Replicas cut off: they neither hear nor are heard.
    cut: HashSet<usize>,
    /// What each replica executed: (sequence, digest).
    executed: Vec<Vec<(u64, Hash)>>,
    events: Vec<Vec<PbftEvent>>,
    now: Instant,
    delivered: u64,
}

impl Net {
    fn new(n: usize) -> Net {
        let members = Arc::new(
            Membership::new(
                (0..n)
                    .map(|i| (format!("node{}", i + 1), KEYS[i].address().clone()))
                    .collect(),
            )
            .expect("members"),
        );
        let replicas = (0..n)
            .map(|i| {
                Replica::new(members.clone(), i, KEYS[i].clone(), Signing::Amounts)
                    .expect("replica")
            })
            .collect();
        Net {
            replicas,
            silent: HashSet::new(),
            cut: HashSet::new(),
            executed: vec![Vec::new(); n],
            events: vec![Vec::new(); n],
            now: Instant::now(),
            delivered: 0,
        }
    }

    fn honest(&self) -> Vec<usize> {
        (0..self.replicas.len())
            .filter(|i| !self.silent.contains(i) && !self.cut.contains(i))
            .collect()
    }

    /// Delivers until nothing is left to send.
    fn pump(&mut self) {
        let mut queue = VecDeque::new();
        loop {
            for (i, r) in self.replicas.iter_mut().enumerate() {
                while let Some(out) = r.take_outgoing() {
                    if !self.silent.contains(&i) && !self.cut.contains(&i) {
                        queue.push_back((i, out));
                    }
                }
                while let Some(e) = r.take_event() {
                    if let PbftEvent::Execute { seq, digest, .. } = &e {
                        self.executed[i].push((*seq, *digest));
                    }
                    self.events[i].push(e);
                }
            }
            let Some((from, out)) = queue.pop_front() else {
                return;
            };
            for (j, r) in self.replicas.iter_mut().enumerate() {
                if j != from && !self.cut.contains(&j) && out.to.map_or(true, |to| to == j) {
                    self.delivered += 1;
                    let _ = r.on_payload(&out.payload, self.now);
                }
            }
        }
    }

    /// Every replica waits for requests (they heard the transactions).
    fn waiting(&mut self, waiting: bool) {
        for r in &mut self.replicas {
            r.set_waiting(waiting, self.now);
        }
    }

    /// The current primary orders `txns`.
    fn propose(&mut self, txns: Vec<Transaction>) -> bool {
        let now = self.now;
        let proposed = self
            .replicas
            .iter_mut()
            .find(|r| r.is_primary() && !r.changing_view() && r.can_propose())
            .is_some_and(|r| r.propose(txns, now));
        self.pump();
        proposed
    }

    /// Time passes: every due timer fires.
    fn wait(&mut self, secs: u64) {
        self.now += Duration::from_secs(secs);
        for r in &mut self.replicas {
            r.on_timer(self.now);
        }
        self.pump();
    }

    /// Honest replicas executed the same batches in the same order
    /// (a prefix of each other's), and how many the longest did.
    fn agree(&self) -> usize {
        let honest = self.honest();
        let longest = honest
            .iter()
            .map(|&i| &self.executed[i])
            .max_by_key(|e| e.len())
            .cloned()
            .unwrap_or_default();
        for &i in &honest {
            let mine = &self.executed[i];
            assert_eq!(
                mine[..],
                longest[..mine.len()],
                "replica {i} executed other batches"
            );
            for (k, (seq, _)) in mine.iter().enumerate() {
                assert_eq!(*seq, k as u64 + 1, "replica {i} executed out of order");
            }
        }
        longest.len()
    }
}

#[test]
fn four_replicas_execute_the_same_batches_in_order() {
    let mut net = Net::new(4);
    net.waiting(true);
    for k in 0..3 {
        assert!(net.propose(grants(10 * k + 1..10 * k + 4)));
    }
    assert_eq!(net.agree(), 3);
    for i in 0..4 {
        assert_eq!(net.executed[i].len(), 3, "replica {i}");
    }
    // Per batch: 1 pre-prepare, 3 prepares, 4 commits sent.
    let sent: u64 = net
        .replicas
        .iter()
        .map(|r| r.stats().sent.values().sum::<u64>())
        .sum();
    assert_eq!(sent, 3 * (1 + 3 + 4));
}

#[test]
fn checkpoints_become_stable_and_keep_the_log_bounded() {
    let mut net = Net::new(4);
    net.waiting(true);
    for k in 0..(3 * CHECKPOINT_INTERVAL as i64 + 2) {
        assert!(net.propose(grants(k + 1..k + 2)), "batch {k}");
    }
    assert_eq!(net.agree(), 3 * CHECKPOINT_INTERVAL as usize + 2);
    for r in &net.replicas {
        assert_eq!(r.stable(), 3 * CHECKPOINT_INTERVAL);
        assert!(r.log_len() <= 3, "log of {} entries", r.log_len());
    }
}

#[test]
fn a_silent_primary_is_replaced_and_the_next_one_goes_on() {
    let mut net = Net::new(4);
    net.waiting(true);
    assert!(net.propose(grants(1..3)));
    net.silent.insert(0);
    // The silent primary's batch goes nowhere.
    assert!(net.propose(grants(3..5)));
    assert_eq!(net.agree(), 1);
    net.wait(3);
    for i in 1..4 {
        assert_eq!(net.replicas[i].view(), 1, "replica {i}");
        assert!(!net.replicas[i].changing_view());
        assert!(net.events[i].iter().any(|e| matches!(
            e,
            PbftEvent::NewView {
                view: 1,
                primary: 1,
                ..
            }
        )));
    }
    assert!(net.propose(grants(5..7)));
    assert_eq!(net.agree(), 2);
}

#[test]
fn a_batch_prepared_before_a_view_change_keeps_its_number() {
    let mut net = Net::new(4);
    net.waiting(true);
    // Commits are lost: every replica prepares batch 1, none commits.
    let batch = grants(1..3);
    let now = net.now;
    assert!(net.replicas[0].propose(batch, now));
    let mut queue: VecDeque<(usize, Outgoing)> = VecDeque::new();
    loop {
        for (i, r) in net.replicas.iter_mut().enumerate() {
            while let Some(out) = r.take_outgoing() {
                queue.push_back((i, out));
            }
        }
        let Some((from, out)) = queue.pop_front() else {
            break;
        };
        let wire = SignedWire::decode(&out.payload).expect("ours");
        if matches!(wire.open().expect("ours").1, Msg::Commit { .. }) {
            continue;
        }
        for (j, r) in net.replicas.iter_mut().enumerate() {
            if j != from {
                let _ = r.on_payload(&out.payload, now);
            }
        }
    }
    net.pump();
    assert_eq!(net.agree(), 0);
    let prepared_digest = net.events[1]
        .iter()
        .find_map(|e| match e {
            PbftEvent::Prepared { seq: 1, digest, .. } => Some(*digest),
            _ => None,
        })
        .expect("prepared");
    net.silent.insert(0);
    net.wait(3);
    assert_eq!(net.agree(), 1);
    for i in 1..4 {
        assert_eq!(net.executed[i], vec![(1, prepared_digest)], "replica {i}");
        assert!(net.events[i]
            .iter()
            .any(|e| matches!(e, PbftEvent::NewView { carried: 1, .. })));
    }
}

#[test]
fn an_equivocating_primary_gets_no_conflicting_commits_and_is_replaced() {
    let mut net = Net::new(4);
    net.replicas[0].set_misbehave(Misbehave::Equivocate);
    net.waiting(true);
    assert!(net.propose(grants(1..4)));
    // Two backups got one batch and one the other: no 2f matching
    // prepares anywhere, nothing executes.
    assert_eq!(net.agree(), 0);
    net.silent.insert(0);
    net.wait(3);
    assert!(net.propose(grants(4..6)));
    assert!(net.agree() >= 1);
    for i in 1..4 {
        assert_eq!(net.replicas[i].view(), 1);
    }
}

#[test]
fn seven_replicas_go_on_with_two_silent_and_stop_with_three() {
    let mut net = Net::new(7);
    net.silent.extend([5, 6]);
    net.waiting(true);
    assert!(net.propose(grants(1..3)));
    assert!(net.propose(grants(3..5)));
    assert_eq!(net.agree(), 2);

    let mut net = Net::new(7);
    net.silent.extend([4, 5, 6]);
    net.waiting(true);
    assert!(net.propose(grants(1..3)));
    assert_eq!(net.agree(), 0);
    // The four ask for view 1, again and again; without 2f+1 = 5 of them
    // no view starts, none moves on to later views, none commits.
    for _ in 0..6 {
        net.wait(120);
        let _ = net.propose(grants(3..5));
    }
    assert_eq!(net.agree(), 0);
    for i in 0..4 {
        assert_eq!(net.replicas[i].view(), 1, "replica {i}");
        assert!(net.replicas[i].changing_view(), "replica {i}");
        assert!(
            net.events[i].iter().any(|e| matches!(
                e,
                PbftEvent::ViewChanging { to: 1, why } if why.starts_with("asks again: 4 of the 5")
            )),
            "replica {i}: {:?}",
            net.events[i]
        );
    }
}

#[test]
fn seven_replicas_replace_a_silent_primary_and_a_lying_one() {
    let mut net = Net::new(7);
    net.replicas[1].set_misbehave(Misbehave::Equivocate);
    net.silent.insert(0);
    net.waiting(true);
    // View 0: silent primary. View 1: replica 1 equivocates (and lies as
    // a backup); view 2: replica 2 orders.
    net.wait(3);
    let _ = net.propose(grants(1..3));
    net.silent.insert(1);
    net.wait(10);
    net.wait(10);
    assert!(
        net.propose(grants(3..5)),
        "views: {:?}",
        net.replicas.iter().map(Replica::view).collect::<Vec<_>>()
    );
    assert!(net.agree() >= 1);
}

#[test]
fn a_forged_or_broken_message_is_refused_before_it_counts() {
    let mut net = Net::new(4);
    // Replica 3 signs as replica 1.
    let forged = SignedWire::sign(
        &KEYS[3],
        1,
        Msg::Prepare {
            view: 0,
            seq: 1,
            digest: Hash::of(b"x").to_hex(),
        },
    );
    let err = net.replicas[0]
        .on_payload(&forged.encode(), net.now)
        .expect_err("forged");
    assert_eq!(err, PbftError::BadSignature(1));
    // A replica whose signatures are broken cannot order anything.
    net.replicas[0].set_misbehave(Misbehave::BadSignatures);
    net.waiting(true);
    assert!(net.propose(grants(1..2)));
    assert_eq!(net.agree(), 0);
    assert!(net.events[1].iter().any(|e| matches!(
        e,
        PbftEvent::Refused { from: Some(0), reason } if reason.contains("signature")
    )));
    net.wait(3);
    assert!(net.propose(grants(2..3)));
    assert_eq!(net.agree(), 1);
}

#[test]
fn replicas_file_round_trips_and_checks_fingerprints() {
    let members = Membership::new(
        (0..4)
            .map(|i| (format!("node{}", i + 1), KEYS[i].address().clone()))
            .collect(),
    )
    .expect("members");
    assert_eq!((members.n(), members.f(), members.quorum()), (4, 1, 3));
    let text = members.to_text();
    let back = Membership::parse(&text).expect("parse");
    assert_eq!(back.index_of(KEYS[2].address()), Some(2));
    let tampered = text.replacen(
        &crate::wallet::fingerprint(KEYS[0].address()),
        "00000000",
        1,
    );
    assert!(Membership::parse(&tampered)
        .expect_err("tampered")
        .contains("fingerprint"));
}

/// A replica cut off while the others commit 20 batches (past its window
/// of 16, over two checkpoints) fetches them with their proofs once back,
/// executes the same ones in order, and takes part again.
#[test]
fn a_replica_that_fell_behind_fetches_what_the_others_committed() {
    let mut net = Net::new(4);
    net.waiting(true);
    net.cut.insert(3);
    for k in 0..20 {
        assert!(net.propose(grants(k + 1..k + 2)), "batch {k}");
    }
    assert_eq!(net.executed[3].len(), 0);
    assert_eq!(net.agree(), 20);
    net.cut.clear();
    // Back: the next batch's votes are past its window; it asks, is
    // answered 16 batches at a time (each fetch at most every 0.5 s).
    for k in 20..24 {
        assert!(net.propose(grants(k + 1..k + 2)));
        net.wait(1);
    }
    net.wait(1);
    net.wait(1);
    assert_eq!(net.agree(), 24);
    assert_eq!(net.executed[3].len(), 24, "the fetched batches, in order");
    assert!(net.events[3]
        .iter()
        .any(|e| matches!(e, PbftEvent::Stable { seq: 24 })));
    // And it votes again: a batch now commits with it among the 2f+1.
    assert!(net.propose(grants(30..31)));
    assert_eq!(net.executed[3].len(), 25);
    assert!(
        net.replicas[3].log_len() <= 6,
        "log of {}",
        net.replicas[3].log_len()
    );
}

/// A fetch answered with a batch that lacks its 2f+1 commits, or whose
/// pre-prepare is not the primary's, is refused: nothing executes.
#[test]
fn a_forged_answer_to_a_fetch_is_refused() {
    use super::wire::CommittedWire;
    let mut net = Net::new(4);
    let now = net.now;
    // Replica 3 hears a signed commit far past its window: it wants to
    // fetch.
    let ahead = SignedWire::sign(
        &KEYS[1],
        1,
        Msg::Commit {
            view: 0,
            seq: 40,
            digest: Hash::of(b"x").to_hex(),
        },
    );
    net.replicas[3]
        .on_payload(&ahead.encode(), now)
        .expect("taken");
    let batch = Batch::new(grants(1..2));
    let pre_prepare = |key: usize| {
        SignedWire::sign(
            &KEYS[key],
            key,
            Msg::PrePrepare {
                view: 0,
                seq: 1,
                digest: batch.digest.to_hex(),
                batch: batch.json.clone(),
            },
        )
    };
    let commit = |key: usize| {
        SignedWire::sign(
            &KEYS[key],
            key,
            Msg::Commit {
                view: 0,
                seq: 1,
                digest: batch.digest.to_hex(),
            },
        )
    };
    let answer = |item: CommittedWire| {
        SignedWire::sign(&KEYS[2], 2, Msg::Committed { items: vec![item] }).encode()
    };
    let too_few = answer(CommittedWire {
        pre_prepare: pre_prepare(0),
        commits: vec![commit(0), commit(1), commit(1)],
    });
    let err = net.replicas[3]
        .on_payload(&too_few, now)
        .expect_err("too few");
    assert!(
        err.to_string()
            .contains("2 matching commits of the 3 needed"),
        "{err}"
    );
    let not_primary = answer(CommittedWire {
        pre_prepare: pre_prepare(2),
        commits: vec![commit(0), commit(1), commit(2)],
    });
    let err = net.replicas[3]
        .on_payload(&not_primary, now)
        .expect_err("not the primary");
    assert!(
        err.to_string().contains("not its view's primary's"),
        "{err}"
    );
    assert_eq!(net.replicas[3].last_executed(), 0);
    // The real thing executes, even with a forged commit past the n
    // checked ("replica 1" signed with replica 0's key)...
    let forged = SignedWire::sign(
        &KEYS[0],
        1,
        Msg::Commit {
            view: 0,
            seq: 1,
            digest: batch.digest.to_hex(),
        },
    );
    let good = answer(CommittedWire {
        pre_prepare: pre_prepare(0),
        commits: vec![commit(0), commit(1), commit(2), commit(3), forged],
    });
    net.replicas[3].on_payload(&good, now).expect("proved");
    assert_eq!(net.replicas[3].last_executed(), 1);
    // ...which it keeps no part of: what it serves a replica that asks
    // holds only commits whose signatures verify.
    while net.replicas[3].take_outgoing().is_some() {}
    let fetch = SignedWire::sign(&KEYS[0], 0, Msg::Fetch { after: 0 });
    net.replicas[3]
        .on_payload(&fetch.encode(), now)
        .expect("taken");
    let members = Membership::new(
        (0..4)
            .map(|i| (format!("node{}", i + 1), KEYS[i].address().clone()))
            .collect(),
    )
    .expect("members");
    let served = std::iter::from_fn(|| net.replicas[3].take_outgoing())
        .find_map(
            |o| match members.verify(&SignedWire::decode(&o.payload).ok()?) {
                Ok((_, Msg::Committed { items })) => Some(items),
                _ => None,
            },
        )
        .expect("an answer to the fetch");
    let commits = &served[0].commits;
    assert_eq!(commits.len(), 4, "one commit a replica");
    for c in commits {
        members.verify(c).expect("a served commit verifies");
    }
}

/// A backup whose timer runs out alone (a busy laptop, a lost message)
/// does not race ahead through views on its own: as in the paper
/// (section 4.5.2), it waits for 2f+1 view changes for its view before its
/// timer may move it to the next, and says its view change again
/// meanwhile. When the primary then falls silent, the others' view change
/// meets its one and the new view starts within about one timeout; a lone
/// replica that had climbed views with doubling timeouts kept the others
/// waiting for a minute.
#[test]
fn a_replica_that_timed_out_alone_does_not_race_ahead() {
    let mut net = Net::new(4);
    net.waiting(true);
    net.cut.insert(3);
    // A minute of batches without replica 3: its timer runs out again
    // and again.
    for k in 0..60 {
        assert!(net.propose(grants(k + 1..k + 2)), "batch {k}");
        net.wait(1);
    }
    assert_eq!(net.agree(), 60);
    assert!(net.replicas[3].changing_view());
    assert_eq!(net.replicas[3].view(), 1, "it waits at the first view");
    // Back, and the primary falls silent.
    net.cut.clear();
    net.silent.insert(0);
    assert!(
        net.propose(grants(61..62)),
        "the silent primary's batch goes nowhere"
    );
    net.waiting(true);
    let began = net.now;
    let mut started = None;
    for _ in 0..30 {
        net.wait(1);
        let views: Vec<u64> = (1..4)
            .filter(|&i| !net.replicas[i].changing_view())
            .map(|i| net.replicas[i].view())
            .filter(|&v| v > 0)
            .collect();
        if views.len() >= 3 {
            started = Some(net.now - began);
            break;
        }
    }
    let started = started.expect("a new view within 30 s");
    assert!(started <= VIEW_TIMEOUT * 3, "the new view took {started:?}");
    // It fetches the batches it missed (16 an answer, an answer each
    // 0.5 s), then votes again: the next batch commits with it.
    for _ in 0..4 {
        net.wait(1);
    }
    assert_eq!(net.executed[3].len(), 60);
    assert!(net.propose(grants(100..101)));
    assert_eq!(net.agree(), 61);
}
