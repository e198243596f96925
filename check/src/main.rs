//! `toycoin-check`: grades a student's own node against the protocol.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use toycoin_check::{check_client, check_node, ClientOptions, Options, Report};
use toycoin_common::network::ProfileKind;

/// Grades a program against the toycoin protocol: starts it against a
/// relay of the checker's own, plays the rest of the class, and says
/// check by check what it did.
#[derive(Debug, Parser)]
#[command(name = "toycoin-check", version)]
struct Args {
    #[command(subcommand)]
    role: Role,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Rules {
    /// Ours (the default).
    Steady,
    /// The original's, flaws included: its known flaws are reported as
    /// such, not as failures.
    Toycoin,
}

#[derive(Debug, Subcommand)]
enum Role {
    /// A full node: it mines, takes transactions, follows the best chain.
    ///
    /// Example: toycoin-check node -- python3 node.py --host {host} --port {port}
    Node {
        /// Which rules the network follows.
        #[arg(long, value_enum, default_value_t = Rules::Steady)]
        profile: Rules,
        /// The steady network's target seconds between blocks.
        #[arg(long, default_value_t = 2.0)]
        target: f64,
        /// Longest wait, in seconds, for each thing the program should do
        /// (its next block, an answer).
        #[arg(long, default_value_t = 60.0)]
        patience: f64,
        /// The report as one JSON object.
        #[arg(long)]
        json: bool,
        /// The program and its arguments; {host}, {port}, {network} (the
        /// network's file) and {dir} (a directory for the program's own
        /// files, removed afterwards) are filled in.
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// A client that sends transactions (a wallet, an oracle): the
    /// checker mines its valid transactions and judges each one.
    ///
    /// Example: toycoin-check client -- toycoin-oracle --host {host} --port {port} --network {network} --mint-key {mint_key}
    Client {
        /// Which rules the network follows.
        #[arg(long, value_enum, default_value_t = Rules::Steady)]
        profile: Rules,
        /// The steady network's target seconds between blocks (the
        /// checker mines one this often).
        #[arg(long, default_value_t = 2.0)]
        target: f64,
        /// Seconds to watch the program.
        #[arg(long, default_value_t = 60.0)]
        watch: f64,
        /// Transactions it must send meanwhile.
        #[arg(long, default_value_t = 3)]
        least: usize,
        /// The report as one JSON object.
        #[arg(long)]
        json: bool,
        /// The program and its arguments; {host}, {port}, {network},
        /// {mint_key} (steady: the mint's key, to fund wallets as the
        /// teacher's oracle does) and {dir} are filled in.
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
}

fn kind(rules: Rules) -> ProfileKind {
    match rules {
        Rules::Steady => ProfileKind::Steady,
        Rules::Toycoin => ProfileKind::Toycoin,
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    toycoin_common::signal::end_quietly_on_broken_pipe();
    let (result, json) = match Args::parse().role {
        Role::Node {
            profile,
            target,
            patience,
            json,
            command,
        } => {
            let mut options = Options::new(kind(profile), command);
            options.target_secs = target.clamp(0.1, 3600.0);
            options.patience = Duration::from_secs_f64(patience.clamp(1.0, 3600.0));
            (check_node(options).await, json)
        }
        Role::Client {
            profile,
            target,
            watch,
            least,
            json,
            command,
        } => {
            let mut options = ClientOptions::new(kind(profile), command);
            options.target_secs = target.clamp(0.1, 3600.0);
            options.watch = Duration::from_secs_f64(watch.clamp(1.0, 86_400.0));
            options.least = least;
            (check_client(options).await, json)
        }
    };
    finish(result, json)
}

/// Prints the report; the exit status: 0 when nothing failed, 1 when
/// something did, 2 when the checker could not run.
fn finish(result: Result<Report, String>, json: bool) -> ExitCode {
    match result {
        Err(e) => {
            eprintln!("toycoin-check: {e}");
            ExitCode::from(2)
        }
        Ok(report) => {
            if json {
                println!("{}", report.json());
            } else {
                print!("{}", report.text());
            }
            if report.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
