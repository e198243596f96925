//! Reading one client's frames within the relay's memory budget.
//!
//! The buffer grows only as bytes arrive, and every byte of it is charged
//! to the [`Budget`] before it is allocated; an idle connection holds no
//! buffer at all (it waits for the socket to be readable first). A client
//! that stops in the middle of a frame — topic or data — for longer than
//! the frame timeout is dropped, so a half-sent frame cannot hold memory
//! for ever.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::net::tcp::OwnedReadHalf;
use tokio::time::Instant;
use tokio_util::codec::Decoder;
use toycoin_common::frame::{FrameCodec, FrameError, LENGTH_PREFIX_LEN};

use crate::budget::{Budget, Full, Use};
use crate::hub::Hub;

/// Fewest bytes asked of the socket at once.
const MIN_READ: usize = 8 * 1024;
/// Most a buffer grows by at once, unless it doubles (a large frame).
const READ_CHUNK: usize = 64 * 1024;

/// Why reading stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("stalled for {secs:.0} s in the middle of a frame ({have} bytes of it received)")]
    Stalled { secs: f64, have: usize },
    #[error("the relay's memory budget has had no room for {secs:.0} s for its frame ({have} bytes of it received)")]
    NoMemory { secs: f64, have: usize },
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
    /// Longest a frame in progress may wait for its next byte.
    frame_timeout: Duration,
}

impl FrameReader {
    pub fn new(
        socket: OwnedReadHalf,
        codec: FrameCodec,
        budget: Arc<Budget>,
        frame_timeout: Duration,
    ) -> FrameReader {
        FrameReader {
            socket,
            codec,
            buf: BytesMut::new(),
            budget,
            charged: 0,
            frame_timeout,
        }
    }

    /// The next frame; `None` when the client closed between frames.
    /// Cancel-safe: bytes read stay in the buffer.
    pub async fn next(&mut self, hub: &Hub) -> Option<Result<Bytes, ReadError>> {
        let mut deadline = Instant::now() + self.frame_timeout;
        loop {
            match self.codec.decode(&mut self.buf) {
                Err(e) => return Some(Err(e.into())),
                Ok(Some(frame)) => {
                    self.settle();
                    return Some(Ok(frame));
                }
                Ok(None) => {}
            }
            let mid_frame = !self.buf.is_empty();
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
                match tokio::time::timeout_at(deadline, readable).await {
                    Ok(read) => read,
                    Err(_) => {
                        return Some(Err(ReadError::Stalled {
                            secs: self.frame_timeout.as_secs_f64(),
                            have: self.buf.len(),
                        }))
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
                Ok(Some(_)) => deadline = Instant::now() + self.frame_timeout,
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
        loop {
            match self.budget.try_charge(extra, Use::Reading) {
                Ok(()) => break,
                Err(Full::Total) if hub.make_room(extra) => continue,
                Err(_) => {}
            }
            let waited = tokio::time::timeout_at(deadline, self.budget.some_released()).await;
            if waited.is_err() {
                return Err(ReadError::NoMemory {
                    secs: self.frame_timeout.as_secs_f64(),
                    have: len,
                });
            }
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
        self.budget.release(self.charged, Use::Reading);
    }
}
