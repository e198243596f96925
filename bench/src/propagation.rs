//! The propagation suite: what announcing one new block costs on chains of
//! growing length, as the original announces (the whole chain in a BLOC)
//! and as the steady profile does (the new block alone): bytes sent, and the
//! time the receiving node takes to decode the frame and accept the block.
//!
//! Both are measured with the same node code on the same chain. The chain is
//! built under steady difficulty: under the original's difficulty a chain
//! past a dozen blocks cannot be mined in reasonable time, and what the
//! receiver does (decode, skip the blocks it has, check the new one) does
//! not depend on the difficulty.

use std::time::Instant;

use toycoin_common::chain::now_secs;
use toycoin_common::message::{encode_bloc, Message};
use toycoin_common::profile::Profile;
use toycoin_common::tree::{BlockTree, Received};

use crate::chains::coinbase_chain;

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Runs the suite for chains of `sizes` blocks; prints a table, returns
/// figures.
pub fn run(sizes: &[usize], rounds: usize) -> Vec<String> {
    let profile = Profile::steady(5.0);
    let longest = sizes.iter().copied().max().unwrap_or(10);
    let rounds = rounds.max(1);
    eprintln!(
        "propagation: mining a chain of {} blocks...",
        longest + rounds
    );
    let (_, blocks) = coinbase_chain(profile, longest + rounds);

    println!("\n== propagation: announcing block N+1 to a node that has N ==");
    println!(
        "{:>8} {:<28} {:>14} {:>14}",
        "N", "announcement", "bytes sent", "accept ms"
    );
    let mut figures = Vec::new();
    let mut first: Option<(f64, f64, f64, f64)> = None;
    let mut last = (0.0, 0.0, 0.0, 0.0);
    for &n in sizes {
        // Two nodes holding N blocks; each round announces the next block
        // to both, one way each (a node that grows, as a real one does:
        // cloning a node per round would make every insert rehash).
        let mut whole_node = BlockTree::new(profile);
        whole_node
            .receive(blocks[..n].to_vec(), now_secs())
            .expect("valid chain");
        let mut single_node = whole_node.clone();
        let mut whole_times = Vec::new();
        let mut single_times = Vec::new();
        let (mut whole_bytes, mut single_bytes) = (0, 0);
        for r in 0..rounds {
            let whole = encode_bloc(&blocks[..=n + r]);
            let single = encode_bloc(&blocks[n + r..=n + r]);
            if r == 0 {
                (whole_bytes, single_bytes) = (whole.len(), single.len());
            }
            for (node, payload, times) in [
                (&mut whole_node, &whole, &mut whole_times),
                (&mut single_node, &single, &mut single_times),
            ] {
                let start = Instant::now();
                let Ok(Message::Bloc(got)) = Message::decode(payload) else {
                    unreachable!("we encoded it")
                };
                let result = node.receive(got, now_secs());
                times.push(start.elapsed().as_secs_f64() * 1e3);
                assert!(matches!(result, Ok(Received::Adopted(_))));
            }
        }
        let mut row = Vec::new();
        for (label, bytes, times) in [
            ("whole chain (toycoin)", whole_bytes, whole_times),
            ("new block only (steady)", single_bytes, single_times),
        ] {
            let ms = median(times);
            println!("{n:>8} {label:<28} {bytes:>14} {ms:>14.3}");
            row.push((bytes as f64, ms));
        }
        figures.push(format!("prop_toycoin_bytes_{n}={}", row[0].0));
        figures.push(format!("prop_toycoin_ms_{n}={:.3}", row[0].1));
        figures.push(format!("prop_steady_bytes_{n}={}", row[1].0));
        figures.push(format!("prop_steady_ms_{n}={:.3}", row[1].1));
        let this = (row[0].0, row[0].1, row[1].0, row[1].1);
        first.get_or_insert(this);
        last = this;
    }
    if let (Some(f), Some(&small), Some(&big)) = (first, sizes.first(), sizes.last()) {
        println!(
            "from N={small} to N={big}: toycoin bytes x{:.0}, accept time x{:.0}; steady bytes x{:.2}, accept time x{:.2} (goal: flat)",
            last.0 / f.0,
            last.1 / f.1,
            last.2 / f.2,
            last.3 / f.3
        );
        figures.push(format!("prop_steady_bytes_growth={:.2}", last.2 / f.2));
        figures.push(format!("prop_steady_ms_growth={:.2}", last.3 / f.3));
        figures.push(format!("prop_toycoin_bytes_growth={:.0}", last.0 / f.0));
        figures.push(format!("prop_toycoin_ms_growth={:.0}", last.1 / f.1));
    }
    figures
}
