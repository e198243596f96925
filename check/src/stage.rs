//! The checker's own network: a network it makes (under steady with a
//! mint whose key it holds), written to files the program is given
//! (`{network}`, `{mint_key}`), a directory for the program's own files
//! (`{dir}`: its keys, say), and a relay on loopback, a port the OS
//! picks, serving it. Removed, files and all, when the check is done.

use std::path::PathBuf;

use toycoin_common::network::{Network, ProfileKind};
use toycoin_common::relay::DEFAULT_TOPIC;
use toycoin_common::wallet::Wallet;

use crate::peer::Peer;

/// How long the checker's own client may take to subscribe to its own
/// relay on loopback.
const OWN_SUBSCRIPTION: std::time::Duration = std::time::Duration::from_secs(5);

/// A network and its relay, running.
pub struct Stage {
    pub network: Network,
    pub relay: toycoin_relay::Relay,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    pub port: u16,
    pub network_file: PathBuf,
    /// The mint's key (steady), mode 0600: a client that funds wallets as
    /// the teacher's oracle does needs it.
    pub mint_file: PathBuf,
    dir: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    serving: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Stage({})", self.addr)
    }
}

impl Stage {
    /// Makes the network (steady: `target_secs` between blocks) and
    /// starts its relay.
    pub async fn start(profile: ProfileKind, target_secs: f64) -> Result<Stage, String> {
        let dir = std::env::temp_dir().join(format!(
            "toycoin-check-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mint = Wallet::random().map_err(|e| e.to_string())?;
        let network = match profile {
            ProfileKind::Steady => Network::steady(target_secs, Some(mint.address().clone())),
            ProfileKind::Toycoin => Network::toycoin(),
        };
        let network_file = dir.join("network.json");
        network.save(&network_file)?;
        let mint_file = dir.join("mint.pem");
        write_private(&mint_file, &mint.to_pem().map_err(|e| e.to_string())?)?;
        let listener = toycoin_relay::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| format!("cannot listen on loopback: {e}"))?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let relay = toycoin_relay::Relay::new(toycoin_relay::RelayConfig {
            network: Some(network.clone()),
            summary_interval: None,
            ..toycoin_relay::RelayConfig::default()
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = {
            let relay = relay.clone();
            tokio::spawn(async move {
                let _ = relay
                    .run(listener, async {
                        let _ = stopped.await;
                    })
                    .await;
            })
        };
        Ok(Stage {
            network,
            relay,
            addr: format!("127.0.0.1:{port}"),
            port,
            network_file,
            mint_file,
            dir,
            stop: Some(stop),
            serving: Some(serving),
        })
    }

    /// `command` with the stage filled in.
    pub fn fill(&self, command: &[String]) -> Vec<String> {
        command
            .iter()
            .map(|a| {
                a.replace("{host}", "127.0.0.1")
                    .replace("{port}", &self.port.to_string())
                    .replace("{network}", &self.network_file.display().to_string())
                    .replace("{mint_key}", &self.mint_file.display().to_string())
                    .replace("{dir}", &self.dir.display().to_string())
            })
            .collect()
    }

    /// The checker's own client, subscribed: once this returns, every
    /// later subscription to the class's topic is the program's
    /// ([`Stage::joined`] grows).
    pub async fn connect_peer(&self) -> Result<Peer, String> {
        let peer = Peer::connect(&self.addr, self.network.profile()).await?;
        let deadline = tokio::time::Instant::now() + OWN_SUBSCRIPTION;
        while self.joined() == 0 {
            if tokio::time::Instant::now() >= deadline {
                return Err(format!(
                    "the checker's own client did not subscribe within {OWN_SUBSCRIPTION:?}"
                ));
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        Ok(peer)
    }

    /// Subscriptions the class's topic has taken, the checker's own and
    /// those that have left included. A program started when this was `n`
    /// has subscribed once it is more than `n`, even if the program has
    /// ended since: asking who is subscribed now would miss a program that
    /// subscribed and ended between two looks.
    pub fn joined(&self) -> u64 {
        joined(&self.relay)
    }

    /// Stops the relay and removes the files.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(serving) = self.serving.take() {
            let _ = serving.await;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// [`Stage::joined`], for what holds only the stage's relay.
pub fn joined(relay: &toycoin_relay::Relay) -> u64 {
    relay.joined(DEFAULT_TOPIC.as_bytes())
}

/// Writes `text` to `path`, readable by its owner only.
fn write_private(path: &std::path::Path, text: &str) -> Result<(), String> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    std::io::Write::write_all(&mut file, text.as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))
}
