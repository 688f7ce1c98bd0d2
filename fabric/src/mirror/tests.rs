//! The mirror's protocol logic over a scripted data path (no device): what
//! it posts for a range, when it calls a position durable, and what a
//! failure or a timeout leaves. The same behaviour on real verbs is proven
//! by `fabric/tests/rdma_mirror_ships_ring_ranges.rs` in the VM tier.

use std::time::{Duration, Instant};

use super::{chunks_of, Mirror, MirrorError};
use crate::transport::{Clock, RingOp, ShipPath};
use crate::verbs::{VerbsError, MAX_OPS_PER_POST};
use crate::wire::PersistenceMode;

/// A data path that records every list and completes what the test says.
#[derive(Debug, Default)]
struct Scripted {
    lists: Vec<Vec<RingOp>>,
    /// Tickets handed out so far (one per request, like wr_ids).
    posted: u64,
    /// Highest ticket the "device" has completed.
    completed: u64,
    /// Complete every list as soon as it is posted.
    instant: bool,
    /// The next reap fails.
    fail_next: bool,
    aborted: Option<u64>,
    max_chunk: u64,
    in_flight: usize,
}

impl ShipPath for Scripted {
    fn post(&mut self, ops: &[RingOp]) -> Result<u64, VerbsError> {
        assert!(!ops.is_empty() && ops.len() <= MAX_OPS_PER_POST, "{ops:?}");
        self.lists.push(ops.to_vec());
        self.posted += ops.len() as u64;
        if self.instant {
            self.completed = self.posted;
        }
        Ok(self.posted)
    }
    fn reap(&mut self) -> Result<u64, VerbsError> {
        if std::mem::take(&mut self.fail_next) {
            return Err(VerbsError::QpBroken {
                device: "sim0".into(),
                qpn: 7,
            });
        }
        Ok(self.completed)
    }
    fn abort(&mut self, last: u64) {
        self.aborted = Some(last);
    }
    fn recv(&mut self, _out: &mut [u8], _timeout: Duration) -> Result<usize, VerbsError> {
        unreachable!("apm only")
    }
    fn max_chunk(&self) -> u64 {
        self.max_chunk
    }
    fn max_in_flight(&self) -> usize {
        self.in_flight
    }
    fn is_broken(&self) -> bool {
        self.aborted.is_some()
    }
    fn timed_out(&self, waited: Duration) -> VerbsError {
        VerbsError::Timeout {
            device: "sim0".into(),
            qpn: 7,
            waited_ms: u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
        }
    }
}

/// A clock the test moves by hand.
#[derive(Debug, Clone)]
struct TestClock(std::sync::Arc<std::sync::Mutex<Instant>>);

impl TestClock {
    fn new() -> Self {
        TestClock(std::sync::Arc::new(std::sync::Mutex::new(Instant::now())))
    }
    fn advance(&self, d: Duration) {
        *self.0.lock().unwrap() += d;
    }
}

impl Clock for TestClock {
    fn now(&self) -> Instant {
        *self.0.lock().unwrap()
    }
    fn sleep(&self, d: Duration) {
        self.advance(d);
    }
}

const CAP: u64 = 1000;

fn mirror(path: Scripted, clock: TestClock) -> Mirror<Scripted, TestClock> {
    Mirror::new(
        "sim-a",
        path,
        clock,
        CAP,
        0,
        PersistenceMode::Apm,
        Duration::from_secs(1),
    )
}

/// The WRITEs of all lists, concatenated, as logical coverage of the ring.
fn written(lists: &[Vec<RingOp>]) -> Vec<(u64, u64)> {
    lists
        .iter()
        .flatten()
        .filter_map(|op| match *op {
            RingOp::Write { ring_off, len } => Some((ring_off, len)),
            _ => None,
        })
        .collect()
}

#[test]
fn chunks_split_at_the_ring_end_and_the_message_size() {
    let c = |from, to| chunks_of(1000, 300, from, to).collect::<Vec<_>>();
    assert_eq!(c(0, 10), vec![(0, 10)]);
    assert_eq!(c(990, 1010), vec![(990, 10), (0, 10)]);
    assert_eq!(
        c(2000, 3000),
        vec![(0, 300), (300, 300), (600, 300), (900, 100)]
    );
    assert_eq!(c(2500, 3100), vec![(500, 300), (800, 200), (0, 100)]);
    assert_eq!(c(7, 7).len(), 0);
}

#[test]
#[should_panic(expected = "longer than the ring")]
fn a_range_longer_than_the_ring_is_a_bug() {
    let _ = chunks_of(1000, 300, 0, 1001).count();
}

#[test]
fn a_ship_that_needs_several_lists_flushes_only_the_last() {
    let path = Scripted {
        instant: true,
        max_chunk: 100,
        in_flight: 1,
        ..Scripted::default()
    };
    let mut m = mirror(path, TestClock::new());
    // 950..1900 wraps and needs 10 WRITEs: lists of 3 WRITEs (no flush),
    // then the rest with the READ flush of the last 8 bytes.
    assert_eq!(m.ship(950).unwrap(), 950);
    m.path.lists.clear();
    assert_eq!(m.ship(1900).unwrap(), 1900);
    let lists = &m.path().lists;
    assert!(lists.len() >= 2, "{lists:?}");
    for l in &lists[..lists.len() - 1] {
        assert_eq!(l.len(), MAX_OPS_PER_POST - 1, "full lists of WRITEs: {l:?}");
        assert!(
            l.iter().all(|op| matches!(op, RingOp::Write { .. })),
            "{l:?}"
        );
    }
    let last = lists.last().unwrap();
    assert_eq!(
        last.last(),
        Some(&RingOp::FlushRead { end: 900, len: 8 }),
        "the flush READs the last bytes written: {last:?}"
    );
    assert_eq!(
        written(lists),
        chunks_of(CAP, 100, 950, 1900).collect::<Vec<_>>()
    );
    assert_eq!(m.durable(), 1900);
}

#[test]
fn posted_ships_become_durable_in_order_as_they_complete() {
    let path = Scripted {
        max_chunk: 4096,
        in_flight: 2,
        ..Scripted::default()
    };
    let mut m = mirror(path, TestClock::new());
    m.post(100).unwrap();
    m.post(200).unwrap();
    assert!(!m.can_post(), "the in-flight bound is 2");
    assert!(m.post(300).is_err(), "a third post is refused");
    assert_eq!((m.durable(), m.posted(), m.in_flight()), (0, 200, 2));
    // The device completes the first list only.
    m.path.completed = 2;
    assert_eq!(m.reap().unwrap(), 100);
    m.path.completed = 4;
    assert_eq!(m.reap().unwrap(), 200);
    assert_eq!(m.in_flight(), 0);
}

#[test]
fn a_failed_completion_reports_nothing_more_durable() {
    let path = Scripted {
        max_chunk: 4096,
        in_flight: 2,
        ..Scripted::default()
    };
    let mut m = mirror(path, TestClock::new());
    m.post(100).unwrap();
    m.post(200).unwrap();
    m.path.fail_next = true;
    let e = m.reap().unwrap_err();
    assert!(
        matches!(e, MirrorError::Verbs { .. }) && e.to_string().contains("sim-a"),
        "{e}"
    );
    assert_eq!(m.durable(), 0, "nothing in flight counts");
    assert_eq!(m.in_flight(), 0);
    assert_eq!(
        m.path().aborted,
        Some(4),
        "the path was aborted up to the last ship"
    );
}

#[test]
fn a_ship_past_the_op_timeout_is_aborted_and_named() {
    let clock = TestClock::new();
    let path = Scripted {
        max_chunk: 4096,
        in_flight: 2,
        ..Scripted::default()
    };
    let mut m = mirror(path, clock.clone());
    m.post(100).unwrap();
    // The clock is looked at every few polls only, and the ship's age is
    // counted from the first look (posting reads no clock).
    for _ in 0..16 {
        m.reap().expect("still within the op timeout");
    }
    clock.advance(Duration::from_secs(2));
    let e = (0..64)
        .find_map(|_| m.reap().err())
        .expect("the ship outlived the op timeout");
    assert!(e.to_string().contains("sim0"), "{e}");
    assert_eq!(m.durable(), 0);
    assert!(m.is_broken());
}

#[test]
fn a_range_longer_than_the_ring_beyond_durable_is_refused() {
    let path = Scripted {
        instant: true,
        max_chunk: 4096,
        in_flight: 1,
        ..Scripted::default()
    };
    let mut m = mirror(path, TestClock::new());
    let e = m.ship(CAP + 1).unwrap_err();
    assert!(matches!(e, MirrorError::RangeTooLarge { .. }), "{e}");
    assert!(m.path().lists.is_empty(), "nothing posted");
}
