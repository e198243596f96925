//! Fork choice: extending, side branches, reorganisations, orphans, and
//! invalid branches that change nothing.

// In tests a panic is the failure report.
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use toycoin_common::block::Block;
use toycoin_common::chain::{BlockError, Chain};
use toycoin_common::hash::{BlockHash, Hash};
use toycoin_common::ledger::TxError;
use toycoin_common::profile::Profile;
use toycoin_common::transaction::Transaction;
use toycoin_common::tree::{BlockTree, Received};

/// Block i is stamped T + 5 i (on the steady schedule, so the difficulty
/// stays low); two branches of the same length need the same work.
const START: u64 = 1_700_000_000;
/// "Now" for the checks, after every block's timestamp.
const T: u64 = START + 10_000;

/// Mines a block paying `miner`, with `txns` after its reward, on top of
/// `chain`'s tip.
fn mine_on(chain: &Chain, miner: &str, txns: Vec<Transaction>) -> Block {
    let miner = toycoin_common::address::example(miner.as_bytes());
    chain
        .mine_next(&miner, txns, START + 5 * chain.len() as u64)
        .unwrap()
}

/// A chain of `n` blocks on top of `base`, each paying its reward to `tag`
/// (so that two branches never share a block).
fn grow(base: &Chain, tag: &str, n: usize) -> (Chain, Vec<Block>) {
    let mut chain = base.clone();
    let mut blocks = Vec::new();
    for _ in 0..n {
        let block = mine_on(&chain, tag, Vec::new());
        chain.push(block.clone(), T).unwrap();
        blocks.push(block);
    }
    (chain, blocks)
}

fn adopted(r: Received) -> toycoin_common::tree::Adopted {
    match r {
        Received::Adopted(a) => a,
        other => panic!("expected a new best chain, got {other:?}"),
    }
}

#[test]
fn extends_then_ignores_what_it_knows() {
    let profile = Profile::steady(5.0);
    let (_, blocks) = grow(&Chain::new(profile), "a", 3);
    let mut tree = BlockTree::new(profile);
    let a = adopted(tree.receive(blocks[..1].to_vec(), T).unwrap());
    assert_eq!(
        (a.added, a.fork_height, a.is_reorganization()),
        (1, 0, false)
    );
    // The whole chain again (as the toycoin profile sends it): only the
    // new blocks count.
    let a = adopted(tree.receive(blocks.clone(), T).unwrap());
    assert_eq!((a.added, a.fork_height), (2, 1));
    assert_eq!(a.new_tip, blocks[2].header.this_hash);
    assert!(matches!(
        tree.receive(blocks.clone(), T).unwrap(),
        Received::Known
    ));
    assert_eq!(tree.chain().len(), 3);
}

#[test]
fn a_side_branch_with_more_work_takes_over_and_returns_the_old_blocks() {
    let profile = Profile::steady(5.0);
    let (base, first) = grow(&Chain::new(profile), "base", 1);
    let (_, ours) = grow(&base, "ours", 2);
    let (_, theirs) = grow(&base, "theirs", 3);
    let mut tree = BlockTree::new(profile);
    tree.receive(first.clone(), T).unwrap();
    tree.receive(ours.clone(), T).unwrap();
    let our_tip = tree.chain().tip_hash();

    // Their first block: less work, kept aside.
    match tree.receive(vec![theirs[0].clone()], T).unwrap() {
        Received::SideBranch {
            fork_height,
            length,
            work,
            best_work,
        } => {
            assert_eq!((fork_height, length), (1, 1));
            assert!(work < best_work);
        }
        other => panic!("expected a side branch, got {other:?}"),
    }
    // Their second: equal work, so the first seen (ours) stays, whichever
    // tip hash is lower.
    match tree.receive(vec![theirs[1].clone()], T).unwrap() {
        Received::SideBranch {
            work, best_work, ..
        } => {
            assert_eq!(work, best_work);
            assert_eq!(tree.chain().tip_hash(), our_tip);
            assert_eq!(tree.side_blocks(), 2);
        }
        other => panic!("expected a side branch, got {other:?}"),
    }

    // One more block on their branch: it wins, built from the kept blocks.
    let a = adopted(tree.receive(vec![theirs[2].clone()], T).unwrap());
    assert_eq!(a.old_tip, our_tip);
    assert_eq!(a.new_tip, theirs[2].header.this_hash);
    assert_eq!(a.fork_height, 1);
    assert_eq!(a.added, 3);
    assert_eq!(a.rolled_back, ours);
    assert_eq!(tree.chain().len(), 4);
    // The old blocks are now the side branch; the ledger follows the chain.
    assert_eq!(tree.side_blocks(), 2);
    assert!(tree.chain().ledger().contains(&theirs[0].txns[0].hash()));
    assert!(!tree.chain().ledger().contains(&ours[0].txns[0].hash()));
}

#[test]
fn a_block_whose_parent_is_unknown_is_an_orphan() {
    let profile = Profile::steady(5.0);
    let (_, blocks) = grow(&Chain::new(profile), "a", 2);
    let mut tree = BlockTree::new(profile);
    match tree.receive(vec![blocks[1].clone()], T).unwrap() {
        Received::Orphan { missing } => assert_eq!(missing, blocks[0].header.this_hash),
        other => panic!("expected an orphan, got {other:?}"),
    }
    assert!(tree.chain().is_empty());
}

#[test]
fn an_invalid_better_branch_changes_nothing_and_names_its_block() {
    let profile = Profile::steady(5.0);
    let (base, first) = grow(&Chain::new(profile), "base", 1);
    let (_, ours) = grow(&base, "ours", 1);
    let mut tree = BlockTree::new(profile);
    tree.receive(first.clone(), T).unwrap();
    tree.receive(ours.clone(), T).unwrap();
    let before = (tree.chain().tip_hash(), tree.chain().len());

    // Their branch repeats the base block's reward: its headers are fine
    // (and have more work), its second block's transaction is not.
    let (mid, mut theirs) = grow(&base, "theirs", 1);
    theirs.push(mine_on(&mid, "theirs", vec![first[0].txns[0].clone()]));
    let err = tree.receive(theirs, T).unwrap_err();
    assert_eq!(err.index, 2);
    assert_eq!(
        err.error,
        BlockError::Transaction {
            index: 1,
            error: TxError::Duplicate
        }
    );
    assert_eq!((tree.chain().tip_hash(), tree.chain().len()), before);
    assert!(tree.chain().ledger().contains(&ours[0].txns[0].hash()));
}

#[test]
fn a_tampered_chain_is_refused_at_the_tampered_block() {
    let profile = Profile::steady(5.0);
    let (_, mut blocks) = grow(&Chain::new(profile), "a", 3);
    blocks[1].txns[0].receiver_value += 1;
    let mut tree = BlockTree::new(profile);
    let err = tree.receive(blocks, T).unwrap_err();
    assert_eq!((err.index, err.error), (1, BlockError::MerkleRoot));
    assert!(tree.chain().is_empty());
}

#[test]
fn locators_find_the_fork_point() {
    let profile = Profile::steady(5.0);
    let (_, blocks) = grow(&Chain::new(profile), "a", 14);
    let mut tree = BlockTree::new(profile);
    assert!(tree.locator().is_empty());
    assert_eq!(tree.fork_point(&[]), 0);
    tree.receive(blocks.clone(), T).unwrap();
    let locator = tree.locator();
    assert_eq!(locator[0], blocks[13].header.this_hash);
    assert_eq!(*locator.last().unwrap(), blocks[0].header.this_hash);
    assert!(locator.len() < 14);
    // A peer that has blocks up to height 5 continues from 6.
    let (peer, _) = grow(&Chain::new(profile), "b", 0);
    let mut short = BlockTree::new(*peer.profile());
    short.receive(blocks[..6].to_vec(), T).unwrap();
    assert_eq!(tree.fork_point(&short.locator()), 6);
    assert_eq!(tree.fork_point(&[BlockHash(Hash::of(b"unknown"))]), 0);
}

#[test]
fn an_invalid_block_is_remembered_so_a_replay_or_a_child_costs_a_lookup() {
    let profile = Profile::steady(5.0);
    let (base, first) = grow(&Chain::new(profile), "base", 1);
    let mut tree = BlockTree::new(profile);
    tree.receive(first.clone(), T).unwrap();
    // A heavier branch whose second block repeats the base block's reward.
    let (mid, mut theirs) = grow(&base, "theirs", 1);
    let bad = mine_on(&mid, "theirs", vec![first[0].txns[0].clone()]);
    let bad_hash = bad.header.this_hash;
    theirs.push(bad);
    assert!(matches!(
        tree.receive(theirs.clone(), T).unwrap_err().error,
        BlockError::Transaction { .. }
    ));
    assert!(tree.known_invalid(&bad_hash).is_some());
    assert!(
        tree.known_invalid(&theirs[0].header.this_hash).is_none(),
        "its valid parent is not"
    );
    // The same frame again: refused before any check.
    let again = tree.receive(theirs.clone(), T).unwrap_err();
    assert_eq!(again.index, 1);
    assert!(
        matches!(&again.error, BlockError::KnownInvalid { hash, .. } if *hash == bad_hash),
        "{again}"
    );
    // A child of the invalid block is invalid too, and remembered.
    // (Its header only: a node refuses it before reading further.)
    let mut child = Block {
        header: mine_on(&mid, "child", Vec::new()).header,
        txns: Vec::new(),
    };
    child.header.previous_hash = bad_hash;
    child.header.this_hash = child.header.compute_hash();
    let err = tree.receive(vec![child.clone()], T).unwrap_err();
    assert!(matches!(err.error, BlockError::KnownInvalid { hash, .. } if hash == bad_hash));
    let why = tree.known_invalid(&child.header.this_hash).unwrap();
    assert!(why.starts_with("descends from"), "{why}");
    assert_eq!(tree.chain().len(), 1);

    // Issue 34: descendants sent one at a time named each ancestor in
    // turn ("descends from X: descends from Y: ..."), some 28 characters
    // more a generation, each kept in the 4,096-entry memory: quadratic.
    // Each now names the invalid block it descends from, once.
    let first = why.len();
    let mut parent = child;
    for generation in 0..34 {
        let mut next = parent.clone();
        next.header.previous_hash = parent.header.this_hash;
        next.header.this_hash = next.header.compute_hash();
        let err = tree.receive(vec![next.clone()], T).unwrap_err();
        assert!(matches!(err.error, BlockError::KnownInvalid { .. }));
        let why = tree.known_invalid(&next.header.this_hash).unwrap();
        assert_eq!(why.len(), first, "generation {generation}: {why}");
        assert!(why.contains(&bad_hash.short()), "{why}");
        parent = next;
    }
}

#[test]
fn a_good_block_tampered_with_in_transit_is_not_remembered_against_it() {
    let profile = Profile::steady(5.0);
    let (_, blocks) = grow(&Chain::new(profile), "a", 2);
    let mut tree = BlockTree::new(profile);
    tree.receive(blocks[..1].to_vec(), T).unwrap();
    // Its body changed (the Merkle root no longer matches), or emptied.
    let mut tampered = blocks[1].clone();
    tampered.txns[0].receiver_value += 1;
    let mut emptied = blocks[1].clone();
    emptied.txns.clear();
    for bad in [tampered, emptied] {
        assert!(tree.receive(vec![bad], T).is_err());
        assert!(tree.known_invalid(&blocks[1].header.this_hash).is_none());
    }
    // A header claiming the good block's hash over other contents.
    let mut impostor = blocks[1].clone();
    impostor.header.nonce = Bytes::from_static(b"0");
    assert_eq!(
        tree.receive(vec![impostor], T).unwrap_err().error,
        BlockError::HeaderHash
    );
    assert!(tree.known_invalid(&blocks[1].header.this_hash).is_none());
    // The intact block is still accepted.
    assert!(matches!(
        tree.receive(vec![blocks[1].clone()], T).unwrap(),
        Received::Adopted(_)
    ));
}

#[test]
fn side_branches_are_bounded_in_bytes_and_grow_from_their_last_block() {
    let profile = Profile::steady(5.0);
    let (_, best) = grow(&Chain::new(profile), "best", 6);
    let (_, side) = grow(&Chain::new(profile), "side", 5);
    let mut tree = BlockTree::new(profile);
    tree.receive(best.clone(), T).unwrap();
    // Block by block, each checked on top of the one before it.
    for (i, block) in side.iter().enumerate() {
        match tree.receive(vec![block.clone()], T).unwrap() {
            Received::SideBranch {
                fork_height,
                length,
                ..
            } => assert_eq!((fork_height, length), (0, i + 1)),
            other => panic!("expected a side branch, got {other:?}"),
        }
    }
    assert_eq!(tree.side_blocks(), 5);
    let size = side[0].size();
    assert_eq!(
        tree.side_bytes(),
        side.iter().map(Block::size).sum::<usize>()
    );
    // Room for about three: the oldest are forgotten first.
    tree.set_max_side_bytes(3 * size + size / 2);
    assert_eq!(tree.side_blocks(), 3);
    assert!(tree.side_bytes() <= 3 * size + size / 2);
    assert!(!tree.knows(&side[1].header.this_hash));
    assert!(tree.knows(&side[4].header.this_hash));
    // A block on a forgotten one is an orphan again.
    let on_side_1 = Chain::from_blocks(profile, side[..2].to_vec(), T).unwrap();
    let child = mine_on(&on_side_1, "child", Vec::new());
    assert!(matches!(
        tree.receive(vec![child], T).unwrap(),
        Received::Orphan { missing } if missing == side[1].header.this_hash
    ));
}

/// Rewriting the last six blocks costs what they cost: a branch forked six
/// blocks back, stamped as late as the rules allow (to pull its difficulty
/// down), gets at most one bit off per block (v3: what one timestamp
/// counts is clamped), and takes over only once its work passes the six
/// honest blocks': cheaper blocks count for less.
#[test]
fn a_branch_forked_six_blocks_back_needs_more_work_than_the_six_blocks() {
    use toycoin_common::profile::{FINAL_CONFIRMATIONS, MAX_FUTURE_SECS};
    let profile = Profile::steady(5.0);
    let (honest, blocks) = grow(&Chain::new(profile), "honest", 30);
    let mut tree = BlockTree::new(profile);
    adopted(tree.receive(blocks, T).unwrap());
    let fork = honest.len() - FINAL_CONFIRMATIONS;
    let mut secret = honest.clone();
    secret.truncate(fork);
    let late = T + MAX_FUTURE_SECS;
    let honest_bits = honest.entries()[fork].required_bits;
    let honest_work = honest.total_work() - honest.state_at(fork).0;
    for i in 0..100 {
        let bits = secret.next_required_bits();
        assert!(bits + 1 >= honest_bits, "attacker block {i}: {bits} bits");
        let block = secret
            .mine_next(
                &toycoin_common::address::example(b"attacker"),
                Vec::new(),
                late,
            )
            .unwrap();
        secret.push(block.clone(), T).unwrap();
        let secret_work = secret.total_work() - secret.state_at(fork).0;
        match tree.receive(vec![block], T).unwrap() {
            Received::SideBranch { .. } => {
                assert!(secret_work <= honest_work, "block {i}");
                assert_eq!(tree.chain().tip_hash(), honest.tip_hash());
            }
            received => {
                let a = adopted(received);
                assert!(secret_work > honest_work);
                assert_eq!(a.fork_height, fork);
                assert!(a.added > FINAL_CONFIRMATIONS, "{} blocks", a.added);
                return;
            }
        }
    }
    panic!("the secret branch never took over");
}
