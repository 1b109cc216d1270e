//! Minimal STUN (RFC 5389) Binding support: a responder for servers to advertise as an ICE
//! server, and the client half used by [`crate::Publisher`] to learn its server-reflexive
//! address.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let stun = dreamgate_rtc::StunServer::bind("127.0.0.1".parse().unwrap()).await?;
//! println!("Link: <stun:{}>; rel=\"ice-server\"", stun.addr);
//! # Ok(())
//! # }
//! ```

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

/// The RFC 5389 magic cookie.
pub const MAGIC_COOKIE: u32 = 0x2112_A442;
const HEADER_LEN: usize = 20;
const BINDING_REQUEST: u16 = 0x0001;
const BINDING_SUCCESS: u16 = 0x0101;
const ATTR_XOR_MAPPED_ADDRESS: u16 = 0x0020;
const ATTR_MAPPED_ADDRESS: u16 = 0x0001;
const ATTR_SOFTWARE: u16 = 0x8022;
const SOFTWARE: &[u8] = b"dreamgate";

/// A parsed STUN header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StunHeader {
    /// Message type (class and method).
    pub message_type: u16,
    /// 96-bit transaction id.
    pub transaction_id: [u8; 12],
}

/// Parses and validates a STUN message: header, magic cookie, length and attribute
/// framing. Returns `None` for anything that is not a well-formed STUN message.
pub fn parse_header(msg: &[u8]) -> Option<StunHeader> {
    if msg.len() < HEADER_LEN || msg[0] & 0xC0 != 0 {
        return None;
    }
    let message_type = u16::from_be_bytes([msg[0], msg[1]]);
    let length = usize::from(u16::from_be_bytes([msg[2], msg[3]]));
    let cookie = u32::from_be_bytes([msg[4], msg[5], msg[6], msg[7]]);
    if cookie != MAGIC_COOKIE || length % 4 != 0 || HEADER_LEN + length != msg.len() {
        return None;
    }
    attributes(&msg[HEADER_LEN..])?;
    let mut transaction_id = [0u8; 12];
    transaction_id.copy_from_slice(&msg[8..20]);
    Some(StunHeader { message_type, transaction_id })
}

/// Splits the attribute block into `(type, value)` pairs; `None` if the framing is broken.
fn attributes(mut body: &[u8]) -> Option<Vec<(u16, &[u8])>> {
    let mut out = Vec::new();
    while !body.is_empty() {
        if body.len() < 4 {
            return None;
        }
        let typ = u16::from_be_bytes([body[0], body[1]]);
        let len = usize::from(u16::from_be_bytes([body[2], body[3]]));
        let padded = len.div_ceil(4) * 4;
        if body.len() < 4 + padded {
            return None;
        }
        out.push((typ, &body[4..4 + len]));
        body = &body[4 + padded..];
    }
    Some(out)
}

/// Builds the Binding success response for `request` received from `source`, or `None`
/// if `request` is not a well-formed Binding request.
pub fn binding_response(request: &[u8], source: SocketAddr) -> Option<Vec<u8>> {
    let header = parse_header(request)?;
    if header.message_type != BINDING_REQUEST {
        return None;
    }
    let mut attrs = Vec::with_capacity(40);
    push_attr(&mut attrs, ATTR_XOR_MAPPED_ADDRESS, &xor_address(source, &header.transaction_id));
    push_attr(&mut attrs, ATTR_SOFTWARE, SOFTWARE);
    Some(message(BINDING_SUCCESS, &header.transaction_id, &attrs))
}

/// Builds a Binding request with the given transaction id.
pub fn binding_request(transaction_id: &[u8; 12]) -> Vec<u8> {
    message(BINDING_REQUEST, transaction_id, &[])
}

/// Reads the mapped address out of a Binding success response to `transaction_id`.
pub fn mapped_address(response: &[u8], transaction_id: &[u8; 12]) -> Option<SocketAddr> {
    let header = parse_header(response)?;
    if header.message_type != BINDING_SUCCESS || &header.transaction_id != transaction_id {
        return None;
    }
    let attrs = attributes(&response[HEADER_LEN..])?;
    let xor = attrs.iter().find(|(t, _)| *t == ATTR_XOR_MAPPED_ADDRESS);
    if let Some((_, value)) = xor {
        return decode_address(value, Some(transaction_id));
    }
    let plain = attrs.iter().find(|(t, _)| *t == ATTR_MAPPED_ADDRESS)?;
    decode_address(plain.1, None)
}

fn message(message_type: u16, transaction_id: &[u8; 12], attrs: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + attrs.len());
    out.extend_from_slice(&message_type.to_be_bytes());
    out.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    out.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
    out.extend_from_slice(transaction_id);
    out.extend_from_slice(attrs);
    out
}

fn push_attr(out: &mut Vec<u8>, typ: u16, value: &[u8]) {
    out.extend_from_slice(&typ.to_be_bytes());
    out.extend_from_slice(&(value.len() as u16).to_be_bytes());
    out.extend_from_slice(value);
    out.resize(out.len() + (4 - value.len() % 4) % 4, 0);
}

/// XOR key: magic cookie followed by the transaction id (RFC 5389 section 15.2).
fn xor_key(transaction_id: &[u8; 12]) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    key[4..].copy_from_slice(transaction_id);
    key
}

fn xor_address(addr: SocketAddr, transaction_id: &[u8; 12]) -> Vec<u8> {
    let key = xor_key(transaction_id);
    let port = addr.port() ^ (MAGIC_COOKIE >> 16) as u16;
    let mut v = vec![0, if addr.is_ipv4() { 0x01 } else { 0x02 }];
    v.extend_from_slice(&port.to_be_bytes());
    match addr.ip() {
        IpAddr::V4(ip) => v.extend(ip.octets().iter().zip(key).map(|(b, k)| b ^ k)),
        IpAddr::V6(ip) => v.extend(ip.octets().iter().zip(key).map(|(b, k)| b ^ k)),
    }
    v
}

fn decode_address(value: &[u8], xor_with: Option<&[u8; 12]>) -> Option<SocketAddr> {
    if value.len() < 4 {
        return None;
    }
    let key = xor_with.map(xor_key).unwrap_or([0u8; 16]);
    let port_key = if xor_with.is_some() { (MAGIC_COOKIE >> 16) as u16 } else { 0 };
    let port = u16::from_be_bytes([value[2], value[3]]) ^ port_key;
    let ip = match (value[1], value.len()) {
        (0x01, 8) => {
            let mut o = [0u8; 4];
            for (i, b) in o.iter_mut().enumerate() {
                *b = value[4 + i] ^ key[i];
            }
            IpAddr::from(o)
        }
        (0x02, 20) => {
            let mut o = [0u8; 16];
            for (i, b) in o.iter_mut().enumerate() {
                *b = value[4 + i] ^ key[i];
            }
            IpAddr::from(o)
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// A random 96-bit transaction id (std's per-process random hasher keys; no extra crate).
pub(crate) fn new_transaction_id() -> [u8; 12] {
    let mut id = [0u8; 12];
    for (i, chunk) in id.chunks_mut(4).enumerate() {
        // Each RandomState has fresh random keys.
        let mut h = RandomState::new().build_hasher();
        h.write_usize(i);
        chunk.copy_from_slice(&h.finish().to_be_bytes()[..4]);
    }
    id
}

/// Asks the STUN server at `server` for the reflexive address of `socket`, retransmitting
/// a few times within `timeout`. `None` when there is no valid answer in time.
pub(crate) async fn query(socket: &UdpSocket, server: SocketAddr, timeout: Duration) -> Option<SocketAddr> {
    let id = new_transaction_id();
    let request = binding_request(&id);
    let attempt = timeout / 3;
    let mut buf = [0u8; 1500];
    for _ in 0..3 {
        socket.send_to(&request, server).await.ok()?;
        let wait = tokio::time::timeout(attempt, async {
            loop {
                let (n, from) = socket.recv_from(&mut buf).await.ok()?;
                if from == server {
                    if let Some(addr) = mapped_address(&buf[..n], &id) {
                        return Some(addr);
                    }
                }
            }
        });
        if let Ok(result) = wait.await {
            return result;
        }
    }
    None
}

/// Binding requests to a set of STUN servers sent from a socket that is busy with other
/// traffic (a running peer's): a pure machine that takes the current time and the
/// datagrams it is shown, and says what to send and when it is done. Each server gets up to
/// three requests, `timeout / 3` apart; the probe ends at `timeout` or once every server
/// answered.
#[derive(Debug)]
pub(crate) struct ReflexiveProbe {
    servers: Vec<ProbeServer>,
    interval: Duration,
    deadline: std::time::Instant,
    mapped: Vec<SocketAddr>,
}

#[derive(Debug)]
struct ProbeServer {
    addr: SocketAddr,
    transaction_id: [u8; 12],
    sent: u32,
    next: std::time::Instant,
    answered: bool,
}

impl ReflexiveProbe {
    const ATTEMPTS: u32 = 3;

    /// A probe of `servers` starting at `now`, ending at `now + timeout` at the latest.
    pub(crate) fn new(now: std::time::Instant, servers: &[SocketAddr], timeout: Duration) -> Self {
        let servers = servers
            .iter()
            .map(|&addr| ProbeServer {
                addr,
                transaction_id: new_transaction_id(),
                sent: 0,
                next: now,
                answered: false,
            })
            .collect();
        ReflexiveProbe { servers, interval: timeout / Self::ATTEMPTS, deadline: now + timeout, mapped: Vec::new() }
    }

    /// The Binding requests due at `now`, with their destination.
    pub(crate) fn poll_transmit(&mut self, now: std::time::Instant) -> Vec<(SocketAddr, Vec<u8>)> {
        if self.is_done(now) {
            return Vec::new();
        }
        let mut out = Vec::new();
        for s in &mut self.servers {
            if !s.answered && s.sent < Self::ATTEMPTS && now >= s.next {
                s.sent += 1;
                s.next = now + self.interval;
                out.push((s.addr, binding_request(&s.transaction_id)));
            }
        }
        out
    }

    /// Takes `datagram` if it is the answer of one of our servers (`true`: not for the peer).
    pub(crate) fn on_datagram(&mut self, from: SocketAddr, datagram: &[u8]) -> bool {
        let Some(s) = self.servers.iter_mut().find(|s| s.addr == from && !s.answered) else {
            return false;
        };
        let Some(mapped) = mapped_address(datagram, &s.transaction_id) else {
            return false;
        };
        s.answered = true;
        if !self.mapped.contains(&mapped) {
            self.mapped.push(mapped);
        }
        true
    }

    /// When to call [`poll_transmit`](Self::poll_transmit) again (or check
    /// [`is_done`](Self::is_done)).
    pub(crate) fn next_wake(&self) -> std::time::Instant {
        self.servers
            .iter()
            .filter(|s| !s.answered && s.sent < Self::ATTEMPTS)
            .map(|s| s.next)
            .fold(self.deadline, |a, b| a.min(b))
    }

    /// Every server answered, or the time is up.
    pub(crate) fn is_done(&self, now: std::time::Instant) -> bool {
        now >= self.deadline || self.servers.iter().all(|s| s.answered)
    }

    /// The distinct mapped addresses learnt so far.
    pub(crate) fn mapped(&self) -> &[SocketAddr] {
        &self.mapped
    }
}

/// A STUN Binding responder on its own UDP socket. Answers Binding requests with the
/// requester's address (XOR-MAPPED-ADDRESS) and ignores everything else.
///
/// The responder task stops when the `StunServer` is dropped.
#[derive(Debug)]
pub struct StunServer {
    /// The address it listens on (`ip:port`).
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl StunServer {
    /// Binds `ip:0` and starts answering.
    pub async fn bind(ip: IpAddr) -> io::Result<StunServer> {
        let socket = UdpSocket::bind(SocketAddr::new(ip, 0)).await?;
        let addr = socket.local_addr()?;
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 2048];
            loop {
                let (n, from) = match socket.recv_from(&mut buf).await {
                    Ok(v) => v,
                    // e.g. ICMP errors reported on the socket: keep serving.
                    Err(e) => {
                        tracing::debug!("stun: recv error: {e}");
                        continue;
                    }
                };
                if let Some(response) = binding_response(&buf[..n], from) {
                    if let Err(e) = socket.send_to(&response, from).await {
                        tracing::debug!("stun: send to {from} failed: {e}");
                    }
                }
            }
        });
        Ok(StunServer { addr, task })
    }

    /// The `stun:` URL of this server, e.g. `stun:127.0.0.1:34567`.
    pub fn url(&self) -> String {
        format!("stun:{}", self.addr)
    }
}

impl Drop for StunServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_round_trips_v4_and_v6() {
        let id = [7u8; 12];
        let req = binding_request(&id);
        for src in ["192.0.2.1:40000", "[2001:db8::1]:5000"] {
            let src: SocketAddr = src.parse().unwrap();
            let resp = binding_response(&req, src).unwrap();
            assert_eq!(mapped_address(&resp, &id), Some(src));
            // Wrong transaction id: not ours.
            assert_eq!(mapped_address(&resp, &[8u8; 12]), None);
        }
    }

    #[test]
    fn garbage_gets_no_answer() {
        let src: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let id = [1u8; 12];
        let good = binding_request(&id);
        let mut cases: Vec<Vec<u8>> = vec![vec![], vec![0; 19], vec![0xff; 20], b"GET / HTTP/1.1\r\n\r\nxx".to_vec()];
        // Bad cookie.
        let mut bad = good.clone();
        bad[4] ^= 1;
        cases.push(bad);
        // Length field says more than there is.
        let mut bad = good.clone();
        bad[3] = 8;
        cases.push(bad);
        // Truncated attribute.
        let mut bad = good.clone();
        bad[3] = 4;
        bad.extend_from_slice(&[0x00, 0x20, 0x00, 0x08]);
        cases.push(bad);
        // A success response is not a request.
        cases.push(binding_response(&good, src).unwrap());
        for c in &cases {
            assert_eq!(binding_response(c, src), None, "answered {c:?}");
        }
        // Every truncation of a valid request is rejected, none panics.
        for n in 0..good.len() {
            assert_eq!(binding_response(&good[..n], src), None);
        }
    }

    #[test]
    fn reflexive_probe_retransmits_then_ends_on_time() {
        let t0 = std::time::Instant::now();
        let a: SocketAddr = "192.0.2.1:3478".parse().unwrap();
        let b: SocketAddr = "192.0.2.2:3478".parse().unwrap();
        let mut probe = ReflexiveProbe::new(t0, &[a, b], Duration::from_millis(900));
        let first = probe.poll_transmit(t0);
        assert_eq!(first.iter().map(|(to, _)| *to).collect::<Vec<_>>(), vec![a, b]);
        assert!(probe.poll_transmit(t0).is_empty(), "nothing again before the interval");
        assert_eq!(probe.next_wake(), t0 + Duration::from_millis(300));

        // `a` answers; a stranger's datagram and a wrong transaction are not ours.
        let id_a = parse_header(&first[0].1).unwrap().transaction_id;
        let mapped: SocketAddr = "203.0.113.9:61000".parse().unwrap();
        let answer = binding_response(&first[0].1, mapped).unwrap();
        assert!(!probe.on_datagram(b, &answer), "from the wrong server");
        assert!(!probe.on_datagram(a, &binding_response(&first[1].1, mapped).unwrap()), "wrong transaction");
        assert_eq!(mapped_address(&answer, &id_a), Some(mapped));
        assert!(probe.on_datagram(a, &answer));
        assert_eq!(probe.mapped(), &[mapped]);

        // Only `b` is asked again, twice more, then the probe ends at its deadline.
        let t1 = t0 + Duration::from_millis(300);
        assert_eq!(probe.poll_transmit(t1).iter().map(|(to, _)| *to).collect::<Vec<_>>(), vec![b]);
        let t2 = t0 + Duration::from_millis(600);
        assert_eq!(probe.poll_transmit(t2).len(), 1);
        assert!(probe.poll_transmit(t0 + Duration::from_millis(899)).is_empty(), "three attempts at most");
        assert_eq!(probe.next_wake(), t0 + Duration::from_millis(900));
        assert!(!probe.is_done(t0 + Duration::from_millis(899)));
        assert!(probe.is_done(t0 + Duration::from_millis(900)));
    }

    #[test]
    fn reflexive_probe_is_done_once_every_server_answered() {
        let t0 = std::time::Instant::now();
        let a: SocketAddr = "192.0.2.1:3478".parse().unwrap();
        let mut probe = ReflexiveProbe::new(t0, &[a], Duration::from_secs(1));
        let sent = probe.poll_transmit(t0);
        let mapped: SocketAddr = "203.0.113.9:61000".parse().unwrap();
        assert!(probe.on_datagram(a, &binding_response(&sent[0].1, mapped).unwrap()));
        assert!(probe.is_done(t0));
        assert!(!probe.on_datagram(a, &binding_response(&sent[0].1, mapped).unwrap()), "answered already");
        // No server at all: done at once.
        assert!(ReflexiveProbe::new(t0, &[], Duration::from_secs(1)).is_done(t0));
    }

    #[test]
    fn transaction_ids_differ() {
        assert_ne!(new_transaction_id(), new_transaction_id());
    }
}
