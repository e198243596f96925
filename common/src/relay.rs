//! A client of the relay hub: connect and subscribe, publish, receive.
//!
//! The session (format doc, section 2): the first frame a client sends is
//! the topic it subscribes to; after that it publishes by sending a topic
//! frame then a data frame; it receives the data frames published to its
//! topic, the ones it published itself included.

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpStream, ToSocketAddrs};

use crate::frame::{
    release_large, Connection, FrameError, FrameReader, FrameWriter, DEFAULT_MAX_FRAME_LEN,
};

/// The topic the toycoin programs use.
pub const DEFAULT_TOPIC: &str = "/topic/main";

/// A subscribed relay session.
#[derive(Debug)]
pub struct RelayClient {
    conn: Connection,
}

impl RelayClient {
    /// Connects to the relay at `addr` and subscribes to `topic`.
    pub async fn connect(addr: impl ToSocketAddrs, topic: &str) -> Result<RelayClient, FrameError> {
        RelayClient::connect_with_max(addr, topic, DEFAULT_MAX_FRAME_LEN).await
    }

    /// As [`RelayClient::connect`], with a maximum frame length for what it
    /// receives.
    pub async fn connect_with_max(
        addr: impl ToSocketAddrs,
        topic: &str,
        max_frame_len: usize,
    ) -> Result<RelayClient, FrameError> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let mut conn = Connection::new(stream, max_frame_len);
        conn.write_frame(topic.as_bytes()).await?;
        Ok(RelayClient { conn })
    }

    /// Subscribes to `topic` on a connection already made (a client bound
    /// to an address of its choosing: a test's student on 127.0.0.2).
    pub async fn from_stream(stream: TcpStream, topic: &str) -> Result<RelayClient, FrameError> {
        stream.set_nodelay(true)?;
        let mut conn = Connection::new(stream, DEFAULT_MAX_FRAME_LEN);
        conn.write_frame(topic.as_bytes()).await?;
        Ok(RelayClient { conn })
    }

    /// Publishes `data` to `topic`.
    pub async fn publish(&mut self, topic: &str, data: &[u8]) -> Result<(), FrameError> {
        self.conn.write_frames(&[topic.as_bytes(), data]).await
    }

    /// The next data frame from the subscribed topic; `Ok(None)` when the
    /// relay closed the connection.
    pub async fn recv(&mut self) -> Result<Option<Bytes>, FrameError> {
        self.conn.read_frame().await
    }

    /// This end's local address (the original programs print it).
    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.conn.get_ref().local_addr()
    }

    /// Splits into a receiver and a publisher that can live in separate
    /// tasks.
    pub fn into_split(self) -> (RelayReceiver, RelayPublisher) {
        let (reader, writer) = self.conn.into_split();
        (RelayReceiver { reader }, RelayPublisher { writer })
    }
}

/// The receiving half of a [`RelayClient`].
#[derive(Debug)]
pub struct RelayReceiver {
    reader: FrameReader,
}

impl RelayReceiver {
    /// The next data frame; `Ok(None)` when the relay closed the connection.
    pub async fn recv(&mut self) -> Result<Option<Bytes>, FrameError> {
        let frame = self.reader.next().await.transpose();
        release_large(self.reader.read_buffer_mut());
        frame
    }

    /// Bytes the read buffer has room for.
    pub fn buffer_capacity(&self) -> usize {
        self.reader.read_buffer().capacity()
    }
}

/// The publishing half of a [`RelayClient`].
#[derive(Debug)]
pub struct RelayPublisher {
    writer: FrameWriter,
}

impl RelayPublisher {
    /// Publishes `data` to `topic`.
    pub async fn publish(&mut self, topic: &str, data: &[u8]) -> Result<(), FrameError> {
        self.writer.feed(topic.as_bytes()).await?;
        self.writer.feed(data).await?;
        SinkExt::<&[u8]>::flush(&mut self.writer).await?;
        release_large(self.writer.write_buffer_mut());
        Ok(())
    }

    /// Bytes the write buffer has room for.
    pub fn buffer_capacity(&self) -> usize {
        self.writer.write_buffer().capacity()
    }
}
