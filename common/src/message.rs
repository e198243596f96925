//! The `TXN ` and `BLOC` payloads: decoding and encoding exactly as the
//! original does.
//!
//! A payload is a 4-byte tag then UTF-8 JSON in which every token,
//! transaction and block is itself a JSON *string* holding a JSON object;
//! bytes are standard base64, amounts JSON integers. Encoding reproduces
//! Python's `json.dumps` byte for byte (`", "` and `": "` separators, keys in
//! the original's order), so a frame decoded and encoded again is the same
//! frame.
//!
//! Decoding never panics and never trusts a count: arrays are bounded while
//! they are read, nesting is bounded by serde_json's recursion limit, and
//! the payload itself is bounded by the frame size. Every failure says where
//! it was found, e.g. `BLOC block 2: transaction 1: receiver_value: invalid
//! type: floating point ...`.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::Bytes;
use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use crate::block::{Block, BlockHeader};
use crate::hash::{BlockHash, Hash, Txid};
use crate::merkle::MerkleRoot;
use crate::transaction::{Token, Transaction, Transfer};

/// Tag of a transaction payload (with its trailing space).
pub const TXN_TAG: &[u8; 4] = b"TXN ";
/// Tag of a chain payload.
pub const BLOC_TAG: &[u8; 4] = b"BLOC";

/// Tag of a catch-up request (ours; the original has none, see
/// `docs/catch-up.md`).
pub const GETB_TAG: &[u8; 4] = b"GETB";
/// Most hashes one `GETB` locator may list.
pub const MAX_LOCATOR: usize = 64;

/// Tag of a node's status (ours, steady only; see `docs/status.md`).
pub const STAT_TAG: &[u8; 4] = b"STAT";
/// Longest node name in a `STAT`.
pub const MAX_STATUS_NAME: usize = 32;
/// Largest `STAT` payload decoded.
pub const MAX_STATUS_PAYLOAD: usize = 2048;

/// Most tokens one `TXN` may spend, and most previous hashes one
/// transaction may list.
pub const MAX_INPUTS: usize = 1_000;
/// Most transactions one block may carry on the wire (the consensus limit,
/// [`crate::block::MAX_BLOCK_TXNS`], is checked later with its own reason).
pub const MAX_WIRE_BLOCK_TXNS: usize = 1_000;
/// Most blocks one `BLOC` may carry.
pub const MAX_WIRE_BLOCKS: usize = 100_000;

/// A `TXN ` payload: a [`Transfer`], the tokens it spends then the
/// transaction.
pub type TxnMessage = Transfer;

/// A decoded payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// `TXN `: a transaction and the tokens it spends.
    Txn(TxnMessage),
    /// `BLOC`: blocks, oldest first (in the original, a whole chain).
    Bloc(Vec<Block>),
    /// `GETB`: "send me the best chain's blocks after the first of these
    /// hashes you have" (steady profile catch-up).
    GetBlocks(GetBlocks),
    /// `STAT`: a node saying where it stands (steady profile).
    Status(Status),
}

/// The key a status is signed with, and the signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signer {
    /// The key's address (its PEM).
    pub key: crate::transaction::Address,
    /// Its signature of [`status_claim`].
    pub sig: Bytes,
}

/// What a node says about itself every few seconds: a claim, signed by
/// the node's key where it has one (steady: its wallet's), which observers
/// show only under the name that key owns ([`Status::signed_by`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Status {
    /// Its name (at most [`MAX_STATUS_NAME`] bytes).
    pub name: String,
    /// Its best chain's tip and height (`None`: no block yet).
    pub tip: Option<BlockHash>,
    pub height: Option<u64>,
    /// Hashes a second over its last mining job.
    pub hash_rate: f64,
    /// Whether it is mining now, and on how many threads.
    pub mining: bool,
    pub threads: u32,
    /// The fingerprint of the wallet its rewards go to.
    pub wallet: Option<String>,
    /// Who signed it (`None`: nobody, a claim at its word).
    pub signer: Option<Signer>,
}

impl Eq for Status {}

/// What a node's key signs in its status: every field, each ended by NUL
/// (the hash rate by its bits, so nothing is lost in print).
pub fn status_claim(status: &Status) -> Vec<u8> {
    format!(
        "toycoin-stat\0{}\0{}\0{}\0{:016x}\0{}\0{}\0{}\0",
        status.name,
        status.tip.map(|t| t.to_hex()).unwrap_or_default(),
        status.height.map(|h| h.to_string()).unwrap_or_default(),
        status.hash_rate.to_bits(),
        status.mining,
        status.threads,
        status.wallet.as_deref().unwrap_or_default(),
    )
    .into_bytes()
}

impl Status {
    /// Signs this status with `key` (its [`Signer`] replaced).
    pub fn sign(&mut self, key: &crate::wallet::Wallet) -> Result<(), String> {
        self.signer = None;
        let sig = key
            .sign(&mut rand::thread_rng(), &status_claim(self))
            .map_err(|e| e.to_string())?;
        self.signer = Some(Signer {
            key: key.address().clone(),
            sig,
        });
        Ok(())
    }

    /// The hash of the key that signed it (`Ok(None)`: unsigned), or why
    /// its signature fails.
    pub fn signed_by(&self) -> Result<Option<Hash>, String> {
        let Some(signer) = &self.signer else {
            return Ok(None);
        };
        crate::wallet::verify(&signer.key, &status_claim(self), &signer.sig)
            .map_err(|_| "its signature does not verify".to_string())?;
        Ok(Some(Hash::of(&signer.key)))
    }
}

/// A `STAT` on the wire: plain JSON, the tip in hex.
#[derive(Serialize, Deserialize)]
struct StatWire {
    name: String,
    tip: Option<String>,
    height: Option<u64>,
    hash_rate: f64,
    mining: bool,
    threads: u32,
    wallet: Option<String>,
    /// The signing key's address (base64 of its PEM) and signature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sig: Option<String>,
}

/// A catch-up request: hashes of the asker's best chain, newest first
/// (see [`crate::tree::BlockTree::locator`]); empty asks from genesis.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GetBlocks {
    pub locator: Vec<BlockHash>,
    /// The asker's random request id (at most [`MAX_REQUEST_ID`] bytes),
    /// so that two requests with the same locator differ and an asker
    /// knows its own request when the relay echoes it.
    pub id: String,
}

/// Longest `GETB` request id.
pub const MAX_REQUEST_ID: usize = 64;

/// Why a payload could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("payload of {0} bytes is too short to hold a 4-byte tag")]
    TooShort(usize),
    #[error("unknown message tag {0:?}")]
    UnknownTag(String),
    #[error("{context}: {source}")]
    Json {
        context: String,
        source: serde_json::Error,
    },
    #[error("{context}: {field}: invalid base64: {source}")]
    Base64 {
        context: String,
        field: &'static str,
        source: base64::DecodeError,
    },
    #[error("{context}: {field}: at most {max} bytes allowed, got {got}")]
    TooLong {
        context: String,
        field: &'static str,
        max: usize,
        got: usize,
    },
    #[error("{context}: {field}: expected {expected} bytes, got {got}")]
    Length {
        context: String,
        field: &'static str,
        expected: usize,
        got: usize,
    },
}

impl DecodeError {
    /// The same error, its place inside `outer` (a transaction's inside
    /// its block's).
    fn within(mut self, outer: Context) -> DecodeError {
        if let DecodeError::Json { context, .. }
        | DecodeError::Base64 { context, .. }
        | DecodeError::TooLong { context, .. }
        | DecodeError::Length { context, .. } = &mut self
        {
            *context = format!("{outer}: {context}");
        }
        self
    }
}

impl Message {
    /// Decodes a whole payload, tag included.
    pub fn decode(payload: &[u8]) -> Result<Message, DecodeError> {
        if payload.len() < 4 {
            return Err(DecodeError::TooShort(payload.len()));
        }
        let (tag, body) = payload.split_at(4);
        if tag == TXN_TAG {
            decode_txn_body(body).map(Message::Txn)
        } else if tag == BLOC_TAG {
            decode_bloc_body(body).map(Message::Bloc)
        } else if tag == GETB_TAG {
            decode_getb_body(body).map(Message::GetBlocks)
        } else if tag == STAT_TAG {
            decode_stat_body(body).map(Message::Status)
        } else {
            Err(DecodeError::UnknownTag(
                String::from_utf8_lossy(tag).into_owned(),
            ))
        }
    }

    /// Encodes the payload, tag included, as the original would.
    pub fn encode(&self) -> Bytes {
        match self {
            Message::Txn(m) => encode_txn(&m.tokens, &m.txn),
            Message::Bloc(blocks) => encode_bloc(blocks),
            Message::GetBlocks(request) => encode_getb(request),
            Message::Status(status) => encode_stat(status),
        }
    }

    /// The tag as text, e.g. `"TXN"` or `"BLOC"`.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Txn(_) => "TXN",
            Message::Bloc(_) => "BLOC",
            Message::GetBlocks(_) => "GETB",
            Message::Status(_) => "STAT",
        }
    }
}

/// The `TXN ` payload for `tokens` and `txn`.
pub fn encode_txn(tokens: &[Token], txn: &Transaction) -> Bytes {
    let tokens: Vec<String> = tokens.iter().map(token_to_json).collect();
    let body = to_python_json(&(tokens, txn_to_json(txn)));
    tagged(TXN_TAG, &body)
}

/// The `BLOC` payload for `blocks`, oldest first.
pub fn encode_bloc(blocks: &[Block]) -> Bytes {
    let blocks: Vec<String> = blocks.iter().map(block_to_json).collect();
    tagged(BLOC_TAG, &to_python_json(&blocks))
}

/// The `STAT` payload for `status` (plain JSON; hashes in hex).
pub fn encode_stat(status: &Status) -> Bytes {
    let wire = StatWire {
        name: status.name.clone(),
        tip: status.tip.map(|t| t.to_hex()),
        height: status.height,
        hash_rate: status.hash_rate,
        mining: status.mining,
        threads: status.threads,
        wallet: status.wallet.clone(),
        key: status.signer.as_ref().map(|s| b64(&s.key)),
        sig: status.signer.as_ref().map(|s| b64(&s.sig)),
    };
    tagged(STAT_TAG, &serde_json::to_string(&wire).unwrap_or_default())
}

/// The `GETB` payload for `request`.
pub fn encode_getb(request: &GetBlocks) -> Bytes {
    let wire = GetbWire {
        locator: Bounded(request.locator.iter().map(|h| b64(h.as_ref())).collect()),
        id: request.id.clone(),
    };
    tagged(GETB_TAG, &to_python_json(&wire))
}

/// One transaction as the JSON text a `BLOC` carries it in (what
/// [`transaction_from_json`] reads back): the pBFT batches reuse it.
pub fn transaction_to_json(txn: &Transaction) -> String {
    txn_to_json(txn)
}

/// A transaction from the JSON text of [`transaction_to_json`]; `context`
/// starts the error's place.
pub fn transaction_from_json(json: &str, context: &str) -> Result<Transaction, DecodeError> {
    txn_from_json(json, &context)
}

fn tagged(tag: &[u8; 4], body: &str) -> Bytes {
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend_from_slice(tag);
    out.extend_from_slice(body.as_bytes());
    Bytes::from(out)
}

// ---------------------------------------------------------------------------
// Wire shapes

// A field's text is borrowed from the JSON it is read from wherever it
// needs no unescaping (base64 never does): decoding a block allocates its
// bytes, not a copy of every field's text first (issue 34).

#[derive(Serialize, Deserialize)]
struct TokenWire<'a> {
    #[serde(borrow)]
    txn_hash: Cow<'a, str>,
    #[serde(borrow)]
    owner: Cow<'a, str>,
    value: i64,
    #[serde(borrow)]
    signature: Cow<'a, str>,
}

#[derive(Serialize, Deserialize)]
struct TxnWire<'a> {
    #[serde(borrow)]
    previous_hashes: Bounded<Text<'a>, MAX_INPUTS>,
    #[serde(borrow)]
    receiver: Cow<'a, str>,
    receiver_value: i64,
    #[serde(borrow)]
    receiver_signature: Cow<'a, str>,
    #[serde(borrow)]
    sender: Cow<'a, str>,
    sender_change: i64,
    #[serde(borrow)]
    sender_signature: Cow<'a, str>,
}

#[derive(Serialize, Deserialize)]
struct HeaderWire<'a> {
    #[serde(borrow)]
    timestamp: Cow<'a, str>,
    #[serde(borrow)]
    previous_hash: Cow<'a, str>,
    #[serde(borrow)]
    nonce: Cow<'a, str>,
    #[serde(borrow)]
    merkle_root: Cow<'a, str>,
    #[serde(borrow)]
    this_hash: Cow<'a, str>,
}

/// A block on the wire: its transactions are JSON texts, written from
/// strings and read as [`Decoded`] transactions.
#[derive(Serialize, Deserialize)]
struct BlockWire<'a, Txns> {
    #[serde(borrow)]
    header: HeaderWire<'a>,
    txns: Txns,
}

/// One JSON string's text, borrowed when it has nothing to unescape.
#[derive(Serialize, Deserialize)]
#[serde(transparent)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

/// A JSON text carried in a JSON string (a block in a `BLOC`, a `TXN`'s
/// parts), unescaped into a `String` of its own size. Its quotes are
/// always escaped, so it cannot be borrowed; read as a string, serde_json
/// unescapes it into a scratch buffer that grows by doubling and lasts the
/// whole frame, and copied out of it the largest block's text was held up
/// to three times over (issue 34). Read as a raw value, it is checked as
/// JSON (a bad escape refused) and borrowed; [`unescape`] then writes it
/// once: about half the peak, for some 5% more time (BENCHMARKS.md).
/// (A block's transactions, a few KiB each, are decoded from the scratch
/// buffer as they stand: [`DecodeText`].)
struct JsonText(String);

impl<'de> Deserialize<'de> for JsonText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = <&'de serde_json::value::RawValue>::deserialize(deserializer)?.get();
        let expected = &"a JSON text in a string";
        let unexpected = match raw.as_bytes().first() {
            Some(b'"') => None,
            Some(b'[') => Some(de::Unexpected::Seq),
            Some(b'{') => Some(de::Unexpected::Map),
            Some(b't' | b'f') => Some(de::Unexpected::Other("boolean")),
            Some(b'n') => Some(de::Unexpected::Unit),
            _ => Some(de::Unexpected::Other("number")),
        };
        if let Some(unexpected) = unexpected {
            return Err(de::Error::invalid_type(unexpected, expected));
        }
        let inner = raw
            .get(1..raw.len().saturating_sub(1))
            .ok_or_else(|| de::Error::invalid_value(de::Unexpected::Str(raw), expected))?;
        unescape(inner).map(JsonText).map_err(de::Error::custom)
    }
}

/// The contents of a JSON string (between its quotes), unescaped, in a
/// `String` of at most its length (an escape is never shorter than what
/// it stands for). `escaped` has been checked as JSON, bar the pairing of
/// UTF-16 surrogates, which is checked here.
fn unescape(escaped: &str) -> Result<String, &'static str> {
    let bytes = escaped.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut at = 0;
    // `at` is always just past an ASCII byte: a character's boundary.
    while let Some(found) = escaped[at..].find('\\') {
        out.extend_from_slice(&bytes[at..at + found]);
        at += found + 1;
        let simple = match bytes.get(at) {
            Some(b'"') => b'"',
            Some(b'\\') => b'\\',
            Some(b'/') => b'/',
            Some(b'b') => 8,
            Some(b'f') => 12,
            Some(b'n') => b'\n',
            Some(b'r') => b'\r',
            Some(b't') => b'\t',
            Some(b'u') => {
                let (ch, used) = unicode_escape(&bytes[at + 1..])?;
                out.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes());
                at += 1 + used;
                continue;
            }
            _ => return Err("a bad escape"),
        };
        out.push(simple);
        at += 1;
    }
    out.extend_from_slice(&bytes[at..]);
    // Valid UTF-8 and escapes that each stand for a whole character.
    String::from_utf8(out).map_err(|_| "not UTF-8")
}

/// The character a `\u` escape stands for (`after` follows the `u`),
/// with the pair of a UTF-16 surrogate, and the bytes of `after` it used.
fn unicode_escape(after: &[u8]) -> Result<(char, usize), &'static str> {
    let unit = |at: usize| -> Result<u32, &'static str> {
        let hex = after.get(at..at + 4).ok_or("a bad \\u escape")?;
        hex.iter().try_fold(0, |n, &b| {
            let digit = char::from(b).to_digit(16).ok_or("a bad \\u escape")?;
            Ok(n * 16 + digit)
        })
    };
    let first = unit(0)?;
    match first {
        0xD800..=0xDBFF => {
            let second = match after.get(4..6) {
                Some(b"\\u") => unit(6)?,
                _ => return Err("a lone leading surrogate in a \\u escape"),
            };
            if !(0xDC00..=0xDFFF).contains(&second) {
                return Err("a lone leading surrogate in a \\u escape");
            }
            let code = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00);
            Ok((char::from_u32(code).ok_or("a bad \\u escape")?, 10))
        }
        0xDC00..=0xDFFF => Err("a lone trailing surrogate in a \\u escape"),
        _ => Ok((char::from_u32(first).ok_or("a bad \\u escape")?, 4)),
    }
}

#[derive(Serialize, Deserialize)]
struct GetbWire {
    locator: Bounded<String, MAX_LOCATOR>,
    #[serde(default)]
    id: String,
}

/// A JSON array that refuses to grow past `MAX` elements while it is read.
#[derive(Serialize)]
#[serde(transparent)]
struct Bounded<T, const MAX: usize>(Vec<T>);

impl<'de, T: Deserialize<'de>, const MAX: usize> Deserialize<'de> for Bounded<T, MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BoundedVisitor<T, const MAX: usize>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>, const MAX: usize> Visitor<'de> for BoundedVisitor<T, MAX> {
            type Value = Bounded<T, MAX>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "an array of at most {MAX} elements")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    if items.len() == MAX {
                        return Err(de::Error::custom(format!(
                            "array has more than {MAX} elements"
                        )));
                    }
                    items.push(item);
                }
                Ok(Bounded(items))
            }
        }

        deserializer.deserialize_seq(BoundedVisitor::<T, MAX>(PhantomData))
    }
}

/// What can be decoded from one JSON text inside another (a block inside a
/// `BLOC`, a transaction inside a block), `index` its place in its array.
trait FromText: Sized {
    /// At most this many in one array.
    const MAX: usize;
    /// Read as a [`JsonText`] (unescaped once into its own size), not
    /// decoded from serde_json's scratch buffer as it stands.
    const EXACT: bool;
    fn from_text(text: &str, index: usize) -> Result<Self, DecodeError>;
}

impl FromText for Block {
    const MAX: usize = MAX_WIRE_BLOCKS;
    const EXACT: bool = true;
    fn from_text(text: &str, index: usize) -> Result<Block, DecodeError> {
        block_from_json(text, &format_args!("BLOC block {index}"))
    }
}

impl FromText for Transaction {
    const MAX: usize = MAX_WIRE_BLOCK_TXNS;
    const EXACT: bool = false;
    fn from_text(text: &str, index: usize) -> Result<Transaction, DecodeError> {
        txn_from_json(text, &format_args!("transaction {index}"))
    }
}

/// A JSON array of JSON texts, each decoded as soon as it is read: a
/// `BLOC`'s blocks and a block's transactions. Reading every text first
/// held a copy of the whole payload, then of every field, beside what was
/// decoded from it, and left holes between what stays once they were freed
/// (issue 34); now one text at a time is held. The first text that fails
/// to decode is the result (the rest of the array is still read, so that
/// the JSON around it is checked as before); the array is bounded while it
/// is read.
struct Decoded<T>(Result<Vec<T>, DecodeError>);

/// One JSON text of a [`Decoded`] array, decoded where serde_json has
/// unescaped it (its scratch buffer), never copied; with `decode` false
/// (an earlier text failed), only read.
struct DecodeText<T> {
    index: usize,
    decode: bool,
    kind: PhantomData<T>,
}

impl<'de, T: FromText> de::DeserializeSeed<'de> for DecodeText<T> {
    type Value = Option<Result<T, DecodeError>>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de, T: FromText> Visitor<'de> for DecodeText<T> {
    type Value = Option<Result<T, DecodeError>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON text in a string")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
        Ok(self.decode.then(|| T::from_text(text, self.index)))
    }
}

impl<'de, T: FromText> Deserialize<'de> for Decoded<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DecodedVisitor<T>(PhantomData<T>);

        impl<'de, T: FromText> Visitor<'de> for DecodedVisitor<T> {
            type Value = Decoded<T>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "an array of at most {} JSON texts", T::MAX)
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::new();
                let mut read = 0;
                let mut failed = None;
                loop {
                    let decode = failed.is_none();
                    let next = if T::EXACT {
                        seq.next_element::<JsonText>()?
                            .map(|text| decode.then(|| T::from_text(&text.0, read)))
                    } else {
                        seq.next_element_seed(DecodeText::<T> {
                            index: read,
                            decode,
                            kind: PhantomData,
                        })?
                    };
                    let Some(item) = next else {
                        break;
                    };
                    if read == T::MAX {
                        return Err(de::Error::custom(format!(
                            "array has more than {} elements",
                            T::MAX
                        )));
                    }
                    match item {
                        Some(Ok(item)) => items.push(item),
                        Some(Err(e)) => failed = Some(e),
                        None => {}
                    }
                    read += 1;
                }
                Ok(Decoded(match failed {
                    None => Ok(items),
                    Some(e) => Err(e),
                }))
            }
        }

        deserializer.deserialize_seq(DecodedVisitor::<T>(PhantomData))
    }
}

// ---------------------------------------------------------------------------
// Decoding

fn decode_txn_body(body: &[u8]) -> Result<TxnMessage, DecodeError> {
    let (tokens, txn): (Bounded<JsonText, MAX_INPUTS>, JsonText) = parse_json(&"TXN", body)?;
    let tokens = tokens
        .0
        .iter()
        .enumerate()
        .map(|(i, s)| token_from_json(&s.0, &format_args!("TXN token {i}")))
        .collect::<Result<Vec<_>, _>>()?;
    let txn = txn_from_json(&txn.0, &"TXN transaction")?;
    Ok(TxnMessage { tokens, txn })
}

fn decode_bloc_body(body: &[u8]) -> Result<Vec<Block>, DecodeError> {
    let blocks: Decoded<Block> = parse_json(&"BLOC", body)?;
    blocks.0
}

fn decode_stat_body(body: &[u8]) -> Result<Status, DecodeError> {
    if body.len() > MAX_STATUS_PAYLOAD {
        return Err(DecodeError::TooLong {
            context: "STAT".into(),
            field: "payload",
            max: MAX_STATUS_PAYLOAD,
            got: body.len(),
        });
    }
    let status: StatWire = parse_json(&"STAT", body)?;
    let too_long = |field, got| DecodeError::TooLong {
        context: "STAT".into(),
        field,
        max: MAX_STATUS_NAME,
        got,
    };
    if status.name.len() > MAX_STATUS_NAME {
        return Err(too_long("name", status.name.len()));
    }
    if let Some(w) = &status.wallet {
        if w.len() > MAX_STATUS_NAME {
            return Err(too_long("wallet", w.len()));
        }
    }
    let invalid = |what: &str| DecodeError::Json {
        context: "STAT".into(),
        source: serde::de::Error::custom(what),
    };
    if !status.hash_rate.is_finite() || status.hash_rate < 0.0 {
        return Err(invalid("hash_rate: not a rate"));
    }
    let tip = match &status.tip {
        None => None,
        Some(hex) => {
            let bytes = hex::decode(hex).map_err(|_| invalid("tip: not hex"))?;
            let hash: [u8; crate::hash::HASH_LEN] = bytes
                .try_into()
                .map_err(|_| invalid("tip: not a block hash"))?;
            Some(BlockHash(Hash(hash)))
        }
    };
    let signer = match (&status.key, &status.sig) {
        (None, None) => None,
        (Some(key), Some(sig)) => {
            let unb64 = |field: &'static str, text: &str| {
                B64.decode(text).map_err(|source| DecodeError::Base64 {
                    context: "STAT".into(),
                    field,
                    source,
                })
            };
            Some(Signer {
                key: Bytes::from(unb64("key", key)?),
                sig: Bytes::from(unb64("sig", sig)?),
            })
        }
        _ => return Err(invalid("key and sig come together")),
    };
    Ok(Status {
        name: status.name,
        tip,
        height: status.height,
        hash_rate: status.hash_rate,
        mining: status.mining,
        threads: status.threads,
        wallet: status.wallet,
        signer,
    })
}

fn decode_getb_body(body: &[u8]) -> Result<GetBlocks, DecodeError> {
    let wire: GetbWire = parse_json(&"GETB", body)?;
    let locator = wire
        .locator
        .0
        .iter()
        .enumerate()
        .map(|(i, h)| hash_field(h, &format_args!("GETB locator {i}"), "hash", BlockHash))
        .collect::<Result<_, _>>()?;
    if wire.id.len() > MAX_REQUEST_ID {
        return Err(DecodeError::TooLong {
            context: "GETB".into(),
            field: "id",
            max: MAX_REQUEST_ID,
            got: wire.id.len(),
        });
    }
    Ok(GetBlocks {
        locator,
        id: wire.id,
    })
}

/// Where a decoding error was found, e.g. `BLOC block 2`: written out only
/// when there is an error.
type Context<'a> = &'a dyn fmt::Display;

fn parse_json<'a, T: Deserialize<'a>>(context: Context, json: &'a [u8]) -> Result<T, DecodeError> {
    serde_json::from_slice(json).map_err(|source| DecodeError::Json {
        context: context.to_string(),
        source,
    })
}

fn token_from_json(json: &str, context: Context) -> Result<Token, DecodeError> {
    let w: TokenWire = parse_json(context, json.as_bytes())?;
    Ok(Token {
        txn_hash: hash_field(&w.txn_hash, context, "txn_hash", Txid)?,
        owner: b64_field(&w.owner, context, "owner")?,
        value: w.value,
        signature: b64_field(&w.signature, context, "signature")?,
    })
}

fn txn_from_json(json: &str, context: Context) -> Result<Transaction, DecodeError> {
    let w: TxnWire = parse_json(context, json.as_bytes())?;
    let previous_hashes = w
        .previous_hashes
        .0
        .iter()
        .map(|h| hash_field(&h.0, context, "previous_hashes", Txid))
        .collect::<Result<_, _>>()?;
    Ok(Transaction {
        previous_hashes,
        receiver: b64_field(&w.receiver, context, "receiver")?,
        receiver_value: w.receiver_value,
        receiver_signature: b64_field(&w.receiver_signature, context, "receiver_signature")?,
        sender: b64_field(&w.sender, context, "sender")?,
        sender_change: w.sender_change,
        sender_signature: b64_field(&w.sender_signature, context, "sender_signature")?,
    })
}

fn block_from_json(json: &str, context: Context) -> Result<Block, DecodeError> {
    let w: BlockWire<Decoded<Transaction>> = parse_json(context, json.as_bytes())?;
    let h = &w.header;
    let merkle = b64_field(&h.merkle_root, context, "merkle_root")?;
    let header = BlockHeader {
        timestamp: b64_field(&h.timestamp, context, "timestamp")?,
        previous_hash: hash_field(&h.previous_hash, context, "previous_hash", BlockHash)?,
        nonce: b64_field(&h.nonce, context, "nonce")?,
        merkle_root: MerkleRoot::from_slice(&merkle).ok_or_else(|| DecodeError::Length {
            context: context.to_string(),
            field: "merkle_root",
            expected: crate::merkle::LABEL_LEN,
            got: merkle.len(),
        })?,
        this_hash: hash_field(&h.this_hash, context, "this_hash", BlockHash)?,
    };
    let txns = w.txns.0.map_err(|e| e.within(context))?;
    Ok(Block { header, txns })
}

/// The bytes of a base64 field, in an allocation of their size: one whose
/// capacity is larger (base64's estimate, two bytes over for a signature)
/// would take a second allocation to share (`bytes`), held as long as the
/// field is.
fn b64_field(text: &str, context: Context, field: &'static str) -> Result<Bytes, DecodeError> {
    B64.decode(text)
        .map(|mut bytes| {
            bytes.shrink_to_fit();
            Bytes::from(bytes)
        })
        .map_err(|source| DecodeError::Base64 {
            context: context.to_string(),
            field,
            source,
        })
}

/// Text of a base64 SHA-512 digest (88 characters) decoded on the stack.
const HASH_TEXT_ON_STACK: usize = 128;

/// A base64 SHA-512 digest, in the role `role` gives it (`Txid`, ...).
fn hash_field<T>(
    text: &str,
    context: Context,
    field: &'static str,
    role: fn(Hash) -> T,
) -> Result<T, DecodeError> {
    let length = |got| DecodeError::Length {
        context: context.to_string(),
        field,
        expected: crate::hash::HASH_LEN,
        got,
    };
    if text.len() > HASH_TEXT_ON_STACK {
        // Far too long for a digest: decoded whole, to say how long.
        let bytes = b64_field(text, context, field)?;
        return Err(length(bytes.len()));
    }
    let mut buf = [0u8; HASH_TEXT_ON_STACK / 4 * 3];
    match B64.decode_slice(text, &mut buf) {
        Ok(n) => Hash::from_slice(&buf[..n])
            .map(role)
            .ok_or_else(|| length(n)),
        Err(base64::DecodeSliceError::DecodeError(source)) => Err(DecodeError::Base64 {
            context: context.to_string(),
            field,
            source,
        }),
        // The buffer holds what any text of this length decodes to.
        Err(base64::DecodeSliceError::OutputSliceTooSmall) => {
            let bytes = b64_field(text, context, field)?;
            Err(length(bytes.len()))
        }
    }
}

// ---------------------------------------------------------------------------
// Encoding

fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

fn token_to_json(t: &Token) -> String {
    to_python_json(&TokenWire {
        txn_hash: b64(t.txn_hash.as_ref()).into(),
        owner: b64(&t.owner).into(),
        value: t.value,
        signature: b64(&t.signature).into(),
    })
}

fn txn_to_json(t: &Transaction) -> String {
    to_python_json(&TxnWire {
        previous_hashes: Bounded(
            t.previous_hashes
                .iter()
                .map(|h| Text(b64(h.as_ref()).into()))
                .collect(),
        ),
        receiver: b64(&t.receiver).into(),
        receiver_value: t.receiver_value,
        receiver_signature: b64(&t.receiver_signature).into(),
        sender: b64(&t.sender).into(),
        sender_change: t.sender_change,
        sender_signature: b64(&t.sender_signature).into(),
    })
}

fn block_to_json(b: &Block) -> String {
    let h = &b.header;
    to_python_json(&BlockWire {
        header: HeaderWire {
            timestamp: b64(&h.timestamp).into(),
            previous_hash: b64(h.previous_hash.as_ref()).into(),
            nonce: b64(&h.nonce).into(),
            merkle_root: b64(h.merkle_root.as_ref()).into(),
            this_hash: b64(h.this_hash.as_ref()).into(),
        },
        txns: b.txns.iter().map(txn_to_json).collect::<Vec<_>>(),
    })
}

/// Serializes like Python's `json.dumps` with default settings.
fn to_python_json<T: Serialize>(value: &T) -> String {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, PythonFormatter);
    // Our wire shapes hold only strings, integers and arrays: serializing
    // them cannot fail.
    if value.serialize(&mut ser).is_err() {
        unreachable!("wire shapes always serialize");
    }
    // serde_json writes valid UTF-8.
    String::from_utf8(out).unwrap_or_default()
}

/// `", "` between items and `": "` after keys, as Python writes them.
struct PythonFormatter;

fn python_separator<W: ?Sized + std::io::Write>(
    writer: &mut W,
    first: bool,
) -> std::io::Result<()> {
    if first {
        Ok(())
    } else {
        writer.write_all(b", ")
    }
}

impl serde_json::ser::Formatter for PythonFormatter {
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        python_separator(writer, first)
    }

    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        python_separator(writer, first)
    }

    fn begin_object_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
    ) -> std::io::Result<()> {
        writer.write_all(b": ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_error_mentions(payload: &[u8], needle: &str) {
        let err = Message::decode(payload).unwrap_err().to_string();
        assert!(err.contains(needle), "error {err:?} lacks {needle:?}");
    }

    #[test]
    fn rejects_short_and_unknown_payloads() {
        assert_error_mentions(b"TX", "too short");
        assert_error_mentions(b"PING{}", "unknown message tag \"PING\"");
    }

    #[test]
    fn says_what_was_wrong() {
        assert_error_mentions(b"TXN {", "TXN");
        assert_error_mentions(b"TXN [[], 5]", "invalid type");
        assert_error_mentions(b"BLOC[\"{}\"]", "BLOC block 0: missing field `header`");
        let txn = r#"{"previous_hashes": [], "receiver": "!!", "receiver_value": 1, "receiver_signature": "", "sender": "", "sender_change": 0, "sender_signature": ""}"#;
        let payload = format!(
            "TXN {}",
            serde_json::to_string(&(Vec::<String>::new(), txn)).unwrap()
        );
        assert_error_mentions(payload.as_bytes(), "receiver: invalid base64");
        let txn = txn
            .replace("\"!!\"", "\"\"")
            .replace("\"receiver_value\": 1", "\"receiver_value\": 1.5");
        let payload = format!(
            "TXN {}",
            serde_json::to_string(&(Vec::<String>::new(), &txn)).unwrap()
        );
        assert_error_mentions(payload.as_bytes(), "floating point");
        let txn = txn.replace("1.5", "123456789012345678901234567890");
        let payload = format!(
            "TXN {}",
            serde_json::to_string(&(Vec::<String>::new(), &txn)).unwrap()
        );
        assert_error_mentions(payload.as_bytes(), "TXN transaction");
        let txn = txn
            .replace("123456789012345678901234567890", "1")
            .replace("\"previous_hashes\": []", "\"previous_hashes\": [\"AAAA\"]");
        let payload = format!(
            "TXN {}",
            serde_json::to_string(&(Vec::<String>::new(), &txn)).unwrap()
        );
        assert_error_mentions(
            payload.as_bytes(),
            "previous_hashes: expected 64 bytes, got 3",
        );
    }

    fn a_block(txns: usize) -> Block {
        Block {
            header: BlockHeader {
                timestamp: Bytes::from_static(b"1700000000"),
                previous_hash: BlockHash(Hash([1; crate::hash::HASH_LEN])),
                nonce: Bytes::from_static(b"42"),
                merkle_root: MerkleRoot::from_slice(&[3; crate::merkle::LABEL_LEN]).unwrap(),
                this_hash: BlockHash(Hash([4; crate::hash::HASH_LEN])),
            },
            txns: (0..txns)
                .map(|i| Transaction::coinbase(Bytes::from(format!("miner {i}")), 50))
                .collect(),
        }
    }

    /// A JSON text in a string is unescaped as serde_json would, into a
    /// buffer no larger than the string; what serde_json refuses is
    /// refused.
    #[test]
    fn json_texts_are_unescaped_as_serde_json_does_into_their_own_size() {
        let read = |json: &str| serde_json::from_str::<JsonText>(json).map(|t| t.0);
        let texts = [
            String::new(),
            "{\"a\": [\"b\\\\c\", \"\\n\\t/\"]}".to_owned(),
            "é ∑ 𝄞 and \u{1} \u{1f}".to_owned(),
            "\\".repeat(100),
            "x".repeat(10_000),
        ];
        for text in texts {
            let json = serde_json::to_string(&text).unwrap();
            let got = read(&json).unwrap();
            assert_eq!(got, text);
            assert!(got.capacity() <= json.len());
        }
        // Escapes serde_json itself never writes.
        for json in [r#""\u0041\/\b\f\r\u00e9\ud834\udd1e\uFFFF""#, r#""\"\\""#] {
            assert_eq!(
                read(json).unwrap(),
                serde_json::from_str::<String>(json).unwrap()
            );
        }
        // Refused by both: lone or mismatched surrogates, bad escapes,
        // control characters, anything but a string.
        for json in [
            r#""\ud834""#,
            r#""\ud834x""#,
            r#""\ud834\u0041""#,
            r#""\udd1e""#,
            r#""\u+041""#,
            r#""\x""#,
            "\"\u{1}\"",
            "[\"a\"]",
            "5",
            "null",
        ] {
            assert!(read(json).is_err(), "{json}");
            assert!(serde_json::from_str::<String>(json).is_err(), "{json}");
        }
    }

    /// Blocks and their transactions are decoded as they are read
    /// ([`Decoded`]): what comes back, and where an error is said to be,
    /// are what they were when every text was read first.
    #[test]
    fn blocks_decoded_as_they_are_read_say_which_block_and_transaction_failed() {
        let blocks = vec![a_block(3), a_block(0), a_block(2)];
        match Message::decode(&encode_bloc(&blocks)).unwrap() {
            Message::Bloc(back) => assert_eq!(back, blocks),
            other => panic!("decoded as {}", other.kind()),
        }
        let mut bad: serde_json::Value = serde_json::from_str(&block_to_json(&blocks[0])).unwrap();
        bad["txns"][1] = txn_to_json(&blocks[0].txns[1])
            .replace(&b64(b"miner 1"), "!!")
            .into();
        let texts = [block_to_json(&blocks[0]), bad.to_string()];
        let payload = tagged(BLOC_TAG, &serde_json::to_string(&texts).unwrap());
        assert_error_mentions(
            &payload,
            "BLOC block 1: transaction 1: receiver: invalid base64",
        );
        // An error in the JSON around a bad transaction is still found.
        let broken = format!("BLOC{}", &serde_json::to_string(&texts).unwrap()[..40]);
        assert_error_mentions(broken.as_bytes(), "BLOC: EOF");
        // Hashes, decoded on the stack: too short, too long, not base64.
        for (text, needle) in [
            (
                B64.encode([7u8; 150]),
                "previous_hash: expected 64 bytes, got 150",
            ),
            (
                B64.encode([7u8; 66]),
                "previous_hash: expected 64 bytes, got 66",
            ),
            ("#".repeat(88), "previous_hash: invalid base64"),
        ] {
            let mut block: serde_json::Value =
                serde_json::from_str(&block_to_json(&blocks[1])).unwrap();
            block["header"]["previous_hash"] = text.into();
            let payload = tagged(
                BLOC_TAG,
                &serde_json::to_string(&[block.to_string()]).unwrap(),
            );
            assert_error_mentions(&payload, &format!("BLOC block 0: {needle}"));
        }
    }

    #[test]
    fn refuses_enormous_arrays_and_deep_nesting() {
        let many = format!("BLOC[{}\"\"]", "\"\",".repeat(MAX_WIRE_BLOCKS));
        assert_error_mentions(many.as_bytes(), "more than 100000 elements");
        let deep = format!("BLOC{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert_error_mentions(deep.as_bytes(), "BLOC: invalid type: sequence");
        // Unknown keys are skipped without recursion, however deep.
        let block = format!("{{\"x\": {}{}}}", "[".repeat(100_000), "]".repeat(100_000));
        let payload = format!("BLOC{}", serde_json::to_string(&[block]).unwrap());
        assert_error_mentions(payload.as_bytes(), "missing field `header`");
    }

    #[test]
    fn writes_python_separators() {
        let json = to_python_json(&(vec!["a".to_string()], "b"));
        assert_eq!(json, r#"[["a"], "b"]"#);
    }

    #[test]
    fn catch_up_requests_round_trip_and_are_bounded() {
        let request = GetBlocks {
            locator: vec![BlockHash(Hash::of(b"a")), BlockHash(Hash::of(b"b"))],
            id: "4886adee-1".into(),
        };
        let payload = encode_getb(&request);
        assert!(payload.starts_with(b"GETB{\"locator\": [\""));
        match Message::decode(&payload).unwrap() {
            Message::GetBlocks(got) => assert_eq!(got, request),
            other => panic!("decoded as {}", other.kind()),
        }
        let too_many = format!("GETB{{\"locator\": [{}\"\"]}}", "\"\",".repeat(MAX_LOCATOR));
        assert_error_mentions(too_many.as_bytes(), "more than 64 elements");
        assert_error_mentions(b"GETB{\"locator\": [\"AAAA\"]}", "GETB locator 0: hash");
        assert_error_mentions(b"GETB[]", "GETB");
    }

    /// A node signs its hash rate's very bits: they must come out of the
    /// frame as they went in, or an honest status reads as forged (the
    /// demo's listener refused some 1 in 30 this way).
    #[test]
    fn every_hash_rate_reads_back_to_the_bits_that_were_signed() {
        use rand::Rng;
        let mut rng = rand::thread_rng();
        for _ in 0..20_000 {
            let status = Status {
                name: "node1".into(),
                tip: None,
                height: None,
                hash_rate: rng.gen_range(0.0..1e8),
                mining: true,
                threads: 1,
                wallet: None,
                signer: None,
            };
            match Message::decode(&encode_stat(&status)).unwrap() {
                Message::Status(got) => assert_eq!(
                    status_claim(&got),
                    status_claim(&status),
                    "{} read back as {}",
                    status.hash_rate,
                    got.hash_rate
                ),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn a_status_round_trips_and_bad_ones_are_refused_with_a_reason() {
        let status = Status {
            name: "node1".into(),
            tip: Some(BlockHash(Hash([7; crate::hash::HASH_LEN]))),
            height: Some(12),
            hash_rate: 4.0e6,
            mining: true,
            threads: 2,
            wallet: Some("62d8ceef".into()),
            signer: None,
        };
        let payload = encode_stat(&status);
        assert!(payload.starts_with(b"STAT{"));
        match Message::decode(&payload).unwrap() {
            Message::Status(got) => assert_eq!(got, status),
            other => panic!("{other:?}"),
        }
        let long = format!(
            "STAT{{\"name\": \"{}\", \"tip\": null, \"height\": null, \"hash_rate\": 1, \"mining\": false, \"threads\": 1, \"wallet\": null}}",
            "n".repeat(MAX_STATUS_NAME + 1)
        );
        assert_error_mentions(long.as_bytes(), "STAT: name");
        assert_error_mentions(
            b"STAT{\"name\": \"x\", \"tip\": \"abcd\", \"height\": 1, \"hash_rate\": 1, \"mining\": false, \"threads\": 1, \"wallet\": null}",
            "tip: not a block hash",
        );
        assert_error_mentions(
            b"STAT{\"name\": \"x\", \"tip\": null, \"height\": 1, \"hash_rate\": -1, \"mining\": false, \"threads\": 1, \"wallet\": null}",
            "hash_rate",
        );
        let huge = format!("STAT{}", " ".repeat(MAX_STATUS_PAYLOAD + 1));
        assert_error_mentions(huge.as_bytes(), "STAT: payload");
    }
}
