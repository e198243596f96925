//! What the suites that run whole programs share: the programs built beside
//! this one, and a quiet in-process relay for them to meet on.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::process::{Child, Command};

use toycoin_relay::local::LocalRelay;

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
    toycoin_relay::local::spawn_quiet()
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
