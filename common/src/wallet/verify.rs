//! RSA-PSS verification for 2048-bit keys on `crypto-bigint`'s Montgomery
//! arithmetic: s^e mod n by square-and-multiply over the public exponent
//! (17 steps for 65537), then EMSA-PSS-VERIFY (RFC 8017, 9.1.2) with
//! SHA-512, MGF1(SHA-512) and the maximum salt, the scheme the original's
//! wallets sign with. `rsa` still makes keys, signs, and verifies keys of
//! other sizes.
//!
//! Only public values are handled (the key, the signature, the message),
//! so nothing here needs to run in constant time.

use crypto_bigint::modular::runtime_mod::{DynResidue, DynResidueParams};
use crypto_bigint::{Encoding, U2048};
use rsa::traits::PublicKeyParts;
use rsa::RsaPublicKey;
use sha2::{Digest, Sha512};

use crate::hash::HASH_LEN;

/// Bytes of a 2048-bit modulus and of a signature under it.
const K: usize = 256;
/// emLen for emBits = 2047: the encoded message fills the 256 bytes, its
/// top bit clear.
const EM_LEN: usize = K;
/// The maximum salt: emLen - hLen - 2.
const SALT_LEN: usize = EM_LEN - HASH_LEN - 2;
/// maskedDB's length: emLen - hLen - 1.
const DB_LEN: usize = EM_LEN - HASH_LEN - 1;

/// A 2048-bit public key ready for Montgomery arithmetic.
#[derive(Clone, Debug)]
pub(super) struct FastKey {
    n: U2048,
    params: DynResidueParams<{ U2048::LIMBS }>,
    e: u64,
}

impl FastKey {
    /// The fast form of `key`, where it is 2048 bits with an exponent
    /// that fits 64 bits (65537 in practice).
    pub(super) fn new(key: &RsaPublicKey) -> Option<FastKey> {
        let n_bytes = key.n().to_bytes_be();
        if key.n().bits() != 2048 || n_bytes.len() != K {
            return None;
        }
        let e_bytes = key.e().to_bytes_be();
        if e_bytes.len() > 8 {
            return None;
        }
        let e = e_bytes
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        if e < 3 {
            return None;
        }
        let n = U2048::from_be_slice(&n_bytes);
        Some(FastKey {
            params: DynResidueParams::new(&n),
            n,
            e,
        })
    }

    /// Whether `signature` is a valid RSA-PSS signature of `msg`.
    pub(super) fn verify(&self, msg: &[u8], signature: &[u8]) -> bool {
        if signature.len() != K {
            return false;
        }
        let s = U2048::from_be_slice(signature);
        if s >= self.n {
            return false;
        }
        // m = s^e mod n, from the exponent's top bit down.
        let x = DynResidue::new(&s, self.params);
        let mut y = x;
        for bit in (0..63 - self.e.leading_zeros()).rev() {
            y = y.square();
            if (self.e >> bit) & 1 == 1 {
                y *= x;
            }
        }
        let em: [u8; K] = y.retrieve().to_be_bytes();
        emsa_pss_verify(&Sha512::digest(msg), &em)
    }
}

/// EMSA-PSS-VERIFY for emBits = 2047, SHA-512 and the maximum salt.
fn emsa_pss_verify(m_hash: &[u8], em: &[u8; EM_LEN]) -> bool {
    // Steps 4 to 6: the trailer, and the bit above emBits clear.
    if em[EM_LEN - 1] != 0xbc {
        return false;
    }
    let (masked_db, rest) = em.split_at(DB_LEN);
    let h = &rest[..HASH_LEN];
    if masked_db[0] & 0x80 != 0 {
        return false;
    }
    // Steps 7 to 9: DB = maskedDB xor MGF1(H), the top bit cleared.
    let mut db = [0u8; DB_LEN];
    db.copy_from_slice(masked_db);
    mgf1_xor(h, &mut db);
    db[0] &= 0x7f;
    // Step 10: no padding string at the maximum salt, then 0x01.
    let one_at = DB_LEN - SALT_LEN - 1;
    if db[one_at] != 0x01 || db[..one_at].iter().any(|&b| b != 0) {
        return false;
    }
    // Steps 11 to 14: H' = Hash(0^8 || mHash || salt) must equal H.
    let salt = &db[DB_LEN - SALT_LEN..];
    let h2 = Sha512::new()
        .chain_update([0u8; 8])
        .chain_update(m_hash)
        .chain_update(salt)
        .finalize();
    h2.as_slice() == h
}

/// `out ^= MGF1-SHA512(seed)` over `out`'s length.
fn mgf1_xor(seed: &[u8], out: &mut [u8]) {
    for (counter, chunk) in out.chunks_mut(HASH_LEN).enumerate() {
        let block = Sha512::new()
            .chain_update(seed)
            .chain_update((counter as u32).to_be_bytes())
            .finalize();
        for (o, m) in chunk.iter_mut().zip(block.iter()) {
            *o ^= m;
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use rsa::Pss;

    use super::*;
    use crate::wallet::Wallet;

    /// Ours and the `rsa` crate's verification agree on valid signatures,
    /// every kind of tampering, and signatures of other messages.
    #[test]
    fn agrees_with_the_rsa_crate_on_valid_and_tampered_signatures() {
        let mut rng = StdRng::seed_from_u64(12);
        let wallet = Wallet::generate(&mut rng).expect("key");
        let key = crate::wallet::public_key(wallet.address()).expect("key");
        let rsa_key = key.rsa.clone();
        let fast = FastKey::new(&rsa_key).expect("2048 bits");
        let reference = |msg: &[u8], sig: &[u8]| {
            rsa_key
                .verify(
                    Pss::new_with_salt::<Sha512>(SALT_LEN),
                    &Sha512::digest(msg),
                    sig,
                )
                .is_ok()
        };
        for round in 0..40 {
            let msg: Vec<u8> = (0..rng.gen_range(0..300)).map(|_| rng.gen()).collect();
            let sig = wallet.sign(&mut rng, &msg).expect("signs").to_vec();
            assert!(
                fast.verify(&msg, &sig) && reference(&msg, &sig),
                "round {round}"
            );
            let mut bad = sig.clone();
            let i = rng.gen_range(0..bad.len());
            bad[i] ^= 1 << rng.gen_range(0..8);
            assert_eq!(
                fast.verify(&msg, &bad),
                reference(&msg, &bad),
                "flipped byte {i}"
            );
            assert!(!fast.verify(&msg, &bad));
            let mut other = msg.clone();
            other.push(1);
            assert!(!fast.verify(&other, &sig));
            assert!(!fast.verify(&msg, &sig[1..]), "short");
        }
        // s >= n, and the all-zero signature.
        assert!(!fast.verify(b"m", &[0xff; K]));
        assert!(!fast.verify(b"m", &[0; K]));
    }
}
