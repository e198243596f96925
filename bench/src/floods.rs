//! `floods`: a full node's peak resident memory under each flood a hostile
//! student tried against the first steady profile (issue 12), each against
//! a fresh `toycoin-node` process on an in-process relay. After each flood
//! a valid transaction is sent, and the measure is taken once the node has
//! accepted it: the node got through the flood and still works.

use std::process::Stdio;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::io::{AsyncBufReadExt, BufReader};
use toycoin_common::block::{Block, BlockHeader};
use toycoin_common::chain::{now_secs, Chain};
use toycoin_common::hash::{BlockHash, Hash};
use toycoin_common::message::{encode_bloc, encode_getb, encode_txn, GetBlocks};
use toycoin_common::profile::Profile;
use toycoin_common::relay::{RelayClient, DEFAULT_TOPIC};
use toycoin_common::transaction::Transaction;
use toycoin_common::wallet::Wallet;

use crate::memory::peak_rss;
use crate::programs::{quiet_relay, sibling, start_on};

const MIB: f64 = 1024.0 * 1024.0;

/// One flood: its name, and the frames it sends.
struct Flood {
    name: &'static str,
    frames: Box<dyn Fn() -> Vec<Bytes>>,
}

fn floods(mint: &Wallet) -> Vec<Flood> {
    let mut rng = StdRng::seed_from_u64(3);
    let student = Wallet::generate(&mut rng).expect("key");
    let big_grant = student
        .grant(&mut rng, &Bytes::from(vec![b'x'; 1024 * 1024]), 1)
        .expect("signs");
    // Side blocks of 10 MB on genesis, with the work their height needs.
    let genesis = Chain::new(Profile::steady(5.0));
    let ten_mb = Bytes::from(vec![b'y'; 10 * 1024 * 1024]);
    let side_block = move |i: usize| {
        let junk = Transaction::coinbase(ten_mb.clone(), i as i64);
        genesis
            .mine_next(
                &toycoin_common::address::example(b"flooder"),
                vec![junk],
                now_secs(),
            )
            .expect("mined")
    };
    eprintln!("floods: mining 40 side blocks of 10 MB...");
    let side_blocks: Vec<Bytes> = (0..40).map(|i| encode_bloc(&[side_block(i)])).collect();
    let fake_header = |i: u64| BlockHeader {
        timestamp: Bytes::from(i.to_string()),
        previous_hash: BlockHash(Hash::of(&i.to_be_bytes())),
        nonce: Bytes::from_static(b"0"),
        merkle_root: toycoin_common::merkle::MerkleRoot(toycoin_common::merkle::MerkleNode(
            [1; 65],
        )),
        this_hash: BlockHash(Hash::of(b"fake")),
    };
    let many_blocks: Vec<Block> = (0..12_000)
        .map(|i| Block {
            header: fake_header(i),
            txns: vec![Transaction::coinbase(Bytes::from_static(b"z"), 1)],
        })
        .collect();
    let huge_bloc = encode_bloc(&many_blocks);
    let _ = mint;
    vec![
        Flood {
            name: "300 transactions of 1 MB",
            frames: Box::new(move || (0..300).map(|_| encode_txn(&[], &big_grant)).collect()),
        },
        Flood {
            name: "40 side blocks of 10 MB",
            frames: Box::new(move || side_blocks.clone()),
        },
        Flood {
            name: "6,000 minted transactions",
            frames: Box::new(|| {
                (0..6000)
                    .map(|i| encode_txn(&[], &Transaction::coinbase(Bytes::from_static(b"me"), i)))
                    .collect()
            }),
        },
        Flood {
            name: format_static(huge_bloc.len()),
            frames: Box::new(move || vec![huge_bloc.clone()]),
        },
        Flood {
            name: "1,000 catch-up requests",
            frames: Box::new(|| {
                (0..1000)
                    .map(|i| {
                        encode_getb(&GetBlocks {
                            locator: Vec::new(),
                            id: format!("flood-{i}"),
                        })
                    })
                    .collect()
            }),
        },
    ]
}

fn format_static(bytes: usize) -> &'static str {
    Box::leak(format!("a BLOC of 12,000 blocks ({:.1} MB)", bytes as f64 / 1e6).into_boxed_str())
}

/// A node's output, line by line.
struct NodeOutput(tokio::io::Lines<BufReader<tokio::process::ChildStdout>>);

impl NodeOutput {
    /// Waits (at most `within`) for a line containing `what`.
    async fn wait_for(&mut self, what: &str, within: Duration) -> Result<(), String> {
        let found = tokio::time::timeout(within, async {
            while let Ok(Some(line)) = self.0.next_line().await {
                if line.contains(what) {
                    return true;
                }
            }
            false
        })
        .await;
        if found.unwrap_or(false) {
            Ok(())
        } else {
            Err(format!("the node never said {what:?}"))
        }
    }
}

/// Runs every flood; prints a table, returns figures.
pub async fn run() -> Result<Vec<String>, String> {
    let node_bin = sibling("toycoin-node")?;
    let mut rng = StdRng::seed_from_u64(9);
    let mint = Wallet::generate(&mut rng).map_err(|e| e.to_string())?;
    let relay = quiet_relay(crate::programs::network_of(&mint)).await?;
    let floods = floods(&mint);
    let dir = std::env::temp_dir().join(format!("toycoin-floods-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    println!("\n== floods: a node's peak RSS under each flood (fresh node each) ==");
    println!("{:<44} {:>10} {:>10}", "flood", "peak MiB", "seconds");
    let mut figures = Vec::new();
    for (i, flood) in floods.iter().enumerate() {
        let wallet = dir.join(format!("node{i}.pem"));
        let mut child = start_on(
            &node_bin,
            relay.addr.port(),
            [
                "--name".as_ref(),
                "flooded".as_ref(),
                "--wallet".as_ref(),
                wallet.as_os_str(),
            ],
            Stdio::piped(),
            Stdio::null(),
        )?;
        let pid = child.id().ok_or("node exited")?;
        let mut out = NodeOutput(BufReader::new(child.stdout.take().ok_or("no stdout")?).lines());
        out.wait_for("Connected to relay", Duration::from_secs(60))
            .await?;
        let mut client = RelayClient::connect(relay.addr, "/topic/flooder")
            .await
            .map_err(|e| e.to_string())?;
        let start = Instant::now();
        for frame in (flood.frames)() {
            client
                .publish(DEFAULT_TOPIC, &frame)
                .await
                .map_err(|e| e.to_string())?;
        }
        // A valid transaction after the flood: accepted once it is through.
        // Sent again every 2 s, as the oracle would: the relay may have
        // shed it for a node still busy with the flood.
        let sentinel = mint
            .grant(&mut rng, &toycoin_common::address::example(b"a student"), 5)
            .map_err(|e| e.to_string())?;
        let accepted = format!("TXN {} accepted", sentinel.hash().short());
        let mut tries = 0;
        loop {
            client
                .publish(DEFAULT_TOPIC, &encode_txn(&[], &sentinel))
                .await
                .map_err(|e| e.to_string())?;
            match out.wait_for(&accepted, Duration::from_secs(2)).await {
                Ok(()) => break,
                Err(e) if tries >= 150 => return Err(e),
                Err(_) => tries += 1,
            }
        }
        let secs = start.elapsed().as_secs_f64();
        let peak = peak_rss(pid).ok_or("cannot read the node's VmHWM")? as f64 / MIB;
        let _ = child.kill().await;
        println!("{:<44} {:>10.1} {:>10.1}", flood.name, peak, secs);
        figures.push(format!("flood_{}_peak_mib={peak:.1}", i + 1));
    }
    let _ = std::fs::remove_dir_all(&dir);
    relay.stop().await.map_err(|e| e.to_string())?;
    for subscribers in [6, 30] {
        figures.extend(answers(&mint, subscribers).await?);
    }
    Ok(figures)
}

/// Issue 33, "answers to everyone": a student sends 200 header requests
/// to a node holding 100 blocks, each way a request can name where its
/// answers go; `subscribers` classmates listen. What is measured is the
/// answer bytes the class (everyone but the student) receives per byte
/// of request the student sent: bounded, whatever the class's size, only
/// if answers go to their asker alone.
async fn answers(mint: &Wallet, subscribers: usize) -> Result<Vec<String>, String> {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    use toycoin_common::control::{encode_hello, HELLO_TOPIC};
    use toycoin_common::spv::SpvMsg;

    let network = crate::programs::network_of(mint);
    let relay = quiet_relay(network.clone()).await?;
    let mut config = toycoin_node::NodeConfig::new(relay.addr.to_string(), network.profile());
    config.mine_when_idle = false;
    let (node, mut events) = toycoin_node::spawn(config);
    let mut chain = Chain::new(network.profile());
    let blocks = crate::chains::extend(&mut chain, 100, 1, |_| Vec::new());
    let mut feeder = RelayClient::connect(relay.addr, DEFAULT_TOPIC)
        .await
        .map_err(|e| e.to_string())?;
    // The node is on the relay once it asks for blocks; then it takes them.
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if let Ok(toycoin_node::Event::CatchUpRequested { .. }) = events.recv().await {
                return;
            }
        }
    })
    .await
    .map_err(|_| "the node did not connect")?;
    feeder
        .publish(DEFAULT_TOPIC, &encode_bloc(&blocks))
        .await
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while node.snapshot().await.map_or(0, |s| s.blocks.len()) < 100 {
        if Instant::now() > deadline {
            return Err("the node did not take the chain".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The class: each counts the bytes of the SPV answers it receives.
    let heard = Arc::new(AtomicU64::new(0));
    let mut class = Vec::new();
    for i in 0..subscribers {
        let mut c = RelayClient::connect(relay.addr, DEFAULT_TOPIC)
            .await
            .map_err(|e| e.to_string())?;
        let name = format!("w-classmate{i}");
        c.publish(HELLO_TOPIC, &encode_hello(&name))
            .await
            .map_err(|e| e.to_string())?;
        let heard = heard.clone();
        class.push(tokio::spawn(async move {
            while let Ok(Some(frame)) = c.recv().await {
                if let Ok(msg) = SpvMsg::decode(&frame) {
                    if !msg.is_request() {
                        heard.fetch_add(frame.len() as u64, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    let student = RelayClient::connect(relay.addr, DEFAULT_TOPIC)
        .await
        .map_err(|e| e.to_string())?;
    let (mut student_in, mut student) = student.into_split();
    student
        .publish(HELLO_TOPIC, &encode_hello("w-student"))
        .await
        .map_err(|e| e.to_string())?;
    let own = Arc::new(AtomicU64::new(0));
    let reader = {
        let own = own.clone();
        tokio::spawn(async move {
            while let Ok(Some(frame)) = student_in.recv().await {
                if let Ok(msg) = SpvMsg::decode(&frame) {
                    if !msg.is_request() {
                        own.fetch_add(frame.len() as u64, Ordering::Relaxed);
                    }
                }
            }
        })
    };
    println!(
        "\n== floods: answers to 200 header requests (100 blocks), {subscribers} classmates listening =="
    );
    println!(
        "{:<30} {:>12} {:>14} {:>16} {:>14}",
        "requests name", "request KB", "asker got KB", "class got KB", "class per in"
    );
    let mut figures = Vec::new();
    for (label, key, reply_to) in [
        ("the asker (reply_to)", "own", Some("w-student")),
        ("no one", "none", None),
        ("a classmate", "classmate", Some("w-classmate0")),
    ] {
        let before = heard.load(Ordering::Relaxed);
        let own_before = own.load(Ordering::Relaxed);
        let mut sent = 0usize;
        for i in 0..200 {
            let ask = SpvMsg::GetHeaders {
                id: format!("{key}-{i}"),
                locator: Vec::new(),
                reply_to: reply_to.map(str::to_owned),
            }
            .encode();
            sent += ask.len();
            student
                .publish(DEFAULT_TOPIC, &ask)
                .await
                .map_err(|e| e.to_string())?;
        }
        // Settled: nothing more heard for a second.
        let mut last = heard.load(Ordering::Relaxed);
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let now = heard.load(Ordering::Relaxed);
            if now == last {
                break;
            }
            last = now;
        }
        let got = last - before;
        let asker = own.load(Ordering::Relaxed) - own_before;
        let ratio = got as f64 / sent.max(1) as f64;
        println!(
            "{label:<30} {:>12.1} {:>14.1} {:>16.1} {:>14.2}",
            sent as f64 / 1e3,
            asker as f64 / 1e3,
            got as f64 / 1e3,
            ratio
        );
        figures.push(format!(
            "answers_{key}_{subscribers}_asker_kb={:.1}",
            asker as f64 / 1e3
        ));
        figures.push(format!("answers_{key}_{subscribers}_out_per_in={ratio:.2}"));
        // The node's budget for the student fills again.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    drop(student);
    reader.abort();
    node.stop().await;
    relay.stop().await.map_err(|e| e.to_string())?;
    for c in class {
        let _ = c.await;
    }
    Ok(figures)
}
