//! Each validation rule rejecting a crafted transaction or block with the
//! right reason, and the happy paths next to them.

// In tests a panic is the failure report.
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use rand::rngs::OsRng;
use toycoin_common::block::{Block, BlockHeader};
use toycoin_common::block_store::BlockStore;
use toycoin_common::chain::{check_body, now_secs, BlockError, Chain};
use toycoin_common::hash::{BlockHash, Hash, Txid};
use toycoin_common::ledger::TxError;
use toycoin_common::merkle::merkle_root;
use toycoin_common::message::TxnMessage;
use toycoin_common::network::Network;
use toycoin_common::pow::{CancelToken, MineOutcome, Miner, MiningJob};
use toycoin_common::profile::{
    Minting, Profile, Signing, BLOCK_REWARD, MAX_BLOCK_BYTES, MAX_FUTURE_SECS, MAX_SUPPLY,
    MAX_TXN_BYTES,
};
use toycoin_common::transaction::{Token, Transaction};
use toycoin_common::wallet::Wallet;

/// Three wallets, and a chain whose first block funds `a` with 100 and `b`
/// with 50: with coinbases in toycoin, with grants from `mint` in steady
/// (where every block also pays its reward to `c`).
#[derive(Clone)]
struct World {
    a: Wallet,
    b: Wallet,
    c: Wallet,
    mint: Wallet,
    chain: Chain,
}

/// Four wallets, generated once for every test in this file: an RSA key
/// takes about a second to make, and each test only needs wallets of its
/// own chain, not keys nobody else has.
fn keys() -> &'static [Wallet; 4] {
    static KEYS: std::sync::OnceLock<[Wallet; 4]> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| std::array::from_fn(|_| Wallet::generate(&mut OsRng).unwrap()))
}

fn wallets() -> (Wallet, Wallet, Wallet) {
    let [a, b, c, _] = keys().clone();
    (a, b, c)
}

impl World {
    fn new(profile: Profile) -> World {
        World::with_store(profile, BlockStore::new())
    }

    /// A world whose chain keeps its bodies in `store`.
    fn with_store(profile: Profile, store: BlockStore) -> World {
        let (a, b, c) = wallets();
        let mint = keys()[3].clone();
        let chain = Chain::with_store(profile, store);
        let funding = match profile.minting() {
            Minting::AnyCoinbase => vec![
                Transaction::coinbase(a.address().clone(), 100),
                Transaction::coinbase(b.address().clone(), 50),
            ],
            Minting::RewardsAndMint => vec![
                mint.grant(&mut OsRng, a.address(), 100).unwrap(),
                mint.grant(&mut OsRng, b.address(), 50).unwrap(),
            ],
        };
        let mut w = World {
            a,
            b,
            c,
            mint,
            chain,
        };
        w.push(funding).unwrap();
        w
    }

    /// The next block's reward to `c`, where the profile pays one.
    fn reward(&self) -> Option<Transaction> {
        let value = self.chain.ledger().next_reward()?;
        Some(Transaction::reward(
            self.c.address().clone(),
            value,
            self.chain.len() as u64,
        ))
    }

    /// The unspent tokens of `w` on the chain.
    fn tokens(&self, w: &Wallet) -> Vec<Token> {
        self.chain.unspent(w.address())
    }

    fn pay(&self, from: &Wallet, to: &Wallet, value: i64) -> TxnMessage {
        let signing = self.chain.profile().signing();
        from.transfer(&mut OsRng, to.address(), value, self.tokens(from), signing)
            .unwrap()
    }

    /// `n` transfers of 1 from a to c, each spending the one before's
    /// change.
    fn transfers_a_to_c(&self, n: usize) -> Vec<Transaction> {
        let signing = self.chain.profile().signing();
        let mut tokens = self.tokens(&self.a);
        let mut txns = Vec::new();
        for _ in 0..n {
            let m = self
                .a
                .transfer(&mut OsRng, self.c.address(), 1, tokens, signing)
                .unwrap();
            tokens = vec![m.txn.output(
                m.txn.hash(),
                toycoin_common::transaction::OutputKind::Change,
            )];
            txns.push(m.txn);
        }
        txns
    }

    fn check(&self, m: &TxnMessage) -> Result<(), TxError> {
        self.chain
            .ledger()
            .check(&m.txn, Some(&m.tokens))
            .map(|_| ())
    }

    /// Mines `txns` (after the reward, where the profile pays one) on the
    /// tip and tries to append the block.
    fn push(&mut self, txns: Vec<Transaction>) -> Result<(), BlockError> {
        let all = self.reward().into_iter().chain(txns).collect();
        self.push_exactly(all)
    }

    /// Mines exactly `txns` on the tip and tries to append the block.
    fn push_exactly(&mut self, txns: Vec<Transaction>) -> Result<(), BlockError> {
        let block = mine(&self.chain, txns, now_secs());
        self.chain.push(block, now_secs())
    }
}

/// A block of `txns` on the chain's tip, with a real proof of work.
fn mine(chain: &Chain, txns: Vec<Transaction>, timestamp: u64) -> Block {
    let hashes: Vec<Txid> = txns.iter().map(Transaction::hash).collect();
    let job = MiningJob {
        timestamp,
        previous_hash: chain.tip_hash(),
        merkle_root: merkle_root(&hashes).unwrap_or(toycoin_common::merkle::MerkleRoot(
            toycoin_common::merkle::MerkleNode([1; 65]),
        )),
        required_bits: chain.next_required_bits(),
    };
    let MineOutcome::Found(header) = Miner::new(2).mine(&job, &CancelToken::new()).outcome else {
        panic!("mining was not cancelled, so it finds a header");
    };
    Block {
        header: *header,
        txns,
    }
}

fn toycoin() -> World {
    World::new(Profile::toycoin())
}

// --- transactions received alone --------------------------------------

#[test]
fn accepts_a_valid_transfer_and_coinbase_funding() {
    let w = toycoin();
    assert_eq!(w.check(&w.pay(&w.a, &w.c, 30)), Ok(()));
    let funding = Transaction::coinbase(w.c.address().clone(), 10);
    assert_eq!(
        w.chain.ledger().check(&funding, Some(&[])).map(|_| ()),
        Ok(())
    );
}

#[test]
fn rejects_previous_hashes_that_are_not_the_tokens() {
    let w = toycoin();
    let mut m = w.pay(&w.a, &w.c, 30);
    m.txn.previous_hashes[0] = Txid(Hash::of(b"something else"));
    assert_eq!(w.check(&m), Err(TxError::PreviousHashMismatch { index: 0 }));
    let mut m = w.pay(&w.a, &w.c, 30);
    m.tokens.push(m.tokens[0].clone());
    assert_eq!(
        w.check(&m),
        Err(TxError::TokenCount {
            tokens: 2,
            previous_hashes: 1
        })
    );
}

#[test]
fn rejects_spending_a_token_the_sender_does_not_own() {
    let w = toycoin();
    // c signs a transfer of a's tokens: the signatures are c's and valid,
    // but the tokens are not c's.
    let m =
        w.c.transfer(
            &mut OsRng,
            w.c.address(),
            100,
            w.tokens(&w.a),
            Signing::Original,
        )
        .unwrap();
    assert_eq!(w.check(&m), Err(TxError::NotOwner { index: 0 }));
    // The same without tokens (as inside a block): the output is a's.
    let found = w.chain.ledger().check(&m.txn, None);
    assert_eq!(found.map(|_| ()), Err(TxError::NotOwner { index: 0 }));
}

#[test]
fn rejects_amounts_that_do_not_add_up() {
    let w = toycoin();
    // Signatures do not cover amounts, so this still verifies.
    let mut m = w.pay(&w.a, &w.c, 30);
    m.txn.sender_change += 1;
    assert_eq!(
        w.check(&m),
        Err(TxError::ValueMismatch {
            inputs: 100,
            outputs: 101
        })
    );
}

#[test]
fn rejects_negative_amounts() {
    let w = toycoin();
    let mut m = w.pay(&w.a, &w.c, 30);
    m.txn.receiver_value = -10;
    m.txn.sender_change = 110;
    assert_eq!(
        w.check(&m),
        Err(TxError::NegativeAmount {
            field: "receiver_value",
            value: -10
        })
    );
    let minted = Transaction::coinbase(w.c.address().clone(), -5);
    assert!(matches!(
        w.chain.ledger().check(&minted, None),
        Err(TxError::NegativeAmount { .. })
    ));
}

#[test]
fn rejects_bad_signatures_and_bad_keys() {
    let w = toycoin();
    let mut m = w.pay(&w.a, &w.c, 30);
    let mut sig = m.txn.receiver_signature.to_vec();
    sig[7] ^= 1;
    m.txn.receiver_signature = Bytes::from(sig);
    assert_eq!(
        w.check(&m),
        Err(TxError::BadSignature { which: "receiver" })
    );

    // Redirecting the payment invalidates the receiver signature.
    let mut m = w.pay(&w.a, &w.c, 30);
    m.txn.receiver = w.b.address().clone();
    assert_eq!(
        w.check(&m),
        Err(TxError::BadSignature { which: "receiver" })
    );

    let mut m = w.pay(&w.a, &w.c, 30);
    let mut sig = m.txn.sender_signature.to_vec();
    sig[200] ^= 0x40;
    m.txn.sender_signature = Bytes::from(sig);
    assert_eq!(w.check(&m), Err(TxError::BadSignature { which: "sender" }));
}

#[test]
fn rejects_unknown_inputs_and_forged_tokens() {
    let w = toycoin();
    let ghost = Transaction::coinbase(w.a.address().clone(), 1000);
    let m =
        w.a.transfer(
            &mut OsRng,
            w.c.address(),
            5,
            ghost.outputs()[..1].to_vec(),
            Signing::Original,
        )
        .unwrap();
    assert!(matches!(
        w.check(&m),
        Err(TxError::UnknownInput { index: 0, .. })
    ));

    // A token that claims more value than its output holds.
    let mut tokens = w.tokens(&w.a);
    tokens[0].value = 1000;
    let m =
        w.a.transfer(&mut OsRng, w.c.address(), 500, tokens, Signing::Original)
            .unwrap();
    assert_eq!(w.check(&m), Err(TxError::TokenMismatch { index: 0 }));

    // A token that carries another signature than its output's: the
    // ledger keeps only a digest of the signature, and still tells.
    let mut tokens = w.tokens(&w.a);
    let mut forged = tokens[0].signature.to_vec();
    forged.push(0);
    tokens[0].signature = forged.into();
    let m =
        w.a.transfer(&mut OsRng, w.c.address(), 5, tokens, Signing::Original)
            .unwrap();
    assert_eq!(w.check(&m), Err(TxError::TokenMismatch { index: 0 }));
}

#[test]
fn rejects_a_coinbase_that_spends_tokens_and_a_transfer_without_inputs() {
    let w = toycoin();
    let mut minted = Transaction::coinbase(w.c.address().clone(), 5);
    minted.previous_hashes.push(w.tokens(&w.a)[0].txn_hash);
    assert_eq!(
        w.chain.ledger().check(&minted, None).map(|_| ()),
        Err(TxError::CoinbaseWithInputs)
    );
    let m =
        w.a.transfer(&mut OsRng, w.c.address(), 0, Vec::new(), Signing::Original)
            .unwrap();
    assert_eq!(w.check(&m), Err(TxError::NoInputs));
}

// --- double spends ----------------------------------------------------

#[test]
fn rejects_a_token_spent_twice_across_the_chain() {
    let mut w = toycoin();
    let first = w.pay(&w.a, &w.c, 30);
    let second = w.pay(&w.a, &w.b, 60); // same token, built before the first is mined
    w.push(vec![first.txn]).unwrap();
    assert!(matches!(
        w.check(&second),
        Err(TxError::AlreadySpent { index: 0, .. })
    ));
    let err = w.push(vec![second.txn]).unwrap_err();
    assert!(matches!(
        err,
        BlockError::Transaction {
            index: 0,
            error: TxError::AlreadySpent { index: 0, .. }
        }
    ));
}

#[test]
fn rejects_a_token_spent_twice_inside_one_block() {
    let mut w = toycoin();
    let first = w.pay(&w.a, &w.c, 30);
    let second = w.pay(&w.a, &w.b, 60);
    let before = w.chain.ledger().balances();
    let err = w.push(vec![first.txn, second.txn]).unwrap_err();
    assert!(matches!(
        err,
        BlockError::Transaction {
            index: 1,
            error: TxError::AlreadySpent { index: 0, .. }
        }
    ));
    assert_eq!(w.chain.len(), 1);
    assert_eq!(
        w.chain.ledger().balances(),
        before,
        "a refused block changes nothing"
    );
}

#[test]
fn rejects_a_transaction_repeated_in_the_steady_profile() {
    let mut w = steady();
    let m = w.pay(&w.a, &w.c, 30);
    w.push(vec![m.txn.clone()]).unwrap();
    assert_eq!(w.check(&m), Err(TxError::Duplicate));
    let err = w.push(vec![m.txn]).unwrap_err();
    assert_eq!(
        err,
        BlockError::Transaction {
            index: 1,
            error: TxError::Duplicate
        },
        "after the block's reward"
    );
}

// --- blocks -----------------------------------------------------------

#[test]
fn a_block_may_spend_outputs_of_an_earlier_transaction_in_it() {
    let mut w = toycoin();
    let parent = w.pay(&w.a, &w.c, 30);
    let child_token = parent.txn.outputs()[0].clone();
    let child =
        w.c.transfer(
            &mut OsRng,
            w.b.address(),
            10,
            vec![child_token],
            Signing::Original,
        )
        .unwrap();
    // Child before parent: its input does not exist yet.
    let err = w
        .push(vec![child.txn.clone(), parent.txn.clone()])
        .unwrap_err();
    assert!(matches!(
        err,
        BlockError::Transaction {
            index: 0,
            error: TxError::UnknownInput { .. }
        }
    ));
    let before = (w.chain.ledger().balances(), w.chain.ledger().output_count());
    w.push(vec![parent.txn, child.txn]).unwrap();
    let ledger = w.chain.ledger();
    assert_eq!(
        [
            ledger.balance(w.a.address()),
            ledger.balance(w.b.address()),
            ledger.balance(w.c.address())
        ],
        [70, 60, 20]
    );
    // Taken back, the output the block made and spent is gone with the
    // rest of what it made, and what it spent from before is back.
    let block = w.chain.pop().unwrap();
    let ledger = w.chain.ledger();
    assert_eq!((ledger.balances(), ledger.output_count()), before);
    w.chain.push(block, now_secs()).unwrap();
}

#[test]
fn checks_transactions_in_blocks_as_strictly_as_lone_ones() {
    let mut w = toycoin();
    let mut m = w.pay(&w.a, &w.c, 30);
    m.txn.receiver_value = 90; // inflation: signatures still verify
    let err = w.push(vec![m.txn]).unwrap_err();
    assert_eq!(
        err,
        BlockError::Transaction {
            index: 0,
            error: TxError::ValueMismatch {
                inputs: 100,
                outputs: 160
            }
        }
    );
    let mut m = w.pay(&w.b, &w.c, 5);
    let mut sig = m.txn.sender_signature.to_vec();
    sig[0] ^= 0xff;
    m.txn.sender_signature = Bytes::from(sig);
    let ok = Transaction::coinbase(w.c.address().clone(), 1);
    let err = w.push(vec![ok, m.txn]).unwrap_err();
    assert_eq!(
        err,
        BlockError::Transaction {
            index: 1,
            error: TxError::BadSignature { which: "sender" }
        }
    );
}

#[test]
fn a_block_holds_one_to_ten_transactions() {
    let mut w = toycoin();
    assert_eq!(w.push(Vec::new()), Err(BlockError::NoTransactions));
    let eleven: Vec<Transaction> = (0..11)
        .map(|i| Transaction::coinbase(w.c.address().clone(), i))
        .collect();
    assert_eq!(
        w.push(eleven.clone()),
        Err(BlockError::TooManyTransactions { got: 11, max: 10 })
    );
    w.push(eleven[..10].to_vec()).unwrap();
    assert_eq!(w.chain.ledger().balance(w.c.address()), 45);
}

#[test]
fn rejects_bad_headers() {
    let mut w = toycoin();
    let txns = vec![Transaction::coinbase(w.c.address().clone(), 1)];
    let good = mine(&w.chain, txns.clone(), now_secs());

    let mut off_tip = good.clone();
    off_tip.header.previous_hash = BlockHash(Hash::of(b"elsewhere"));
    assert!(matches!(
        w.chain.push(off_tip, now_secs()),
        Err(BlockError::PreviousHash { .. })
    ));

    let mut tampered = good.clone();
    tampered.header.nonce = Bytes::from_static(b"1");
    assert_eq!(
        w.chain.push(tampered, now_secs()),
        Err(BlockError::HeaderHash)
    );

    let mut swapped = good.clone();
    swapped.txns = vec![Transaction::coinbase(w.c.address().clone(), 2)];
    assert_eq!(
        w.chain.push(swapped, now_secs()),
        Err(BlockError::MerkleRoot)
    );

    // A correct header hash with too few zero bits.
    let mut weak = good.header.clone();
    for nonce in 0u64.. {
        weak.nonce = Bytes::from(nonce.to_string());
        weak.this_hash = weak.compute_hash();
        if weak.this_hash.leading_zero_bits() < 8 {
            break;
        }
    }
    let got = weak.this_hash.leading_zero_bits();
    let weak = Block { header: weak, txns };
    assert_eq!(
        w.chain.push(weak, now_secs()),
        Err(BlockError::InsufficientWork { required: 8, got })
    );

    w.chain.push(good, now_secs()).unwrap();
    assert_eq!(w.chain.len(), 2);
}

#[test]
fn steady_timestamps_may_not_go_backwards_or_far_ahead() {
    let mut w = steady();
    let now = now_secs();
    let tip_time = w.chain.tip().unwrap().header.timestamp_secs().unwrap();
    let txns = || vec![Transaction::coinbase(Bytes::from_static(b"x"), 1)];

    // A laptop's clock behind the median time past is taken, up to
    // MAX_FUTURE_SECS behind it (v3: honest miners stamp their own clock).
    let past = mine(&w.chain, txns(), tip_time - MAX_FUTURE_SECS - 1);
    assert_eq!(
        w.chain.clone().push(past, now),
        Err(BlockError::TimestampBackwards {
            median: tip_time,
            got: tip_time - MAX_FUTURE_SECS - 1
        })
    );
    let behind = mine(&w.chain, txns(), tip_time - MAX_FUTURE_SECS);
    assert!(!matches!(
        w.chain.clone().push(behind, now),
        Err(BlockError::TimestampBackwards { .. })
    ));
    let ahead = now + MAX_FUTURE_SECS + 5;
    let future = mine(&w.chain, txns(), ahead);
    assert_eq!(
        w.chain.push(future, now),
        Err(BlockError::TimestampInFuture { got: ahead, now })
    );

    // The toycoin profile reads no timestamps at all, as the original.
    let mut t = toycoin();
    let past = mine(&t.chain, txns(), 12);
    t.chain.push(past, now).unwrap();
}

#[test]
fn steady_timestamp_that_is_not_decimal_is_refused() {
    let w = steady();
    let txns = [Transaction::coinbase(Bytes::from_static(b"x"), 1)];
    let hashes: Vec<Txid> = txns.iter().map(Transaction::hash).collect();
    let mut header = BlockHeader {
        timestamp: Bytes::from_static(b"soon"),
        previous_hash: w.chain.tip_hash(),
        nonce: Bytes::new(),
        merkle_root: merkle_root(&hashes).unwrap(),
        this_hash: BlockHash(Hash([0; 64])),
    };
    let required = w.chain.next_required_bits();
    for nonce in 0u64.. {
        header.nonce = Bytes::from(nonce.to_string());
        header.this_hash = header.compute_hash();
        if header.this_hash.leading_zero_bits() >= required {
            break;
        }
    }
    assert_eq!(
        w.chain.check_header(&header, now_secs()),
        Err(BlockError::TimestampNotDecimal)
    );
}

#[test]
fn popping_a_block_restores_the_ledger() {
    let mut w = toycoin();
    let before = w.chain.ledger().balances();
    let m = w.pay(&w.a, &w.c, 30);
    w.push(vec![m.txn.clone()]).unwrap();
    assert_ne!(w.chain.ledger().balances(), before);
    let popped = w.chain.pop().unwrap();
    assert_eq!(popped.txns, vec![m.txn.clone()]);
    assert_eq!(w.chain.ledger().balances(), before);
    // The spend is valid again, and the block goes back on.
    assert_eq!(w.check(&m), Ok(()));
    w.chain.push(popped, now_secs()).unwrap();
    assert_eq!(w.chain.len(), 2);
}

/// A chain keeps only its newest bodies in memory: the older ones, and the
/// outputs they spent, go to its store's file and come back intact, for a
/// catch-up answer or a reorganisation deeper than the window.
/// Outputs of one owner share one copy of its address, however many
/// transactions (each decoded with its own copy) paid it.
#[test]
fn a_ledger_keeps_one_copy_of_each_owner() {
    let profile = Network::steady(5.0, Some(keys()[3].address().clone())).profile();
    let mut w = World::with_store(profile, BlockStore::with_max_recent(2));
    for i in 0..4 {
        let mut m = w.pay(&w.a, &w.c, 1 + i);
        // As a decoded frame has it: an allocation of its own.
        m.txn.receiver = Bytes::copy_from_slice(&m.txn.receiver);
        m.txn.sender = Bytes::copy_from_slice(&m.txn.sender);
        w.push(vec![m.txn]).unwrap();
    }
    let paid = w.chain.unspent(w.c.address());
    assert!(paid.len() >= 4, "{} tokens", paid.len());
    let first = paid[0].owner.as_ptr();
    assert!(paid.iter().all(|t| t.owner.as_ptr() == first));
}

#[test]
fn old_blocks_leave_memory_and_come_back_intact() {
    let window = 2;
    let profile = Network::steady(5.0, Some(keys()[3].address().clone())).profile();
    let mut w = World::with_store(profile, BlockStore::with_max_recent(window));
    // The same blocks on a chain that keeps everything in memory.
    let mut all = Chain::new(*w.chain.profile());
    all.push(w.chain.block(0).unwrap().into_owned(), now_secs())
        .unwrap();
    let first_token = w.tokens(&w.a);
    for i in 0..6 {
        let m = w.pay(&w.a, &w.c, 1 + i);
        w.push(vec![m.txn]).unwrap();
        let block = w.chain.tip().unwrap().clone();
        all.push(block, now_secs()).unwrap();
    }
    let len = w.chain.len();
    assert_eq!(len, 7);
    assert_eq!(w.chain.store().archived_len(), len - window);
    for h in 0..len {
        assert_eq!(
            w.chain.block(h).unwrap().as_ref(),
            all.block(h).unwrap().as_ref()
        );
        assert_eq!(w.chain.entries()[h].header, all.block(h).unwrap().header);
    }
    assert_eq!(w.chain.ledger().balances(), all.ledger().balances());
    // A spent output leaves the ledger for its block's undo, whether the
    // block is in memory or in the file: either ledger holds what is
    // unspent, and nothing more.
    for ledger in [w.chain.ledger(), all.ledger()] {
        assert_eq!(ledger.output_count(), ledger.unspent_count());
    }
    assert_eq!(w.chain.ledger().output_count(), all.ledger().output_count());

    // c's tokens, most from blocks in the file: the ledger keeps no
    // signatures, so each is read back from its block, and is exactly the
    // output its transaction made.
    let mut made: Vec<Token> = (0..len)
        .flat_map(|h| w.chain.block(h).unwrap().into_owned().txns)
        .flat_map(|t| t.outputs())
        .filter(|t| t.owner == *w.c.address() && t.value > 0)
        .collect();
    let mut read_back: Vec<Token> = w.chain.unspent(w.c.address());
    read_back.retain(|t| t.value > 0);
    made.sort_by_key(|t| (t.txn_hash, t.value));
    read_back.sort_by_key(|t| (t.txn_hash, t.value));
    assert_eq!(
        made.len(),
        6 + 7,
        "six payments to c, and a reward in each block"
    );
    assert_eq!(read_back, made);

    // A token spent five blocks deep is still refused as spent.
    let signing = w.chain.profile().signing();
    let again =
        w.a.transfer(&mut OsRng, w.b.address(), 1, first_token, signing)
            .unwrap();
    assert!(matches!(
        w.check(&again),
        Err(TxError::AlreadySpent { index: 0, .. })
    ));

    // A reorganisation deeper than the window reads the blocks back and
    // restores what they spent, then the same blocks go back on.
    let popped = w.chain.truncate(2);
    let popped_all = all.truncate(2);
    assert_eq!(popped, popped_all);
    assert_eq!(w.chain.ledger().balances(), all.ledger().balances());
    assert_eq!(w.chain.unspent(w.a.address()), all.unspent(w.a.address()));
    for block in popped {
        w.chain.push(block.clone(), now_secs()).unwrap();
        all.push(block, now_secs()).unwrap();
    }
    assert_eq!(w.chain.tip_hash(), all.tip_hash());
    assert_eq!(w.chain.ledger().balances(), all.ledger().balances());
    assert_eq!(w.chain.store().archived_len(), len - window);
    // Every address's blocks are found without reading every block: `c`
    // is paid every block's reward, and a transfer from block 1 on.
    let heights: Vec<u32> = (0..len as u32).collect();
    assert_eq!(w.chain.heights_naming(w.c.address()), heights.as_slice());
}

/// Issue 34: the ids of a lesson's transactions were the one thing a
/// steady chain's memory held for every transaction. A transfer with
/// nothing left unspent, spent by a block that has left memory, is
/// forgotten where ids are unique (steady); a replay of it is still
/// refused, as its inputs are spent. A reorganisation that takes that
/// block back brings the ids back. Toycoin, where ids may repeat, keeps
/// every one.
#[test]
fn a_steady_chain_forgets_the_ids_of_transfers_spent_long_ago() {
    /// Blocks 1 to 4 pay c from a (each spending the one before's change),
    /// block 5 spends all of c's tokens, blocks 6 to 8 carry only rewards
    /// (in steady): on a chain keeping 2 blocks in memory, and on one
    /// keeping every block.
    fn lesson(profile: Profile) -> (World, Chain, Vec<Transaction>) {
        let mut w = World::with_store(profile, BlockStore::with_max_recent(2));
        let mut all = Chain::new(profile);
        all.push(w.chain.block(0).unwrap().into_owned(), now_secs())
            .unwrap();
        let mut paid = Vec::new();
        for block in 1..=8 {
            let txns = match block {
                1..=4 => vec![w.pay(&w.a, &w.c, 1).txn],
                5 => vec![w.pay(&w.c, &w.b, 1).txn],
                _ => Vec::new(),
            };
            paid.extend(txns.iter().filter(|_| block <= 4).cloned());
            if txns.is_empty() && profile.minting() == Minting::AnyCoinbase {
                continue;
            }
            w.push(txns).unwrap();
            all.push(w.chain.tip().unwrap().clone(), now_secs())
                .unwrap();
        }
        (w, all, paid)
    }

    let profile = Network::steady(5.0, Some(keys()[3].address().clone())).profile();
    let (mut w, mut all, paid) = lesson(profile);
    let (ledger, whole) = (w.chain.ledger(), all.ledger());
    assert_eq!(ledger.txn_count(), whole.txn_count());
    assert_eq!(ledger.balances(), whole.balances());
    assert_eq!(
        whole.txn_ids_held(),
        whole.txn_count(),
        "in memory: all kept"
    );
    // Blocks 1 to 3's payments: their change spent by the next, their
    // payment to c by block 5, which has left memory. Block 4's change is
    // a's to spend; the rewards and grants are kept.
    assert_eq!(ledger.txn_ids_held(), whole.txn_ids_held() - 3);
    for txn in &paid[..3] {
        assert!(!ledger.contains(&txn.hash()) && whole.contains(&txn.hash()));
    }
    assert!(ledger.contains(&paid[3].hash()));
    // Replayed, each is still refused: as a repeat where its id is kept,
    // for an input spent or unknown where it is not.
    let check = |chain: &Chain, txn: &Transaction| chain.ledger().check(txn, None).map(|_| ());
    for txn in &paid {
        assert_eq!(check(&all, txn), Err(TxError::Duplicate));
    }
    assert!(
        matches!(
            check(&w.chain, &paid[0]),
            Err(TxError::AlreadySpent { index: 0, .. })
        ),
        "its input is a grant's, kept"
    );
    for txn in &paid[1..3] {
        assert!(matches!(
            check(&w.chain, txn),
            Err(TxError::UnknownInput { index: 0, .. })
        ));
    }
    assert_eq!(check(&w.chain, &paid[3]), Err(TxError::Duplicate));

    // Taking every block back from the file puts every id back; the same
    // blocks go on again and the same ids are forgotten.
    let popped = w.chain.truncate(1);
    assert_eq!(popped, all.truncate(1));
    assert_eq!(w.chain.ledger().txn_ids_held(), all.ledger().txn_ids_held());
    assert_eq!(w.chain.ledger().txn_count(), all.ledger().txn_count());
    for block in popped {
        w.chain.push(block.clone(), now_secs()).unwrap();
        all.push(block, now_secs()).unwrap();
    }
    assert_eq!(w.chain.ledger().balances(), all.ledger().balances());
    assert_eq!(
        w.chain.ledger().txn_ids_held(),
        all.ledger().txn_ids_held() - 3
    );

    // Toycoin keeps every id: two coinbases may share one.
    let (toy, _, paid) = lesson(Profile::toycoin());
    assert_eq!(
        toy.chain.ledger().txn_ids_held(),
        toy.chain.ledger().txn_count()
    );
    assert!(paid.iter().all(|t| toy.chain.ledger().contains(&t.hash())));
}

#[test]
fn steady_work_accumulates_and_toycoin_counts_blocks() {
    let mut t = toycoin();
    t.push(vec![Transaction::coinbase(t.c.address().clone(), 1)])
        .unwrap();
    assert_eq!(t.chain.total_work(), 2);
    let s = steady();
    let bits = s.chain.entries()[0].required_bits;
    assert_eq!(s.chain.total_work(), 1u128 << bits);
}

// --- steady money: rewards, the mint, signed amounts --------------------

/// A steady network whose mint is `keys()[3]`, fixed before its first
/// block.
fn steady() -> World {
    World::new(Network::steady(5.0, Some(keys()[3].address().clone())).profile())
}

#[test]
fn steady_refuses_a_coinbase_from_anyone_alone_or_in_a_block() {
    let mut w = steady();
    let minted = Transaction::coinbase(w.c.address().clone(), 1_000_000);
    assert_eq!(
        w.chain.ledger().check(&minted, Some(&[])).map(|_| ()),
        Err(TxError::Minting)
    );
    let err = w.push(vec![minted.clone()]).unwrap_err();
    assert_eq!(
        err,
        BlockError::Transaction {
            index: 1,
            error: TxError::Minting
        },
        "only the first transaction is a reward"
    );
    // The toycoin profile keeps the original's backdoor.
    let t = toycoin();
    assert!(t.chain.ledger().check(&minted, Some(&[])).is_ok());
}

#[test]
fn steady_blocks_pay_exactly_the_reward_tagged_with_their_height() {
    let mut w = steady();
    let height = w.chain.len() as u64;
    let c = w.c.address().clone();
    let to_c = |value, height| Transaction::reward(c.clone(), value, height);
    let cases = [
        (vec![w.pay(&w.a, &w.c, 1).txn], TxError::MissingReward),
        (
            vec![to_c(BLOCK_REWARD + 1, height)],
            TxError::RewardAmount {
                got: BLOCK_REWARD + 1,
                expected: BLOCK_REWARD,
            },
        ),
        (
            vec![to_c(BLOCK_REWARD, height + 1)],
            TxError::RewardShape("is not tagged with its block's height"),
        ),
    ];
    for (txns, error) in cases {
        assert_eq!(
            w.push_exactly(txns),
            Err(BlockError::Transaction { index: 0, error })
        );
    }
    let reward_only = vec![to_c(BLOCK_REWARD, height)];
    w.push_exactly(reward_only).unwrap();
    assert_eq!(
        w.chain.ledger().balance(w.c.address()),
        2 * BLOCK_REWARD,
        "two blocks mined by c"
    );
    assert_eq!(
        w.chain.ledger().supply(),
        150 + 2 * i128::from(BLOCK_REWARD)
    );
}

#[test]
fn a_rewards_change_of_nothing_is_not_kept_and_still_cannot_be_spent() {
    let mut w = steady();
    let unspent = w.chain.ledger().unspent_count();
    for _ in 0..3 {
        w.push(Vec::new()).unwrap();
    }
    assert_eq!(
        w.chain.ledger().unspent_count(),
        unspent + 3,
        "one output a block, the reward: its change of 0 to COINBASE is not kept"
    );
    assert_eq!(w.chain.ledger().balance(w.c.address()), 4 * BLOCK_REWARD);
    // a names c's reward as an input: the answer is still that the reward
    // is not a's, not that it was spent.
    let reward = w.chain.tip().unwrap().txns[0].clone();
    let mut m = w.pay(&w.a, &w.c, 1);
    m.txn.previous_hashes = vec![reward.hash()];
    assert_eq!(
        w.chain.ledger().check(&m.txn, None).map(|_| ()),
        Err(TxError::NotOwner { index: 0 })
    );
    // c spends it, and its block can be taken back and put again.
    let spend = w.pay(&w.c, &w.a, BLOCK_REWARD);
    w.push(vec![spend.txn]).unwrap();
    let block = w.chain.pop().unwrap();
    assert_eq!(w.chain.ledger().unspent_count(), unspent + 3);
    w.chain.push(block, now_secs()).unwrap();
}

#[test]
fn steady_grants_come_only_from_the_networks_mint() {
    let mut w = steady();
    let forged = w.c.grant(&mut OsRng, w.c.address(), 1_000_000).unwrap();
    assert!(matches!(
        w.chain.ledger().check(&forged, Some(&[])),
        Err(TxError::NotTheMint { .. })
    ));
    let grant = w.mint.grant(&mut OsRng, w.c.address(), 7).unwrap();
    assert!(w.chain.ledger().check(&grant, Some(&[])).is_ok());
    // A grant's amount is signed: raising it breaks the signature.
    let mut raised = grant.clone();
    raised.receiver_value = 7_000;
    assert_eq!(
        w.chain.ledger().check(&raised, Some(&[])).map(|_| ()),
        Err(TxError::BadSignature { which: "receiver" })
    );
    w.push(vec![grant.clone()]).unwrap();
    assert_eq!(
        w.chain.ledger().check(&grant, Some(&[])).map(|_| ()),
        Err(TxError::Duplicate),
        "a replayed grant"
    );
    // The mint is the network's, not the chain's: with every block taken
    // back, a classmate's grant is still refused and the mint's taken.
    w.chain.truncate(0);
    assert_eq!(w.chain.ledger().supply(), 0);
    assert!(matches!(
        w.chain.ledger().check(&forged, Some(&[])),
        Err(TxError::NotTheMint { .. })
    ));
    assert!(w.chain.ledger().check(&grant, Some(&[])).is_ok());
}

/// The mint race: on today's main the first grant in a chain named the
/// mint, so a student's grant mined first made the student the mint. A
/// v3 network names its mint before any block: a student's grant in the
/// very first block is refused, and the teacher's mint's taken.
#[test]
fn steady_a_students_grant_in_the_first_block_names_no_mint() {
    let mint = keys()[3].clone();
    let student = keys()[2].clone();
    let profile = Network::steady(5.0, Some(mint.address().clone())).profile();
    let mut chain = Chain::new(profile);
    let own = student
        .grant(&mut OsRng, student.address(), 1_000_000_000)
        .unwrap();
    let reward = Transaction::reward(student.address().clone(), BLOCK_REWARD, 0);
    let block = mine(&chain, vec![reward.clone(), own], now_secs());
    let error = chain.push(block, now_secs()).unwrap_err();
    assert!(
        matches!(
            error,
            BlockError::Transaction {
                index: 1,
                error: TxError::NotTheMint { .. }
            }
        ),
        "{error}"
    );
    let teachers = mint.grant(&mut OsRng, student.address(), 50).unwrap();
    let block = mine(&chain, vec![reward, teachers], now_secs());
    chain.push(block, now_secs()).unwrap();
    assert_eq!(chain.ledger().balance(student.address()), 100);
    // A network with no mint takes no grant at all.
    let none = Chain::new(Profile::steady(5.0));
    assert_eq!(
        none.ledger()
            .check(
                &mint.grant(&mut OsRng, student.address(), 1).unwrap(),
                Some(&[])
            )
            .map(|_| ()),
        Err(TxError::NoMint)
    );
}

/// A steady block 0 names its network's genesis, not the original's: a
/// toycoin chain (a Python node's, our `--profile toycoin` node's or
/// listener's) refuses it with its reason, and so does another class's
/// steady network.
#[test]
fn a_steady_block_is_valid_on_no_other_network() {
    let w = steady();
    let steady_block0 = w.chain.blocks().next().unwrap().into_owned();
    let mut original = Chain::new(Profile::toycoin());
    let error = original
        .push(steady_block0.clone(), now_secs())
        .unwrap_err();
    assert!(matches!(error, BlockError::OtherNetwork { .. }), "{error}");
    assert!(error.to_string().contains("another network"), "{error}");
    let mut tree = toycoin_common::tree::BlockTree::new(Profile::toycoin());
    let refused = tree
        .receive(vec![steady_block0.clone()], now_secs())
        .unwrap_err();
    assert!(matches!(refused.error, BlockError::OtherNetwork { .. }));
    let other_class = Network::steady(5.0, Some(keys()[0].address().clone())).profile();
    let error = Chain::new(other_class)
        .push(steady_block0, now_secs())
        .unwrap_err();
    assert!(matches!(error, BlockError::OtherNetwork { .. }), "{error}");
}

/// One key, one address: the same key written another way (CRLF line
/// endings, exponent 3) is refused as a receiver or sender in steady,
/// with its reason, and taken in toycoin, as the original does.
#[test]
fn steady_refuses_non_canonical_addresses() {
    let w = steady();
    let crlf = Bytes::from(
        String::from_utf8(w.c.address().to_vec())
            .unwrap()
            .replace('\n', "\r\n"),
    );
    let mut to_crlf = w.pay(&w.a, &w.c, 10);
    to_crlf.txn.receiver = crlf.clone();
    let error = w
        .chain
        .ledger()
        .check(&to_crlf.txn, Some(&to_crlf.tokens))
        .unwrap_err();
    assert!(
        matches!(
            error,
            TxError::Address {
                field: "receiver",
                ..
            }
        ),
        "{error}"
    );
    assert!(error.is_malformed());
    let mut from_crlf = w.pay(&w.a, &w.c, 10);
    from_crlf.txn.sender = crlf;
    assert!(matches!(
        w.chain
            .ledger()
            .check(&from_crlf.txn, Some(&from_crlf.tokens)),
        Err(TxError::Address {
            field: "sender",
            ..
        })
    ));
    let mut short_signature = w.pay(&w.a, &w.c, 10);
    short_signature.txn.sender_signature.truncate(255);
    assert_eq!(
        w.chain
            .ledger()
            .check(&short_signature.txn, Some(&short_signature.tokens))
            .map(|_| ()),
        Err(TxError::SignatureLength {
            which: "sender",
            len: 255
        })
    );
}

#[test]
fn steady_amounts_are_bounded_so_no_sum_overflows() {
    let w = steady();
    let huge = w.mint.grant(&mut OsRng, w.c.address(), i64::MAX).unwrap();
    assert_eq!(
        w.chain.ledger().check(&huge, Some(&[])).map(|_| ()),
        Err(TxError::AmountTooLarge {
            field: "receiver_value",
            value: i64::MAX,
            max: MAX_SUPPLY
        })
    );
    let all = w.mint.grant(&mut OsRng, w.c.address(), MAX_SUPPLY).unwrap();
    assert_eq!(
        w.chain.ledger().check(&all, Some(&[])).map(|_| ()),
        Err(TxError::SupplyExceeded { value: MAX_SUPPLY }),
        "150 coins exist already"
    );
}

#[test]
fn steady_signatures_cover_the_amounts_so_a_relay_cannot_rewrite_them() {
    // The attack: 15 + change 26 rewritten to 41 + change 0.
    for (world, accepted) in [(toycoin(), true), (steady(), false)] {
        let m = world.pay(&world.b, &world.c, 15);
        assert_eq!((m.txn.receiver_value, m.txn.sender_change), (15, 35));
        let mut rewritten = m.clone();
        (rewritten.txn.receiver_value, rewritten.txn.sender_change) = (50, 0);
        let result = world.check(&rewritten);
        if accepted {
            assert_eq!(result, Ok(()), "the original's flaw, kept in toycoin");
        } else {
            assert_eq!(result, Err(TxError::BadSignature { which: "receiver" }));
        }
    }
}

#[test]
fn a_steady_block_holds_as_many_transactions_as_its_bytes_allow() {
    let mut w = steady();
    // Thirty transfers in one block: a class's worth, where toycoin takes 10.
    let payers = [&w.a, &w.b];
    let mut txns = Vec::new();
    let mut tokens: Vec<Vec<Token>> = payers.iter().map(|p| w.tokens(p)).collect();
    for i in 0..30 {
        let (payer, from) = (payers[i % 2], &mut tokens[i % 2]);
        let m = payer
            .transfer(
                &mut OsRng,
                w.c.address(),
                1,
                std::mem::take(from),
                Signing::Amounts,
            )
            .unwrap();
        // The change pays the next one.
        *from = vec![m.txn.output(
            m.txn.hash(),
            toycoin_common::transaction::OutputKind::Change,
        )];
        txns.push(m.txn);
    }
    assert_eq!(w.chain.block_txns(w.c.address(), txns.clone()).len(), 31);
    w.push(txns).unwrap();
    assert_eq!(w.chain.tip().unwrap().txns.len(), 31);
    assert_eq!(
        w.chain.ledger().balance(w.c.address()),
        2 * BLOCK_REWARD + 30
    );
}

#[test]
fn steady_bounds_transactions_and_blocks_in_bytes() {
    let w = steady();
    // The split: a transaction of megabytes, which fits a frame
    // alone but not two in a block. An address is of one size in steady,
    // so a grant to an 8.5 MB "address" is refused for its address...
    let huge = Bytes::from(vec![b'x'; 8_500_000]);
    let grant = w.mint.grant(&mut OsRng, &huge, 1).unwrap();
    assert!(matches!(
        w.chain.ledger().check(&grant, Some(&[])),
        Err(TxError::Address {
            field: "receiver",
            ..
        })
    ));
    // ... and a transfer of 600 inputs (38 KB of input hashes) for its
    // size, before any input is looked up.
    let mut wide = w.pay(&w.a, &w.c, 1).txn;
    wide.previous_hashes = (0..600u32)
        .map(|i| Txid::from_raw_hash(Hash::of(&i.to_be_bytes())))
        .collect();
    assert!(matches!(
        w.chain.ledger().check(&wide, None),
        Err(TxError::TooLarge { max, .. }) if max == MAX_TXN_BYTES
    ));
    // A block whose header alone is over the limit (a 1 MB nonce).
    let reward = w.reward().unwrap();
    let root = merkle_root(&[reward.hash()]).unwrap();
    let block = Block {
        header: BlockHeader {
            timestamp: Bytes::from(now_secs().to_string()),
            previous_hash: w.chain.tip_hash(),
            nonce: Bytes::from(vec![b'7'; MAX_BLOCK_BYTES]),
            merkle_root: root,
            this_hash: BlockHash(Hash([0; 64])),
        },
        txns: vec![reward],
    };
    assert!(matches!(
        check_body(w.chain.profile(), &block),
        Err(BlockError::TooLarge { max, .. }) if max == MAX_BLOCK_BYTES
    ));
    assert!(BlockError::TooLarge { size: 1, max: 0 }.is_permanent());
    // The toycoin profile takes what the original takes.
    let t = toycoin();
    let big_coinbase = Transaction::coinbase(huge, 1);
    assert!(t.chain.ledger().check(&big_coinbase, Some(&[])).is_ok());
}

#[test]
fn signatures_verified_on_several_threads_keep_the_order_of_failures() {
    use toycoin_common::signatures::set_signature_threads;

    let break_signature = |t: &mut Transaction| {
        let mut sig = t.receiver_signature.to_vec();
        sig[7] ^= 0x10;
        t.receiver_signature = Bytes::from(sig);
    };
    // Steady: the reward comes first, so transfer k is block position k+1.
    // A broken signature at transfer 3, a double spend at 4.
    let steady = steady();
    let transfers = steady.transfers_a_to_c(5);
    let mut bad = transfers.clone();
    break_signature(&mut bad[3]);
    bad[4] = steady.pay(&steady.a, &steady.b, 1).txn;
    // Toycoin, a full block of 10: a broken signature at 8, amounts that
    // do not add up at 6 (toycoin signs no amount).
    let toy = toycoin();
    let ten = toy.transfers_a_to_c(10);
    let mut late = ten.clone();
    break_signature(&mut late[8]);
    let mut spend_first = late.clone();
    spend_first[6].receiver_value += 1;
    // 40 transactions outside any block (as the oracle and pBFT apply
    // them) pass through more than one window (16 a thread).
    let forty = toy.transfers_a_to_c(40);
    let mut forty_late = forty.clone();
    break_signature(&mut forty_late[37]);
    let mut forty_spend = forty_late.clone();
    forty_spend[35].receiver_value += 1;
    for threads in [1, 2, 4] {
        set_signature_threads(threads);
        let mut w = steady.clone();
        let err = w.push(bad.clone()).unwrap_err();
        assert_eq!(
            err,
            BlockError::Transaction {
                index: 4,
                error: TxError::BadSignature { which: "receiver" }
            },
            "steady, {threads} threads"
        );
        let mut t = toy.clone();
        let err = t.push(late.clone()).unwrap_err();
        assert_eq!(
            err,
            BlockError::Transaction {
                index: 8,
                error: TxError::BadSignature { which: "receiver" }
            },
            "toycoin, {threads} threads"
        );
        let err = t.push(spend_first.clone()).unwrap_err();
        assert!(
            matches!(err, BlockError::Transaction { index: 6, .. }),
            "toycoin, {threads} threads: {err:?}"
        );
        t.push(ten.clone()).unwrap();
        assert_eq!(t.tokens(&t.c).len(), 10, "{threads} threads");
        let mut ledger = toy.chain.ledger().clone();
        assert_eq!(ledger.apply_txns(&forty_late).unwrap_err().index, 37);
        assert_eq!(ledger.apply_txns(&forty_spend).unwrap_err().index, 35);
        assert!(ledger.apply_txns(&forty).is_ok(), "{threads} threads");
    }
    set_signature_threads(0);
}

#[test]
fn a_run_of_blocks_verified_ahead_stops_at_the_first_bad_signature() {
    use toycoin_common::signatures::set_signature_threads;

    // Three blocks of steady transfers a -> c; the third's second transfer
    // carries a broken signature.
    let w = steady();
    let mut scratch = w.clone();
    let mut blocks = Vec::new();
    for round in 0..3 {
        let mut txns: Vec<Transaction> = scratch.reward().into_iter().collect();
        txns.extend(scratch.transfers_a_to_c(3));
        if round == 2 {
            let mut sig = txns[2].sender_signature.to_vec();
            sig[100] ^= 1;
            txns[2].sender_signature = Bytes::from(sig);
        }
        let block = mine(&scratch.chain, txns, now_secs());
        if round < 2 {
            scratch.chain.push(block.clone(), now_secs()).unwrap();
        }
        blocks.push(block);
    }
    for threads in [1, 2, 4] {
        set_signature_threads(threads);
        let mut chain = w.chain.clone();
        let (at, error) = chain.extend(&blocks, now_secs()).unwrap_err();
        assert_eq!(
            (at, error),
            (
                2,
                BlockError::Transaction {
                    index: 2,
                    error: TxError::BadSignature { which: "sender" }
                }
            ),
            "{threads} threads"
        );
        assert_eq!(chain.len(), w.chain.len() + 2, "the two good blocks stay");
        assert_eq!(chain.tip_hash(), blocks[1].header.this_hash);
        let mut chain = w.chain.clone();
        chain.extend(&blocks[..2], now_secs()).unwrap();
        // c: the funding block's reward, then two rewards and six transfers.
        assert_eq!(chain.unspent(w.c.address()).len(), 1 + 2 + 6);
    }
    set_signature_threads(0);
}
