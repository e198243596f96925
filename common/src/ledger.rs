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

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::hash::Txid;
use crate::transaction::{Address, OutputKind, Token, Transaction};
use crate::wallet::{self, SignatureError};

/// One output of one transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OutPoint {
    pub txn_hash: Txid,
    pub kind: OutputKind,
}

/// An output and whether it has been spent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputState {
    pub token: Token,
    pub spent: bool,
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
    #[error("input {index} spends unknown transaction {}", hash.short())]
    UnknownInput { index: usize, hash: Txid },
    #[error("input {index} is already spent (output of {})", hash.short())]
    AlreadySpent { index: usize, hash: Txid },
    #[error("token {index} does not match the output it names")]
    TokenMismatch { index: usize },
    #[error("inputs are worth {inputs} but outputs {outputs}")]
    ValueMismatch { inputs: i128, outputs: i128 },
    #[error("sender is not a valid RSA public key")]
    BadSenderAddress,
    #[error("{which} signature does not verify")]
    BadSignature { which: &'static str },
}

/// Where [`check_transaction`] looks up outputs.
pub trait OutputView {
    /// The output, spent or not, if it exists.
    fn output(&self, outpoint: &OutPoint) -> Option<&OutputState>;
    /// Whether a transaction with this hash is already recorded.
    fn contains_txn(&self, hash: &Txid) -> bool;
    /// Whether it is recorded as pending rather than in the chain.
    fn is_pending(&self, _hash: &Txid) -> bool {
        false
    }
}

/// A transaction that passed [`check_transaction`], with what it spends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckedTxn {
    pub hash: Txid,
    pub inputs: Vec<OutPoint>,
}

/// Checks `txn` (whose hash is `hash`) against `view`. `tokens` are the
/// tokens of a `TXN` message; `None` for a transaction inside a block.
pub fn check_transaction(
    view: &impl OutputView,
    txn: &Transaction,
    hash: Txid,
    tokens: Option<&[Token]>,
) -> Result<CheckedTxn, TxError> {
    let checked = check_spend(view, txn, hash, tokens)?;
    if !txn.is_coinbase() {
        check_signatures(txn)?;
    }
    Ok(checked)
}

/// Every check of [`check_transaction`] but the signatures: what depends on
/// the outputs in `view`. A transaction whose signatures were verified once
/// (a pending one, or one from a block taken back) is re-checked against a
/// new tip with this alone.
pub fn check_spend(
    view: &impl OutputView,
    txn: &Transaction,
    hash: Txid,
    tokens: Option<&[Token]>,
) -> Result<CheckedTxn, TxError> {
    if view.contains_txn(&hash) {
        return Err(if view.is_pending(&hash) {
            TxError::AlreadyPending
        } else {
            TxError::Duplicate
        });
    }
    for (field, value) in [
        ("receiver_value", txn.receiver_value),
        ("sender_change", txn.sender_change),
    ] {
        if value < 0 {
            return Err(TxError::NegativeAmount { field, value });
        }
    }
    let given_tokens = tokens.is_some();
    let tokens = tokens.unwrap_or_default();
    if txn.is_coinbase() {
        if !txn.previous_hashes.is_empty() || !tokens.is_empty() {
            return Err(TxError::CoinbaseWithInputs);
        }
        return Ok(CheckedTxn {
            hash,
            inputs: Vec::new(),
        });
    }
    if txn.previous_hashes.is_empty() {
        return Err(TxError::NoInputs);
    }
    if given_tokens {
        check_tokens_name_inputs(txn, tokens)?;
    }

    let mut inputs: Vec<OutPoint> = Vec::with_capacity(txn.previous_hashes.len());
    let mut input_value: i128 = 0;
    for (index, prev) in txn.previous_hashes.iter().enumerate() {
        let (outpoint, state) = resolve_input(view, txn, index, prev, &inputs)?;
        if given_tokens && tokens[index] != state.token {
            return Err(TxError::TokenMismatch { index });
        }
        input_value += i128::from(state.token.value);
        inputs.push(outpoint);
    }
    let output_value = i128::from(txn.receiver_value) + i128::from(txn.sender_change);
    if input_value != output_value {
        return Err(TxError::ValueMismatch {
            inputs: input_value,
            outputs: output_value,
        });
    }

    Ok(CheckedTxn { hash, inputs })
}

/// Both signatures of a non-coinbase transaction verify with the sender's key.
pub fn check_signatures(txn: &Transaction) -> Result<(), TxError> {
    let key = wallet::public_key(&txn.sender).map_err(|_| TxError::BadSenderAddress)?;
    for (which, address, signature) in [
        ("receiver", &txn.receiver, &txn.receiver_signature),
        ("sender", &txn.sender, &txn.sender_signature),
    ] {
        let msg = Transaction::signed_message(&txn.previous_hashes, address);
        wallet::verify_with(&key, &msg, signature).map_err(|e| match e {
            SignatureError::BadAddress => TxError::BadSenderAddress,
            _ => TxError::BadSignature { which },
        })?;
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
    for kind in [OutputKind::Receiver, OutputKind::Change] {
        let outpoint = OutPoint {
            txn_hash: *prev,
            kind,
        };
        let Some(state) = view.output(&outpoint) else {
            continue;
        };
        exists = true;
        if state.token.owner != txn.sender {
            continue;
        }
        owned = true;
        if !state.spent && !taken.contains(&outpoint) {
            return Ok((outpoint, state));
        }
    }
    Err(if owned {
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
    repeats: usize,
}

impl BlockUndo {
    /// How many of the block's transactions were verbatim repeats of ones
    /// already in the chain (and so applied no second time).
    pub fn repeats(&self) -> usize {
        self.repeats
    }
}

/// Records the two new, unspent outputs of `txn` (whose hash is `hash`).
fn insert_outputs(outputs: &mut HashMap<OutPoint, OutputState>, txn: &Transaction, hash: Txid) {
    for kind in [OutputKind::Receiver, OutputKind::Change] {
        outputs.insert(
            OutPoint {
                txn_hash: hash,
                kind,
            },
            OutputState {
                token: txn.output(hash, kind),
                spent: false,
            },
        );
    }
}

/// Outputs created and spent by transactions that are not in a block yet,
/// layered over a [`Ledger`]: a pending transaction may spend what another
/// pending one creates, and two pending ones cannot spend the same output.
/// The ledger itself is not touched; build a view with [`Overlay::view`].
#[derive(Clone, Debug, Default)]
pub struct Overlay {
    outputs: HashMap<OutPoint, OutputState>,
    txns: HashSet<Txid>,
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
        insert_outputs(&mut self.outputs, txn, checked.hash);
        self.txns.insert(checked.hash);
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
        self.outputs.clear();
        self.txns.clear();
    }
}

/// A transaction of a block that failed, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("transaction {index}: {error}")]
pub struct BlockTxError {
    pub index: usize,
    pub error: TxError,
}

/// Every output of a chain and whether it is spent.
#[derive(Clone, Debug, Default)]
pub struct Ledger {
    outputs: HashMap<OutPoint, OutputState>,
    txns: HashSet<Txid>,
}

impl OutputView for Ledger {
    fn output(&self, outpoint: &OutPoint) -> Option<&OutputState> {
        self.outputs.get(outpoint)
    }

    fn contains_txn(&self, hash: &Txid) -> bool {
        self.txns.contains(hash)
    }
}

impl Ledger {
    pub fn new() -> Ledger {
        Ledger::default()
    }

    /// Checks a transaction against the ledger as it stands.
    pub fn check(
        &self,
        txn: &Transaction,
        tokens: Option<&[Token]>,
    ) -> Result<CheckedTxn, TxError> {
        check_transaction(self, txn, txn.hash(), tokens)
    }

    /// Checks every transaction of a block in order (each may spend the
    /// outputs of those before it) and applies them. With `allow_repeats`
    /// (the toycoin profile), a transaction already in the ledger is skipped
    /// instead of refused. On failure nothing is changed. Costs time
    /// proportional to the block, not to the ledger.
    pub fn apply_block(
        &mut self,
        txns: &[Transaction],
        allow_repeats: bool,
    ) -> Result<BlockUndo, BlockTxError> {
        let mut undo = BlockUndo::default();
        for (index, txn) in txns.iter().enumerate() {
            let hash = txn.hash();
            if allow_repeats && self.txns.contains(&hash) {
                undo.repeats += 1;
                continue;
            }
            match check_transaction(self, txn, hash, None) {
                Ok(checked) => self.apply(txn, checked, &mut undo),
                Err(error) => {
                    self.undo_block(undo);
                    return Err(BlockTxError { index, error });
                }
            }
        }
        Ok(undo)
    }

    fn apply(&mut self, txn: &Transaction, checked: CheckedTxn, undo: &mut BlockUndo) {
        for outpoint in &checked.inputs {
            if let Some(state) = self.outputs.get_mut(outpoint) {
                state.spent = true;
            }
        }
        undo.spent.extend(checked.inputs);
        insert_outputs(&mut self.outputs, txn, checked.hash);
        self.txns.insert(checked.hash);
        undo.created.push(checked.hash);
    }

    /// Takes back what [`Ledger::apply_block`] did.
    pub fn undo_block(&mut self, undo: BlockUndo) {
        for hash in undo.created.iter().rev() {
            for kind in [OutputKind::Receiver, OutputKind::Change] {
                self.outputs.remove(&OutPoint {
                    txn_hash: *hash,
                    kind,
                });
            }
            self.txns.remove(hash);
        }
        for outpoint in undo.spent {
            if let Some(state) = self.outputs.get_mut(&outpoint) {
                state.spent = false;
            }
        }
    }

    /// Unspent value per owner (owners with nothing left are omitted).
    pub fn balances(&self) -> BTreeMap<Address, i64> {
        let mut out = BTreeMap::new();
        for state in self
            .outputs
            .values()
            .filter(|s| !s.spent && s.token.value != 0)
        {
            *out.entry(state.token.owner.clone()).or_insert(0) += state.token.value;
        }
        out
    }

    /// Unspent value owned by `owner`.
    pub fn balance(&self, owner: &[u8]) -> i64 {
        self.unspent(owner).iter().map(|t| t.value).sum()
    }

    /// The unspent tokens owned by `owner`.
    pub fn unspent(&self, owner: &[u8]) -> Vec<Token> {
        self.outputs
            .values()
            .filter(|s| !s.spent && s.token.owner == owner)
            .map(|s| s.token.clone())
            .collect()
    }

    /// Whether a transaction with this hash is in the ledger.
    pub fn contains(&self, hash: &Txid) -> bool {
        self.txns.contains(hash)
    }

    /// Number of transactions recorded.
    pub fn txn_count(&self) -> usize {
        self.txns.len()
    }
}
