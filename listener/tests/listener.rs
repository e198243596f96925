//! The listener on the original's captured frames and computed vectors, in
//! text and JSON; a tampered chain; garbage; forks and switches.

// In tests a panic is the failure report.
#![allow(clippy::unwrap_used)]

use rand::rngs::OsRng;
use serde_json::Value;
use toycoin_common::block::Block;
use toycoin_common::chain::Chain;
use toycoin_common::message::{encode_bloc, Message};
use toycoin_common::profile::Profile;
use toycoin_common::transaction::Transaction;
use toycoin_common::wallet::fingerprint;
use toycoin_common::wallet::Wallet;
use toycoin_listener::{abbrev, wallet_name, Listener, Mode};
use toycoin_tests::frames;

/// Well after every captured timestamp.
const NOW: u64 = 1_900_000_000;

fn json(listener: &mut Listener, payload: &[u8]) -> Value {
    let shown = listener.handle(payload, NOW);
    assert!(!shown.text.contains('\n'), "one line per frame");
    serde_json::from_str(&shown.text).unwrap()
}

#[test]
fn shows_every_captured_and_computed_frame_in_text_and_json() {
    let mut chains = 0;
    // Two networks: a listener each.
    for subdir in ["live", "generated"] {
        let mut text = Listener::new(Profile::toycoin(), Mode::Text, false);
        let mut js = Listener::new(Profile::toycoin(), Mode::Json, false);
        for (name, payload) in frames(subdir) {
            let shown = text.handle(&payload, NOW).text;
            let v = json(&mut js, &payload);
            match Message::decode(&payload).unwrap() {
                Message::Txn(m) => {
                    let hash = m.txn.hash();
                    assert!(
                        shown.starts_with(&format!("TXN {}", hash.short())),
                        "{name}: {shown}"
                    );
                    assert!(
                        shown.contains(&format!("\"receiver_value\": {}", m.txn.receiver_value))
                    );
                    assert!(shown.contains(&format!("\"sender_change\": {}", m.txn.sender_change)));
                    // Addresses by the fingerprint every program prints.
                    assert!(
                        shown.contains(&wallet_name(&m.txn.receiver)),
                        "{name}: {shown}"
                    );
                    assert!(
                        !shown.contains("LS0tLS1CRU"),
                        "{name}: no PEM header shown for an address"
                    );
                    assert_eq!(v["txn"]["receiver_wallet"], fingerprint(&m.txn.receiver));
                    assert_eq!(v["type"], "TXN");
                    assert_eq!(v["hash"], hash.to_hex());
                    assert_eq!(v["txn"]["receiver_value"], m.txn.receiver_value);
                    assert_eq!(v["tokens"].as_array().unwrap().len(), m.tokens.len());
                    for (t, jt) in m.tokens.iter().zip(v["tokens"].as_array().unwrap()) {
                        assert_eq!(jt["value"], t.value);
                        assert_eq!(jt["txn_hash"], t.txn_hash.to_hex());
                    }
                }
                Message::Bloc(blocks) => {
                    let txns: usize = blocks.iter().map(|b| b.txns.len()).sum();
                    // Each captured chain extends the one before, so the best
                    // chain is the one just received.
                    let summary = format!(
                        "Blocks: {} | Total Txns: {txns} | Valid: True",
                        blocks.len()
                    );
                    assert!(shown.contains(&summary), "{name}: {shown}");
                    for (i, b) in blocks.iter().enumerate() {
                        assert!(
                            shown.contains(&format!("Block {i} {}", b.header.this_hash.short()))
                        );
                        for t in &b.txns {
                            assert!(shown.contains(&format!("-> {}", abbrev(t.hash().as_ref()))));
                        }
                    }
                    assert_eq!(v["type"], "BLOC");
                    assert_eq!(v["valid"], true, "{name}: {v}");
                    assert_eq!(v["chain"]["blocks"], blocks.len());
                    assert_eq!(v["chain"]["total_txns"], txns);
                    assert_eq!(
                        v["chain"]["tip"],
                        blocks.last().unwrap().header.this_hash.to_hex()
                    );
                    assert_eq!(v["blocks"].as_array().unwrap().len(), blocks.len());
                    chains += 1;
                }
                Message::GetBlocks(_) | Message::Status(_) => {
                    unreachable!("the original sends no GETB or STAT")
                }
            }
        }
    }
    assert_eq!(chains, 8);
}

#[test]
fn names_the_failing_block_of_a_tampered_chain() {
    let (_, payload) = frames("live")
        .into_iter()
        .filter(|(n, _)| n.contains("BLOC"))
        .last()
        .unwrap();
    let Message::Bloc(mut blocks) = Message::decode(&payload).unwrap() else {
        unreachable!()
    };
    blocks[2].txns[0].receiver_value += 1;
    let tampered = encode_bloc(&blocks);
    let mut text = Listener::new(Profile::toycoin(), Mode::Text, false);
    let shown = text.handle(&tampered, NOW).text;
    assert!(shown.contains("Valid: False"), "{shown}");
    assert!(
        shown.contains("INVALID: block 2: merkle_root does not match"),
        "{shown}"
    );
    assert!(shown.contains("Blocks: 0 | Total Txns: 0"));
    let mut js = Listener::new(Profile::toycoin(), Mode::Json, false);
    let v = json(&mut js, &tampered);
    assert_eq!(v["valid"], false);
    assert_eq!(v["effect"], "invalid");
    assert!(v["error"]
        .as_str()
        .unwrap()
        .starts_with("block 2: merkle_root"));
}

#[test]
fn survives_garbage_and_goes_on() {
    for mode in [Mode::Text, Mode::Brief, Mode::Json] {
        let mut l = Listener::new(Profile::toycoin(), mode, false);
        for junk in [
            &b""[..],
            b"\x00\x01",
            b"HELO world",
            b"TXN [1, 2",
            b"BLOC{}",
            b"GETB{\"locator\": 5}",
        ] {
            let shown = l.handle(junk, NOW);
            assert!(shown.news, "--quiet still shows what was refused");
            let shown = shown.text;
            if mode == Mode::Json {
                let v: Value = serde_json::from_str(&shown).unwrap();
                assert_eq!(v["valid"], false);
                assert!(v["error"].as_str().is_some());
            } else {
                assert!(shown.starts_with("Could not decode a frame of"), "{shown}");
            }
        }
        let (_, bloc) = frames("live")
            .into_iter()
            .find(|(n, _)| n.contains("BLOC"))
            .unwrap();
        let shown = l.handle(&bloc, NOW).text;
        assert!(
            shown.contains("Valid: True")
                || shown.contains("\"valid\":true")
                || shown.contains("extends")
        );
    }
}

/// A block paying its reward to `miner`, holding `txns` after it.
fn mine_on(chain: &Chain, miner: &str, txns: Vec<Transaction>) -> Block {
    chain
        .mine_next(
            &toycoin_common::address::example(miner.as_bytes()),
            txns,
            NOW - 100,
        )
        .unwrap()
}

#[test]
fn says_when_a_bloc_extends_forks_or_switches_the_best_chain() {
    let profile = toycoin_tests::keys::steady(5.0);
    let mut ours = Chain::new(profile);
    let mint = toycoin_tests::keys::kept_key("mint");
    let grant = mint
        .grant(
            &mut OsRng,
            &toycoin_common::address::example(b"a student"),
            10,
        )
        .unwrap();
    let a0 = mine_on(&ours, "a0", vec![grant]);
    ours.push(a0.clone(), NOW).unwrap();
    let mut theirs = Chain::new(profile);
    let b0 = mine_on(&theirs, "b0", Vec::new());
    theirs.push(b0.clone(), NOW).unwrap();
    let b1 = mine_on(&theirs, "b1", Vec::new());

    let mut text = Listener::new(profile, Mode::Text, false);
    let mut brief = Listener::new(profile, Mode::Brief, true);
    let mut js = Listener::new(profile, Mode::Json, false);
    let first = encode_bloc(std::slice::from_ref(&a0));
    let shown = text.handle(&first, NOW);
    assert!(shown
        .text
        .contains("extends the best chain by 1 to height 0"));
    assert!(shown.news, "--quiet shows a block that extends the chain");
    let again = text.handle(&first, NOW);
    assert!(
        !again.news,
        "--quiet hides a BLOC of known blocks: {}",
        again.text
    );
    assert!(
        brief.handle(&first, NOW).text.contains("\x1b["),
        "colours when asked"
    );
    assert_eq!(json(&mut js, &first)["effect"], "extends");

    // b0 has as much work as a0: a fork (the first seen is kept).
    let fork = encode_bloc(std::slice::from_ref(&b0));
    let v = json(&mut js, &fork);
    assert_eq!(v["effect"], "fork");
    let t = text.handle(&fork, NOW).text;
    assert!(t.contains("starts or grows a fork"), "{t}");

    // b1 on top of b0: their branch has more work.
    let grow = encode_bloc(std::slice::from_ref(&b1));
    let v = json(&mut js, &grow);
    assert_eq!(v["effect"], "switch");
    assert_eq!(v["reorg"]["rolled_back"], 1);
    assert_eq!(v["reorg"]["added"], 2);
    assert_eq!(v["reorg"]["returned_txns"], 1);
    let t = text.handle(&grow, NOW).text;
    assert!(
        t.contains("SWITCHES the best chain: fork at height 0, 1 blocks rolled back, 2 added"),
        "{t}"
    );
    assert!(t.contains("Blocks: 2 | Total Txns: 2 | Valid: True"), "{t}");
    assert_eq!(v["chain"]["blocks"], 2);
    assert_eq!(v["chain"]["tip"], b1.header.this_hash.to_hex());
    // A block whose parent the listener never saw.
    let mut fresh = Listener::new(profile, Mode::Text, false);
    let shown = fresh.handle(&grow, NOW);
    assert!(shown.text.contains("which this listener has not seen"));
    assert!(shown.request.is_some(), "asks for the missed blocks");
}

#[test]
fn json_names_each_blocks_miner_and_counts_confirmations_to_final() {
    let profile = toycoin_tests::keys::steady(5.0);
    let mut chain = Chain::new(profile);
    let mut js = Listener::new(profile, Mode::Json, false);
    let mut text = Listener::new(profile, Mode::Text, false);
    let mut last = Value::Null;
    for i in 0..7 {
        let block = mine_on(&chain, &format!("miner {i}"), Vec::new());
        chain.push(block.clone(), NOW).unwrap();
        let frame = encode_bloc(&[block]);
        last = json(&mut js, &frame);
        let shown = text.handle(&frame, NOW).text;
        assert_eq!(shown.contains("is now final"), i >= 5, "block {i}: {shown}");
        assert!(shown.contains(&format!(
            "mined by {}",
            toycoin_common::wallet::fingerprint(&toycoin_common::address::example(
                format!("miner {i}").as_bytes()
            ))
        )));
    }
    let block = &last["blocks"][0];
    assert_eq!(block["height"], 6);
    assert_eq!(
        block["miner"],
        toycoin_common::wallet::fingerprint(&toycoin_common::address::example(b"miner 6"))
    );
    assert_eq!(block["confirmations"], 1);
    assert_eq!(block["txns"][0]["confirmations"], 1);
    assert_eq!(last["final_height"], 1, "block 1 is six deep");
}

#[test]
fn a_late_listener_says_parent_unknown_and_a_resend_already_pending_not_invalid() {
    let profile = toycoin_tests::keys::steady(5.0);
    let (mint, a, b) = (
        toycoin_tests::keys::kept_key("mint"),
        Wallet::generate(&mut OsRng).unwrap(),
        Wallet::generate(&mut OsRng).unwrap(),
    );
    // The funding was mined before this listener started.
    let fund = mint.grant(&mut OsRng, a.address(), 20).unwrap();
    let token = fund.outputs()[0].clone();
    let pay = a
        .transfer(
            &mut OsRng,
            b.address(),
            5,
            vec![token],
            toycoin_common::profile::Signing::Amounts,
        )
        .unwrap();
    let frame = toycoin_common::message::encode_txn(&pay.tokens, &pay.txn);
    let mut text = Listener::new(profile, Mode::Text, false);
    let shown = text.handle(&frame, NOW);
    assert!(shown.text.contains("parent unknown"), "{}", shown.text);
    assert!(!shown.text.contains("Valid: False"), "{}", shown.text);
    assert!(!shown.news, "--quiet does not show it as refused");
    // A grant it can check, then the same one again.
    let grant = toycoin_common::message::encode_txn(&[], &fund);
    assert!(text.handle(&grant, NOW).text.contains("Valid: True"));
    let again = text.handle(&grant, NOW).text;
    assert!(again.contains("already pending: sent again"), "{again}");
    assert!(!again.contains("Valid: False"), "{again}");
}

/// Four replicas order one batch in memory; the listener sees every
/// message, counts the votes against 2f and 2f+1, calls the batch final on
/// f+1 replies, and refuses a forged vote.
#[test]
fn counts_pbft_votes_against_their_quorums_and_calls_a_batch_final() {
    use std::sync::Arc;
    use toycoin_common::hash::Hash;
    use toycoin_common::pbft::{Membership, Msg, PbftEvent, Replica, SignedWire};
    use toycoin_common::profile::Signing;

    let keys: Vec<Wallet> = (0..5)
        .map(|_| Wallet::generate(&mut OsRng).unwrap())
        .collect();
    let members = Arc::new(
        Membership::new(
            (0..4)
                .map(|i| (format!("node{}", i + 1), keys[i].address().clone()))
                .collect(),
        )
        .unwrap(),
    );
    let mut replicas: Vec<Replica> = (0..4)
        .map(|i| Replica::new(members.clone(), i, keys[i].clone(), Signing::Amounts).unwrap())
        .collect();
    let mut text = Listener::with_replicas(
        toycoin_tests::keys::steady(5.0),
        Mode::Brief,
        members.clone(),
    );
    let mut js = Listener::with_replicas(
        toycoin_tests::keys::steady(5.0),
        Mode::Json,
        members.clone(),
    );
    let grant = keys[4].grant(&mut OsRng, keys[0].address(), 5).unwrap();
    let now = tokio::time::Instant::now();
    assert!(replicas[0].propose(vec![grant.clone()], now));
    let mut lines = Vec::new();
    let mut kinds = Vec::new();
    loop {
        let mut sent = Vec::new();
        for (i, r) in replicas.iter_mut().enumerate() {
            while let Some(e) = r.take_event() {
                if let PbftEvent::Execute { seq, digest, .. } = e {
                    r.reply(seq, digest, &[grant.hash()]);
                }
            }
            while let Some(out) = r.take_outgoing() {
                sent.push((i, out.payload));
            }
        }
        if sent.is_empty() {
            break;
        }
        for (from, payload) in sent {
            lines.push(text.handle(&payload, NOW).text);
            let v = json(&mut js, &payload);
            assert_eq!(v["type"], "PBFT");
            assert_eq!(v["verified"], true);
            kinds.push(v["kind"].as_str().unwrap().to_owned());
            for (j, r) in replicas.iter_mut().enumerate() {
                if j != from {
                    let _ = r.on_payload(&payload, now);
                }
            }
        }
    }
    let all = lines.join("\n");
    assert!(
        all.contains("node1 PRE-PREPARE batch 1 in view 0 (1 txns"),
        "{all}"
    );
    assert!(
        all.contains("PREPARE batch 1 in view 0: 2/2 (2f) prepared"),
        "{all}"
    );
    assert!(
        all.contains("COMMIT batch 1 in view 0: 3/3 (2f+1) committed"),
        "{all}"
    );
    assert!(
        all.contains("batch 1 FINAL: f+1 matching replies; 1 txns applied"),
        "{all}"
    );
    assert_eq!(
        kinds.iter().filter(|k| *k == "final").count(),
        1,
        "{kinds:?}"
    );

    // Replica 3 signs a commit as replica 1: refused, said why.
    let forged = SignedWire::sign(
        &keys[3],
        1,
        Msg::Commit {
            view: 0,
            seq: 2,
            digest: Hash::of(b"x").to_hex(),
        },
    );
    let shown = text.handle(&forged.encode(), NOW);
    assert!(
        shown
            .text
            .contains("signature of replica 1 does not verify"),
        "{}",
        shown.text
    );
}

/// A light wallet's frames in words: what it asks, what the faucet says;
/// a broken one refused with its reason.
#[test]
fn tells_what_light_wallets_ask_and_the_faucet_answers() {
    use toycoin_common::spv::{address_text, SpvMsg};
    let w = Wallet::generate(&mut OsRng).unwrap();
    let mut text = Listener::new(toycoin_tests::keys::steady(5.0), Mode::Brief, false);
    let mut js = Listener::new(toycoin_tests::keys::steady(5.0), Mode::Json, false);
    let ask = SpvMsg::GetProofs {
        id: "w-1".into(),
        address: address_text(w.address()),
        reply_to: Some("w-me".into()),
    }
    .encode();
    let shown = text.handle(&ask, NOW).text;
    assert_eq!(
        shown,
        format!(
            "SPV wallet {} asks the nodes to prove its transactions",
            w.fingerprint()
        )
    );
    assert_eq!(json(&mut js, &ask)["kind"], "get-proofs");
    let no = SpvMsg::Granted {
        id: "w-2".into(),
        txn: None,
        value: 50,
        refused: Some("one grant per address per 60 s: ask again in 12 s".into()),
        mint: None,
        sig: None,
    }
    .encode();
    assert!(text
        .handle(&no, NOW)
        .text
        .contains("the faucet says no: one grant per address"));
    let broken = b"SPV {\"kind\": \"get-proofs\"}";
    let shown = text.handle(broken, NOW);
    assert!(shown.text.contains("missing field"), "{}", shown.text);
}
