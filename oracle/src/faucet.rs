//! The class's faucet (`--faucet N`): the mint grants coins to a light
//! wallet that asks, within bounds per wallet, per second, per minute and
//! for the whole class, and signs its answer (docs/spv.md).

use super::*;

/// How often one address may be granted coins by the faucet.
pub const FAUCET_PERIOD: Duration = Duration::from_secs(60);
/// Grants the faucet makes a second, at most, whoever asks (the relay
/// lets one laptop ask only a few times a minute, so a class's turns come
/// within seconds).
pub const FAUCET_PER_SEC: usize = 10;
/// Grants a minute, at most, in all.
pub const FAUCET_PER_MINUTE: usize = 300;
/// The class's faucet in all, by default: coins it grants before it is
/// empty (`--faucet-total`).
pub const FAUCET_TOTAL: i64 = 10_000;
/// Addresses the faucet remembers at once (the oldest forgotten first).
pub const FAUCET_MEMORY: usize = 10_000;

impl Oracle {
    /// A light wallet asks the faucet for coins: the mint grants
    /// `--faucet` coins to its address, at most once per address per
    /// [`FAUCET_PERIOD`], and answers either way.
    pub(super) fn on_faucet(&mut self, payload: &[u8]) {
        if self.mint.is_none() || self.config.faucet <= 0 {
            return;
        }
        let Ok(Some(request @ SpvMsg::Faucet { .. })) = SpvMsg::decode_request(payload) else {
            return;
        };
        let reply_to = request.reply_to().map(str::to_owned);
        let SpvMsg::Faucet { id, address, .. } = request else {
            return;
        };
        let value = self.config.faucet;
        let answer = |txn: Option<String>, refused: Option<String>| SpvMsg::Granted {
            id: id.clone(),
            txn,
            value,
            refused,
            mint: None,
            sig: None,
        };
        let verdict = self.faucet_grant(&address);
        let mut msg = match verdict {
            Ok(hash) => answer(Some(hash.to_hex()), None),
            Err(why) => answer(None, Some(why)),
        };
        // Signed by the mint: a wallet believes no other answer.
        if let Some(mint) = &self.mint {
            if let Err(e) = spv::sign_granted(&mut msg, mint) {
                error!("toycoin-oracle: cannot sign a faucet answer: {e}");
                return;
            }
        }
        match &reply_to {
            Some(name) => self.session.publish_to(name, msg.encode()),
            None => self.session.publish(msg.encode()),
        }
    }

    /// Grants the faucet's coins to `address` (base64 of a wallet's PEM)
    /// and sends the grant; or says why not: not a wallet's address, asked
    /// within [`FAUCET_PERIOD`], or the faucet at [`FAUCET_PER_SEC`].
    pub(super) fn faucet_grant(&mut self, address: &str) -> Result<Txid, String> {
        let address = match spv::address_from_text(address) {
            Ok(a) if wallet::public_key(&a).is_ok() => a,
            _ => return Err("that is not a wallet's address".into()),
        };
        // One key, one address: the same key written another way (another
        // exponent, CRLF endings) would be a second wallet to ask for.
        if self.config.profile.canonical_encoding() {
            if let Err(e) = toycoin_common::address::check_canonical(&address) {
                return Err(format!("that is not a wallet's address: {e}"));
            }
        }
        let now = Instant::now();
        if let Some(at) = self.faucet_given.get(&address) {
            let left = FAUCET_PERIOD.saturating_sub(now.duration_since(*at));
            if !left.is_zero() {
                info!(
                    source = "faucet-refused",
                    "Faucet: wallet {} asked again within {} s: refused",
                    fingerprint(&address),
                    FAUCET_PERIOD.as_secs()
                );
                return Err(format!(
                    "one grant per address per {} s: ask again in {} s",
                    FAUCET_PERIOD.as_secs(),
                    left.as_secs() + 1
                ));
            }
        }
        if self.faucet_given.len() >= FAUCET_MEMORY {
            self.faucet_given
                .retain(|_, at| now.duration_since(*at) < FAUCET_PERIOD);
        }
        // However many keys a student makes: at most FAUCET_PER_SEC grants
        // a second in all, and FAUCET_MEMORY a minute.
        let last_second = self
            .faucet_given
            .values()
            .filter(|at| now.duration_since(**at) < Duration::from_secs(1))
            .count();
        let last_minute = self
            .faucet_given
            .values()
            .filter(|at| now.duration_since(**at) < FAUCET_PERIOD)
            .count();
        if last_second >= FAUCET_PER_SEC
            || last_minute >= FAUCET_PER_MINUTE
            || self.faucet_given.len() >= FAUCET_MEMORY
        {
            return Err("the faucet is busy: ask again in a few seconds".into());
        }
        if self.faucet_granted + self.config.faucet > self.config.faucet_total {
            return Err(format!(
                "the class's faucet is empty: {} of its {} coins given",
                self.faucet_granted, self.config.faucet_total
            ));
        }
        let Some(mint) = &self.mint else {
            return Err("this oracle has no mint".into());
        };
        let value = self.config.faucet;
        let txn = mint
            .grant(&mut self.rng, &address, value)
            .map_err(|e| format!("the mint cannot sign: {e}"))?;
        self.faucet_given.insert(address.clone(), now);
        self.faucet_granted += value;
        let hash = txn.hash();
        info!(
            "Faucet: granting {value} to wallet {} (txn {}); {} of the class's {} coins given",
            fingerprint(&address),
            hash.short(),
            self.faucet_granted,
            self.config.faucet_total
        );
        self.send(
            format!("faucet grant to wallet {}", fingerprint(&address)),
            TxnMessage {
                tokens: Vec::new(),
                txn,
            },
        );
        Ok(hash)
    }
}
