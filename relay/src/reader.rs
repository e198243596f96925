//! Reading one client's frames within the relay's memory budget.
//!
//! The buffer grows only as bytes arrive, and every byte of it is charged
//! to the [`Budget`] before it is allocated; an idle connection holds no
//! buffer at all (it waits for the socket to be readable first).
//!
//! A frame in progress must keep coming: a client that sends less than
//! [`PROGRESS`] bytes of it within the frame timeout is dropped, so a
//! half-sent frame, or one trickled a byte at a time, cannot hold memory
//! for ever. And when the frames being read have taken their half of the
//! budget, a reader that needs room evicts the one stalled longest
//! ([`Readers::evict_stalled`]): holding memory hostage costs the attacker
//! its connection, not the others their reads.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::net::tcp::OwnedReadHalf;
use tokio::time::Instant;
use tokio_util::codec::Decoder;
use tokio_util::sync::CancellationToken;
use toycoin_common::frame::{FrameCodec, FrameError, LENGTH_PREFIX_LEN};

use crate::budget::{Budget, Full, Use};
use crate::hub::Hub;

/// Fewest bytes asked of the socket at once.
const MIN_READ: usize = 8 * 1024;
/// Most a buffer grows by at once, unless it doubles (a large frame).
const READ_CHUNK: usize = 64 * 1024;
/// Bytes of a frame in progress that count as progress: the frame timeout
/// starts again only after this many more arrive (or the frame completes).
pub const PROGRESS: usize = 8 * 1024;
/// A reader without progress for this long may be evicted for another
/// that needs memory.
pub const EVICT_AFTER: Duration = Duration::from_secs(1);

/// Why reading stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("stalled for {secs:.0} s in the middle of a frame ({have} bytes of it received)")]
    Stalled { secs: f64, have: usize },
    #[error("the relay's memory budget has had no room for {secs:.0} s for its frame ({have} bytes of it received)")]
    NoMemory { secs: f64, have: usize },
    #[error("evicted: stalled mid-frame ({have} bytes of it held) while others needed the memory")]
    Evicted { have: usize },
}

/// What the registry knows of one reader.
#[derive(Debug)]
struct Shared {
    /// Bytes its buffer holds, charged.
    charged: AtomicUsize,
    /// When it last made progress, in ms since the registry began.
    progress_ms: AtomicU64,
    evicted: CancellationToken,
}

/// Every connection's reader, so that one waiting for memory can evict the
/// one stalled longest in the middle of a frame.
#[derive(Debug)]
pub struct Readers {
    entries: Mutex<HashMap<u64, Arc<Shared>>>,
    next_id: AtomicU64,
    epoch: Instant,
}

impl Default for Readers {
    fn default() -> Readers {
        Readers {
            entries: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }
}

impl Readers {
    fn entries(&self) -> MutexGuard<'_, HashMap<u64, Arc<Shared>>> {
        // Single inserts and removes: a poisoned lock is still consistent.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn register(&self) -> (u64, Arc<Shared>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let shared = Arc::new(Shared {
            charged: AtomicUsize::new(0),
            progress_ms: AtomicU64::new(self.now_ms()),
            evicted: CancellationToken::new(),
        });
        self.entries().insert(id, shared.clone());
        (id, shared)
    }

    /// Evicts the reader, other than `me`, that holds a partial frame and
    /// has made no progress for the longest, if that is at least
    /// [`EVICT_AFTER`]. True if one was evicted (its memory comes back as
    /// its connection ends).
    pub fn evict_stalled(&self, me: u64) -> bool {
        let before = self.now_ms().saturating_sub(EVICT_AFTER.as_millis() as u64);
        let entries = self.entries();
        let stalled = entries
            .iter()
            .filter(|(id, s)| {
                **id != me
                    && !s.evicted.is_cancelled()
                    && s.charged.load(Ordering::Relaxed) > 0
                    && s.progress_ms.load(Ordering::Relaxed) <= before
            })
            .min_by_key(|(_, s)| s.progress_ms.load(Ordering::Relaxed));
        match stalled {
            Some((_, s)) => {
                s.evicted.cancel();
                true
            }
            None => false,
        }
    }
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> ReadError {
        ReadError::Frame(FrameError::Io(e))
    }
}

/// Reads frames from one connection, charging its buffer to the budget.
#[derive(Debug)]
pub struct FrameReader {
    socket: OwnedReadHalf,
    codec: FrameCodec,
    buf: BytesMut,
    budget: Arc<Budget>,
    /// Bytes of `buf` charged to the budget.
    charged: usize,
    /// Longest a frame in progress may go without [`PROGRESS`].
    frame_timeout: Duration,
    /// Bytes received since the last progress mark.
    since_progress: usize,
    readers: Arc<Readers>,
    id: u64,
    shared: Arc<Shared>,
}

impl FrameReader {
    pub fn new(
        socket: OwnedReadHalf,
        codec: FrameCodec,
        budget: Arc<Budget>,
        readers: Arc<Readers>,
        frame_timeout: Duration,
    ) -> FrameReader {
        let (id, shared) = readers.register();
        FrameReader {
            socket,
            codec,
            buf: BytesMut::new(),
            budget,
            charged: 0,
            frame_timeout,
            since_progress: 0,
            readers,
            id,
            shared,
        }
    }

    /// Marks progress: the frame timeout starts again.
    fn progressed(&mut self) -> Instant {
        self.since_progress = 0;
        self.shared
            .progress_ms
            .store(self.readers.now_ms(), Ordering::Relaxed);
        Instant::now() + self.frame_timeout
    }

    /// Whether every byte read so far has been returned as frames: the
    /// client sent nothing more yet (at a classroom's pace, the usual case).
    pub fn caught_up(&self) -> bool {
        self.buf.is_empty()
    }

    /// The next frame; `None` when the client closed between frames.
    /// Cancel-safe: bytes read stay in the buffer.
    pub async fn next(&mut self, hub: &Hub) -> Option<Result<Bytes, ReadError>> {
        let mut deadline = self.progressed();
        loop {
            match self.codec.decode(&mut self.buf) {
                Err(e) => return Some(Err(e.into())),
                Ok(Some(frame)) => {
                    self.settle();
                    self.progressed();
                    return Some(Ok(frame));
                }
                Ok(None) => {}
            }
            if self.buf.is_empty() {
                // Between frames: no timeout, and nothing to evict.
                deadline = self.progressed();
            }
            let mid_frame = !self.buf.is_empty();
            let evicted = self.shared.evicted.clone();
            let readable = async {
                self.socket.readable().await?;
                if self.buf.capacity() - self.buf.len() < MIN_READ {
                    self.grow(hub, deadline).await?;
                }
                match self.socket.try_read_buf(&mut self.buf) {
                    Ok(n) => Ok(Some(n)),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
                    Err(e) => Err(ReadError::from(e)),
                }
            };
            let read = if mid_frame {
                tokio::select! {
                    read = tokio::time::timeout_at(deadline, readable) => match read {
                        Ok(read) => read,
                        Err(_) => {
                            return Some(Err(ReadError::Stalled {
                                secs: self.frame_timeout.as_secs_f64(),
                                have: self.buf.len(),
                            }))
                        }
                    },
                    _ = evicted.cancelled() => {
                        return Some(Err(ReadError::Evicted { have: self.buf.len() }))
                    }
                }
            } else {
                readable.await
            };
            match read {
                Err(e) => return Some(Err(e)),
                // Nothing to read after all: an idle connection keeps no
                // buffer while it waits.
                Ok(None) => self.settle(),
                Ok(Some(0)) if self.buf.is_empty() => return None,
                Ok(Some(0)) => {
                    let want = self
                        .announced()
                        .map_or(LENGTH_PREFIX_LEN, |l| l + LENGTH_PREFIX_LEN);
                    return Some(Err(FrameError::Truncated {
                        have: self.buf.len(),
                        want,
                    }
                    .into()));
                }
                Ok(Some(n)) => {
                    self.since_progress += n;
                    if self.since_progress >= PROGRESS {
                        deadline = self.progressed();
                    }
                }
            }
        }
    }

    /// The payload length the buffered prefix announces.
    fn announced(&self) -> Option<usize> {
        let prefix: [u8; 4] = self.buf.get(..LENGTH_PREFIX_LEN)?.try_into().ok()?;
        Some(u32::from_be_bytes(prefix) as usize)
    }

    /// Makes room to read into: at least [`MIN_READ`], up to what the frame
    /// in progress still needs, doubling for large frames — charged to the
    /// budget first, shedding slow subscribers or waiting for room.
    async fn grow(&mut self, hub: &Hub, deadline: Instant) -> Result<(), ReadError> {
        let len = self.buf.len();
        let needed = self
            .announced()
            .map_or(LENGTH_PREFIX_LEN, |l| l + LENGTH_PREFIX_LEN)
            .saturating_sub(len);
        let grow = needed.min(len.max(READ_CHUNK)).max(MIN_READ);
        let target = len + grow;
        let extra = target.saturating_sub(self.charged);
        let budget = self.budget.clone();
        let mut waiting = None;
        let mut last_look = None;
        loop {
            // Listening for releases before trying: none is missed.
            let released = budget.some_released();
            match budget.try_charge(extra, Use::Reading) {
                Ok(()) => break,
                Err(Full::Total) if hub.make_room(extra) => continue,
                Err(_) => {}
            }
            if waiting.is_none() {
                // Then charge again, now that releases wake us.
                waiting = Some(budget.wait_guard());
                continue;
            }
            // Frames being read fill their half (or nothing else can go):
            // the reader stalled longest gives way. Then wait for bytes to
            // come back, looking again for a stalled reader as often as
            // one can become stalled.
            // (At most a few times a second: every release wakes us, and a
            // look goes through every reader.)
            if !last_look.is_some_and(|at: Instant| at.elapsed() < EVICT_AFTER / 4) {
                last_look = Some(Instant::now());
                self.readers.evict_stalled(self.id);
            }
            if Instant::now() >= deadline {
                return Err(ReadError::NoMemory {
                    secs: self.frame_timeout.as_secs_f64(),
                    have: len,
                });
            }
            let look_again = deadline.min(Instant::now() + EVICT_AFTER);
            let _ = tokio::time::timeout_at(look_again, released).await;
        }
        self.charged += extra;
        self.buf.reserve(grow);
        self.recharge();
        Ok(())
    }

    /// Brings the charge to what the buffer holds now; an empty buffer lets
    /// its allocation go (an idle connection holds nothing).
    fn settle(&mut self) {
        if self.buf.is_empty() {
            self.buf = BytesMut::new();
        }
        self.recharge();
    }

    /// Brings the charge to the buffer's allocation.
    fn recharge(&mut self) {
        let held = self.buf.capacity();
        self.shared.charged.store(held, Ordering::Relaxed);
        if held < self.charged {
            self.budget.release(self.charged - held, Use::Reading);
        } else if held > self.charged {
            // The allocator rounded up: count what is really held.
            self.budget.force_charge(held - self.charged, Use::Reading);
        }
        self.charged = held;
    }
}

impl Drop for FrameReader {
    fn drop(&mut self) {
        self.readers.entries().remove(&self.id);
        self.budget.release(self.charged, Use::Reading);
    }
}
