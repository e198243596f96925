//! RSA-PSS verification through AWS-LC (`aws-lc-rs`): SHA-512,
//! MGF1(SHA-512) and the maximum salt, the scheme the original's wallets
//! sign with, at the speed of OpenSSL's own assembly. `ring`, like
//! `aws-lc-rs` before 1.19, takes only a salt as long as the digest (64
//! bytes; the original's are 190). `rsa` still makes keys, signs, and
//! verifies keys AWS-LC takes no part in (under 2048 bits).

use aws_lc_rs::signature::{self, ParsedPublicKey, RsaParameters, RsaPssSaltLength};
use rsa::pkcs8::EncodePublicKey;
use rsa::traits::PublicKeyParts;
use rsa::RsaPublicKey;

/// RSA-PSS, SHA-512, MGF1(SHA-512), salt emLen - hLen - 2, keys of 2048
/// to 8192 bits.
static PSS_SHA512_MAX_SALT: RsaParameters =
    signature::RSA_PSS_2048_8192_SHA512.with_pss_salt_length(RsaPssSaltLength::Max);

/// A public key as AWS-LC verifies with it, parsed once.
#[derive(Clone, Debug)]
pub(super) struct FastKey(ParsedPublicKey);

impl FastKey {
    /// AWS-LC's form of `key`, where AWS-LC takes it (2048 to 8192 bits).
    pub(super) fn new(key: &RsaPublicKey) -> Option<FastKey> {
        // AWS-LC parses smaller keys, then refuses every signature by them.
        if !(2048..=8192).contains(&key.n().bits()) {
            return None;
        }
        let der = key.to_public_key_der().ok()?;
        ParsedPublicKey::new(&PSS_SHA512_MAX_SALT, der.as_bytes())
            .ok()
            .map(FastKey)
    }

    /// Whether `signature` is a valid RSA-PSS signature of `msg`.
    pub(super) fn verify(&self, msg: &[u8], signature: &[u8]) -> bool {
        self.0.verify_sig(msg, signature).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use rsa::Pss;
    use sha2::{Digest, Sha512};

    use super::*;
    use crate::hash::HASH_LEN;
    use crate::wallet::{max_salt_len, Wallet};

    /// Bytes of a 2048-bit signature.
    const K: usize = 256;

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
                    Pss::new_with_salt::<Sha512>(max_salt_len(2048)),
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

    /// Only the maximum salt verifies: a signature with a digest-length
    /// salt (what `ring` would want) is refused, as by the `rsa` crate.
    #[test]
    fn refuses_other_salt_lengths() {
        let mut rng = StdRng::seed_from_u64(13);
        let private = rsa::RsaPrivateKey::new(&mut rng, 2048).expect("key");
        let public = private.to_public_key();
        let fast = FastKey::new(&public).expect("2048 bits");
        let digest = Sha512::digest(b"pay 5");
        for salt in [0, HASH_LEN, max_salt_len(2048) - 1] {
            let sig = private
                .sign_with_rng(&mut rng, Pss::new_with_salt::<Sha512>(salt), &digest)
                .expect("signs");
            assert!(!fast.verify(b"pay 5", &sig), "salt {salt}");
        }
        let sig = private
            .sign_with_rng(
                &mut rng,
                Pss::new_with_salt::<Sha512>(max_salt_len(2048)),
                &digest,
            )
            .expect("signs");
        assert!(fast.verify(b"pay 5", &sig));
    }

    /// Keys AWS-LC takes no part in (1024 bits) still verify, by `rsa`.
    #[test]
    fn small_keys_verify_by_the_rsa_crate() {
        let mut rng = StdRng::seed_from_u64(14);
        let private = rsa::RsaPrivateKey::new(&mut rng, 1024).expect("key");
        assert!(FastKey::new(&private.to_public_key()).is_none());
        let wallet = Wallet::from_key(private).expect("wallet");
        let sig = wallet.sign(&mut rng, b"pay 5").expect("signs");
        assert!(crate::wallet::verify(wallet.address(), b"pay 5", &sig).is_ok());
        assert!(crate::wallet::verify(wallet.address(), b"pay 6", &sig).is_err());
    }
}
