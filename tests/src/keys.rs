//! Keys made once and kept, so that the tests' oracles, replicas and mints
//! read their keys instead of making them: an RSA-2048 key takes 0.1 to
//! 0.3 s of processor in a test build, and a suite starts dozens of
//! oracles. Each test has a network of its own, so tests may share keys.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use toycoin_common::wallet::Wallet;

/// Wallets an oracle makes by default (`OracleConfig::wallets`).
pub const ORACLE_WALLETS: usize = 4;

/// Where the keys are kept: `target/tmp/toycoin-test-keys` (the test
/// binary is in `target/<profile>/deps`), gone with `cargo clean`.
pub fn dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| Some(p.parent()?.parent()?.parent()?.join("tmp")))
        .unwrap_or_else(std::env::temp_dir)
        .join("toycoin-test-keys")
}

/// The wallet kept as `NAME.pem` in [`dir`], made on first use. Tests
/// side by side, or two test binaries, agree on one key
/// ([`Wallet::load_or_create`] links a new key into place whole).
pub fn kept_key(name: &str) -> Wallet {
    let dir = &dir();
    let path = dir.join(format!("{name}.pem"));
    if let Ok(wallet) = read_only(&path) {
        return wallet;
    }
    toycoin_common::wallet::create_private_dir(dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    Wallet::load_or_create(&path)
        .map(|(wallet, _)| wallet)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The wallet in the key file at `path`, which is there.
fn read_only(path: &Path) -> Result<Wallet, String> {
    let pem = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    Wallet::from_pem(&pem).map_err(|e| e.to_string())
}

/// The directory of the oracle's key files, made once: its wallets'
/// (`OracleConfig::wallet_keys`, `--wallet-keys DIR`) and the mint's,
/// [`mint_key`] (`--mint-key`).
pub fn oracle_keys() -> &'static Path {
    static READY: OnceLock<PathBuf> = OnceLock::new();
    READY.get_or_init(|| {
        for i in 0..ORACLE_WALLETS {
            kept_key(&format!("wallet-{i}"));
        }
        kept_key("mint");
        dir()
    })
}

/// The mint's key file in [`oracle_keys`].
pub fn mint_key() -> PathBuf {
    oracle_keys().join("mint.pem")
}

/// The tests' steady network: its mint is [`mint_key`]'s, the key the
/// tests' oracles grant with.
pub fn network(target_secs: f64) -> toycoin_common::network::Network {
    static MINT: OnceLock<toycoin_common::transaction::Address> = OnceLock::new();
    let mint = MINT.get_or_init(|| {
        read_only(&mint_key())
            .map(|w| w.address().clone())
            .unwrap_or_else(|e| panic!("the tests' mint key: {e}"))
    });
    toycoin_common::network::Network::steady(target_secs, Some(mint.clone()))
}

/// [`network`]'s rules.
pub fn steady(target_secs: f64) -> toycoin_common::profile::Profile {
    network(target_secs).profile()
}

/// [`network`] written to a file for a program's `--network`.
pub fn network_file(target_secs: f64) -> PathBuf {
    let path = dir().join(format!("network-{}ms.json", (target_secs * 1000.0) as u64));
    let network = network(target_secs);
    // Written next to its final place and renamed, as the keys are: tests
    // running side by side never read half a file.
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir().join(format!("network-{}-{n}.tmp", std::process::id()));
    if !path.exists() {
        network.save(&tmp).unwrap_or_else(|e| panic!("{e}"));
        std::fs::rename(&tmp, &path).unwrap_or_else(|e| panic!("{e}"));
    }
    path
}
