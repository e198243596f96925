//! A load generator that speaks two protocols, so the same load hits our
//! relay and a nats-server: P publishers and S subscribers on one topic,
//! N messages per publisher of a given size, optionally at a fixed rate.
//!
//! Every payload starts with the publisher's send time (nanoseconds since
//! the run began), so subscribers measure latency. A subscriber stops when
//! it has every message or after an idle timeout; what it lacks is "lost".

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::TcpStream;
use tokio::sync::Barrier;

/// Which wire protocol a target speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    /// The toycoin relay session: length-prefixed frames.
    Toycoin,
    /// NATS's text protocol (CONNECT, SUB, PUB, MSG, PING/PONG).
    Nats,
}

/// One load to run.
#[derive(Clone, Debug)]
pub struct Load {
    pub publishers: usize,
    pub subscribers: usize,
    pub messages: usize,
    pub payload: usize,
    /// Messages per second per publisher (`None`: as fast as possible).
    pub rate: Option<f64>,
    pub idle_timeout: Duration,
}

/// What a run measured.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    pub deliveries: u64,
    pub lost: u64,
    pub secs: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
}

impl Outcome {
    pub fn deliveries_per_sec(&self) -> f64 {
        self.deliveries as f64 / self.secs.max(1e-9)
    }

    pub fn mb_per_sec(&self, payload: usize) -> f64 {
        self.deliveries_per_sec() * payload as f64 / 1e6
    }
}

const TOPIC: &str = "bench.topic";

/// Runs `load` against `addr` speaking `proto`.
pub async fn run(proto: Proto, addr: SocketAddr, load: &Load) -> io::Result<Outcome> {
    let start = Instant::now();
    let ready = Arc::new(Barrier::new(load.subscribers + load.publishers));
    let expected = (load.publishers * load.messages) as u64;
    let mut subs = Vec::new();
    for _ in 0..load.subscribers {
        let stream = connect(addr).await?;
        let ready = ready.clone();
        let idle = load.idle_timeout;
        subs.push(tokio::spawn(async move {
            subscriber(proto, stream, ready, expected, idle, start).await
        }));
    }
    let mut pubs = Vec::new();
    for _ in 0..load.publishers {
        let stream = connect(addr).await?;
        let ready = ready.clone();
        let load = load.clone();
        pubs.push(tokio::spawn(async move {
            publisher(proto, stream, ready, &load, start).await
        }));
    }
    let mut first_send = u64::MAX;
    let mut held = Vec::new();
    for p in pubs {
        let (first, conn) = p.await.map_err(io::Error::other)??;
        first_send = first_send.min(first);
        held.push(conn);
    }
    let mut outcome = Outcome::default();
    let mut latencies: Vec<u64> = Vec::new();
    let mut last_receive = 0u64;
    for s in subs {
        let (got, last, mut lat) = s.await.map_err(io::Error::other)??;
        outcome.deliveries += got;
        outcome.lost += expected - got.min(expected);
        last_receive = last_receive.max(last);
        latencies.append(&mut lat);
    }
    drop(held);
    outcome.secs = last_receive.saturating_sub(first_send) as f64 / 1e9;
    latencies.sort_unstable();
    let pct = |p: f64| -> f64 {
        if latencies.is_empty() {
            return 0.0;
        }
        let i = ((latencies.len() - 1) as f64 * p).round() as usize;
        latencies[i] as f64 / 1e3
    };
    outcome.p50_us = pct(0.50);
    outcome.p99_us = pct(0.99);
    outcome.max_us = pct(1.0);
    Ok(outcome)
}

async fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    Ok(s)
}

fn nanos(start: Instant) -> u64 {
    start.elapsed().as_nanos() as u64
}

/// Subscribes, waits until everyone is ready, then counts messages.
/// Returns (received, time of last receipt, latencies in ns).
async fn subscriber(
    proto: Proto,
    stream: TcpStream,
    ready: Arc<Barrier>,
    expected: u64,
    idle: Duration,
    start: Instant,
) -> io::Result<(u64, u64, Vec<u64>)> {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::with_capacity(256 * 1024, read);
    match proto {
        Proto::Toycoin => {
            write_frame(&mut write, TOPIC.as_bytes()).await?;
        }
        Proto::Nats => {
            nats_handshake(&mut read, &mut write).await?;
            write
                .write_all(format!("SUB {TOPIC} 1\r\n").as_bytes())
                .await?;
            // A PING answered means the SUB is registered.
            write.write_all(b"PING\r\n").await?;
            let mut line = Vec::new();
            loop {
                line.clear();
                read.read_until(b'\n', &mut line).await?;
                if line.starts_with(b"PONG") {
                    break;
                }
            }
        }
    }
    // The toycoin relay registers the subscription once it has read the
    // frame; a short pause keeps the first messages from racing it.
    if proto == Proto::Toycoin {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    ready.wait().await;
    // Stopped by a watchdog when nothing came for `idle`: one timer for the
    // whole run, not one per message (a timeout per read cost this
    // process a quarter of its time, on the cores the relay in this
    // process shares).
    let got = std::sync::atomic::AtomicU64::new(0);
    let mut last = 0u64;
    let mut latencies = Vec::with_capacity(expected as usize);
    let receive = async {
        let mut payload = Vec::new();
        let mut line = Vec::new();
        let mut now = 0;
        while got.load(Relaxed) < expected {
            // A message wholly in the buffer arrived with the read that
            // filled it: the clock is read once per read from the socket
            // (a read of it per message was another 6% of this process).
            let buffered = read.buffer().len();
            let size = match proto {
                Proto::Toycoin => {
                    let len = read.read_u32().await? as usize;
                    payload.resize(len, 0);
                    read.read_exact(&mut payload).await?;
                    4 + len
                }
                Proto::Nats => loop {
                    line.clear();
                    if read.read_until(b'\n', &mut line).await? == 0 {
                        return Err::<(), io::Error>(io::ErrorKind::UnexpectedEof.into());
                    }
                    if line.starts_with(b"PING") {
                        write.write_all(b"PONG\r\n").await?;
                        continue;
                    }
                    if !line.starts_with(b"MSG ") {
                        continue;
                    }
                    let text = String::from_utf8_lossy(&line);
                    let len: usize = text
                        .split_whitespace()
                        .last()
                        .and_then(|n| n.parse().ok())
                        .ok_or_else(|| io::Error::other(format!("bad MSG line {text:?}")))?;
                    payload.resize(len + 2, 0);
                    read.read_exact(&mut payload).await?;
                    payload.truncate(len);
                    break line.len() + len + 2;
                },
            };
            if buffered < size || now == 0 {
                now = nanos(start);
            }
            if payload.len() >= 8 {
                let sent = u64::from_be_bytes(payload[..8].try_into().unwrap_or_default());
                latencies.push(now.saturating_sub(sent));
            }
            got.fetch_add(1, Relaxed);
            last = now;
        }
        Ok(())
    };
    let watchdog = async {
        let mut seen = u64::MAX;
        while got.load(Relaxed) != seen {
            seen = got.load(Relaxed);
            tokio::time::sleep(idle).await;
        }
    };
    tokio::select! {
        // An error ends the count as silence does: what did not come is lost.
        _ = receive => {}
        _ = watchdog => {}
    }
    let got = got.load(Relaxed);
    Ok((got, last, latencies))
}

/// A publisher's connection, kept open until the subscribers are done.
struct Held {
    _write: BufWriter<tokio::net::tcp::OwnedWriteHalf>,
    drain: tokio::task::JoinHandle<()>,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.drain.abort();
    }
}

/// Publishes its messages; returns the time of its first send and the
/// connection, to close once the subscribers are done.
async fn publisher(
    proto: Proto,
    stream: TcpStream,
    ready: Arc<Barrier>,
    load: &Load,
    start: Instant,
) -> io::Result<(u64, Held)> {
    let (read, write) = stream.into_split();
    let mut read = BufReader::new(read);
    let mut write = BufWriter::with_capacity(256 * 1024, write);
    match proto {
        Proto::Toycoin => write_frame(write.get_mut(), b"/bench/publishers").await?,
        Proto::Nats => nats_handshake(&mut read, write.get_mut()).await?,
    }
    // Keep reading (PINGs from NATS) so the server never sees us stalled.
    let drain = tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while let Ok(n) = read.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    });
    ready.wait().await;
    let first = nanos(start);
    let mut payload = vec![b'x'; load.payload.max(8)];
    let interval = load
        .rate
        .map(|r| Duration::from_secs_f64(1.0 / r.max(1e-9)));
    let began = Instant::now();
    for i in 0..load.messages {
        if let Some(every) = interval {
            let due = began + every * i as u32;
            let now = Instant::now();
            if due > now {
                write.flush().await?;
                tokio::time::sleep(due - now).await;
            }
        }
        payload[..8].copy_from_slice(&nanos(start).to_be_bytes());
        match proto {
            Proto::Toycoin => {
                write.write_u32(TOPIC.len() as u32).await?;
                write.write_all(TOPIC.as_bytes()).await?;
                write.write_u32(payload.len() as u32).await?;
                write.write_all(&payload).await?;
            }
            Proto::Nats => {
                write
                    .write_all(format!("PUB {TOPIC} {}\r\n", payload.len()).as_bytes())
                    .await?;
                write.write_all(&payload).await?;
                write.write_all(b"\r\n").await?;
            }
        }
        if interval.is_some() {
            write.flush().await?;
        }
    }
    write.flush().await?;
    Ok((
        first,
        Held {
            _write: write,
            drain,
        },
    ))
}

async fn write_frame(w: &mut (impl AsyncWriteExt + Unpin), payload: &[u8]) -> io::Result<()> {
    w.write_u32(payload.len() as u32).await?;
    w.write_all(payload).await?;
    w.flush().await
}

async fn nats_handshake(
    read: &mut (impl AsyncBufReadExt + Unpin),
    write: &mut (impl AsyncWriteExt + Unpin),
) -> io::Result<()> {
    let mut info = Vec::new();
    read.read_until(b'\n', &mut info).await?;
    if !info.starts_with(b"INFO") {
        return Err(io::Error::other("nats-server did not send INFO"));
    }
    write
        .write_all(b"CONNECT {\"verbose\":false,\"pedantic\":false,\"echo\":false}\r\n")
        .await?;
    write.flush().await
}
