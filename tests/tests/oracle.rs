//! The oracle binary against an in-process relay and node: every transfer
//! confirmed with balances agreeing, and lost transactions re-sent.

// In tests a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use toycoin_common::message::Message;
use toycoin_common::profile::Profile;
use toycoin_common::relay::{RelayClient, DEFAULT_TOPIC};
use toycoin_node::{no_wallet, spawn, NodeConfig, NodeHandle};
use toycoin_relay::local::LocalRelay;
use toycoin_tests::keys;
use toycoin_tests::program::{Program, WAIT};

async fn relay() -> LocalRelay {
    toycoin_relay::local::spawn_serving(keys::network(5.0))
        .await
        .unwrap()
}

fn node_config(addr: SocketAddr) -> NodeConfig {
    let mut config = NodeConfig::new(addr.to_string(), toycoin_tests::keys::steady(5.0));
    config.backoff = Duration::from_millis(50);
    // Blocks come at the target whatever the rate: the processor is left
    // to the tests beside this one.
    config.max_hash_rate = Some(500_000.0);
    config
}

fn node(addr: SocketAddr) -> NodeHandle {
    spawn(node_config(addr)).0
}

fn oracle(addr: SocketAddr, extra: &[&str]) -> Program {
    let port = addr.port().to_string();
    let (wallets, mint) = (
        keys::oracle_keys().display().to_string(),
        keys::mint_key().display().to_string(),
    );
    let mut args = vec![
        "--wallet-keys",
        &wallets,
        "--mint-key",
        &mint,
        "--host",
        "127.0.0.1",
        "--port",
        &port,
        "--min-interval",
        "0.05",
        "--max-interval",
        "0.2",
        "--seed",
        "42",
        "--confirm-timeout",
        "50",
    ];
    args.extend_from_slice(extra);
    Program::start("toycoin-oracle", &args)
}

/// The oracle's four fundings (the mint's grants spend nothing), as they
/// pass on the relay.
async fn fundings(client: &mut RelayClient) -> Vec<toycoin_common::transaction::Transaction> {
    let mut fundings = Vec::new();
    while fundings.len() < 4 {
        let frame = tokio::time::timeout(WAIT, client.recv())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let Ok(Message::Txn(m)) = Message::decode(&frame) {
            if m.txn.previous_hashes.is_empty() && !fundings.contains(&m.txn) {
                fundings.push(m.txn);
            }
        }
    }
    fundings
}

/// The balances in the oracle's final line, e.g. `[119, 64, 2, 0]`.
fn final_balances(line: &str) -> Vec<i64> {
    let list = &line[line.rfind('[').unwrap() + 1..line.rfind(']').unwrap()];
    list.split(", ").map(|x| x.parse().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_count_every_transfer_is_confirmed_and_balances_agree() {
    let relay = relay().await;
    let addr = relay.addr;
    let node = node(addr);
    let mut oracle = oracle(addr, &["--count", "8"]);
    let done = oracle
        .wait_line("the final line", WAIT, |l| l.starts_with("Done:"))
        .await;
    assert!(oracle.wait_exit(WAIT).await.success());
    assert!(done.contains("all 12 transactions confirmed"), "{done}");
    let out = oracle.output();
    assert_eq!(out.matches("Sending from wallet").count(), 8);
    assert_eq!(out.matches("Confirmed: ").count(), 12);
    assert!(!out.contains("DISAGREE"));

    // The node's chain holds the 12 transactions after the blocks' rewards,
    // and the oracle's final balances are the chain's.
    let snap = node.snapshot().await.unwrap();
    let txns: Vec<_> = snap.blocks.iter().flat_map(|b| &b.txns[1..]).collect();
    assert_eq!(txns.len(), 12);
    assert!(snap.blocks.iter().all(|b| b.txns[0].is_coinbase()));
    let balances = final_balances(&done);
    assert_eq!(balances.iter().sum::<i64>(), 185);
    let chain = toycoin_common::chain::Chain::from_blocks(
        toycoin_tests::keys::steady(5.0),
        snap.blocks.clone(),
        toycoin_common::chain::now_secs(),
    )
    .unwrap();
    let mut on_chain: Vec<i64> = chain
        .ledger()
        .balances()
        .into_iter()
        .filter(|(owner, _)| *owner != no_wallet())
        .map(|(_, b)| b)
        .collect();
    on_chain.sort();
    let mut expected: Vec<i64> = balances.into_iter().filter(|&b| b != 0).collect();
    expected.sort();
    assert_eq!(on_chain, expected);
    node.stop().await;
    relay.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_nobody_received_are_re_sent_and_confirmed() {
    let relay = relay().await;
    let addr = relay.addr;
    // No node yet: the fundings go nowhere. A watcher sees them pass.
    let mut watcher = RelayClient::connect(addr, DEFAULT_TOPIC).await.unwrap();
    let mut oracle = oracle(addr, &["--count", "2", "--resend-secs", "1"]);
    fundings(&mut watcher).await;
    let node = node(addr);
    oracle
        .wait_line("a re-send", WAIT, |l| {
            l.contains("re-sending funding of wallet 0")
        })
        .await;
    oracle
        .wait_line("the final line", WAIT, |l| l.starts_with("Done:"))
        .await;
    assert!(oracle.wait_exit(WAIT).await.success());
    let snap = node.snapshot().await.unwrap();
    let after_rewards = |b: &toycoin_common::block::Block| b.txns.len() - 1;
    assert_eq!(snap.blocks.iter().map(after_rewards).sum::<usize>(), 6);
    node.stop().await;
    relay.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmations_climb_as_blocks_bury_a_transaction_until_final() {
    let relay = relay().await;
    let addr = relay.addr;
    // The test is the only miner: it mines the fundings, then buries them.
    let mut miner = RelayClient::connect(addr, DEFAULT_TOPIC).await.unwrap();
    let mut oracle = oracle(addr, &["--count", "1"]);
    let fundings = fundings(&mut miner).await;
    let profile = toycoin_tests::keys::steady(5.0);
    let mut chain = toycoin_common::chain::Chain::new(profile);
    let me = toycoin_common::address::example(b"test miner");
    for height in 0..6 {
        let txns = if height == 0 {
            fundings.clone()
        } else {
            Vec::new()
        };
        let block = chain
            .mine_next(&me, txns, toycoin_common::chain::now_secs())
            .unwrap();
        chain
            .push(block.clone(), toycoin_common::chain::now_secs())
            .unwrap();
        miner
            .publish(
                DEFAULT_TOPIC,
                &toycoin_common::message::encode_bloc(&[block]),
            )
            .await
            .unwrap();
        let n = height + 1;
        let want = if n == 1 {
            "Confirmed: funding of wallet 0 in block 0 (1 confirmation)".to_owned()
        } else if n < 6 {
            format!("funding of wallet 0 in block 0: {n} confirmations")
        } else {
            "Final: funding of wallet 0 in block 0 (6 confirmations".to_owned()
        };
        oracle.wait_line(&want, WAIT, |l| l.contains(&want)).await;
    }
    oracle.stop(WAIT).await;
    relay.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_the_toycoin_profile_the_oracle_pays_only_with_confirmed_outputs() {
    let relay = relay().await;
    let addr = relay.addr;
    // The test mines, as a Python node would take transactions: only
    // those whose inputs are all in its chain.
    let mut miner = RelayClient::connect(addr, DEFAULT_TOPIC).await.unwrap();
    // More transfers than wallets with confirmed coins: some must wait for
    // a block (blocks come only once the oracle has been quiet for 1.5 s).
    let mut oracle = oracle(addr, &["--count", "6", "--profile", "toycoin"]);
    let profile = Profile::toycoin();
    let mut chain = toycoin_common::chain::Chain::new(profile);
    let me = bytes::Bytes::from_static(b"test miner");
    let mut pending: Vec<toycoin_common::transaction::Transaction> = Vec::new();
    let mut transfers = 0;
    let done = tokio::time::timeout(WAIT, async {
        loop {
            tokio::select! {
                frame = miner.recv() => {
                    let frame = frame.unwrap().unwrap();
                    let Ok(Message::Txn(m)) = Message::decode(&frame) else { continue };
                    if pending.contains(&m.txn) || chain.ledger().contains(&m.txn.hash()) {
                        continue;
                    }
                    if !m.txn.is_coinbase() {
                        transfers += 1;
                        // Every input is an unspent output of the chain.
                        let checked = chain.ledger().check(&m.txn, Some(&m.tokens));
                        assert!(checked.is_ok(), "transfer {transfers}: {checked:?}");
                    }
                    pending.push(m.txn);
                }
                _ = tokio::time::sleep(Duration::from_millis(1500)), if !pending.is_empty() => {
                    let txns = std::mem::take(&mut pending);
                    let block = chain.mine_next(&me, txns, toycoin_common::chain::now_secs()).unwrap();
                    chain.push(block.clone(), toycoin_common::chain::now_secs()).unwrap();
                    let frame = toycoin_common::message::encode_bloc(&[block]);
                    miner.publish(DEFAULT_TOPIC, &frame).await.unwrap();
                }
                status = oracle.exited() => return status,
            }
        }
    })
    .await
    .expect("the oracle finishes");
    assert!(done.success(), "{}", oracle.output());
    assert_eq!(transfers, 6);
    relay.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_the_nodes_hold_are_not_sent_again() {
    let relay = relay().await;
    let addr = relay.addr;
    // A mining node takes every pending transaction into its next block;
    // one that arrives while a block is being mined waits for the next.
    // So none is left out of two blocks with room, and none is re-sent.
    let (node, mut events) = spawn(node_config(addr));
    let mut oracle = oracle(
        addr,
        &[
            "--count",
            "40",
            "--resend-secs",
            "120",
            "--resend-after",
            "2",
        ],
    );
    oracle
        .wait_line("the final line", WAIT, |l| l.starts_with("Done:"))
        .await;
    assert!(oracle.wait_exit(WAIT).await.success());
    let out = oracle.output();
    assert!(!out.contains("Re-sending"), "{out}");
    let mut repeats = 0;
    loop {
        match events.try_recv() {
            Ok(toycoin_node::Event::TxnRejected { reason, .. }) => {
                repeats += usize::from(reason.contains("already pending"));
            }
            Ok(_) | Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => {}
            Err(_) => break,
        }
    }
    assert_eq!(repeats, 0, "copies of what the node held");
    node.stop().await;
    relay.stop().await.unwrap();
}

/// With `--wallet-keys DIR` the oracle keeps its wallets' keys there,
/// readable by their owner only: run again, it has the same wallets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wallets_kept_in_a_key_directory_are_the_same_run_after_run() {
    let relay = relay().await;
    let dir = std::env::temp_dir().join(format!("toycoin-wallet-keys-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let keys = dir.join("keys");
    let mut runs = Vec::new();
    for _ in 0..2 {
        let port = relay.addr.port().to_string();
        let mut oracle = Program::start(
            "toycoin-oracle",
            &[
                "--port",
                &port,
                "--wallet-keys",
                &keys.display().to_string(),
                "--mint-key",
                &keys::mint_key().display().to_string(),
            ],
        );
        oracle
            .wait_line("the last funding", WAIT, |l| {
                l.contains("Funding wallet 3 (")
            })
            .await;
        let funded: Vec<String> = oracle
            .output()
            .lines()
            .filter_map(|l| Some(l.split("Funding wallet ").nth(1)?.to_owned()))
            .collect();
        assert_eq!(funded.len(), 4, "{}", oracle.output());
        runs.push(funded);
        oracle.stop(WAIT).await;
    }
    assert_eq!(runs[0], runs[1], "the same wallets, the same fingerprints");
    for i in 0..4 {
        let file = keys.join(format!("wallet-{i}.pem"));
        toycoin_common::wallet::check_private_file(&file).unwrap();
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&keys).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the key directory is its owner's alone");
    }
    let _ = std::fs::remove_dir_all(&dir);
    relay.stop().await.unwrap();
}
