//! The oracle's transfers: random signed payments between its wallets,
//! spending only outputs it knows are its own, each sent and remembered.

use super::*;

impl Oracle {
    pub(super) fn send(&mut self, label: String, m: TxnMessage) {
        match self.truth.apply_txns(std::slice::from_ref(&m.txn)) {
            // The truth is never taken back: what it spent is forgotten at
            // once, so it holds what is unspent however long the lesson.
            Ok(undo) => self.truth.forget_spent(&undo),
            Err(e) => {
                error!("!!! BUG: the oracle made an invalid transaction: {e}");
                return;
            }
        }
        let payload = encode_txn(&m.tokens, &m.txn);
        let hash = m.txn.hash();
        if self.tally.is_some() {
            self.sent_txns.insert(hash, m.txn.clone());
        }
        self.sent.push(Sent {
            hash,
            label,
            message: m,
            last_sent: Instant::now(),
            sent_at: now_secs(),
            confirmed: None,
            reported: 0,
            missed: 0,
            lost: false,
            first_sent: Instant::now(),
            frames_before: self.pbft_frames,
        });
        self.session.publish(payload);
    }

    /// The tokens each wallet can pay with, in the order it pays with them.
    /// Where the network's nodes take spends of pending outputs (steady),
    /// every unspent output. Otherwise as the original's wallet: only
    /// outputs already in the best chain (the Python nodes drop a
    /// transaction with any other input for good), oldest first. One pass
    /// over each ledger for all wallets.
    pub(super) fn spendable(&self) -> Vec<Vec<Token>> {
        let owners: Vec<&[u8]> = self.wallets.iter().map(|w| &w.address()[..]).collect();
        let mut spendable = self.truth.unspent_of(&owners);
        if self.config.profile.pays_with_pending_outputs() {
            for tokens in &mut spendable {
                tokens.sort_by_key(|t| (t.txn_hash, t.value));
            }
            return spendable;
        }
        let chain = self.session.tree().chain();
        let mut age: HashMap<Txid, usize> = HashMap::new();
        // The original's profile only: its chains stay short.
        for block in chain.blocks() {
            for txn in &block.txns {
                let next = age.len();
                age.entry(txn.hash()).or_insert(next);
            }
        }
        let confirmed = chain.unspent_of(&owners);
        for (tokens, confirmed) in spendable.iter_mut().zip(confirmed) {
            let confirmed: HashSet<Token> = confirmed.into_iter().collect();
            tokens.retain(|t| confirmed.contains(t));
            tokens.sort_by_key(|t| (age.get(&t.txn_hash).copied().unwrap_or(usize::MAX), t.value));
        }
        spendable
    }

    pub(super) fn transfer(&mut self) {
        let before = self.truth_balances();
        let spendable = self.spendable();
        let can_pay = |i: usize| spendable[i].iter().map(|t| t.value).sum::<i64>();
        let senders: Vec<usize> = (0..self.wallets.len())
            .filter(|&i| can_pay(i) >= 5)
            .collect();
        if senders.is_empty() || self.wallets.len() < 2 {
            warn!("No wallet has 5 coins to send; waiting");
            return;
        }
        let from = senders[self.rng.gen_range(0..senders.len())];
        let mut to = self.rng.gen_range(0..self.wallets.len() - 1);
        if to >= from {
            to += 1;
        }
        let value = self.rng.gen_range(5..=15).min(can_pay(from));
        let mut tokens = spendable[from].clone();
        if !self.config.profile.pays_with_pending_outputs() {
            // As many as needed, as the original's wallet.
            tokens = wallet::tokens_to_pay(tokens, value);
        }
        let receiver = self.wallets[to].address().clone();
        let signing = self.config.profile.signing();
        let m = match self.wallets[from].transfer(&mut self.rng, &receiver, value, tokens, signing)
        {
            Ok(m) => m,
            Err(e) => {
                warn!("!!! cannot make a transfer: {e}");
                return;
            }
        };
        self.transfers += 1;
        info!(
            "Sending from wallet {from} ({}) to {to} ({}): {value}",
            self.wallets[from].fingerprint(),
            self.wallets[to].fingerprint()
        );
        info!(target: TRAFFIC, "  balances before: {before:?}");
        self.send(
            format!(
                "transfer {} (wallet {from} -> {to}: {value})",
                self.transfers
            ),
            m,
        );
        info!(target: TRAFFIC, "  balances after:  {:?}", self.truth_balances());
    }
}
