//! The relay server: accepts connections, runs one handler per client, and
//! shuts down cleanly.
//!
//! A handler reads the client's subscription (within a time limit), then
//! alternating topic and data frames, publishing each pair through the
//! [`Hub`]. Its writer task sends the client what the hub queues for it.
//! Any protocol error drops that client with a one-line reason. Everything
//! the relay holds for clients is charged to one memory [`Budget`] first;
//! a frame left half-sent is dropped after the frame timeout; one address
//! may hold only so many connections.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use toycoin_common::control::{
    check_name, new_challenge, Challenge, Hello, Request, CTL_TOPIC, HELLO_TOPIC, MAX_REQUEST,
    ORDER_PREFIX, RESERVED, TO_PREFIX,
};
use toycoin_common::frame::{FrameCodec, FrameError, DEFAULT_MAX_FRAME_LEN};
use toycoin_common::log::TRAFFIC;
use toycoin_common::network::{encode_answer, NETWORK_TOPIC};
use tracing::{info, warn};

use crate::budget::Budget;
use crate::control::{encode_reply, execute, refused, Guesses, Teacher};
use crate::hub::{Hub, SlowPolicy, Subscriber};
use crate::names::{Claim, Names};
use crate::queue::Queue;
use crate::reader::{FrameReader, ReadError, Readers};
use crate::record::{write_journal, Recorder};
use crate::stats::{Snapshot, Stats};
use crate::writer::write_loop;
use toycoin_common::journal::{JournalWriter, Kind};
use toycoin_common::per_address::AddressBuckets;

/// Connections the kernel may hold waiting for `accept`. The standard
/// library's 128 is too few when a class starts its nodes at once: a full
/// queue silently drops handshakes, which then take seconds to be retried.
pub const LISTEN_BACKLOG: u32 = 1024;

/// Binds a listening socket for the relay on `addr` (a `host:port`, resolved
/// like `TcpListener::bind`), with [`LISTEN_BACKLOG`].
pub async fn bind(addr: impl tokio::net::ToSocketAddrs) -> io::Result<TcpListener> {
    let mut last = io::Error::new(io::ErrorKind::InvalidInput, "no address to bind");
    for addr in tokio::net::lookup_host(addr).await? {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        match socket
            .bind(addr)
            .and_then(|()| socket.listen(LISTEN_BACKLOG))
        {
            Ok(listener) => return Ok(listener),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Longest topic name accepted.
pub const MAX_TOPIC_LEN: usize = 256;

/// Default memory budget: fits a teacher's laptop.
pub const DEFAULT_MEMORY: usize = 256 * 1024 * 1024;

/// Default bytes queued per subscriber: 30 stalled subscribers, even on 30
/// topics of their own, hold less than the default budget.
pub const DEFAULT_QUEUE_BYTES: usize = 8 * 1024 * 1024;

/// Default connections per address: a class of 30 behind one NAT address,
/// each with a node, a listener and an oracle, fits several times over,
/// and one laptop still cannot take a quarter of the slots.
pub const DEFAULT_MAX_PER_ADDRESS: usize = 200;

/// The relay's settings.
#[derive(Clone, Debug)]
pub struct RelayConfig {
    /// Largest frame payload accepted from a client.
    pub max_frame_len: usize,
    /// Most connections open at once; more are closed at once.
    pub max_connections: usize,
    /// Most connections from one IP address (a class behind one NAT
    /// address shares it).
    pub max_per_address: usize,
    /// Most bytes the relay holds for all clients together: queued
    /// messages and frames being read.
    pub memory: usize,
    /// Most messages queued for one subscriber (`usize::MAX` by default:
    /// no count limit; every message's place is charged to the budget).
    pub queue_messages: usize,
    /// Most payload bytes queued for one subscriber once the budget is
    /// half used: before that a subscriber merely behind loses nothing
    /// (one message of any size still fits an empty queue).
    pub queue_bytes: usize,
    /// Longest a frame in progress may go without receiving
    /// [`crate::reader::PROGRESS`] more bytes.
    pub frame_timeout: Duration,
    /// What happens to a subscriber whose queue is full.
    pub slow_policy: SlowPolicy,
    /// How long a new client has to send its subscription.
    pub subscribe_timeout: Duration,
    /// How often to print a summary line (`None`: never).
    pub summary_interval: Option<Duration>,
    /// Who may command the relay (`None`: nobody).
    pub teacher: Option<Teacher>,
    /// The class network, told to whoever asks (`$network`): the relay is
    /// the teacher's, so a student's program learns the network from it
    /// and not from a classmate. `None`: it tells none.
    pub network: Option<toycoin_common::network::Network>,
    /// Record every frame forwarded and every command into this journal
    /// (`--record`; [`toycoin_common::journal`]), and start a new file
    /// past `record_max` bytes.
    pub record: Option<std::path::PathBuf>,
    pub record_max: u64,
    /// A replay's timeline (`toycoin-replay`): the teacher's `hold`,
    /// `step`, `release`, `seek` and `speed` move it.
    pub replay: Option<Arc<crate::replay::Timeline>>,
}

impl Default for RelayConfig {
    fn default() -> RelayConfig {
        RelayConfig {
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
            max_connections: 1024,
            max_per_address: DEFAULT_MAX_PER_ADDRESS,
            memory: DEFAULT_MEMORY,
            queue_messages: usize::MAX,
            queue_bytes: DEFAULT_QUEUE_BYTES,
            frame_timeout: Duration::from_secs(10),
            slow_policy: SlowPolicy::Drop,
            subscribe_timeout: Duration::from_secs(10),
            summary_interval: Some(Duration::from_secs(10)),
            teacher: None,
            network: None,
            record: None,
            record_max: toycoin_common::journal::DEFAULT_MAX_BYTES,
            replay: None,
        }
    }
}

/// A relay: cheap to clone, so tests can look inside while it runs.
#[derive(Clone, Debug)]
pub struct Relay {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: RelayConfig,
    hub: Hub,
    budget: Arc<Budget>,
    readers: Arc<Readers>,
    stats: Arc<Stats>,
    /// Open connections per address, and those not yet subscribed.
    per_address: Mutex<HashMap<IpAddr, Slots>>,
    tracker: TaskTracker,
    shutdown: CancellationToken,
    next_id: AtomicU64,
    /// The relay's own tasks running (not connections').
    own_tasks: AtomicUsize,
    /// The answer to `$network`, encoded once: a flood of questions costs
    /// a queued copy of the same bytes each, on the asker's own queue.
    network_answer: Bytes,
    /// Refused commands per address, which slow further guesses.
    guesses: Guesses,
    /// The names bound to keys.
    names: Names,
    /// Each address's turns to ask the faucet.
    faucet_asks: AddressBuckets,
    /// The journal's recorder (`--record`), and its writer's end until
    /// `run` starts the writer.
    recorder: Option<Arc<Recorder>>,
    records: Mutex<Option<tokio::sync::mpsc::Receiver<toycoin_common::journal::Record>>>,
}

/// The id the relay publishes its own frames under (clients' ids start
/// at 1).
const OWN_ID: u64 = 0;

/// One address's connections.
#[derive(Debug, Default)]
struct Slots {
    /// Open connections, subscribed or not.
    held: usize,
    /// Those not subscribed yet, oldest first: their ids, and how to
    /// close them to make room.
    arriving: std::collections::VecDeque<(u64, Instant, CancellationToken)>,
}

/// Connections one address may hold unsubscribed for longer than
/// [`ARRIVAL_GRACE`]: one more closes the oldest of them, as does a new
/// connection from an address at its limit. Programs subscribe at once
/// (a burst of them is not held up); a student's idle connections cannot
/// hold places a classmate behind the same NAT address needs.
pub const MAX_ARRIVING_PER_ADDRESS: usize = 16;
/// How long a new connection may take to subscribe before it makes way
/// for newer ones from its address.
pub const ARRIVAL_GRACE: Duration = Duration::from_secs(1);

pub use toycoin_common::spv::{FAUCET_ASKS_BURST, FAUCET_ASK_EVERY};

/// Refused commands one connection may send before it is dropped.
pub const MAX_REFUSALS: u32 = 3;

/// One subscribed client, as its handler knows it.
#[derive(Debug)]
struct Conn {
    id: u64,
    peer: SocketAddr,
    /// It comes from the relay's own machine (the teacher's): its address
    /// is the one it reached the relay on.
    this_machine: bool,
    /// The topic it subscribed to.
    topic: Bytes,
    queue: Arc<Queue>,
    /// Its commands refused so far.
    refusals: u32,
    /// Whether it has named itself (once per connection: a rename costs a
    /// log line and a look at every client).
    named: bool,
    /// For a `$ctl` subscriber: the challenge its next command answers.
    challenge: String,
}

/// Why a client's connection ended.
enum Leave {
    /// The client closed between frames.
    Closed,
    /// The relay is shutting down.
    Shutdown,
    /// Disconnected as a slow consumer.
    Slow,
    /// Writing to the client failed.
    WriteFailed(String),
    /// The client broke the protocol; the reason says how.
    Bad(String),
}

/// Why a client may not send `data`: frames only the relay sends (an
/// order to a node, a replay's position), which programs believe because
/// no client can send them.
fn relay_only(data: &[u8]) -> Option<&'static str> {
    if data.starts_with(ORDER_PREFIX) {
        Some("sent a frame starting with $ORDER: only the relay gives orders")
    } else if data.starts_with(toycoin_common::timeline::PREFIX) {
        Some("sent a frame starting with $REPLAY: only a replay tells where it is")
    } else {
        None
    }
}

impl Leave {
    /// A read error: a reset or abort is the client leaving, not breaking
    /// the protocol.
    fn after_error(e: ReadError) -> Leave {
        match &e {
            ReadError::Frame(FrameError::Io(io))
                if matches!(
                    io.kind(),
                    io::ErrorKind::ConnectionReset
                        | io::ErrorKind::ConnectionAborted
                        | io::ErrorKind::BrokenPipe
                ) =>
            {
                Leave::Closed
            }
            _ => Leave::Bad(e.to_string()),
        }
    }
}

impl Relay {
    pub fn new(config: RelayConfig) -> Relay {
        let stats = Arc::new(Stats::default());
        let (recorder, records) = match config.record {
            Some(_) => {
                let (recorder, records) = Recorder::new();
                (Some(Arc::new(recorder)), Some(records))
            }
            None => (None, None),
        };
        let budget = Arc::new(Budget::new(config.memory));
        Relay {
            inner: Arc::new(Inner {
                hub: Hub::new(budget.clone(), config.slow_policy, stats.clone())
                    .recording(recorder.clone()),
                network_answer: Bytes::from(encode_answer(
                    config.network.as_ref(),
                    config.replay.is_some(),
                )),
                config,
                budget,
                readers: Arc::new(Readers::default()),
                stats,
                per_address: Mutex::new(HashMap::new()),
                tracker: TaskTracker::new(),
                shutdown: CancellationToken::new(),
                next_id: AtomicU64::new(1),
                own_tasks: AtomicUsize::new(0),
                guesses: Guesses::default(),
                names: Names::default(),
                faucet_asks: AddressBuckets::new(FAUCET_ASKS_BURST, FAUCET_ASK_EVERY),
                recorder,
                records: Mutex::new(records),
            }),
        }
    }

    /// The counters now.
    pub fn stats(&self) -> Snapshot {
        let mut snapshot = self.inner.stats.snapshot();
        snapshot.memory_used = self.inner.budget.used() as u64;
        snapshot.memory_limit = self.inner.budget.limit() as u64;
        snapshot
    }

    /// Who was shed or refused since the last summary (or the last call),
    /// as the next summary would name them.
    pub fn take_names(&self) -> crate::stats::Names {
        self.inner.stats.take_names()
    }

    /// The teacher's rules in force, in a few words (`None`: none).
    pub fn rules(&self) -> Option<String> {
        self.inner.hub.nemesis.describe()
    }

    /// Bytes held for clients now, charged to the budget.
    pub fn memory_used(&self) -> usize {
        self.inner.budget.used()
    }

    fn per_address(&self) -> MutexGuard<'_, HashMap<IpAddr, Slots>> {
        // Every update is one insert, change or remove: a poisoned lock is
        // still consistent.
        self.inner
            .per_address
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Claims a connection slot for connection `id` from `ip`, not yet
    /// subscribed: the token that closes it to make room for a newer one
    /// (at [`MAX_ARRIVING_PER_ADDRESS`], or at the per-address limit while
    /// some are not subscribed); `None` at the per-address limit with
    /// every connection subscribed.
    fn claim_address(&self, id: u64, ip: IpAddr) -> Option<CancellationToken> {
        let mut map = self.per_address();
        let slots = map.entry(ip).or_default();
        let now = Instant::now();
        let full = slots.held >= self.inner.config.max_per_address;
        let stale = slots
            .arriving
            .front()
            .is_some_and(|(_, at, _)| now.duration_since(*at) >= ARRIVAL_GRACE);
        if (full || slots.arriving.len() >= MAX_ARRIVING_PER_ADDRESS) && stale {
            if let Some((_, _, oldest)) = slots.arriving.pop_front() {
                // It gives its slot back as it leaves.
                oldest.cancel();
                self.inner.stats.refused_address(ip);
            }
        } else if full {
            return None;
        }
        slots.held += 1;
        let token = self.inner.shutdown.child_token();
        slots.arriving.push_back((id, now, token.clone()));
        Some(token)
    }

    /// Connection `id` from `ip` subscribed: it no longer makes way.
    fn subscribed(&self, id: u64, ip: IpAddr) {
        if let Some(slots) = self.per_address().get_mut(&ip) {
            slots.arriving.retain(|(i, _, _)| *i != id);
        }
    }

    fn release_address(&self, id: u64, ip: IpAddr) {
        let mut map = self.per_address();
        if let Some(slots) = map.get_mut(&ip) {
            slots.held -= 1;
            slots.arriving.retain(|(i, _, _)| *i != id);
            if slots.held == 0 {
                map.remove(&ip);
            }
        }
    }

    /// Offers `data` on `topic` as the relay itself (a replay's frames and
    /// positions), to every subscriber, never waiting.
    pub fn publish_own(&self, topic: &[u8], data: &Bytes) -> crate::hub::Delivery {
        self.inner.hub.publish(OWN_ID, topic, data, false, None)
    }

    /// Bytes waiting for the subscriber of `topic` furthest behind.
    pub fn most_waiting(&self, topic: &[u8]) -> usize {
        self.inner.hub.most_waiting(topic)
    }

    /// Subscribers of `topic` now.
    pub fn subscribers(&self, topic: &[u8]) -> usize {
        self.inner.hub.subscribers(topic)
    }

    /// Subscriptions `topic` has taken since it last had no subscriber,
    /// those that have already left included.
    pub fn joined(&self, topic: &[u8]) -> u64 {
        self.inner.hub.joined(topic)
    }

    /// Subscriptions held now, all topics together.
    pub fn subscriptions(&self) -> usize {
        self.inner.hub.subscriptions()
    }

    /// Topics with subscribers now.
    pub fn topics(&self) -> usize {
        self.inner.hub.topic_count()
    }

    /// Connection tasks (handlers and writers) running now: the relay's own
    /// (summaries, the delay line) are not counted.
    pub fn tasks(&self) -> usize {
        let own = self.inner.own_tasks.load(Ordering::Relaxed);
        self.inner.tracker.len().saturating_sub(own)
    }

    /// Spawns one of the relay's own tasks, which live as long as it runs.
    fn spawn_own(&self, task: impl Future<Output = ()> + Send + 'static) {
        let own = self.clone();
        own.inner.own_tasks.fetch_add(1, Ordering::Relaxed);
        self.inner.tracker.spawn(async move {
            task.await;
            own.inner.own_tasks.fetch_sub(1, Ordering::Relaxed);
        });
    }

    /// Accepts clients on `listener` until `shutdown` completes, then
    /// closes every client and returns once all their tasks have ended.
    pub async fn run(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> io::Result<()> {
        let inner = &self.inner;
        let permits = Arc::new(Semaphore::new(inner.config.max_connections));
        if let Some(every) = inner.config.summary_interval {
            let relay = self.clone();
            self.spawn_own(async move { relay.summaries(every).await });
        }
        let (relay, stop) = (self.clone(), inner.shutdown.clone());
        self.spawn_own(async move { relay.inner.hub.nemesis.run_delays(stop).await });
        let records = inner
            .records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let (Some(path), Some(records)) = (&inner.config.record, records) {
            let writer = JournalWriter::open(path, inner.config.record_max)?;
            let stop = inner.shutdown.clone();
            self.spawn_own(write_journal(records, writer, stop));
        }
        let mut backoff = Duration::from_millis(10);
        tokio::pin!(shutdown);
        loop {
            let accepted = tokio::select! {
                _ = &mut shutdown => break,
                accepted = listener.accept() => accepted,
            };
            match accepted {
                Ok((stream, peer)) => {
                    backoff = Duration::from_millis(10);
                    // Refusals are named in the next summary, once per
                    // address, not once per attempt.
                    let id = inner.next_id.fetch_add(1, Ordering::Relaxed);
                    let Some(arriving) = self.claim_address(id, peer.ip()) else {
                        inner.stats.refused_address(peer.ip());
                        continue;
                    };
                    match permits.clone().try_acquire_owned() {
                        Ok(permit) => {
                            let relay = self.clone();
                            let handled = async move {
                                relay.handle(stream, peer, id, arriving, permit).await
                            };
                            inner.tracker.spawn(handled);
                        }
                        Err(_) => {
                            self.release_address(id, peer.ip());
                            inner.stats.refused_address(peer.ip());
                        }
                    }
                }
                Err(e) => {
                    // E.g. out of file descriptors: wait, then go on.
                    warn!("Accept failed: {e}; retrying in {backoff:?}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            }
        }
        inner.shutdown.cancel();
        inner.tracker.close();
        inner.tracker.wait().await;
        Ok(())
    }

    async fn summaries(&self, every: Duration) {
        let mut before = self.stats();
        let mut at = Instant::now();
        loop {
            tokio::select! {
                _ = self.inner.shutdown.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
            let now = self.stats();
            let names = self.inner.stats.take_names();
            let rules = self.rules();
            if now.changed_since(&before) || names != Default::default() || rules.is_some() {
                info!(
                    "{}",
                    now.summary_since(&before, at.elapsed().as_secs_f64(), &names)
                );
            }
            // While the teacher bends the network, every summary says how.
            if let Some(rules) = rules {
                info!("Teacher's rules in force: {rules}");
            }
            before = now;
            at = Instant::now();
        }
    }

    async fn handle(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
        id: u64,
        arriving: CancellationToken,
        _permit: OwnedSemaphorePermit,
    ) {
        let stats = &self.inner.stats;
        stats.client_joined();
        let leave = self.serve(stream, peer, id, arriving).await;
        self.release_address(id, peer.ip());
        stats.client_left();
        match leave {
            Leave::Closed => info!(source = %peer.ip(), "Remote {peer} closed"),
            Leave::Shutdown => {}
            Leave::Slow => warn!(
                source = %peer.ip(),
                "Remote {peer} disconnected: too slow (its queue was full, or the relay needed the memory it held)"
            ),
            Leave::WriteFailed(e) => {
                info!(source = %peer.ip(), "Remote {peer} closed: write failed: {e}")
            }
            Leave::Bad(reason) => {
                stats.bad_client();
                warn!(source = %peer.ip(), "Remote {peer} dropped: {reason}");
            }
        }
    }

    async fn serve(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
        id: u64,
        arriving: CancellationToken,
    ) -> Leave {
        let config = &self.inner.config;
        let shutdown = &self.inner.shutdown;
        let _ = stream.set_nodelay(true);
        let this_machine = stream.local_addr().is_ok_and(|l| l.ip() == peer.ip());
        let (read, write) = stream.into_split();
        let mut reader = FrameReader::new(
            read,
            FrameCodec::new(config.max_frame_len),
            self.inner.budget.clone(),
            self.inner.readers.clone(),
            config.frame_timeout,
        );
        let hub = &self.inner.hub;

        let first = tokio::select! {
            _ = shutdown.cancelled() => return Leave::Shutdown,
            _ = arriving.cancelled() => return Leave::Bad(format!(
                "not subscribed within {ARRIVAL_GRACE:?}, and newer connections from its address needed its place"
            )),
            first = tokio::time::timeout(config.subscribe_timeout, reader.next(hub)) => first,
        };
        let topic = match first {
            Err(_) => {
                return Leave::Bad(format!(
                    "no subscription within {:?}",
                    config.subscribe_timeout
                ))
            }
            Ok(None) => return Leave::Closed,
            Ok(Some(Err(e))) => return Leave::after_error(e),
            Ok(Some(Ok(topic))) => topic,
        };
        let name = match check_topic(&topic) {
            Ok(name) => name.to_owned(),
            Err(e) => return Leave::Bad(format!("first frame is not a subscription: {e}")),
        };

        self.subscribed(id, peer.ip());
        let queue = Arc::new(Queue::within(
            config.queue_messages,
            config.queue_bytes,
            self.inner.budget.clone(),
        ));
        let kick = shutdown.child_token();
        let write = Arc::new(write);
        self.inner.hub.subscribe(
            topic.clone(),
            Subscriber {
                id,
                peer,
                queue: queue.clone(),
                socket: write.clone(),
                kick: kick.clone(),
            },
        );
        self.inner.hub.nemesis.join(id, peer, &name, queue.clone());
        info!(source = %peer.ip(), "Remote {peer} subscribed to {name}");
        let write_error = Arc::new(OnceLock::new());
        let writer = {
            let (stats, kick, write_error) =
                (self.inner.stats.clone(), kick.clone(), write_error.clone());
            let queue = queue.clone();
            self.inner.tracker.spawn(async move {
                if let Err(e) = write_loop(write, queue, stats, kick.clone()).await {
                    let _ = write_error.set(e.to_string());
                    kick.cancel();
                }
            })
        };

        let mut conn = Conn {
            id,
            peer,
            this_machine,
            topic: topic.clone(),
            queue: queue.clone(),
            refusals: 0,
            named: false,
            challenge: new_challenge(),
        };
        if topic == CTL_TOPIC.as_bytes() {
            // The challenge its first command answers (docs/control.md).
            let challenge = Challenge {
                challenge: conn.challenge.clone(),
            };
            let frame = serde_json::to_vec(&challenge).unwrap_or_default();
            self.inner.hub.send_direct(&queue, &Bytes::from(frame));
        }
        let leave = self.read_loop(&mut reader, &kick, &mut conn).await;
        self.inner.hub.unsubscribe(&topic, id);
        self.inner.hub.nemesis.leave(id);
        kick.cancel();
        let _ = writer.await;
        queue.close();
        // Without a reason of its own, the connection was told to leave:
        // by the shutdown, its failed writer, or the hub's slow policy.
        leave.unwrap_or_else(|| {
            if shutdown.is_cancelled() {
                Leave::Shutdown
            } else if let Some(e) = write_error.get() {
                Leave::WriteFailed(e.clone())
            } else {
                Leave::Slow
            }
        })
    }

    /// Reads (topic, data) pairs and publishes them until the client leaves
    /// or breaks the protocol (the reason), or is kicked (`None`).
    async fn read_loop(
        &self,
        reader: &mut FrameReader,
        kick: &CancellationToken,
        conn: &mut Conn,
    ) -> Option<Leave> {
        let hub = &self.inner.hub;
        loop {
            let topic = tokio::select! {
                _ = kick.cancelled() => return None,
                frame = reader.next(hub) => match frame {
                    None => return Some(Leave::Closed),
                    Some(Err(e)) => return Some(Leave::after_error(e)),
                    Some(Ok(topic)) => topic,
                },
            };
            let name = match check_topic(&topic) {
                Ok(name) => name,
                Err(e) => return Some(Leave::Bad(format!("expected a topic frame: {e}"))),
            };
            let data = tokio::select! {
                _ = kick.cancelled() => return None,
                frame = reader.next(hub) => match frame {
                    None => return Some(Leave::Bad(format!("closed after topic {name:?} without its data frame"))),
                    Some(Err(e)) => return Some(Leave::after_error(e)),
                    Some(Ok(data)) => data,
                },
            };
            if name.starts_with(RESERVED) {
                if let Err(leave) = self.reserved(conn, name, &data) {
                    return Some(leave);
                }
                continue;
            }
            if let Some(why) = relay_only(&data) {
                return Some(Leave::Bad(why.into()));
            }
            if let Err(why) = self.check_request(conn, &data) {
                warn!(source = %conn.peer.ip(), "Remote {}: dropped a request: {why}", conn.peer);
                continue;
            }
            let delivery = self
                .inner
                .hub
                .publish(conn.id, &topic, &data, reader.caught_up(), None);

            info!(
                target: TRAFFIC,
                source = %conn.peer.ip(),
                "Sending to {name}: {}... ({} subscribers)",
                preview(&data),
                delivery.delivered
            );
        }
    }
}

impl Relay {
    /// A light client's request names where its answers go (`reply_to`):
    /// it must be the asker's own name, or a student could have every node
    /// send a classmate answers it never asked for (docs/spv.md). And one
    /// address asks the faucet at most [`FAUCET_ASKS_BURST`] times at once,
    /// then once per [`FAUCET_ASK_EVERY`], however many wallets and
    /// connections it makes: a classmate's turn comes at once. (Not the
    /// teacher's machine, the relay's own.)
    fn check_request(&self, conn: &Conn, data: &[u8]) -> Result<(), String> {
        if !data.starts_with(toycoin_common::spv::SPV_TAG) || data.len() > MAX_REQUEST {
            return Ok(());
        }
        let Ok(Some(request)) = toycoin_common::spv::SpvMsg::decode_request(data) else {
            return Ok(());
        };
        if matches!(request, toycoin_common::spv::SpvMsg::Faucet { .. })
            && !conn.this_machine
            && !self
                .inner
                .faucet_asks
                .try_take(conn.peer.ip(), Instant::now())
        {
            return Err(format!(
                "{} asked the faucet more than {FAUCET_ASKS_BURST} times in {} s",
                conn.peer.ip(),
                FAUCET_ASK_EVERY.as_secs() * FAUCET_ASKS_BURST as u64
            ));
        }
        let Some(reply_to) = request.reply_to() else {
            return Ok(());
        };
        match self.inner.hub.nemesis.label(conn.id) {
            Some(own) if own == reply_to => Ok(()),
            Some(own) => Err(format!(
                "its answers would go to {reply_to}, and it is {own}"
            )),
            None => Err(format!(
                "its answers would go to {reply_to}, and it gave no name"
            )),
        }
    }

    /// A frame pair on one of the relay's own topics (`docs/control.md`):
    /// naming, sending to one client, a teacher's command.
    fn reserved(&self, conn: &mut Conn, topic: &str, data: &Bytes) -> Result<(), Leave> {
        let hub = &self.inner.hub;
        if topic == HELLO_TOPIC {
            if conn.named {
                return Err(Leave::Bad(format!(
                    "a second {HELLO_TOPIC}: a client names itself once"
                )));
            }
            if data.len() > MAX_REQUEST {
                return Err(Leave::Bad(format!(
                    "{HELLO_TOPIC} of {} bytes (at most {MAX_REQUEST})",
                    data.len()
                )));
            }
            conn.named = true;
            let hello: Hello = serde_json::from_slice(data)
                .map_err(|e| Leave::Bad(format!("unreadable {HELLO_TOPIC}: {e}")))?;
            check_name(&hello.name).map_err(|e| Leave::Bad(format!("{HELLO_TOPIC}: {e}")))?;
            let signed = match self
                .inner
                .names
                .claim(&hello, toycoin_common::chain::now_secs())
            {
                Claim::Owner => true,
                Claim::Unsigned => false,
                Claim::Refused(why) => {
                    warn!(
                        source = %conn.peer.ip(),
                        "Remote {} is not named {}: {why}",
                        conn.peer,
                        hello.name
                    );
                    return Ok(());
                }
            };
            let given = hub.nemesis.name(conn.id, &hello.name, signed);
            let proof = if signed { " (its key's)" } else { "" };
            info!(source = %conn.peer.ip(), "Remote {} is {given}{proof}", conn.peer);
            return Ok(());
        }
        if let Some(to) = topic.strip_prefix(TO_PREFIX) {
            check_name(to).map_err(|e| Leave::Bad(format!("{TO_PREFIX}: {e}")))?;
            if let Some(why) = relay_only(data) {
                return Err(Leave::Bad(why.into()));
            }
            if let Err(why) = self.check_request(conn, data) {
                warn!(source = %conn.peer.ip(), "Remote {}: dropped a request: {why}", conn.peer);
                return Ok(());
            }
            let delivery = hub.publish(conn.id, &conn.topic, data, false, Some(to));
            info!(
                target: TRAFFIC,
                source = %conn.peer.ip(),
                "Sending to {to} alone: {}... ({} subscribers)",
                preview(data),
                delivery.delivered
            );
            return Ok(());
        }
        if topic == NETWORK_TOPIC {
            // Answered to the asker alone, on its own connection: nobody
            // else can answer it.
            hub.send_direct(&conn.queue, &self.inner.network_answer);
            return Ok(());
        }
        if topic != CTL_TOPIC {
            return Err(Leave::Bad(format!(
                "topic {topic:?} is reserved for the relay (it knows {HELLO_TOPIC}, {TO_PREFIX}NAME, {NETWORK_TOPIC} and {CTL_TOPIC})"
            )));
        }
        let who = hub
            .nemesis
            .label(conn.id)
            .unwrap_or_else(|| conn.peer.to_string());
        // Whatever the outcome, the challenge is spent: the next command
        // answers a new one.
        let challenge = std::mem::replace(&mut conn.challenge, new_challenge());
        let (guesses, now) = (&self.inner.guesses, Instant::now());
        let mut reply = match (&self.inner.config.teacher, data.len() <= MAX_REQUEST) {
            (None, _) => refused("this relay takes no commands (it was started without controls)"),
            (Some(_), false) => refused(format!("a command is at most {MAX_REQUEST} bytes")),
            (Some(teacher), true) => match guesses.wait(conn.peer.ip(), now) {
                Some(wait) => {
                    conn.refusals += 1;
                    warn!(
                        source = %conn.peer.ip(),
                        "Remote {who}: command refused unread: too many refused from its address"
                    );
                    refused(format!(
                        "refused: too many refused commands from {}; wait {:.1} s",
                        conn.peer.ip(),
                        wait.as_secs_f64()
                    ))
                }
                None => match serde_json::from_slice::<Request>(data) {
                    Err(e) => refused(format!("unreadable command: {e}")),
                    Ok(request) => match teacher.allows(conn.peer, &challenge, &request) {
                        Err(why) => {
                            conn.refusals += 1;
                            guesses.refused(conn.peer.ip(), now);
                            warn!(source = %conn.peer.ip(), "Remote {who}: command refused: {why}");
                            refused(format!("refused: {why}"))
                        }
                        Ok(()) => {
                            let reply = execute(
                                hub,
                                teacher,
                                self.inner.config.replay.as_deref(),
                                request.command,
                            );
                            info!("Teacher ({who}): {}", reply.message);
                            if let Some(recorder) = &self.inner.recorder {
                                recorder.record(
                                    Kind::Command,
                                    CTL_TOPIC.as_bytes(),
                                    who.clone(),
                                    Bytes::from(reply.message.clone()),
                                );
                            }
                            reply
                        }
                    },
                },
            },
        };
        if conn.refusals >= MAX_REFUSALS {
            return Err(Leave::Bad(format!("{MAX_REFUSALS} commands refused")));
        }
        reply.challenge = Some(conn.challenge.clone());
        hub.send_direct(&conn.queue, &encode_reply(&reply));
        Ok(())
    }
}

/// A topic frame must be 1 to [`MAX_TOPIC_LEN`] bytes of UTF-8 without
/// control characters: that tells a topic from a payload sent without one.
pub fn check_topic(frame: &Bytes) -> Result<&str, String> {
    if frame.is_empty() {
        return Err("empty topic".into());
    }
    if frame.len() > MAX_TOPIC_LEN {
        return Err(format!(
            "{} bytes is too long for a topic (at most {MAX_TOPIC_LEN})",
            frame.len()
        ));
    }
    let name = std::str::from_utf8(frame).map_err(|_| "topic is not UTF-8".to_string())?;
    if name.chars().any(char::is_control) {
        return Err(format!("topic {name:?} contains control characters"));
    }
    Ok(name)
}

/// The start of a payload, printable on one line.
fn preview(data: &[u8]) -> String {
    String::from_utf8_lossy(&data[..data.len().min(24)])
        .chars()
        .map(|c| if c.is_control() { '.' } else { c })
        .collect()
}
