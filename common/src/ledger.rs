//! The ledger: every output the chain has created, which are spent, and the
//! rules a transaction must meet to spend them.
//!
//! [`check_transaction`] makes every check the original makes (tokens come
//! from real outputs, one owner, both signatures verify with the owner's
//! key) and the ones it misses: `previous_hashes` lists exactly the spent
//! tokens, the sender owns every token, input values equal
//! `receiver_value + sender_change`, no amount is negative, no output is spent
//! twice, no transaction appears twice. The same function checks a
//! transaction received alone (with its tokens) and one inside a block
//! (whose inputs are looked up from `previous_hashes`), so a block from
//! another node is checked as strictly as a lone transaction.
//!
//! An input names only a transaction hash; the output it spends is the
//! first unspent output of that transaction that the sender owns (the
//! receiver output before the change). A token presented in a `TXN` must be
//! that very output.
//!
//! A chain's ledger ([`Ledger::for_chain`]) keeps of each output its owner,
//! its value, a digest of its signature and the height of its block: the
//! signature itself is in the block, read back when a wallet's tokens are
//! asked for ([`crate::chain::Chain::unspent_of`]). A ledger of
//! transactions in no block ([`Ledger::new`]: the oracle's, a replica's)
//! keeps the signatures beside, as it has nowhere else to read them.

use std::collections::{BTreeMap, HashMap};

use crate::hash::Txid;
use crate::maps::{Map, Set};
use crate::mint::{check_grant, check_reward};
use crate::profile::{Minting, Profile, MAX_SUPPLY};
use crate::signatures::{
    check_signatures_of, signature_threads, txn_names, verify_alongside, TxnKey, WINDOW_PER_THREAD,
};
use crate::transaction::{Address, OutputKind, Token, Transaction};

/// One output of one transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OutPoint {
    pub txn_hash: Txid,
    pub kind: OutputKind,
}

/// What a ledger's table keys an output by: its transaction's [`TxidKey`]
/// and its kind, 17 bytes where an [`OutPoint`] takes 65. The unspent
/// outputs are a lesson's longest table (one more a block, at least: its
/// reward), and a table's memory is its capacity: 88 bytes an entry
/// instead of 136. Two transactions whose ids share the key cannot both
/// be recorded (the second is a repeat, [`TxidKey`]), so no two outputs
/// share one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OutputKey {
    txn: TxidKey,
    kind: OutputKind,
}

impl OutputKey {
    pub fn of(outpoint: &OutPoint) -> OutputKey {
        OutputKey {
            txn: txid_key(&outpoint.txn_hash),
            kind: outpoint.kind,
        }
    }

    pub fn kind(&self) -> OutputKind {
        self.kind
    }

    /// Whether this is an output of transaction `hash`.
    pub fn is_of(&self, hash: &Txid) -> bool {
        self.txn == txid_key(hash)
    }
}

/// An output and whether it has been spent. Its transaction's hash is
/// its [`OutPoint`]'s, not kept twice; its signature is kept as a
/// [`SignatureDigest`] and the height of the block that holds it, where a
/// spender's token is read back from ([`crate::chain::Chain::unspent_of`]):
/// an unspent output is most of what a ledger holds (issue 34), and with
/// no allocation of its own it costs a table entry and no more.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputState {
    pub owner: Address,
    pub value: i64,
    /// The digest of the signature a spender's token must carry.
    pub signature: SignatureDigest,
    /// Height of the block whose transaction made it; [`NO_BLOCK`] for one
    /// recorded outside a chain.
    pub height: u32,
    pub spent: bool,
    /// Its transaction is a coinbase (a reward, or the original's
    /// funding), whose change is not recorded ([`is_recorded`]).
    pub coinbase: bool,
}

/// Whether a ledger records output `kind` of `txn`: every output but a
/// coinbase's change of 0. That one is owned by COINBASE, and no
/// transaction can spend it: one whose sender is COINBASE is a coinbase,
/// which spends nothing. Every block's reward has one; recorded, they were
/// half of the unspent outputs a lesson's ledger held, one more a block
/// for the chain's whole life (issue 34). It is worth nothing, so no
/// balance or supply counts it.
pub fn is_recorded(txn: &Transaction, kind: OutputKind) -> bool {
    !(kind == OutputKind::Change && txn.is_coinbase() && txn.sender_change == 0)
}

/// What a ledger keeps of an output's signature: two 64-bit hashes of it
/// under keys drawn at random when the process starts (aHash, as the
/// [`crate::maps`] use). A student who wants a token with another
/// signature to pass for an output's would need a collision under keys
/// that never leave the process. SHA-512 would cost two hashes of 256
/// bytes for every transaction a block applies, a sixth of accepting a
/// block already seen (issue 39); these cost a few dozen nanoseconds.
/// Digests are compared within one process only (the block store's file
/// is the process's own).
pub type SignatureDigest = [u8; 16];

/// The [`SignatureDigest`] of `signature`.
pub fn signature_digest(signature: &[u8]) -> SignatureDigest {
    static KEYS: std::sync::OnceLock<[ahash::RandomState; 2]> = std::sync::OnceLock::new();
    let [first, second] =
        KEYS.get_or_init(|| [ahash::RandomState::new(), ahash::RandomState::new()]);
    let mut digest = [0u8; 16];
    digest[..8].copy_from_slice(&first.hash_one(signature).to_le_bytes());
    digest[8..].copy_from_slice(&second.hash_one(signature).to_le_bytes());
    digest
}

/// [`OutputState::height`] of an output recorded outside a chain (a pending
/// transaction's, or one in a ledger of transactions in no block).
pub const NO_BLOCK: u32 = u32::MAX;

impl OutputState {
    /// What a spender presents for this output of transaction `txn_hash`,
    /// given the output's signature (from its block or a ledger that keeps
    /// signatures).
    pub fn token(&self, txn_hash: Txid, signature: crate::transaction::Signature) -> Token {
        Token {
            txn_hash,
            owner: self.owner.clone(),
            value: self.value,
            signature,
        }
    }

    /// Whether `token` is this output of transaction `txn_hash`, field by
    /// field (the signature by its digest).
    fn is(&self, txn_hash: &Txid, token: &Token) -> bool {
        token.txn_hash == *txn_hash
            && token.owner == self.owner
            && token.value == self.value
            && signature_digest(&token.signature) == self.signature
    }

    fn of(token: &Token, height: u32, coinbase: bool) -> OutputState {
        OutputState {
            owner: token.owner.clone(),
            value: token.value,
            signature: signature_digest(&token.signature),
            height,
            spent: false,
            coinbase,
        }
    }
}

/// Why a transaction is not acceptable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    #[error("transaction is already in the chain")]
    Duplicate,
    #[error("transaction is already pending")]
    AlreadyPending,
    #[error("{field} is negative ({value})")]
    NegativeAmount { field: &'static str, value: i64 },
    #[error("{field} {value} is more than the {max} coins that can ever exist")]
    AmountTooLarge {
        field: &'static str,
        value: i64,
        max: i64,
    },
    #[error("transaction of {size} bytes is larger than the {max} allowed")]
    TooLarge { size: usize, max: usize },
    #[error("coinbase transaction outside a block reward: only a block's first transaction and the mint create coins")]
    Minting,
    #[error("transaction spends no tokens and its sender is not the mint ({mint})")]
    NotTheMint { mint: String },
    #[error("transaction spends no tokens and this network has no mint")]
    NoMint,
    #[error("a grant from the mint pays no change (sender_change {0})")]
    GrantWithChange(i64),
    #[error("{value} more coins would make more than the {MAX_SUPPLY} that can ever exist")]
    SupplyExceeded { value: i64 },
    #[error("the block's first transaction is not its reward (a coinbase to the miner)")]
    MissingReward,
    #[error("the block reward pays {got}, not {expected}")]
    RewardAmount { got: i64, expected: i64 },
    #[error("the block reward {0}")]
    RewardShape(&'static str),
    #[error("coinbase transaction spends tokens")]
    CoinbaseWithInputs,
    #[error("transaction spends no tokens and is not a coinbase")]
    NoInputs,
    #[error("{tokens} tokens given for {previous_hashes} previous hashes")]
    TokenCount {
        tokens: usize,
        previous_hashes: usize,
    },
    #[error("previous_hashes[{index}] is not the hash of token {index}")]
    PreviousHashMismatch { index: usize },
    #[error("input {index} is not owned by the sender")]
    NotOwner { index: usize },
    /// Never in the chain, or (steady) a transfer spent long ago whose id
    /// the ledger no longer keeps ([`Ledger::forget_spent`]).
    #[error("input {index} spends unknown transaction {} (never in the chain, or all spent long ago)", hash.short())]
    UnknownInput { index: usize, hash: Txid },
    #[error("input {index} is already spent (output of {})", hash.short())]
    AlreadySpent { index: usize, hash: Txid },
    #[error("token {index} does not match the output it names")]
    TokenMismatch { index: usize },
    #[error("inputs are worth {inputs} but outputs {outputs}")]
    ValueMismatch { inputs: i128, outputs: i128 },
    #[error("sender is not a valid RSA public key")]
    BadSenderAddress,
    #[error("the {field} is not a canonical address: {error}")]
    Address {
        field: &'static str,
        error: crate::address::AddressError,
    },
    #[error("the {which} signature is {len} bytes, not {SIGNATURE_LEN}")]
    SignatureLength { which: &'static str, len: usize },
    #[error("{which} signature does not verify")]
    BadSignature { which: &'static str },
}

impl TxError {
    /// Whether the transaction is not in the canonical encoding
    /// ([`check_shape`]): such a transaction may share its hash with a
    /// well-formed one, so its refusal proves nothing about that hash.
    pub fn is_malformed(&self) -> bool {
        matches!(
            self,
            TxError::Address { .. } | TxError::SignatureLength { .. }
        )
    }
}

/// Where [`check_transaction`] looks up outputs, and the money rules.
pub trait OutputView {
    /// The output, spent or not, if it exists.
    fn output(&self, outpoint: &OutPoint) -> Option<&OutputState>;
    /// Whether a transaction with this hash is already recorded.
    fn contains_txn(&self, hash: &Txid) -> bool;
    /// Whether it is recorded as pending rather than in the chain.
    fn is_pending(&self, _hash: &Txid) -> bool {
        false
    }
    /// The rules the transactions follow.
    fn profile(&self) -> &Profile;
    /// Coins created so far.
    fn supply(&self) -> i128;
}

/// A transaction that passed [`check_transaction`], with what it spends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckedTxn {
    pub hash: Txid,
    pub inputs: Vec<OutPoint>,
    /// Coins it creates: a coinbase's, a reward's or a grant's value.
    pub created: i64,
}

impl CheckedTxn {
    fn spending(hash: Txid, inputs: Vec<OutPoint>) -> CheckedTxn {
        CheckedTxn {
            hash,
            inputs,
            created: 0,
        }
    }

    pub(crate) fn creating(hash: Txid, created: i64) -> CheckedTxn {
        CheckedTxn {
            created,
            ..CheckedTxn::spending(hash, Vec::new())
        }
    }
}

/// Checks `txn` (whose hash is `hash`) against `view`. `tokens` are the
/// tokens of a `TXN` message; `None` for a transaction inside a block.
pub fn check_transaction(
    view: &impl OutputView,
    txn: &Transaction,
    hash: Txid,
    tokens: Option<&[Token]>,
) -> Result<CheckedTxn, TxError> {
    check_encoding(view.profile(), txn)?;
    let checked = check_spend(view, txn, hash, tokens)?;
    if !txn.is_coinbase() {
        check_signatures_of(txn, hash, view.profile().signing())?;
    }
    Ok(checked)
}

/// The profile's encoding rule, where it has one ([`check_shape`]):
/// checked once, first, when a transaction arrives alone or in a block.
fn check_encoding(profile: &Profile, txn: &Transaction) -> Result<(), TxError> {
    if profile.canonical_encoding() {
        check_shape(txn)?;
    }
    Ok(())
}

/// Every check of [`check_transaction`] but the encoding and the
/// signatures: what depends on the outputs in `view`. A transaction whose
/// encoding and signatures were checked once (a pending one, or one from a
/// block taken back) is re-checked against a new tip with this alone.
pub fn check_spend(
    view: &impl OutputView,
    txn: &Transaction,
    hash: Txid,
    tokens: Option<&[Token]>,
) -> Result<CheckedTxn, TxError> {
    if let Some(max) = view.profile().max_txn_bytes() {
        let size = txn.size();
        if size > max {
            return Err(TxError::TooLarge { size, max });
        }
    }
    if view.contains_txn(&hash) {
        return Err(if view.is_pending(&hash) {
            TxError::AlreadyPending
        } else {
            TxError::Duplicate
        });
    }
    let profile = view.profile();
    for (field, value) in [
        ("receiver_value", txn.receiver_value),
        ("sender_change", txn.sender_change),
    ] {
        if value < 0 {
            return Err(TxError::NegativeAmount { field, value });
        }
        let max = profile.max_amount();
        if value > max {
            return Err(TxError::AmountTooLarge { field, value, max });
        }
    }
    let given_tokens = tokens.is_some();
    let tokens = tokens.unwrap_or_default();
    let minting = profile.minting();
    if txn.is_coinbase() {
        if minting == Minting::RewardsAndMint {
            return Err(TxError::Minting);
        }
        if !txn.previous_hashes.is_empty() || !tokens.is_empty() {
            return Err(TxError::CoinbaseWithInputs);
        }
        return Ok(CheckedTxn::creating(hash, txn.receiver_value));
    }
    if given_tokens {
        check_tokens_name_inputs(txn, tokens)?;
    }
    if txn.previous_hashes.is_empty() {
        return match minting {
            Minting::AnyCoinbase => Err(TxError::NoInputs),
            Minting::RewardsAndMint => check_grant(view, txn, hash),
        };
    }
    let mut inputs: Vec<OutPoint> = Vec::with_capacity(txn.previous_hashes.len());
    let mut input_value: i128 = 0;
    for (index, prev) in txn.previous_hashes.iter().enumerate() {
        let (outpoint, state) = resolve_input(view, txn, index, prev, &inputs)?;
        if given_tokens && !state.is(&outpoint.txn_hash, &tokens[index]) {
            return Err(TxError::TokenMismatch { index });
        }
        input_value += i128::from(state.value);
        inputs.push(outpoint);
    }
    let output_value = i128::from(txn.receiver_value) + i128::from(txn.sender_change);
    if input_value != output_value {
        return Err(TxError::ValueMismatch {
            inputs: input_value,
            outputs: output_value,
        });
    }

    Ok(CheckedTxn::spending(hash, inputs))
}

/// Bytes of an RSA-2048 signature.
pub const SIGNATURE_LEN: usize = 256;

/// Steady's canonical encoding of a transaction, checked before any rule:
/// the receiver, and the sender of a transfer or grant, are canonical
/// addresses ([`crate::address`]: one key, one address, one fingerprint);
/// a transfer's or grant's signatures are [`SIGNATURE_LEN`] bytes each.
///
/// It makes the original's transaction hash, which joins the fields with
/// no separators, unambiguous: an address is 451 bytes that start with a
/// marker no signature, hash or base64 holds, and a signature has one
/// length, so each field's place in the hashed bytes is fixed and two
/// well-formed transactions with one hash are the same transaction. A
/// malformed one (a reward of 0 to an address with "5" after it, where the
/// original's was 50) may share a good transaction's hash: refusing it
/// says nothing of the hash ([`TxError::is_malformed`]).
pub fn check_shape(txn: &Transaction) -> Result<(), TxError> {
    let check = |field, address: &[u8]| {
        crate::address::check_canonical(address).map_err(|error| TxError::Address { field, error })
    };
    check("receiver", &txn.receiver)?;
    if txn.is_coinbase() {
        return Ok(());
    }
    check("sender", &txn.sender)?;
    for (which, signature) in [
        ("receiver", &txn.receiver_signature),
        ("sender", &txn.sender_signature),
    ] {
        if signature.len() != SIGNATURE_LEN {
            return Err(TxError::SignatureLength {
                which,
                len: signature.len(),
            });
        }
    }
    Ok(())
}

/// A `TXN`'s tokens must be exactly the inputs, in order, all the sender's.
fn check_tokens_name_inputs(txn: &Transaction, tokens: &[Token]) -> Result<(), TxError> {
    if tokens.len() != txn.previous_hashes.len() {
        return Err(TxError::TokenCount {
            tokens: tokens.len(),
            previous_hashes: txn.previous_hashes.len(),
        });
    }
    for (index, (token, prev)) in tokens.iter().zip(&txn.previous_hashes).enumerate() {
        if token.txn_hash != *prev {
            return Err(TxError::PreviousHashMismatch { index });
        }
        if token.owner != txn.sender {
            return Err(TxError::NotOwner { index });
        }
    }
    Ok(())
}

/// The output input `index` spends: the first unspent output of `prev`
/// owned by the sender and not already taken by an earlier input.
fn resolve_input<'v>(
    view: &'v impl OutputView,
    txn: &Transaction,
    index: usize,
    prev: &Txid,
    taken: &[OutPoint],
) -> Result<(OutPoint, &'v OutputState), TxError> {
    let mut exists = false;
    let mut owned = false;
    let mut missing = false;
    let mut coinbase = false;
    for kind in [OutputKind::Receiver, OutputKind::Change] {
        let outpoint = OutPoint {
            txn_hash: *prev,
            kind,
        };
        let Some(state) = view.output(&outpoint) else {
            // A coinbase's change of 0 was never recorded (`is_recorded`):
            // its absence says nothing.
            missing |= !(kind == OutputKind::Change && coinbase);
            continue;
        };
        exists = true;
        coinbase |= state.coinbase;
        if state.owner != txn.sender {
            continue;
        }
        owned = true;
        if !state.spent && !taken.contains(&outpoint) {
            return Ok((outpoint, state));
        }
    }
    // Both outputs of a transaction are recorded (but a coinbase's change
    // of 0); one that is missing from a transaction that is recorded was
    // spent. (A transfer with nothing left, spent by a block that has left
    // memory, is forgotten where ids are unique: `Ledger::forget_spent`.
    // An input naming it is unknown, and refused as surely.)
    let forgotten = || missing && view.contains_txn(prev) && !view.is_pending(prev);
    Err(if owned || forgotten() {
        TxError::AlreadySpent { index, hash: *prev }
    } else if exists {
        TxError::NotOwner { index }
    } else {
        TxError::UnknownInput { index, hash: *prev }
    })
}

/// What a block changed in the ledger, to take it back on a reorganisation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockUndo {
    created: Vec<Txid>,
    spent: Vec<OutPoint>,
    /// The outputs `spent` names, as they were before the block spent
    /// them: the ledger no longer holds them ([`Ledger::apply_block`]).
    /// Empty in an undo read back from the block store, which keeps them
    /// beside it ([`BlockUndo::with_spent_states`]).
    spent_states: Vec<OutputState>,
    repeats: usize,
    /// Coins the block created.
    coins: i128,
}

/// A [`BlockUndo`]'s contents, to write it down ([`crate::block_store`]).
#[derive(Clone, Copy, Debug)]
pub struct UndoParts<'a> {
    /// The transactions the block added, in order.
    pub created: &'a [Txid],
    /// The outputs it spent, in order.
    pub spent: &'a [OutPoint],
    pub repeats: usize,
    pub coins: i128,
}

impl BlockUndo {
    /// How many of the block's transactions were verbatim repeats of ones
    /// already in the chain (and so applied no second time).
    pub fn repeats(&self) -> usize {
        self.repeats
    }

    pub fn parts(&self) -> UndoParts<'_> {
        UndoParts {
            created: &self.created,
            spent: &self.spent,
            repeats: self.repeats,
            coins: self.coins,
        }
    }

    /// The undo whose [`BlockUndo::parts`] these were.
    pub fn from_parts(
        created: Vec<Txid>,
        spent: Vec<OutPoint>,
        repeats: usize,
        coins: i128,
    ) -> BlockUndo {
        BlockUndo {
            created,
            spent,
            spent_states: Vec::new(),
            repeats,
            coins,
        }
    }

    /// This undo (read back from the block store) with the outputs its
    /// block spent, as [`Ledger::spent_outputs`] gave them, so that
    /// [`Ledger::undo_block`] can put them back.
    pub fn with_spent_states(mut self, states: Vec<OutputState>) -> BlockUndo {
        self.spent_states = states
            .into_iter()
            .map(|state| OutputState {
                spent: false,
                ..state
            })
            .collect();
        self
    }
}

/// The copy of `owner` that `owners` keeps, kept there if it has room.
fn share(owners: &mut Set<Address>, owner: &Address) -> Address {
    if let Some(kept) = owners.get(owner) {
        return kept.clone();
    }
    if owners.len() < MAX_OWNERS {
        owners.insert(owner.clone());
    }
    owner.clone()
}

/// Records the two new, unspent outputs of `txn` (whose hash is `hash`),
/// pending, in no block.
fn insert_pending_outputs(outputs: &mut Map<OutPoint, OutputState>, txn: &Transaction, hash: Txid) {
    for kind in [OutputKind::Receiver, OutputKind::Change] {
        let token = txn.output(hash, kind);
        let outpoint = OutPoint {
            txn_hash: hash,
            kind,
        };
        outputs.insert(
            outpoint,
            OutputState::of(&token, NO_BLOCK, txn.is_coinbase()),
        );
    }
}

/// Outputs created and spent by transactions that are not in a block yet,
/// layered over a [`Ledger`]: a pending transaction may spend what another
/// pending one creates, and two pending ones cannot spend the same output.
/// The ledger itself is not touched; build a view with [`Overlay::view`].
#[derive(Clone, Debug, Default)]
pub struct Overlay {
    outputs: Map<OutPoint, OutputState>,
    txns: Set<Txid>,
    /// Coins pending grants create.
    coins: i128,
}

/// A [`Ledger`] seen through an [`Overlay`].
#[derive(Debug)]
pub struct OverlayView<'a> {
    base: &'a Ledger,
    top: &'a Overlay,
}

impl OutputView for OverlayView<'_> {
    fn output(&self, outpoint: &OutPoint) -> Option<&OutputState> {
        self.top
            .outputs
            .get(outpoint)
            .or_else(|| self.base.output(outpoint))
    }

    fn contains_txn(&self, hash: &Txid) -> bool {
        self.top.txns.contains(hash) || self.base.contains_txn(hash)
    }

    fn is_pending(&self, hash: &Txid) -> bool {
        self.top.txns.contains(hash)
    }

    fn profile(&self) -> &Profile {
        &self.base.profile
    }

    fn supply(&self) -> i128 {
        self.base.supply + self.top.coins
    }
}

impl Overlay {
    pub fn new() -> Overlay {
        Overlay::default()
    }

    pub fn view<'a>(&'a self, base: &'a Ledger) -> OverlayView<'a> {
        OverlayView { base, top: self }
    }

    /// Records a transaction checked against `self.view(base)`: its inputs
    /// become spent and its outputs exist.
    pub fn apply(&mut self, base: &Ledger, txn: &Transaction, checked: &CheckedTxn) {
        for outpoint in &checked.inputs {
            let state = self
                .outputs
                .get(outpoint)
                .or_else(|| base.output(outpoint))
                .cloned();
            if let Some(mut state) = state {
                state.spent = true;
                self.outputs.insert(*outpoint, state);
            }
        }
        insert_pending_outputs(&mut self.outputs, txn, checked.hash);
        self.txns.insert(checked.hash);
        self.coins += i128::from(checked.created);
    }

    /// Number of transactions recorded.
    pub fn len(&self) -> usize {
        self.txns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.txns.is_empty()
    }

    /// Forgets every pending transaction.
    pub fn clear(&mut self) {
        *self = Overlay::default();
    }
}

/// A transaction of a block that failed, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("transaction {index}: {error}")]
pub struct BlockTxError {
    pub index: usize,
    pub error: TxError,
}

/// What the ledger remembers of a transaction it recorded: the first 16
/// bytes of its hash. The set of every transaction a chain ever held is the
/// one thing that grows with a lesson; 16 bytes a transaction instead of
/// 64 keep it small, and finding two transactions with the same 128 bits
/// would take some 2^64 hashes (and would only get one of them refused as
/// a repeat).
type TxidKey = [u8; 16];

fn txid_key(hash: &Txid) -> TxidKey {
    let mut key = [0u8; 16];
    key.copy_from_slice(&hash.as_bytes()[..16]);
    key
}

/// Whether no two transactions of a chain under `profile` can share an
/// id, so a transfer's id need not be kept once nothing it made is left
/// ([`Ledger::forget_spent`]): each block's reward is tagged with its
/// height ([`crate::mint::check_reward`]), a transfer spends outputs no
/// other can spend again, and a repeat is refused. A grant spends nothing
/// and is kept, as every coinbase is. In toycoin, coinbases of one amount
/// to one address share an id, and a block may repeat a transaction.
pub fn ids_are_unique(profile: &Profile) -> bool {
    profile.minting() == Minting::RewardsAndMint && !profile.tolerates_repeated_txns()
}

/// Where [`Ledger::apply_each`]'s transactions are: the block position of
/// the first, the position before which the caller verifies signatures,
/// and the block's height ([`NO_BLOCK`] for none).
#[derive(Clone, Copy, Debug)]
struct Where {
    first_index: usize,
    signed_elsewhere: usize,
    height: u32,
}

/// Each list of unspent `outputs` as tokens, each output's transaction id
/// and signature taken from `signatures` (an output missing there, or
/// whose signature does not match its digest, is left out and logged).
pub(crate) fn tokens_of(
    outputs: Vec<Vec<(OutputKey, &OutputState)>>,
    signatures: &Map<OutputKey, (Txid, crate::transaction::Signature)>,
) -> Vec<Vec<Token>> {
    outputs
        .into_iter()
        .map(|outputs| {
            outputs
                .into_iter()
                .filter_map(|(key, state)| {
                    let (hash, signature) = signatures.get(&key)?;
                    let same = signature_digest(signature) == state.signature;
                    if !same {
                        tracing::warn!("an output's signature does not match the ledger's digest");
                    }
                    same.then(|| state.token(*hash, signature.clone()))
                })
                .collect()
        })
        .collect()
}

/// A ledger's block height for `height` ([`NO_BLOCK`] past `u32`'s range,
/// which no chain reaches).
fn block_height(height: u64) -> u32 {
    u32::try_from(height).unwrap_or(NO_BLOCK)
}

/// Every output of a chain and whether it is spent, and the money rules it
/// was built under.
#[derive(Clone, Debug, Default)]
pub struct Ledger {
    profile: Profile,
    outputs: Map<OutputKey, OutputState>,
    /// The transactions whose ids the ledger still needs, by [`TxidKey`]:
    /// every one where two transactions may share an id
    /// ([`ids_are_unique`]); elsewhere every coinbase, and every transfer
    /// until nothing it made is left unspent and the block that spent the
    /// last of it has left memory ([`Ledger::forget_spent`]).
    txns: Set<TxidKey>,
    /// Transactions recorded, each once (repeats not counted).
    recorded: usize,
    /// Coins created so far (rewards, grants, coinbases).
    supply: i128,
    /// The owners of outputs, one copy each (at most [`MAX_OWNERS`]): a
    /// class's few dozen addresses own thousands of outputs, and each
    /// would otherwise keep its own 451 bytes once its block has left
    /// memory.
    owners: Set<Address>,
    /// The outputs' signatures, in a ledger of transactions in no block
    /// (the oracle's record of what it sent, a replica's): its tokens can
    /// be read from nowhere else. `None` in a chain's ledger, whose tokens
    /// are read back from their blocks.
    signatures: Option<Map<OutputKey, (Txid, crate::transaction::Signature)>>,
}

/// Most distinct owners a ledger shares a copy of; past them an output
/// keeps its own (memory stays bounded by the outputs, as before).
pub const MAX_OWNERS: usize = 4096;

impl OutputView for Ledger {
    fn output(&self, outpoint: &OutPoint) -> Option<&OutputState> {
        self.outputs.get(&OutputKey::of(outpoint))
    }

    fn contains_txn(&self, hash: &Txid) -> bool {
        self.txns.contains(&txid_key(hash))
    }

    fn profile(&self) -> &Profile {
        &self.profile
    }

    fn supply(&self) -> i128 {
        self.supply
    }
}

impl Ledger {
    /// A ledger that keeps its outputs' signatures, for transactions in
    /// no block ([`Ledger::apply_txns`]).
    pub fn new(profile: Profile) -> Ledger {
        Ledger {
            profile,
            signatures: Some(Map::default()),
            ..Ledger::default()
        }
    }

    /// A chain's ledger: it keeps a digest of each output's signature and
    /// its block's height, not the signature
    /// ([`crate::chain::Chain::unspent_of`] reads tokens back).
    pub fn for_chain(profile: Profile) -> Ledger {
        Ledger {
            profile,
            ..Ledger::default()
        }
    }

    /// Checks a transaction against the ledger as it stands.
    pub fn check(
        &self,
        txn: &Transaction,
        tokens: Option<&[Token]>,
    ) -> Result<CheckedTxn, TxError> {
        check_transaction(self, txn, txn.hash(), tokens)
    }

    /// What the next block pays its miner (`None` where blocks carry no
    /// reward).
    pub fn next_reward(&self) -> Option<i64> {
        let supply = i64::try_from(self.supply).unwrap_or(i64::MAX);
        self.profile.block_reward(supply)
    }

    /// Checks every transaction of block `height`, whose hashes are
    /// `hashes` (from [`crate::chain::check_body`]), in order (each may spend
    /// the outputs of those before it) and applies them: where the profile
    /// rewards blocks, the first must be the reward ([`check_reward`]). In
    /// the toycoin profile a transaction already in the ledger is skipped
    /// instead of refused. On failure nothing is changed. Costs time
    /// proportional to the block, not to the ledger. The signatures of the
    /// transactions before position `signed_elsewhere` are the caller's to
    /// verify ([`verify_ahead`](crate::signatures::verify_ahead), `SignaturesAhead`); 0: all are verified
    /// here.
    pub fn apply_block(
        &mut self,
        txns: &[Transaction],
        hashes: &[Txid],
        names: &[Option<TxnKey>],
        height: u64,
        signed_elsewhere: usize,
    ) -> Result<BlockUndo, BlockTxError> {
        debug_assert_eq!(txns.len(), hashes.len());
        debug_assert_eq!(txns.len(), names.len());
        let mut undo = BlockUndo::default();
        let mut rest = txns;
        if let Some(expected) = self.next_reward() {
            let Some((reward, others)) = txns.split_first() else {
                return Err(BlockTxError {
                    index: 0,
                    error: TxError::MissingReward,
                });
            };
            let hash = hashes[0];
            let checked = check_reward(reward, expected, height).and_then(|()| {
                if self.txns.contains(&txid_key(&hash)) {
                    Err(TxError::Duplicate)
                } else {
                    Ok(CheckedTxn::creating(hash, expected))
                }
            });
            match checked {
                Ok(checked) => self.apply(reward, checked, &mut undo, block_height(height)),
                Err(error) => return Err(BlockTxError { index: 0, error }),
            }
            rest = others;
        }
        let first = txns.len() - rest.len();
        self.apply_each(
            rest,
            &hashes[first..],
            &names[first..],
            Where {
                first_index: first,
                signed_elsewhere,
                height: block_height(height),
            },
            undo,
        )
    }

    /// Checks and applies transactions that are in no block (the oracle's
    /// record of what it sent), as [`Ledger::apply_block`] does a block's.
    pub fn apply_txns(&mut self, txns: &[Transaction]) -> Result<BlockUndo, BlockTxError> {
        let hashes: Vec<Txid> = txns.iter().map(Transaction::hash).collect();
        let names = txn_names(txns, self.profile.signing());
        let nowhere = Where {
            first_index: 0,
            signed_elsewhere: 0,
            height: NO_BLOCK,
        };
        self.apply_each(txns, &hashes, &names, nowhere, BlockUndo::default())
    }

    /// Checks and applies `txns`, whose hashes are `hashes`, in order, as
    /// [`check_transaction`] would one by one (the signatures of those
    /// before block position `signed_elsewhere` left to the caller), with
    /// the signatures verified on the signature threads
    /// meanwhile: window by window, this thread checks and applies every
    /// transaction without its signatures while the others verify them.
    /// The first failure by position is reported, as in order; a block
    /// that fails early costs at most one window's signatures (and got
    /// this far only with a valid proof of work).
    fn apply_each(
        &mut self,
        txns: &[Transaction],
        hashes: &[Txid],
        names: &[Option<TxnKey>],
        at: Where,
        mut undo: BlockUndo,
    ) -> Result<BlockUndo, BlockTxError> {
        let Where {
            first_index,
            signed_elsewhere,
            height,
        } = at;
        let allow_repeats = self.profile.tolerates_repeated_txns();
        let signing = self.profile.signing();
        let window = WINDOW_PER_THREAD * signature_threads().max(1);
        let mut start = 0;
        while start < txns.len() {
            let end = (start + window).min(txns.len());
            let signed: Vec<(usize, &Transaction, Option<TxnKey>)> = (start..end)
                .filter(|i| first_index + i >= signed_elsewhere)
                .map(|i| (i, &txns[i], names[i]))
                .filter(|(_, t, _)| !t.is_coinbase())
                .collect();
            // A repeat skipped under toycoin is byte for byte a transaction
            // whose signatures verified when it first went in: they verify.
            let (failed, bad_signature) = verify_alongside(&signed, signing, || {
                for (i, txn) in txns.iter().enumerate().take(end).skip(start) {
                    let hash = hashes[i];
                    if allow_repeats && self.txns.contains(&txid_key(&hash)) {
                        undo.repeats += 1;
                        continue;
                    }
                    let checked = check_encoding(&self.profile, txn)
                        .and_then(|()| check_spend(self, txn, hash, None));
                    match checked {
                        Ok(checked) => self.apply(txn, checked, &mut undo, height),
                        Err(error) => return Some((i, error)),
                    }
                }
                None
            });
            let first = match (bad_signature, failed) {
                (Some(sig), Some(spend)) => Some(if sig.0 < spend.0 { sig } else { spend }),
                (sig, spend) => sig.or(spend),
            };
            if let Some((i, error)) = first {
                self.undo_block(undo);
                return Err(BlockTxError {
                    index: first_index + i,
                    error,
                });
            }
            start = end;
        }
        Ok(undo)
    }

    /// Records `txn`: the outputs it spends leave the table for `undo`
    /// (a spent output is never needed again unless its block is taken
    /// back; kept in the table until its block left memory, the window's
    /// spent outputs doubled a table that never shrinks, issue 34), and
    /// its outputs join it.
    fn apply(&mut self, txn: &Transaction, checked: CheckedTxn, undo: &mut BlockUndo, height: u32) {
        for outpoint in checked.inputs {
            // Every input was just found in this ledger (`check_spend`).
            let Some(state) = self.outputs.remove(&OutputKey::of(&outpoint)) else {
                debug_assert!(false, "an input that is not in the ledger");
                continue;
            };
            undo.spent.push(outpoint);
            undo.spent_states.push(state);
        }
        for kind in [OutputKind::Receiver, OutputKind::Change] {
            if !is_recorded(txn, kind) {
                continue;
            }
            let hash = checked.hash;
            let token = txn.output(hash, kind);
            let key = OutputKey {
                txn: txid_key(&hash),
                kind,
            };
            let mut state = OutputState::of(&token, height, txn.is_coinbase());
            state.owner = share(&mut self.owners, &state.owner);
            self.outputs.insert(key, state);
            if let Some(signatures) = &mut self.signatures {
                signatures.insert(key, (hash, token.signature));
            }
        }
        self.txns.insert(txid_key(&checked.hash));
        self.recorded += 1;
        undo.created.push(checked.hash);
        self.supply += i128::from(checked.created);
        undo.coins += i128::from(checked.created);
    }

    /// Takes back what [`Ledger::apply_block`] did.
    pub fn undo_block(&mut self, undo: BlockUndo) {
        debug_assert_eq!(undo.spent.len(), undo.spent_states.len());
        // What it spent first: an output the block made and spent goes
        // with the rest of what it made, below.
        for (outpoint, mut state) in undo.spent.iter().zip(undo.spent_states) {
            state.owner = share(&mut self.owners, &state.owner);
            self.outputs.insert(OutputKey::of(outpoint), state);
            // Its transaction has an unspent output again: its id counts
            // again, if `forget_spent` had let it go.
            self.txns.insert(txid_key(&outpoint.txn_hash));
        }
        self.recorded -= undo.created.len();
        for hash in undo.created.iter().rev() {
            for kind in [OutputKind::Receiver, OutputKind::Change] {
                let key = OutputKey {
                    txn: txid_key(hash),
                    kind,
                };
                self.outputs.remove(&key);
                if let Some(signatures) = &mut self.signatures {
                    signatures.remove(&key);
                }
            }
            self.txns.remove(&txid_key(hash));
        }
        self.supply -= undo.coins;
    }

    /// The outputs a block spent (`undo`'s, marked spent), to keep beside
    /// it once its undo leaves memory. `None` if the undo does not hold
    /// them (one read back from the block store).
    pub fn spent_outputs(&self, undo: &BlockUndo) -> Option<Vec<OutputState>> {
        (undo.spent_states.len() == undo.spent.len()).then(|| {
            undo.spent_states
                .iter()
                .map(|state| OutputState {
                    spent: true,
                    ..state.clone()
                })
                .collect()
        })
    }

    /// Forgets what the ledger kept only in case `undo`'s block was taken
    /// back, once it no longer can be from memory (a chain's block leaving
    /// its window, a transaction the oracle or a replica will never take
    /// back): the signatures of the outputs it spent, in a ledger that
    /// keeps them ([`Ledger::new`]), and, where ids are unique
    /// ([`ids_are_unique`]), the id of each transfer it spent the last
    /// unspent output of. Kept, those ids were the one thing a steady
    /// ledger held for every transaction of a lesson (issue 34): a replay
    /// of such a transfer is still refused, as its inputs are spent. (The
    /// outputs themselves left the ledger when they were spent; an input
    /// naming one is refused as [`TxError::AlreadySpent`], or, once its
    /// transaction's id is forgotten too, [`TxError::UnknownInput`].)
    pub fn forget_spent(&mut self, undo: &BlockUndo) {
        // An undo read back from the block store has no states, so no
        // coinbase marks: keep every id then.
        let forget_ids =
            ids_are_unique(&self.profile) && undo.spent_states.len() == undo.spent.len();
        for (i, outpoint) in undo.spent.iter().enumerate() {
            let key = OutputKey::of(outpoint);
            if self.outputs.contains_key(&key) {
                continue;
            }
            if let Some(signatures) = &mut self.signatures {
                signatures.remove(&key);
            }
            if forget_ids
                && !undo.spent_states[i].coinbase
                && !self.holds_output_of(&outpoint.txn_hash)
            {
                self.txns.remove(&txid_key(&outpoint.txn_hash));
            }
        }
    }

    /// Whether an output of transaction `hash` is unspent.
    fn holds_output_of(&self, hash: &Txid) -> bool {
        [OutputKind::Receiver, OutputKind::Change]
            .iter()
            .any(|&kind| {
                self.outputs.contains_key(&OutputKey {
                    txn: txid_key(hash),
                    kind,
                })
            })
    }

    /// Outputs recorded (what the ledger holds in memory): the unspent
    /// ones, since a spent output leaves the ledger.
    pub fn output_count(&self) -> usize {
        self.outputs.len()
    }

    /// Outputs recorded and not spent.
    pub fn unspent_count(&self) -> usize {
        self.outputs.values().filter(|s| !s.spent).count()
    }

    /// Coins created so far.
    pub fn supply(&self) -> i128 {
        self.supply
    }

    /// Unspent value per owner (owners with nothing left are omitted).
    pub fn balances(&self) -> BTreeMap<Address, i64> {
        let mut out = BTreeMap::new();
        for state in self.outputs.values().filter(|s| !s.spent && s.value != 0) {
            *out.entry(state.owner.clone()).or_insert(0) += state.value;
        }
        out
    }

    /// Unspent value owned by `owner`.
    pub fn balance(&self, owner: &[u8]) -> i64 {
        self.unspent_outputs_of(&[owner])
            .iter()
            .flatten()
            .map(|(_, state)| state.value)
            .sum()
    }

    /// The unspent tokens owned by `owner`, in a ledger that keeps
    /// signatures ([`Ledger::new`]; a chain's: [`crate::chain::Chain::unspent`]).
    pub fn unspent(&self, owner: &[u8]) -> Vec<Token> {
        self.unspent_of(&[owner]).pop().unwrap_or_default()
    }

    /// The unspent tokens of each of `owners`, in their order, found in one
    /// pass over the outputs (not one per owner), in a ledger that keeps
    /// signatures ([`Ledger::new`]). A chain's ledger keeps none and gives
    /// no tokens here: ask [`crate::chain::Chain::unspent_of`].
    pub fn unspent_of(&self, owners: &[&[u8]]) -> Vec<Vec<Token>> {
        let Some(signatures) = &self.signatures else {
            debug_assert!(false, "a chain's ledger keeps no signatures: ask its chain");
            return vec![Vec::new(); owners.len()];
        };
        tokens_of(self.unspent_outputs_of(owners), signatures)
    }

    /// The unspent outputs of each of `owners`, in their order, found in
    /// one pass over the outputs.
    pub fn unspent_outputs_of(&self, owners: &[&[u8]]) -> Vec<Vec<(OutputKey, &OutputState)>> {
        let slot: HashMap<&[u8], usize> = owners.iter().enumerate().map(|(i, o)| (*o, i)).collect();
        let mut out = vec![Vec::new(); owners.len()];
        for (key, state) in self.outputs.iter().filter(|(_, s)| !s.spent) {
            if let Some(&i) = slot.get(&state.owner[..]) {
                out[i].push((*key, state));
            }
        }
        out
    }

    /// Whether a transaction with this hash is in the ledger (one whose id
    /// it still holds: [`Ledger::forget_spent`]).
    pub fn contains(&self, hash: &Txid) -> bool {
        self.txns.contains(&txid_key(hash))
    }

    /// Number of transactions recorded (each once).
    pub fn txn_count(&self) -> usize {
        self.recorded
    }

    /// Number of transaction ids held ([`Ledger::forget_spent`]).
    pub fn txn_ids_held(&self) -> usize {
        self.txns.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn owners_are_shared_up_to_the_bound() {
        let mut owners = Set::default();
        let a = Bytes::from_static(b"owner a");
        let a2 = Bytes::copy_from_slice(b"owner a");
        assert_ne!(a.as_ptr(), a2.as_ptr());
        let kept = share(&mut owners, &a);
        assert_eq!(share(&mut owners, &a2).as_ptr(), kept.as_ptr());
        for i in 0..MAX_OWNERS {
            share(&mut owners, &Bytes::from(format!("owner {i}")));
        }
        assert_eq!(owners.len(), MAX_OWNERS);
        // Full: a new owner keeps its own copy, and nothing grows.
        let late = Bytes::from_static(b"a late owner");
        assert_eq!(share(&mut owners, &late).as_ptr(), late.as_ptr());
        assert_eq!(owners.len(), MAX_OWNERS);
    }
}
