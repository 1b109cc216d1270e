//! Raw HTTP/1.1 over loopback TCP, for the hostile-connection suites: a connection from a
//! chosen source address, "did the server close it in time", and one hand-written request and
//! its response.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Far more than any timeout the suites configure: a connection still open after this was
/// never going to close, and a response not begun by then is not coming.
pub const GENEROUS: Duration = Duration::from_secs(10);

/// A TCP connection to `addr` from the loopback address `src` (e.g. `"127.0.0.2"`, so one
/// test can be two clients).
///
/// # Panics
///
/// When `src` is not an address or the connection fails.
pub async fn connect_from(src: &str, addr: SocketAddr) -> TcpStream {
    try_connect_from(src, addr).await.expect("connect")
}

/// [`connect_from`], with the error (a refused or reset connection is what some tests want).
pub async fn try_connect_from(src: &str, addr: SocketAddr) -> std::io::Result<TcpStream> {
    let ip: IpAddr = src.parse().map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(ip, 0))?;
    socket.connect(addr).await
}

/// Reads until the server closes the connection; `Some(what was read)` if it did within
/// `limit`, `None` if it was still open then.
pub async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Vec<u8>> {
    let mut seen = Vec::new();
    let read_all = async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(limit, read_all).await.ok()?;
    Some(seen)
}

/// Writes `request` (the whole HTTP/1.1 text) and reads one response, by its
/// `Content-Length`: `(status, body)`. The connection stays open.
///
/// # Panics
///
/// When no complete response comes within [`GENEROUS`] of each read, or the server closes first.
pub async fn roundtrip(stream: &mut TcpStream, request: &str) -> (u16, String) {
    stream.write_all(request.as_bytes()).await.expect("write the request");
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let len = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>()))
                .transpose()
                .expect("a numeric Content-Length")
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status line");
                return (status, String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).to_string());
            }
        }
        let n = tokio::time::timeout(GENEROUS, stream.read(&mut chunk))
            .await
            .expect("a response in time")
            .expect("read the response");
        assert!(n > 0, "closed before a full response: {:?}", String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&chunk[..n]);
    }
}
