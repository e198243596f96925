//! `private-fork`: mine in secret, then release the branch; the heavier chain wins.

use crate::*;

impl Attacker {
    pub(crate) async fn private_fork(&mut self) -> Verdict {
        let base = self.chain().clone();
        let (work_before, len_before) = (base.total_work(), base.len());
        let (secs, most) = (self.options.secret_secs, self.options.secret_blocks.max(1));
        self.say(format!(
            "1. The attacker mines in secret on block {} with {} thread{} for {secs:.0} s{}",
            len_before.saturating_sub(1),
            self.options.threads,
            if self.options.threads == 1 { "" } else { "s" },
            if most == usize::MAX {
                String::new()
            } else {
                format!(" or {}", blocks(most))
            }
        ));
        let (mut secret, mut hashes) = self.mine_secretly(base.clone(), secs, most, false).await;
        if secret.is_empty() {
            // Nothing yet: on until a first block, as long as patience lasts.
            let patience = self.options.patience.as_secs_f64();
            let (found, more) = self.mine_secretly(base.clone(), patience, 1, false).await;
            (secret, hashes) = (found, hashes + more);
        }
        let mut secret_chain = base.clone();
        for block in &secret {
            let _ = secret_chain.push(block.clone(), now_secs());
        }
        let honest_blocks = self.chain().len().saturating_sub(len_before);
        let (secret_work, honest_work) = (
            secret_chain.total_work() - work_before,
            self.chain().total_work().saturating_sub(work_before),
        );
        self.say(format!(
            "2. In secret: {} ({hashes} hashes). Meanwhile the network mined {} on the same fork point.",
            blocks(secret.len()),
            blocks(honest_blocks)
        ));
        if secret.is_empty() {
            return Verdict {
                held: true,
                line: "the attacker found no block in its time: nothing to release".into(),
            };
        }
        let tip = secret_chain.tip_hash();
        self.say(format!(
            "3. It releases its branch ({}, tip {}), {} the network's",
            blocks(secret.len()),
            tip.short(),
            if secret_work > honest_work {
                "heavier than"
            } else if secret_work == honest_work {
                "as heavy as"
            } else {
                "lighter than"
            }
        ));
        let payload = self.announcement(&base, &secret);
        self.publish(payload);
        // Our own frame does not come back into our view: take the branch
        // in, then judge by the next block a node announces, which shows
        // the chain it mines on.
        let now = now_secs();
        let _ = self.session.tree_mut().receive(secret.clone(), now);
        if self.toycoin() {
            // Nodes mine only what waits: give them something.
            let probe = Transaction::coinbase(self.wallet.address().clone(), 7);
            self.publish(encode_txn(&[], &probe));
        }
        let on_best =
            |a: &Attacker, h: BlockHash| a.chain().blocks().any(|b| b.header.this_hash == h);
        // A block mined before a node heard the release may still come:
        // up to three announcements, until one is on the best chain.
        let mut peer_tip = None;
        for _ in 0..3 {
            let mut announced = None;
            let patience = self.a_few_blocks();
            self.wait(patience, |_, e| {
                if let Some(SessionEvent::Bloc(report)) = e {
                    announced = report
                        .blocks
                        .as_ref()
                        .and_then(|b| b.last())
                        .map(|b| b.header.this_hash);
                }
                announced.is_some()
            })
            .await;
            peer_tip = announced;
            if !peer_tip.is_some_and(|t| !on_best(self, t)) {
                break;
            }
        }
        let Some(peer_tip) = peer_tip else {
            return Verdict {
                held: true,
                line: "no node announced a block after the release: no verdict".into(),
            };
        };
        match (on_best(self, peer_tip), on_best(self, tip)) {
            (true, true) => Verdict {
                held: true,
                line: format!(
                    "the attacker's branch won: the nodes mine on it; {} undone, their transactions back in the pool (it cost {hashes} hashes)",
                    blocks(honest_blocks)
                ),
            },
            (true, false) => Verdict {
                held: true,
                line: format!(
                    "the honest chain won: it had as much work or more; the attacker's {hashes} hashes are wasted"
                ),
            },
            (false, _) => Verdict {
                held: secret_work <= honest_work,
                line: format!(
                    "a node mines on a branch lighter than the best one seen ({})",
                    peer_tip.short()
                ),
            },
        }
    }
}
