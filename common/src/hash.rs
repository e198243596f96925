//! SHA-512 hashes: the `Hash` digest, one type per role built on it —
//! [`Txid`] (a transaction's id) and [`BlockHash`] (a block header's hash),
//! as rust-bitcoin does, so a function's signature says which it takes —
//! and the two well-known constants.
//!
//! Every hash in toycoin is a raw 64-byte SHA-512 digest. GENESIS is the
//! `previous_hash` of the first block; COINBASE is the `sender` of a funding
//! transaction.

use std::fmt;
use std::sync::LazyLock;

use sha2::{Digest, Sha512};

/// Length of a SHA-512 digest in bytes.
pub const HASH_LEN: usize = 64;

/// A SHA-512 digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hash(pub [u8; HASH_LEN]);

impl Hash {
    /// SHA-512 of one byte string.
    pub fn of(data: &[u8]) -> Hash {
        Hash::of_parts(&[data])
    }

    /// SHA-512 of the concatenation of several byte strings, without
    /// building the concatenation.
    pub fn of_parts(parts: &[&[u8]]) -> Hash {
        let mut hasher = Sha512::new();
        for part in parts {
            hasher.update(part);
        }
        Hash(hasher.finalize().into())
    }

    /// The digest's bytes.
    pub fn as_bytes(&self) -> &[u8; HASH_LEN] {
        &self.0
    }

    /// Builds a hash from a slice that must be exactly 64 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Option<Hash> {
        bytes.try_into().ok().map(Hash)
    }

    /// Lower-case hex of the whole digest.
    pub fn to_hex(&self) -> String {
        to_hex(&self.0)
    }

    /// A short form for people: the first 12 hex digits.
    pub fn short(&self) -> String {
        to_hex(&self.0[..6])
    }

    /// Number of leading zero bits (0 to 512).
    pub fn leading_zero_bits(&self) -> u32 {
        leading_zero_bits(&self.0)
    }
}

impl AsRef<[u8]> for Hash {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.short())
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// A SHA-512 digest in one role: the same bytes and methods as [`Hash`],
/// a different type.
macro_rules! hash_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub Hash);

        impl $name {
            /// Takes a digest computed elsewhere as this kind of hash.
            pub const fn from_raw_hash(hash: Hash) -> $name {
                $name(hash)
            }

            /// The plain digest.
            pub const fn to_raw_hash(self) -> Hash {
                self.0
            }

            /// The digest's bytes.
            pub fn as_bytes(&self) -> &[u8; HASH_LEN] {
                self.0.as_bytes()
            }

            /// Builds one from a slice that must be exactly 64 bytes long.
            pub fn from_slice(bytes: &[u8]) -> Option<$name> {
                Hash::from_slice(bytes).map($name)
            }

            /// Lower-case hex of the whole digest.
            pub fn to_hex(&self) -> String {
                self.0.to_hex()
            }

            /// A short form for people: the first 12 hex digits.
            pub fn short(&self) -> String {
                self.0.short()
            }

            /// Number of leading zero bits (0 to 512).
            pub fn leading_zero_bits(&self) -> u32 {
                self.0.leading_zero_bits()
            }
        }

        impl AsRef<[u8]> for $name {
            fn as_ref(&self) -> &[u8] {
                self.0.as_ref()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.short())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
    };
}

hash_newtype! {
    /// A transaction's id: SHA-512 of its fields (`Transaction::hash`). The
    /// tokens a transaction spends name their outputs by it.
    Txid
}

hash_newtype! {
    /// A block header's hash (`BlockHeader::compute_hash`), the one its
    /// proof of work is judged by and the next block's `previous_hash`.
    BlockHash
}

/// `SHA512(b"genesis")`: the `previous_hash` of block 0.
pub static GENESIS: LazyLock<BlockHash> =
    LazyLock::new(|| BlockHash::from_raw_hash(Hash::of(b"genesis")));

/// `SHA512(b"COINBASE")`: the sender of a funding transaction.
pub static COINBASE: LazyLock<Hash> = LazyLock::new(|| Hash::of(b"COINBASE"));

/// Lower-case hex of any bytes.
pub fn to_hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// Number of leading zero bits of a byte string.
pub fn leading_zero_bits(bytes: &[u8]) -> u32 {
    let mut bits = 0;
    for &b in bytes {
        if b == 0 {
            bits += 8;
        } else {
            return bits + b.leading_zeros();
        }
    }
    bits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_match_the_vectors() {
        assert!(GENESIS.to_hex().starts_with("9fad20395a815a68"));
        assert!(COINBASE.to_hex().starts_with("362fd0af32491ab0"));
    }

    #[test]
    fn hashing_parts_equals_hashing_the_concatenation() {
        assert_eq!(Hash::of_parts(&[b"gen", b"esis"]), GENESIS.to_raw_hash());
    }

    #[test]
    fn a_role_shows_its_name_and_the_same_hex() {
        let h = Hash::of(b"x");
        let txid = Txid::from_raw_hash(h);
        assert_eq!(format!("{txid:?}"), format!("Txid({})", h.short()));
        assert_eq!(txid.to_string(), h.to_hex());
        assert_eq!(BlockHash::from_slice(h.as_bytes()), Some(BlockHash(h)));
    }

    #[test]
    fn counts_leading_zero_bits() {
        assert_eq!(leading_zero_bits(&[0, 0, 0x10, 0xff]), 19);
        assert_eq!(leading_zero_bits(&[0, 0]), 16);
        assert_eq!(leading_zero_bits(&[0x80]), 0);
    }
}
