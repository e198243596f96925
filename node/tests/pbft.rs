//! pBFT nodes against an in-process relay on 127.0.0.1, the oracle as the
//! client: with up to f faulty replicas of any mode every payment becomes
//! final and the honest replicas execute the same batches in the same
//! order; with f+1 silent nothing commits.

// In tests a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use tokio::sync::broadcast;
use tokio::time::Instant;
use toycoin_common::pbft::{Membership, PbftEvent};
use toycoin_common::wallet::Wallet;
use toycoin_node::{spawn, Event, Fault, NodeConfig, NodeHandle, PbftConfig, Snapshot};
use toycoin_oracle::OracleConfig;
use toycoin_relay::local::LocalRelay;
use toycoin_tests::keys::{kept_key, mint_key, oracle_keys};

const WAIT: Duration = Duration::from_secs(60);

/// Replica keys, made once and kept (`toycoin_tests::keys`).
static KEYS: LazyLock<Vec<Wallet>> =
    LazyLock::new(|| (0..7).map(|i| kept_key(&format!("replica-{i}"))).collect());

struct Net {
    relay: LocalRelay,
    nodes: Vec<(NodeHandle, broadcast::Receiver<Event>)>,
    members: Arc<Membership>,
    faulty: Vec<usize>,
}

impl Net {
    /// n replicas; `faults[i]` is replica i's fault.
    async fn start(n: usize, faults: &[(usize, Fault)]) -> Net {
        let relay = toycoin_relay::local::spawn_quiet().await.unwrap();
        Net::on(relay, n, faults).await
    }

    /// As [`Net::start`], on a relay already running.
    async fn on(relay: LocalRelay, n: usize, faults: &[(usize, Fault)]) -> Net {
        let members = Arc::new(
            Membership::new(
                (0..n)
                    .map(|i| (format!("node{}", i + 1), KEYS[i].address().clone()))
                    .collect(),
            )
            .unwrap(),
        );
        let mut nodes = Vec::new();
        for i in 0..n {
            let mut config =
                NodeConfig::new(relay.addr.to_string(), toycoin_tests::keys::steady(5.0));
            config.name = members.name(i);
            config.backoff = Duration::from_millis(50);
            config.fault = faults.iter().find(|(r, _)| *r == i).map(|(_, f)| *f);
            config.pbft = Some(PbftConfig {
                members: members.clone(),
                wallet: KEYS[i].clone(),
                view_timeout: Duration::from_millis(500),
            });
            let (handle, events) = spawn(config);
            let mut log = events.resubscribe();
            let name = members.name(i);
            tokio::spawn(async move {
                while let Ok(event) = log.recv().await {
                    println!("[{name}] {event}");
                }
            });
            nodes.push((handle, events));
        }
        for (_, events) in &mut nodes {
            wait_for(events, "connection", |e| {
                matches!(e, Event::Connected { .. })
            })
            .await;
        }
        Net {
            relay,
            nodes,
            members,
            faulty: faults.iter().map(|(r, _)| *r).collect(),
        }
    }

    /// The oracle sends `count` payments; its exit code. Its keys are
    /// kept ones, the mint's too: a second oracle on the same network is
    /// the same mint, as it must be.
    async fn oracle(&self, count: u64, timeout: f64) -> i32 {
        let mut oracle = OracleConfig::new(
            self.relay.addr.to_string(),
            toycoin_tests::keys::steady(5.0),
        );
        oracle.count = Some(count);
        oracle.min_interval = 0.1;
        oracle.max_interval = 0.3;
        oracle.confirm_timeout = timeout;
        oracle.pbft = Some(self.members.clone());
        oracle.wallet_keys = Some(oracle_keys().to_path_buf());
        oracle.mint_key = Some(mint_key());
        tokio::time::timeout(WAIT * 2, toycoin_oracle::run(oracle))
            .await
            .expect("the oracle ends")
    }

    async fn snapshots(&self) -> Vec<(usize, Snapshot)> {
        let mut out = Vec::new();
        for (i, (handle, _)) in self.nodes.iter().enumerate() {
            if !self.faulty.contains(&i) {
                out.push((i, handle.snapshot().await.unwrap()));
            }
        }
        out
    }

    /// Safety: the honest replicas executed the same batches in the same
    /// order (each a prefix of the longest), numbered 1, 2, ...; returns
    /// the longest.
    async fn agreed(&self) -> usize {
        let snaps = self.snapshots().await;
        let longest = snaps
            .iter()
            .map(|(_, s)| s.executed.clone())
            .max_by_key(Vec::len)
            .unwrap_or_default();
        for (i, s) in &snaps {
            assert_eq!(
                s.executed[..],
                longest[..s.executed.len()],
                "replica {i} executed other batches"
            );
            for (k, (seq, _)) in s.executed.iter().enumerate() {
                assert_eq!(*seq, k as u64 + 1, "replica {i} out of order");
            }
        }
        longest.len()
    }

    /// Waits until every honest replica has executed as much as the one
    /// furthest on, and checks they hold the same balances.
    async fn settle(&self) {
        let deadline = Instant::now() + WAIT;
        loop {
            let longest = self.agreed().await;
            let snaps = self.snapshots().await;
            if snaps.iter().all(|(_, s)| s.executed.len() == longest) {
                for (i, s) in &snaps {
                    assert_eq!(s.balances, snaps[0].1.balances, "replica {i}'s balances");
                }
                return;
            }
            assert!(
                Instant::now() < deadline,
                "honest replicas did not catch up"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn stop(self) {
        for (handle, _) in self.nodes {
            handle.stop().await;
        }
        tokio::time::timeout(WAIT, self.relay.stop())
            .await
            .unwrap()
            .unwrap();
    }
}

async fn wait_for(
    events: &mut broadcast::Receiver<Event>,
    what: &str,
    pred: impl Fn(&Event) -> bool,
) -> Event {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, events.recv()).await {
            Err(_) => panic!("no {what} within {WAIT:?}"),
            Ok(Ok(event)) if pred(&event) => return event,
            Ok(Ok(_)) | Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(e)) => panic!("events ended waiting for {what}: {e}"),
        }
    }
}

/// Four replicas, the primary of view 0 playing `fault`: every payment
/// becomes final, the honest agree, nothing is left pending.
async fn four_replicas_finalize_every_payment_beside_a_primary(fault: Option<Fault>) {
    let faults: Vec<(usize, Fault)> = fault.map(|f| (0, f)).into_iter().collect();
    let mut net = Net::start(4, &faults).await;
    assert_eq!(
        net.oracle(6, 60.0).await,
        0,
        "payments final beside {fault:?}"
    );
    net.settle().await;
    assert!(net.agreed().await >= 1);
    if fault.is_some() {
        // The faulty primary of view 0 was replaced.
        let (_, events) = &mut net.nodes[1];
        wait_for(events, "a view change", |e| {
            matches!(e, Event::Pbft(PbftEvent::NewView { .. }))
        })
        .await;
    }
    let snaps = net.snapshots().await;
    assert!(
        snaps.iter().all(|(_, s)| s.pending.is_empty()),
        "nothing left pending"
    );
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_replicas_finalize_every_payment_beside_an_honest_primary() {
    four_replicas_finalize_every_payment_beside_a_primary(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_replicas_finalize_every_payment_beside_a_silent_primary() {
    four_replicas_finalize_every_payment_beside_a_primary(Some(Fault::Silent)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_replicas_finalize_every_payment_beside_a_stuck_primary() {
    four_replicas_finalize_every_payment_beside_a_primary(Some(Fault::Stuck)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_replicas_finalize_every_payment_beside_an_invalid_primary() {
    four_replicas_finalize_every_payment_beside_a_primary(Some(Fault::Invalid)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_replicas_finalize_every_payment_beside_a_lying_primary() {
    four_replicas_finalize_every_payment_beside_a_primary(Some(Fault::Liar)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seven_replicas_finalize_beside_a_silent_primary_and_a_lying_backup() {
    // f = 2: a silent primary and a lying backup.
    let net = Net::start(7, &[(0, Fault::Silent), (3, Fault::Liar)]).await;
    assert_eq!(net.oracle(4, 60.0).await, 0);
    net.settle().await;
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seven_replicas_finalize_beside_two_stuck_or_two_invalid_the_primary_among_them() {
    for fault in [Fault::Stuck, Fault::Invalid] {
        let net = Net::start(7, &[(0, fault), (4, fault)]).await;
        assert_eq!(net.oracle(3, 60.0).await, 0, "beside two {fault} replicas");
        net.settle().await;
        net.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seven_replicas_stop_safely_with_three_silent() {
    // f + 1 = 3 silent: no 2f+1 = 5 to commit anything, or to start a new
    // view; the others keep asking for view 1 and say why nothing comes.
    let mut net = Net::start(
        7,
        &[(4, Fault::Silent), (5, Fault::Silent), (6, Fault::Silent)],
    )
    .await;
    assert_eq!(net.oracle(2, 4.0).await, 1, "no payment can be final");
    assert_eq!(net.agreed().await, 0);
    let (_, events) = &mut net.nodes[0];
    wait_for(events, "a view change asked again that says why", |e| {
        matches!(e, Event::Pbft(PbftEvent::ViewChanging { to: 1, why }) if why.starts_with("asks again: 4 of the 5"))
    })
    .await;
    net.stop().await;
}

/// A replica cut off by the teacher's partition goes its own way (it asks
/// for view changes nobody joins) while the other three commit; once
/// healed it fetches what they committed, rejoins their view and ends
/// with the same batches and balances.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_replica_catches_up_after_healing() {
    use toycoin_common::control::{command, Command};

    const TOKEN: &str = "pbft-partition-token";
    let relay = toycoin_relay::local::spawn_with_teacher(TOKEN)
        .await
        .unwrap();
    let mut net = Net::on(relay, 4, &[]).await;
    let ctl = |cmd: Command| {
        let addr = net.relay.addr;
        async move {
            let deadline = Instant::now() + WAIT;
            loop {
                let reply = command(addr, TOKEN, cmd.clone()).await.unwrap();
                if reply.ok && !reply.message.contains("not connected now") {
                    return;
                }
                assert!(Instant::now() < deadline, "{reply:?}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    ctl(Command::Partition {
        groups: vec![
            vec!["node4".into()],
            vec!["node1".into(), "node2".into(), "node3".into()],
        ],
    })
    .await;
    // 20 payments and the grants: past node4's window of 16 batches.
    assert_eq!(net.oracle(20, 60.0).await, 0);
    let ahead = net.agreed().await;
    assert!(ahead >= 17, "{ahead} batches");
    ctl(Command::Heal).await;
    // Node4 is back among the honest: it catches up.
    net.faulty.clear();
    assert_eq!(net.oracle(2, 60.0).await, 0, "payments after healing");
    net.settle().await;
    let (_, events) = &mut net.nodes[3];
    wait_for(events, "node4 fetching", |e| {
        matches!(e, Event::Pbft(PbftEvent::Behind { .. }))
            || matches!(e, Event::PbftExecuted { seq: 1, .. })
    })
    .await;
    net.stop().await;
}
