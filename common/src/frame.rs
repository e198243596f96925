//! Frames: a 4-byte big-endian length, then that many payload bytes.
//!
//! [`FrameCodec`] is a tokio-util codec like `LengthDelimitedCodec`, with two
//! differences that matter when every peer may be hostile: a length over the
//! maximum is refused *before* anything is allocated for it, and buffer space
//! grows only as bytes actually arrive (a peer that announces 16 MiB and
//! sends 10 bytes costs 10 bytes, not 16 MiB). Its errors name what was
//! wrong. [`Connection`] reads and writes whole frames on a TCP stream.

use std::io;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio_util::codec::{Decoder, Encoder, Framed, FramedRead, FramedWrite};

/// Default largest frame payload: 16 MiB.
pub const DEFAULT_MAX_FRAME_LEN: usize = 16 * 1024 * 1024;

/// Size of the length prefix.
pub const LENGTH_PREFIX_LEN: usize = 4;

/// Most of an empty read or write buffer a long-lived connection keeps:
/// one large frame (a catch-up answer of 256 KiB, a block of hundreds of
/// transactions) grows it, and a buffer never gives back what it grew.
pub const KEEP_BUFFER: usize = 64 * 1024;

/// What a buffer let go by [`release_large`] starts again with (as
/// tokio-util's own first buffer).
const FRESH_BUFFER: usize = 8 * 1024;

/// Lets go of `buf`'s allocation when it is empty and past [`KEEP_BUFFER`],
/// for a fresh one of a few KiB. Left alone, every program on the relay
/// kept the 512 KiB its reader doubled to for the first large frame: a
/// step some minutes into a lesson, in every program at once (issue 34).
/// The relay's own readers give back every idle buffer (they are many;
/// `relay::reader`).
pub fn release_large(buf: &mut BytesMut) {
    if buf.is_empty() && buf.capacity() > KEEP_BUFFER {
        *buf = BytesMut::with_capacity(FRESH_BUFFER);
    }
}

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame length {len} exceeds the maximum of {max} bytes")]
    TooLong { len: usize, max: usize },
    #[error("connection closed in the middle of a frame ({have} of {want} bytes received)")]
    Truncated { have: usize, want: usize },
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
}

/// Length-prefixed frame codec with a maximum payload length.
#[derive(Clone, Copy, Debug)]
pub struct FrameCodec {
    max_frame_len: usize,
    /// [`FrameCodec::sized_to_frames`].
    sized: bool,
}

impl FrameCodec {
    pub fn new(max_frame_len: usize) -> FrameCodec {
        FrameCodec {
            max_frame_len,
            sized: false,
        }
    }

    /// Once half of a frame larger than [`KEEP_BUFFER`] has arrived, gives
    /// the buffer room for exactly the rest, where it would otherwise
    /// double as bytes come: a 150 KB
    /// block grew a program's buffer to 256 KiB beside the block decoded
    /// from it, in every program at once (issue 34). Still nothing is
    /// reserved for what a peer only announces: the room given is at most
    /// what it has sent. A [`Connection`]'s codec (every program's client);
    /// the relay's readers size their own buffers, charged to its budget.
    pub fn sized_to_frames(mut self) -> FrameCodec {
        self.sized = true;
        self
    }

    pub fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }

    /// The length the buffered prefix announces, if the prefix is complete.
    fn announced_len(src: &BytesMut) -> Option<usize> {
        let prefix: [u8; 4] = src.get(..LENGTH_PREFIX_LEN)?.try_into().ok()?;
        Some(u32::from_be_bytes(prefix) as usize)
    }
}

impl Default for FrameCodec {
    fn default() -> FrameCodec {
        FrameCodec::new(DEFAULT_MAX_FRAME_LEN)
    }
}

impl Decoder for FrameCodec {
    type Item = Bytes;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        let Some(len) = Self::announced_len(src) else {
            return Ok(None);
        };
        if len > self.max_frame_len {
            return Err(FrameError::TooLong {
                len,
                max: self.max_frame_len,
            });
        }
        let whole = LENGTH_PREFIX_LEN + len;
        if src.len() < whole {
            // Do not reserve `len` up front: grow with what arrives.
            // Only a large frame: a buffer made to fit a small one would
            // be the size the next reads start from (`bytes` keeps a
            // buffer's first capacity), a few hundred bytes a read.
            if self.sized && whole > KEEP_BUFFER && src.capacity() < whole && src.len() >= whole / 2
            {
                let mut exact = BytesMut::with_capacity(whole);
                exact.extend_from_slice(src);
                *src = exact;
            }
            return Ok(None);
        }
        src.advance(LENGTH_PREFIX_LEN);
        Ok(Some(src.split_to(len).freeze()))
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        match self.decode(src)? {
            Some(frame) => Ok(Some(frame)),
            None if src.is_empty() => Ok(None),
            None => Err(FrameError::Truncated {
                have: src.len().saturating_sub(LENGTH_PREFIX_LEN),
                want: Self::announced_len(src).unwrap_or(0),
            }),
        }
    }
}

impl<T: AsRef<[u8]>> Encoder<T> for FrameCodec {
    type Error = FrameError;

    fn encode(&mut self, payload: T, dst: &mut BytesMut) -> Result<(), FrameError> {
        let payload = payload.as_ref();
        if payload.len() > self.max_frame_len {
            return Err(FrameError::TooLong {
                len: payload.len(),
                max: self.max_frame_len,
            });
        }
        dst.reserve(LENGTH_PREFIX_LEN + payload.len());
        dst.put_u32(payload.len() as u32);
        dst.put_slice(payload);
        Ok(())
    }
}

/// A TCP connection that reads and writes whole frames.
#[derive(Debug)]
pub struct Connection {
    framed: Framed<TcpStream, FrameCodec>,
}

/// The reading half of a split [`Connection`].
pub type FrameReader = FramedRead<OwnedReadHalf, FrameCodec>;
/// The writing half of a split [`Connection`].
pub type FrameWriter = FramedWrite<OwnedWriteHalf, FrameCodec>;

impl Connection {
    pub fn new(stream: TcpStream, max_frame_len: usize) -> Connection {
        Connection {
            framed: Framed::new(stream, FrameCodec::new(max_frame_len).sized_to_frames()),
        }
    }

    /// The next frame; `Ok(None)` when the peer closed cleanly between
    /// frames.
    pub async fn read_frame(&mut self) -> Result<Option<Bytes>, FrameError> {
        self.framed.next().await.transpose()
    }

    /// Writes one frame and flushes it.
    pub async fn write_frame(&mut self, payload: &[u8]) -> Result<(), FrameError> {
        self.framed.send(payload).await
    }

    /// Writes several frames with one flush.
    pub async fn write_frames(&mut self, payloads: &[&[u8]]) -> Result<(), FrameError> {
        for payload in payloads {
            self.framed.feed(*payload).await?;
        }
        SinkExt::<&[u8]>::flush(&mut self.framed).await
    }

    pub fn get_ref(&self) -> &TcpStream {
        self.framed.get_ref()
    }

    /// Splits into independent reading and writing halves.
    pub fn into_split(self) -> (FrameReader, FrameWriter) {
        let parts = self.framed.into_parts();
        let codec = parts.codec;
        let (read, write) = parts.io.into_split();
        let mut reader = FramedRead::new(read, codec);
        reader.read_buffer_mut().extend_from_slice(&parts.read_buf);
        (reader, FramedWrite::new(write, codec))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(codec: &mut FrameCodec, bytes: &[u8]) -> Result<Vec<Bytes>, FrameError> {
        let mut buf = BytesMut::from(bytes);
        let mut out = Vec::new();
        while let Some(f) = codec.decode_eof(&mut buf)? {
            out.push(f);
        }
        Ok(out)
    }

    #[test]
    fn a_large_empty_buffer_is_let_go() {
        let mut codec = FrameCodec::default();
        let mut buf = BytesMut::new();
        codec.encode(&vec![7u8; 300_000][..], &mut buf).unwrap();
        codec.encode(&b"next"[..], &mut buf).unwrap();
        let big = codec.decode(&mut buf).unwrap().unwrap();
        assert_eq!(big.len(), 300_000);
        // A frame still buffered: kept.
        let (held, at) = (buf.capacity(), buf.as_ptr());
        release_large(&mut buf);
        assert_eq!((buf.capacity(), buf.as_ptr()), (held, at));
        assert_eq!(&codec.decode(&mut buf).unwrap().unwrap()[..], b"next");
        assert!(buf.capacity() > KEEP_BUFFER);
        release_large(&mut buf);
        assert_eq!(buf.capacity(), FRESH_BUFFER);
        // A small one is kept as it is.
        let mut small = BytesMut::with_capacity(KEEP_BUFFER);
        let before = small.as_ptr();
        release_large(&mut small);
        assert_eq!(small.as_ptr(), before);
    }

    /// Reads `frame`'s bytes as tokio-util's `FramedRead` does (room for
    /// one more byte when the buffer is full, then as much as fits), and
    /// returns the frame and the most the buffer held room for.
    fn read_as_framed(codec: &mut FrameCodec, frame: &[u8]) -> (Bytes, usize) {
        let mut buf = BytesMut::with_capacity(FRESH_BUFFER);
        let (mut at, mut most) = (0, 0);
        loop {
            if let Some(payload) = codec.decode(&mut buf).unwrap() {
                return (payload, most);
            }
            if buf.len() == buf.capacity() {
                buf.reserve(1);
            }
            let n = (buf.capacity() - buf.len()).min(frame.len() - at);
            buf.extend_from_slice(&frame[at..at + n]);
            at += n;
            most = most.max(buf.capacity());
        }
    }

    #[test]
    fn a_connections_buffer_grows_to_a_large_frame_and_no_further() {
        let mut whole = BytesMut::new();
        FrameCodec::default()
            .encode(&vec![7u8; 150_000][..], &mut whole)
            .unwrap();
        let (payload, most) = read_as_framed(&mut FrameCodec::default(), &whole);
        assert_eq!(payload.len(), 150_000);
        assert!(most >= 2 * 131_072, "doubled, as before: {most}");
        let (payload, most) = read_as_framed(&mut FrameCodec::default().sized_to_frames(), &whole);
        assert_eq!(payload.len(), 150_000);
        assert_eq!(most, whole.len());
        // Nothing is reserved for what is only announced: 16 MiB, and
        // ten bytes of it sent.
        let mut codec = FrameCodec::default().sized_to_frames();
        let mut buf = BytesMut::with_capacity(64);
        buf.extend_from_slice(&(16u32 << 20).to_be_bytes());
        buf.extend_from_slice(&[1; 10]);
        assert!(codec.decode(&mut buf).unwrap().is_none());
        assert_eq!(buf.capacity(), 64);
    }

    #[test]
    fn round_trips_frames() {
        let mut codec = FrameCodec::default();
        let mut buf = BytesMut::new();
        codec.encode(&b"hello"[..], &mut buf).unwrap();
        codec.encode(&b""[..], &mut buf).unwrap();
        assert_eq!(&buf[..4], &[0, 0, 0, 5]);
        let frames = decode_all(&mut codec, &buf).unwrap();
        assert_eq!(frames, vec![Bytes::from_static(b"hello"), Bytes::new()]);
    }

    #[test]
    fn refuses_an_oversized_length_without_allocating() {
        let mut codec = FrameCodec::new(10);
        let mut buf = BytesMut::from(&[0xff, 0xff, 0xff, 0xff, 1][..]);
        let cap = buf.capacity();
        let err = codec.decode(&mut buf).unwrap_err();
        assert!(matches!(
            err,
            FrameError::TooLong {
                len: 4294967295,
                max: 10
            }
        ));
        assert_eq!(buf.capacity(), cap);
        assert!(err.to_string().contains("exceeds the maximum of 10 bytes"));
    }

    #[test]
    fn waits_for_the_rest_of_a_frame_then_reports_truncation_at_eof() {
        let mut codec = FrameCodec::default();
        let mut buf = BytesMut::from(&[0, 0, 0, 9, b'a', b'b'][..]);
        assert!(codec.decode(&mut buf).unwrap().is_none());
        let err = codec.decode_eof(&mut buf).unwrap_err();
        assert!(matches!(err, FrameError::Truncated { have: 2, want: 9 }));
    }

    #[test]
    fn refuses_to_encode_an_oversized_payload() {
        let mut codec = FrameCodec::new(3);
        let mut buf = BytesMut::new();
        assert!(codec.encode(&b"four"[..], &mut buf).is_err());
    }
}
