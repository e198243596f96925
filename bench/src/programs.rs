//! What the suites that run whole programs share: the programs built beside
//! this one, and a quiet in-process relay for them to meet on.

use std::path::PathBuf;

use toycoin_relay::local::LocalRelay;
use toycoin_relay::RelayConfig;

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

/// A relay in this process on a port the OS picks, printing nothing.
pub async fn quiet_relay() -> Result<LocalRelay, String> {
    let config = RelayConfig {
        summary_interval: None,
        ..RelayConfig::default()
    };
    toycoin_relay::local::spawn("127.0.0.1:0", config)
        .await
        .map_err(|e| e.to_string())
}
