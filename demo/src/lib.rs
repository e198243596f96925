//! `toycoin-demo`: build the programs and start a whole network: a relay, a
//! listener, nodes and an oracle. In tmux (when it is installed and this
//! runs in a terminal) each program gets a pane; otherwise they all run here
//! with each line prefixed by the program's name in its colour. Ctrl-C (or
//! closing / detaching the tmux session) stops every process started.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use toycoin_common::cli::{count, hash_rate, seconds, Consensus};
use toycoin_common::network::Network;
use toycoin_common::pbft::Membership;
use toycoin_common::profile::DEFAULT_TARGET_SECS;
use toycoin_common::wallet::{create_private_dir, Wallet};
use toycoin_node::Fault;

mod lesson;
mod lessons;

/// Start a complete toycoin demo network.
#[derive(Debug, Parser)]
#[command(name = "toycoin-demo", version)]
pub struct Args {
    /// Number of nodes: miners, or with --consensus pbft the replicas.
    #[arg(long, default_value_t = 2, value_parser = count(1, 16))]
    nodes: usize,
    /// Seconds each node sleeps after a proof of work, comma-separated
    /// (the last value repeats). The original's demo: one fast, one slow.
    #[arg(long, default_value = "0,5", value_delimiter = ',')]
    delays: Vec<f64>,
    /// Mining threads per node, comma-separated (the last value repeats).
    #[arg(long, default_value = "1", value_delimiter = ',', value_parser = count(1, 1024))]
    threads: Vec<usize>,
    /// Most hashes a second per node, comma-separated (the last value
    /// repeats): `500k`, `2M`, or `full` for as fast as its threads go.
    /// Gives each node its share of the hash power (`1M,3M`: a quarter
    /// and three quarters).
    #[arg(long, default_value = "full", value_delimiter = ',', value_parser = rate_or_full)]
    max_hash_rates: Vec<RateLimit>,
    /// Network rules: steady (default) or toycoin (the original's).
    #[arg(long, default_value = "steady")]
    profile: String,
    /// Relay port (0: any free port).
    #[arg(long, default_value_t = 25000)]
    port: u16,
    /// Address the relay listens on (0.0.0.0 lets students' laptops join).
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Run everything in this terminal even when tmux is available.
    #[arg(long)]
    no_tmux: bool,
    /// Where the listener serves the live web view for the projector (on
    /// by default: port 8080 when free, else one the OS picks, on the
    /// relay's host).
    #[arg(long, value_name = "ADDR", conflicts_with = "no_web")]
    web: Option<std::net::SocketAddr>,
    /// No web view.
    #[arg(long)]
    no_web: bool,
    /// Where the relay records the class, for toycoin-replay (default:
    /// `class.journal` beside the keys, the last class replaced).
    #[arg(long, value_name = "FILE", conflicts_with = "no_record")]
    record: Option<PathBuf>,
    /// Do not record the class.
    #[arg(long)]
    no_record: bool,
    /// Make a node faulty for the Byzantine lab: NODE=MODE, e.g.
    /// node2=invalid or node1=silent (see toycoin-node --fault);
    /// repeatable.
    #[arg(long, value_name = "NODE=MODE", value_parser = parse_fault)]
    fault: Vec<(usize, Fault)>,
    /// Stage an attack once the network runs (see toycoin-attack): it gets
    /// a pane of its own and ends with a verdict.
    #[arg(long, value_enum)]
    scenario: Option<toycoin_attack::Scenario>,
    /// How the nodes agree: pow (proof of work) or pbft (the nodes are n =
    /// 3f+1 replicas that vote; the demo writes their replicas file).
    #[arg(long, value_enum, default_value_t = Consensus::Pow)]
    consensus: Consensus,
    /// Do not run `cargo build` first.
    #[arg(long)]
    no_build: bool,
    /// Run a lesson: the network driven step by step, each step saying
    /// what to watch and waiting for the event that makes its point
    /// (`--lesson list` names them).
    #[arg(long, value_name = "NAME")]
    lesson: Option<String>,
    /// With --lesson: go on to the next step at once instead of waiting
    /// for Enter.
    #[arg(long, requires = "lesson")]
    auto: bool,
    /// Seconds between blocks the network aims for (steady).
    #[arg(long, default_value_t = DEFAULT_TARGET_SECS, value_parser = seconds(0.2, 3600.0))]
    target: f64,
    /// Where the nodes' wallets, the oracle's and the mint's keys are kept
    /// (created on first use; the same keys, the same fingerprints, run
    /// after run).
    #[arg(long, value_name = "DIR", default_value_os_t = std::env::temp_dir().join("toycoin-demo-keys"))]
    keys: PathBuf,
}

/// The programs the demo starts.
const PROGRAMS: [&str; 5] = [
    "toycoin-relay",
    "toycoin-listener",
    "toycoin-node",
    "toycoin-oracle",
    "toycoin-attack",
];

/// A program's file name on this platform.
fn exe_name(program: &str) -> String {
    format!("{program}{}", std::env::consts::EXE_SUFFIX)
}

/// Where our own programs are: next to this one.
fn bin_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Builds every program with the profile this one was built with, when
/// this one runs from a Cargo `target` directory (an installed demo uses
/// the programs installed beside it as they are).
fn build() -> bool {
    if !bin_dir().components().any(|c| c.as_os_str() == "target") {
        return true;
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let release = bin_dir().ends_with("release");
    let mut cmd = std::process::Command::new(cargo);
    cmd.args(["build", "--workspace", "--bins"]);
    if release {
        cmd.arg("--release");
    }
    if let Some(manifest) = option_env!("CARGO_MANIFEST_DIR") {
        cmd.current_dir(manifest);
    }
    eprintln!("Building the toycoin programs...");
    cmd.status().is_ok_and(|s| s.success())
}

#[derive(Debug)]
struct Spec {
    label: String,
    program: &'static str,
    args: Vec<String>,
}

/// `node2=invalid` as (2, Fault::Invalid): the modes are the node's own
/// (`toycoin-node --fault`).
fn parse_fault(s: &str) -> Result<(usize, Fault), String> {
    let (node, mode) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: expected NODE=MODE, e.g. node2=invalid"))?;
    let n: usize = node
        .strip_prefix("node")
        .and_then(|n| n.parse().ok())
        .filter(|&n| n >= 1)
        .ok_or_else(|| format!("{node:?}: expected node1, node2, ..."))?;
    let fault = Fault::from_str(mode, false).map_err(|_| {
        let names: Vec<String> = Fault::value_variants()
            .iter()
            .filter_map(|f| Some(f.to_possible_value()?.get_name().to_owned()))
            .collect();
        format!("{mode:?}: the faults are {}", names.join(", "))
    })?;
    Ok((n, fault))
}

/// A node's `--max-hash-rate`, or none (`full`).
#[derive(Clone, Copy, Debug, PartialEq)]
struct RateLimit(Option<f64>);

fn rate_or_full(text: &str) -> Result<RateLimit, String> {
    if text.trim() == "full" {
        Ok(RateLimit(None))
    } else {
        hash_rate(text).map(|r| RateLimit(Some(r)))
    }
}

fn at<T: Copy>(list: &[T], i: usize, default: T) -> T {
    list.get(i).or(list.last()).copied().unwrap_or(default)
}

/// Where the web view will be, if any: `--web`, else port 8080 on the
/// relay's host when it is free, else a port the OS picks.
fn web_addr(args: &Args) -> Option<std::net::SocketAddr> {
    if args.no_web {
        return None;
    }
    // A port given is used as it is (0: one the OS picks, found here so
    // that the address can be printed).
    let (host, ports): (std::net::IpAddr, &[u16]) = match args.web {
        Some(addr) if addr.port() != 0 => return Some(addr),
        Some(addr) => (addr.ip(), &[0]),
        None if args.host == "0.0.0.0" => ([0, 0, 0, 0].into(), &[8080, 0]),
        None => ([127, 0, 0, 1].into(), &[8080, 0]),
    };
    ports.iter().find_map(|&port| {
        let probe = std::net::TcpListener::bind((host, port)).ok()?;
        probe.local_addr().ok()
    })
}

/// The line that tells how to bend the network (the Byzantine lab).
fn ctl_line(relay: std::net::SocketAddr) -> String {
    format!(
        "Teacher's controls: toycoin-ctl --relay 127.0.0.1:{} status (partition node1 node2, heal, hold, step, release, fault node2 liar, ...)",
        relay.port()
    )
}

/// The line that tells where the web view is.
fn web_line(addr: std::net::SocketAddr) -> String {
    let shown = if addr.ip().is_unspecified() {
        format!(
            "127.0.0.1:{} (and this machine's address, for the class)",
            addr.port()
        )
    } else {
        addr.to_string()
    };
    format!("Web view: http://{shown}/ (open it on the projector)")
}

/// The line that tells students where their wallet page is.
fn wallets_line(addr: std::net::SocketAddr) -> String {
    let url = toycoin_listener::web::wallets::student_url(addr);
    if addr.ip().is_loopback() {
        format!("Students' wallets: {url} (this machine only; --host 0.0.0.0 for the class)")
    } else {
        format!("Students' wallets: {url} (its QR code is on the web view)")
    }
}

/// The programs to start around a relay on `port`, which takes the
/// teacher's commands when `controls` (the nodes obey its fault orders,
/// reading its token from the file it wrote).
fn specs(
    args: &Args,
    port: u16,
    colour: bool,
    web: Option<std::net::SocketAddr>,
    controls: bool,
) -> Vec<Spec> {
    let token_file = controls.then(|| {
        toycoin_common::control::token_file(port)
            .display()
            .to_string()
    });
    let token_file = token_file.as_deref();
    let connect = |extra: &[String]| {
        let mut a = vec![
            "--host".to_owned(),
            if args.host == "0.0.0.0" {
                "127.0.0.1".to_owned()
            } else {
                args.host.clone()
            },
            "--port".to_owned(),
            port.to_string(),
        ];
        a.extend_from_slice(extra);
        a
    };
    let profile = vec![
        "--profile".to_owned(),
        args.profile.clone(),
        "--network".to_owned(),
        network_file(args).display().to_string(),
    ];
    let mut web = web
        .map(|addr| vec!["--web".to_owned(), addr.to_string()])
        .unwrap_or_default();
    if !web.is_empty() && args.lesson.is_some() {
        // The lesson panel, and its Next button.
        web.extend([
            "--lesson-dir".to_owned(),
            lesson::dir(args).display().to_string(),
        ]);
    }
    // pBFT: every program is told the replicas (the listener to check
    // their signatures).
    let replicas = match args.consensus {
        Consensus::Pow => Vec::new(),
        Consensus::Pbft => vec![
            "--consensus".to_owned(),
            "pbft".to_owned(),
            "--replicas".to_owned(),
            replicas_file(args),
        ],
    };
    let mut out = vec![Spec {
        label: "listener".into(),
        program: "toycoin-listener",
        args: connect(
            &[
                profile.clone(),
                replicas.get(2..).unwrap_or_default().to_vec(),
                vec![
                    "--color".into(),
                    if colour { "always" } else { "auto" }.into(),
                ],
                web,
            ]
            .concat(),
        ),
    }];
    for i in 0..args.nodes {
        let mut extra = [profile.clone(), replicas.clone()].concat();
        extra.extend([
            "--delay".to_owned(),
            at(&args.delays, i, 0.0).to_string(),
            "--threads".to_owned(),
            at(&args.threads, i, 1).to_string(),
            "--name".to_owned(),
            format!("node{}", i + 1),
            "--wallet".to_owned(),
            key_file(args, &format!("node{}", i + 1)),
        ]);
        if let RateLimit(Some(rate)) = at(&args.max_hash_rates, i, RateLimit(None)) {
            extra.extend(["--max-hash-rate".to_owned(), rate.to_string()]);
        }
        let fault = args.fault.iter().find(|(n, _)| *n == i + 1);
        if let Some(value) = fault.and_then(|(_, f)| f.to_possible_value()) {
            extra.extend(["--fault".to_owned(), value.get_name().to_owned()]);
        }
        if let Some(token_file) = token_file {
            // The file's name, not the token: `ps` shows command lines to
            // every user of the machine.
            extra.extend(["--control-token-file".to_owned(), token_file.to_owned()]);
        }
        out.push(Spec {
            label: format!("node{}", i + 1),
            program: "toycoin-node",
            args: connect(&extra),
        });
    }
    let mut oracle = [profile.clone(), replicas.clone()].concat();
    oracle.extend(["--mint-key".to_owned(), key_file(args, "mint")]);
    oracle.extend(["--wallet-keys".to_owned(), args.keys.display().to_string()]);
    oracle.extend(["--name".to_owned(), "oracle".to_owned()]);
    // A payment every 0.6 to 2 targets (3 to 10 s at the default 5 s;
    // the original's target is always that).
    let target = if args.profile == "steady" {
        args.target
    } else {
        DEFAULT_TARGET_SECS
    };
    oracle.extend([
        "--min-interval".to_owned(),
        format!("{}", 0.6 * target),
        "--max-interval".to_owned(),
        format!("{}", 2.0 * target),
    ]);
    if args.profile == "steady" {
        // The class's faucet: students' wallets ask it for coins.
        oracle.extend(["--faucet".to_owned(), "50".to_owned()]);
    }
    out.push(Spec {
        label: "oracle".into(),
        program: "toycoin-oracle",
        args: connect(&oracle),
    });
    if let Some(value) = args.scenario.and_then(|s| s.to_possible_value()) {
        let mut attack = vec![value.get_name().to_owned()];
        attack.extend(profile.iter().cloned());
        if let Some(token_file) = token_file {
            attack.extend(["--token-file".to_owned(), token_file.to_owned()]);
        }
        out.push(Spec {
            label: "attack".into(),
            program: "toycoin-attack",
            args: connect(&attack),
        });
    }
    out
}

/// The replicas file the demo writes for `--consensus pbft`.
fn replicas_file(args: &Args) -> String {
    args.keys
        .join(format!("replicas-{}.txt", args.nodes))
        .display()
        .to_string()
}

/// With `--consensus pbft`: each node's key (made once, kept in the key
/// directory) and the replicas file naming them, node1 first.
fn write_replicas(args: &Args) -> Result<(), String> {
    let mut members = Vec::new();
    for i in 0..args.nodes {
        let name = format!("node{}", i + 1);
        let path = PathBuf::from(key_file(args, &name));
        let (wallet, _) = Wallet::load_or_create(&path).map_err(|e| e.to_string())?;
        members.push((name, wallet.address().clone()));
    }
    let members = Membership::new(members)?;
    std::fs::write(replicas_file(args), members.to_text())
        .map_err(|e| format!("cannot write {}: {e}", replicas_file(args)))?;
    println!(
        "pBFT: {} replicas (f = {}: {} faulty tolerated), replicas file {}",
        members.n(),
        members.f(),
        members.f(),
        replicas_file(args)
    );
    Ok(())
}

/// The key file of `who` in the demo's key directory.
fn key_file(args: &Args, who: &str) -> String {
    args.keys.join(format!("{who}.pem")).display().to_string()
}

/// The class network's file, beside the keys.
fn network_file(args: &Args) -> PathBuf {
    args.keys.join("network.json")
}

/// Fixes the class network before anything starts, naming the mint's key
/// (created on first use, so the same network lecture after lecture), and
/// writes it where the relay and every program read it: no student
/// connected early can become the mint, whatever the start order.
fn write_network(args: &Args) -> Result<Network, String> {
    let mint = PathBuf::from(key_file(args, "mint"));
    let network = Network::for_class(args.profile.parse()?, args.target, &mint)?;
    network.save(&network_file(args))?;
    Ok(network)
}

/// The relay's flags: where to listen, its ready file, the network.
fn relay_args(args: &Args, ready_file: &Path) -> Vec<String> {
    let mut relay = vec![
        "--host".to_owned(),
        args.host.clone(),
        "--port".to_owned(),
        args.port.to_string(),
        "--quiet".to_owned(),
        "--ready-file".to_owned(),
        ready_file.display().to_string(),
        "--network".to_owned(),
        network_file(args).display().to_string(),
    ];
    if let Some(journal) = journal_file(args) {
        // A fresh journal for this class (the last one is replaced).
        let _ = std::fs::remove_file(&journal);
        relay.extend([
            "--record".to_owned(),
            journal.display().to_string(),
            "--record-max".to_owned(),
            "256MiB".to_owned(),
        ]);
    }
    relay
}

/// Where the relay records the class, unless `--no-record`: beside the
/// keys.
fn journal_file(args: &Args) -> Option<PathBuf> {
    (!args.no_record).then(|| {
        args.record
            .clone()
            .unwrap_or_else(|| args.keys.join("class.journal"))
    })
}

/// The line that tells where the class is recorded and how to replay it.
fn record_line(args: &Args) -> Option<String> {
    journal_file(args).map(|journal| {
        format!(
            "Recording the class into {} (afterwards: toycoin-replay {} --network {})",
            journal.display(),
            journal.display(),
            network_file(args).display()
        )
    })
}

const COLOURS: [&str; 6] = ["36", "33", "32", "35", "34", "31"];

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn command_line(program: &str, args: &[String]) -> String {
    let mut parts = vec![shell_quote(&bin_dir().join(program).to_string_lossy())];
    parts.extend(args.iter().map(|a| shell_quote(a)));
    parts.join(" ")
}

/// Columns and rows of the terminal this runs in (`stty size`).
fn terminal_size() -> Option<(u16, u16)> {
    let out = std::process::Command::new("stty")
        .arg("size")
        .stdin(Stdio::inherit())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let mut it = text.split_whitespace().map(|n| n.parse::<u16>().ok());
    let (rows, cols) = (it.next()??, it.next()??);
    (rows > 0 && cols > 0).then_some((cols, rows))
}

fn tmux_available() -> bool {
    std::process::Command::new("tmux")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// One tmux session, a pane per program; everything ends with the session,
/// and the session ends when this program does (detach, closed terminal,
/// SIGTERM).
async fn run_in_tmux(args: &Args, shutdown: impl std::future::Future<Output = ()>) -> i32 {
    let session = "toycoin-demo";
    let tmux = |a: &[&str]| {
        std::process::Command::new("tmux")
            .args(a)
            .status()
            .is_ok_and(|s| s.success())
    };
    let _ = std::process::Command::new("tmux")
        .args(["kill-session", "-t", session])
        .stderr(Stdio::null())
        .status();
    // Say why at once if the port is taken (in a pane the reason would
    // vanish with the pane).
    if let Err(e) = std::net::TcpListener::bind((args.host.as_str(), args.port)) {
        eprintln!(
            "toycoin-demo: cannot listen on {}:{}: {e} (is another demo running? try --port 0)",
            args.host, args.port
        );
        return 1;
    }
    let ready_file =
        std::env::temp_dir().join(format!("toycoin-demo-{}-relay.json", std::process::id()));
    let _ = std::fs::remove_file(&ready_file);
    // The relay's pane shows its summary line, not every message.
    let relay = command_line("toycoin-relay", &relay_args(args, &ready_file));
    // Sized to this terminal (and resized to whichever attaches).
    let (cols, rows) = terminal_size().unwrap_or((120, 40));
    let (cols, rows) = (cols.to_string(), rows.to_string());
    // The panes are laid out first, each holding a placeholder (`cat`,
    // which prints nothing), and the programs start in their final panes:
    // a line printed before a pane shrank would be wider than it.
    let pane_id = |args: &[&str]| {
        std::process::Command::new("tmux")
            .args(args)
            .args(["-P", "-F", "#{pane_id}", "cat"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let Some(relay_pane) = pane_id(&[
        "new-session",
        "-d",
        "-s",
        session,
        "-n",
        "toycoin",
        "-x",
        &cols,
        "-y",
        &rows,
    ]) else {
        eprintln!("toycoin-demo: tmux would not start; try --no-tmux");
        return 1;
    };
    for (option, value) in [
        ("remain-on-exit", "off"),
        ("mouse", "on"),
        ("window-size", "latest"),
        ("pane-border-status", "top"),
        ("pane-border-format", " #{pane_title} "),
    ] {
        tmux(&["set-option", "-t", session, option, value]);
    }
    let programs = specs(args, 0, false, None, false).len();
    let mut panes = Vec::new();
    for _ in 0..programs {
        let Some(pane) = pane_id(&["split-window", "-t", session]) else {
            eprintln!("toycoin-demo: tmux would not split its window; try --no-tmux");
            kill_session(session);
            return 1;
        };
        tmux(&["select-layout", "-t", session, "tiled"]);
        panes.push(pane);
    }
    // The listener (the first of the specs) tells the story: it gets the
    // left part; the relay (top right, a few rows for its summary line),
    // the nodes and the oracle share the right.
    tmux(&["swap-pane", "-s", &panes[0], "-t", &relay_pane]);
    tmux(&["set-option", "-t", session, "main-pane-width", "55%"]);
    tmux(&["select-layout", "-t", session, "main-vertical"]);
    tmux(&["resize-pane", "-t", &relay_pane, "-y", "5"]);
    // The relay first; the others once it listens, on the port it reports.
    tmux(&["respawn-pane", "-k", "-t", &relay_pane, &relay]);
    tmux(&["select-pane", "-t", &relay_pane, "-T", "relay"]);
    let alive = || tmux(&["has-session", "-t", session]);
    let ready = wait_ready(&ready_file, Duration::from_secs(30), alive).await;
    let Some(ready) = ready else {
        kill_session(session);
        eprintln!(
            "toycoin-demo: the relay did not start on {}:{}",
            args.host, args.port
        );
        return 1;
    };
    let web = web_addr(args);
    let specs = specs(args, ready.addr.port(), false, web, ready.token.is_some());
    for (spec, pane) in specs.iter().zip(&panes) {
        let mut cmd = command_line(spec.program, &spec.args);
        if spec.program == "toycoin-attack" {
            // An attack ends with its verdict: the pane stays to show it.
            cmd.push_str("; exec cat");
        }
        tmux(&["respawn-pane", "-k", "-t", pane, &cmd]);
        tmux(&["select-pane", "-t", pane, "-T", &spec.label]);
    }
    tmux(&["select-pane", "-t", &panes[0]]);
    if let Some(addr) = web {
        println!("{}", web_line(addr));
        println!("{}", wallets_line(addr));
    }
    println!("{}", ctl_line(ready.addr));
    if let Some(line) = record_line(args) {
        println!("{line}");
    }
    if std::env::var_os("TMUX").is_some() {
        // Already inside tmux: attaching would nest; switch to it instead.
        println!("Switched to tmux session '{session}': kill it (`tmux kill-session -t {session}`) to stop everything.");
        tmux(&["switch-client", "-t", session]);
        return 0;
    }
    println!("Opened tmux session '{session}': detach (Ctrl-b d) or close it to stop everything.");
    match Command::new("tmux")
        .args(["attach-session", "-t", session])
        .spawn()
    {
        Ok(mut client) => {
            #[cfg(unix)]
            let mut hangup =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
            #[cfg(unix)]
            let hung_up = async {
                match hangup.as_mut() {
                    Some(h) => {
                        h.recv().await;
                    }
                    None => std::future::pending().await,
                }
            };
            #[cfg(not(unix))]
            let hung_up = std::future::pending::<()>();
            tokio::select! {
                _ = client.wait() => {}
                _ = shutdown => {}
                _ = hung_up => {}
            }
        }
        Err(e) => eprintln!("toycoin-demo: cannot attach to tmux: {e}"),
    }
    // However the user left, nothing stays behind.
    kill_session(session);
    0
}

fn kill_session(session: &str) {
    let _ = std::process::Command::new("tmux")
        .args(["kill-session", "-t", session])
        .stderr(Stdio::null())
        .status();
}

/// Starts one of our programs, found beside this one, its output to
/// `stdout` and `stderr`.
fn spawn(program: &str, args: &[String], stdout: Stdio, stderr: Stdio) -> std::io::Result<Child> {
    Command::new(bin_dir().join(exe_name(program)))
        .args(args)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
}

/// Starts one of our programs, its output read here.
fn start(program: &str, args: &[String]) -> std::io::Result<Child> {
    spawn(program, args, Stdio::piped(), Stdio::piped())
}

/// Waits a few seconds for an interrupted program to exit, then kills it;
/// false when it had to be killed.
async fn wait_or_kill(child: &mut Child) -> bool {
    if tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .is_ok()
    {
        return true;
    }
    let _ = child.kill().await;
    false
}

/// `label | ` in the program's colour (when colours are on).
fn prefix(label: &str, colour: &str, colour_on: bool) -> String {
    if colour_on {
        format!("\x1b[{colour}m{label:>8}\x1b[0m | ")
    } else {
        format!("{label:>8} | ")
    }
}

/// Sends each line of `lines`, prefixed, to the printer.
fn pump<R: AsyncBufRead + Unpin + Send + 'static>(
    mut lines: Lines<R>,
    prefix: String,
    out: &mpsc::UnboundedSender<String>,
) {
    let out = out.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            if out.send(format!("{prefix}{line}")).is_err() {
                return;
            }
        }
    });
}

/// Pumps a child's stdout and stderr, each line prefixed.
fn forward(child: &mut Child, prefix: &str, out: &mpsc::UnboundedSender<String>) {
    if let Some(stdout) = child.stdout.take() {
        pump(BufReader::new(stdout).lines(), prefix.to_owned(), out);
    }
    if let Some(stderr) = child.stderr.take() {
        pump(BufReader::new(stderr).lines(), prefix.to_owned(), out);
    }
}

fn interrupt(child: &Child) {
    if let Some(pid) = child.id() {
        let _ = std::process::Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status();
    }
}

/// Waits for the relay's ready file; `None` if `alive` says the relay is
/// gone first, or `timeout` passes.
async fn wait_ready(
    path: &Path,
    timeout: Duration,
    mut alive: impl FnMut() -> bool,
) -> Option<toycoin_common::ready::Ready> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut poll = tokio::time::interval(Duration::from_millis(20));
    let found = loop {
        if let Ok(Some(ready)) = toycoin_common::ready::read(path) {
            break Some(ready);
        }
        if !alive() || tokio::time::Instant::now() >= deadline {
            break None;
        }
        poll.tick().await;
    };
    let _ = std::fs::remove_file(path);
    found
}

/// Everything in this terminal, each line prefixed.
async fn run_here(args: &Args, shutdown: impl std::future::Future<Output = ()>) -> i32 {
    let colour_on = std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal();
    let (tx, mut lines) = mpsc::unbounded_channel::<String>();
    let mut children: Vec<(String, Child)> = Vec::new();
    // The relay writes where it listens to a ready file (with --port 0 that
    // is how we learn the port).
    let ready_file =
        std::env::temp_dir().join(format!("toycoin-demo-{}-relay.json", std::process::id()));
    let _ = std::fs::remove_file(&ready_file);
    let mut relay = match start("toycoin-relay", &relay_args(args, &ready_file)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("toycoin-demo: cannot start toycoin-relay: {e}");
            return 1;
        }
    };
    let relay_prefix = prefix("relay", "1", colour_on);
    forward(&mut relay, &relay_prefix, &tx);
    let ready = wait_ready(&ready_file, Duration::from_secs(30), || {
        matches!(relay.try_wait(), Ok(None))
    })
    .await;
    let ready = match ready {
        Some(ready) => ready,
        None => {
            let _ = relay.kill().await;
            // What the relay said (e.g. why it could not listen).
            drop(tx);
            while let Some(line) = lines.recv().await {
                println!("{line}");
            }
            eprintln!(
                "toycoin-demo: the relay did not start (is port {} taken?)",
                args.port
            );
            return 1;
        }
    };
    println!("{:>8} | pid {}", "relay", relay.id().unwrap_or(0));
    let web = web_addr(args);
    if let Some(addr) = web {
        println!("{:>8} | {}", "demo", web_line(addr));
        println!("{:>8} | {}", "demo", wallets_line(addr));
    }
    println!("{:>8} | {}", "demo", ctl_line(ready.addr));
    if let Some(line) = record_line(args) {
        println!("{:>8} | {line}", "demo");
    }
    let specs = specs(
        args,
        ready.addr.port(),
        colour_on,
        web,
        ready.token.is_some(),
    );
    for (i, spec) in specs.into_iter().enumerate() {
        match start(spec.program, &spec.args) {
            Ok(mut child) => {
                println!("{:>8} | pid {}", spec.label, child.id().unwrap_or(0));
                let colour = COLOURS[i % COLOURS.len()];
                forward(&mut child, &prefix(&spec.label, colour, colour_on), &tx);
                children.push((spec.label, child));
            }
            Err(e) => eprintln!("toycoin-demo: cannot start {}: {e}", spec.program),
        }
    }
    children.push(("relay".into(), relay));
    drop(tx);
    let ctrl_c = shutdown;
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            _ = &mut ctrl_c => break,
            line = lines.recv() => match line {
                // The reader went away (`toycoin-demo | head`): stop
                // everyone, as on Ctrl-C, saying so to nobody.
                Some(line) => if !say(&line) { break },
                None => break,
            },
        }
    }
    say("    demo | stopping every program...");
    // Everyone but the relay first, so that nobody reports it gone.
    for (_, child) in &children {
        interrupt(child);
    }
    for (label, child) in &mut children {
        if !wait_or_kill(child).await {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "    demo | {label} did not stop; killed it"
            );
        }
    }
    // What they said on the way out.
    while let Ok(Some(line)) = tokio::time::timeout(Duration::from_millis(200), lines.recv()).await
    {
        say(&line);
    }
    say("    demo | all stopped");
    0
}

/// Prints `line`; false once nobody reads the demo's output (a `println!`
/// would panic there, and end the demo before it stopped its programs).
fn say(line: &str) -> bool {
    use std::io::Write;
    writeln!(std::io::stdout().lock(), "{line}").is_ok()
}

/// Builds the programs (unless `--no-build`), writes the network and keys,
/// and runs the demo until Ctrl-C: in tmux where it can, else here. Returns
/// the exit code: 0 after a clean stop, 1 when something could not start,
/// 2 for arguments that do not go together.
pub async fn run(args: Args) -> i32 {
    if args.lesson.as_deref() == Some("list") {
        lesson::list();
        return 0;
    }
    let shutdown = toycoin_common::signal::shutdown_signal();
    if !args.no_build && !build() {
        eprintln!("toycoin-demo: cargo build failed");
        return 1;
    }
    let missing: Vec<&str> = PROGRAMS
        .iter()
        .copied()
        .filter(|p| !bin_dir().join(exe_name(p)).exists())
        .collect();
    if !missing.is_empty() {
        eprintln!(
            "toycoin-demo: {} not found beside this program in {}: build every program (cargo build --release) or install them all (see docs/running.md)",
            missing.join(", "),
            bin_dir().display()
        );
        return 1;
    }
    if let Some((n, _)) = args.fault.iter().find(|(n, _)| *n > args.nodes) {
        eprintln!(
            "toycoin-demo: --fault names node{n}, but there are {} nodes",
            args.nodes
        );
        return 2;
    }
    if let Err(e) = create_private_dir(&args.keys) {
        eprintln!("toycoin-demo: cannot create {}: {e}", args.keys.display());
        return 1;
    }
    if args.lesson.is_some() {
        return lesson::run(args, shutdown).await;
    }
    match write_network(&args) {
        Ok(network) => println!(
            "{} — students join with: toycoin-node --host TEACHER --join {}",
            network.banner(),
            network.join_code()
        ),
        Err(e) => {
            eprintln!("toycoin-demo: {e}");
            return 1;
        }
    }
    if args.consensus == Consensus::Pbft {
        if args.profile != "steady" {
            eprintln!("toycoin-demo: --consensus pbft needs the steady profile");
            return 2;
        }
        if args.scenario.is_some() {
            eprintln!("toycoin-demo: the --scenario attacks are proof of work's; not with --consensus pbft");
            return 2;
        }
        if let Err(e) = write_replicas(&args) {
            eprintln!("toycoin-demo: {e}");
            return 1;
        }
    }
    let use_tmux = !args.no_tmux && std::io::stdout().is_terminal() && tmux_available();
    if use_tmux {
        run_in_tmux(&args, shutdown).await
    } else {
        run_here(&args, shutdown).await
    }
}
