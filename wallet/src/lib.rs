//! toycoin-wallet: a student's own wallet that is also a light client.
//!
//! [`LightWallet`] keeps the key (from a file only its owner can read), a
//! chain of block headers ([`HeaderChain`], checked as a full node checks
//! them) and the transactions of its own address that a node proved to be
//! in that chain by a Merkle path. Its balance is what those proved
//! transactions leave unspent: a lying node can leave one out, but cannot
//! make the wallet count coins no block of the chain with the most work
//! holds. It asks and is answered with the `SPV ` frames
//! (`docs/spv.md`).

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;
use toycoin_common::chain::now_secs;
use toycoin_common::control::{encode_hello, HELLO_TOPIC};
use toycoin_common::hash::Txid;
use toycoin_common::message::{encode_txn, Message};
use toycoin_common::profile::Profile;
use toycoin_common::relay::RelayClient;
use toycoin_common::spv::{self, HeaderChain, HeadersTaken, Proved, SpvMsg};
use toycoin_common::transaction::{Address, OutputKind, Token, Transaction};
use toycoin_common::wallet::{self, fingerprint, Wallet};

/// How long to wait for more answers after the first one came.
pub const MORE_ANSWERS: Duration = Duration::from_millis(400);

/// What came of asking the network for headers or proofs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Heard {
    /// Answers taken.
    pub answers: usize,
    /// Answers (or items of one) refused, and why: a lying or broken node.
    pub refused: Vec<String>,
}

/// A light wallet connected to a relay.
#[derive(Debug)]
pub struct LightWallet {
    wallet: Wallet,
    profile: Profile,
    topic: String,
    client: RelayClient,
    headers: HeaderChain,
    /// Proved transactions of this wallet, by id.
    proved: BTreeMap<Txid, Proved>,
    requests: u64,
    /// The name this wallet gave the relay: answers come to it alone
    /// (`None` once a relay did not deliver them so: the original's).
    reply_to: Option<String>,
    /// Frames heard while waiting for something else: blocks keep the
    /// header chain current.
    pub blocks_heard: u64,
}

impl LightWallet {
    /// Connects to the relay at `relay` on `topic`.
    pub async fn connect(
        wallet: Wallet,
        relay: &str,
        topic: &str,
        profile: Profile,
    ) -> Result<LightWallet, String> {
        let mut client = RelayClient::connect(relay, topic)
            .await
            .map_err(|e| format!("cannot reach the relay at {relay}: {e}"))?;
        // A name, so that the nodes answer this wallet alone (`$to:`), not
        // the whole class.
        let name = format!(
            "w-{}-{}",
            wallet.fingerprint(),
            &uuid::Uuid::new_v4().simple().to_string()[..6]
        );
        client
            .publish(HELLO_TOPIC, &encode_hello(&name))
            .await
            .map_err(|e| format!("relay: {e}"))?;
        Ok(LightWallet {
            wallet,
            profile,
            topic: topic.to_owned(),
            client,
            headers: HeaderChain::new(profile),
            proved: BTreeMap::new(),
            requests: 0,
            reply_to: Some(name),
            blocks_heard: 0,
        })
    }

    pub fn wallet(&self) -> &Wallet {
        &self.wallet
    }

    pub fn headers(&self) -> &HeaderChain {
        &self.headers
    }

    /// This wallet's proved transactions, oldest block first.
    pub fn history(&self) -> Vec<&Proved> {
        let mut v: Vec<&Proved> = self.proved.values().collect();
        v.sort_by_key(|p| p.height);
        v
    }

    fn next_id(&mut self) -> String {
        self.requests += 1;
        format!(
            "{}-{}-{}",
            self.wallet.fingerprint(),
            self.requests,
            &uuid::Uuid::new_v4().simple().to_string()[..6]
        )
    }

    async fn publish(&mut self, payload: &[u8]) -> Result<(), String> {
        let topic = self.topic.clone();
        self.client
            .publish(&topic, payload)
            .await
            .map_err(|e| format!("relay: {e}"))
    }

    /// The next frame from the relay, or `None` once `deadline` passes.
    async fn recv_until(&mut self, deadline: Instant) -> Result<Option<Bytes>, String> {
        match tokio::time::timeout_at(deadline, self.client.recv()).await {
            Err(_) => Ok(None),
            Ok(Ok(Some(frame))) => Ok(Some(frame)),
            Ok(Ok(None)) => Err("the relay closed the connection".into()),
            Ok(Err(e)) => Err(format!("relay: {e}")),
        }
    }

    /// Sends `request` and collects the answers with its id: until
    /// [`MORE_ANSWERS`] after the first, or `timeout` with none. Blocks
    /// heard meanwhile extend the header chain.
    async fn ask(&mut self, mut request: SpvMsg, timeout: Duration) -> Result<Vec<SpvMsg>, String> {
        request.set_reply_to(self.reply_to.clone());
        let answers = self.ask_once(&request, timeout).await?;
        // Every node answers a header request: when none did, the relay
        // may know no `$to:` (the original's); answers to everyone, from
        // now on.
        if !answers.is_empty()
            || self.reply_to.is_none()
            || !matches!(request, SpvMsg::GetHeaders { .. })
        {
            return Ok(answers);
        }
        self.reply_to = None;
        request.set_reply_to(None);
        self.ask_once(&request, timeout).await
    }

    async fn ask_once(
        &mut self,
        request: &SpvMsg,
        timeout: Duration,
    ) -> Result<Vec<SpvMsg>, String> {
        let id = request.id().to_owned();
        self.publish(&request.encode()).await?;
        let mut answers = Vec::new();
        let mut deadline = Instant::now() + timeout;
        loop {
            let Some(frame) = self.recv_until(deadline).await? else {
                return Ok(answers);
            };
            if frame.starts_with(spv::SPV_TAG) {
                if let Ok(msg) = SpvMsg::decode(&frame) {
                    if msg.id() == id && !msg.is_request() {
                        if answers.is_empty() {
                            deadline = Instant::now() + MORE_ANSWERS;
                        }
                        answers.push(msg);
                    }
                }
            } else {
                self.on_frame(&frame);
            }
        }
    }

    /// A frame heard in passing: a new block's header is taken in.
    fn on_frame(&mut self, frame: &Bytes) {
        if let Ok(Message::Bloc(blocks)) = Message::decode(frame) {
            self.blocks_heard += 1;
            let headers: Vec<_> = blocks.into_iter().map(|b| b.header).collect();
            let _ = self.headers.receive(&headers, now_secs());
        }
    }

    /// Brings the header chain up to the best the nodes know: asks for
    /// headers after ours until no answer adds any. Headers that fail a
    /// check are refused with their reason.
    pub async fn sync(&mut self, timeout: Duration) -> Result<Heard, String> {
        let mut heard = Heard::default();
        loop {
            let id = self.next_id();
            let locator = self
                .headers
                .locator()
                .iter()
                .map(spv::block_hash_text)
                .collect();
            let answers = self
                .ask(
                    SpvMsg::GetHeaders {
                        id,
                        locator,
                        reply_to: None,
                    },
                    timeout,
                )
                .await?;
            if answers.is_empty() && heard.answers == 0 {
                return Err(format!(
                    "no node answered within {} s",
                    timeout.as_secs_f64()
                ));
            }
            let mut grew = false;
            for answer in answers {
                let SpvMsg::Headers { headers, .. } = answer else {
                    continue;
                };
                heard.answers += 1;
                let parsed: Result<Vec<_>, String> =
                    headers.iter().map(spv::HeaderWire::to_header).collect();
                let parsed = match parsed {
                    Ok(p) => p,
                    Err(e) => {
                        heard.refused.push(format!("headers: {e}"));
                        continue;
                    }
                };
                match self.headers.receive(&parsed, now_secs()) {
                    Ok(HeadersTaken::Adopted { .. }) => grew = true,
                    Ok(HeadersTaken::Ignored) => heard.refused.push(format!(
                        "{} headers ignored: no more work than the chain we have",
                        parsed.len()
                    )),
                    Ok(HeadersTaken::Orphan) => heard
                        .refused
                        .push("headers that follow none of ours: ignored".into()),
                    Ok(_) => {}
                    Err((i, e)) => heard.refused.push(format!("header {i}: {e}: ignored")),
                }
            }
            if !grew {
                return Ok(heard);
            }
        }
    }

    /// Asks the nodes for this wallet's transactions with their proofs;
    /// keeps every one that verifies against the header chain, from any
    /// node, and says why each other one was refused.
    pub async fn prove(&mut self, timeout: Duration) -> Result<Heard, String> {
        let id = self.next_id();
        let address = spv::address_text(self.wallet.address());
        let answers = self
            .ask(
                SpvMsg::GetProofs {
                    id,
                    address,
                    reply_to: None,
                },
                timeout,
            )
            .await?;
        let mut heard = Heard::default();
        let mine = self.wallet.address().clone();
        // A proof that no longer holds (a reorganisation) is dropped.
        let headers = &self.headers;
        self.proved
            .retain(|_, p| headers.header(p.height).map(|h| h.this_hash) == Some(p.block));
        for answer in answers {
            let SpvMsg::Proofs { items, .. } = answer else {
                continue;
            };
            heard.answers += 1;
            for item in &items {
                match self.headers.verify(item) {
                    Ok(p) if p.txn.receiver == mine || p.txn.sender == mine => {
                        self.proved.insert(p.txid, p);
                    }
                    Ok(p) => heard
                        .refused
                        .push(format!("transaction {}: not this wallet's", p.txid.short())),
                    Err(e) => heard.refused.push(e),
                }
            }
        }
        Ok(heard)
    }

    /// This wallet's unspent outputs among its proved transactions,
    /// oldest block first: outputs it owns that no proved transaction of
    /// its spends.
    pub fn unspent(&self) -> Vec<(Token, usize)> {
        let me = self.wallet.address();
        let spent: HashSet<Txid> = self
            .proved
            .values()
            .filter(|p| p.txn.sender == *me)
            .flat_map(|p| p.txn.previous_hashes.iter().copied())
            .collect();
        let mut out = Vec::new();
        for p in self.history() {
            if spent.contains(&p.txid) {
                continue;
            }
            if p.txn.receiver == *me && p.txn.receiver_value > 0 {
                out.push((p.txn.output(p.txid, OutputKind::Receiver), p.height));
            }
            if p.txn.sender == *me && p.txn.sender_change > 0 && !p.txn.previous_hashes.is_empty() {
                out.push((p.txn.output(p.txid, OutputKind::Change), p.height));
            }
        }
        out
    }

    /// The sum of [`LightWallet::unspent`].
    pub fn balance(&self) -> i64 {
        self.unspent().iter().map(|(t, _)| t.value).sum()
    }

    /// A classmate's address from its fingerprint (as every program
    /// prints wallets): asked of the nodes, and kept only if it has that
    /// fingerprint.
    pub async fn find_address(
        &mut self,
        wanted: &str,
        timeout: Duration,
    ) -> Result<Address, String> {
        let id = self.next_id();
        let answers = self
            .ask(
                SpvMsg::GetAddress {
                    id,
                    fingerprint: wanted.to_owned(),
                    reply_to: None,
                },
                timeout,
            )
            .await?;
        answers
            .into_iter()
            .filter_map(|a| match a {
                SpvMsg::Address { address, .. } => spv::address_from_text(&address).ok(),
                _ => None,
            })
            .find(|a| wallet::fingerprint_matches(a, wanted))
            .ok_or_else(|| {
                format!("no node knows wallet {wanted} (it must have been paid once): give its whole address")
            })
    }

    /// Pays `amount` to `to` with proved unspent outputs, oldest first, as
    /// many as needed (the rest comes back as change); sends it. Signed as
    /// the profile requires.
    pub async fn pay(&mut self, to: &Address, amount: i64) -> Result<Transaction, String> {
        let unspent = self.unspent().into_iter().map(|(token, _)| token).collect();
        let tokens = wallet::tokens_to_pay(unspent, amount);
        let sum: i64 = tokens.iter().map(|t| t.value).sum();
        if sum < amount {
            return Err(format!(
                "this wallet has {sum} proved coins, fewer than {amount}"
            ));
        }
        let m = self
            .wallet
            .transfer(
                &mut rand::thread_rng(),
                to,
                amount,
                tokens,
                self.profile.signing(),
            )
            .map_err(|e| e.to_string())?;
        self.publish(&encode_txn(&m.tokens, &m.txn)).await?;
        Ok(m.txn)
    }

    /// Asks the class's faucet (the oracle's `--faucet`) for coins; its
    /// answer: the grant's id and value, or why not.
    pub async fn faucet(&mut self, timeout: Duration) -> Result<(String, i64), String> {
        let address = self.wallet.address().clone();
        self.faucet_to(&address, timeout).await
    }

    /// Asks the faucet for coins for `address` (this wallet's, as
    /// [`LightWallet::faucet`] does, or any other).
    pub async fn faucet_to(
        &mut self,
        address: &Address,
        timeout: Duration,
    ) -> Result<(String, i64), String> {
        let id = self.next_id();
        let address = spv::address_text(address);
        let answers = self
            .ask(
                SpvMsg::Faucet {
                    id,
                    address,
                    reply_to: None,
                },
                timeout,
            )
            .await?;
        // In steady only the network's mint's signed answer counts: a
        // classmate hears the request too, and could answer it first.
        let heard = answers.len();
        let answers: Vec<SpvMsg> = match self.profile.mint {
            Some(mint) => answers
                .into_iter()
                .filter(|a| spv::check_granted(a, &mint).is_ok())
                .collect(),
            None => answers,
        };
        if answers.is_empty() && heard > 0 {
            return Err(format!(
                "{heard} answer{} ignored: not signed by the mint (a classmate's forgery?)",
                if heard == 1 { "" } else { "s" }
            ));
        }
        match answers.into_iter().next() {
            Some(SpvMsg::Granted {
                txn: Some(txn),
                value,
                ..
            }) => Ok((txn, value)),
            Some(SpvMsg::Granted {
                refused: Some(why), ..
            }) => Err(format!("the faucet said no: {why}")),
            _ => Err(format!(
                "no faucet answered within {} s (the teacher starts one: toycoin-oracle --faucet N)",
                timeout.as_secs_f64()
            )),
        }
    }

    /// Waits for the next block (its header taken in), up to `timeout`.
    pub async fn next_block(&mut self, timeout: Duration) -> Result<bool, String> {
        let deadline = Instant::now() + timeout;
        let before = self.headers.len();
        loop {
            let Some(frame) = self.recv_until(deadline).await? else {
                return Ok(false);
            };
            self.on_frame(&frame);
            if self.headers.len() != before {
                return Ok(true);
            }
        }
    }
}

/// One line for a proved transaction: "confirmed in block h, k
/// confirmations, proved by a Merkle path of d hashes".
pub fn describe(p: &Proved, headers: &HeaderChain, me: &Address) -> String {
    let t = &p.txn;
    let what = if t.sender == *me && t.receiver == *me {
        format!("{} to itself", t.receiver_value)
    } else if t.sender == *me {
        format!(
            "paid {} to wallet {}",
            t.receiver_value,
            fingerprint(&t.receiver)
        )
    } else if t.previous_hashes.is_empty() {
        format!(
            "got {} from the mint (wallet {})",
            t.receiver_value,
            fingerprint(&t.sender)
        )
    } else {
        format!(
            "got {} from wallet {}",
            t.receiver_value,
            fingerprint(&t.sender)
        )
    };
    let k = headers.confirmations(p.height);
    format!(
        "txn {} {what}: confirmed in block {}, {k} confirmation{}, proved by a Merkle path of {} hash{}",
        p.txid.short(),
        p.height,
        if k == 1 { "" } else { "s" },
        p.path_len,
        if p.path_len == 1 { "" } else { "es" }
    )
}
