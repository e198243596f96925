//! Tokens and transactions, and the transaction hash.
//!
//! A transaction spends tokens (the outputs of earlier transactions, named
//! by their hashes in `previous_hashes`) and creates two outputs: the
//! receiver's (`receiver_value`, signed by `receiver_signature`) and the
//! sender's change (`sender_change`, signed by `sender_signature`). A token
//! is one such output seen from the side of whoever spends it.

use bytes::Bytes;

use crate::hash::{Hash, Txid, COINBASE};

/// An address: the raw PEM bytes of an RSA public key (or, for a funding
/// transaction's sender, the raw bytes of [`COINBASE`]).
pub type Address = Bytes;

/// An RSA-PSS signature (empty on a funding transaction).
pub type Signature = Bytes;

/// An output of a transaction, as the spender presents it in a `TXN`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Token {
    pub txn_hash: Txid,
    pub owner: Address,
    pub value: i64,
    pub signature: Signature,
}

/// A transfer of value, or a coinbase funding transaction.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Transaction {
    pub previous_hashes: Vec<Txid>,
    pub receiver: Address,
    pub receiver_value: i64,
    pub receiver_signature: Signature,
    pub sender: Address,
    pub sender_change: i64,
    pub sender_signature: Signature,
}

/// A signed transaction with the tokens it spends, as a wallet makes it
/// and a `TXN ` carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transfer {
    pub tokens: Vec<Token>,
    pub txn: Transaction,
}

/// Which of a transaction's two outputs a token is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OutputKind {
    Receiver,
    Change,
}

impl Transaction {
    /// A coinbase funding transaction: `value` out of nothing for `receiver`.
    pub fn coinbase(receiver: Address, value: i64) -> Transaction {
        Transaction {
            previous_hashes: Vec::new(),
            receiver,
            receiver_value: value,
            receiver_signature: Bytes::new(),
            sender: Bytes::copy_from_slice(COINBASE.as_bytes()),
            sender_change: 0,
            sender_signature: Bytes::new(),
        }
    }

    /// The transaction hash: SHA-512 over previous hashes, receiver,
    /// dec(receiver_value), receiver signature, sender, dec(sender_change),
    /// sender signature, concatenated.
    pub fn hash(&self) -> Txid {
        let receiver_value = self.receiver_value.to_string();
        let sender_change = self.sender_change.to_string();
        let mut parts: Vec<&[u8]> = Vec::with_capacity(self.previous_hashes.len() + 6);
        parts.extend(self.previous_hashes.iter().map(|h| h.as_ref()));
        parts.extend([
            &self.receiver[..],
            receiver_value.as_bytes(),
            &self.receiver_signature[..],
            &self.sender[..],
            sender_change.as_bytes(),
            &self.sender_signature[..],
        ]);
        Txid::from_raw_hash(Hash::of_parts(&parts))
    }

    /// True when the sender is COINBASE: a funding transaction (valid only
    /// without inputs).
    pub fn is_coinbase(&self) -> bool {
        self.sender[..] == COINBASE.as_bytes()[..]
    }

    /// The bytes a signature covers: the previous hashes, then `address`
    /// (the receiver for `receiver_signature`, the sender for
    /// `sender_signature`).
    pub fn signed_message(previous_hashes: &[Txid], address: &[u8]) -> Vec<u8> {
        let mut msg = Vec::with_capacity(previous_hashes.len() * 64 + address.len());
        for h in previous_hashes {
            msg.extend_from_slice(h.as_ref());
        }
        msg.extend_from_slice(address);
        msg
    }

    /// One of the two outputs as a token, given this transaction's hash.
    pub fn output(&self, hash: Txid, kind: OutputKind) -> Token {
        match kind {
            OutputKind::Receiver => Token {
                txn_hash: hash,
                owner: self.receiver.clone(),
                value: self.receiver_value,
                signature: self.receiver_signature.clone(),
            },
            OutputKind::Change => Token {
                txn_hash: hash,
                owner: self.sender.clone(),
                value: self.sender_change,
                signature: self.sender_signature.clone(),
            },
        }
    }

    /// Both outputs, receiver first.
    pub fn outputs(&self) -> [Token; 2] {
        let hash = self.hash();
        [
            self.output(hash, OutputKind::Receiver),
            self.output(hash, OutputKind::Change),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coinbase_is_recognised() {
        let txn = Transaction::coinbase(Bytes::from_static(b"someone"), 100);
        assert!(txn.is_coinbase());
        assert!(txn.previous_hashes.is_empty());
    }

    #[test]
    fn hash_covers_the_amounts() {
        let a = Transaction::coinbase(Bytes::from_static(b"someone"), 100);
        let mut b = a.clone();
        b.receiver_value = 101;
        assert_ne!(a.hash(), b.hash());
    }

    #[test]
    fn outputs_carry_the_transaction_hash() {
        let txn = Transaction::coinbase(Bytes::from_static(b"someone"), 7);
        let [r, c] = txn.outputs();
        assert_eq!(r.txn_hash, txn.hash());
        assert_eq!((r.value, c.value), (7, 0));
        assert_eq!(c.owner, txn.sender);
    }
}
