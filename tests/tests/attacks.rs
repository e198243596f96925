//! Each scenario against a real network in-process (a relay and two nodes
//! on 127.0.0.1, the nodes named as in the demo), to its verdict.

// In tests a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use toycoin_attack::{Attacker, Options, Scenario, Verdict};
use toycoin_common::profile::{Profile, ProfileKind};
use toycoin_node::{spawn, NodeConfig, NodeHandle};
use toycoin_oracle::OracleConfig;
use toycoin_relay::local::LocalRelay;
use toycoin_tests::keys;

const TOKEN: &str = "attack-test-token";
/// A one-second target: blocks come fast, so verdicts do too.
const TARGET: f64 = 1.0;
/// Each steady node's hash rate: a block of the first bits (2^18 hashes)
/// in under half a second between the two, in under a second in each half
/// of a partition; the difficulty settles near 19 bits.
const STEADY_HASH_RATE: f64 = 300_000.0;
/// Each of the two nodes' hash rate for a block of the first bits (2^18
/// hashes) every target interval between them.
const FIRST_BITS_AT_TARGET: f64 = (1u64 << 17) as f64 / TARGET;

struct Network {
    relay: LocalRelay,
    nodes: Vec<NodeHandle>,
    profile: Profile,
}

impl Network {
    async fn start(profile: Profile) -> Network {
        Network::start_at(profile, STEADY_HASH_RATE).await
    }

    /// As [`Network::start`], steady nodes mining at `rate` each.
    async fn start_at(profile: Profile, rate: f64) -> Network {
        let relay = toycoin_relay::local::spawn_with_teacher(TOKEN)
            .await
            .unwrap();
        let nodes = (1..=2)
            .map(|i| {
                let mut c = NodeConfig::new(relay.addr.to_string(), profile);
                c.name = format!("node{i}");
                c.backoff = Duration::from_millis(50);
                c.max_wait = Duration::from_secs(1);
                // Steady blocks come at the target whatever the hash
                // rate; the processor is left to the tests beside this
                // one (toycoin's fixed difficulty needs full speed).
                if profile.kind == ProfileKind::Steady {
                    c.max_hash_rate = Some(rate);
                }
                let (handle, _events) = spawn(c);
                handle
            })
            .collect();
        Network {
            relay,
            nodes,
            profile,
        }
    }

    async fn attack(&self, scenario: Scenario, tweak: impl FnOnce(&mut Options)) -> Verdict {
        let attacker = self.join(tweak).await;
        Network::run(attacker, scenario).await
    }

    /// The attacker on the network, listening, its scenario not begun.
    async fn join(&self, tweak: impl FnOnce(&mut Options)) -> Attacker {
        let mut options = Options::new(self.relay.addr.to_string(), self.profile);
        options.token = Some(TOKEN.into());
        options.target = self.profile.target_ms as f64 / 1000.0;
        options.patience = Duration::from_secs(60);
        // Catching up on 127.0.0.1 takes milliseconds; double-spend
        // still hears the nodes' status before it cuts the network.
        options.listen_first = Duration::from_millis(500);
        tweak(&mut options);
        Attacker::join(options, false).await.unwrap()
    }

    async fn run(mut attacker: Attacker, scenario: Scenario) -> Verdict {
        let verdict = attacker.run(scenario).await;
        // What it said appears when a test fails.
        for line in &attacker.said {
            println!("{line}");
        }
        verdict
    }

    /// Checks that `verdict` held and says `says`, then stops.
    async fn held_saying(self, verdict: Verdict, says: &str) {
        assert!(verdict.held, "{verdict:?}");
        assert!(verdict.line.contains(says), "{verdict:?}");
        self.stop().await;
    }

    /// The teacher's oracle, paying every 0.2-0.5 s.
    fn oracle(&self) -> tokio::task::JoinHandle<i32> {
        let mut oracle = OracleConfig::new(self.relay.addr.to_string(), self.profile);
        oracle.wallet_keys = Some(keys::oracle_keys().to_path_buf());
        oracle.mint_key = Some(keys::mint_key());
        oracle.min_interval = 0.2;
        oracle.max_interval = 0.5;
        tokio::spawn(toycoin_oracle::run(oracle))
    }

    async fn stop(self) {
        for n in self.nodes {
            n.stop().await;
        }
        tokio::time::timeout(Duration::from_secs(30), self.relay.stop())
            .await
            .unwrap()
            .unwrap();
    }
}

fn steady() -> Profile {
    toycoin_tests::keys::steady(TARGET)
}

fn toycoin() -> Profile {
    Profile::toycoin()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mint_is_refused_in_steady() {
    let net = Network::start(steady()).await;
    let verdict = net.attack(Scenario::Mint, |_| {}).await;
    net.held_saying(verdict, "refused (rule Minting)").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mint_is_shown_as_the_originals_flaw_in_toycoin() {
    let net = Network::start(toycoin()).await;
    let verdict = net.attack(Scenario::Mint, |_| {}).await;
    net.held_saying(verdict, "the original's flaw").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_payment_is_refused_for_its_size_in_steady() {
    let net = Network::start(steady()).await;
    let verdict = net.attack(Scenario::Oversized, |_| {}).await;
    net.held_saying(verdict, "is larger than the 32768 allowed")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_and_an_invalid_block_are_refused_and_the_network_mines_on() {
    let net = Network::start(steady()).await;
    let verdict = net.attack(Scenario::ReplayInvalid, |o| o.count = 50).await;
    net.held_saying(verdict, "kept mining").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_and_an_invalid_block_are_refused_in_toycoin_too() {
    // Under toycoin nodes mine only what waits: an oracle keeps them busy.
    // It starts once the attacker listens, so the blocks the attacker
    // waits for are the first few, the cheap ones (from height 4 a block
    // needs 16 million hashes).
    let net = Network::start(toycoin()).await;
    let attacker = net
        .join(|o| {
            o.count = 50;
            o.patience = Duration::from_secs(20);
        })
        .await;
    let oracle = net.oracle();
    let verdict = Network::run(attacker, Scenario::ReplayInvalid).await;
    oracle.abort();
    assert!(verdict.held, "{verdict:?}");
    net.stop().await;
}

async fn a_flood_of_forgeries_does_not_stop_the_network(profile: Profile) {
    let net = Network::start(profile).await;
    let verdict = net.attack(Scenario::Flood, |o| o.count = 500).await;
    net.held_saying(verdict, "carried on").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_forgeries_does_not_stop_a_steady_network() {
    a_flood_of_forgeries_does_not_stop_the_network(steady()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_forgeries_does_not_stop_a_toycoin_network() {
    a_flood_of_forgeries_does_not_stop_the_network(toycoin()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_fork_is_settled_by_work() {
    let net = Network::start(steady()).await;
    let verdict = net
        .attack(Scenario::PrivateFork, |o| {
            o.secret_secs = 3.0;
            o.secret_blocks = 4;
        })
        .await;
    assert!(verdict.held, "{verdict:?}");
    assert!(
        verdict.line.contains("branch won") || verdict.line.contains("honest chain won"),
        "{verdict:?}"
    );
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_fork_wins_in_toycoin_where_nobody_else_mines() {
    // Under toycoin (nothing waits, so nobody else mines) a few secret
    // blocks are a longer chain: it wins. Three of them leave the nodes
    // the block at height 3 (65,536 hashes; from height 4, 16 million).
    let net = Network::start(toycoin()).await;
    let verdict = net
        .attack(Scenario::PrivateFork, |o| {
            o.secret_secs = 2.0;
            o.secret_blocks = 3;
        })
        .await;
    net.held_saying(verdict, "branch won").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_double_spend_across_a_partition_leaves_one_payment_after_healing() {
    // Blocks of the first bits at the target from the start: a network
    // faster than the first bits' target meets a burst of early blocks
    // with the largest step up (8 times the work), after which each half
    // of the partition took 7 s a block, not 2.
    let net = Network::start_at(steady(), FIRST_BITS_AT_TARGET).await;
    let verdict = net.attack(Scenario::DoubleSpend, |o| o.threads = 1).await;
    net.held_saying(verdict, "vanished").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_double_spend_across_a_partition_leaves_one_payment_in_toycoin_too() {
    let net = Network::start(toycoin()).await;
    let verdict = net.attack(Scenario::DoubleSpend, |_| {}).await;
    net.held_saying(verdict, "vanished").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rewritten_transfer_breaks_steadys_signatures() {
    a_rewritten_transfer(steady(), "the signatures cover the amounts").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rewritten_transfer_is_the_originals_flaw_in_toycoin() {
    a_rewritten_transfer(toycoin(), "the original's flaw").await;
}

async fn a_rewritten_transfer(profile: Profile, expect: &str) {
    let net = Network::start(profile).await;
    // Under toycoin blocks soon need 2^32 hashes: the verdict does not
    // wait for three of them.
    let patience = Duration::from_secs(if profile == toycoin() { 15 } else { 60 });
    let attacker = net.join(|o| o.patience = patience).await;
    // The teacher's oracle pays between its wallets, with change; it
    // starts once the attacker listens, as the replay test's.
    let oracle = net.oracle();
    let verdict = Network::run(attacker, Scenario::Malleate).await;
    oracle.abort();
    net.held_saying(verdict, expect).await;
}
