//! Tokens and transactions, and the transaction hash.
//!
//! A transaction spends tokens (the outputs of earlier transactions, named
//! by their hashes in `previous_hashes`) and creates two outputs: the
//! receiver's (`receiver_value`, signed by `receiver_signature`) and the
//! sender's change (`sender_change`, signed by `sender_signature`). A token
//! is one such output seen from the side of whoever spends it.

use bytes::Bytes;

use crate::hash::{Hash, Txid, COINBASE};

/// The start of every message a steady signature covers, so that no
/// signature made for anything else can pass for one.
const AMOUNTS_DOMAIN: &[u8] = b"toycoin steady transfer v2\0";

/// What a transaction's two signatures cover.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signing {
    /// The original's: the previous hashes and one address. The amounts
    /// are not covered, so anyone relaying a transfer can rewrite them.
    Original,
    /// Every field that moves value, and which signature it is.
    Amounts,
}

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

    /// A block reward (steady): a coinbase of `value` to the miner, unique
    /// to its height (written where a transfer has its sender signature,
    /// as Bitcoin's BIP 34 puts it in the coinbase script), so that two
    /// rewards to one miner never share a hash.
    pub fn reward(miner: Address, value: i64, height: u64) -> Transaction {
        let mut txn = Transaction::coinbase(miner, value);
        txn.sender_signature = Bytes::from(height.to_string());
        txn
    }

    /// Its size: the bytes of every field, amounts as 8 bytes each (what
    /// the steady profile's [size limit](crate::profile::Profile::max_txn_bytes)
    /// counts; on the wire, base64 and JSON add about a third).
    pub fn size(&self) -> usize {
        self.previous_hashes.len() * crate::hash::HASH_LEN
            + self.receiver.len()
            + self.receiver_signature.len()
            + self.sender.len()
            + self.sender_signature.len()
            + 16
    }

    /// True when the sender is COINBASE: a funding transaction (valid only
    /// without inputs).
    pub fn is_coinbase(&self) -> bool {
        self.sender[..] == COINBASE.as_bytes()[..]
    }

    /// The bytes a signature covers. `role` names the signature: the
    /// receiver's ([`OutputKind::Receiver`]) or the sender's
    /// ([`OutputKind::Change`]).
    ///
    /// - [`Signing::Original`]: the previous hashes, then the receiver (or
    ///   the sender). No amount is covered.
    /// - [`Signing::Amounts`]: a domain tag, the role, the number of
    ///   previous hashes and each, then receiver, receiver_value, sender and
    ///   sender_change, each address preceded by its 4-byte length and each
    ///   amount as 8 bytes, all big-endian.
    pub fn signed_message(&self, signing: Signing, role: OutputKind) -> Vec<u8> {
        let hashes = &self.previous_hashes;
        match signing {
            Signing::Original => {
                let address = match role {
                    OutputKind::Receiver => &self.receiver,
                    OutputKind::Change => &self.sender,
                };
                Transaction::original_signed_message(hashes, address)
            }
            Signing::Amounts => {
                let mut msg = Vec::with_capacity(
                    64 + hashes.len() * 64 + self.receiver.len() + self.sender.len(),
                );
                msg.extend_from_slice(AMOUNTS_DOMAIN);
                msg.push(match role {
                    OutputKind::Receiver => b'R',
                    OutputKind::Change => b'S',
                });
                msg.extend_from_slice(&(hashes.len() as u32).to_be_bytes());
                for h in hashes {
                    msg.extend_from_slice(h.as_ref());
                }
                for (address, value) in [
                    (&self.receiver, self.receiver_value),
                    (&self.sender, self.sender_change),
                ] {
                    msg.extend_from_slice(&(address.len() as u32).to_be_bytes());
                    msg.extend_from_slice(address);
                    msg.extend_from_slice(&value.to_be_bytes());
                }
                msg
            }
        }
    }

    /// What the original signs: the previous hashes, then `address`.
    pub fn original_signed_message(previous_hashes: &[Txid], address: &[u8]) -> Vec<u8> {
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
    fn steady_signatures_cover_every_amount_and_the_role() {
        let mut t = Transaction::coinbase(Bytes::from_static(b"receiver"), 15);
        t.sender = Bytes::from_static(b"sender");
        t.sender_change = 26;
        let signed = |t: &Transaction, role| t.signed_message(Signing::Amounts, role);
        let original = |t: &Transaction| t.signed_message(Signing::Original, OutputKind::Change);
        let base = signed(&t, OutputKind::Change);
        assert_ne!(base, signed(&t, OutputKind::Receiver));
        let mut malleated = t.clone();
        (malleated.receiver_value, malleated.sender_change) = (41, 0);
        assert_ne!(base, signed(&malleated, OutputKind::Change));
        assert_eq!(original(&t), original(&malleated), "the original's flaw");
        assert_eq!(original(&t), b"sender");
    }

    #[test]
    fn rewards_differ_by_height() {
        let a = Transaction::reward(Bytes::from_static(b"miner"), 50, 7);
        let b = Transaction::reward(Bytes::from_static(b"miner"), 50, 8);
        assert!(a.is_coinbase() && b.is_coinbase());
        assert_ne!(a.hash(), b.hash());
        assert_eq!(&a.sender_signature[..], b"7");
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
