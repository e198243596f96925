//! The web view's connections, bounded: at most [`MAX_CONNECTIONS`] open
//! at once (more wait in the kernel's queue, costing us nothing) and at
//! most [`MAX_PER_ADDRESS`] from one address (more are closed at once), so
//! that no student's laptop can hold the teacher's view or its memory.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Most connections open at once (a browser opens a few; each holds a
/// task and its buffers).
pub const MAX_CONNECTIONS: usize = 256;
/// Most connections from one address: every event stream the view
/// serves ([`super::MAX_BROWSERS`]) and a few page loads besides.
pub const MAX_PER_ADDRESS: usize = super::MAX_BROWSERS + 16;

type PerAddress = Arc<Mutex<HashMap<IpAddr, usize>>>;

/// A listener that hands out only connections within the limits.
#[derive(Debug)]
pub struct Limited {
    inner: TcpListener,
    permits: Arc<Semaphore>,
    per_address: PerAddress,
}

impl Limited {
    pub fn new(inner: TcpListener) -> Limited {
        Limited {
            inner,
            permits: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
            per_address: Arc::default(),
        }
    }
}

/// A connection, holding its place until it closes.
#[derive(Debug)]
pub struct Connection {
    stream: TcpStream,
    ip: IpAddr,
    per_address: PerAddress,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Connection {
    fn drop(&mut self) {
        // Every update is one insert, change or remove: a poisoned lock is
        // still consistent.
        let mut map = self.per_address.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

impl axum::serve::Listener for Limited {
    type Io = Connection;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Connection, SocketAddr) {
        loop {
            // Waiting here leaves further browsers in the kernel's queue.
            let Ok(permit) = self.permits.clone().acquire_owned().await else {
                std::future::pending::<()>().await;
                continue;
            };
            let (stream, peer) = match self.inner.accept().await {
                Ok(accepted) => accepted,
                Err(_) => {
                    // E.g. out of file descriptors: let some close first.
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let ip = peer.ip();
            {
                let mut map = self.per_address.lock().unwrap_or_else(|e| e.into_inner());
                let n = map.entry(ip).or_default();
                if *n >= MAX_PER_ADDRESS {
                    // Closed at once (dropped), its permit given back.
                    continue;
                }
                *n += 1;
            }
            let connection = Connection {
                stream,
                ip,
                per_address: self.per_address.clone(),
                _permit: permit,
            };
            return (connection, peer);
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
