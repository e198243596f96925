//! A relay running on the current Tokio runtime, for tests, benchmarks and
//! programs that embed one: [`spawn`] it on an address, read its `addr`,
//! [`LocalRelay::stop`] it.

use std::io;
use std::net::SocketAddr;

use tokio::net::ToSocketAddrs;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::server::{bind, Relay, RelayConfig};

/// A relay task and the means to stop it.
#[derive(Debug)]
pub struct LocalRelay {
    pub relay: Relay,
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<io::Result<()>>,
}

/// A relay on 127.0.0.1, on a port the OS picks, that prints no summary:
/// what tests and benchmarks meet on.
pub async fn spawn_quiet() -> io::Result<LocalRelay> {
    let config = RelayConfig {
        summary_interval: None,
        ..RelayConfig::default()
    };
    spawn("127.0.0.1:0", config).await
}

/// As [`spawn_quiet`], taking the teacher's commands with `token` (from
/// this machine only).
pub async fn spawn_with_teacher(token: &str) -> io::Result<LocalRelay> {
    let config = RelayConfig {
        summary_interval: None,
        teacher: Some(crate::control::Teacher {
            token: token.to_owned(),
            anywhere: false,
        }),
        ..RelayConfig::default()
    };
    spawn("127.0.0.1:0", config).await
}

/// As [`spawn_quiet`], telling whoever asks that it serves `network`, as
/// a teacher's relay does: programs started on it learn the network from
/// it.
pub async fn spawn_serving(network: toycoin_common::network::Network) -> io::Result<LocalRelay> {
    let config = RelayConfig {
        summary_interval: None,
        network: Some(network),
        ..RelayConfig::default()
    };
    spawn("127.0.0.1:0", config).await
}

/// Binds `addr` (port 0: the OS picks) and runs a relay there until
/// [`LocalRelay::stop`].
pub async fn spawn(addr: impl ToSocketAddrs, config: RelayConfig) -> io::Result<LocalRelay> {
    let listener = bind(addr).await?;
    let addr = listener.local_addr()?;
    let relay = Relay::new(config);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn({
        let relay = relay.clone();
        async move {
            relay
                .run(listener, async {
                    let _ = stopped.await;
                })
                .await
        }
    });
    Ok(LocalRelay {
        relay,
        addr,
        stop: Some(stop),
        task,
    })
}

impl LocalRelay {
    /// Shuts the relay down (closing every client) and waits for it.
    pub async fn stop(mut self) -> io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await.map_err(io::Error::other)?
    }
}
