//! The relay's own frames: what `toycoin-relay` understands beyond the
//! original relay session, for naming clients, sending to one client, and
//! the teacher's controls (`toycoin-ctl`). See `docs/control.md`.
//!
//! They all use topic frames starting with `$` ([`RESERVED`]), which the
//! original Python relay simply fans out to nobody (no one subscribes to
//! them): a program that sends them still works on that relay.
//!
//! | topic frame | data frame | what our relay does |
//! |---|---|---|
//! | `$hello` | `{"name":"node1"}` ([`Hello`]) | names the connection |
//! | `$to:NAME` | any payload | sends it only to the clients named NAME on the sender's topic |
//! | `$ctl` | `{"mac":..,"cmd":..}` ([`Request`]) | a teacher's command; answers the sender with a [`Reply`] |
//!
//! The token never travels. A client subscribed to `$ctl` first receives
//! a [`Challenge`], fresh for its connection; a command carries the
//! HMAC-SHA256 under the token of that challenge and the command
//! ([`mac`]); every reply brings the next challenge. A command captured
//! on the wire or in a log is good for nothing: sent again it answers a
//! spent challenge, rewritten its MAC no longer matches.
//!
//! A node switched to a fault live receives, from the relay only, a data
//! frame starting with [`ORDER_PREFIX`] ([`Order`]); the relay refuses
//! such a frame from any client.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Topic frames starting with this are the relay's own, never fanned out.
pub const RESERVED: &str = "$";
/// Names the connection.
pub const HELLO_TOPIC: &str = "$hello";
/// `$to:NAME`: the data frame goes only to the clients named NAME.
pub const TO_PREFIX: &str = "$to:";
/// A teacher's command.
pub const CTL_TOPIC: &str = "$ctl";
/// Data frames starting with this come from the relay alone: an order to
/// one node (a fault to play).
pub const ORDER_PREFIX: &[u8] = b"$ORDER ";
/// The fault modes a node can be ordered to play (`honest` ends a fault).
pub const FAULTS: &[&str] = &["honest", "silent", "stuck", "invalid", "liar"];
/// Longest client name.
pub const MAX_NAME: usize = 32;
/// Largest command frame the relay reads as a command.
pub const MAX_REQUEST: usize = 16 * 1024;

/// What a client calls itself: 1 to [`MAX_NAME`] letters, digits, `-`,
/// `_` or `.`, so that it prints and matches plainly.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(format!("a name has 1 to {MAX_NAME} characters"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(format!(
            "name {name:?} may hold only letters, digits, '-', '_' and '.'"
        ));
    }
    Ok(())
}

/// The data frame after `$hello`: a name and, to own it, the proof of a
/// key ([`encode_signed_hello`]). The relay binds a name to the first key
/// that signs for it: another key, or no key, gets no such name
/// (docs/control.md, "A name belongs to a key").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub name: String,
    /// The key's address (base64 of its PEM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// When it was signed (Unix seconds, the signer's clock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<u64>,
    /// The key's signature (base64) of [`hello_claim`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sig: Option<String>,
}

/// How far a signed hello's time may be from the relay's: laptops' clocks
/// differ; a hello seen once is refused again within twice this.
pub const HELLO_WINDOW_SECS: u64 = 600;

/// What a key signs to own `name`: the name and the time.
pub fn hello_claim(name: &str, at: u64) -> Vec<u8> {
    format!("toycoin-hello\0{name}\0{at}\0").into_bytes()
}

/// A hello naming us `name`, signed with `key` at `at` (Unix seconds).
pub fn encode_signed_hello(name: &str, key: &crate::wallet::Wallet, at: u64) -> Vec<u8> {
    use base64::Engine;
    let sig = key
        .sign(&mut rand::thread_rng(), &hello_claim(name, at))
        .map(|s| base64::engine::general_purpose::STANDARD.encode(s))
        .ok();
    serde_json::to_vec(&Hello {
        name: name.to_owned(),
        key: Some(crate::spv::address_text(key.address())),
        at: Some(at),
        sig,
    })
    .unwrap_or_default()
}

impl Hello {
    /// The hash of the key that signed this hello for its name, checked
    /// at `now` (Unix seconds); `Ok(None)`: unsigned; `Err`: why the
    /// proof fails.
    pub fn signer(&self, now: u64) -> Result<Option<crate::hash::Hash>, String> {
        use base64::Engine;
        let (Some(key), Some(at), Some(sig)) = (&self.key, self.at, &self.sig) else {
            return match (&self.key, &self.sig) {
                (None, None) => Ok(None),
                _ => Err("a hello needs key, at and sig together".into()),
            };
        };
        if now.abs_diff(at) > HELLO_WINDOW_SECS {
            return Err(format!(
                "signed at {at}, {} s from the relay's clock (at most {HELLO_WINDOW_SECS})",
                now.abs_diff(at)
            ));
        }
        let address = crate::spv::address_from_text(key)?;
        let sig = base64::engine::general_purpose::STANDARD
            .decode(sig)
            .map_err(|_| "the signature is not base64".to_string())?;
        crate::wallet::verify(&address, &hello_claim(&self.name, at), &sig)
            .map_err(|_| "the signature does not verify".to_string())?;
        Ok(Some(crate::hash::Hash::of(&address)))
    }
}

/// A teacher's command to the relay.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "lowercase")]
pub enum Command {
    /// Clients, groups, rules and what is held.
    Status,
    /// Cut the network into groups of clients (names or `IP:PORT`
    /// addresses); a client in no group hears and is heard by all.
    Partition { groups: Vec<Vec<String>> },
    /// End the partition.
    Heal,
    /// Hold every message until `step` or `release`.
    Hold,
    /// Deliver the `count` oldest held messages.
    Step { count: usize },
    /// Deliver everything held and stop holding.
    Release,
    /// Delay every message to and from `client` by `ms` (0: none).
    Delay { client: String, ms: u64 },
    /// Lose this share (0 to 1) of the messages to and from `client`.
    Drop { client: String, rate: f64 },
    /// Switch a node to a fault (`honest` ends it).
    Fault { client: String, mode: String },
    /// A replay (`toycoin-replay`): go to this many seconds into the
    /// recording (back: the watchers start again from nothing).
    Seek { secs: f64 },
    /// A replay: play at the recorded pace times this (0: as fast as the
    /// relay takes the frames).
    Speed { speed: f64 },
}

/// A `$ctl` data frame: a command and its proof of the token.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// [`mac`] of the connection's current challenge and the command.
    pub mac: String,
    #[serde(flatten)]
    pub command: Command,
}

/// What the relay sends a `$ctl` subscriber first: the challenge its
/// first command answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    pub challenge: String,
}

/// The environment variable that may hold the teacher's token (for the
/// relay, `toycoin-ctl`, `toycoin-attack` and nodes): unlike a flag, `ps`
/// does not show it to other users.
pub const TOKEN_ENV: &str = "TOYCOIN_CONTROL_TOKEN";

/// A fresh challenge: 128 random bits in hex.
pub fn new_challenge() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

type HmacSha256 = hmac::Hmac<Sha256>;

fn keyed(token: &str, challenge: &str, command: &Command) -> HmacSha256 {
    use hmac::Mac;
    let mut mac = HmacSha256::new_from_slice(token.as_bytes()).expect("HMAC takes any key");
    mac.update(b"toycoin-ctl\0");
    mac.update(challenge.as_bytes());
    mac.update(b"\0");
    mac.update(&serde_json::to_vec(command).unwrap_or_default());
    mac
}

/// The proof that a command comes from whoever holds `token`, for this
/// `challenge` only: HMAC-SHA256 under the token of the challenge and the
/// command's JSON, in hex.
pub fn mac(token: &str, challenge: &str, command: &Command) -> String {
    use hmac::Mac;
    hex::encode(keyed(token, challenge, command).finalize().into_bytes())
}

/// Whether `mac` proves `token` for `challenge` and `command` (compared in
/// constant time).
pub fn check_mac(token: &str, challenge: &str, command: &Command, mac: &str) -> bool {
    use hmac::Mac;
    let Ok(mac) = hex::decode(mac) else {
        return false;
    };
    keyed(token, challenge, command).verify_slice(&mac).is_ok()
}

/// The teacher's token: from `file` if given, else from [`TOKEN_ENV`],
/// else from `default` (the file the relay wrote, for `toycoin-ctl`) if
/// given and readable. `Ok(None)`: none anywhere.
pub fn read_token(
    file: Option<&std::path::Path>,
    default: Option<&std::path::Path>,
) -> Result<Option<String>, String> {
    let from_file = |path: &std::path::Path| {
        std::fs::read_to_string(path)
            .map(|t| t.trim().to_owned())
            .map_err(|e| format!("cannot read the token from {}: {e}", path.display()))
    };
    if let Some(path) = file {
        return from_file(path).map(Some);
    }
    if let Ok(token) = std::env::var(TOKEN_ENV) {
        if !token.trim().is_empty() {
            return Ok(Some(token.trim().to_owned()));
        }
    }
    Ok(default.and_then(|path| from_file(path).ok()))
}

/// The relay's answer to a `$ctl` command, sent to the commander alone.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    pub ok: bool,
    /// One line for people: what was done, or why not.
    pub message: String,
    /// For `status`: the state of the network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<NetworkStatus>,
    /// The challenge the connection's next command answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub challenge: Option<String>,
}

/// What `status` reports.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworkStatus {
    pub clients: Vec<ClientStatus>,
    /// The partition's groups, as given; empty when healed.
    pub groups: Vec<Vec<String>>,
    pub holding: bool,
    /// Messages held now.
    pub held: usize,
    /// Deliveries a partition withheld, a drop rule lost, a delay put off
    /// (since start).
    pub withheld: u64,
    pub lost: u64,
    pub delayed: u64,
    /// Where a replay is in its recording (`None`: a live relay).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay: Option<crate::timeline::Position>,
}

/// One client in `status`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClientStatus {
    /// Its name, or its address when it gave none.
    pub name: String,
    pub addr: String,
    pub topic: String,
    /// The partition group it is in (index into `groups`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<usize>,
    #[serde(default)]
    pub delay_ms: u64,
    #[serde(default)]
    pub drop_rate: f64,
}

/// An order from the relay to one node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// The fault to play from now on, or `honest`.
    pub fault: String,
    /// [`proof`] of the teacher's token: a node obeys only an order that
    /// proves the token it was given.
    pub proof: String,
}

/// Where a relay on `port` keeps the teacher's token for `toycoin-ctl` on
/// the same machine (readable by its owner only).
pub fn token_file(port: u16) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("toycoin-relay-{port}.token"))
}

/// Writes the token to [`token_file`], readable and writable by its owner
/// only.
pub fn write_token(port: u16, token: &str) -> std::io::Result<std::path::PathBuf> {
    let path = token_file(port);
    let _ = std::fs::remove_file(&path);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    std::io::Write::write_all(&mut options.open(&path)?, format!("{token}\n").as_bytes())?;
    Ok(path)
}

/// What proves the teacher's token to a node without telling it: the
/// SHA-256 of the token with a fixed prefix, in hex. Only the relay sends
/// it, only to the node ordered, and the relay refuses any client's frame
/// starting with [`ORDER_PREFIX`], so knowing it lets no one order nodes.
pub fn proof(token: &str) -> String {
    hex::encode(Sha256::digest(format!("toycoin-order:{token}")))
}

/// Encodes an order as the data frame the node receives.
pub fn encode_order(order: &Order) -> Vec<u8> {
    let mut frame = ORDER_PREFIX.to_vec();
    frame.extend(serde_json::to_vec(order).unwrap_or_default());
    frame
}

/// Decodes a data frame as an order: `None` if it is not one.
pub fn decode_order(frame: &[u8]) -> Option<Result<Order, String>> {
    let json = frame.strip_prefix(ORDER_PREFIX)?;
    Some(serde_json::from_slice(json).map_err(|e| format!("unreadable order: {e}")))
}

/// How long [`command`] waits for the relay's reply.
pub const REPLY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Sends one command to the relay at `addr` and waits for its reply.
pub async fn command(
    addr: impl tokio::net::ToSocketAddrs,
    token: &str,
    command: Command,
) -> Result<Reply, String> {
    let exchange = async {
        let mut client = crate::relay::RelayClient::connect(addr, CTL_TOPIC)
            .await
            .map_err(|e| format!("cannot reach the relay: {e}"))?;
        let challenge = match client.recv().await {
            Ok(Some(frame)) => {
                serde_json::from_slice::<Challenge>(&frame)
                    .map_err(|e| {
                        format!("the relay's challenge is unreadable ({e}): is it a toycoin-relay?")
                    })?
                    .challenge
            }
            Ok(None) => return Err("the relay closed the connection".to_string()),
            Err(e) => return Err(format!("no challenge: {e}")),
        };
        let request = serde_json::to_vec(&Request {
            mac: mac(token, &challenge, &command),
            command,
        })
        .map_err(|e| e.to_string())?;
        client
            .publish(CTL_TOPIC, &request)
            .await
            .map_err(|e| format!("cannot send the command: {e}"))?;
        match client.recv().await {
            Ok(Some(frame)) => serde_json::from_slice::<Reply>(&frame).map_err(|e| {
                format!("the relay's reply is unreadable ({e}): is it a toycoin-relay?")
            }),
            Ok(None) => Err("the relay closed the connection without a reply".to_string()),
            Err(e) => Err(format!("no reply: {e}")),
        }
    };
    tokio::time::timeout(REPLY_TIMEOUT, exchange)
        .await
        .map_err(|_| {
            format!(
                "no reply within {} s (the original Python relay takes no commands)",
                REPLY_TIMEOUT.as_secs()
            )
        })?
}

/// Announces our name to the relay, unsigned: the `$hello` frame pair's
/// data (a name no key has claimed; see [`encode_signed_hello`]).
pub fn encode_hello(name: &str) -> Vec<u8> {
    serde_json::to_vec(&Hello {
        name: name.to_owned(),
        key: None,
        at: None,
        sig: None,
    })
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_plain_and_short() {
        assert!(check_name("node1").is_ok());
        assert!(check_name("a.b-c_d").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("no spaces").is_err());
        assert!(check_name(&"x".repeat(MAX_NAME + 1)).is_err());
        assert!(check_name("\u{1b}[31mred").is_err());
    }

    #[test]
    fn a_request_reads_back_and_unknown_commands_are_refused() {
        let req = Request {
            mac: "ab".into(),
            command: Command::Partition {
                groups: vec![vec!["node1".into()], vec!["node2".into()]],
            },
        };
        let json = serde_json::to_string(&req).unwrap();
        assert_eq!(
            json,
            r#"{"mac":"ab","cmd":"partition","groups":[["node1"],["node2"]]}"#
        );
        assert_eq!(serde_json::from_str::<Request>(&json).unwrap(), req);
        assert!(serde_json::from_str::<Request>(r#"{"mac":"ab","cmd":"nuke"}"#).is_err());
    }

    #[test]
    fn a_mac_proves_the_token_for_one_challenge_and_one_command() {
        let delay = |ms| Command::Delay {
            client: "node1".into(),
            ms,
        };
        let challenge = new_challenge();
        let proof = mac("secret", &challenge, &delay(100));
        assert_eq!(proof.len(), 64);
        assert!(check_mac("secret", &challenge, &delay(100), &proof));
        assert!(!check_mac("secreT", &challenge, &delay(100), &proof));
        assert!(!check_mac("secret", &new_challenge(), &delay(100), &proof));
        assert!(!check_mac("secret", &challenge, &delay(900), &proof));
        assert!(!check_mac("secret", &challenge, &delay(100), "not hex"));
        assert_ne!(new_challenge(), challenge);
    }

    #[test]
    fn a_token_comes_from_the_file_given_then_the_environment_then_the_default() {
        let dir = std::env::temp_dir().join(format!("toycoin-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (given, default) = (dir.join("given"), dir.join("default"));
        std::fs::write(&given, "from-file\n").unwrap();
        std::fs::write(&default, "from-default\n").unwrap();
        // The environment is the process's: this test alone sets it.
        assert_eq!(
            read_token(Some(&given), Some(&default)).unwrap().as_deref(),
            Some("from-file")
        );
        assert!(read_token(Some(&dir.join("missing")), None).is_err());
        if std::env::var(TOKEN_ENV).is_err() {
            assert_eq!(
                read_token(None, Some(&default)).unwrap().as_deref(),
                Some("from-default")
            );
            assert_eq!(read_token(None, Some(&dir.join("missing"))).unwrap(), None);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_order_reads_back_and_other_frames_are_not_orders() {
        let order = Order {
            fault: "silent".into(),
            proof: proof("secret"),
        };
        assert_eq!(decode_order(&encode_order(&order)), Some(Ok(order)));
        assert_eq!(decode_order(b"BLOC []"), None);
        assert!(matches!(decode_order(b"$ORDER {"), Some(Err(_))));
        assert_ne!(proof("secret"), proof("secreT"));
    }
}
