//! Our signatures verify in the original's crypto library and theirs in
//! ours; our encoded `TXN` hashes the same in the original's formula.
//!
//! Needs `python3` with the `cryptography` package (`.ci/run` installs it).
//! Without them the tests say so and pass, unless `CI` is set, where a
//! missing interpreter is a failure.

// In tests a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::process::{Command, Stdio};
use toycoin_common::profile::Signing;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use rand::rngs::OsRng;
use serde_json::{json, Value};
use toycoin_common::message::encode_txn;
use toycoin_common::transaction::Transaction;
use toycoin_common::wallet::{self, Wallet};

fn python_ready() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import cryptography"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI needs python3 with the cryptography package (pip install cryptography)"
        );
        eprintln!("skipped: python3 with the cryptography package is not installed");
    }
    ok
}

fn python(request: Value) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/interop.py");
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "interop.py failed");
    serde_json::from_slice(&out.stdout).unwrap()
}

fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

#[test]
fn our_signatures_verify_in_the_original_and_tampered_ones_do_not() {
    if !python_ready() {
        return;
    }
    let a = Wallet::generate(&mut OsRng).unwrap();
    let b = Wallet::generate(&mut OsRng).unwrap();
    let fund = Transaction::coinbase(a.address().clone(), 40);
    let m = a
        .transfer(
            &mut OsRng,
            b.address(),
            15,
            vec![fund.outputs()[0].clone()],
            Signing::Original,
        )
        .unwrap();
    let t = &m.txn;
    let receiver_msg = Transaction::original_signed_message(&t.previous_hashes, &t.receiver);
    let sender_msg = Transaction::original_signed_message(&t.previous_hashes, &t.sender);
    let mut flipped = t.sender_signature.to_vec();
    flipped[17] ^= 1;
    let reply = python(json!({"verify": [
        {"address": b64(a.address()), "msg": b64(&receiver_msg), "sig": b64(&t.receiver_signature)},
        {"address": b64(a.address()), "msg": b64(&sender_msg), "sig": b64(&t.sender_signature)},
        {"address": b64(a.address()), "msg": b64(&sender_msg), "sig": b64(&flipped)},
        {"address": b64(b.address()), "msg": b64(&sender_msg), "sig": b64(&t.sender_signature)},
    ]}));
    assert_eq!(reply["verified"], json!([true, true, false, false]));

    // The original computes the same transaction hash from our payload.
    let reply =
        python(json!({"txn_hash": String::from_utf8(encode_txn(&m.tokens, t).to_vec()).unwrap()}));
    assert_eq!(reply["hash"], t.hash().to_hex());
}

#[test]
fn the_originals_signatures_verify_in_ours() {
    if !python_ready() {
        return;
    }
    let msg = b"previous hashes || receiver";
    let reply = python(json!({"sign": b64(msg)}));
    let address = B64.decode(reply["address"].as_str().unwrap()).unwrap();
    let sig = B64.decode(reply["sig"].as_str().unwrap()).unwrap();
    assert_eq!(wallet::verify(&address, msg, &sig), Ok(()));
    assert!(wallet::verify(&address, b"another message", &sig).is_err());
}
