//! The pBFT suite: for n = 4, 7, 10, 13 replicas (in this process, over
//! the relay), the messages each committed batch costs against the
//! protocol's count, and the time from a transaction to final (f+1
//! matching replies); beside it, proof of work's time to 6 confirmations
//! at the default 5 s target, measured on two mining nodes.
//!
//! One transaction is sent at a time and waited for, so each batch holds
//! one and the counts are per batch. In the paper's point-to-point terms a
//! batch costs n-1 pre-prepares, (n-1)^2 prepares, n(n-1) commits and n
//! replies: 2n(n-1) + n. On the relay each replica broadcasts once and the
//! relay delivers to the n-1 others, so the deliveries among replicas
//! should be that count exactly.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::time::Instant;
use toycoin_common::message::{encode_txn, Message};
use toycoin_common::pbft::{Membership, Seen, SignedWire, Tally, CHECKPOINT_INTERVAL};
use toycoin_common::profile::FINAL_CONFIRMATIONS;
use toycoin_common::relay::{RelayClient, DEFAULT_TOPIC};
use toycoin_common::wallet::Wallet;
use toycoin_node::{spawn, NodeConfig, PbftConfig};

use crate::programs::quiet_relay;

/// One size's figures.
struct Row {
    n: usize,
    batches: u64,
    frames: BTreeMap<&'static str, u64>,
    latencies: Vec<f64>,
    /// Forged frames a second the flooder sent (0: none).
    flood_rate: f64,
}

pub async fn run(sizes: &[usize], txns: usize, pow_txns: usize) -> Result<Vec<String>, String> {
    let most = sizes.iter().copied().max().unwrap_or(4);
    eprintln!("pbft: making {most} replica keys and a mint...");
    let mut rng = StdRng::seed_from_u64(3);
    let keys: Vec<Wallet> = (0..most + 1)
        .map(|_| Wallet::generate(&mut rng).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    let mut rows = Vec::new();
    for &n in sizes {
        eprintln!("pbft: n = {n}...");
        rows.push(one_size(n, &keys[..n], &keys[most], txns).await?);
    }
    let pow = if pow_txns > 0 {
        eprintln!("pbft: proof of work, 2 nodes at the 5 s target, {pow_txns} transfers to 6 confirmations...");
        Some(pow_to_final(pow_txns, &keys[most]).await?)
    } else {
        None
    };

    println!("\n== pbft: messages per committed batch and time to final ==");
    println!(
        "{:>3} {:>3} {:>8} {:>11} {:>13} {:>13} {:>9} {:>9}",
        "n", "f", "batches", "frames/bat", "deliv/batch", "protocol", "final p50", "final max"
    );
    let mut figures = Vec::new();
    for row in &rows {
        let n = row.n as u64;
        let per =
            |k: &str| row.frames.get(k).copied().unwrap_or(0) as f64 / row.batches.max(1) as f64;
        let frames: f64 = ["pre-prepare", "prepare", "commit", "reply", "checkpoint"]
            .iter()
            .map(|k| per(k))
            .sum();
        // Among replicas: every broadcast reaches the n-1 others; a reply
        // is for the one client.
        let deliveries =
            (per("pre-prepare") + per("prepare") + per("commit")) * (n - 1) as f64 + per("reply");
        let protocol = 2 * n * (n - 1) + n;
        let (p50, max) = spread(&row.latencies);
        println!(
            "{:>3} {:>3} {:>8} {:>11.1} {:>13.1} {:>13} {:>8.3}s {:>8.3}s",
            row.n,
            (row.n - 1) / 3,
            row.batches,
            frames,
            deliveries,
            protocol,
            p50,
            max
        );
        figures.push(format!(
            "pbft_n{}_deliveries_per_batch={deliveries:.1}",
            row.n
        ));
        figures.push(format!("pbft_n{}_protocol_count={protocol}", row.n));
        figures.push(format!("pbft_n{}_final_p50_s={p50:.3}", row.n));
    }
    println!(
        "protocol: 2n(n-1) + n (n-1 pre-prepares, (n-1)^2 prepares, n(n-1) commits, n replies); a checkpoint every {CHECKPOINT_INTERVAL} batches adds n broadcasts"
    );
    if let Some((times, interval)) = pow {
        let (p50, max) = spread(&times);
        println!(
            "proof of work (2 nodes, 5 s target, once {POW_WARM} blocks came 0.8 of it apart): {FINAL_CONFIRMATIONS} confirmations after p50 {p50:.1} s, max {max:.1} s over {} transfers; blocks came every {interval:.1} s meanwhile",
            times.len()
        );
        figures.push(format!("pow_interval_s={interval:.1}"));
        figures.push(format!("pow_6conf_p50_s={p50:.1}"));
    }
    Ok(figures)
}

fn spread(xs: &[f64]) -> (f64, f64) {
    let mut v = xs.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    (
        v.get(v.len() / 2).copied().unwrap_or(0.0),
        v.last().copied().unwrap_or(0.0),
    )
}

/// Issue 34: four replicas, each payment timed to final, without and then
/// with a student flooding forged pBFT frames (in replica 2's name, signed
/// by the student's key) as fast as one client sends them.
pub async fn under_flood(txns: usize) -> Result<Vec<String>, String> {
    let mut rng = StdRng::seed_from_u64(3);
    let keys: Vec<Wallet> = (0..6)
        .map(|_| Wallet::generate(&mut rng).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    let (replicas, mint, student) = (&keys[..4], &keys[4], &keys[5]);
    eprintln!("pbft: n = 4, no flood...");
    let calm = one_size_with(4, replicas, mint, txns, None).await?;
    eprintln!("pbft: n = 4, a student flooding forged frames...");
    let flooded = one_size_with(4, replicas, mint, txns, Some((student, false))).await?;
    eprintln!("pbft: n = 4, a student flooding forged frames, each one new...");
    let fresh = one_size_with(4, replicas, mint, txns, Some((student, true))).await?;
    println!("\n== pbft under a flood of forged frames (n = 4, {txns} payments each) ==");
    println!(
        "{:<34} {:>10} {:>10} {:>16}",
        "", "final p50", "final max", "forged frames/s"
    );
    let mut figures = Vec::new();
    for (label, row, key) in [
        ("no flood", &calm, "calm"),
        ("256 forged frames, sent again", &flooded, "flood"),
        ("every forged frame new", &fresh, "fresh_flood"),
    ] {
        let (p50, max) = spread(&row.latencies);
        println!(
            "{label:<34} {p50:>9.3}s {max:>9.3}s {:>16.0}",
            row.flood_rate
        );
        figures.push(format!("pbft_{key}_final_p50_s={p50:.3}"));
        figures.push(format!("pbft_{key}_final_max_s={max:.3}"));
    }
    figures.push(format!("pbft_flood_frames_per_s={:.0}", flooded.flood_rate));
    figures.push(format!(
        "pbft_fresh_flood_frames_per_s={:.0}",
        fresh.flood_rate
    ));
    let worst = spread(&flooded.latencies).0.max(spread(&fresh.latencies).0);
    println!(
        "median payment final within 1 s under either flood: {}",
        if worst <= 1.0 { "yes" } else { "NO" }
    );
    Ok(figures)
}

async fn one_size(n: usize, keys: &[Wallet], mint: &Wallet, txns: usize) -> Result<Row, String> {
    one_size_with(n, keys, mint, txns, None).await
}

async fn one_size_with(
    n: usize,
    keys: &[Wallet],
    mint: &Wallet,
    txns: usize,
    flooder: Option<(&Wallet, bool)>,
) -> Result<Row, String> {
    let network = crate::programs::network_of(mint);
    let relay = quiet_relay(network.clone()).await?;
    let members = Arc::new(Membership::new(
        keys.iter()
            .enumerate()
            .map(|(i, k)| (format!("r{}", i + 1), k.address().clone()))
            .collect(),
    )?);
    let mut nodes = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let mut config = NodeConfig::new(relay.addr.to_string(), network.profile());
        config.name = members.name(i);
        config.pbft = Some(PbftConfig {
            members: members.clone(),
            wallet: key.clone(),
            view_timeout: Duration::from_secs(10),
        });
        nodes.push(spawn(config).0);
    }
    let mut client = RelayClient::connect(relay.addr, DEFAULT_TOPIC)
        .await
        .map_err(|e| e.to_string())?;
    // Let every replica subscribe before the first transaction.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let flooding = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let flood = match flooder {
        None => None,
        Some((student, fresh)) => {
            let forged: Vec<_> = (0..256u64)
                .map(|seq| {
                    SignedWire::sign(
                        student,
                        1,
                        toycoin_common::pbft::Msg::Prepare {
                            view: 0,
                            seq: seq + 1,
                            digest: "00".repeat(64),
                        },
                    )
                    .encode()
                })
                .collect();
            let mut publisher = RelayClient::connect(relay.addr, "/flood")
                .await
                .map_err(|e| e.to_string())?;
            let flooding = flooding.clone();
            // Each one new: the signature random bytes (costing the student
            // nothing), the sequence number counting up.
            let template = SignedWire::decode(&forged[0]).map_err(|e| e.to_string())?;
            Some(tokio::spawn(async move {
                let (start, mut sent) = (Instant::now(), 0usize);
                while flooding.load(std::sync::atomic::Ordering::Relaxed) {
                    let frame = if fresh {
                        let mut wire = template.clone();
                        wire.body = wire.body.replacen(
                            "\"seq\":1,",
                            &format!("\"seq\":{},", sent % 1000 + 1),
                            1,
                        );
                        // 344 base64 digits: as long as a real signature's.
                        let noise = rand::random::<[u8; 32]>();
                        wire.sig = noise
                            .iter()
                            .cycle()
                            .take(344)
                            .map(|b| char::from(b'A' + b % 26))
                            .collect();
                        wire.encode()
                    } else {
                        forged[sent % forged.len()].clone()
                    };
                    if publisher.publish(DEFAULT_TOPIC, &frame).await.is_err() {
                        break;
                    }
                    sent += 1;
                }
                sent as f64 / start.elapsed().as_secs_f64()
            }))
        }
    };
    let mut tally = Tally::new(Some(members.clone()));
    let mut frames: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut latencies = Vec::new();
    let mut rng = StdRng::seed_from_u64(n as u64);
    let mut last_seq = 0;
    for k in 0..txns {
        let grant = mint
            .grant(&mut rng, keys[0].address(), k as i64 + 1)
            .map_err(|e| e.to_string())?;
        let id = grant.hash();
        let sent = Instant::now();
        client
            .publish(DEFAULT_TOPIC, &encode_txn(&[], &grant))
            .await
            .map_err(|e| e.to_string())?;
        let mut final_at = None;
        let deadline = sent + Duration::from_secs(60);
        while final_at.is_none() {
            let frame = tokio::time::timeout_at(deadline, client.recv())
                .await
                .map_err(|_| format!("n = {n}: transaction {k} not final within 60 s"))?
                .map_err(|e| e.to_string())?
                .ok_or("the relay went away")?;
            if let Ok(Message::Txn(_)) = Message::decode(&frame) {
                continue;
            }
            count(&mut frames, &frame);
            if let Ok(Seen::Final { seq, txns, .. }) = tally.on_payload(&frame) {
                last_seq = last_seq.max(seq);
                if txns.contains(&id) {
                    final_at = Some(sent.elapsed().as_secs_f64());
                }
            }
        }
        latencies.extend(final_at);
    }
    flooding.store(false, std::sync::atomic::Ordering::Relaxed);
    let flood_rate = match flood {
        Some(task) => task.await.unwrap_or(0.0),
        None => 0.0,
    };
    // The late replies and votes of the last batch.
    let quiet = Duration::from_millis(500);
    while let Ok(Ok(Some(frame))) = tokio::time::timeout(quiet, client.recv()).await {
        count(&mut frames, &frame);
    }
    for node in nodes {
        node.stop().await;
    }
    relay.stop().await.map_err(|e| e.to_string())?;
    Ok(Row {
        n,
        batches: last_seq,
        frames,
        latencies,
        flood_rate,
    })
}

fn count(frames: &mut BTreeMap<&'static str, u64>, payload: &[u8]) {
    if let Ok((_, msg)) = SignedWire::decode(payload).and_then(|w| w.open()) {
        *frames.entry(msg.kind()).or_default() += 1;
    }
}

/// Proof of work: two mining nodes at the default target; once the
/// difficulty has had `POW_WARM` blocks to settle, `txns` grants are sent and
/// timed until each is buried under 6 blocks of the best chain.
/// Proof of work is timed once the last `POW_WARM` blocks came at least
/// 0.8 of the target apart on average: the difficulty has caught up
/// with the hash power.
const POW_WARM: usize = 8;

/// Seconds to 6 confirmations for each transfer, and the mean block
/// interval while they were timed.
async fn pow_to_final(txns: usize, mint: &Wallet) -> Result<(Vec<f64>, f64), String> {
    let network = crate::programs::network_of(mint);
    let relay = quiet_relay(network.clone()).await?;
    let profile = network.profile();
    let mut nodes = Vec::new();
    for i in 0..2 {
        let mut config = NodeConfig::new(relay.addr.to_string(), profile);
        config.name = format!("pow{}", i + 1);
        nodes.push(spawn(config).0);
    }
    let warm = POW_WARM;
    let target = profile.target_ms as f64 / 1e3;
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        let snap = nodes[0].snapshot().await.ok_or("node stopped")?;
        let stamps: Vec<u64> = snap
            .blocks
            .iter()
            .filter_map(|b| b.header.timestamp_secs())
            .collect();
        if stamps.len() > warm {
            let recent = &stamps[stamps.len() - warm - 1..];
            let mean = (recent[warm].saturating_sub(recent[0])) as f64 / warm as f64;
            if mean >= 0.8 * target {
                break;
            }
        }
        if Instant::now() > deadline {
            return Err("proof of work: blocks never came at the target in 15 minutes".into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut client = RelayClient::connect(relay.addr, DEFAULT_TOPIC)
        .await
        .map_err(|e| e.to_string())?;
    let mut rng = StdRng::seed_from_u64(5);
    let mut pending = Vec::new();
    for k in 0..txns {
        let grant = mint
            .grant(&mut rng, mint.address(), k as i64 + 1)
            .map_err(|e| e.to_string())?;
        client
            .publish(DEFAULT_TOPIC, &encode_txn(&[], &grant))
            .await
            .map_err(|e| e.to_string())?;
        pending.push((grant.hash(), Instant::now()));
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let mut times = Vec::new();
    let (start_height, started) = (
        nodes[0]
            .snapshot()
            .await
            .ok_or("node stopped")?
            .blocks
            .len(),
        Instant::now(),
    );
    while !pending.is_empty() {
        if Instant::now() > deadline {
            return Err("proof of work: not final within 10 minutes".into());
        }
        let snap = nodes[0].snapshot().await.ok_or("node stopped")?;
        let height = snap.blocks.len();
        pending.retain(|(id, sent)| {
            let at = snap
                .blocks
                .iter()
                .position(|b| b.txns.iter().any(|t| t.hash() == *id));
            match at {
                Some(h) if height - h >= FINAL_CONFIRMATIONS => {
                    times.push(sent.elapsed().as_secs_f64());
                    false
                }
                _ => true,
            }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(client);
    let mined = nodes[0]
        .snapshot()
        .await
        .ok_or("node stopped")?
        .blocks
        .len()
        - start_height;
    let interval = started.elapsed().as_secs_f64() / mined.max(1) as f64;
    for node in nodes {
        node.stop().await;
    }
    relay.stop().await.map_err(|e| e.to_string())?;
    Ok((times, interval))
}
