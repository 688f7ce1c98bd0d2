//! The handshakes in progress, bounded apart from the admitted sessions.
//!
//! A connection that has not authenticated yet costs a thread and a slot
//! but proves nothing, so it must not be able to keep a writer out. The
//! replica keeps at most [`MAX_HANDSHAKES`] of them, and at most
//! [`MAX_HANDSHAKES_PER_PEER`] from one address: a new connection beyond
//! either bound closes the oldest one it competes with (its own address's
//! first). A peer that floods the port, however fast it reconnects, so
//! churns through its own few slots and never closes another address's
//! handshake; a real writer's handshake takes a few round trips. Each
//! message of a handshake must also arrive within the control timeout
//! ([`super::paced`]), so a connection never holds a slot for long.
//! Admitted writers are counted apart (at most `max_sessions`, checked at
//! admission) and are never closed to make room.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Most handshakes in progress at once.
pub(super) const MAX_HANDSHAKES: usize = 16;
/// Most handshakes in progress from one address (a host's writer and its
/// closure reconnecting together need two).
pub(super) const MAX_HANDSHAKES_PER_PEER: usize = 4;

struct Open<T> {
    id: u64,
    peer: IpAddr,
    since: Instant,
    handle: T,
}

/// Handshakes in progress, oldest first; `T` is what closes one (a clone
/// of its socket).
pub(super) struct Pending<T> {
    cap: usize,
    per_peer: usize,
    next: u64,
    open: VecDeque<Open<T>>,
}

/// A handshake closed to make room for a newer one.
#[derive(Debug)]
pub(super) struct Evicted<T> {
    /// Its peer's address.
    pub(super) peer: IpAddr,
    /// How long it had been in progress.
    pub(super) age: Duration,
    /// What closes it.
    pub(super) handle: T,
}

impl<T> Pending<T> {
    /// At most `cap` in progress, `per_peer` from one address (each at
    /// least 1).
    pub(super) fn new(cap: usize, per_peer: usize) -> Self {
        let cap = cap.max(1);
        Pending {
            cap,
            per_peer: per_peer.max(1),
            next: 0,
            open: VecDeque::with_capacity(cap),
        }
    }

    /// Enters a handshake from `peer` begun at `now`; returns its id, and
    /// the one to close if a bound was reached: the oldest from `peer` if
    /// it has `per_peer` in progress, else the oldest of all if `cap` are.
    pub(super) fn enter(
        &mut self,
        handle: T,
        peer: IpAddr,
        now: Instant,
    ) -> (u64, Option<Evicted<T>>) {
        let from_peer = self.open.iter().filter(|o| o.peer == peer).count();
        let victim = if from_peer >= self.per_peer {
            self.open.iter().position(|o| o.peer == peer)
        } else if self.open.len() >= self.cap {
            Some(0)
        } else {
            None
        };
        let evicted = victim.and_then(|i| self.open.remove(i)).map(|o| Evicted {
            peer: o.peer,
            age: now.saturating_duration_since(o.since),
            handle: o.handle,
        });
        let id = self.next;
        self.next += 1;
        self.open.push_back(Open {
            id,
            peer,
            since: now,
            handle,
        });
        (id, evicted)
    }

    /// The handshake `id` ended (admitted, refused, or closed); nothing if
    /// it was already evicted.
    pub(super) fn leave(&mut self, id: u64) {
        if let Some(i) = self.open.iter().position(|o| o.id == id) {
            self.open.remove(i);
        }
    }

    /// Takes every handshake in progress (to close them all).
    pub(super) fn drain(&mut self) -> Vec<T> {
        self.open.drain(..).map(|o| o.handle).collect()
    }

    /// How many are in progress.
    pub(super) fn count(&self) -> usize {
        self.open.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
    }

    #[test]
    fn beyond_the_bound_the_oldest_handshake_makes_room() {
        let t0 = Instant::now();
        let mut p = Pending::new(3, 3);
        let ids: Vec<u64> = (0..3u8)
            .map(|i| {
                let at = t0 + Duration::from_millis(i.into());
                let (id, ev) = p.enter(i, ip(i), at);
                assert!(ev.is_none(), "room for {i}");
                id
            })
            .collect();
        assert_eq!(p.count(), 3);
        let (fourth, ev) = p.enter(3, ip(3), t0 + Duration::from_millis(10));
        let ev = ev.expect("the bound is reached: the oldest goes");
        assert_eq!((ev.handle, ev.peer), (0, ip(0)));
        assert_eq!(ev.age, Duration::from_millis(10));
        assert_eq!(p.count(), 3);
        // The evicted one leaving later changes nothing; the others leave.
        p.leave(ids[0]);
        assert_eq!(p.count(), 3);
        p.leave(ids[2]);
        assert_eq!(p.count(), 2);
        let (_, ev) = p.enter(4, ip(4), t0 + Duration::from_millis(20));
        assert!(ev.is_none(), "a slot was free");
        let (_, ev) = p.enter(5, ip(5), t0 + Duration::from_millis(30));
        assert_eq!(ev.unwrap().handle, 1, "oldest still in progress");
        p.leave(fourth);
        assert_eq!(p.count(), 2);
    }

    #[test]
    fn a_flooding_address_churns_through_its_own_slots_only() {
        // A writer's handshake from one address, then a peer at another
        // that opens forty connections and reconnects each one it loses,
        // a thousand times over: the writer's is never the one closed.
        let t0 = Instant::now();
        let mut p = Pending::new(MAX_HANDSHAKES, MAX_HANDSHAKES_PER_PEER);
        let (writer, ev) = p.enter(u32::MAX, ip(1), t0);
        assert!(ev.is_none());
        let mut lost = 0;
        for i in 0..1040u32 {
            let (_, ev) = p.enter(i, ip(2), t0 + Duration::from_micros(i.into()));
            if let Some(ev) = ev {
                assert_eq!(ev.peer, ip(2), "only the flooder's own are closed");
                lost += 1;
            }
        }
        assert_eq!(lost, 1040 - MAX_HANDSHAKES_PER_PEER);
        assert_eq!(p.count(), 1 + MAX_HANDSHAKES_PER_PEER);
        p.leave(writer);
        assert_eq!(p.count(), MAX_HANDSHAKES_PER_PEER);
    }

    #[test]
    fn many_addresses_share_the_global_bound_oldest_first() {
        let t0 = Instant::now();
        let mut p = Pending::new(4, 2);
        for i in 0..4u8 {
            assert!(p.enter(i, ip(i), t0).1.is_none());
        }
        // A fifth address: the global bound closes the oldest of all.
        let ev = p.enter(4, ip(4), t0).1.unwrap();
        assert_eq!(ev.handle, 0);
        // A second from address 4: within its own bound, so the global
        // bound again closes the oldest (address 1's).
        assert_eq!(p.enter(5, ip(4), t0).1.unwrap().handle, 1);
        // A third from address 4: its own bound closes its own oldest.
        assert_eq!(p.enter(6, ip(4), t0).1.unwrap().handle, 4);
    }

    #[test]
    fn zero_bounds_are_one() {
        let mut p = Pending::new(0, 0);
        assert!(p.enter('a', ip(1), Instant::now()).1.is_none());
        assert_eq!(p.enter('b', ip(2), Instant::now()).1.unwrap().handle, 'a');
    }
}
