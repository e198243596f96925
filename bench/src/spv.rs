//! The light wallet's memory: `toycoin-wallet` following a node whose
//! chain has 100 and then 10,000 blocks, its peak RSS read from
//! `/proc/PID/status` (VmHWM) once it has synced its headers and proved
//! its transactions; beside it, what the headers take by the wallet's own
//! count and what the whole blocks would.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::time::Instant;
use toycoin_common::chain::{now_secs, Chain};
use toycoin_common::message::encode_bloc;
use toycoin_common::relay::{RelayClient, DEFAULT_TOPIC};
use toycoin_common::spv::HeaderChain;
use toycoin_common::wallet::Wallet;
use toycoin_node::{spawn, NodeConfig};

use crate::chains::extend;
use crate::memory::peak_rss;
use crate::programs::{quiet_relay, sibling, start_on};

const MIB: f64 = 1024.0 * 1024.0;

/// One chain length's figures.
struct Row {
    blocks: usize,
    chain_mib: f64,
    headers_mib: f64,
    wallet_rss_mib: f64,
    balance_line: String,
}

pub async fn run(sizes: &[usize]) -> Result<Vec<String>, String> {
    let wallet_bin = sibling("toycoin-wallet")?;
    let mut rng = StdRng::seed_from_u64(4);
    let mint = Wallet::generate(&mut rng).map_err(|e| e.to_string())?;
    let me = Wallet::generate(&mut rng).map_err(|e| e.to_string())?;
    let dir = std::env::temp_dir().join(format!("toycoin-spv-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let key = dir.join("me.pem");
    let _ = std::fs::remove_file(&key);
    toycoin_common::wallet::Wallet::load_or_create(&key).map_err(|e| e.to_string())?;
    std::fs::write(&key, me.to_pem().map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    let mut rows = Vec::new();
    for &n in sizes {
        eprintln!("spv: mining {n} blocks...");
        rows.push(one(n, &mint, &me, &wallet_bin, &key).await?);
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!("\n== spv: a light wallet's memory against the chain's length ==");
    println!(
        "{:>8} {:>14} {:>16} {:>18}",
        "blocks", "blocks MiB", "headers MiB", "wallet peak RSS MiB"
    );
    let mut figures = Vec::new();
    for r in &rows {
        println!(
            "{:>8} {:>14.2} {:>16.2} {:>18.1}",
            r.blocks, r.chain_mib, r.headers_mib, r.wallet_rss_mib
        );
        figures.push(format!(
            "spv_{}_wallet_rss_mib={:.1}",
            r.blocks, r.wallet_rss_mib
        ));
        figures.push(format!("spv_{}_headers_mib={:.2}", r.blocks, r.headers_mib));
    }
    if let Some(last) = rows.last() {
        println!("the wallet said: {}", last.balance_line);
    }
    Ok(figures)
}

async fn one(
    n: usize,
    mint: &Wallet,
    me: &Wallet,
    wallet_bin: &Path,
    key: &Path,
) -> Result<Row, String> {
    let profile = crate::programs::network_of(mint).profile();
    let mut chain = Chain::new(profile);
    let mut rng = StdRng::seed_from_u64(n as u64);
    // One grant to the wallet every n/20 blocks.
    let every = (n / 20).max(1);
    let blocks = extend(&mut chain, n, 0, |i| {
        if i % every == every / 2 {
            vec![mint
                .grant(&mut rng, me.address(), i as i64 + 1)
                .expect("signs")]
        } else {
            Vec::new()
        }
    });
    let chain_bytes: usize = blocks.iter().map(|b| b.size()).sum();
    let mut headers = HeaderChain::new(profile);
    let hs: Vec<_> = blocks.iter().map(|b| b.header.clone()).collect();
    headers
        .receive(&hs, now_secs())
        .map_err(|(i, e)| format!("header {i}: {e}"))?;

    let relay = quiet_relay(crate::programs::network_of(mint)).await?;
    let mut config = NodeConfig::new(relay.addr.to_string(), profile);
    config.name = "full".into();
    config.mine_when_idle = false;
    let (node, _) = spawn(config);
    let mut feeder = RelayClient::connect(relay.addr, DEFAULT_TOPIC)
        .await
        .map_err(|e| e.to_string())?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for batch in blocks.chunks(500) {
        feeder
            .publish(DEFAULT_TOPIC, &encode_bloc(batch))
            .await
            .map_err(|e| e.to_string())?;
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    while node.snapshot().await.map_or(0, |s| s.blocks.len()) < n {
        if Instant::now() > deadline {
            return Err("the node did not take the chain".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut child = start_on(
        wallet_bin,
        relay.addr.port(),
        [
            "--key".as_ref(),
            key.as_os_str(),
            "watch".as_ref(),
            "--secs".as_ref(),
            "30".as_ref(),
        ],
        Stdio::piped(),
        Stdio::null(),
    )?;
    let pid = child.id().ok_or("the wallet exited")?;
    let mut lines = BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();
    let balance_line = tokio::time::timeout(Duration::from_secs(120), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains(": balance ") {
                return Some(line);
            }
        }
        None
    })
    .await
    .map_err(|_| "the wallet said no balance within 2 minutes".to_owned())?
    .ok_or("the wallet ended without a balance")?;
    let rss = peak_rss(pid).ok_or("cannot read the wallet's VmHWM")? as f64 / MIB;
    let _ = child.kill().await;
    node.stop().await;
    relay.stop().await.map_err(|e| e.to_string())?;
    Ok(Row {
        blocks: n,
        chain_mib: chain_bytes as f64 / MIB,
        headers_mib: headers.heap_bytes() as f64 / MIB,
        wallet_rss_mib: rss,
        balance_line,
    })
}
