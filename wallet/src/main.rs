//! `toycoin-wallet`: a student's own wallet and light client.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use toycoin_common::cli::{ProfileArgs, RelayArgs};
use toycoin_common::spv;
use toycoin_common::wallet::{
    check_private_file, fingerprint, pay_fingerprint, Wallet, PAY_FINGERPRINT_DIGITS,
};
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
    /// Pay a classmate: `send --to 1a2b3c4d5e6f7a8b 10` (a fingerprint of
    /// 16 or more hex digits, as `toycoin-wallet address` prints it, or a
    /// whole address in base64).
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
        println!(
            "wallet {} (to be paid: toycoin-wallet send --to {} AMOUNT)",
            wallet.fingerprint(),
            pay_fingerprint(wallet.address())
        );
        println!("{}", spv::address_text(wallet.address()));
        // The network too, where it can be had at once: the student
        // compares its join code with the one the teacher projects.
        match args.rules.network_now(&args.relay).await {
            Ok(network) => println!("{}", network.banner()),
            Err(e) => println!("Network: not learned ({e})"),
        }
        return Ok(());
    }
    if let Cmd::Send { to, .. } = &args.command {
        check_payee(to)?;
    }
    let me = wallet.address().clone();
    let network = args.rules.network_now(&args.relay).await?;
    println!("{}", network.banner());
    let mut light = LightWallet::connect(
        wallet,
        &args.relay.addr(),
        &args.relay.channel,
        network.profile(),
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
        let address = resolve_payee(&mut light, &to, timeout).await?;
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

/// Whether `send --to`'s `to` is a fingerprint (else a whole address);
/// one too short to name a wallet safely is refused.
fn check_payee(to: &str) -> Result<bool, String> {
    let hex = to.len() <= 128 && to.chars().all(|c| c.is_ascii_hexdigit());
    if hex && to.len() < PAY_FINGERPRINT_DIGITS {
        return Err(format!(
            "a fingerprint of {} hex digits can be ground by a classmate in hours: give at least {PAY_FINGERPRINT_DIGITS} (`toycoin-wallet address` prints them), or the whole address",
            to.len()
        ));
    }
    Ok(hex)
}

/// Whom `send --to` pays: a fingerprint of at least
/// [`PAY_FINGERPRINT_DIGITS`] hex digits (an 8-digit one names a wallet on
/// screen but can be ground by a classmate in hours, so it is refused), or
/// a whole address; in steady a canonical one.
async fn resolve_payee(
    light: &mut LightWallet,
    to: &str,
    timeout: Duration,
) -> Result<toycoin_common::transaction::Address, String> {
    let address = if check_payee(to)? {
        light.find_address(&to.to_lowercase(), timeout).await?
    } else {
        spv::address_from_text(to)?
    };
    if light.headers().profile().canonical_encoding() {
        toycoin_common::address::check_canonical(&address)
            .map_err(|e| format!("not a wallet's address: {e}"))?;
    }
    println!(
        "Paying wallet {} ({})",
        pay_fingerprint(&address),
        fingerprint(&address)
    );
    Ok(address)
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
    toycoin_common::signal::end_quietly_on_broken_pipe();
    toycoin_allocator::tune();
    let args = Args::parse();
    if let Err(e) = run(args).await {
        eprintln!("toycoin-wallet: {e}");
        std::process::exit(1);
    }
}
