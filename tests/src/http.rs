//! Plain HTTP/1.1 GET and POST for tests of the web view: no client
//! library, the bytes a browser would send.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The status code and body of `GET path` on `addr` (`host:port`),
/// failing the test after `timeout`.
pub async fn get(addr: &str, path: &str, timeout: Duration) -> (u16, String) {
    request("GET", addr, path, timeout).await
}

/// The status code and body of an empty `POST path` (a button pressed).
pub async fn post(addr: &str, path: &str, timeout: Duration) -> (u16, String) {
    request("POST", addr, path, timeout).await
}

async fn request(method: &str, addr: &str, path: &str, timeout: Duration) -> (u16, String) {
    let mut s = TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"));
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    s.write_all(request.as_bytes())
        .await
        .unwrap_or_else(|e| panic!("cannot send to {addr}: {e}"));
    let mut raw = Vec::new();
    tokio::time::timeout(timeout, s.read_to_end(&mut raw))
        .await
        .unwrap_or_else(|_| panic!("no answer from {addr}{path} in {timeout:?}"))
        .unwrap_or_else(|e| panic!("cannot read from {addr}: {e}"));
    response(&raw)
}

/// The status code (0: none) and body of an HTTP/1.1 response's bytes.
pub fn response(raw: &[u8]) -> (u16, String) {
    let text = String::from_utf8_lossy(raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}
