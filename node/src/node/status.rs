//! What a node says about itself: its status (`STAT`, signed) and its
//! announcements of blocks (`BLOC`, with a signed `ANNC`).

use std::borrow::Cow;

use super::*;

impl Node {
    /// Says where this node stands (`STAT`).
    pub(super) fn announce_status(&mut self) {
        let chain = self.session.tree().chain();
        let status = Status {
            name: clipped(&self.config.name, MAX_STATUS_NAME).to_owned(),
            tip: chain.tip().map(|b| b.header.this_hash),
            height: chain.len().checked_sub(1).map(|h| h as u64),
            hash_rate: self.hash_rate,
            mining: self.mining.is_some(),
            threads: self.config.threads.min(u32::MAX as usize) as u32,
            wallet: (self.config.profile.minting() == Minting::RewardsAndMint)
                .then(|| fingerprint(&self.config.reward_to)),
            signer: None,
        };
        let mut status = status;
        if self.config.fault == Some(Fault::Liar) {
            Liar::lie_about(&mut status);
        }
        // Signed by the node's key: observers show it only under the name
        // that key owns (a liar signs its lie: evidence against it).
        if let Some(key) = &self.config.key {
            if let Err(e) = status.sign(key) {
                tracing::warn!("cannot sign the status: {e}");
            }
        }
        self.publish(encode_stat(&status));
    }

    /// Tells the network about our new tip: the whole chain where the
    /// profile announces whole chains (as the original), else the new
    /// block alone.
    pub(super) fn announce(&mut self) {
        let chain = self.session.tree().chain();
        let tip = chain.tip().map(|b| b.header.this_hash);
        let height = chain.len().saturating_sub(1);
        let payload = if self.config.profile.announces_whole_chain() {
            let blocks: Vec<Block> = chain.blocks().map(Cow::into_owned).collect();
            encode_bloc(&blocks)
        } else {
            encode_bloc(chain.tip().map(std::slice::from_ref).unwrap_or_default())
        };
        self.publish(payload);
        if let Some(tip) = tip {
            self.sign_announcement(&tip, height);
        }
    }

    /// Signs and sends our announcement of `block` (`ANNC`: steady, with
    /// a key), so that observers know it is ours and blame us alone for
    /// it ([`toycoin_common::announce`]).
    pub(super) fn sign_announcement(&mut self, block: &BlockHash, height: usize) {
        if self.config.profile.announces_whole_chain() {
            return;
        }
        let Some(key) = &self.config.key else {
            return;
        };
        match toycoin_common::announce::encode(
            block,
            height as u64,
            key,
            toycoin_common::chain::now_secs(),
        ) {
            Ok(frame) => self.publish(frame),
            Err(e) => tracing::warn!("cannot sign an announcement: {e}"),
        }
    }
}
