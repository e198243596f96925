//! `pace`: a network under a class's load. One node (the `toycoin-node`
//! built beside this program) from a cold start, a second one joining
//! after `join` seconds, and an oracle sending `rate` transfers a second
//! between 60 wallets, for `secs` seconds, on an in-process relay. Prints
//! the transfers sent and confirmed and the backlog every 10 s; the best
//! chain's required bits and mean block interval per 8 blocks; and after
//! how many blocks the intervals came within ±50% of the target, from the
//! cold start and from the join.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;
use toycoin_common::chain::now_secs;
use toycoin_common::message::Message;
use toycoin_common::profile::Profile;
use toycoin_common::relay::{RelayClient, DEFAULT_TOPIC};
use toycoin_common::tree::BlockTree;

use crate::programs::{quiet_relay, sibling, start_on};

/// Times (since the start) at which the oracle printed a line starting so.
type Marks = Arc<Mutex<Vec<(String, f64)>>>;

/// Starts `program` on the relay at `port`, noting its lines in `marks`.
fn start(
    program: &std::path::Path,
    port: u16,
    args: &[String],
    marks: Option<(Marks, Instant)>,
) -> Result<Child, String> {
    let mut child = start_on(program, port, args, Stdio::piped(), Stdio::null())?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some((marks, t0)) = &marks {
                if let Ok(mut m) = marks.lock() {
                    m.push((line, t0.elapsed().as_secs_f64()));
                }
            }
        }
    });
    Ok(child)
}

fn node_args(dir: &std::path::Path, i: usize) -> Vec<String> {
    vec![
        "-q".to_owned(),
        "--name".to_owned(),
        format!("node{i}"),
        "--wallet".to_owned(),
        dir.join(format!("n{i}.pem")).display().to_string(),
    ]
}

/// Blocks per window of the interval table and of the settling figure.
const WINDOW: usize = 8;

/// After how many of `intervals` two windows in a row first average
/// within ±50% of `target` (seconds).
fn settled_after(intervals: &[f64], target: f64) -> Option<usize> {
    let within = |w: &[f64]| {
        let mean = w.iter().sum::<f64>() / w.len() as f64;
        (0.5 * target..=1.5 * target).contains(&mean)
    };
    (0..intervals.len().saturating_sub(2 * WINDOW - 1)).find(|&i| {
        within(&intervals[i..i + WINDOW]) && within(&intervals[i + WINDOW..i + 2 * WINDOW])
    })
}

pub async fn run(secs: u64, rate: f64, join: u64) -> Result<Vec<String>, String> {
    let (node_bin, oracle_bin) = (sibling("toycoin-node")?, sibling("toycoin-oracle")?);
    let dir = std::env::temp_dir().join(format!("toycoin-pace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let (mint, _) = toycoin_common::wallet::Wallet::load_or_create(&dir.join("mint.pem"))
        .map_err(|e| e.to_string())?;
    let network = crate::programs::network_of(&mint);
    let relay = quiet_relay(network.clone()).await?;
    let port = relay.addr.port();
    let t0 = Instant::now();
    let mut children = vec![start(&node_bin, port, &node_args(&dir, 1), None)?];
    let marks: Marks = Arc::new(Mutex::new(Vec::new()));
    let (lo, hi) = (0.5 / rate, 1.5 / rate);
    let oracle_args: Vec<String> = [
        "--wallets",
        "60",
        "--min-interval",
        &format!("{lo:.4}"),
        "--max-interval",
        &format!("{hi:.4}"),
        "--mint-key",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([dir.join("mint.pem").display().to_string()])
    .collect();
    children.push(start(
        &oracle_bin,
        port,
        &oracle_args,
        Some((marks.clone(), t0)),
    )?);
    // The best chain, as a listener sees it.
    let mut watcher = RelayClient::connect(relay.addr, DEFAULT_TOPIC)
        .await
        .map_err(|e| e.to_string())?;
    let mut tree = BlockTree::new(network.profile());
    let end = tokio::time::Instant::now() + Duration::from_secs(secs);
    let join_at = tokio::time::Instant::now() + Duration::from_secs(join);
    let mut joined_secs = None;
    loop {
        let next = if joined_secs.is_none() {
            join_at.min(end)
        } else {
            end
        };
        match tokio::time::timeout_at(next, watcher.recv()).await {
            Ok(Ok(Some(frame))) => {
                if let Ok(Message::Bloc(blocks)) = Message::decode(&frame) {
                    let _ = tree.receive(blocks, now_secs());
                }
            }
            Ok(_) => break,
            Err(_) if joined_secs.is_none() && next < end => {
                children.push(start(&node_bin, port, &node_args(&dir, 2), None)?);
                joined_secs = Some(now_secs());
            }
            Err(_) => break,
        }
    }
    for mut child in children {
        let _ = child.kill().await;
    }
    relay.stop().await.map_err(|e| e.to_string())?;
    let _ = std::fs::remove_dir_all(&dir);

    let marks = marks.lock().map_err(|e| e.to_string())?.clone();
    let times = |prefix: &str| -> Vec<f64> {
        marks
            .iter()
            .filter(|(l, _)| l.starts_with(prefix))
            .map(|(_, t)| *t)
            .collect()
    };
    let (sent, confirmed) = (times("Sending from"), times("Confirmed: transfer"));
    println!(
        "\n== pace: one node, a second from {join} s, an oracle offering {rate}/s, {secs} s =="
    );
    println!(
        "{:>6} {:>10} {:>10} {:>10}",
        "at s", "sent", "confirmed", "backlog"
    );
    let mut figures = Vec::new();
    for at in (10..=secs).step_by(10) {
        let upto = |v: &[f64]| v.iter().filter(|&&t| t <= at as f64).count();
        let (s, c) = (upto(&sent), upto(&confirmed));
        println!("{at:>6} {s:>10} {c:>10} {:>10}", s - c.min(s));
        figures.push(format!("pace_backlog_{at}s={}", s - c.min(s)));
    }
    let half = secs as f64 / 2.0;
    let late = |v: &[f64]| v.iter().filter(|&&t| t > half).count() as f64 / half;
    println!(
        "second half: {:.2} transfers/s offered, {:.2} confirmed",
        late(&sent),
        late(&confirmed)
    );
    figures.push(format!("pace_offered_per_s={:.2}", late(&sent)));
    figures.push(format!("pace_confirmed_per_s={:.2}", late(&confirmed)));
    let entries = tree.chain().entries();
    let stamps: Vec<u64> = entries
        .iter()
        .filter_map(|e| e.header.timestamp_secs())
        .collect();
    let intervals: Vec<f64> = stamps
        .windows(2)
        .map(|w| w[1].saturating_sub(w[0]) as f64)
        .collect();
    // The first block stamped after the second node started.
    let joined = joined_secs.and_then(|j| stamps.iter().position(|&t| t > j));
    println!("{:>8} {:>6} {:>18}", "blocks", "bits", "mean interval s");
    for (k, w) in intervals.chunks(WINDOW).enumerate() {
        let (from, to) = (k * WINDOW + 1, k * WINDOW + w.len());
        let mark = match joined {
            Some(j) if (from..=to).contains(&j) => "  <- node2 joins",
            _ => "",
        };
        println!(
            "{:>8} {:>6} {:>18.2}{mark}",
            format!("{from}-{to}"),
            entries[from].required_bits,
            w.iter().sum::<f64>() / w.len() as f64
        );
    }
    let target = Profile::steady(5.0).target_ms as f64 / 1000.0;
    let show = |n: Option<usize>| n.map_or("never".to_owned(), |n| n.to_string());
    let cold = settled_after(
        &intervals[..joined.unwrap_or(intervals.len()).min(intervals.len())],
        target,
    );
    let after_join = joined.and_then(|j| settled_after(intervals.get(j..)?, target));
    println!(
        "intervals within ±50% of {target} s (two {WINDOW}-block windows in a row) after: {} blocks from the cold start, {} blocks from the join",
        show(cold),
        show(after_join)
    );
    figures.push(format!("pace_blocks={}", entries.len()));
    figures.push(format!("pace_cold_settled_after_blocks={}", show(cold)));
    figures.push(format!(
        "pace_join_settled_after_blocks={}",
        show(after_join)
    ));
    Ok(figures)
}

/// Issue 32's timewarp, on real programs: one node mining at 1 MH/s (the
/// `toycoin-node` built beside this program), then, at `warp` seconds, an
/// attacker in this process on one uncapped thread (about four times the
/// node in a release build) mining 20 blocks on its own tip, each stamped
/// 590 s ahead, as fast as it can; then the node alone again until `secs`.
/// Prints the best chain's bits and the intervals between tips as a
/// listener saw them arrive (timestamps lie here), and returns the bits
/// before and at most after the warp and the longest interval after it.
pub async fn timewarp(secs: u64, warp: u64) -> Result<Vec<String>, String> {
    let node_bin = sibling("toycoin-node")?;
    let dir = std::env::temp_dir().join(format!("toycoin-timewarp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let (mint, _) = toycoin_common::wallet::Wallet::load_or_create(&dir.join("mint.pem"))
        .map_err(|e| e.to_string())?;
    let network = crate::programs::network_of(&mint);
    let relay = quiet_relay(network.clone()).await?;
    let mut args = node_args(&dir, 1);
    args.extend(["--max-hash-rate".to_owned(), "1M".to_owned()]);
    let mut node = start(&node_bin, relay.addr.port(), &args, None)?;
    let mut watcher = RelayClient::connect(relay.addr, DEFAULT_TOPIC)
        .await
        .map_err(|e| e.to_string())?;
    let mut attacker = Some(
        RelayClient::connect(relay.addr, DEFAULT_TOPIC)
            .await
            .map_err(|e| e.to_string())?,
    );
    let mut tree = BlockTree::new(network.profile());
    let t0 = tokio::time::Instant::now();
    let end = t0 + Duration::from_secs(secs);
    let warp_at = t0 + Duration::from_secs(warp);
    // (seconds since the start, height, bits) of each new best tip.
    let mut tips: Vec<(f64, usize, u32)> = Vec::new();
    let mut warped: Option<(f64, u32)> = None;
    let mut forging: Option<tokio::task::JoinHandle<usize>> = None;
    loop {
        let wake = if warped.is_none() {
            warp_at.min(end)
        } else {
            end
        };
        match tokio::time::timeout_at(wake, watcher.recv()).await {
            Ok(Ok(Some(frame))) => {
                if let Ok(Message::Bloc(blocks)) = Message::decode(&frame) {
                    let before = tree.chain().tip_hash();
                    let _ = tree.receive(blocks, now_secs() + 600);
                    if tree.chain().tip_hash() != before {
                        let entries = tree.chain().entries();
                        let at = t0.elapsed().as_secs_f64();
                        tips.push((
                            at,
                            entries.len() - 1,
                            entries[entries.len() - 1].required_bits,
                        ));
                    }
                }
            }
            Ok(_) => break,
            Err(_) if warped.is_none() && wake < end => {
                let chain = tree.chain().clone();
                warped = Some((t0.elapsed().as_secs_f64(), chain.next_required_bits()));
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
                std::thread::spawn(move || {
                    let mut chain = chain;
                    let me = toycoin_common::address::example(b"timewarp");
                    for _ in 0..20 {
                        let Some(block) = chain.mine_next(&me, Vec::new(), now_secs() + 590) else {
                            return;
                        };
                        if chain.push(block.clone(), now_secs() + 600).is_err()
                            || tx.send(block).is_err()
                        {
                            return;
                        }
                    }
                });
                let mut attacker = attacker.take().ok_or("one warp only")?;
                forging = Some(tokio::spawn(async move {
                    let mut sent = 0;
                    while let Some(block) = rx.recv().await {
                        let frame = toycoin_common::message::encode_bloc(&[block]);
                        if attacker.publish(DEFAULT_TOPIC, &frame).await.is_err() {
                            break;
                        }
                        sent += 1;
                    }
                    sent
                }));
            }
            Err(_) => break,
        }
    }
    let forged = match forging {
        Some(task) => task.await.unwrap_or(0),
        None => 0,
    };
    let _ = node.kill().await;
    relay.stop().await.map_err(|e| e.to_string())?;
    let _ = std::fs::remove_dir_all(&dir);
    let Some((warp_secs, bits_before)) = warped else {
        return Err("the run ended before the warp".into());
    };
    println!(
        "\n== pace --timewarp: a node at 1 MH/s; at {warp_secs:.0} s an attacker on one thread mines {forged} blocks stamped 590 s ahead; {secs} s =="
    );
    println!(
        "{:>8} {:>8} {:>6} {:>12}",
        "at s", "height", "bits", "interval s"
    );
    let mut longest: f64 = 0.0;
    let mut most_bits = bits_before;
    for (k, &(at, height, bits)) in tips.iter().enumerate() {
        let interval = k.checked_sub(1).map_or(0.0, |j| at - tips[j].0);
        if at >= warp_secs {
            longest = longest.max(interval);
            most_bits = most_bits.max(bits);
        }
        println!("{at:>8.1} {height:>8} {bits:>6} {interval:>12.1}");
    }
    println!(
        "bits before the warp {bits_before}, at most {most_bits} after it; longest interval after it {longest:.1} s"
    );
    Ok(vec![
        format!("timewarp_forged_blocks={forged}"),
        format!("timewarp_bits_before={bits_before}"),
        format!("timewarp_bits_max_after={most_bits}"),
        format!("timewarp_longest_interval_s={longest:.1}"),
    ])
}
