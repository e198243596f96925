//! A class network as data: everything two programs on one network must
//! agree on, fixed by the teacher before any student connects.
//!
//! Modelled on rust-bitcoin's `network/params.rs`: plain fields, one
//! constructor per kind of network. A [`Network`] names its rules (the
//! profile), its target interval and, in `steady`, the mint's public key;
//! from these follow its id (a SHA-512 of their canonical encoding), its
//! genesis (what block 0 names as `previous_hash`) and its join code (the
//! id's first 50 bits, ten characters the teacher projects).
//!
//! * `toycoin` is the original's network exactly: the original's GENESIS,
//!   no mint, so the Python programs share it.
//! * Every `steady` network has a genesis of its own, a hash of its id: a
//!   steady block is never valid on a toycoin chain, nor on another class's
//!   network, and its mint is known from the first block on, so no student
//!   connected early can become it.
//!
//! The teacher's relay serves its network to whoever asks (`$network`,
//! answered to the asker alone: see [`fetch`]); a program may instead read
//! the network's file, or check the relay's answer against the join code.

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::address;
use crate::hash::{BlockHash, Hash, GENESIS};
use crate::profile::Profile;
use crate::transaction::Address;

/// The relay's topic for asking it which network it serves.
pub const NETWORK_TOPIC: &str = "$network";
/// What the canonical encoding starts with: the version of the rules.
const DOMAIN: &[u8] = b"toycoin-network/3";
/// Characters of a join code (5 bits each): grinding a network whose id
/// starts with a given code costs 2^50 hashes, some nine years of one
/// core at four million SHA-512s a second, far more than a class lasts.
pub const JOIN_CODE_CHARS: usize = 10;
/// Crockford's base 32: no I, L, O or U, so a code read off a projector
/// is not misread.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// How long [`fetch`] waits for the relay's answer once connected.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest answer [`fetch`] reads.
pub const MAX_NETWORK_JSON: usize = 64 * 1024;

/// Longest target block interval the steady profile takes (a day).
pub const MAX_TARGET_SECS: f64 = 86_400.0;
/// Default target block interval of the steady profile.
pub const DEFAULT_TARGET_SECS: f64 = 5.0;
/// Which rules a network follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum ProfileKind {
    /// Difficulty retargeted by timestamps, most work wins (the default).
    #[default]
    Steady,
    /// The original toycoin's rules.
    Toycoin,
}

impl ProfileKind {
    pub const ALL: [ProfileKind; 2] = [ProfileKind::Steady, ProfileKind::Toycoin];

    pub fn name(self) -> &'static str {
        match self {
            ProfileKind::Steady => "steady",
            ProfileKind::Toycoin => "toycoin",
        }
    }
}

impl fmt::Display for ProfileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ProfileKind {
    type Err = String;

    fn from_str(s: &str) -> Result<ProfileKind, String> {
        ProfileKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| format!("unknown profile {s:?} (expected steady or toycoin)"))
    }
}

/// The class network.
#[derive(Clone, PartialEq, Eq)]
pub struct Network {
    /// Which rules.
    pub kind: ProfileKind,
    /// Target block interval, milliseconds (steady; 0 in toycoin).
    pub target_ms: i64,
    /// The mint's address (steady): the one key whose grants create coins.
    pub mint: Option<Address>,
}

impl fmt::Debug for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Network({}, {})", self.describe(), self.join_code())
    }
}

impl Network {
    /// The original's network.
    pub fn toycoin() -> Network {
        Network {
            kind: ProfileKind::Toycoin,
            target_ms: 0,
            mint: None,
        }
    }

    /// A steady network with its target (seconds, kept between 1 ms and a
    /// day) and its mint (`None`: a network where nobody can grant coins,
    /// for tests of the other rules).
    pub fn steady(target_secs: f64, mint: Option<Address>) -> Network {
        let secs = if target_secs.is_nan() {
            DEFAULT_TARGET_SECS
        } else {
            target_secs.clamp(0.001, MAX_TARGET_SECS)
        };
        Network {
            kind: ProfileKind::Steady,
            target_ms: (secs * 1000.0) as i64,
            mint,
        }
    }

    /// The canonical encoding the id hashes: every field with its length.
    fn encode(&self) -> Vec<u8> {
        let mut out = DOMAIN.to_vec();
        let mut field = |bytes: &[u8]| {
            out.extend((bytes.len() as u32).to_be_bytes());
            out.extend(bytes);
        };
        field(self.kind.name().as_bytes());
        field(&self.target_ms.to_be_bytes());
        field(self.mint.as_deref().unwrap_or_default());
        out
    }

    /// The network's id: SHA-512 of its canonical encoding.
    pub fn id(&self) -> Hash {
        Hash::of(&self.encode())
    }

    /// What block 0 names as its `previous_hash`: the original's GENESIS
    /// in toycoin; in steady a hash of the network's id, so a block of one
    /// steady network is valid on no other.
    pub fn genesis(&self) -> BlockHash {
        match self.kind {
            ProfileKind::Toycoin => *GENESIS,
            ProfileKind::Steady => BlockHash(Hash::of_parts(&[
                b"toycoin-genesis/3:",
                self.id().as_bytes(),
            ])),
        }
    }

    /// The network a teacher fixes for a class: the original's, or a
    /// steady one whose mint is the key in `mint_key` (created on first
    /// use, mode 0600, so the same network lecture after lecture).
    pub fn for_class(
        kind: ProfileKind,
        target_secs: f64,
        mint_key: &Path,
    ) -> Result<Network, String> {
        match kind {
            ProfileKind::Toycoin => Ok(Network::toycoin()),
            ProfileKind::Steady => {
                let (mint, _) = crate::wallet::Wallet::load_or_create(mint_key)
                    .map_err(|e| format!("the mint's key {}: {e}", mint_key.display()))?;
                Ok(Network::steady(target_secs, Some(mint.address().clone())))
            }
        }
    }

    /// The rules and parameters, ready for validation.
    pub fn profile(&self) -> Profile {
        Profile {
            kind: self.kind,
            rules: crate::profile::Rules::of(self.kind),
            target_ms: match self.kind {
                ProfileKind::Toycoin => (DEFAULT_TARGET_SECS * 1000.0) as i64,
                ProfileKind::Steady => self.target_ms,
            },
            genesis: self.genesis(),
            mint: self.mint.as_deref().map(Hash::of),
        }
    }

    /// Ten characters of the id the teacher projects, `ABCDE-FGHJK`.
    pub fn join_code(&self) -> String {
        let id = self.id();
        let bits = u64::from_be_bytes(id.as_bytes()[..8].try_into().unwrap_or_default());
        let code: String = (0..JOIN_CODE_CHARS)
            .map(|i| ALPHABET[((bits >> (59 - 5 * i)) & 31) as usize] as char)
            .collect();
        format!("{}-{}", &code[..5], &code[5..])
    }

    /// Whether `code` (as a person typed it: any case, dashes or spaces,
    /// O for 0, I or L for 1) is this network's join code.
    pub fn matches_code(&self, code: &str) -> Result<(), String> {
        let typed = normalize_code(code)?;
        let ours = self.join_code();
        if typed == normalize_code(&ours)? {
            Ok(())
        } else {
            Err(format!(
                "the relay's network has join code {ours}, not {code}: wrong relay, or not the teacher's"
            ))
        }
    }

    /// One line for people: `steady, target 5 s, mint 2f9365a9, id 3f2a1b9c4d5e`.
    pub fn describe(&self) -> String {
        let profile = self.profile().describe();
        match &self.mint {
            Some(mint) => format!(
                "{profile}, mint {}, id {}",
                crate::wallet::fingerprint(mint),
                self.id().short()
            ),
            None if self.kind == ProfileKind::Steady => {
                format!("{profile}, no mint, id {}", self.id().short())
            }
            None => profile,
        }
    }

    /// The start-up line every program prints.
    pub fn banner(&self) -> String {
        format!(
            "Network {} (join code {})",
            self.describe(),
            self.join_code()
        )
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(&NetworkFile::from(self)).unwrap_or_default()
    }

    /// Reads a network as [`Network::to_json`] writes it; a steady mint
    /// must be a canonical address.
    pub fn from_json(json: &[u8]) -> Result<Network, String> {
        let file: NetworkFile =
            serde_json::from_slice(json).map_err(|e| format!("unreadable network: {e}"))?;
        Network::from_file(file)
    }

    /// A network from its file's fields, checked.
    fn from_file(file: NetworkFile) -> Result<Network, String> {
        let kind: ProfileKind = file.profile.parse()?;
        match kind {
            ProfileKind::Toycoin => Ok(Network::toycoin()),
            ProfileKind::Steady => {
                let mint = file.mint.map(String::into_bytes);
                if let Some(mint) = &mint {
                    address::check_canonical(mint).map_err(|e| format!("the mint: {e}"))?;
                }
                let ms = file
                    .target_ms
                    .ok_or("a steady network names its target_ms")?;
                if !(1..=(MAX_TARGET_SECS * 1000.0) as i64).contains(&ms) {
                    return Err(format!("target_ms {ms} out of range"));
                }
                Ok(Network {
                    kind,
                    target_ms: ms,
                    mint: mint.map(Address::from),
                })
            }
        }
    }

    pub fn load(path: &Path) -> Result<Network, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Network::from_json(&bytes).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Writes the network's file (readable by all: it holds no secret).
    pub fn save(&self, path: &Path) -> Result<(), String> {
        std::fs::write(path, self.to_json() + "\n").map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// A profile is made from a network: the constructors for the other
/// rules' tests, a steady network with no mint and the original's.
impl Default for Profile {
    fn default() -> Profile {
        Profile::steady(DEFAULT_TARGET_SECS)
    }
}

impl Profile {
    /// The original's network.
    pub fn toycoin() -> Profile {
        Network::toycoin().profile()
    }

    /// A steady network with a target interval in seconds, kept between
    /// 1 ms and [`MAX_TARGET_SECS`] (a NaN gives the default), and no mint
    /// (nobody grants coins): for the other rules. A class's network names
    /// its mint: [`Network::steady`].
    pub fn steady(target_secs: f64) -> Profile {
        Network::steady(target_secs, None).profile()
    }
}

fn normalize_code(code: &str) -> Result<String, String> {
    let mut out = String::new();
    for c in code.chars() {
        let c = match c.to_ascii_uppercase() {
            '-' | ' ' => continue,
            'O' => '0',
            'I' | 'L' => '1',
            c if ALPHABET.contains(&(c as u8)) && c.is_ascii() => c,
            c => return Err(format!("{c:?} is not in a join code")),
        };
        out.push(c);
    }
    if out.len() != JOIN_CODE_CHARS {
        return Err(format!(
            "a join code has {JOIN_CODE_CHARS} characters, like ABCDE-FGHJK"
        ));
    }
    Ok(out)
}

/// A network's file and the relay's answer.
#[derive(Serialize, Deserialize)]
struct NetworkFile {
    profile: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    target_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mint: Option<String>,
}

impl From<&Network> for NetworkFile {
    fn from(n: &Network) -> NetworkFile {
        NetworkFile {
            profile: n.kind.name().to_owned(),
            target_ms: (n.kind == ProfileKind::Steady).then_some(n.target_ms),
            mint: n
                .mint
                .as_ref()
                .map(|m| String::from_utf8_lossy(m).into_owned()),
        }
    }
}

/// The relay's answer to `$network`: the network, or why it has none.
#[derive(Serialize, Deserialize)]
struct Answer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    network: Option<NetworkFile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// The relay is a replay (`toycoin-replay`) of a recorded class: its
    /// watchers follow its positions ([`crate::timeline`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    replay: bool,
}

/// The relay's answer to `$network` for the network it serves (`None`: it
/// serves none) and whether it is a replay.
pub fn encode_answer(network: Option<&Network>, replay: bool) -> Vec<u8> {
    let answer = match network {
        Some(n) => Answer {
            network: Some(NetworkFile::from(n)),
            error: None,
            replay,
        },
        None => Answer {
            network: None,
            error: Some(
                "this relay serves no network (start it with --network FILE or --mint-key FILE)"
                    .into(),
            ),
            replay,
        },
    };
    serde_json::to_vec(&answer).unwrap_or_default()
}

/// Why [`fetch`] got no network.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The relay is not there (yet): worth trying again.
    #[error("cannot reach the relay: {0}")]
    Unreachable(String),
    /// The relay answered with no network, or not at all.
    #[error("{0}")]
    Refused(String),
}

/// Asks the relay at `addr` which network it serves. The answer comes on
/// the relay's own topic to this connection alone, so no classmate can
/// forge it.
pub async fn fetch(addr: &str) -> Result<Network, FetchError> {
    let answer = ask(addr).await?;
    match (answer.network, answer.error) {
        (Some(file), _) => Network::from_file(file)
            .map_err(|e| FetchError::Refused(format!("the relay's network: {e}"))),
        (None, error) => Err(FetchError::Refused(
            error.unwrap_or_else(|| "the relay serves no network".into()),
        )),
    }
}

/// Whether the relay at `addr` says, on this connection alone, that it is
/// a replay (`toycoin-replay`); `false` when it says otherwise or nothing
/// (the original Python relay), trying again every second while it is
/// not there.
pub async fn is_replay(addr: &str) -> bool {
    loop {
        match ask(addr).await {
            Ok(answer) => return answer.replay,
            Err(FetchError::Refused(_)) => return false,
            Err(FetchError::Unreachable(_)) => tokio::time::sleep(Duration::from_secs(1)).await,
        }
    }
}

/// The relay's answer to `$network`.
async fn ask(addr: &str) -> Result<Answer, FetchError> {
    let mut client = crate::relay::RelayClient::connect(addr, NETWORK_TOPIC)
        .await
        .map_err(|e| FetchError::Unreachable(e.to_string()))?;
    let exchange = async {
        client
            .publish(NETWORK_TOPIC, b"{}")
            .await
            .map_err(|e| FetchError::Unreachable(e.to_string()))?;
        match client.recv().await {
            Ok(Some(frame)) if frame.len() <= MAX_NETWORK_JSON => {
                serde_json::from_slice::<Answer>(&frame).map_err(|e| {
                    FetchError::Refused(format!("the relay's answer is unreadable: {e}"))
                })
            }
            Ok(Some(_)) => Err(FetchError::Refused(
                "the relay's answer is too large".into(),
            )),
            Ok(None) => Err(FetchError::Unreachable(
                "the relay closed the connection".into(),
            )),
            Err(e) => Err(FetchError::Unreachable(e.to_string())),
        }
    };
    tokio::time::timeout(FETCH_TIMEOUT, exchange)
        .await
        .map_err(|_| {
            FetchError::Refused(format!(
                "the relay said nothing of its network in {} s (the original Python relay serves none: give --network FILE, or --profile toycoin)",
                FETCH_TIMEOUT.as_secs()
            ))
        })?
}

/// [`fetch`], trying again every second while the relay is not there yet
/// (programs may start before it), saying so once.
pub async fn fetch_waiting(addr: &str) -> Result<Network, String> {
    let mut said = false;
    loop {
        match fetch(addr).await {
            Ok(network) => return Ok(network),
            Err(FetchError::Refused(why)) => return Err(why),
            Err(FetchError::Unreachable(why)) => {
                if !said {
                    tracing::info!("Waiting for the relay at {addr} to learn the network ({why})");
                    said = true;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mint() -> Address {
        crate::wallet::Wallet::random()
            .expect("key")
            .address()
            .clone()
    }

    #[test]
    fn a_network_reads_back_from_its_file_with_the_same_id() {
        let n = Network::steady(5.0, Some(mint()));
        let back = Network::from_json(n.to_json().as_bytes()).expect("reads");
        assert_eq!(back, n);
        assert_eq!(back.id(), n.id());
        let t = Network::from_json(Network::toycoin().to_json().as_bytes()).expect("reads");
        assert_eq!(t, Network::toycoin());
    }

    #[test]
    fn every_field_changes_the_id_and_the_genesis() {
        let m = mint();
        let a = Network::steady(5.0, Some(m.clone()));
        let b = Network::steady(4.0, Some(m));
        let c = Network::steady(5.0, Some(mint()));
        let d = Network::steady(5.0, None);
        let ids = [a.id(), b.id(), c.id(), d.id(), Network::toycoin().id()];
        for i in 0..ids.len() {
            for j in i + 1..ids.len() {
                assert_ne!(ids[i], ids[j], "{i} and {j}");
            }
        }
        assert_ne!(a.genesis(), *GENESIS);
        assert_ne!(a.genesis(), c.genesis());
        assert_eq!(Network::toycoin().genesis(), *GENESIS);
        assert_eq!(Network::toycoin().profile(), Profile::toycoin());
    }

    #[test]
    fn a_join_code_is_ten_characters_typed_any_way() {
        let n = Network::steady(5.0, Some(mint()));
        let code = n.join_code();
        assert_eq!(code.len(), JOIN_CODE_CHARS + 1);
        assert!(n.matches_code(&code).is_ok());
        assert!(n
            .matches_code(&code.to_lowercase().replace('-', " "))
            .is_ok());
        let other = Network::steady(5.0, Some(mint()));
        assert!(other.matches_code(&code).is_err());
        assert!(n.matches_code("ABC").is_err());
        assert!(n.matches_code("ABCDE-FGHU!").is_err());
    }

    #[test]
    fn a_network_file_with_a_non_canonical_mint_is_refused() {
        let json = r#"{"profile":"steady","target_ms":5000,"mint":"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"}"#;
        assert!(Network::from_json(json.as_bytes()).is_err());
        assert!(Network::from_json(br#"{"profile":"steady","target_ms":0}"#).is_err());
        assert!(Network::from_json(br#"{"profile":"bitcoin"}"#).is_err());
    }
}
