//! `toycoin-ctl`: the teacher's commands to a running `toycoin-relay` —
//! partitions, hold and step, delay and loss per client, faults.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use toycoin_common::control::{command, read_token, token_file, Command, NetworkStatus, TOKEN_ENV};

/// Gives the relay one of the teacher's commands and prints its answer.
/// The relay takes them only with its token (found by default in the file
/// it wrote on this machine) and, unless started with
/// --control-from-anywhere, only from its own machine.
#[derive(Debug, Parser)]
#[command(name = "toycoin-ctl", version)]
struct Args {
    /// The relay, HOST:PORT.
    #[arg(long, default_value = "127.0.0.1:25000")]
    relay: String,
    /// A file holding the teacher's token (default: $TOYCOIN_CONTROL_TOKEN,
    /// else the file the relay wrote on this machine).
    #[arg(long, value_name = "PATH")]
    token_file: Option<std::path::PathBuf>,
    /// Print the relay's reply as JSON.
    #[arg(long)]
    json: bool,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Clients by name, groups, rules, what is held.
    Status,
    /// Cut the network: each GROUP is client names (or IP:PORT) joined by
    /// commas, e.g. `partition node1,node2 node3`. Clients in no group
    /// (the listener, unless named) hear and are heard by everyone.
    Partition {
        #[arg(required = true, num_args = 2..)]
        groups: Vec<String>,
    },
    /// End the partition.
    Heal,
    /// Hold every message until step or release.
    Hold,
    /// Deliver the oldest held message (or COUNT of them).
    Step {
        #[arg(default_value_t = 1)]
        count: usize,
    },
    /// Deliver everything held and stop holding.
    Release,
    /// Delay messages to and from CLIENT by MS milliseconds (0: none).
    Delay { client: String, ms: u64 },
    /// Lose a share RATE (0 to 1) of the messages to and from CLIENT.
    Drop { client: String, rate: f64 },
    /// Make node CLIENT play a fault: honest, silent, stuck, invalid, liar.
    Fault { client: String, mode: String },
    /// A replay: go to SECS seconds into the recording (hold, step and
    /// release pause, step and play it).
    Seek { secs: f64 },
    /// A replay: play at the recorded pace times SPEED (0: as fast as it
    /// goes).
    Speed { speed: f64 },
}

impl Cmd {
    fn into_command(self) -> Command {
        match self {
            Cmd::Status => Command::Status,
            Cmd::Partition { groups } => Command::Partition {
                groups: groups
                    .iter()
                    .map(|g| {
                        g.split(',')
                            .filter(|s| !s.is_empty())
                            .map(str::to_owned)
                            .collect()
                    })
                    .collect(),
            },
            Cmd::Heal => Command::Heal,
            Cmd::Hold => Command::Hold,
            Cmd::Step { count } => Command::Step { count },
            Cmd::Release => Command::Release,
            Cmd::Delay { client, ms } => Command::Delay { client, ms },
            Cmd::Drop { client, rate } => Command::Drop { client, rate },
            Cmd::Fault { client, mode } => Command::Fault { client, mode },
            Cmd::Seek { secs } => Command::Seek { secs },
            Cmd::Speed { speed } => Command::Speed { speed },
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    toycoin_common::signal::end_quietly_on_broken_pipe();
    let args = Args::parse();
    let port = args
        .relay
        .rsplit(':')
        .next()
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or(25000);
    let default = token_file(port);
    let token = match read_token(args.token_file.as_deref(), Some(&default)) {
        Ok(Some(token)) => token,
        Ok(None) => {
            eprintln!(
                "toycoin-ctl: no token: none in ${TOKEN_ENV} and cannot read {}; give --token-file (the relay prints where it wrote it)",
                default.display()
            );
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("toycoin-ctl: {e}");
            return ExitCode::from(2);
        }
    };
    match command(args.relay.as_str(), &token, args.command.into_command()).await {
        Err(e) => {
            eprintln!("toycoin-ctl: {e}");
            ExitCode::from(2)
        }
        Ok(reply) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&reply).unwrap_or_default()
                );
            } else {
                println!("{}", reply.message);
                if let Some(status) = &reply.status {
                    print_status(status);
                }
            }
            if reply.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn print_status(status: &NetworkStatus) {
    for (i, group) in status.groups.iter().enumerate() {
        println!("group {}: {}", i + 1, group.join(", "));
    }
    println!(
        "{:<20} {:<22} {:<7} {:>8} {:>6}  topic",
        "client", "address", "group", "delay", "drop"
    );
    for c in &status.clients {
        println!(
            "{:<20} {:<22} {:<7} {:>6}ms {:>5.0}%  {}",
            c.name,
            c.addr,
            c.group.map_or("-".to_string(), |g| (g + 1).to_string()),
            c.delay_ms,
            c.drop_rate * 100.0,
            c.topic
        );
    }
    println!(
        "held now: {}; since start: {} withheld by partitions, {} lost to drop rules, {} delayed",
        status.held, status.withheld, status.lost, status.delayed
    );
}
