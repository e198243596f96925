//! The web view's connections, bounded: at most [`MAX_CONNECTIONS`] open
//! at once (more wait in the kernel's queue, costing us nothing), at most
//! [`MAX_PER_OTHER_ADDRESS`] from another machine and [`MAX_PER_ADDRESS`]
//! from this one (more are closed at once), and event streams shared out
//! by [`Browsers`], so that no student's laptop can hold the teacher's
//! view or its memory.

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
/// Most connections from this machine: every event stream the view serves
/// ([`super::MAX_BROWSERS`]) and a few page loads besides.
pub const MAX_PER_ADDRESS: usize = super::MAX_BROWSERS + 16;
/// Most connections from one other machine: its event streams
/// ([`MAX_BROWSERS_PER_ADDRESS`]) and as many page loads.
pub const MAX_PER_OTHER_ADDRESS: usize = 2 * MAX_BROWSERS_PER_ADDRESS;

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
                let most = if ip.is_loopback() {
                    MAX_PER_ADDRESS
                } else {
                    MAX_PER_OTHER_ADDRESS
                };
                if *n >= most {
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

/// Where a connection comes from, for handlers (`ConnectInfo<Peer>`).
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub SocketAddr);

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, Limited>> for Peer {
    fn connect_info(stream: axum::serve::IncomingStream<'_, Limited>) -> Peer {
        Peer(*stream.remote_addr())
    }
}

/// Event streams one address other than this machine may follow at once.
pub const MAX_BROWSERS_PER_ADDRESS: usize = 8;
/// Event streams kept for this machine (the teacher's projector): other
/// addresses together take at most the rest.
pub const KEPT_FOR_THIS_MACHINE: usize = 8;

/// Who follows the event stream: at most `max` at once, at most
/// [`MAX_BROWSERS_PER_ADDRESS`] from one other machine, and
/// [`KEPT_FOR_THIS_MACHINE`] places only this machine may take, so that no
/// laptop in the class can shut the teacher's view out.
#[derive(Debug)]
pub struct Browsers {
    max: usize,
    following: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// A place taken, given back when the stream ends.
#[derive(Debug)]
pub struct Place {
    browsers: Arc<Browsers>,
    ip: IpAddr,
}

impl Browsers {
    pub fn new(max: usize) -> Arc<Browsers> {
        Arc::new(Browsers {
            max,
            following: Mutex::new((0, HashMap::new())),
        })
    }

    /// A place for a browser at `ip`, if there is one.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Place> {
        let mut following = self.following.lock().unwrap_or_else(|e| e.into_inner());
        let (total, per_address) = &mut *following;
        let here = ip.is_loopback();
        let others_max = self.max.saturating_sub(KEPT_FOR_THIS_MACHINE);
        let others: usize = per_address
            .iter()
            .filter(|(a, _)| !a.is_loopback())
            .map(|(_, n)| n)
            .sum();
        let from_ip = per_address.get(&ip).copied().unwrap_or(0);
        let refused = *total >= self.max
            || (!here && (others >= others_max || from_ip >= MAX_BROWSERS_PER_ADDRESS));
        if refused {
            return None;
        }
        *total += 1;
        *per_address.entry(ip).or_default() += 1;
        Some(Place {
            browsers: self.clone(),
            ip,
        })
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut following = self
            .browsers
            .following
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let (total, per_address) = &mut *following;
        *total -= 1;
        if let Some(n) = per_address.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                per_address.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_other_machine_can_take_the_places_kept_for_this_one() {
        let browsers = Browsers::new(24);
        let student = |i: u8| IpAddr::from([10, 0, 0, i]);
        // One laptop: 8 streams, not 9.
        let first: Vec<Place> = (0..8).map_while(|_| browsers.admit(student(1))).collect();
        assert_eq!(first.len(), 8);
        assert!(browsers.admit(student(1)).is_none());
        // Another takes 8 more; then the class has the 16 it may have.
        let second: Vec<Place> = (0..8).map_while(|_| browsers.admit(student(2))).collect();
        assert_eq!(second.len(), 8);
        assert!(browsers.admit(student(3)).is_none());
        // This machine still gets its 8, and nothing more is left.
        let here: Vec<Place> = (0..8)
            .map_while(|_| browsers.admit(IpAddr::from([127, 0, 0, 1])))
            .collect();
        assert_eq!(here.len(), 8);
        assert!(browsers.admit(IpAddr::from([127, 0, 0, 1])).is_none());
        // A stream ending gives its place back.
        drop(first);
        assert!(browsers.admit(student(3)).is_some());
    }
}
