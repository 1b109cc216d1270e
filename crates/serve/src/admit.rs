//! Connection caps: overall and per peer.
//!
//! A peer is an IPv4 address, or an IPv6 /64 prefix (one host usually holds a
//! whole /64, so counting single IPv6 addresses would cap nothing). An IPv4
//! address mapped into IPv6 (`::ffff:a.b.c.d`, from a dual-stack listener)
//! counts as that IPv4 address.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, PoisonError};

/// The key connections are counted under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerKey(IpAddr);

impl PeerKey {
    /// The key for a peer address.
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => PeerKey(IpAddr::V4(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => PeerKey(IpAddr::V4(v4)),
                None => {
                    let s = v6.segments();
                    PeerKey(IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0)))
                }
            },
        }
    }
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// `max_connections` are open.
    Total,
    /// This peer holds `max_connections_per_ip`.
    PerPeer,
}

/// Open connections, overall and per peer (pure bookkeeping).
#[derive(Debug, Default)]
pub struct Admission {
    total: usize,
    per_peer: HashMap<PeerKey, usize>,
}

impl Admission {
    /// Counts a new connection from `peer`, or says why it is refused.
    pub fn try_admit(&mut self, peer: PeerKey, max_total: usize, max_per_peer: usize) -> Result<(), Refused> {
        if self.total >= max_total {
            return Err(Refused::Total);
        }
        let n = self.per_peer.entry(peer).or_insert(0);
        if *n >= max_per_peer {
            return Err(Refused::PerPeer);
        }
        *n += 1;
        self.total += 1;
        Ok(())
    }

    /// A connection from `peer` closed.
    pub fn release(&mut self, peer: PeerKey) {
        if let Some(n) = self.per_peer.get_mut(&peer) {
            *n -= 1;
            self.total -= 1;
            if *n == 0 {
                self.per_peer.remove(&peer);
                // give memory back after a flood from many addresses
                if self.per_peer.capacity() > 64 && self.per_peer.len() < self.per_peer.capacity() / 4 {
                    self.per_peer.shrink_to_fit();
                }
            }
        }
    }

    /// Open connections overall.
    pub fn total(&self) -> usize {
        self.total
    }

    /// Open connections of `peer`.
    pub fn of(&self, peer: PeerKey) -> usize {
        self.per_peer.get(&peer).copied().unwrap_or(0)
    }
}

/// [`Admission`] shared by the accept loop and the connection tasks.
#[derive(Debug)]
pub(crate) struct Slots {
    state: Mutex<Admission>,
    max_total: usize,
    max_per_peer: usize,
}

impl Slots {
    pub(crate) fn new(max_total: usize, max_per_peer: usize) -> Arc<Self> {
        Arc::new(Self { state: Mutex::new(Admission::default()), max_total, max_per_peer })
    }

    /// A slot for a connection from `ip`, released when dropped.
    pub(crate) fn take(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, Refused> {
        let peer = PeerKey::of(ip);
        self.state.lock().unwrap_or_else(PoisonError::into_inner).try_admit(peer, self.max_total, self.max_per_peer)?;
        Ok(Slot { slots: self.clone(), peer })
    }

    /// Open connections overall.
    pub(crate) fn total(&self) -> usize {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).total()
    }
}

/// One admitted connection; dropping it frees the slot.
#[derive(Debug)]
pub(crate) struct Slot {
    slots: Arc<Slots>,
    peer: PeerKey,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.slots.state.lock().unwrap_or_else(PoisonError::into_inner).release(self.peer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn peers_are_ipv4_addresses_or_ipv6_64_prefixes() {
        assert_eq!(PeerKey::of(ip("::ffff:10.0.0.1")), PeerKey::of(ip("10.0.0.1")));
        assert_ne!(PeerKey::of(ip("10.0.0.1")), PeerKey::of(ip("10.0.0.2")));
        assert_eq!(PeerKey::of(ip("2001:db8:1:2::1")), PeerKey::of(ip("2001:db8:1:2:ffff::9")));
        assert_ne!(PeerKey::of(ip("2001:db8:1:2::1")), PeerKey::of(ip("2001:db8:1:3::1")));
    }

    #[test]
    fn per_peer_and_total_caps() {
        let mut a = Admission::default();
        let (p, q, r) = (PeerKey::of(ip("127.0.0.1")), PeerKey::of(ip("127.0.0.2")), PeerKey::of(ip("127.0.0.3")));
        assert_eq!(a.try_admit(p, 3, 2), Ok(()));
        assert_eq!(a.try_admit(p, 3, 2), Ok(()));
        assert_eq!(a.try_admit(p, 3, 2), Err(Refused::PerPeer));
        assert_eq!(a.try_admit(q, 3, 2), Ok(()));
        assert_eq!(a.try_admit(r, 3, 2), Err(Refused::Total));
        assert_eq!((a.total(), a.of(p), a.of(q)), (3, 2, 1));
        a.release(p);
        assert_eq!(a.try_admit(r, 3, 2), Ok(()));
        for k in [p, q, r] {
            a.release(k);
        }
        assert_eq!((a.total(), a.of(p), a.of(q), a.of(r)), (0, 0, 0, 0));
        a.release(r); // an unknown release changes nothing
        assert_eq!(a.total(), 0);
    }

    #[test]
    fn slots_are_released_on_drop_and_memory_is_returned() {
        let slots = Slots::new(100_000, 1);
        let held: Vec<Slot> = (0..5000u32).map(|i| slots.take(IpAddr::V4(i.into())).unwrap()).collect();
        assert_eq!(slots.take(IpAddr::V4(7u32.into())).unwrap_err(), Refused::PerPeer);
        drop(held);
        let st = slots.state.lock().unwrap();
        assert_eq!(st.total(), 0);
        assert!(st.per_peer.capacity() < 1000, "capacity {}", st.per_peer.capacity());
    }
}
