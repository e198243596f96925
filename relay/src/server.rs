//! The relay server: accepts connections, runs one handler per client, and
//! shuts down cleanly.
//!
//! A handler reads the client's subscription (within a time limit), then
//! alternating topic and data frames, publishing each pair through the
//! [`Hub`]. Its writer task sends the client what the hub queues for it.
//! Any protocol error drops that client with a one-line reason; nothing a
//! client sends can make the relay allocate more than one frame's worth for
//! it (the frame limit) or hold more than its queue's worth for it.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use toycoin_common::frame::{FrameCodec, FrameError, DEFAULT_MAX_FRAME_LEN};
use toycoin_common::log::TRAFFIC;
use tracing::{info, warn};

use crate::hub::{Hub, SlowPolicy, Subscriber};
use crate::stats::{Snapshot, Stats};
use crate::writer::write_loop;

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

/// The relay's settings.
#[derive(Clone, Debug)]
pub struct RelayConfig {
    /// Largest frame payload accepted from a client.
    pub max_frame_len: usize,
    /// Most connections open at once; more are closed at once.
    pub max_connections: usize,
    /// Most messages queued for one subscriber.
    pub queue_messages: usize,
    /// Most payload bytes queued for one subscriber.
    pub queue_bytes: usize,
    /// What happens to a subscriber whose queue is full.
    pub slow_policy: SlowPolicy,
    /// How long a new client has to send its subscription.
    pub subscribe_timeout: Duration,
    /// How often to print a summary line (`None`: never).
    pub summary_interval: Option<Duration>,
}

impl Default for RelayConfig {
    fn default() -> RelayConfig {
        RelayConfig {
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
            max_connections: 1024,
            queue_messages: 65_536,
            queue_bytes: 64 * 1024 * 1024,
            slow_policy: SlowPolicy::Drop,
            subscribe_timeout: Duration::from_secs(10),
            summary_interval: Some(Duration::from_secs(10)),
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
    stats: Arc<Stats>,
    tracker: TaskTracker,
    shutdown: CancellationToken,
    next_id: AtomicU64,
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

impl Leave {
    /// A read error: a reset or abort is the client leaving, not breaking
    /// the protocol.
    fn after_error(e: FrameError) -> Leave {
        match &e {
            FrameError::Io(io)
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
        Relay {
            inner: Arc::new(Inner {
                hub: Hub::new(config.queue_bytes, config.slow_policy, stats.clone()),
                config,
                stats,
                tracker: TaskTracker::new(),
                shutdown: CancellationToken::new(),
                next_id: AtomicU64::new(1),
            }),
        }
    }

    /// The counters now.
    pub fn stats(&self) -> Snapshot {
        self.inner.stats.snapshot()
    }

    /// Subscriptions held now, all topics together.
    pub fn subscriptions(&self) -> usize {
        self.inner.hub.subscriptions()
    }

    /// Topics with subscribers now.
    pub fn topics(&self) -> usize {
        self.inner.hub.topic_count()
    }

    /// Connection tasks (handlers and writers) running now.
    pub fn tasks(&self) -> usize {
        self.inner.tracker.len()
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
            inner
                .tracker
                .spawn(async move { relay.summaries(every).await });
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
                    match permits.clone().try_acquire_owned() {
                        Ok(permit) => {
                            let relay = self.clone();
                            inner
                                .tracker
                                .spawn(async move { relay.handle(stream, peer, permit).await });
                        }
                        Err(_) => {
                            inner.stats.refused();
                            warn!(
                                "Refused {peer}: connection limit of {} reached",
                                inner.config.max_connections
                            );
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
            info!("{}", now.summary_since(&before, at.elapsed().as_secs_f64()));
            before = now;
            at = Instant::now();
        }
    }

    async fn handle(&self, stream: TcpStream, peer: SocketAddr, _permit: OwnedSemaphorePermit) {
        let stats = &self.inner.stats;
        stats.client_joined();
        let leave = self.serve(stream, peer).await;
        stats.client_left();
        match leave {
            Leave::Closed => info!("Remote {peer} closed"),
            Leave::Shutdown => {}
            Leave::Slow => warn!("Remote {peer} disconnected: too slow, its queue was full"),
            Leave::WriteFailed(e) => info!("Remote {peer} closed: write failed: {e}"),
            Leave::Bad(reason) => {
                stats.bad_client();
                warn!("Remote {peer} dropped: {reason}");
            }
        }
    }

    async fn serve(&self, stream: TcpStream, peer: SocketAddr) -> Leave {
        let config = &self.inner.config;
        let shutdown = &self.inner.shutdown;
        let _ = stream.set_nodelay(true);
        let (read, write) = stream.into_split();
        let mut reader = FramedRead::new(read, FrameCodec::new(config.max_frame_len));

        let first = tokio::select! {
            _ = shutdown.cancelled() => return Leave::Shutdown,
            first = tokio::time::timeout(config.subscribe_timeout, reader.next()) => first,
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

        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(config.queue_messages.max(1));
        let kick = shutdown.child_token();
        let queued_bytes = Arc::new(AtomicUsize::new(0));
        self.inner.hub.subscribe(
            topic.clone(),
            Subscriber {
                id,
                tx,
                queued_bytes: queued_bytes.clone(),
                kick: kick.clone(),
            },
        );
        info!("Remote {peer} subscribed to {name}");
        let write_error = Arc::new(OnceLock::new());
        let writer = {
            let (stats, kick, write_error) =
                (self.inner.stats.clone(), kick.clone(), write_error.clone());
            self.inner.tracker.spawn(async move {
                if let Err(e) = write_loop(write, rx, queued_bytes, stats, kick.clone()).await {
                    let _ = write_error.set(e.to_string());
                    kick.cancel();
                }
            })
        };

        let leave = self.read_loop(&mut reader, &kick).await;
        self.inner.hub.unsubscribe(&topic, id);
        kick.cancel();
        let _ = writer.await;
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
        reader: &mut FramedRead<tokio::net::tcp::OwnedReadHalf, FrameCodec>,
        kick: &CancellationToken,
    ) -> Option<Leave> {
        loop {
            let topic = tokio::select! {
                _ = kick.cancelled() => return None,
                frame = reader.next() => match frame {
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
                frame = reader.next() => match frame {
                    None => return Some(Leave::Bad(format!("closed after topic {name:?} without its data frame"))),
                    Some(Err(e)) => return Some(Leave::after_error(e)),
                    Some(Ok(data)) => data,
                },
            };
            let delivery = self.inner.hub.publish(&topic, &data);
            info!(
                target: TRAFFIC,
                "Sending to {name}: {}... ({} subscribers)",
                preview(&data),
                delivery.delivered
            );
        }
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
