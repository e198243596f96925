//! `double-spend`: pay two merchants with the same coins, one in each half of a partitioned network, then heal it.

use crate::*;

impl Attacker {
    pub(crate) async fn double_spend(&mut self) -> Verdict {
        let Some(token) = self.options.token.clone() else {
            return Verdict {
                held: true,
                line: "needs the teacher's token to cut the network (--token-file, or run it on the relay's machine)".into(),
            };
        };
        // The nodes: named clients at the relay that said where they
        // stand, so neither us nor the oracle or listener (toycoin nodes
        // say nothing: there, the clients named node*).
        let heard_for = self.joined.elapsed();
        if !self.toycoin() && heard_for < NODES_HEARD_WITHIN {
            self.listen(NODES_HEARD_WITHIN - heard_for).await;
        }
        if !self.toycoin() && self.nodes.len() < 2 {
            // A node still connecting when its status was due says it
            // again 3 s later.
            self.wait(NODES_HEARD_WITHIN, |a, _| a.nodes.len() >= 2)
                .await;
        }
        let status = match command(self.options.relay.as_str(), &token, Command::Status).await {
            Ok(reply) if reply.ok => reply.status.unwrap_or_default(),
            Ok(reply) => {
                return Verdict {
                    held: true,
                    line: format!("the relay refused: {}", reply.message),
                }
            }
            Err(e) => {
                return Verdict {
                    held: true,
                    line: format!("cannot command the relay: {e}"),
                }
            }
        };
        let mut nodes: Vec<String> = status
            .clients
            .iter()
            .map(|c| c.name.clone())
            .filter(|n| self.nodes.contains(n) || (self.toycoin() && n.starts_with("node")))
            .collect();
        nodes.sort();
        nodes.dedup();
        if nodes.len() < 2 {
            return Verdict {
                held: true,
                line: format!(
                    "needs two named nodes to split; found {}",
                    if nodes.is_empty() {
                        "none".to_string()
                    } else {
                        nodes.join(", ")
                    }
                ),
            };
        }
        let (left, right) = nodes.split_at(nodes.len() / 2);
        let (left, right) = (left.to_vec(), right.to_vec());
        self.say("1. The attacker gets coins to spend twice:");
        let Some((tokens, total)) = self.get_coins().await else {
            return Verdict {
                held: true,
                line: "the attacker could not get coins in time".into(),
            };
        };
        self.say(format!("   it has {total} coins"));
        let cut = command(
            self.options.relay.as_str(),
            &token,
            Command::Partition {
                groups: vec![left.clone(), right.clone()],
            },
        )
        .await;
        if !cut.as_ref().is_ok_and(|r| r.ok) {
            return Verdict {
                held: true,
                line: format!("the relay did not cut the network: {cut:?}"),
            };
        }
        self.say(format!(
            "2. The teacher's relay cuts the network: {} | {}",
            left.join(","),
            right.join(",")
        ));
        let merchants = [
            Wallet::random().map_err(|e| e.to_string()),
            Wallet::random().map_err(|e| e.to_string()),
        ];
        let mut payments = Vec::new();
        for (merchant, side) in merchants.iter().zip([&left, &right]) {
            let Ok(merchant) = merchant else {
                return Verdict {
                    held: true,
                    line: "cannot make a merchant's key".into(),
                };
            };
            let Ok(transfer) = self.wallet.transfer(
                &mut OsRng,
                merchant.address(),
                total,
                tokens.clone(),
                self.options.profile.signing(),
            ) else {
                return Verdict {
                    held: true,
                    line: "cannot sign the payment".into(),
                };
            };
            let payload = encode_txn(&transfer.tokens, &transfer.txn);
            for name in side.iter() {
                self.session.publish_to(name, payload.clone());
            }
            payments.push(transfer.txn.hash());
        }
        self.say(format!(
            "3. It pays merchant A ({}) in the first half with {} and merchant B ({}) in the second with {}: the same {total} coins",
            left.join(","),
            payments[0].short(),
            right.join(","),
            payments[1].short()
        ));
        let patience = self.options.patience;
        let both = self
            .wait(patience, |a, _| payments.iter().all(|p| a.in_any_block(p)))
            .await;
        if !both {
            let _ = command(self.options.relay.as_str(), &token, Command::Heal).await;
            return Verdict {
                held: true,
                line: "the payments were not both mined in time; healed".into(),
            };
        }
        self.say("4. Each half put its payment in a block: each merchant sees 1 confirmation and, if it pays out now, hands over the goods");
        self.listen(Duration::from_secs_f64(self.options.target * 2.0))
            .await;
        let _ = command(self.options.relay.as_str(), &token, Command::Heal).await;
        self.say("5. The teacher heals the network; the halves' chains meet");
        let deep = |a: &Attacker, _: Option<&SessionEvent>| {
            payments
                .iter()
                .any(|p| a.confirmations(p).is_some_and(|c| c >= 3))
        };
        let settled = if self.toycoin() {
            // Nodes mine only what waits: coins minted through the backdoor,
            // one at a time, keep the blocks coming until it settles.
            let deadline = Instant::now() + self.options.patience;
            let mut settled = false;
            for k in 0.. {
                if settled || Instant::now() >= deadline {
                    break;
                }
                let probe = Transaction::coinbase(self.wallet.address().clone(), 1000 + k);
                let hash = probe.hash();
                self.publish(encode_txn(&[], &probe));
                let left = deadline.saturating_duration_since(Instant::now());
                self.wait(left, |a, e| deep(a, e) || a.confirmations(&hash).is_some())
                    .await;
                settled = deep(self, None);
            }
            settled
        } else {
            self.wait(self.a_few_blocks(), deep).await
        };
        let kept: Vec<bool> = payments
            .iter()
            .map(|p| self.confirmations(p).is_some())
            .collect();
        match (kept[0], kept[1], settled) {
            (true, true, _) => Verdict {
                held: false,
                line: "both payments of the same coins are on the best chain".into(),
            },
            (a, b, true) if a != b => {
                let (won, lost) = if a { ("A", "B") } else { ("B", "A") };
                Verdict {
                    held: true,
                    line: format!(
                        "merchant {won}'s payment stands; merchant {lost}'s vanished with its half's chain. Paid out after 1 confirmation, {lost} lost the goods; waiting for 6 would have been safe"
                    ),
                }
            }
            _ => Verdict {
                held: true,
                line: "the halves did not settle on one payment in time (too little mining?)"
                    .into(),
            },
        }
    }
}
