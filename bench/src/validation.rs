//! The validation suite: signed transactions checked per second (every
//! rule, both RSA-PSS signatures included), and blocks of 10 such
//! transactions accepted per second.

use std::time::Instant;

use rand::rngs::StdRng;
use rand::SeedableRng;
use toycoin_common::chain::{now_secs, Chain};
use toycoin_common::message::TxnMessage;
use toycoin_common::profile::Profile;
use toycoin_common::transaction::{OutputKind, Transaction};
use toycoin_common::wallet::Wallet;

use crate::chains::extend;

/// Runs the suite on `txns` transfers (rounded to whole blocks of 10);
/// prints a table, returns figures.
pub fn run(txns: usize) -> Vec<String> {
    let blocks = txns.div_ceil(10).max(1);
    let txns = blocks * 10;
    let profile = Profile::steady(5.0);
    let mut rng = StdRng::seed_from_u64(1);
    let payer = Wallet::generate(&mut rng).expect("key");
    let payee = Wallet::generate(&mut rng).expect("key");
    eprintln!("validation: funding {txns} outputs and signing {txns} transfers...");
    let mut chain = Chain::new(profile);
    let funding = extend(&mut chain, blocks, blocks, |b| {
        (0..10)
            .map(|i| Transaction::coinbase(payer.address().clone(), (b * 10 + i + 1) as i64))
            .collect()
    });
    let transfers: Vec<TxnMessage> = funding
        .iter()
        .flat_map(|b| &b.txns)
        .map(|f| {
            let token = f.output(f.hash(), OutputKind::Receiver);
            let value = token.value;
            payer
                .transfer(&mut rng, payee.address(), value, vec![token])
                .expect("enough")
        })
        .collect();

    // Transactions alone, as a node checks a TXN.
    let ledger = chain.ledger();
    let start = Instant::now();
    for m in &transfers {
        ledger.check(&m.txn, Some(&m.tokens)).expect("valid");
    }
    let txn_rate = transfers.len() as f64 / start.elapsed().as_secs_f64();

    // Whole blocks, as a node accepts a peer's block.
    let mut spender = chain.clone();
    let mut next = transfers.iter();
    let spend_blocks = extend(&mut spender, blocks, 0, |_| {
        next.by_ref().take(10).map(|m| m.txn.clone()).collect()
    });
    let mut receiver = chain.clone();
    let start = Instant::now();
    for block in spend_blocks {
        receiver.push(block, now_secs()).expect("valid");
    }
    let secs = start.elapsed().as_secs_f64();
    let block_rate = blocks as f64 / secs;

    println!("\n== validation: signed transfers, 1 thread ==");
    println!("{:<44} {:>14}", "measure", "per second");
    println!(
        "{:<44} {:>14.0}",
        "transactions checked (TXN, signatures incl.)", txn_rate
    );
    println!(
        "{:<44} {:>14.1}",
        "blocks of 10 transfers accepted", block_rate
    );
    println!(
        "{:<44} {:>14.0}",
        "  = transactions in blocks accepted",
        block_rate * 10.0
    );
    vec![
        format!("validation_txns_per_s={txn_rate:.0}"),
        format!("validation_blocks_per_s={block_rate:.1}"),
        format!("validation_block_txns_per_s={:.0}", block_rate * 10.0),
    ]
}
