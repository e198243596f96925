//! The pow suite: our miner's hash rate with 1 and 2 threads (and with 1
//! thread one nonce at a time, without the vector lanes), next to the
//! raw SHA-512 speed of this machine on an input of the header's size and
//! to `openssl speed`'s one-stream SHA-512 compression rate (issue 39's
//! anchor: the miner does one 128-byte compression per attempt), measured
//! one after the other in one run.

use std::hint::black_box;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha512};
use toycoin_common::hash::{Hash, Txid, GENESIS};
use toycoin_common::merkle::merkle_root;
use toycoin_common::pow::{CancelToken, Miner, MiningJob};
use toycoin_common::sha512_lanes::{self, LANES};

/// Runs the suite for `secs` per measure; prints a table, returns figures.
pub fn run(secs: f64) -> Vec<String> {
    let run_for = Duration::from_secs_f64(secs.max(0.1));
    // An unreachable target: the miner hashes until cancelled.
    let job = MiningJob {
        timestamp: 1_795_247_465,
        previous_hash: *GENESIS,
        merkle_root: merkle_root(&[Txid(Hash::of(b"txn"))]).expect("one leaf"),
        required_bits: 512,
    };
    // timestamp + previous_hash + nonce (70 digits) + merkle_root
    let header_len = 10 + 64 + 70 + 65;
    let raw = raw_sha512(header_len, run_for);
    let stream = miner_rate(Miner::new(1).lanes(false), &job, run_for);
    let one = miner_rate(Miner::new(1), &job, run_for);
    let two = miner_rate(Miner::new(2), &job, run_for);
    let openssl = openssl_sha512_blocks(secs);

    println!("\n== pow: hashes per second ==");
    println!("{:<40} {:>14}", "measure", "hashes/s");
    println!(
        "{:<40} {:>14.0}",
        format!("raw SHA-512 of {header_len} bytes, 1 thread"),
        raw
    );
    println!(
        "{:<40} {:>14.0}",
        "miner, 1 thread, one nonce at a time", stream
    );
    println!(
        "{:<40} {:>14.0}",
        format!(
            "miner, 1 thread, {}",
            if sha512_lanes::worth_it() {
                format!("{LANES} lanes")
            } else {
                "(no vector lanes here)".to_owned()
            }
        ),
        one
    );
    println!("{:<40} {:>14.0}", "miner, 2 threads", two);
    if let Some(blocks) = openssl {
        println!(
            "{:<40} {:>14.0}",
            "openssl speed sha512, 128-byte blocks/s", blocks
        );
    }
    println!(
        "miner 1 thread / raw = {:.2}; lanes / one at a time = {:.2}; 2 threads / 1 thread = {:.2} (goal >= 1.80)",
        one / raw,
        one / stream,
        two / one
    );
    let mut figures = vec![
        format!("pow_raw_hps={raw:.0}"),
        format!("pow_1t_stream_hps={stream:.0}"),
        format!("pow_lanes_vs_stream={:.2}", one / stream),
        format!("pow_1t_hps={one:.0}"),
        format!("pow_2t_hps={two:.0}"),
        format!("pow_1t_vs_raw={:.2}", one / raw),
        format!("pow_2t_vs_1t={:.2}", two / one),
    ];
    match openssl {
        Some(blocks) => {
            println!(
                "miner 1 thread / openssl's compressions = {:.2} (goal >= 0.90; one at a time {:.2})",
                one / blocks,
                stream / blocks
            );
            figures.push(format!("pow_openssl_blocks_per_s={blocks:.0}"));
            figures.push(format!("pow_1t_vs_openssl={:.2}", one / blocks));
            figures.push(format!("pow_1t_stream_vs_openssl={:.2}", stream / blocks));
        }
        None => println!("openssl: not run (no `openssl` here)"),
    }
    figures
}

/// `openssl speed`'s SHA-512 rate on 16 KiB buffers, one stream, in
/// 128-byte compressions a second (`None` without `openssl`).
fn openssl_sha512_blocks(secs: f64) -> Option<f64> {
    let out = std::process::Command::new("openssl")
        .args(["speed", "-bytes", "16384", "-seconds"])
        .arg(format!("{}", secs.ceil().max(1.0) as u64))
        .arg("sha512")
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let kilobytes: f64 = text
        .lines()
        .find(|l| l.trim_start().starts_with("sha512"))?
        .split_whitespace()
        .last()?
        .trim_end_matches('k')
        .parse()
        .ok()?;
    Some(kilobytes * 1000.0 / 128.0)
}

/// Plain `Sha512::digest` of a header-sized buffer whose last bytes change.
fn raw_sha512(len: usize, run_for: Duration) -> f64 {
    let mut input = vec![b'7'; len];
    let start = Instant::now();
    let mut count: u64 = 0;
    while start.elapsed() < run_for {
        for i in 0..4096u64 {
            input[len - 8..].copy_from_slice(&i.to_le_bytes());
            black_box(Sha512::digest(black_box(&input)));
        }
        count += 4096;
    }
    count as f64 / start.elapsed().as_secs_f64()
}

fn miner_rate(miner: Miner, job: &MiningJob, run_for: Duration) -> f64 {
    let cancel = CancelToken::new();
    let stopper = {
        let cancel = cancel.clone();
        std::thread::spawn(move || {
            std::thread::sleep(run_for);
            cancel.cancel();
        })
    };
    let report = miner.mine(job, &cancel);
    let _ = stopper.join();
    report.hash_rate()
}
