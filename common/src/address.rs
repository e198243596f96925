//! Canonical addresses (steady): one key, one address, one fingerprint.
//!
//! An address is a PEM public key. The original takes any key `cryptography`
//! reads, so one key had many addresses (another exponent, CRLF line
//! endings, other line lengths) and a student could grind one whose
//! fingerprint a classmate's `send --to` would match. In steady an address
//! is exactly what our wallets and Python's `cryptography` write for an
//! RSA-2048 key with exponent 65537: SubjectPublicKeyInfo DER, base64 in
//! lines of 64, LF endings. The check reads bytes only (no big numbers),
//! so refusing a bad address costs less than sending it.

use base64::Engine;

/// The DER of an RSA-2048 SubjectPublicKeyInfo up to the modulus: the
/// sequence, the rsaEncryption algorithm with NULL parameters, the bit
/// string, the RSAPublicKey sequence and the modulus's INTEGER header with
/// its zero byte (the modulus's top bit is set).
const SPKI_PREFIX: [u8; 33] = [
    0x30, 0x82, 0x01, 0x22, 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01,
    0x01, 0x05, 0x00, 0x03, 0x82, 0x01, 0x0f, 0x00, 0x30, 0x82, 0x01, 0x0a, 0x02, 0x82, 0x01, 0x01,
    0x00,
];
/// The public exponent 65537 as a DER INTEGER.
const SPKI_EXPONENT: [u8; 5] = [0x02, 0x03, 0x01, 0x00, 0x01];
/// Bytes of a 2048-bit modulus.
const MODULUS_BYTES: usize = 256;
/// The DER's length.
const SPKI_LEN: usize = SPKI_PREFIX.len() + MODULUS_BYTES + SPKI_EXPONENT.len();
const BEGIN: &str = "-----BEGIN PUBLIC KEY-----\n";
const END: &str = "-----END PUBLIC KEY-----\n";
/// Base64 characters of the DER: 392, no padding (294 is a multiple of 3).
const B64_LEN: usize = SPKI_LEN.div_ceil(3) * 4;
const _: () = assert!(SPKI_LEN % 3 == 0);
/// Bytes of a canonical address (451).
pub const ADDRESS_LEN: usize = BEGIN.len() + END.len() + B64_LEN + B64_LEN.div_ceil(64);

/// Why an address is not canonical.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("an address is {ADDRESS_LEN} bytes of PEM, not {0}")]
    Length(usize),
    #[error("not a PEM public key in lines of 64 with LF endings")]
    Encoding,
    #[error("not an RSA-2048 key (only 2048-bit RSA keys are addresses)")]
    NotRsa2048,
    #[error("the public exponent is not 65537")]
    Exponent,
}

/// Whether `address` is the one canonical address of an RSA-2048 key with
/// exponent 65537, as [`crate::wallet::Wallet`] writes it.
pub fn check_canonical(address: &[u8]) -> Result<(), AddressError> {
    if address.len() != ADDRESS_LEN {
        return Err(AddressError::Length(address.len()));
    }
    let body = address
        .strip_prefix(BEGIN.as_bytes())
        .and_then(|t| t.strip_suffix(END.as_bytes()))
        .ok_or(AddressError::Encoding)?;
    // Lines of 64 and a last one, each ending in LF, gathered on the stack
    // (the length is fixed, so where each line ends is too).
    let mut b64 = [0u8; B64_LEN];
    let mut filled = 0;
    for line in body.chunks(65) {
        let (text, end) = line.split_at(line.len() - 1);
        if end != b"\n" || filled + text.len() > B64_LEN {
            return Err(AddressError::Encoding);
        }
        b64[filled..filled + text.len()].copy_from_slice(text);
        filled += text.len();
    }
    // The DER is a whole number of 3-byte groups, so the base64 has no
    // padding and no spare bits: strict decoding (any byte outside the
    // alphabet, `=` included, is refused) is one-to-one, and what decodes
    // is what our wallets write.
    let mut der = [0u8; SPKI_LEN];
    let decoded = base64::engine::general_purpose::STANDARD
        .decode_slice(&b64[..filled], &mut der)
        .map_err(|_| AddressError::Encoding)?;
    if filled != B64_LEN {
        return Err(AddressError::Encoding);
    }
    if decoded != SPKI_LEN
        || der[..SPKI_PREFIX.len()] != SPKI_PREFIX
        || der[SPKI_PREFIX.len()] & 0x80 == 0
    {
        return Err(AddressError::NotRsa2048);
    }
    if der[SPKI_PREFIX.len() + MODULUS_BYTES..] != SPKI_EXPONENT {
        return Err(AddressError::Exponent);
    }
    Ok(())
}

/// A canonical address for a made-up 2048-bit modulus, one per `name`:
/// for tests and benchmarks that need a miner or a receiver and no key
/// (nobody can sign for it).
pub fn example(name: &[u8]) -> crate::transaction::Address {
    let mut der = SPKI_PREFIX.to_vec();
    let mut modulus = [0u8; MODULUS_BYTES];
    for (i, chunk) in modulus.chunks_mut(64).enumerate() {
        let digest = crate::hash::Hash::of_parts(&[name, &[i as u8]]);
        chunk.copy_from_slice(digest.as_bytes());
    }
    modulus[0] |= 0x80;
    modulus[MODULUS_BYTES - 1] |= 1;
    der.extend(modulus);
    der.extend(SPKI_EXPONENT);
    let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
    let mut pem = BEGIN.to_owned();
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str(END);
    pem.into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs8::{EncodePublicKey, LineEnding};
    use rsa::{BigUint, RsaPrivateKey, RsaPublicKey};

    fn pem(key: &RsaPublicKey, ending: LineEnding) -> Vec<u8> {
        key.to_public_key_pem(ending).unwrap().into_bytes()
    }

    #[test]
    fn a_wallets_address_is_canonical_and_its_variants_are_not() {
        let w = crate::wallet::Wallet::random().unwrap();
        assert_eq!(w.address().len(), ADDRESS_LEN);
        assert_eq!(check_canonical(w.address()), Ok(()));
        let key = RsaPublicKey::from(
            &rsa::pkcs8::DecodePrivateKey::from_pkcs8_pem(&w.to_pem().unwrap())
                .map(|k: RsaPrivateKey| k)
                .unwrap(),
        );
        // The same key with CRLF line endings.
        let crlf = pem(&key, LineEnding::CRLF);
        assert!(check_canonical(&crlf).is_err());
        // Exponent 3 on the same modulus.
        let e3 = RsaPublicKey::new_unchecked(
            rsa::traits::PublicKeyParts::n(&key).clone(),
            BigUint::from(3u32),
        );
        assert!(check_canonical(&pem(&e3, LineEnding::LF)).is_err());
        // An exponent of the same length as 65537's, but not 65537.
        let e_other = RsaPublicKey::new_unchecked(
            rsa::traits::PublicKeyParts::n(&key).clone(),
            BigUint::from(65_539u32),
        );
        assert_eq!(
            check_canonical(&pem(&e_other, LineEnding::LF)),
            Err(AddressError::Exponent)
        );
        assert_eq!(check_canonical(&example(b"1")), Ok(()));
        assert_ne!(example(b"1"), example(b"2"));
        // A 33-bit exponent.
        let big_e = RsaPublicKey::new_unchecked(
            rsa::traits::PublicKeyParts::n(&key).clone(),
            BigUint::from((1u64 << 32) + 15),
        );
        assert!(check_canonical(&pem(&big_e, LineEnding::LF)).is_err());
        // A 512-bit key.
        let small = RsaPrivateKey::new(&mut rand::rngs::OsRng, 512).unwrap();
        assert!(check_canonical(&pem(&small.to_public_key(), LineEnding::LF)).is_err());
        // Trailing bytes, garbage.
        let mut longer = w.address().to_vec();
        longer.push(b'\n');
        assert!(check_canonical(&longer).is_err());
        assert!(check_canonical(b"hello").is_err());
        // The same length, not canonical: a line break moved one place
        // (lines of 63 and 65), padding or a space in the base64, a CR for
        // an LF.
        let a = w.address();
        let first_lf = BEGIN.len() + 64;
        let mut moved = a.to_vec();
        moved.swap(first_lf - 1, first_lf);
        assert_eq!(check_canonical(&moved), Err(AddressError::Encoding));
        for (at, byte) in [
            (BEGIN.len() + 10, b'='),
            (BEGIN.len() + 70, b' '),
            (first_lf, b'\r'),
        ] {
            let mut changed = a.to_vec();
            changed[at] = byte;
            assert_eq!(
                check_canonical(&changed),
                Err(AddressError::Encoding),
                "{at}"
            );
        }
        // Every other base64 character in one place decodes to another key,
        // still canonical: the check is one-to-one, not lenient.
        let mut other = a.to_vec();
        other[BEGIN.len() + 100] = if a[BEGIN.len() + 100] == b'A' {
            b'B'
        } else {
            b'A'
        };
        assert_eq!(check_canonical(&other), Ok(()));
        assert_ne!(&other[..], &a[..]);
    }
}
