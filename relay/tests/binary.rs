//! The `toycoin-relay` binary: starts, relays, prints what the original
//! prints, and exits 0 with a goodbye on Ctrl-C (SIGINT).

// In tests a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use toycoin_common::relay::RelayClient;

const WAIT: Duration = Duration::from_secs(10);

/// The child process, stopped when dropped (a test that did not stop it,
/// or failed first): interrupted as Ctrl-C would, so that it removes its
/// token file, and killed if it is not gone within [`WAIT`].
struct Relay {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let pid = self.child.id().to_string();
            let _ = Command::new("kill").args(["-INT", &pid]).status();
            let deadline = std::time::Instant::now() + WAIT;
            while matches!(self.child.try_wait(), Ok(None)) && std::time::Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Relay {
    fn start() -> Relay {
        let mut child = Command::new(env!("CARGO_BIN_EXE_toycoin-relay"))
            .args(["--port", "0", "--summary", "0", "--mint-key"])
            .arg(std::env::temp_dir().join("toycoin-relay-binary-test-mint.pem"))
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Relay { child, lines }
    }

    /// Sends `signal` (`-INT`: Ctrl-C; `-HUP`: its terminal closed) and
    /// checks that it says goodbye and exits 0.
    fn stop_by(mut self, signal: &str) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args([signal, &pid])
            .status()
            .unwrap()
            .success());
        self.line_with("Bye!");
        assert_eq!(self.child.wait().unwrap().code(), Some(0));
    }

    /// The next line containing `needle`.
    fn line_with(&self, needle: &str) -> String {
        loop {
            let line = self
                .lines
                .recv_timeout(WAIT)
                .unwrap_or_else(|_| panic!("no line with {needle:?}"));
            if line.contains(needle) {
                return line;
            }
        }
    }
}

#[tokio::test]
async fn relays_prints_and_says_goodbye_on_ctrl_c() {
    let relay = Relay::start();
    let line = relay.line_with("Relay listening on ");
    let addr = line.split_whitespace().nth(3).unwrap().to_owned();

    let mut sub = RelayClient::connect(&addr, "/topic/main").await.unwrap();
    relay.line_with("subscribed to /topic/main");
    sub.publish("/topic/main", b"TXN [[], \"...\"]")
        .await
        .unwrap();
    let got = tokio::time::timeout(WAIT, sub.recv())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(&got[..], b"TXN [[], \"...\"]");
    let sending = relay.line_with("Sending to /topic/main: ");
    assert!(sending.contains("TXN [[]"), "{sending}");

    relay.stop_by("-INT");
    // Its clients were closed.
    let end = tokio::time::timeout(WAIT, sub.recv()).await.unwrap();
    assert!(end.map_or(true, |f| f.is_none()));
}

#[tokio::test]
async fn a_client_written_like_the_originals_works_through_it() {
    let python_ok = Command::new("python3")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !python_ok {
        assert!(std::env::var_os("CI").is_none(), "CI needs python3");
        eprintln!("skipped: python3 is not installed");
        return;
    }
    let relay = Relay::start();
    let line = relay.line_with("Relay listening on ");
    let addr = line.split_whitespace().nth(3).unwrap().to_owned();
    let (host, port) = addr.rsplit_once(':').unwrap();
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    for fixture in ["live/0000-TXN.bin", "live/0076-BLOC.bin"] {
        let status = Command::new("python3")
            .arg(format!("{root}/tests/scripts/relay_peer.py"))
            .args([host, port, &format!("{root}/fixtures/toycoin/{fixture}")])
            .status()
            .unwrap();
        assert!(
            status.success(),
            "{fixture} did not come back through the relay"
        );
    }
}

#[tokio::test]
async fn toycoin_ctl_finds_the_token_the_relay_wrote_and_a_wrong_one_is_refused() {
    let relay = Relay::start();
    let line = relay.line_with("Teacher's controls from this machine only");
    let addr = line
        .split_whitespace()
        .skip_while(|w| *w != "--relay")
        .nth(1)
        .unwrap()
        .to_owned();
    let ctl_with = |env_token: Option<&str>, extra: &[&str]| {
        let mut ctl = Command::new(env!("CARGO_BIN_EXE_toycoin-ctl"));
        ctl.args(["--relay", &addr]).args(extra);
        ctl.env_remove(toycoin_common::control::TOKEN_ENV);
        if let Some(token) = env_token {
            ctl.env(toycoin_common::control::TOKEN_ENV, token);
        }
        let out = ctl.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let ctl = |extra: &[&str]| ctl_with(None, extra);
    let (code, out) = ctl(&["hold"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.starts_with("holding"), "{out}");
    relay.line_with("Teacher (127.0.0.1:");
    let (code, out) = ctl(&["status"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("holding 0 messages"), "{out}");
    assert!(out.contains("client "), "a table: {out}");
    let (code, out) = ctl_with(Some("guess"), &["release"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.starts_with("refused: wrong token"), "{out}");
    relay.line_with("command refused: wrong token");
    // Its terminal closed (a tmux session killed): it ends as after
    // Ctrl-C, and its token file goes with it.
    let token = line
        .split("(the token is in ")
        .nth(1)
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap()
        .to_owned();
    assert!(std::path::Path::new(&token).exists(), "{token}");
    relay.stop_by("-HUP");
    assert!(
        !std::path::Path::new(&token).exists(),
        "{token} left behind"
    );
}
