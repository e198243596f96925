//! Issue 36: students join from a browser. Two wallet pages in headless
//! Chromium (driven by Playwright, `tests/browser/wallet_pages.cjs`) make
//! keys, get faucet coins, one pays the other, and both see the payment
//! final and their balances proved, while a node that lies answers every
//! question too; a key saved from a page works in `toycoin-wallet`, and
//! one `toycoin-wallet` made works in a page.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;
use toycoin_common::block::BlockHeader;
use toycoin_common::hash::{BlockHash, Hash};
use toycoin_common::merkle::MerkleRoot;
use toycoin_common::message::{transaction_to_json, Message};
use toycoin_common::network::fetch;
use toycoin_common::relay::RelayClient;
use toycoin_common::spv::{self, HeaderWire, ProofWire, SpvMsg, StepWire};
use toycoin_common::wallet::Wallet;
use toycoin_tests::program::{relay, Program, WAIT};

/// How long the pages may take, all steps together.
const PAGES_TIMEOUT: Duration = Duration::from_secs(300);

/// Node and `playwright-core` (installed by `.ci/run` into
/// `target/tools/npm`), and Chromium; `None` (after "skipped") without
/// them, outside CI.
fn tools() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let modules = std::env::var_os("TOYCOIN_NODE_MODULES")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/tools/npm/node_modules"));
    let node = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let playwright = modules.join("playwright-core").is_dir();
    let browser = toycoin_tests::browser::Browser::find("drive the wallet pages").is_some();
    if node && playwright && browser {
        return Some(modules);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI is set but node ({node}) or playwright-core in {} ({playwright}) is missing",
        modules.display()
    );
    if browser {
        println!(
            "skipped: no node, or no playwright-core in {}",
            modules.display()
        );
    }
    None
}

/// A node that lies to every light wallet, answering everyone: a header
/// with too little work after genesis, and a proof of 1,000 coins for
/// whoever asks, along a Merkle path that leads nowhere.
async fn liar(addr: String) {
    let genesis = fetch(&addr).await.expect("the network").profile().genesis;
    let mut weak = BlockHeader {
        timestamp: Bytes::from(toycoin_common::chain::now_secs().to_string()),
        previous_hash: genesis,
        nonce: Bytes::new(),
        merkle_root: MerkleRoot::from_slice(&[1; 65]).expect("65 bytes"),
        this_hash: genesis,
    };
    for nonce in 0u64.. {
        weak.nonce = Bytes::from(nonce.to_string());
        weak.this_hash = weak.compute_hash();
        if weak.this_hash.leading_zero_bits() == 0 {
            break;
        }
    }
    let stranger = Wallet::random().expect("a key");
    let mut client = RelayClient::connect(&addr, "/topic/main")
        .await
        .expect("the liar connects");
    let mut first_block = BlockHash::from_raw_hash(Hash::of(b"no block yet"));
    while let Ok(Some(frame)) = client.recv().await {
        if let Ok(Message::Bloc(blocks)) = Message::decode(&frame) {
            if let Some(b) = blocks.iter().find(|b| b.header.previous_hash == genesis) {
                first_block = b.header.this_hash;
            }
            continue;
        }
        let Ok(msg) = SpvMsg::decode(&frame) else {
            continue;
        };
        let answer = match msg {
            SpvMsg::GetHeaders { id, .. } => SpvMsg::Headers {
                id,
                headers: vec![HeaderWire::from_header(&weak)],
            },
            SpvMsg::GetProofs { id, address, .. } => {
                let Ok(to) = spv::address_from_text(&address) else {
                    continue;
                };
                let fake = stranger
                    .grant(&mut rand::thread_rng(), &to, 1000)
                    .expect("a grant");
                let item = ProofWire {
                    txn: transaction_to_json(&fake),
                    height: 0,
                    block: spv::block_hash_text(&first_block),
                    path: vec![StepWire {
                        sibling: Some(spv::address_text(&[7; 65])),
                        right: false,
                    }],
                };
                SpvMsg::Proofs {
                    id,
                    address,
                    items: vec![item],
                }
            }
            _ => continue,
        };
        if client
            .publish("/topic/main", &answer.encode())
            .await
            .is_err()
        {
            return;
        }
    }
}

/// The 16-digit fingerprint `toycoin-wallet address` prints.
fn cli_fingerprint(out: &str) -> String {
    out.split("send --to ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_students_pay_each_other_from_their_browsers() {
    let Some(modules) = tools() else { return };
    let dir = std::env::temp_dir().join(format!("toycoin-browser-wallet-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mint = toycoin_tests::keys::mint_key().display().to_string();
    let (mut relay, addr) = relay(&["--mint-key", &mint, "--target-interval", "1"]).await;
    let port = addr.rsplit(':').next().unwrap().to_owned();
    let common = ["--host", "127.0.0.1", "--port", port.as_str()];
    let node_key = dir.join("node.pem").display().to_string();
    let mut node = Program::start(
        "toycoin-node",
        &[
            &common[..],
            &["--wallet", &node_key, "--max-hash-rate", "2M"],
        ]
        .concat(),
    );
    let mut oracle = Program::start(
        "toycoin-oracle",
        &[&common[..], &["--mint-key", &mint, "--faucet", "50"]].concat(),
    );
    let mut listener = Program::start(
        "toycoin-listener",
        &[&common[..], &["--brief", "--web", "127.0.0.1:0"]].concat(),
    );
    let line = listener
        .wait_line("the web view", WAIT, |l| l.contains("Web view: http://"))
        .await;
    let url = line
        .split("Web view: ")
        .nth(1)
        .unwrap()
        .trim()
        .trim_end_matches('/')
        .to_owned();
    let liar = tokio::spawn(liar(addr.clone()));

    // A key made by toycoin-wallet, for a page to take in.
    let cli_key = dir.join("cli.pem").display().to_string();
    let mut made = Program::start("toycoin-wallet", &["--key", &cli_key, "new"]);
    assert!(made.wait_exit(WAIT).await.success(), "{}", made.output());
    let mut said = Program::start("toycoin-wallet", &["--key", &cli_key, "address"]);
    said.wait_exit(WAIT).await;
    let cli_fingerprint = cli_fingerprint(&said.output());
    assert_eq!(cli_fingerprint.len(), 16, "{}", said.output());

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("browser/wallet_pages.cjs");
    let mut pages = tokio::process::Command::new("node");
    pages
        .arg(&script)
        .args([url.as_str(), &dir.display().to_string(), &cli_key])
        .env("NODE_PATH", &modules)
        .kill_on_drop(true);
    let out = tokio::time::timeout(PAGES_TIMEOUT, pages.output())
        .await
        .expect("the pages finished in time")
        .expect("node ran");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tail = |p: &Program| {
        let out = p.output();
        let lines: Vec<&str> = out.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    };
    assert!(
        out.status.success(),
        "pages:\n{stdout}\n{stderr}\nnode:\n{}\noracle:\n{}",
        tail(&node),
        tail(&oracle)
    );
    let result: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}: {stdout}"));

    // Each page got the faucet's 50, the payment of 20 moved, both saw it
    // final, and the liar's headers and proof were refused, not counted.
    let (a, b) = (&result["a"], &result["b"]);
    let (a_before, b_before) = (a["before"].as_i64().unwrap(), b["before"].as_i64().unwrap());
    assert!(a_before >= 50 && b_before >= 50, "{result}");
    assert_eq!(a["after"].as_i64().unwrap(), a_before - 20, "{result}");
    assert_eq!(b["after"].as_i64().unwrap(), b_before + 20, "{result}");
    let payment = result["payment"].as_str().unwrap();
    for page in [a, b] {
        let row = page["history"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .find(|r| r.starts_with(payment))
            .unwrap_or_else(|| panic!("no row for {payment}: {result}"));
        assert!(row.contains("✓ final"), "{row}");
    }
    let refused = a["refused"].to_string();
    assert!(refused.contains("proof of work too weak"), "{refused}");
    assert!(
        refused.contains("proof refused: block")
            || refused.contains("proof refused: the Merkle path does not lead"),
        "{refused}"
    );
    assert_eq!(result["errors"], Value::Array(Vec::new()), "{result}");
    // toycoin-wallet's key, taken in by a page: the same wallet.
    assert_eq!(result["c"]["fingerprint"], cli_fingerprint, "{result}");
    // The page's key, in toycoin-wallet: the same balance, proved again.
    let page_key = dir.join("page-a.pem");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&page_key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let page_key = page_key.display().to_string();
    let mut balance = Program::start(
        "toycoin-wallet",
        &[&["--key", page_key.as_str()][..], &common[..], &["balance"]].concat(),
    );
    assert!(
        balance.wait_exit(WAIT).await.success(),
        "{}",
        balance.output()
    );
    let want = format!(
        "Wallet {}: balance {}",
        &a["fingerprint"].as_str().unwrap()[..8],
        a["after"]
    );
    assert!(
        balance.output().contains(&want),
        "{want}\n{}",
        balance.output()
    );

    liar.abort();
    for p in [&mut listener, &mut oracle, &mut node] {
        assert!(p.stop(WAIT).await.success(), "{}", p.output());
    }
    assert!(relay.stop(WAIT).await.success());
    let _ = std::fs::remove_dir_all(&dir);
}
