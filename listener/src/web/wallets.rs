//! The students' wallet page (`/wallet`) and its way to the class: a
//! browser cannot open the relay's TCP frames, so the web view passes a
//! page's requests to the relay and brings back the answers, as they are.
//!
//! The page trusts none of it: it checks every header for work and links,
//! every transaction by its Merkle path and every faucet answer by the
//! mint's signature itself (`wallet.js`), so a gateway that lied would be
//! caught like a node that lies. The gateway only bounds what a page can
//! make the class do, as the relay bounds a laptop:
//!
//! - a request is an `SPV ` request of at most [`MAX_REQUEST`] bytes, a
//!   payment a `TXN ` of at most [`MAX_TXN_PAYLOAD`] (anything else is
//!   refused with its reason, before it reaches the relay);
//! - per browser address: [`ASKS_BURST`] requests at once, then one per
//!   [`ASK_EVERY`]; [`SENDS_BURST`] payments, then one per [`SEND_EVERY`];
//!   the faucet as the relay allows a laptop ([`FAUCET_ASKS_BURST`], then
//!   one per [`FAUCET_ASK_EVERY`]); at most [`IN_FLIGHT_PER_ADDRESS`]
//!   requests waiting for answers, and [`MAX_IN_FLIGHT`] in all;
//! - answers: at most [`MAX_ANSWERS`] per request and [`MAX_ANSWER_BYTES`]
//!   in all, collected until [`MORE_ANSWERS`] after the first, or
//!   [`ASK_TIMEOUT`] with none.
//!
//! Each browser address gets a relay connection of its own, named at the
//! relay, as a student's laptop running `toycoin-wallet` would: the nodes
//! answer it alone (`reply_to`) and give it its own share of their
//! answers (2 a second each), so one page asking again and again does not
//! use up the class's. At most [`MAX_CONNECTIONS`] at once; one idle for
//! [`IDLE`] is closed. A request goes out under an id of the gateway's
//! that ends with the page's, so that a page sees only the answers to its
//! own questions.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::json;
use tokio::sync::{mpsc, oneshot, watch};
use toycoin_common::block::BlockHeader;
use toycoin_common::control::{encode_hello, HELLO_TOPIC};
use toycoin_common::hash::BlockHash;
use toycoin_common::message::{encode_txn, Message, TXN_TAG};
use toycoin_common::network::Network;
use toycoin_common::per_address::AddressBuckets;
use toycoin_common::relay::RelayClient;
use toycoin_common::spv::{
    HeaderWire, SpvMsg, FAUCET_ASKS_BURST, FAUCET_ASK_EVERY, MAX_HEADERS, MAX_LOCATOR, MAX_REQUEST,
    SPV_TAG,
};

use super::limit;
use super::Shared;

/// The page, embedded: a classroom may be offline.
const WALLET_HTML: &str = include_str!("wallet.html");
/// The page's checks and keys: SHA-512, RSA-PSS, headers, Merkle paths.
const WALLET_JS: &str = include_str!("wallet.js");

/// Requests one browser address may send at once, then one per
/// [`ASK_EVERY`].
pub const ASKS_BURST: f64 = 20.0;
pub const ASK_EVERY: Duration = Duration::from_millis(200);
/// Payments one browser address may send at once, then one per
/// [`SEND_EVERY`].
pub const SENDS_BURST: f64 = 5.0;
pub const SEND_EVERY: Duration = Duration::from_secs(2);
/// Requests one address may have waiting for answers.
pub const IN_FLIGHT_PER_ADDRESS: usize = 4;
/// Requests waiting for answers, from every page.
pub const MAX_IN_FLIGHT: usize = 128;
/// Answers kept per request (one per node that answers).
pub const MAX_ANSWERS: usize = 8;
/// Bytes of answers kept per request.
pub const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;
/// How long to wait for more answers after the first: a liar answers at
/// once, and the honest nodes' answers must still be heard (a page minds
/// a second less than a terminal does).
pub const MORE_ANSWERS: Duration = Duration::from_secs(1);
/// How long to wait for a first answer.
pub const ASK_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest id a page may give a request (the gateway adds its own part).
pub const MAX_PAGE_ID: usize = 12;
/// Largest payment a page may send: a transfer spending some fifty coins
/// (a `TXN ` may be larger; a page has no need to).
pub const MAX_PAYMENT: usize = 64 * 1024;
/// Largest body the gateway reads.
pub const MAX_BODY: usize = MAX_PAYMENT;
/// Relay connections the gateway holds at once (one per browser address).
pub const MAX_CONNECTIONS: usize = 96;
/// A browser address's connection is closed after this long without a
/// request.
pub const IDLE: Duration = Duration::from_secs(60);

/// The best chain's headers as the listener follows it, oldest first,
/// with each one's height by hash: what the pages take headers from.
#[derive(Debug, Default)]
pub struct BestHeaders {
    pub headers: Vec<BlockHeader>,
    pub heights: HashMap<BlockHash, usize>,
}

impl BestHeaders {
    /// The headers of a chain, oldest first.
    pub fn new(headers: Vec<BlockHeader>) -> BestHeaders {
        let heights = headers
            .iter()
            .enumerate()
            .map(|(i, h)| (h.this_hash, i))
            .collect();
        BestHeaders { headers, heights }
    }

    /// The tip's hash (none before the first block).
    pub fn tip(&self) -> Option<BlockHash> {
        self.headers.last().map(|h| h.this_hash)
    }

    /// At most [`MAX_HEADERS`] headers after the first of `locator` on
    /// this chain (from the first block when none is), as a node answers.
    pub fn after(&self, locator: &[BlockHash]) -> &[BlockHeader] {
        let from = locator
            .iter()
            .find_map(|h| self.heights.get(h))
            .map_or(0, |&height| height + 1);
        let from = from.min(self.headers.len());
        let to = (from + MAX_HEADERS).min(self.headers.len());
        &self.headers[from..to]
    }
}

/// What the gateway needs to reach the class.
#[derive(Clone, Debug)]
pub struct Wallets {
    /// The relay, `host:port`.
    pub relay: String,
    pub topic: String,
    pub network: Network,
    /// The best chain's headers, as the listener follows it.
    pub headers: watch::Receiver<Arc<BestHeaders>>,
}

enum Job {
    Ask {
        request: SpvMsg,
        answers: oneshot::Sender<Vec<Bytes>>,
    },
    Send(Bytes),
}

/// The gateway: the limits per browser, and the task that talks to the
/// relay.
pub struct Gateway {
    wallets: Wallets,
    /// The relay connections' tasks, by browser address.
    connections: Mutex<HashMap<IpAddr, mpsc::Sender<Job>>>,
    network: String,
    asks: AddressBuckets,
    sends: AddressBuckets,
    faucet: AddressBuckets,
    in_flight: Mutex<HashMap<IpAddr, usize>>,
    /// The page's address for students, and its QR code.
    pub student_url: String,
    qr_svg: String,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("student_url", &self.student_url)
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// Starts the gateway's relay task; `local` is where the view listens.
    pub fn start(wallets: Wallets, local: SocketAddr) -> Gateway {
        let profile = wallets.network.profile();
        let student_url = student_url(local);
        let network = json!({
            "student_url": student_url,
            "kind": profile.kind.name(),
            "target_ms": profile.target_ms,
            "genesis": toycoin_common::spv::block_hash_text(&profile.genesis),
            "mint": profile.mint.map(|m| m.to_hex()),
            "mint_fingerprint": profile.mint.map(|m| toycoin_common::wallet::fingerprint_of(&m)),
            "id": wallets.network.id().short(),
            "join_code": wallets.network.join_code(),
            "describe": wallets.network.describe(),
            "rules": {
                "level": matches!(profile.rules.difficulty, toycoin_common::profile::DifficultyRule::Level),
                "timestamps": profile.rules.timestamps,
                "work_per_bit": profile.rules.work_per_bit,
                "amounts_signed": matches!(profile.rules.signing, toycoin_common::profile::Signing::Amounts),
            },
        })
        .to_string();
        let qr_svg = qrcode::QrCode::new(student_url.as_bytes())
            .map(|code| {
                code.render::<qrcode::render::svg::Color>()
                    .min_dimensions(160, 160)
                    .build()
            })
            .unwrap_or_default();
        Gateway {
            wallets,
            connections: Mutex::default(),
            network,
            asks: AddressBuckets::new(ASKS_BURST, ASK_EVERY),
            sends: AddressBuckets::new(SENDS_BURST, SEND_EVERY),
            faucet: AddressBuckets::new(FAUCET_ASKS_BURST, FAUCET_ASK_EVERY),
            in_flight: Mutex::default(),
            student_url,
            qr_svg,
        }
    }

    /// Hands `job` to the relay connection of browser address `ip`,
    /// opened if it has none (or its last one closed when idle).
    fn submit(&self, ip: IpAddr, job: Job) -> Result<(), &'static str> {
        let mut map = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        let job = match map.get(&ip) {
            Some(tx) => match tx.try_send(job) {
                Ok(()) => return Ok(()),
                Err(mpsc::error::TrySendError::Full(_)) => return Err("the gateway is busy"),
                Err(mpsc::error::TrySendError::Closed(job)) => job,
            },
            None => job,
        };
        map.retain(|_, tx| !tx.is_closed());
        if map.len() >= MAX_CONNECTIONS {
            return Err("too many browsers at once: try again in a minute");
        }
        let (tx, rx) = mpsc::channel(2 * IN_FLIGHT_PER_ADDRESS + SENDS_BURST as usize);
        let _ = tx.try_send(job);
        tokio::spawn(relay_task(self.wallets.clone(), rx));
        map.insert(ip, tx);
        Ok(())
    }

    fn in_flight(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        self.in_flight.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A place for one more request from `ip`, given back on drop.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<InFlight> {
        let mut map = self.in_flight();
        let total: usize = map.values().sum();
        let mine = map.entry(ip).or_default();
        if *mine >= IN_FLIGHT_PER_ADDRESS || total >= MAX_IN_FLIGHT {
            return None;
        }
        *mine += 1;
        Some(InFlight {
            gateway: self.clone(),
            ip,
        })
    }
}

struct InFlight {
    gateway: Arc<Gateway>,
    ip: IpAddr,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut map = self.gateway.in_flight();
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

/// The wallet page's address for students, for a view listening on
/// `local`.
pub fn student_url(local: SocketAddr) -> String {
    format!("http://{}/wallet", student_host(local))
}

/// The host students reach the view at: the address it listens on, or
/// for a view on every interface, the address this machine reaches other
/// machines from (no packet is sent), or failing that, 127.0.0.1.
fn student_host(local: SocketAddr) -> String {
    let ip = local.ip();
    if !ip.is_unspecified() {
        return local.to_string();
    }
    // Any address outside, by the default route, then the private ranges
    // a classroom's network without one may use.
    let lan = [
        "8.8.8.8:9",
        "10.255.255.254:9",
        "192.168.255.254:9",
        "172.31.255.254:9",
    ]
    .iter()
    .find_map(|outside| {
        let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
        socket.connect(outside).ok()?;
        let ip = socket.local_addr().ok()?.ip();
        (!ip.is_unspecified() && !ip.is_loopback()).then_some(ip)
    });
    match lan {
        Some(ip) => SocketAddr::new(ip, local.port()).to_string(),
        None => format!("127.0.0.1:{}", local.port()),
    }
}

/// One browser address's side at the relay: a connection, named, that
/// publishes its pages' requests and payments and routes the answers back
/// by id. It connects again when the relay goes away, and ends after
/// [`IDLE`] without a request.
async fn relay_task(wallets: Wallets, mut jobs: mpsc::Receiver<Job>) {
    let name = format!(
        "web-wallet-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let mut asked: u64 = 0;
    loop {
        let client = match RelayClient::connect(wallets.relay.as_str(), &wallets.topic).await {
            Ok(client) => client,
            Err(e) => {
                tracing::warn!("wallet pages: cannot reach the relay: {e}");
                if refuse_for(&mut jobs, Duration::from_secs(2)).await {
                    return;
                }
                continue;
            }
        };
        let (mut rx, mut tx) = client.into_split();
        if tx.publish(HELLO_TOPIC, &encode_hello(&name)).await.is_err() {
            continue;
        }
        let mut pending: HashMap<String, Pending> = HashMap::new();
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        let mut idle_at = tokio::time::Instant::now() + IDLE;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(idle_at), if pending.is_empty() => return,
                job = jobs.recv() => {
                    let Some(job) = job else { return };
                    idle_at = tokio::time::Instant::now() + IDLE;
                    let sent = match job {
                        Job::Ask { mut request, answers } => {
                            asked += 1;
                            let id = format!("{name}-{asked}-{}", request.id());
                            request.set_id(id.clone());
                            request.set_reply_to(Some(name.clone()));
                            pending.insert(id, Pending::new(answers));
                            tx.publish(&wallets.topic, &request.encode()).await
                        }
                        Job::Send(frame) => tx.publish(&wallets.topic, &frame).await,
                    };
                    if sent.is_err() {
                        break;
                    }
                }
                frame = rx.recv() => {
                    let Ok(Some(frame)) = frame else { break };
                    if !frame.starts_with(SPV_TAG) {
                        continue;
                    }
                    let Ok(msg) = SpvMsg::decode(&frame) else { continue };
                    if msg.is_request() {
                        continue;
                    }
                    if let Some(p) = pending.get_mut(msg.id()) {
                        p.take(frame.slice(SPV_TAG.len()..));
                    }
                }
                _ = tick.tick() => {
                    let now = Instant::now();
                    let done: Vec<String> = pending
                        .iter()
                        .filter(|(_, p)| p.done(now))
                        .map(|(id, _)| id.clone())
                        .collect();
                    for id in done {
                        if let Some(p) = pending.remove(&id) {
                            let _ = p.reply.send(p.answers);
                        }
                    }
                }
            }
        }
        tracing::warn!("wallet pages: lost the relay; connecting again");
        // What was waiting gets what it had (the page says no answer).
        for (_, p) in pending.drain() {
            let _ = p.reply.send(p.answers);
        }
    }
}

/// Answers every job "no answer" for `wait`; `true` when the view is
/// going away.
async fn refuse_for(jobs: &mut mpsc::Receiver<Job>, wait: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, jobs.recv()).await {
            Err(_) => return false,
            Ok(None) => return true,
            Ok(Some(Job::Ask { answers, .. })) => {
                let _ = answers.send(Vec::new());
            }
            Ok(Some(Job::Send(_))) => {}
        }
    }
}

struct Pending {
    reply: oneshot::Sender<Vec<Bytes>>,
    answers: Vec<Bytes>,
    bytes: usize,
    asked: Instant,
    first: Option<Instant>,
}

impl Pending {
    fn new(reply: oneshot::Sender<Vec<Bytes>>) -> Pending {
        Pending {
            reply,
            answers: Vec::new(),
            bytes: 0,
            asked: Instant::now(),
            first: None,
        }
    }

    fn take(&mut self, answer: Bytes) {
        if self.answers.len() >= MAX_ANSWERS || self.bytes + answer.len() > MAX_ANSWER_BYTES {
            return;
        }
        self.first.get_or_insert_with(Instant::now);
        self.bytes += answer.len();
        self.answers.push(answer);
    }

    fn done(&self, now: Instant) -> bool {
        self.reply.is_closed()
            || match self.first {
                Some(first) => now >= first + MORE_ANSWERS,
                None => now >= self.asked + ASK_TIMEOUT,
            }
    }
}

fn refused(status: StatusCode, why: impl Into<String>) -> Response {
    (status, why.into()).into_response()
}

fn no_wallets() -> Response {
    refused(StatusCode::NOT_FOUND, "this view serves no wallet pages")
}

/// The refusal of a body of more than `max` bytes (`what`: "a request").
fn too_large(len: usize, max: usize, what: &str) -> Option<Response> {
    (len > max).then(|| {
        refused(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("{what} is at most {max} bytes"),
        )
    })
}

/// Takes one of `peer`'s places in `buckets` (this machine is never
/// held back), or the refusal, saying `why`, where none is left.
fn over_rate(buckets: &AddressBuckets, peer: &limit::Peer, why: &str) -> Option<Response> {
    (!peer.this_machine && !buckets.try_take(peer.addr.ip(), Instant::now()))
        .then(|| refused(StatusCode::TOO_MANY_REQUESTS, why.to_owned()))
}

const TOO_MANY_REQUESTS: &str = "too many requests from this address: wait a moment";

/// `/wallet`: the page.
pub(super) async fn page(State(shared): State<Shared>) -> Response {
    if shared.wallets.is_none() {
        return no_wallets();
    }
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        WALLET_HTML,
    )
        .into_response()
}

/// `/wallet/wallet.js`: the page's code.
pub(super) async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        WALLET_JS,
    )
        .into_response()
}

/// `/wallet/qr.svg`: the page's address as a QR code, for the projector.
pub(super) async fn qr(State(shared): State<Shared>) -> Response {
    match &shared.wallets {
        Some(g) => ([(header::CONTENT_TYPE, "image/svg+xml")], g.qr_svg.clone()).into_response(),
        None => no_wallets(),
    }
}

/// `/api/wallet/network`: the network's rules, for the page's checks.
pub(super) async fn network(State(shared): State<Shared>) -> Response {
    match &shared.wallets {
        Some(g) => (
            [(header::CONTENT_TYPE, "application/json")],
            g.network.clone(),
        )
            .into_response(),
        None => no_wallets(),
    }
}

/// `/api/wallet/ask`: one `SPV ` request (its JSON, without the tag);
/// answers the JSON array of the answers the nodes gave.
pub(super) async fn ask(
    State(shared): State<Shared>,
    ConnectInfo(peer): ConnectInfo<limit::Peer>,
    body: Bytes,
) -> Response {
    let Some(g) = shared.wallets.clone() else {
        return no_wallets();
    };
    let ip = peer.addr.ip();
    if let Some(refusal) = too_large(SPV_TAG.len() + body.len(), MAX_REQUEST, "a request") {
        return refusal;
    }
    let mut framed = SPV_TAG.to_vec();
    framed.extend_from_slice(&body);
    let request = match SpvMsg::decode_request(&framed) {
        Ok(Some(r)) => r,
        Ok(None) => return refused(StatusCode::BAD_REQUEST, "not a request"),
        Err(e) => return refused(StatusCode::BAD_REQUEST, e),
    };
    if request.id().len() > MAX_PAGE_ID {
        return refused(
            StatusCode::BAD_REQUEST,
            format!("a page's request id is at most {MAX_PAGE_ID} bytes"),
        );
    }
    if let Some(refusal) = over_rate(&g.asks, &peer, TOO_MANY_REQUESTS) {
        return refusal;
    }
    if matches!(request, SpvMsg::Faucet { .. }) {
        let why = format!(
            "this address asked the faucet {FAUCET_ASKS_BURST} times in {} s: wait",
            FAUCET_ASK_EVERY.as_secs() * FAUCET_ASKS_BURST as u64
        );
        if let Some(refusal) = over_rate(&g.faucet, &peer, &why) {
            return refusal;
        }
    }
    let Some(_place) = g.admit(ip) else {
        return refused(
            StatusCode::TOO_MANY_REQUESTS,
            "too many requests waiting for answers: wait for them",
        );
    };
    let (reply, answers) = oneshot::channel();
    if let Err(why) = g.submit(
        ip,
        Job::Ask {
            request,
            answers: reply,
        },
    ) {
        return refused(StatusCode::SERVICE_UNAVAILABLE, why);
    }
    let answers = answers.await.unwrap_or_default();
    let mut body = Vec::with_capacity(2 + answers.iter().map(|a| a.len() + 1).sum::<usize>());
    body.push(b'[');
    for (i, a) in answers.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(a);
    }
    body.push(b']');
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// `/api/wallet/headers`: the best chain's headers after the first hash
/// of the page's locator it knows (`{"locator": [...]}`, newest first, as
/// in a `get-headers`), answered by the view itself as a node would:
/// `{"kind": "headers", "headers": [...]}`. The page checks them as it
/// checks a node's.
pub(super) async fn headers(
    State(shared): State<Shared>,
    ConnectInfo(peer): ConnectInfo<limit::Peer>,
    body: Bytes,
) -> Response {
    let Some(g) = shared.wallets.clone() else {
        return no_wallets();
    };
    if let Some(refusal) = too_large(body.len(), MAX_REQUEST, "a request") {
        return refusal;
    }
    let locator: Vec<String> = match serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| serde_json::from_value(v.get("locator")?.clone()).ok())
    {
        Some(locator) => locator,
        None => {
            return refused(
                StatusCode::BAD_REQUEST,
                "headers: give {\"locator\": [base64 hashes, newest first]}",
            )
        }
    };
    if locator.len() > MAX_LOCATOR {
        return refused(
            StatusCode::BAD_REQUEST,
            format!("a locator of at most {MAX_LOCATOR} hashes"),
        );
    }
    if let Some(refusal) = over_rate(&g.asks, &peer, TOO_MANY_REQUESTS) {
        return refusal;
    }
    let locator: Vec<BlockHash> = locator
        .iter()
        .filter_map(|h| toycoin_common::spv::block_hash(h).ok())
        .collect();
    let best = g.wallets.headers.borrow().clone();
    let headers: Vec<HeaderWire> = best
        .after(&locator)
        .iter()
        .map(HeaderWire::from_header)
        .collect();
    let answer = json!({ "kind": "headers", "headers": headers });
    (
        [(header::CONTENT_TYPE, "application/json")],
        answer.to_string(),
    )
        .into_response()
}

/// `/api/wallet/send`: one payment (a `TXN ` frame's JSON, without the
/// tag), passed to the class if it decodes.
pub(super) async fn send(
    State(shared): State<Shared>,
    ConnectInfo(peer): ConnectInfo<limit::Peer>,
    body: Bytes,
) -> Response {
    let Some(g) = shared.wallets.clone() else {
        return no_wallets();
    };
    if let Some(refusal) = too_large(TXN_TAG.len() + body.len(), MAX_PAYMENT, "a payment") {
        return refusal;
    }
    if let Some(refusal) = over_rate(
        &g.sends,
        &peer,
        "too many payments from this address: wait a moment",
    ) {
        return refusal;
    }
    let mut framed = TXN_TAG.to_vec();
    framed.extend_from_slice(&body);
    // Passed on as our programs write it (the page's JSON may be spaced
    // otherwise); the nodes judge it.
    let frame = match Message::decode(&Bytes::from(framed)) {
        Ok(Message::Txn(m)) => encode_txn(&m.tokens, &m.txn),
        Ok(_) => return refused(StatusCode::BAD_REQUEST, "not a payment"),
        Err(e) => return refused(StatusCode::BAD_REQUEST, e.to_string()),
    };
    if let Err(why) = g.submit(peer.addr.ip(), Job::Send(frame)) {
        return refused(StatusCode::SERVICE_UNAVAILABLE, why);
    }
    (StatusCode::ACCEPTED, "sent to the class").into_response()
}
