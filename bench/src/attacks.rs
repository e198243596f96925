//! The attacks suite: what it costs a node to refuse what a hostile
//! student sends. So far: a branch with more work than the best chain whose
//! last block is invalid, refused the first time (every block before the
//! bad one validated, signatures included) and when the same frame is
//! replayed (the remembered invalid block: a lookup).

use std::time::Instant;

use rand::rngs::StdRng;
use rand::SeedableRng;
use toycoin_common::block::MAX_BLOCK_TXNS;
use toycoin_common::chain::{now_secs, Chain};
use toycoin_common::message::{encode_bloc, Message};
use toycoin_common::profile::Profile;
use toycoin_common::session::{BlocReport, SessionConfig, SessionCore, SessionEvent};
use toycoin_common::tree::BlockTree;
use toycoin_common::wallet::Wallet;

use crate::chains::extend;

/// Runs the invalid-branch attack: an honest chain of `blocks` blocks, an
/// attacker's branch of `blocks + 1` from genesis full of signed grants,
/// whose last block repeats one of them. Prints a table, returns figures.
pub fn run(blocks: usize, replays: usize) -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(7);
    let mint = Wallet::generate(&mut rng).expect("key");
    let profile = crate::programs::network_of(&mint).profile();
    eprintln!("attacks: mining an honest chain and a heavier invalid branch...");
    let mut honest = Chain::new(profile);
    let honest_blocks = extend(&mut honest, blocks, 1, |_| Vec::new());
    let per_block = MAX_BLOCK_TXNS - 1;
    let branch = invalid_branch(profile, &mint, &mut rng, blocks);
    let frame = encode_bloc(&branch);
    // A node receiving the branch never saw its transactions: mining it
    // here filled the signature cache, which a refusal must not find.
    toycoin_common::signatures::reset_signature_cache(true);

    // As a node receives it: decoded from the frame each time.
    let receive = |tree: &mut BlockTree| {
        let Ok(Message::Bloc(blocks)) = Message::decode(&frame) else {
            unreachable!("we encoded it");
        };
        let refused = tree.receive(blocks, now_secs()).is_err();
        assert!(refused, "the branch is invalid");
    };
    let mut tree = BlockTree::new(profile);
    tree.receive(honest_blocks, now_secs()).expect("honest");
    let start = Instant::now();
    receive(&mut tree);
    let first = start.elapsed().as_secs_f64();
    let start = Instant::now();
    for _ in 0..replays {
        receive(&mut tree);
    }
    let replay = start.elapsed().as_secs_f64() / replays.max(1) as f64;
    assert_eq!(
        tree.chain().tip_hash(),
        honest.tip_hash(),
        "nothing changed"
    );
    let ratio = first / replay;

    // As a node's session takes it: the frame's bytes, refused once, are
    // recognised unread when replayed (common/src/refused_frames.rs).
    let config = SessionConfig::new("bench", profile, "bench");
    let mut session = SessionCore::new(&config);
    session
        .tree_mut()
        .receive(
            honest
                .blocks()
                .skip(1)
                .map(std::borrow::Cow::into_owned)
                .collect(),
            now_secs(),
        )
        .expect("honest");
    let take = |session: &mut SessionCore| {
        session.on_frame(&frame, now_secs(), tokio::time::Instant::now());
        let mut refused = false;
        while let Some(event) = session.next_event() {
            refused |= matches!(
                event,
                SessionEvent::Bloc(BlocReport { result: Err(_), .. })
                    | SessionEvent::Replayed { .. }
            );
        }
        assert!(refused, "the branch is refused");
    };
    // The tree's refusal above filled the signature cache: a node's
    // session sees the branch for the first time.
    toycoin_common::signatures::reset_signature_cache(true);
    let start = Instant::now();
    take(&mut session);
    let session_first = start.elapsed().as_secs_f64();
    let start = Instant::now();
    for _ in 0..replays {
        take(&mut session);
    }
    let session_replay = start.elapsed().as_secs_f64() / replays.max(1) as f64;
    let session_ratio = session_first / session_replay;

    let signatures = 2 * per_block * blocks;
    println!("\n== attacks: an invalid branch with more work, {} blocks, {signatures} signatures, {} KB ==",
        branch.len(), frame.len() / 1000);
    println!("{:<40} {:>14}", "refusal", "ms");
    println!("{:<40} {:>14.3}", "first time (validated)", first * 1e3);
    println!(
        "{:<40} {:>14.4}",
        "replayed (remembered as invalid)",
        replay * 1e3
    );
    println!("replay is {ratio:.0}x cheaper, decoded each time");
    println!(
        "{:<40} {:>14.3}",
        "first time, a node's session",
        session_first * 1e3
    );
    println!(
        "{:<40} {:>14.4}",
        "replayed, a node's session (unread)",
        session_replay * 1e3
    );
    println!(
        "a node refuses a replay {session_ratio:.0}x cheaper than the first time (goal: at least 10x)"
    );
    let mut figures = vec![
        format!("invalid_branch_first_ms={:.3}", first * 1e3),
        format!("invalid_branch_replay_ms={:.4}", replay * 1e3),
        format!("invalid_branch_replay_ratio={ratio:.0}"),
        format!("invalid_branch_session_first_ms={:.3}", session_first * 1e3),
        format!(
            "invalid_branch_session_replay_ms={:.4}",
            session_replay * 1e3
        ),
        format!("invalid_branch_session_replay_ratio={session_ratio:.0}"),
    ];
    figures.extend(side_branch_growth(&[10, 200]));
    figures
}

/// Accepting one more block on a side branch of each length in `lengths`:
/// the new block alone is checked, so the time should not grow with the
/// branch.
fn side_branch_growth(lengths: &[usize]) -> Vec<String> {
    let profile = Profile::steady(5.0);
    let longest = lengths.iter().copied().max().unwrap_or(0);
    eprintln!(
        "attacks: mining a best chain of {} blocks and a side branch of {}...",
        longest + 10,
        longest + 1
    );
    let mut best = Chain::new(profile);
    let best_blocks = extend(&mut best, longest + 10, 1, |_| Vec::new());
    let mut side = Chain::new(profile);
    let side_blocks = extend(&mut side, longest + 1, 20, |_| Vec::new());
    println!("\n== attacks: one more block on a side branch ==");
    println!("{:<40} {:>14}", "side branch length", "us to accept");
    let mut figures = Vec::new();
    for &len in lengths {
        let mut tree = BlockTree::new(profile);
        tree.receive(best_blocks.clone(), now_secs()).expect("best");
        tree.receive(side_blocks[..len].to_vec(), now_secs())
            .expect("kept aside");
        // The median of 21 tries, each on a fresh copy of the tree.
        let mut times: Vec<f64> = (0..21)
            .map(|_| {
                let mut tree = tree.clone();
                let next = side_blocks[len].clone();
                let start = Instant::now();
                let received = tree.receive(vec![next], now_secs());
                let micros = start.elapsed().as_secs_f64() * 1e6;
                assert!(received.is_ok());
                assert_eq!(tree.side_blocks(), len + 1);
                micros
            })
            .collect();
        times.sort_by(f64::total_cmp);
        let micros = times[times.len() / 2];
        println!("{len:<40} {micros:>14.1}");
        figures.push(format!("side_extend_us_{len}={micros:.1}"));
    }
    figures
}

/// An attacker's branch of `blocks + 1` blocks from genesis, each full of
/// `mint`'s signed grants, whose last block repeats one of them: more
/// work than an honest chain of `blocks`, invalid only at its end.
fn invalid_branch(
    profile: Profile,
    mint: &Wallet,
    rng: &mut StdRng,
    blocks: usize,
) -> Vec<toycoin_common::block::Block> {
    let attacker = toycoin_common::address::example(b"attacker");
    let mut theirs = Chain::new(profile);
    let mut branch = extend(&mut theirs, blocks, 1, |_| {
        (0..MAX_BLOCK_TXNS - 1)
            .map(|_| mint.grant(rng, &attacker, 1).expect("signs"))
            .collect()
    });
    let repeat = branch[0].txns[1].clone();
    let bad = theirs
        .mine_next(&attacker, vec![repeat], now_secs())
        .expect("mined");
    branch.push(bad);
    branch
}

/// Issue 34: the same kind of invalid branch replayed `replays` times as
/// fast as one client sends it, at three mining nodes (in this process,
/// capped at 200,000 hashes a second each) while a client sends a mint's
/// grant every 100 ms: do the honest blocks and transactions reach every
/// node meanwhile?
pub async fn during_replay(replays: usize) -> Result<Vec<String>, String> {
    use std::collections::HashSet;
    use toycoin_common::message::encode_txn;
    use toycoin_common::relay::{RelayClient, DEFAULT_TOPIC};

    let mut rng = StdRng::seed_from_u64(8);
    let mint = Wallet::generate(&mut rng).map_err(|e| e.to_string())?;
    let network = crate::programs::network_of(&mint);
    let profile = network.profile();
    eprintln!("attacks: mining an invalid branch for the network...");
    let frame = encode_bloc(&invalid_branch(profile, &mint, &mut rng, 11));

    let relay = crate::programs::quiet_relay(network.clone()).await?;
    let mut nodes = Vec::new();
    for i in 0..3 {
        let mut config = toycoin_node::NodeConfig::new(relay.addr.to_string(), profile);
        config.name = format!("node{}", i + 1);
        config.max_hash_rate = Some(200_000.0);
        nodes.push(toycoin_node::spawn(config).0);
    }
    let mut client = RelayClient::connect(relay.addr, DEFAULT_TOPIC)
        .await
        .map_err(|e| e.to_string())?;
    let mut replayer = RelayClient::connect(relay.addr, "/replayer")
        .await
        .map_err(|e| e.to_string())?;
    // The network runs a moment first.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let heights_before: Vec<usize> = {
        let mut h = Vec::new();
        for node in &nodes {
            h.push(node.snapshot().await.map_or(0, |s| s.blocks.len()));
        }
        h
    };
    let replaying = {
        let frame = frame.clone();
        tokio::spawn(async move {
            // At least `replays`, and for at least 10 s: long enough for
            // the network to mine and confirm meanwhile.
            let start = Instant::now();
            let mut sent = 0usize;
            while sent < replays || start.elapsed() < std::time::Duration::from_secs(10) {
                if replayer.publish(DEFAULT_TOPIC, &frame).await.is_err() {
                    break;
                }
                sent += 1;
            }
            (start.elapsed().as_secs_f64(), sent)
        })
    };
    let mut sent = HashSet::new();
    while !replaying.is_finished() {
        let grant = mint
            .grant(&mut rng, &toycoin_common::address::example(b"a student"), 1)
            .map_err(|e| e.to_string())?;
        sent.insert(grant.hash());
        client
            .publish(DEFAULT_TOPIC, &encode_txn(&[], &grant))
            .await
            .map_err(|e| e.to_string())?;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (replay_secs, replayed) = replaying.await.map_err(|e| e.to_string())?;
    let replay_end = Instant::now();
    // Every honest transaction in every node's chain, and one tip.
    let deadline = replay_end + std::time::Duration::from_secs(120);
    let (confirmed_secs, blocks_during) = loop {
        let mut all = true;
        let mut tips = HashSet::new();
        let mut grown = Vec::new();
        for (node, before) in nodes.iter().zip(&heights_before) {
            let snapshot = node.snapshot().await.ok_or("a node stopped")?;
            let mined: HashSet<_> = snapshot
                .blocks
                .iter()
                .flat_map(|b| b.txns.iter().map(|t| t.hash()))
                .collect();
            all &= sent.iter().all(|t| mined.contains(t));
            tips.insert(snapshot.tip);
            grown.push(snapshot.blocks.len().saturating_sub(*before));
        }
        if all && tips.len() == 1 {
            break (replay_end.elapsed().as_secs_f64(), grown);
        }
        if Instant::now() > deadline {
            return Err(format!(
                "not every honest transaction reached every node's chain within 120 s of the replay's end ({} sent)",
                sent.len()
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    for node in nodes {
        node.stop().await;
    }
    relay.stop().await.map_err(|e| e.to_string())?;
    println!(
        "\n== attacks: a {} KB invalid branch replayed {replayed} times at 3 mining nodes ==",
        frame.len() / 1000
    );
    println!(
        "replayed in {replay_s:.1} s ({:.0} MB/s); {} honest transactions sent meanwhile, all in every node's chain {confirmed_secs:.1} s after the replay ended; blocks each node gained: {:?}",
        (frame.len() * replayed) as f64 / 1e6 / replay_secs,
        sent.len(),
        blocks_during,
        replay_s = replay_secs
    );
    Ok(vec![
        format!("replay_secs={replay_secs:.1}"),
        format!("replay_frames={replayed}"),
        format!("replay_honest_txns={}", sent.len()),
        format!("replay_honest_confirmed_after_s={confirmed_secs:.1}"),
    ])
}
