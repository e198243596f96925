//! The network's mint as the oracle holds it: its key file, checked
//! against the mint the network names.

use super::*;

/// The mint's wallet: from its key file (created on first use), or new for
/// this run only.
pub(super) fn load_mint(config: &OracleConfig, rng: &mut StdRng) -> Result<Wallet, String> {
    let mint = match &config.mint_key {
        Some(path) => {
            let (wallet, created) = Wallet::load_or_create(path).map_err(|e| e.to_string())?;
            let how = if created {
                "new key saved in"
            } else {
                "key from"
            };
            info!(
                "Mint: wallet {} ({how} {})",
                wallet.fingerprint(),
                path.display()
            );
            wallet
        }
        None => {
            let wallet = new_wallet(config.seed.is_some(), rng).map_err(|e| e.to_string())?;
            info!(
                "Mint: wallet {} (a new key for this run only)",
                wallet.fingerprint()
            );
            wallet
        }
    };
    let ours = toycoin_common::hash::Hash::of(mint.address());
    match config.profile.mint {
        Some(theirs) if theirs == ours => Ok(mint),
        Some(theirs) => Err(format!(
            "the network's mint is wallet {}, not this oracle's {}: give the oracle the network's --mint-key (the file the relay or the demo made)",
            toycoin_common::wallet::fingerprint_of(&theirs),
            mint.fingerprint()
        )),
        None => Err("this network has no mint: nobody can grant coins on it".into()),
    }
}
