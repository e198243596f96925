//! `toycoin-wallet`: a student's own wallet and light client.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use toycoin_common::cli::{ProfileArgs, RelayArgs};
use toycoin_common::spv;
use toycoin_common::wallet::{check_private_file, fingerprint, Wallet};
use toycoin_wallet::{describe, LightWallet};

/// Your own toycoin wallet: a key in a file only you can read, payments
/// to classmates by the fingerprint every program prints, and balances
/// proved by Merkle paths against block headers (a light client: it keeps
/// no blocks and trusts no node's word).
#[derive(Debug, Parser)]
#[command(name = "toycoin-wallet", version)]
struct Args {
    /// The key file (created by `new`, readable only by you).
    #[arg(
        long,
        value_name = "FILE",
        default_value = "toycoin-wallet.pem",
        global = true
    )]
    key: PathBuf,
    #[command(flatten)]
    relay: RelayArgs,
    #[command(flatten)]
    rules: ProfileArgs,
    /// Seconds to wait for the nodes' answers.
    #[arg(long, default_value_t = 5.0, global = true)]
    timeout: f64,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Make a new key in the key file (never overwrites one).
    New,
    /// Print this wallet's fingerprint and whole address.
    Address,
    /// Your balance, each coin proved by a Merkle path.
    Balance,
    /// Every transaction of yours the nodes proved.
    History,
    /// Pay a classmate: `send --to 1a2b3c4d 10` (a fingerprint, or a whole
    /// address in base64).
    Send {
        #[arg(long)]
        to: String,
        amount: i64,
    },
    /// Ask the class's faucet (the teacher's `toycoin-oracle --faucet N`)
    /// for coins.
    Faucet,
    /// Follow new blocks and watch your transactions' confirmations climb.
    Watch {
        /// Stop after this many seconds (0: until Ctrl-C).
        #[arg(long, default_value_t = 0)]
        secs: u64,
    },
}

fn load(path: &std::path::Path) -> Result<Wallet, String> {
    check_private_file(path)?;
    let pem = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Wallet::from_pem(&pem).map_err(|e| format!("{}: {e}", path.display()))
}

async fn run(args: Args) -> Result<(), String> {
    let timeout = Duration::from_secs_f64(args.timeout.clamp(0.1, 600.0));
    if let Cmd::New = args.command {
        if args.key.exists() {
            return Err(format!(
                "{} exists already: a key is never overwritten (use --key for another)",
                args.key.display()
            ));
        }
        let (wallet, _) = Wallet::load_or_create(&args.key).map_err(|e| e.to_string())?;
        println!(
            "New wallet {} in {} (readable only by you; keep it: it holds your coins)",
            wallet.fingerprint(),
            args.key.display()
        );
        return Ok(());
    }
    let wallet = load(&args.key)?;
    if let Cmd::Address = args.command {
        println!("wallet {}", wallet.fingerprint());
        println!("{}", spv::address_text(wallet.address()));
        return Ok(());
    }
    let me = wallet.address().clone();
    let mut light = LightWallet::connect(
        wallet,
        &args.relay.addr(),
        &args.relay.channel,
        args.rules.profile(),
    )
    .await?;
    let heard = light.sync(timeout).await?;
    for why in &heard.refused {
        println!("Ignored from a node: {why}");
    }
    println!(
        "Headers: {} (tip {}), from {} answers",
        light.headers().len(),
        light.headers().tip_hash().short(),
        heard.answers
    );
    match args.command {
        Cmd::Faucet => {
            let (txn, value) = light.faucet(timeout).await?;
            println!(
                "The faucet grants {value} coins (txn {:.12}): in your balance once a block holds it",
                txn
            );
            return Ok(());
        }
        Cmd::Watch { secs } => {
            let end = (secs > 0).then(|| tokio::time::Instant::now() + Duration::from_secs(secs));
            loop {
                prove_and_print(&mut light, timeout, &me, true).await?;
                let left = end.map_or(Duration::from_secs(3600), |e| {
                    e.saturating_duration_since(tokio::time::Instant::now())
                });
                if left.is_zero() || !light.next_block(left).await? {
                    return Ok(());
                }
                println!("New block {}", light.headers().len() - 1);
            }
        }
        _ => {}
    }
    prove_and_print(
        &mut light,
        timeout,
        &me,
        matches!(args.command, Cmd::History),
    )
    .await?;
    if let Cmd::Send { to, amount } = args.command {
        let address = if to.len() == 8 && to.chars().all(|c| c.is_ascii_hexdigit()) {
            light.find_address(&to.to_lowercase(), timeout).await?
        } else {
            spv::address_from_text(&to)?
        };
        let txn = light.pay(&address, amount).await?;
        println!(
            "Sent {amount} to wallet {} (txn {}); change {} back to you",
            fingerprint(&address),
            txn.hash().short(),
            txn.sender_change
        );
    }
    Ok(())
}

async fn prove_and_print(
    light: &mut LightWallet,
    timeout: Duration,
    me: &toycoin_common::transaction::Address,
    every: bool,
) -> Result<(), String> {
    let heard = light.prove(timeout).await?;
    for why in &heard.refused {
        println!("Ignored a proof: {why}");
    }
    if every {
        for p in light.history() {
            println!("  {}", describe(p, light.headers(), me));
        }
    }
    let unspent = light.unspent();
    println!(
        "Wallet {}: balance {} in {} coin{} (each proved against {} headers)",
        light.wallet().fingerprint(),
        light.balance(),
        unspent.len(),
        if unspent.len() == 1 { "" } else { "s" },
        light.headers().len()
    );
    Ok(())
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if let Err(e) = run(args).await {
        eprintln!("toycoin-wallet: {e}");
        std::process::exit(1);
    }
}
