//! The validation suite: signed transactions checked per second (every
//! rule, both RSA-PSS signatures included), and full blocks of such
//! transactions (the reward and 9 transfers) accepted per second, their
//! signatures verified on one thread and on every core: block by block,
//! and a run of blocks at once as a node catching up takes them.

use std::time::Instant;

use rand::rngs::StdRng;
use rand::SeedableRng;
use toycoin_common::block::MAX_BLOCK_TXNS;
use toycoin_common::chain::{now_secs, Chain};
use toycoin_common::message::TxnMessage;
use toycoin_common::signatures::{check_signatures, reset_signature_cache, set_signature_threads};
use toycoin_common::transaction::OutputKind;
use toycoin_common::wallet::{self, Wallet};

use crate::chains::extend;

/// Transfers in a full steady block, after its reward.
const PER_BLOCK: usize = MAX_BLOCK_TXNS - 1;

/// Runs the suite on `txns` transfers (rounded to whole blocks); prints a
/// table, returns figures.
pub fn run(txns: usize) -> Vec<String> {
    let blocks = txns.div_ceil(PER_BLOCK).max(1);
    let txns = blocks * PER_BLOCK;
    let mut rng = StdRng::seed_from_u64(1);
    let mint = Wallet::generate(&mut rng).expect("key");
    let profile = crate::programs::network_of(&mint).profile();
    let payer = Wallet::generate(&mut rng).expect("key");
    let payee = Wallet::generate(&mut rng).expect("key");
    eprintln!("validation: granting {txns} outputs and signing {txns} transfers...");
    let mut chain = Chain::new(profile);
    let funding = extend(&mut chain, blocks, blocks, |b| {
        (0..PER_BLOCK)
            .map(|i| {
                let value = (b * PER_BLOCK + i + 1) as i64;
                mint.grant(&mut rng, payer.address(), value).expect("signs")
            })
            .collect()
    });
    let transfers: Vec<TxnMessage> = funding
        .iter()
        .flat_map(|b| &b.txns)
        .filter(|t| !t.is_coinbase())
        .map(|f| {
            let token = f.output(f.hash(), OutputKind::Receiver);
            let value = token.value;
            payer
                .transfer(
                    &mut rng,
                    payee.address(),
                    value,
                    vec![token],
                    profile.signing(),
                )
                .expect("enough")
        })
        .collect();

    // The figures below time the checks themselves: the signature cache
    // (which spares a block's transactions seen in the pool) off.
    reset_signature_cache(false);
    // Transactions alone, as a node checks a TXN.
    let ledger = chain.ledger();
    let start = Instant::now();
    for m in &transfers {
        ledger.check(&m.txn, Some(&m.tokens)).expect("valid");
    }
    let txn_rate = transfers.len() as f64 / start.elapsed().as_secs_f64();

    // The signatures alone, side by side: the library's raw verify with a
    // parsed key, parsing an address into a key, and a transfer's two
    // signatures as the ledger checks them (key parsed, both verified).
    let rate = |f: &dyn Fn(&TxnMessage)| {
        let start = Instant::now();
        for m in &transfers {
            f(m);
        }
        transfers.len() as f64 / start.elapsed().as_secs_f64()
    };
    let signing = profile.signing();
    let parsed = wallet::public_key(payer.address()).expect("a key");
    let raw_rate = 2.0
        * rate(&|m| {
            let msg = m.txn.signed_message(signing, OutputKind::Receiver);
            wallet::verify_with(&parsed, &msg, &m.txn.receiver_signature).expect("valid");
            let msg = m.txn.signed_message(signing, OutputKind::Change);
            wallet::verify_with(&parsed, &msg, &m.txn.sender_signature).expect("valid");
        });
    let parse_rate = rate(&|m| {
        wallet::public_key(&m.txn.sender).expect("a key");
    });
    let sigs_rate = rate(&|m| {
        check_signatures(&m.txn, signing).expect("valid");
    });

    // Whole blocks, as a node accepts a peer's block.
    let mut spender = chain.clone();
    let mut next = transfers.iter();
    let spend_blocks = extend(&mut spender, blocks, 0, |_| {
        next.by_ref()
            .take(PER_BLOCK)
            .map(|m| m.txn.clone())
            .collect()
    });
    // On one signature thread, then on as many as the machine has (each
    // block's signatures verified in parallel, its ledger applied in order).
    let accept = |threads: usize| {
        set_signature_threads(threads);
        let mut receiver = chain.clone();
        let start = Instant::now();
        for block in &spend_blocks {
            receiver.push(block.clone(), now_secs()).expect("valid");
        }
        blocks as f64 / start.elapsed().as_secs_f64()
    };
    // The machine is noisy: seven rounds, one thread and all cores side
    // by side in each, the best of each kept.
    // Then all at once, as a node takes a branch or catches up
    // (`Chain::extend`): the helpers verify ahead of the block in hand.
    let catch_up = |threads: usize| {
        set_signature_threads(threads);
        let mut receiver = chain.clone();
        let start = Instant::now();
        receiver.extend(&spend_blocks, now_secs()).expect("valid");
        blocks as f64 / start.elapsed().as_secs_f64()
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (mut block_rate, mut parallel_rate) = (0.0f64, 0.0f64);
    let (mut run_rate, mut parallel_run_rate) = (0.0f64, 0.0f64);
    for _ in 0..7 {
        block_rate = block_rate.max(accept(1));
        parallel_rate = parallel_rate.max(accept(cores));
        run_rate = run_rate.max(catch_up(1));
        parallel_run_rate = parallel_run_rate.max(catch_up(cores));
    }
    set_signature_threads(0);
    // As a node takes a block whose transactions it took into its pool
    // before: the pool's checks filled the signature cache.
    let (mut seen_rate, mut unseen_rate) = (0.0f64, 0.0f64);
    set_signature_threads(1);
    for _ in 0..7 {
        reset_signature_cache(true);
        unseen_rate = unseen_rate.max(accept(1));
        reset_signature_cache(true);
        for m in &transfers {
            ledger.check(&m.txn, Some(&m.tokens)).expect("valid");
        }
        seen_rate = seen_rate.max(accept(1));
    }
    set_signature_threads(0);
    reset_signature_cache(true);

    println!("\n== validation: signed transfers, 1 thread ==");
    println!("{:<44} {:>14}", "measure", "per second");
    println!(
        "{:<44} {:>14.0}",
        "transactions checked (TXN, signatures incl.)", txn_rate
    );
    println!(
        "{:<44} {:>14.1}",
        "blocks of a reward and 9 transfers accepted", block_rate
    );
    println!(
        "{:<44} {:>14.0}",
        "raw RSA-PSS verifications (AWS-LC)", raw_rate
    );
    let openssl = openssl_verify_rate();
    match openssl {
        Some(rate) => println!(
            "{:<44} {:>14.0}\nraw verify, AWS-LC against OpenSSL's: {:.2}",
            "  openssl speed rsa2048, verify (one core)",
            rate,
            raw_rate / rate
        ),
        None => println!("(no openssl binary: no OpenSSL figure beside ours)"),
    }
    println!(
        "{:<44} {:>14.0}",
        "addresses parsed into keys (cached)", parse_rate
    );
    println!(
        "{:<44} {:>14.0}",
        "transfers' 2 signatures (check_signatures)", sigs_rate
    );
    println!(
        "transactions/s against raw verify / 2: {:.2}",
        txn_rate / (raw_rate / 2.0)
    );
    println!(
        "{:<44} {:>14.0}",
        "  = transactions in blocks accepted",
        block_rate * PER_BLOCK as f64
    );
    println!(
        "{:<44} {:>14.1}",
        format!("blocks accepted, signatures on {cores} threads"),
        parallel_rate
    );
    println!(
        "blocks/s on {cores} threads against 1: {:.2}",
        parallel_rate / block_rate
    );
    println!(
        "{:<44} {:>14.1}",
        format!("{blocks} blocks at once (catching up), 1 thread"),
        run_rate
    );
    println!(
        "{:<44} {:>14.1}",
        format!("  the same, signatures on {cores} threads"),
        parallel_run_rate
    );
    println!(
        "catching up on {cores} threads against 1: {:.2}",
        parallel_run_rate / run_rate
    );
    println!(
        "{:<44} {:>14.1}",
        "blocks accepted, transactions seen before", seen_rate
    );
    println!(
        "  against the same blocks unseen, cache on ({unseen_rate:.1}/s): {:.2}",
        seen_rate / unseen_rate
    );
    let mut figures = vec![
        format!("validation_seen_blocks_per_s={seen_rate:.1}"),
        format!("validation_unseen_blocks_per_s={unseen_rate:.1}"),
        format!("validation_seen_over_unseen={:.2}", seen_rate / unseen_rate),
        format!("validation_txns_per_s={txn_rate:.0}"),
        format!("validation_raw_verify_per_s={raw_rate:.0}"),
        format!("validation_key_parse_per_s={parse_rate:.0}"),
        format!("validation_sigs_txns_per_s={sigs_rate:.0}"),
        format!("validation_blocks_per_s={block_rate:.1}"),
        format!("validation_blocks_per_s_{cores}_threads={parallel_rate:.1}"),
        format!("validation_catch_up_blocks_per_s={run_rate:.1}"),
        format!("validation_catch_up_blocks_per_s_{cores}_threads={parallel_run_rate:.1}"),
        format!(
            "validation_block_txns_per_s={:.0}",
            block_rate * PER_BLOCK as f64
        ),
    ];
    if let Some(rate) = openssl {
        figures.push(format!("openssl_verify_per_s={rate:.0}"));
    }
    figures
}

/// OpenSSL's RSA-2048 verifications a second on one core (`openssl speed
/// -seconds 3 rsa2048`, its last figure), where the binary is there.
fn openssl_verify_rate() -> Option<f64> {
    let out = std::process::Command::new("openssl")
        .args(["speed", "-seconds", "3", "rsa2048"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .filter(|l| {
            l.trim_start().starts_with("rsa 2048") || l.trim_start().starts_with("rsa  2048")
        })
        .find_map(|l| l.split_whitespace().last()?.parse().ok())
}
