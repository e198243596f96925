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
    Ok(figures)
}
