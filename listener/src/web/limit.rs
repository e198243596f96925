//! The web view's connections, bounded, so that no student's laptop can
//! hold the teacher's view or its memory:
//! - at most [`MAX_CONNECTIONS`] open at once, of which
//!   [`KEPT_CONNECTIONS`] only this machine (the teacher's) may take;
//! - at most [`MAX_PER_OTHER_ADDRESS`] from one other machine and
//!   [`MAX_PER_ADDRESS`] from this one (more are closed at once);
//! - a request head must arrive within [`HEADER_TIMEOUT`], so that a
//!   connection that sends nothing, or half a request, is not held (hyper's
//!   `header_read_timeout`);
//! - event streams are shared out by [`Browsers`].
//!
//! "This machine" is a peer whose address is the one it reached the view
//! on: the teacher's browser on 127.0.0.1, or on the laptop's own LAN
//! address. Any other address, 127.0.0.2 included, is another machine.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// Most connections open at once (a browser opens a few; each holds a
/// task and its buffers).
pub const MAX_CONNECTIONS: usize = 256;
/// Of those, places only this machine may take.
pub const KEPT_CONNECTIONS: usize = 32;
/// Most connections from this machine: every event stream the view serves
/// ([`super::MAX_BROWSERS`]) and a few page loads besides.
pub const MAX_PER_ADDRESS: usize = super::MAX_BROWSERS + 16;
/// Most connections from one other machine: its event streams
/// ([`MAX_BROWSERS_PER_ADDRESS`]) and as many page loads.
pub const MAX_PER_OTHER_ADDRESS: usize = 2 * MAX_BROWSERS_PER_ADDRESS;

/// How long a request's head may take to arrive, from the moment the view
/// starts waiting for it (a new connection, or one kept alive after a
/// response): a connection that sends nothing, or half a request, is
/// closed then.
pub const HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

#[derive(Debug, Default)]
struct Open {
    total: usize,
    per_address: HashMap<IpAddr, usize>,
}

/// A listener that hands out only connections within the limits.
#[derive(Debug)]
pub struct Limited {
    inner: TcpListener,
    open: Arc<Mutex<Open>>,
}

impl Limited {
    pub fn new(inner: TcpListener) -> Limited {
        Limited {
            inner,
            open: Arc::default(),
        }
    }

    /// The next connection within the limits; those over them are closed
    /// as soon as they are accepted (which costs less than leaving them in
    /// the kernel's queue, in front of the teacher's).
    pub async fn accept(&mut self) -> Connection {
        loop {
            let (stream, addr) = match self.inner.accept().await {
                Ok(accepted) => accepted,
                Err(_) => {
                    // E.g. out of file descriptors: let some close first.
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let ip = addr.ip();
            let this_machine = stream.local_addr().is_ok_and(|local| local.ip() == ip);
            {
                let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
                let (most_here, most_total) = if this_machine {
                    (MAX_PER_ADDRESS, MAX_CONNECTIONS)
                } else {
                    (MAX_PER_OTHER_ADDRESS, MAX_CONNECTIONS - KEPT_CONNECTIONS)
                };
                let from_ip = open.per_address.get(&ip).copied().unwrap_or(0);
                if from_ip >= most_here || open.total >= most_total {
                    // Closed at once (dropped).
                    continue;
                }
                open.total += 1;
                *open.per_address.entry(ip).or_default() += 1;
            }
            return Connection {
                stream,
                peer: Peer { addr, this_machine },
                open: self.open.clone(),
            };
        }
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// A connection, holding its place until it closes.
#[derive(Debug)]
pub struct Connection {
    stream: TcpStream,
    peer: Peer,
    open: Arc<Mutex<Open>>,
}

impl Connection {
    pub fn peer(&self) -> Peer {
        self.peer
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // Every update is a few plain steps: a poisoned lock is still
        // consistent.
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.total -= 1;
        let ip = self.peer.addr.ip();
        if let Some(n) = open.per_address.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                open.per_address.remove(&ip);
            }
        }
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
pub struct Peer {
    pub addr: SocketAddr,
    /// The teacher's own machine (see the module's notes).
    pub this_machine: bool,
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
    /// Streams in all, per address, and from other machines.
    following: Mutex<(usize, HashMap<IpAddr, usize>, usize)>,
}

/// A place taken, given back when the stream ends.
#[derive(Debug)]
pub struct Place {
    browsers: Arc<Browsers>,
    ip: IpAddr,
    here: bool,
}

impl Browsers {
    pub fn new(max: usize) -> Arc<Browsers> {
        Arc::new(Browsers {
            max,
            following: Mutex::new((0, HashMap::new(), 0)),
        })
    }

    /// A place for a browser at `ip` (on this machine if `here`), if there
    /// is one.
    pub fn admit(self: &Arc<Self>, ip: IpAddr, here: bool) -> Option<Place> {
        let mut following = self.following.lock().unwrap_or_else(|e| e.into_inner());
        let (total, per_address, others) = &mut *following;
        let others_max = self.max.saturating_sub(KEPT_FOR_THIS_MACHINE);
        let from_ip = per_address.get(&ip).copied().unwrap_or(0);
        let refused = *total >= self.max
            || (!here && (*others >= others_max || from_ip >= MAX_BROWSERS_PER_ADDRESS));
        if refused {
            return None;
        }
        *total += 1;
        *others += usize::from(!here);
        *per_address.entry(ip).or_default() += 1;
        Some(Place {
            browsers: self.clone(),
            ip,
            here,
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
        let (total, per_address, others) = &mut *following;
        *total -= 1;
        *others -= usize::from(!self.here);
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
        let first: Vec<Place> = (0..8)
            .map_while(|_| browsers.admit(student(1), false))
            .collect();
        assert_eq!(first.len(), 8);
        assert!(browsers.admit(student(1), false).is_none());
        // Another takes 8 more; then the class has the 16 it may have.
        let second: Vec<Place> = (0..8)
            .map_while(|_| browsers.admit(student(2), false))
            .collect();
        assert_eq!(second.len(), 8);
        assert!(browsers.admit(student(3), false).is_none());
        // This machine still gets its 8, and nothing more is left.
        let here: Vec<Place> = (0..8)
            .map_while(|_| browsers.admit(IpAddr::from([127, 0, 0, 1]), true))
            .collect();
        assert_eq!(here.len(), 8);
        assert!(browsers.admit(IpAddr::from([127, 0, 0, 1]), true).is_none());
        // A stream ending gives its place back.
        drop(first);
        assert!(browsers.admit(student(3), false).is_some());
    }
}
