//! Wallets and signatures: RSA-2048 keys, addresses as PEM public keys,
//! RSA-PSS with SHA-512, MGF1(SHA-512) and the maximum salt length, as the
//! original signs with Python's `cryptography`.

use bytes::Bytes;
use rand::{CryptoRng, RngCore};
use rsa::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
};
use rsa::traits::PublicKeyParts;
use rsa::{Pss, RsaPrivateKey, RsaPublicKey};
use sha2::{Digest, Sha512};

use crate::hash::HASH_LEN;

mod verify;
use crate::profile::Signing;
use crate::transaction::{Address, OutputKind, Token, Transaction, Transfer};

/// Key size of the original's wallets.
pub const KEY_BITS: usize = 2048;

/// What went wrong with a key or a signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("address is not a PEM RSA public key")]
    BadAddress,
    #[error("signature does not verify")]
    BadSignature,
    #[error("could not generate or use a key: {0}")]
    Key(String),
}

/// Why a wallet could not build a transfer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransferError {
    #[error("tokens worth {available} cannot pay {wanted}")]
    InsufficientFunds { available: i64, wanted: i64 },
    #[error("amount {0} is negative")]
    NegativeAmount(i64),
    #[error(transparent)]
    Signature(#[from] SignatureError),
}

/// The PSS salt length `cryptography` uses for `PSS.MAX_LENGTH`:
/// emLen - hLen - 2.
fn max_salt_len(modulus_bits: usize) -> usize {
    let em_len = (modulus_bits - 1).div_ceil(8);
    em_len.saturating_sub(HASH_LEN + 2)
}

/// An RSA key pair and its address.
#[derive(Clone)]
pub struct Wallet {
    key: RsaPrivateKey,
    address: Address,
}

impl std::fmt::Debug for Wallet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wallet").finish_non_exhaustive()
    }
}

impl Wallet {
    /// A new RSA-2048 wallet (public exponent 65537).
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Result<Wallet, SignatureError> {
        let key =
            RsaPrivateKey::new(rng, KEY_BITS).map_err(|e| SignatureError::Key(e.to_string()))?;
        Wallet::from_key(key)
    }

    /// A new RSA-2048 wallet from the system's randomness, made by AWS-LC:
    /// about two and a half times as fast as [`Wallet::generate`] (90 ms
    /// against 220 in a test build), which stays for keys that must follow
    /// from a seed (`toycoin-oracle --seed`, tests).
    pub fn random() -> Result<Wallet, SignatureError> {
        use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
        use aws_lc_rs::rsa::{KeyPair, KeySize};
        const _: () = assert!(KEY_BITS == 2048, "KeySize::Rsa2048 below");
        let failed = |what: &str| SignatureError::Key(format!("cannot {what} a new key"));
        let pair = KeyPair::generate(KeySize::Rsa2048).map_err(|_| failed("generate"))?;
        let der = AsDer::<Pkcs8V1Der>::as_der(&pair).map_err(|_| failed("encode"))?;
        let key = RsaPrivateKey::from_pkcs8_der(der.as_ref()).map_err(|_| failed("read"))?;
        Wallet::from_key(key)
    }

    /// A wallet for an existing private key.
    pub fn from_key(key: RsaPrivateKey) -> Result<Wallet, SignatureError> {
        let pem = key
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| SignatureError::Key(e.to_string()))?;
        Ok(Wallet {
            key,
            address: Bytes::from(pem.into_bytes()),
        })
    }

    /// The address: the public key as PEM SubjectPublicKeyInfo bytes.
    pub fn address(&self) -> &Address {
        &self.address
    }

    /// Signs `msg` with RSA-PSS/SHA-512/MGF1 and the maximum salt.
    pub fn sign<R: RngCore + CryptoRng>(
        &self,
        rng: &mut R,
        msg: &[u8],
    ) -> Result<Bytes, SignatureError> {
        let scheme = Pss::new_with_salt::<Sha512>(max_salt_len(self.key.n().bits()));
        self.key
            .sign_with_rng(rng, scheme, &Sha512::digest(msg))
            .map(Bytes::from)
            .map_err(|e| SignatureError::Key(e.to_string()))
    }

    /// A transfer of `value` to `receiver` paid with `tokens` (all owned by
    /// this wallet), with the rest as change, as the original's `send`;
    /// signed the way `signing` says (the profile's [`Profile::signing`]).
    ///
    /// [`Profile::signing`]: crate::profile::Profile::signing
    pub fn transfer<R: RngCore + CryptoRng>(
        &self,
        rng: &mut R,
        receiver: &Address,
        value: i64,
        tokens: Vec<Token>,
        signing: Signing,
    ) -> Result<Transfer, TransferError> {
        if value < 0 {
            return Err(TransferError::NegativeAmount(value));
        }
        let total: i128 = tokens.iter().map(|t| i128::from(t.value)).sum();
        let available = i64::try_from(total).unwrap_or(if total < 0 { i64::MIN } else { i64::MAX });
        if total < i128::from(value) || total > i128::from(i64::MAX) {
            return Err(TransferError::InsufficientFunds {
                available,
                wanted: value,
            });
        }
        let previous_hashes: Vec<_> = tokens.iter().map(|t| t.txn_hash).collect();
        let txn = self.signed(
            rng,
            previous_hashes,
            receiver,
            value,
            available - value,
            signing,
        )?;
        Ok(Transfer { tokens, txn })
    }

    /// A grant from the network's mint (steady): `value` new coins to
    /// `receiver`, spending nothing, signed by this wallet, which must be
    /// the mint for the network to accept it.
    pub fn grant<R: RngCore + CryptoRng>(
        &self,
        rng: &mut R,
        receiver: &Address,
        value: i64,
    ) -> Result<Transaction, TransferError> {
        if value < 0 {
            return Err(TransferError::NegativeAmount(value));
        }
        self.signed(rng, Vec::new(), receiver, value, 0, Signing::Amounts)
    }

    fn signed<R: RngCore + CryptoRng>(
        &self,
        rng: &mut R,
        previous_hashes: Vec<crate::hash::Txid>,
        receiver: &Address,
        receiver_value: i64,
        sender_change: i64,
        signing: Signing,
    ) -> Result<Transaction, TransferError> {
        let mut txn = Transaction {
            previous_hashes,
            receiver: receiver.clone(),
            receiver_value,
            receiver_signature: Bytes::new(),
            sender: self.address.clone(),
            sender_change,
            sender_signature: Bytes::new(),
        };
        txn.receiver_signature =
            self.sign(rng, &txn.signed_message(signing, OutputKind::Receiver))?;
        txn.sender_signature = self.sign(rng, &txn.signed_message(signing, OutputKind::Change))?;
        Ok(txn)
    }

    /// The private key as PKCS#8 PEM.
    pub fn to_pem(&self) -> Result<String, SignatureError> {
        self.key
            .to_pkcs8_pem(LineEnding::LF)
            .map(|pem| pem.to_string())
            .map_err(|e| SignatureError::Key(e.to_string()))
    }

    /// A wallet from a PKCS#8 PEM private key.
    pub fn from_pem(pem: &str) -> Result<Wallet, SignatureError> {
        let key =
            RsaPrivateKey::from_pkcs8_pem(pem).map_err(|e| SignatureError::Key(e.to_string()))?;
        Wallet::from_key(key)
    }

    /// The wallet whose key is in the file at `path`, or a new one saved
    /// there (readable by its owner only) if there is no such file; `true`
    /// when it was created.
    pub fn load_or_create(path: &std::path::Path) -> Result<(Wallet, bool), WalletFileError> {
        let file_error =
            |e: std::io::Error| WalletFileError::Io(path.display().to_string(), e.to_string());
        match std::fs::read_to_string(path) {
            Ok(pem) => Wallet::from_pem(&pem)
                .map(|w| (w, false))
                .map_err(|e| WalletFileError::BadKey(path.display().to_string(), e.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let wallet = Wallet::random().map_err(|e| {
                    WalletFileError::BadKey(path.display().to_string(), e.to_string())
                })?;
                let pem = wallet.to_pem().map_err(|e| {
                    WalletFileError::BadKey(path.display().to_string(), e.to_string())
                })?;
                if publish_private(path, pem.as_bytes()).map_err(file_error)? {
                    return Ok((wallet, true));
                }
                // Another program made it first: its key, whole.
                let pem = std::fs::read_to_string(path).map_err(file_error)?;
                Wallet::from_pem(&pem)
                    .map(|w| (w, false))
                    .map_err(|e| WalletFileError::BadKey(path.display().to_string(), e.to_string()))
            }
            Err(e) => Err(file_error(e)),
        }
    }

    /// The short name people use for this wallet: [`fingerprint`] of its
    /// address.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.address)
    }
}

/// The fewest of `tokens`, from the front, that pay `value` (all of them
/// when they cannot): how the original's wallet pays, oldest first, as
/// many as needed.
pub fn tokens_to_pay(mut tokens: Vec<Token>, value: i64) -> Vec<Token> {
    let mut sum = 0i64;
    let needed = if value <= 0 {
        0
    } else {
        tokens
            .iter()
            .position(|t| {
                sum = sum.saturating_add(t.value);
                sum >= value
            })
            .map_or(tokens.len(), |i| i + 1)
    };
    tokens.truncate(needed);
    tokens
}

/// Checks that the key file at `path` is readable by its owner only (on
/// Unix: no permission for group or others), as a wallet's key must be.
pub fn check_private_file(path: &std::path::Path) -> Result<(), String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(format!(
                "{} can be read by others (mode {mode:o}): anyone who reads it can spend your coins; run: chmod 600 {}",
                path.display(),
                path.display()
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = meta;
    Ok(())
}

/// Why a wallet file could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WalletFileError {
    #[error("cannot use wallet file {0}: {1}")]
    Io(String, String),
    #[error("wallet file {0} holds no usable key: {1}")]
    BadKey(String, String),
}

/// Puts `bytes` at `path`, a new file only its owner can read, whole or
/// not at all: `false` when a file is already there (then left as it is).
/// They are written to a file of this call's own beside it, then linked
/// into place, which fails when another program got there first: so the
/// relay and the oracle given one new `--mint-key` at once agree on one
/// key, and neither reads half of the other's.
fn publish_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<bool> {
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let own = path.with_file_name(format!(".{name}.{}.{call}.new", std::process::id()));
    let _ = std::fs::remove_file(&own);
    write_private(&own, bytes)?;
    let linked = std::fs::hard_link(&own, path);
    let _ = std::fs::remove_file(&own);
    match linked {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        // A file system without hard links: created in place, as before.
        Err(_) => match write_private(path, bytes) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(e),
        },
    }
}

/// Writes a new file that only its owner can read (on Unix: mode 0600).
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(bytes)
}

/// Creates `dir` and its parents (readable by its owner only, on Unix) if
/// it is not there: where key files are kept.
pub fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// An address's short name: the first 8 hex digits of its SHA-512, as every
/// program prints wallets (a whole address is 451 bytes of PEM).
/// Hex digits of a fingerprint a payment may be addressed by
/// (`toycoin-wallet send --to`): 64 bits. Eight digits (32 bits) name a
/// wallet on screen, but a student who can factor the modulus they choose
/// (a fixed prime times numbers of known factors) tries a candidate key in
/// a microsecond or so and grinds 32 bits in hours; 64 bits take a
/// class's laptops years.
pub const PAY_FINGERPRINT_DIGITS: usize = 16;

/// The fingerprint a payment is addressed by: the first
/// [`PAY_FINGERPRINT_DIGITS`] hex digits of the address's SHA-512.
pub fn pay_fingerprint(address: &[u8]) -> String {
    hex::encode(&Sha512::digest(address)[..PAY_FINGERPRINT_DIGITS / 2])
}

/// Whether `wanted` (lower-case hex digits, 8 or more) begins the
/// SHA-512 of `address`: the screen's 8-digit fingerprint, or a longer one.
pub fn fingerprint_matches(address: &[u8], wanted: &str) -> bool {
    let full = hex::encode(Sha512::digest(address));
    wanted.len() >= 8 && full.starts_with(wanted)
}

pub fn fingerprint(address: &[u8]) -> String {
    fingerprint_of(&crate::hash::Hash::of(address))
}

/// [`fingerprint`] from the address's SHA-512, where only that is kept
/// (the network's mint: `Profile::mint`).
pub fn fingerprint_of(address_hash: &crate::hash::Hash) -> String {
    crate::hash::to_hex(&address_hash.as_bytes()[..4])
}

/// A public key as parsed from an address, ready to verify: keys of 2048
/// bits and more (every wallet's) by AWS-LC ([`verify`](mod@verify)),
/// smaller ones by the `rsa` crate.
#[derive(Clone, Debug)]
pub struct PublicKey {
    rsa: RsaPublicKey,
    fast: Option<verify::FastKey>,
}

/// Keys parsed lately, by address: a sender's PEM is parsed (by `rsa`,
/// then by AWS-LC) once, not once per transaction.
/// Emptied when full, so a flood of new senders costs what no cache would.
#[allow(clippy::type_complexity)]
static KEYS: std::sync::LazyLock<
    std::sync::Mutex<crate::maps::Map<Address, std::sync::Arc<PublicKey>>>,
> = std::sync::LazyLock::new(Default::default);
/// Keys [`KEYS`] holds at most (a few KiB each).
pub const KEY_CACHE: usize = 1024;

/// Parses an address into a public key (from the cache when it was parsed
/// lately).
pub fn public_key(address: &[u8]) -> Result<std::sync::Arc<PublicKey>, SignatureError> {
    if let Some(key) = KEYS.lock().ok().and_then(|k| k.get(address).cloned()) {
        return Ok(key);
    }
    let pem = std::str::from_utf8(address).map_err(|_| SignatureError::BadAddress)?;
    let rsa = RsaPublicKey::from_public_key_pem(pem).map_err(|_| SignatureError::BadAddress)?;
    let key = std::sync::Arc::new(PublicKey {
        fast: verify::FastKey::new(&rsa),
        rsa,
    });
    if let Ok(mut keys) = KEYS.lock() {
        if keys.len() >= KEY_CACHE {
            keys.clear();
        }
        keys.insert(Bytes::copy_from_slice(address), key.clone());
    }
    Ok(key)
}

/// Verifies `signature` over `msg` by the key `key`.
pub fn verify_with(key: &PublicKey, msg: &[u8], signature: &[u8]) -> Result<(), SignatureError> {
    let valid = match &key.fast {
        Some(fast) => fast.verify(msg, signature),
        None => {
            let scheme = Pss::new_with_salt::<Sha512>(max_salt_len(key.rsa.n().bits()));
            key.rsa
                .verify(scheme, &Sha512::digest(msg), signature)
                .is_ok()
        }
    };
    if valid {
        Ok(())
    } else {
        Err(SignatureError::BadSignature)
    }
}

/// Verifies `signature` over `msg` by the owner of `address`.
pub fn verify(address: &[u8], msg: &[u8], signature: &[u8]) -> Result<(), SignatureError> {
    verify_with(&*public_key(address)?, msg, signature)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::OsRng;

    #[test]
    fn a_random_wallet_is_rsa_2048_with_exponent_65537_and_signs() {
        let (w, other) = (Wallet::random().unwrap(), Wallet::random().unwrap());
        assert_eq!(w.key.n().bits(), KEY_BITS);
        assert_eq!(w.key.e(), &rsa::BigUint::from(65_537u32));
        assert_ne!(w.address(), other.address());
        let sig = w.sign(&mut OsRng, b"pay 5").unwrap();
        assert_eq!(verify(w.address(), b"pay 5", &sig), Ok(()));
        assert!(verify(other.address(), b"pay 5", &sig).is_err());
        // Its key file reads back as the same wallet.
        let back = Wallet::from_pem(&w.to_pem().unwrap()).unwrap();
        assert_eq!(back.address(), w.address());
    }

    #[test]
    fn salt_is_the_maximum_for_2048_bit_keys() {
        assert_eq!(max_salt_len(2048), 190);
    }

    #[test]
    fn address_is_pem_of_the_original_shape() {
        let w = Wallet::generate(&mut OsRng).unwrap();
        let a = w.address();
        assert!(a.starts_with(b"-----BEGIN PUBLIC KEY-----\n"));
        assert!(a.ends_with(b"-----END PUBLIC KEY-----\n"));
        assert_eq!(a.len(), 451);
    }

    #[test]
    fn signs_and_verifies_and_rejects_tampering() {
        let w = Wallet::generate(&mut OsRng).unwrap();
        let sig = w.sign(&mut OsRng, b"message").unwrap();
        assert_eq!(sig.len(), 256);
        assert_eq!(verify(w.address(), b"message", &sig), Ok(()));
        assert_eq!(
            verify(w.address(), b"messagE", &sig),
            Err(SignatureError::BadSignature)
        );
        let mut bad = sig.to_vec();
        bad[100] ^= 1;
        assert_eq!(
            verify(w.address(), b"message", &bad),
            Err(SignatureError::BadSignature)
        );
        assert_eq!(
            verify(b"junk", b"message", &sig),
            Err(SignatureError::BadAddress)
        );
    }

    #[test]
    fn pays_with_the_fewest_tokens_from_the_front() {
        let token = |value: i64| Token {
            txn_hash: crate::hash::Txid::from_raw_hash(crate::hash::Hash::of(&value.to_be_bytes())),
            owner: Bytes::from_static(b"me"),
            value,
            signature: Bytes::new(),
        };
        let values = |t: Vec<Token>| t.iter().map(|t| t.value).collect::<Vec<_>>();
        let tokens = vec![token(3), token(4), token(5)];
        assert_eq!(values(tokens_to_pay(tokens.clone(), 3)), [3]);
        assert_eq!(values(tokens_to_pay(tokens.clone(), 4)), [3, 4]);
        assert_eq!(values(tokens_to_pay(tokens.clone(), 7)), [3, 4]);
        assert_eq!(values(tokens_to_pay(tokens.clone(), 8)), [3, 4, 5]);
        assert_eq!(values(tokens_to_pay(tokens.clone(), 100)), [3, 4, 5]);
        assert!(tokens_to_pay(tokens, 0).is_empty());
    }

    #[test]
    fn transfer_pays_change_and_refuses_overdraft() {
        let a = Wallet::generate(&mut OsRng).unwrap();
        let b = Wallet::generate(&mut OsRng).unwrap();
        let fund = Transaction::coinbase(a.address().clone(), 30);
        let [token, _] = fund.outputs();
        let m = a
            .transfer(
                &mut OsRng,
                b.address(),
                12,
                vec![token.clone()],
                Signing::Amounts,
            )
            .unwrap();
        assert_eq!((m.txn.receiver_value, m.txn.sender_change), (12, 18));
        assert_eq!(m.txn.previous_hashes, vec![fund.hash()]);
        let err = a
            .transfer(&mut OsRng, b.address(), 31, vec![token], Signing::Amounts)
            .unwrap_err();
        assert_eq!(
            err,
            TransferError::InsufficientFunds {
                available: 30,
                wanted: 31
            }
        );
    }

    /// A new directory of this test's own.
    fn fresh_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "toycoin-{name}-{}-{}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_key_file_is_created_once_private_and_read_back() {
        let dir = fresh_dir("wallet");
        let path = dir.join("node.pem");
        let (a, created) = Wallet::load_or_create(&path).unwrap();
        assert!(created);
        let (b, created) = Wallet::load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(a.address(), b.address());
        assert_eq!(a.fingerprint().len(), 8);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(dir.join("junk.pem"), "not a key").unwrap();
        assert!(matches!(
            Wallet::load_or_create(&dir.join("junk.pem")),
            Err(WalletFileError::BadKey(..))
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The relay and the oracle given one new `--mint-key` at once (or the
    /// relay's three binary tests, which failed CI so): each gets the one
    /// key, whole, and exactly one of them made it.
    #[test]
    fn programs_creating_one_key_file_at_once_agree_on_one_key() {
        let dir = fresh_dir("wallet-race");
        for round in 0..20 {
            let path = dir.join(format!("mint-{round}.pem"));
            let start = std::sync::Arc::new(std::sync::Barrier::new(4));
            let racers: Vec<_> = (0..4)
                .map(|_| {
                    let (path, start) = (path.clone(), start.clone());
                    std::thread::spawn(move || {
                        start.wait();
                        Wallet::load_or_create(&path)
                    })
                })
                .collect();
            let made: Vec<(Wallet, bool)> = racers
                .into_iter()
                .map(|r| r.join().unwrap().unwrap())
                .collect();
            assert_eq!(made.iter().filter(|(_, created)| *created).count(), 1);
            assert!(made.iter().all(|(w, _)| w.address() == made[0].0.address()));
            let (again, created) = Wallet::load_or_create(&path).unwrap();
            assert!(!created);
            assert_eq!(again.address(), made[0].0.address());
        }
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(left.len(), 20, "only the key files are left");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
