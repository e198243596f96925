//! Running the project's binaries from tests: start one with arguments,
//! wait for a line of its output (with a timeout), interrupt it as Ctrl-C
//! would, and make sure it is gone when the test ends (`kill_on_drop`).

use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// The path of one of the workspace's binaries (`toycoin-relay`, ...).
/// The first call in a test process builds them all, so a test never runs
/// a program older than the source, as it would when only this crate's
/// tests are run after a change elsewhere. With `--tests` the build
/// resolves features as `cargo test --workspace` does (dev-dependencies
/// included), so after it the programs only need linking: without it a
/// cold `cargo test` compiled the libraries a second time (38 s of 3 min
/// 49 s on 2 cores).
pub fn binary(name: &str) -> PathBuf {
    // target/<profile>/deps/<test> -> target/<profile>
    let dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent()?.parent().map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("target/debug"));
    let path = dir.join(name);
    static BUILD: Once = Once::new();
    BUILD.call_once(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = std::process::Command::new(cargo)
            .args(["build", "--workspace", "--exclude", "toycoin-bench"])
            .args(["--bins", "--tests"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "cargo build --workspace --bins --tests failed"
        );
    });
    assert!(path.exists(), "{} was not built", path.display());
    path
}

/// A running program and its output, line by line.
#[derive(Debug)]
pub struct Program {
    pub name: String,
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    all: Arc<Mutex<Vec<String>>>,
    /// The tasks reading stdout and stderr: done when both pipes are closed.
    readers: Vec<tokio::task::JoinHandle<()>>,
    /// Its working directory, a fresh one removed when it is dropped: what
    /// it writes there (a node's or the oracle's key file) goes with it.
    dir: PathBuf,
    /// Dropped while running (a failed assertion), it gets Ctrl-C and
    /// time to stop what it started, before the kill.
    gentle: bool,
}

/// How long a program dropped while running may take to stop what it
/// started (a demo stops its programs in at most 5 s, the relay last).
const GENTLE_STOP: Duration = Duration::from_secs(15);

impl Drop for Program {
    fn drop(&mut self) {
        if self.gentle && matches!(self.child.try_wait(), Ok(None)) {
            self.interrupt();
            let deadline = std::time::Instant::now() + GENTLE_STOP;
            while matches!(self.child.try_wait(), Ok(None)) && std::time::Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A new, empty directory for one program to run in.
fn scratch_dir(name: &str) -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "toycoin-test-{}-{}-{name}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

impl Program {
    /// Starts binary `name` with `args` in a directory of its own; stdout
    /// and stderr are both read.
    pub fn start(name: &str, args: &[&str]) -> Program {
        let dir = scratch_dir(name);
        let mut child = Command::new(binary(name))
            .args(args)
            .current_dir(&dir)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let (tx, lines) = mpsc::unbounded_channel();
        let all = Arc::new(Mutex::new(Vec::new()));
        let stdout = child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>);
        let stderr = child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>);
        let mut readers = Vec::new();
        for stream in [stdout, stderr].into_iter().flatten() {
            let (tx, all) = (tx.clone(), all.clone());
            readers.push(tokio::spawn(async move {
                let mut reader = BufReader::new(stream).lines();
                while let Ok(Some(line)) = reader.next_line().await {
                    if let Ok(mut all) = all.lock() {
                        all.push(line.clone());
                    }
                    let _ = tx.send(line);
                }
            }));
        }
        Program {
            name: name.to_owned(),
            child,
            lines,
            all,
            readers,
            dir,
            gentle: false,
        }
    }

    /// Dropped while still running (a test that failed halfway), it is
    /// interrupted and given time to stop the programs it started itself
    /// (the demo's relay, nodes, ...): a kill would leave them running.
    pub fn stop_gently_on_drop(mut self) -> Program {
        self.gentle = true;
        self
    }

    /// Waits for the next line matching `pred`; panics after `timeout` or
    /// if the program's output ends first.
    pub async fn wait_line(
        &mut self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(line)) if pred(&line) => return line,
                Ok(Some(_)) => {}
                Ok(None) => panic!(
                    "{}: output ended before {what}:\n{}",
                    self.name,
                    self.output()
                ),
                Err(_) => panic!(
                    "{}: no {what} within {timeout:?}:\n{}",
                    self.name,
                    self.output()
                ),
            }
        }
    }

    /// Everything the program has printed so far.
    pub fn output(&self) -> String {
        self.all.lock().map(|a| a.join("\n")).unwrap_or_default()
    }

    /// Sends SIGINT, as Ctrl-C in its terminal would.
    pub fn interrupt(&self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-INT", &pid.to_string()])
                .status();
        }
    }

    /// Kills the program at once (SIGKILL): no chance to flush or clean
    /// up, as when a laptop's lid closes on it.
    pub fn kill(&mut self) {
        let _ = self.child.start_kill();
    }

    /// Waits for the program to exit, however long (cancel-safe: use it in
    /// `select!` or under a timeout).
    /// Its last lines are in [`Program::output`] once this returns.
    pub async fn exited(&mut self) -> ExitStatus {
        let status = match self.child.wait().await {
            Ok(status) => status,
            Err(e) => panic!("{}: wait failed: {e}", self.name),
        };
        self.drain().await;
        status
    }

    /// Waits until everything the program wrote has been read: both pipes
    /// closed (or a grandchild still holds one open for a few seconds).
    async fn drain(&mut self) {
        let until = tokio::time::Instant::now() + Duration::from_secs(5);
        while let Some(reader) = self.readers.last_mut() {
            if tokio::time::timeout_at(until, reader).await.is_err() {
                return;
            }
            self.readers.pop();
        }
    }

    /// Waits for the program to exit; panics after `timeout`. Its last
    /// lines are in [`Program::output`] once this returns.
    pub async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        match tokio::time::timeout(timeout, self.exited()).await {
            Ok(status) => status,
            Err(_) => panic!(
                "{} did not exit within {timeout:?}:\n{}",
                self.name,
                self.output()
            ),
        }
    }

    /// Interrupts the program and waits for it to exit.
    pub async fn stop(&mut self, timeout: Duration) -> ExitStatus {
        self.interrupt();
        self.wait_exit(timeout).await
    }
}

/// The relay binary on 127.0.0.1, on a port the OS picks, quiet, with
/// `network` flags (`--mint-key FILE`, `--network FILE`): the program and
/// the address it listens on.
pub async fn relay(network: &[&str]) -> (Program, String) {
    let mut args = vec!["--host", "127.0.0.1", "--port", "0", "--quiet"];
    args.extend_from_slice(network);
    let mut relay = Program::start("toycoin-relay", &args);
    let line = relay
        .wait_line("the listening line", WAIT, |l| {
            l.starts_with("Relay listening on ")
        })
        .await;
    let addr = line
        .split_whitespace()
        .nth(3)
        .unwrap_or_default()
        .to_owned();
    (relay, addr)
}

/// How long the tests wait for anything.
pub const WAIT: Duration = Duration::from_secs(60);
