//! The demo as a class sees it: in tmux, in a 120x40 terminal, every pane
//! titled with its program's name and no line wider than its pane (a
//! wrapped line would cut a hash or a rate in two on the projector).
//!
//! Needs `tmux` and `script` (util-linux, for a terminal of that size);
//! without them the test says "skipped". It runs on a tmux server of its
//! own (`TMUX_TMPDIR`), so a demo the user is running is left alone.

// In tests a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;
use toycoin_tests::program::binary;

const WAIT: Duration = Duration::from_secs(120);
const SESSION: &str = "toycoin-demo";

fn installed(program: &str, arg: &str) -> bool {
    std::process::Command::new(program)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The test's own tmux server, stopped (with everything in it) on drop.
struct TmuxServer {
    dir: PathBuf,
}

impl TmuxServer {
    fn new() -> TmuxServer {
        let dir = std::env::temp_dir().join(format!("toycoin-tmux-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TmuxServer { dir }
    }

    fn command(&self, args: &[&str]) -> std::process::Command {
        let mut c = std::process::Command::new("tmux");
        c.args(args)
            .env("TMUX_TMPDIR", &self.dir)
            .env_remove("TMUX");
        c
    }

    fn run(&self, args: &[&str]) -> Option<String> {
        let out = self.command(args).stderr(Stdio::null()).output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for TmuxServer {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[derive(Debug)]
struct Pane {
    id: String,
    title: String,
    width: usize,
}

fn panes(tmux: &TmuxServer) -> Vec<Pane> {
    let Some(out) = tmux.run(&[
        "list-panes",
        "-t",
        SESSION,
        "-F",
        "#{pane_id}\t#{pane_title}\t#{pane_width}",
    ]) else {
        return Vec::new();
    };
    out.lines()
        .filter_map(|l| {
            let mut f = l.split('\t');
            Some(Pane {
                id: f.next()?.to_owned(),
                title: f.next()?.to_owned(),
                width: f.next()?.parse().ok()?,
            })
        })
        .collect()
}

/// Everything the pane showed, its history included (`-S -`), with
/// wrapped lines joined (`-J`): a line longer than the pane comes back as
/// one line.
fn capture(tmux: &TmuxServer, pane: &Pane) -> String {
    tmux.run(&["capture-pane", "-p", "-J", "-S", "-", "-t", &pane.id])
        .unwrap_or_default()
}

fn start_demo(tmux: &TmuxServer, keys: &Path) -> tokio::process::Child {
    let demo = binary("toycoin-demo");
    let line = format!(
        // Nodes at a limited rate leave the processor to the tests beside
        // this one; the lines are the same.
        "stty cols 120 rows 40; exec '{}' --no-build --port 0 --keys '{}' --max-hash-rates 500k",
        demo.display(),
        keys.display()
    );
    Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .env("TMUX_TMPDIR", &tmux.dir)
        .env_remove("TMUX")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_tmux_at_120x40_every_pane_has_its_title_and_no_line_is_wider_than_it() {
    if !installed("tmux", "-V") || !installed("script", "--version") {
        println!("skipped: needs tmux and script (util-linux)");
        return;
    }
    let tmux = TmuxServer::new();
    let keys = tmux.dir.join("keys");
    let mut demo = start_demo(&tmux, &keys);
    let titles = ["listener", "relay", "node1", "node2", "oracle"];
    // What each pane shows once the network is running.
    let shown = |title: &str| match title {
        "listener" => "Valid: True",
        "relay" => "Relay listening",
        "oracle" => "Sending from",
        _ => "Mining block",
    };
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let now = panes(&tmux);
        let mut seen: Vec<&str> = now.iter().map(|p| p.title.as_str()).collect();
        seen.sort_unstable();
        let mut want = titles.to_vec();
        want.sort_unstable();
        let all_running = seen == want
            && now
                .iter()
                .all(|p| capture(&tmux, p).contains(shown(&p.title)));
        if all_running {
            break;
        }
        let last = format!("{now:?}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "the demo's panes did not all show their programs running within {WAIT:?}: {last}"
        );
        if let Ok(Some(status)) = demo.try_wait() {
            panic!("the demo exited ({status}) before its panes ran: {last}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Let blocks and transfers through until the oracle sees one of its
    // transfers in a block, then look at every line.
    loop {
        let now = panes(&tmux);
        let oracle = now.iter().find(|p| p.title == "oracle");
        if oracle.is_some_and(|p| capture(&tmux, p).contains("Confirmed:")) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no transfer confirmed within {WAIT:?}: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let now = panes(&tmux);
    let total: usize = now.iter().map(|p| p.width).max().unwrap_or(0);
    assert!(total < 120, "panes side by side in 120 columns: {now:?}");
    for pane in &now {
        let text = capture(&tmux, pane);
        assert!(
            text.lines().any(|l| !l.trim().is_empty()),
            "{} shows nothing",
            pane.title
        );
        for line in text.lines() {
            let width = line.trim_end().chars().count();
            assert!(
                width <= pane.width,
                "a line {width} columns wide in the {} pane ({} wide): {line}",
                pane.title,
                pane.width
            );
        }
    }
    let _ = demo.kill().await;
    drop(tmux);
}
