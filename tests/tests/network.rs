//! The class network as data (`steady` v3): fixed by the teacher before
//! anyone joins, learned from the teacher's relay, checked by join code.

// In tests a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use toycoin_common::message::encode_txn;
use toycoin_common::network::{fetch, Network};
use toycoin_common::relay::{RelayClient, DEFAULT_TOPIC};
use toycoin_common::wallet::Wallet;
use toycoin_node::{spawn, NodeConfig};
use toycoin_tests::keys;
use toycoin_tests::program::{Program, WAIT};

/// The relay binary as the demo starts it, serving the network in `file`;
/// its address.
async fn teachers_relay(file: &str) -> (Program, String) {
    toycoin_tests::program::relay(&["--network", file]).await
}

/// The mint race of issue 32: a student's script connected before the
/// teacher's programs sends itself a grant every 20 ms. On main before v3
/// the first grant mined named the mint, so the student owned the money
/// and every grant of the oracle was refused. Now the network names its
/// mint before anyone connects: the student's grants are all refused, and
/// the oracle's fundings and transfers are all confirmed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_student_connected_first_cannot_become_the_mint() {
    let file = keys::network_file(5.0).display().to_string();
    let (mut relay, addr) = teachers_relay(&file).await;

    // The student, first on the relay, granting itself a billion coins.
    let student = keys::kept_key("network-test-student");
    let mut spammer = RelayClient::connect(&addr, DEFAULT_TOPIC).await.unwrap();
    let me = student.clone();
    let spam = tokio::spawn(async move {
        loop {
            let grant = me
                .grant(&mut rand::rngs::OsRng, me.address(), 1_000_000_000)
                .unwrap();
            if spammer
                .publish(DEFAULT_TOPIC, &encode_txn(&[], &grant))
                .await
                .is_err()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;

    // A node joining as a student's laptop would: learning the network
    // from the relay alone.
    let network = fetch(&addr).await.unwrap();
    assert_eq!(network, keys::network(5.0));
    let mut config = NodeConfig::new(addr.clone(), network.profile());
    config.max_hash_rate = Some(500_000.0);
    config.name = "node1".into();
    let (node, _) = spawn(config);

    // The oracle last, as in the demo; it learns the network from the
    // relay too.
    let port = addr.rsplit(':').next().unwrap().to_owned();
    let (wallets, mint) = (
        keys::oracle_keys().display().to_string(),
        keys::mint_key().display().to_string(),
    );
    let mut oracle = Program::start(
        "toycoin-oracle",
        &[
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--wallet-keys",
            &wallets,
            "--mint-key",
            &mint,
            "--count",
            "2",
            "--min-interval",
            "0.05",
            "--max-interval",
            "0.2",
            "--confirm-timeout",
            "50",
        ],
    );
    let status = oracle.wait_exit(WAIT * 2).await;
    assert!(status.success(), "{}", oracle.output());
    let snapshot = node.snapshot().await.unwrap();
    assert_eq!(
        snapshot
            .balances
            .get(student.address())
            .copied()
            .unwrap_or(0),
        0,
        "the student got coins"
    );
    assert!(
        snapshot
            .blocks
            .iter()
            .flat_map(|b| &b.txns)
            .all(|t| t.sender != *student.address()),
        "a student's grant is in the chain"
    );
    spam.abort();
    node.stop().await;
    relay.stop(WAIT).await;
}

/// A program given the teacher's join code refuses a relay serving
/// another network, with the code it expected; the right code passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_code_tells_the_teachers_network_from_another() {
    let file = keys::network_file(5.0).display().to_string();
    let (mut relay, addr) = teachers_relay(&file).await;
    let theirs = fetch(&addr).await.unwrap();
    let ours = keys::network(5.0);
    assert!(theirs.matches_code(&ours.join_code()).is_ok());
    let another = Network::steady(5.0, Some(Wallet::random().unwrap().address().clone()));
    let refused = theirs.matches_code(&another.join_code()).unwrap_err();
    assert!(refused.contains(&theirs.join_code()), "{refused}");
    // The binaries: a listener with the wrong code exits with the reason.
    let port = addr.rsplit(':').next().unwrap().to_owned();
    let wrong = another.join_code();
    let mut listener = Program::start(
        "toycoin-listener",
        &["--host", "127.0.0.1", "--port", &port, "--join", &wrong],
    );
    let status = listener.wait_exit(WAIT).await;
    assert!(!status.success());
    assert!(
        listener.output().contains("wrong relay"),
        "{}",
        listener.output()
    );
    relay.stop(WAIT).await;
}
