//! What the suites that run whole programs share: the programs built beside
//! this one, and a quiet in-process relay for them to meet on.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::process::{Child, Command};

use toycoin_common::network::Network;
use toycoin_relay::local::LocalRelay;

/// A steady network on a 5 s target whose mint is `mint`.
pub fn network_of(mint: &toycoin_common::wallet::Wallet) -> Network {
    Network::steady(5.0, Some(mint.address().clone()))
}

/// The path of `program` (`toycoin-node`, ...) beside this benchmark, or
/// what to do if it is not there.
pub fn sibling(program: &str) -> Result<PathBuf, String> {
    let path = std::env::current_exe()
        .map_err(|e| e.to_string())?
        .with_file_name(format!("{program}{}", std::env::consts::EXE_SUFFIX));
    if path.exists() {
        Ok(path)
    } else {
        Err(format!(
            "{} not found: build the workspace first (cargo build --release --workspace)",
            path.display()
        ))
    }
}

/// A relay in this process on a port the OS picks, printing nothing and
/// serving `network` (the programs started on it learn it there, as a
/// student's do from the teacher's relay).
pub async fn quiet_relay(network: Network) -> Result<LocalRelay, String> {
    toycoin_relay::local::spawn_serving(network)
        .await
        .map_err(|e| e.to_string())
}

/// Starts `program` on the relay at 127.0.0.1:`port` with `args`; what it
/// prints on stdout and stderr goes where they say; it is killed when
/// dropped.
pub fn start_on(
    program: &Path,
    port: u16,
    args: impl IntoIterator<Item = impl AsRef<OsStr>>,
    stdout: Stdio,
    stderr: Stdio,
) -> Result<Child, String> {
    Command::new(program)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(args)
        .stdout(stdout)
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", program.display()))
}
