//! The real binaries on 127.0.0.1: a relay, two nodes with different
//! delays, an oracle sending 30 transfers, and a JSON listener. Nothing is
//! lost, everyone agrees, nobody panics, everything stops. And the demo
//! command starts a network whose listener shows blocks, then stops it all.

// In tests a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde_json::Value;
use toycoin_common::hash::Txid;
use toycoin_common::message::Message;
use toycoin_common::relay::{RelayClient, DEFAULT_TOPIC};
use toycoin_common::tree::BlockTree;
use toycoin_tests::program::{Program, WAIT};

/// Starts the relay on a port the OS picks and returns it with the port:
/// the teacher's relay fixes the network, naming the tests' mint.
async fn relay() -> (Program, u16) {
    let mint = toycoin_tests::keys::mint_key().display().to_string();
    let (relay, addr) = toycoin_tests::program::relay(&["--mint-key", &mint]).await;
    let port = addr.rsplit(':').next().unwrap().parse().unwrap();
    (relay, port)
}

/// The tip hash (short hex) in a node's last "chain extended" / "switched"
/// line.
fn last_node_tip(output: &str) -> Option<String> {
    output.lines().rev().find_map(|l| {
        if let Some(i) = l.find("switched tip ") {
            return l[i..].split(" -> ").nth(1).map(|s| s[..12].to_owned());
        }
        l.find(", tip ").map(|i| l[i + 6..i + 18].to_owned())
    })
}

/// The listener's best-chain tip after its last BLOC (full hex).
fn last_listener_tip(output: &str) -> Option<String> {
    output.lines().rev().find_map(|l| {
        let v: Value = serde_json::from_str(l).ok()?;
        (v["type"] == "BLOC").then(|| v["chain"]["tip"].as_str().unwrap().to_owned())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_transfers_all_confirmed_once_and_everyone_agrees() {
    let (mut relay, port) = relay().await;
    let port = port.to_string();
    let common = ["--host", "127.0.0.1", "--port", port.as_str()];
    // Our own observer builds the best chain from the BLOC frames.
    let mut observer = RelayClient::connect(format!("127.0.0.1:{port}"), DEFAULT_TOPIC)
        .await
        .unwrap();
    let mut listener = Program::start("toycoin-listener", &[&common[..], &["--json"]].concat());
    // Each node at half a million hashes a second: the steady target
    // paces blocks whatever the rate, and the tests beside this one keep
    // the processor.
    let rate = ["--max-hash-rate", "500k"];
    let mut fast = Program::start(
        "toycoin-node",
        &[&common[..], &rate, &["--name", "fast"]].concat(),
    );
    let mut slow = Program::start(
        "toycoin-node",
        &[&common[..], &rate, &["--name", "slow", "--delay", "1"]].concat(),
    );
    for node in [&mut fast, &mut slow] {
        node.wait_line("connection", WAIT, |l| l.starts_with("Connected to relay"))
            .await;
    }
    let mut oracle = Program::start(
        "toycoin-oracle",
        &[
            &common[..],
            &[
                "--count",
                "30",
                "--min-interval",
                "0.02",
                "--max-interval",
                "0.1",
                "--seed",
                "7",
                "--confirm-timeout",
                "45",
                "--mint-key",
                &toycoin_tests::keys::mint_key().display().to_string(),
            ],
        ]
        .concat(),
    );

    // Follow the chain while the oracle works.
    let mut tree = BlockTree::new(toycoin_tests::keys::steady(5.0));
    let mut oracle_txns: Vec<(Txid, toycoin_common::transaction::Transaction)> = Vec::new();
    let done = tokio::time::timeout(WAIT, async {
        loop {
            tokio::select! {
                frame = observer.recv() => {
                    let frame = frame.unwrap().unwrap();
                    match Message::decode(&frame) {
                        Ok(Message::Bloc(blocks)) => { let _ = tree.receive(blocks, toycoin_common::chain::now_secs()); }
                        Ok(Message::Txn(m)) => {
                            let h = m.txn.hash();
                            if !oracle_txns.iter().any(|(x, _)| *x == h) {
                                oracle_txns.push((h, m.txn));
                            }
                        }
                        _ => {}
                    }
                }
                status = oracle.exited() => return status,
            }
        }
    })
    .await
    .expect("the oracle finishes within the time limit");
    assert!(done.success(), "oracle:\n{}", oracle.output());
    let out = oracle.output();
    let final_line = out.lines().find(|l| l.starts_with("Done:")).unwrap();
    assert!(
        final_line.contains("all 34 transactions confirmed"),
        "{final_line}"
    );
    assert_eq!(oracle_txns.len(), 34);

    // Everyone ends on one tip (a last race between the nodes settles by
    // the tie rule); wait for it.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        // Keep our observer current too.
        while let Ok(Ok(Some(frame))) =
            tokio::time::timeout(Duration::from_millis(20), observer.recv()).await
        {
            if let Ok(Message::Bloc(blocks)) = Message::decode(&frame) {
                let _ = tree.receive(blocks, toycoin_common::chain::now_secs());
            }
        }
        let tip = tree.chain().tip_hash().to_hex();
        let agree = last_node_tip(&fast.output()).is_some_and(|t| tip.starts_with(&t))
            && last_node_tip(&slow.output()).is_some_and(|t| tip.starts_with(&t))
            && last_listener_tip(&listener.output()).is_some_and(|t| t == tip);
        if agree {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no common tip:\nfast {:?}\nslow {:?}\nlistener {:?}\nours {tip}",
            last_node_tip(&fast.output()),
            last_node_tip(&slow.output()),
            last_listener_tip(&listener.output())
        );
    }

    // Every one of the 34 transactions is in the best chain exactly once,
    // and nothing else but the blocks' rewards.
    let chain = tree.chain();
    let mut seen: HashMap<Txid, usize> = HashMap::new();
    for block in chain.blocks() {
        for (i, t) in block.txns.iter().enumerate() {
            if i == 0 && t.is_coinbase() {
                continue;
            }
            *seen.entry(t.hash()).or_default() += 1;
        }
    }
    let sent: HashSet<Txid> = oracle_txns.iter().map(|(h, _)| *h).collect();
    assert_eq!(seen.keys().copied().collect::<HashSet<_>>(), sent);
    assert!(seen.values().all(|&n| n == 1));

    // The chain's balances are the oracle's: wallets in funding order
    // (the mint's grants spend nothing).
    let wallets: Vec<_> = oracle_txns
        .iter()
        .filter(|(_, t)| t.previous_hashes.is_empty())
        .map(|(_, t)| t.receiver.clone())
        .collect();
    let chain_balances: Vec<i64> = wallets.iter().map(|w| chain.ledger().balance(w)).collect();
    assert!(
        final_line.ends_with(&format!("{chain_balances:?}")),
        "{final_line} vs {chain_balances:?}"
    );

    // Both nodes kept to --max-hash-rate, in every block they mined.
    let mut rates = Vec::new();
    for node in [&fast, &slow] {
        let out = node.output();
        assert!(out.contains("1 mining thread at most 0.50 MH/s"), "{out}");
        rates.extend(
            out.lines()
                .filter(|l| l.contains("Mined block"))
                .filter_map(|l| {
                    l.rsplit(" at ")
                        .next()?
                        .strip_suffix(" MH/s")?
                        .parse::<f64>()
                        .ok()
                }),
        );
    }
    assert!(!rates.is_empty(), "no block mined at a rate");
    assert!(rates.iter().all(|&r| r <= 0.505), "{rates:?}");

    // Everything stops when asked, and nobody panicked.
    for p in [&mut listener, &mut fast, &mut slow, &mut relay] {
        let status = p.stop(WAIT).await;
        assert!(status.success(), "{} exited with {status}", p.name);
        assert!(
            !p.output().contains("panicked"),
            "{}:\n{}",
            p.name,
            p.output()
        );
    }
    assert!(!oracle.output().contains("panicked"));
}

/// The demo as the tests run it: built already, one terminal, ports and the
/// web view's the OS picks, capped hash rates.
const DEMO_FLAGS: &[&str] = &[
    "--no-build",
    "--no-tmux",
    "--port",
    "0",
    "--web",
    "127.0.0.1:0",
    "--max-hash-rates",
    "400k,200k",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_shows_blocks_within_seconds_and_stops_everything() {
    // Its own journal: other tests run the demo on the same keys.
    let journal = std::env::temp_dir().join(format!("toycoin-e2e-{}.journal", std::process::id()));
    let journal_arg = journal.display().to_string();
    let mut demo = Program::start(
        "toycoin-demo",
        &[DEMO_FLAGS, &["--record", &journal_arg]].concat(),
    );
    // The web view's address, then the page served there.
    let line = demo
        .wait_line("the web view", WAIT, |l| l.contains("Web view: http://"))
        .await;
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap()
        .to_owned();
    demo.wait_line("the listener serving it", WAIT, |l| {
        l.contains("listener |") && l.contains(&format!("Web view: http://{addr}/"))
    })
    .await;
    let (status, page) = toycoin_tests::http::get(&addr, "/", WAIT).await;
    assert!(status == 200 && page.contains("tree-svg"), "{page}");
    demo.wait_line("a block in the listener", WAIT, |l| {
        l.contains("listener |")
            && l.contains("Blocks: 1 | Total Txns:")
            && l.contains("Valid: True")
    })
    .await;
    let status = demo.stop(WAIT).await;
    assert!(status.success(), "{}", demo.output());
    let out = demo.output();
    assert!(out.contains("all stopped"));
    // Each node was given its share of the hash power.
    for (node, rate) in [("node1", "0.40"), ("node2", "0.20")] {
        assert!(
            out.lines().any(|l| l.trim_start().starts_with(node)
                && l.contains(&format!("1 mining thread at most {rate} MH/s"))),
            "{out}"
        );
    }
    let pids: Vec<String> = out
        .lines()
        .filter_map(|l| l.split(" | pid ").nth(1).map(str::to_owned))
        .collect();
    assert_eq!(pids.len(), 5, "relay, listener, two nodes, oracle:\n{out}");
    for pid in pids {
        let alive = std::process::Command::new("kill")
            .args(["-0", &pid])
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(!alive, "process {pid} is still running");
    }
    assert!(!out.contains("panicked"), "{out}");
    // The class was recorded where the demo said, for toycoin-replay.
    let journal = out
        .lines()
        .find_map(|l| l.split("Recording the class into ").nth(1))
        .and_then(|rest| rest.split(" (").next())
        .unwrap_or_else(|| panic!("no recording line:\n{out}"));
    assert_eq!(journal, journal_arg);
    let records = toycoin_common::journal::read(std::path::Path::new(journal)).unwrap();
    assert!(
        records.iter().any(|r| r.payload.starts_with(b"BLOC")),
        "{} records",
        records.len()
    );
    let _ = std::fs::remove_file(journal);
}

/// The binaries as the book runs them for pBFT (docs/teaching.md): four nodes from a
/// replicas file, the first (view 0's primary) silent; the oracle's
/// payments all become final after a view change, and the JSON listener,
/// checking every signature, shows batches final.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pbft_binaries_finalize_every_payment_past_a_silent_primary() {
    use toycoin_common::pbft::Membership;
    use toycoin_common::wallet::Wallet;

    let dir = std::env::temp_dir().join(format!("toycoin-pbft-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut rng = rand::thread_rng();
    let mut members = Vec::new();
    let mut key_files = Vec::new();
    for i in 0..4 {
        let wallet = Wallet::generate(&mut rng).unwrap();
        let path = dir.join(format!("node{}.pem", i + 1));
        let _ = std::fs::remove_file(&path);
        std::fs::write(&path, wallet.to_pem().unwrap()).unwrap();
        key_files.push(path.display().to_string());
        members.push((format!("node{}", i + 1), wallet.address().clone()));
    }
    let replicas = dir.join("replicas.txt");
    std::fs::write(&replicas, Membership::new(members).unwrap().to_text()).unwrap();
    let replicas = replicas.display().to_string();

    let (mut relay, port) = relay().await;
    let port = port.to_string();
    let common = ["--host", "127.0.0.1", "--port", port.as_str()];
    let pbft = ["--consensus", "pbft", "--replicas", replicas.as_str()];
    let mut listener = Program::start(
        "toycoin-listener",
        &[
            &common[..],
            &["--json", "--passive", "--replicas", replicas.as_str()],
        ]
        .concat(),
    );
    let mut nodes = Vec::new();
    for (i, key) in key_files.iter().enumerate() {
        let mut args = [
            &common[..],
            &pbft[..],
            &["--wallet", key, "--view-timeout", "0.5"],
        ]
        .concat();
        if i == 0 {
            args.extend(["--fault", "silent"]);
        }
        let mut node = Program::start("toycoin-node", &args);
        node.wait_line("connection", WAIT, |l| l.starts_with("Connected to relay"))
            .await;
        nodes.push(node);
    }
    let mut oracle = Program::start(
        "toycoin-oracle",
        &[
            &common[..],
            &pbft[..],
            &[
                "--count",
                "3",
                "--min-interval",
                "0.05",
                "--max-interval",
                "0.1",
            ],
            &[
                "--confirm-timeout",
                "30",
                "--mint-key",
                &toycoin_tests::keys::mint_key().display().to_string(),
            ],
        ]
        .concat(),
    );
    let status = oracle.wait_exit(WAIT).await;
    let out = oracle.output();
    assert!(status.success(), "oracle:\n{out}");
    assert!(out.contains("all 7 transactions confirmed"), "{out}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("Final: ")).count(),
        7,
        "{out}"
    );
    assert!(
        nodes[1]
            .output()
            .contains("pBFT: NEW VIEW 1, primary replica 1"),
        "{}",
        nodes[1].output()
    );
    listener
        .wait_line("a final batch", WAIT, |l| {
            serde_json::from_str::<Value>(l)
                .is_ok_and(|v| v["type"] == "PBFT" && v["kind"] == "final" && v["verified"] == true)
        })
        .await;
    for node in &mut nodes {
        assert!(node.stop(WAIT).await.success(), "{}", node.output());
    }
    assert!(listener.stop(WAIT).await.success());
    assert!(relay.stop(WAIT).await.success());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Whether process `pid` is still running (not a zombie).
fn running(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit(')')
            .next()
            .is_some_and(|s| !s.starts_with(" Z"))
    })
}

/// `toycoin-demo | head`: the reader of the demo's output goes away while
/// the class runs. The demo ended at once on the broken pipe and left the
/// relay, both nodes and the oracle running, the nodes mining; now it
/// stops them all, as on Ctrl-C, and ends quietly.
#[test]
fn a_demo_whose_reader_went_away_stops_every_program() {
    use std::io::BufRead;
    if !std::path::Path::new("/proc/self/stat").exists() {
        eprintln!("skipped: needs /proc");
        return;
    }
    let journal =
        std::env::temp_dir().join(format!("toycoin-e2e-head-{}.journal", std::process::id()));
    let mut demo = std::process::Command::new(toycoin_tests::program::binary("toycoin-demo"))
        .args(DEMO_FLAGS)
        .arg("--record")
        .arg(&journal)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(demo.stdout.take().unwrap());
    let (mut pids, mut said) = (Vec::new(), String::new());
    // Up to the listener's first block: every program runs by then.
    let mut line = String::new();
    while !(line.contains("listener |") && line.contains("Blocks: 1 |")) {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "the demo ended:\n{said}"
        );
        said.push_str(&line);
        if let Some(pid) = line.trim_end().split(" | pid ").nth(1) {
            pids.push(pid.to_owned());
        }
    }
    assert_eq!(pids.len(), 5, "relay, listener, two nodes, oracle:\n{said}");
    drop(out);
    let deadline = std::time::Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = demo.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = demo.kill();
            break demo.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut left: Vec<&String> = pids.iter().filter(|p| running(p)).collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !left.is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        left.retain(|p| running(p));
    }
    for pid in &left {
        let _ = std::process::Command::new("kill")
            .args(["-9", pid.as_str()])
            .status();
    }
    let _ = std::fs::remove_file(&journal);
    assert!(left.is_empty(), "left running: {left:?}\n{said}");
    assert!(status.success(), "the demo ended with {status}");
}
