//! Light wallets against an in-process relay, a mining node and the
//! oracle as the class's faucet: coins from the faucet (once a minute),
//! paid from one wallet to the other by fingerprint, SPV balances equal to
//! the full node's; forged answers caught and ignored; the key file's
//! permissions checked.

// In tests a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::time::Instant;
use toycoin_common::chain::{now_secs, Chain};
use toycoin_common::profile::Profile;
use toycoin_common::relay::{RelayClient, DEFAULT_TOPIC};
use toycoin_common::spv::{self, HeaderWire, ProofWire, SpvMsg};
use toycoin_common::wallet::{check_private_file, Wallet};
use toycoin_node::{spawn, NodeConfig, NodeHandle};
use toycoin_oracle::OracleConfig;
use toycoin_relay::local::LocalRelay;
use toycoin_tests::keys;
use toycoin_wallet::LightWallet;

const WAIT: Duration = Duration::from_secs(60);
const ASK: Duration = Duration::from_secs(5);
/// The mining node's hash rate: blocks still come at the target (the
/// first bits, 2^18 hashes, take half a second), and the processor is left
/// to the tests beside these.
const HASH_RATE: f64 = 500_000.0;

fn profile() -> Profile {
    toycoin_tests::keys::steady(1.0)
}

async fn relay() -> LocalRelay {
    toycoin_relay::local::spawn_serving(keys::network(1.0))
        .await
        .unwrap()
}

/// Syncs and proves until `wallet`'s balance is `want`.
async fn until_balance(w: &mut LightWallet, want: i64) {
    let deadline = Instant::now() + WAIT;
    loop {
        w.sync(ASK).await.unwrap();
        w.prove(ASK).await.unwrap();
        if w.balance() == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "balance {} never became {want}",
            w.balance()
        );
        let _ = w.next_block(Duration::from_secs(2)).await;
    }
}

async fn node_balance(node: &NodeHandle, w: &Wallet) -> i64 {
    node.snapshot()
        .await
        .unwrap()
        .balances
        .get(w.address())
        .copied()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_wallets_get_coins_pay_each_other_and_agree_with_a_full_node() {
    let relay = relay().await;
    let addr = relay.addr.to_string();
    let mut config = NodeConfig::new(addr.clone(), profile());
    config.name = "full".into();
    config.max_hash_rate = Some(HASH_RATE);
    let (node, _) = spawn(config);
    let mut oracle = OracleConfig::new(addr.clone(), profile());
    oracle.wallet_keys = Some(keys::oracle_keys().to_path_buf());
    oracle.mint_key = Some(keys::mint_key());
    oracle.wallets = 2;
    oracle.min_interval = 1000.0;
    oracle.max_interval = 1000.0;
    oracle.faucet = 50;
    let oracle = tokio::spawn(toycoin_oracle::run(oracle));

    // A classmate's program on the topic: the nodes' answers go to the
    // asking wallet alone, not to it.
    let observer = RelayClient::connect(&addr, DEFAULT_TOPIC).await.unwrap();
    let observed = tokio::spawn(async move {
        let mut observer = observer;
        let mut answers = 0;
        while let Ok(Some(frame)) = observer.recv().await {
            if let Ok(msg) = SpvMsg::decode(&frame) {
                answers += usize::from(!msg.is_request());
            }
        }
        answers
    });
    let mut rng = StdRng::seed_from_u64(21);
    let (ka, kb) = (
        Wallet::generate(&mut rng).unwrap(),
        Wallet::generate(&mut rng).unwrap(),
    );
    let mut a = LightWallet::connect(ka.clone(), &addr, DEFAULT_TOPIC, profile())
        .await
        .unwrap();
    let mut b = LightWallet::connect(kb.clone(), &addr, DEFAULT_TOPIC, profile())
        .await
        .unwrap();

    // The faucet answers once the oracle is up; once a minute per address.
    let deadline = Instant::now() + WAIT;
    let (_, value) = loop {
        match a.faucet(Duration::from_secs(2)).await {
            Ok(granted) => break granted,
            Err(e) if Instant::now() < deadline && e.contains("no faucet answered") => {}
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(value, 50);
    let again = a.faucet(ASK).await.unwrap_err();
    assert!(again.contains("one grant per address per 60 s"), "{again}");
    b.faucet(ASK).await.unwrap();
    // The same key as b's written with CRLF line endings would be a second
    // wallet to ask for (and a fingerprint of its own): refused.
    let crlf = bytes::Bytes::from(
        String::from_utf8(kb.address().to_vec())
            .unwrap()
            .replace('\n', "\r\n"),
    );
    let twin = a.faucet_to(&crlf, ASK).await.unwrap_err();
    assert!(twin.contains("not a wallet's address"), "{twin}");

    until_balance(&mut a, 50).await;
    until_balance(&mut b, 50).await;
    // A pays B by the long fingerprint `toycoin-wallet address` prints.
    let long = toycoin_common::wallet::pay_fingerprint(kb.address());
    assert_eq!(long.len(), toycoin_common::wallet::PAY_FINGERPRINT_DIGITS);
    assert!(long.starts_with(&kb.fingerprint()));
    let to = a.find_address(&long, ASK).await.unwrap();
    assert_eq!(to, *kb.address());
    let paid = a.pay(&to, 20).await.unwrap();
    assert_eq!(paid.sender_change, 30);
    until_balance(&mut b, 70).await;
    until_balance(&mut a, 30).await;
    // And back, spending the change and the payment.
    let to = b.find_address(&ka.fingerprint(), ASK).await.unwrap();
    b.pay(&to, 65).await.unwrap();
    until_balance(&mut a, 95).await;
    until_balance(&mut b, 5).await;

    // The full node's ledger says the same (it may be a block ahead:
    // wait for the light wallets to agree with it).
    let deadline = Instant::now() + WAIT;
    loop {
        a.sync(ASK).await.unwrap();
        a.prove(ASK).await.unwrap();
        b.sync(ASK).await.unwrap();
        b.prove(ASK).await.unwrap();
        let full = (
            node_balance(&node, &ka).await,
            node_balance(&node, &kb).await,
        );
        if full == (a.balance(), b.balance()) {
            assert_eq!(full, (95, 5));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "full node {full:?}, light ({}, {})",
            a.balance(),
            b.balance()
        );
    }
    // Every proof names its block and path.
    for p in a.history() {
        assert!(p.path_len >= 1 && p.height < a.headers().len());
    }
    oracle.abort();
    node.stop().await;
    relay.stop().await.unwrap();
    assert_eq!(
        observed.await.unwrap(),
        0,
        "an answer reached another client"
    );
}

/// A liar answers the wallet's requests before the honest node: a header
/// with too little work, a header chain with less work than the best, a
/// proof with a wrong path, one naming another block, one of a
/// transaction no block holds. Each is refused with its reason; the
/// balance is what the honest proofs show.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lying_nodes_headers_and_proofs_are_caught_and_ignored() {
    let relay = relay().await;
    let addr = relay.addr.to_string();
    let mut rng = StdRng::seed_from_u64(5);
    let mint = keys::kept_key("mint");
    let me = Wallet::generate(&mut rng).unwrap();
    // The honest chain: 6 blocks, the second granting 40 to me.
    let mut chain = Chain::new(profile());
    let start = now_secs() - 100;
    let mut blocks = Vec::new();
    for i in 0..6u64 {
        let txns = if i == 1 {
            vec![mint.grant(&mut rng, me.address(), 40).unwrap()]
        } else {
            Vec::new()
        };
        let block = chain
            .mine_next(
                &toycoin_common::address::example(b"miner"),
                txns,
                start + 15 * i,
            )
            .unwrap();
        chain.push(block.clone(), now_secs()).unwrap();
        blocks.push(block);
    }
    // A shorter honest-looking branch (less work) and a weak header.
    let mut short = Chain::new(profile());
    let other = short
        .mine_next(
            &toycoin_common::address::example(b"liar"),
            Vec::new(),
            start,
        )
        .unwrap();
    short.push(other.clone(), now_secs()).unwrap();
    let mut weak = blocks[5].header.clone();
    for nonce in 0u64.. {
        weak.nonce = bytes::Bytes::from(nonce.to_string());
        weak.this_hash = weak.compute_hash();
        if weak.this_hash.leading_zero_bits() == 0 {
            break;
        }
    }
    let fake = mint.grant(&mut rng, me.address(), 1000).unwrap();
    let grant = &blocks[1].txns[1];
    let proof = blocks[1].merkle_proof(&grant.hash()).unwrap();
    let honest_item = ProofWire::new(grant, 1, &blocks[1].header.this_hash, &proof);

    let tip = blocks[5].header.this_hash;
    let mut server = RelayClient::connect(&addr, DEFAULT_TOPIC).await.unwrap();
    let serve = tokio::spawn(async move {
        while let Ok(Some(frame)) = server.recv().await {
            let Ok(msg) = SpvMsg::decode(&frame) else {
                continue;
            };
            let answers: Vec<SpvMsg> = match msg {
                SpvMsg::GetHeaders { id, .. } => vec![
                    // Lies first.
                    SpvMsg::Headers {
                        id: id.clone(),
                        headers: vec![HeaderWire::from_header(&weak)],
                    },
                    SpvMsg::Headers {
                        id: id.clone(),
                        headers: vec![HeaderWire::from_header(&other.header)],
                    },
                    SpvMsg::Headers {
                        id,
                        headers: blocks
                            .iter()
                            .map(|b| HeaderWire::from_header(&b.header))
                            .collect(),
                    },
                ],
                SpvMsg::GetProofs { id, address, .. } => {
                    let mut wrong_path = honest_item.clone();
                    wrong_path.path[0].right = !wrong_path.path[0].right;
                    let mut wrong_block = honest_item.clone();
                    wrong_block.block = spv::block_hash_text(&blocks[2].header.this_hash);
                    let mut invented = honest_item.clone();
                    invented.txn = toycoin_common::message::transaction_to_json(&fake);
                    vec![
                        SpvMsg::Proofs {
                            id: id.clone(),
                            address: address.clone(),
                            items: vec![wrong_path, wrong_block, invented],
                        },
                        SpvMsg::Proofs {
                            id,
                            address,
                            items: vec![honest_item.clone()],
                        },
                    ]
                }
                _ => continue,
            };
            for a in answers {
                server.publish(DEFAULT_TOPIC, &a.encode()).await.unwrap();
            }
        }
    });

    let mut w = LightWallet::connect(me.clone(), &addr, DEFAULT_TOPIC, profile())
        .await
        .unwrap();
    let heard = w.sync(ASK).await.unwrap();
    assert_eq!(w.headers().len(), 6);
    assert_eq!(w.headers().tip_hash(), tip);
    let all = heard.refused.join("\n");
    assert!(all.contains("proof of work too weak"), "{all}");
    assert!(all.contains("no more work than the chain we have"), "{all}");
    let heard = w.prove(ASK).await.unwrap();
    let all = heard.refused.join("\n");
    assert_eq!(heard.refused.len(), 3, "{all}");
    assert!(all.contains("Merkle path does not lead"), "{all}");
    assert!(all.contains("is not our block 1"), "{all}");
    assert_eq!(w.balance(), 40, "only the honest proof counts");
    assert_eq!(w.history().len(), 1);
    serve.abort();
    relay.stop().await.unwrap();
}

#[test]
fn a_key_file_others_can_read_is_refused() {
    let dir = std::env::temp_dir().join(format!("toycoin-wallet-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("key.pem");
    let _ = std::fs::remove_file(&path);
    let (wallet, created) = Wallet::load_or_create(&path).unwrap();
    assert!(created);
    assert!(
        check_private_file(&path).is_ok(),
        "created readable by its owner only"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = check_private_file(&path).unwrap_err();
        assert!(err.contains("can be read by others (mode 644)"), "{err}");
    }
    let _ = wallet;
    let _ = std::fs::remove_dir_all(&dir);
}

/// The binary as a student types it: `new` once (never overwriting),
/// `address`, and a key file others can read refused before anything.
#[test]
fn the_binary_makes_a_key_once_prints_its_address_and_refuses_a_shared_key() {
    let exe = toycoin_tests::program::binary("toycoin-wallet");
    let dir = std::env::temp_dir().join(format!("toycoin-wallet-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("me.pem");
    let _ = std::fs::remove_file(&key);
    let key = key.to_str().unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(&exe)
            .args(["--key", key])
            .args(args)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    };
    let (ok, said) = run(&["new"]);
    assert!(ok && said.starts_with("New wallet "), "{said}");
    let print = said.split_whitespace().nth(2).unwrap().to_owned();
    let (ok, said) = run(&["new"]);
    assert!(!ok && said.contains("exists already"), "{said}");
    let (ok, said) = run(&["address", "--port", "1"]);
    assert!(
        ok && said.starts_with(&format!("wallet {print} ")),
        "{said}"
    );
    let address = said.lines().nth(1).unwrap();
    let pem = toycoin_common::spv::address_from_text(address).unwrap();
    assert_eq!(toycoin_common::wallet::fingerprint(&pem), print);
    // The fingerprint to be paid by is the long one; an 8-digit one is
    // refused before anything is sent.
    let long = toycoin_common::wallet::pay_fingerprint(&pem);
    assert!(said.contains(&format!("send --to {long} AMOUNT")), "{said}");
    let (ok, said) = run(&["send", "--to", &print, "5", "--port", "1"]);
    assert!(!ok && said.contains("can be ground"), "{said}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(key, std::fs::Permissions::from_mode(0o640)).unwrap();
        let (ok, said) = run(&["balance", "--port", "1"]);
        assert!(!ok && said.contains("can be read by others"), "{said}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A node started with the wallet's key mines to it: the wallet's proved
/// balance is the node's rewards, as the node's own ledger says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_mining_with_the_wallets_key_pays_its_rewards_to_that_wallet() {
    let relay = relay().await;
    let addr = relay.addr.to_string();
    let key = Wallet::generate(&mut StdRng::seed_from_u64(33)).unwrap();
    let mut config = NodeConfig::new(addr.clone(), profile());
    config.name = "miner".into();
    config.reward_to = key.address().clone();
    config.max_hash_rate = Some(HASH_RATE);
    let (node, _) = spawn(config);
    let mut w = LightWallet::connect(key.clone(), &addr, DEFAULT_TOPIC, profile())
        .await
        .unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        let _ = w.next_block(Duration::from_secs(2)).await;
        w.sync(ASK).await.unwrap();
        w.prove(ASK).await.unwrap();
        let full = node_balance(&node, &key).await;
        // The light wallet has seen every block the node has: the same.
        if w.headers().len() >= 3 && w.balance() == full {
            assert!(full > 0);
            assert!(w.history().iter().all(|p| p.txn.is_coinbase()));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "light {} against full {full}",
            w.balance()
        );
    }
    node.stop().await;
    relay.stop().await.unwrap();
}

/// Issue 33, "spoofed answers": a student hears a classmate's faucet
/// request (requests go to the whole topic) and answers it first, to the
/// classmate alone, granting a million coins. Before, the classmate's
/// wallet printed `The faucet grants 1000000 coins (txn abababababab)`.
/// Now a grant counts only signed by the network's mint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spoofed_faucet_answer_is_ignored() {
    let relay = relay().await;
    let addr = relay.addr.to_string();
    let mut student = RelayClient::connect(&addr, DEFAULT_TOPIC).await.unwrap();
    let spoofer = tokio::spawn(async move {
        let mut spoofed = 0;
        while let Ok(Some(frame)) = student.recv().await {
            let Ok(request @ SpvMsg::Faucet { .. }) = SpvMsg::decode(&frame) else {
                continue;
            };
            let forged = SpvMsg::Granted {
                id: request.id().to_owned(),
                txn: Some("ab".repeat(64)),
                value: 1_000_000,
                refused: None,
                mint: None,
                sig: None,
            };
            let to = match request.reply_to() {
                Some(name) => format!("$to:{name}"),
                None => DEFAULT_TOPIC.to_owned(),
            };
            student.publish(&to, &forged.encode()).await.unwrap();
            spoofed += 1;
        }
        spoofed
    });
    let key = Wallet::generate(&mut StdRng::seed_from_u64(33)).unwrap();
    let mut classmate = LightWallet::connect(key, &addr, DEFAULT_TOPIC, profile())
        .await
        .unwrap();
    let answer = classmate.faucet(ASK).await;
    let said = answer.expect_err("a grant nobody signed was believed");
    assert!(said.contains("not signed by the mint"), "{said}");
    relay.stop().await.unwrap();
    assert!(spoofer.await.unwrap() >= 1, "the student answered");
}

/// Issue 33, "answers to everyone": a student's proof and header requests
/// naming no one, or naming a classmate, made every full node send its
/// answer to the whole class, or to the classmate (a 658 B request drew
/// some 466 KB to each). Now in steady a node answers only a request
/// whose `reply_to` is its asker's own name, which the relay checks: the
/// classmate receives no answer it did not ask for, and its own request
/// is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_is_answered_to_its_asker_only() {
    use toycoin_common::control::{encode_hello, HELLO_TOPIC};
    let relay = relay().await;
    let addr = relay.addr.to_string();
    let mut config = NodeConfig::new(addr.clone(), profile());
    config.name = "full".into();
    config.mine_when_idle = false;
    let (node, mut events) = spawn(config);
    // The node is on the relay once it asks for blocks.
    tokio::time::timeout(WAIT, async {
        loop {
            if let Ok(toycoin_node::Event::CatchUpRequested { .. }) = events.recv().await {
                return;
            }
        }
    })
    .await
    .unwrap();

    let mut classmate = RelayClient::connect(&addr, DEFAULT_TOPIC).await.unwrap();
    classmate
        .publish(HELLO_TOPIC, &encode_hello("w-classmate"))
        .await
        .unwrap();
    let mut student = RelayClient::connect(&addr, DEFAULT_TOPIC).await.unwrap();
    student
        .publish(HELLO_TOPIC, &encode_hello("w-student"))
        .await
        .unwrap();
    let ask = |id: &str, reply_to: Option<&str>| {
        SpvMsg::GetHeaders {
            id: id.into(),
            locator: Vec::new(),
            reply_to: reply_to.map(str::to_owned),
        }
        .encode()
    };
    for i in 0..3 {
        let id = format!("forged-{i}");
        student
            .publish(DEFAULT_TOPIC, &ask(&id, Some("w-classmate")))
            .await
            .unwrap();
        student
            .publish(DEFAULT_TOPIC, &ask(&id, None))
            .await
            .unwrap();
    }
    // The classmate's own request, after the student's: the node answers
    // in order, so any answer to those would come before this one's.
    classmate
        .publish(DEFAULT_TOPIC, &ask("mine", Some("w-classmate")))
        .await
        .unwrap();
    let mut unasked = Vec::new();
    loop {
        let frame = tokio::time::timeout(WAIT, classmate.recv())
            .await
            .expect("the classmate's own answer")
            .unwrap()
            .unwrap();
        let Ok(msg) = SpvMsg::decode(&frame) else {
            continue;
        };
        if msg.is_request() {
            continue;
        }
        if msg.id() == "mine" {
            break;
        }
        unasked.push(msg.id().to_owned());
    }
    assert!(
        unasked.is_empty(),
        "answers it never asked for: {unasked:?}"
    );
    node.stop().await;
    relay.stop().await.unwrap();
}

/// Issue 33, "the faucet": one student asks the faucet for 1,000 fresh
/// wallets as fast as it can, from its own laptop (127.0.0.2). Before, it
/// drew some 5,800 coins a minute with no cap, and a classmate asking
/// meanwhile was granted 0 of 8 ("the faucet is busy"). Now the relay
/// lets one address ask the faucet a few times a minute, and the
/// classmate is granted within 5 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_classmate_is_granted_while_a_student_floods_the_faucet() {
    use toycoin_common::control::{encode_hello, HELLO_TOPIC};
    let relay = relay().await;
    let addr = relay.addr.to_string();
    let mut oracle = OracleConfig::new(addr.clone(), profile());
    oracle.wallet_keys = Some(keys::oracle_keys().to_path_buf());
    oracle.mint_key = Some(keys::mint_key());
    oracle.wallets = 2;
    oracle.min_interval = 1000.0;
    oracle.max_interval = 1000.0;
    oracle.faucet = 50;
    let oracle = tokio::spawn(toycoin_oracle::run(oracle));
    let key = Wallet::generate(&mut StdRng::seed_from_u64(34)).unwrap();
    let mut classmate = LightWallet::connect(key, &addr, DEFAULT_TOPIC, profile())
        .await
        .unwrap();
    // The faucet is up once it answers (its first answer: a grant).
    let deadline = Instant::now() + WAIT;
    let first = spv::address_text(&toycoin_common::address::example(b"warm-up"));
    loop {
        let mut probe = RelayClient::connect(&addr, DEFAULT_TOPIC).await.unwrap();
        probe
            .publish(HELLO_TOPIC, &encode_hello("w-probe"))
            .await
            .unwrap();
        let ask = SpvMsg::Faucet {
            id: "probe".into(),
            address: first.clone(),
            reply_to: Some("w-probe".into()),
        };
        probe.publish(DEFAULT_TOPIC, &ask.encode()).await.unwrap();
        let answered = tokio::time::timeout(Duration::from_secs(2), async {
            while let Ok(Some(frame)) = probe.recv().await {
                if matches!(SpvMsg::decode(&frame), Ok(SpvMsg::Granted { .. })) {
                    return;
                }
            }
        })
        .await;
        if answered.is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "the faucet never answered");
    }

    // The student's flood, from its own laptop.
    let flooder = tokio::spawn({
        let addr = addr.clone();
        async move {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
            let stream = socket.connect(addr.parse().unwrap()).await.unwrap();
            let mut student = RelayClient::from_stream(stream, DEFAULT_TOPIC)
                .await
                .unwrap();
            student
                .publish(HELLO_TOPIC, &encode_hello("w-student"))
                .await
                .unwrap();
            for i in 0..1000 {
                let address = toycoin_common::address::example(format!("student {i}").as_bytes());
                let ask = SpvMsg::Faucet {
                    id: format!("s-{i}"),
                    address: spv::address_text(&address),
                    reply_to: Some("w-student".into()),
                };
                if student.publish(DEFAULT_TOPIC, &ask.encode()).await.is_err() {
                    break;
                }
            }
            student
        }
    });
    let student = flooder.await.unwrap();
    let asked = Instant::now();
    let granted = classmate.faucet(Duration::from_secs(5)).await;
    assert!(
        granted.is_ok(),
        "the classmate after {:.1} s: {granted:?}",
        asked.elapsed().as_secs_f64()
    );
    drop(student);
    oracle.abort();
    relay.stop().await.unwrap();
}
