//! `soak`: a class for a lesson's length. The relay, `nodes` mining nodes
//! (capped hash rates), `listeners` listeners and an oracle making a
//! transfer every 0.2–0.5 s, each its own process, run for `minutes`; each
//! one's resident memory (`VmRSS`) is read every 10 s. Memory is flat when
//! the most a program holds in the last fifth of the run is within 10% of
//! what it held at the end of the first fifth (minute 10 of 50): the chain
//! grows, but nothing that grows with the lesson's length may.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::Child;
use toycoin_common::wallet::Wallet;

use crate::programs::sibling;

/// How often memory is read.
const SAMPLE: Duration = Duration::from_secs(10);
/// Growth allowed between the reference and the last fifth.
const FLAT: f64 = 0.10;

/// Resident memory of process `pid` now, in bytes (Linux).
fn rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

struct Watched {
    label: String,
    child: Child,
    /// (seconds since start, bytes)
    samples: Vec<(f64, u64)>,
}

fn start(program: &Path, args: &[String]) -> Result<Child, String> {
    tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", program.display()))
}

async fn wait_ready(path: &Path) -> Result<std::net::SocketAddr, String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(Some(ready)) = toycoin_common::ready::read(path) {
            return Ok(ready.addr);
        }
        if Instant::now() > deadline {
            return Err("the relay did not start".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn run(minutes: f64, nodes: usize, listeners: usize) -> Result<Vec<String>, String> {
    let run_for = Duration::from_secs_f64(minutes * 60.0);
    println!(
        "\n== soak: a class of {nodes} nodes, {listeners} listeners and a busy oracle for {minutes} min =="
    );
    let dir: PathBuf = std::env::temp_dir().join(format!("toycoin-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let mint = Wallet::generate(&mut rand::thread_rng()).map_err(|e| e.to_string())?;
    let mint_file = dir.join("mint.pem");
    std::fs::write(&mint_file, mint.to_pem().map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let network_file = dir.join("network.json");
    crate::programs::network_of(&mint).save(&network_file)?;
    let network = network_file.display().to_string();
    let ready = dir.join("relay.ready");

    let mut watched = Vec::new();
    let relay = start(
        &sibling("toycoin-relay")?,
        &[
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--network",
            &network,
            "--ready-file",
            &ready.display().to_string(),
            "--no-control",
            "--quiet",
        ]
        .map(str::to_owned),
    )?;
    watched.push(Watched {
        label: "relay".into(),
        child: relay,
        samples: Vec::new(),
    });
    let port = wait_ready(&ready).await?.port().to_string();
    let on_relay = |extra: &[String]| {
        let mut args: Vec<String> = [
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--network",
            &network,
        ]
        .map(str::to_owned)
        .to_vec();
        args.extend_from_slice(extra);
        args.push("--quiet".into());
        args
    };
    for i in 1..=nodes {
        let args = on_relay(&[
            "--name".into(),
            format!("node{i}"),
            "--wallet".into(),
            dir.join(format!("node{i}.pem")).display().to_string(),
            "--max-hash-rate".into(),
            "100000".into(),
        ]);
        watched.push(Watched {
            label: format!("node{i}"),
            child: start(&sibling("toycoin-node")?, &args)?,
            samples: Vec::new(),
        });
    }
    for i in 1..=listeners {
        watched.push(Watched {
            label: format!("listener{i}"),
            child: start(&sibling("toycoin-listener")?, &on_relay(&[]))?,
            samples: Vec::new(),
        });
    }
    let oracle = on_relay(&[
        "--mint-key".into(),
        mint_file.display().to_string(),
        "--wallet-keys".into(),
        dir.join("wallets").display().to_string(),
        "--min-interval".into(),
        "0.2".into(),
        "--max-interval".into(),
        "0.5".into(),
    ]);
    watched.push(Watched {
        label: "oracle".into(),
        child: start(&sibling("toycoin-oracle")?, &oracle)?,
        samples: Vec::new(),
    });

    let start_at = Instant::now();
    while start_at.elapsed() < run_for {
        tokio::time::sleep(SAMPLE.min(run_for.saturating_sub(start_at.elapsed()))).await;
        let at = start_at.elapsed().as_secs_f64();
        for w in &mut watched {
            if let Ok(Some(status)) = w.child.try_wait() {
                return Err(format!("{} exited early: {status}", w.label));
            }
            if let Some(bytes) = w.child.id().and_then(rss) {
                w.samples.push((at, bytes));
            }
        }
        eprintln!(
            "soak: {:.1} of {minutes} min; oracle {:.1} MiB, node1 {:.1} MiB, relay {:.1} MiB",
            at / 60.0,
            last_mib(&watched, "oracle"),
            last_mib(&watched, "node1"),
            last_mib(&watched, "relay")
        );
    }
    for w in &mut watched {
        let _ = w.child.start_kill();
    }

    let total = run_for.as_secs_f64();
    let (reference_at, last_from) = (total * 0.2, total * 0.8);
    println!(
        "{:<12} {:>10} {:>14} {:>10}  (MiB; reference at {:.1} min, last fifth from {:.1} min)",
        "program",
        "reference",
        "last fifth max",
        "growth",
        reference_at / 60.0,
        last_from / 60.0
    );
    let mut figures = Vec::new();
    let mut worst_listener: Option<(f64, String)> = None;
    let mut all_flat = true;
    for w in &watched {
        let reference = w
            .samples
            .iter()
            .rev()
            .find(|(t, _)| *t <= reference_at)
            .or(w.samples.first())
            .map(|&(_, b)| b as f64);
        let last = w
            .samples
            .iter()
            .filter(|(t, _)| *t >= last_from)
            .map(|&(_, b)| b as f64)
            .fold(None, |m: Option<f64>, b| Some(m.map_or(b, |m| m.max(b))));
        let (Some(reference), Some(last)) = (reference, last) else {
            continue;
        };
        let growth = last / reference - 1.0;
        all_flat &= growth <= FLAT;
        let row = format!(
            "{:<12} {:>10.1} {:>14.1} {:>9.1}%",
            w.label,
            reference / 1048576.0,
            last / 1048576.0,
            growth * 100.0
        );
        if w.label.starts_with("listener") {
            if !worst_listener.as_ref().is_some_and(|(g, _)| growth <= *g) {
                worst_listener = Some((growth, row));
            }
            continue;
        }
        println!("{row}");
        figures.push(format!("soak_{}_growth_pct={:.1}", w.label, growth * 100.0));
        figures.push(format!("soak_{}_mib={:.1}", w.label, last / 1048576.0));
    }
    if let Some((growth, row)) = worst_listener {
        println!("{row}   (the most of the {listeners} listeners)");
        figures.push(format!(
            "soak_listener_max_growth_pct={:.1}",
            growth * 100.0
        ));
    }
    println!(
        "memory {} (goal: every program's last fifth within {:.0}% of its reference)",
        if all_flat { "flat" } else { "NOT flat" },
        FLAT * 100.0
    );
    figures.push(format!("soak_minutes={minutes}"));
    let _ = std::fs::remove_dir_all(&dir);
    Ok(figures)
}

fn last_mib(watched: &[Watched], label: &str) -> f64 {
    watched
        .iter()
        .find(|w| w.label == label)
        .and_then(|w| w.samples.last())
        .map_or(0.0, |&(_, b)| b as f64 / 1048576.0)
}
