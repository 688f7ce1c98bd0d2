//! The closure's keep-alive, recall and seal over fabric's transport seam
//! with an in-process transport (host tier; a test of the closure's logic,
//! not of RDMA): a replica whose control channel stops answering holds
//! only its own link's thread. Before (issue 13, hole g), keep-alive ran
//! the status round trip and the reconnect inline on the watch loop: a
//! silent replica stalled it for the control timeout, during which the
//! host's pidfd was not polled and the host reported takeover disarmed;
//! and the takeover's seals ran one after the other, so a silent replica
//! delayed the seal of the others and the restart by its timeout.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use closure::options::ClosureOptions;
use closure::standby::{Standby, StandbyLink, STRAGGLER_GRACE};
use fabric::auth::PreSharedKey;
use fabric::mirror::Mirror;
use fabric::replicated::{ConnectOptions, LogIdentity, ReplicaError, ReplicaSpec};
use fabric::transport::{Connected, ControlSession, OsClock, RingOp, ShipPath, Transport};
use fabric::verbs::{QpConfig, VerbsError};
use fabric::wire::session::SessionError;
use fabric::wire::{PersistenceMode, SealPoint, Status, WriterName};

/// How long a silent replica keeps a request waiting (its control timeout
/// in this test).
const SILENCE: Duration = Duration::from_secs(2);

/// A data path whose requests complete at once.
struct InstantPath {
    posted: u64,
}

impl ShipPath for InstantPath {
    fn post(&mut self, ops: &[RingOp]) -> Result<u64, VerbsError> {
        self.posted += ops.len() as u64;
        Ok(self.posted)
    }
    fn reap(&mut self) -> Result<u64, VerbsError> {
        Ok(self.posted)
    }
    fn abort(&mut self, _last: u64) {}
    fn recv(&mut self, _out: &mut [u8], timeout: Duration) -> Result<usize, VerbsError> {
        Err(self.timed_out(timeout))
    }
    fn max_chunk(&self) -> u64 {
        1 << 20
    }
    fn max_in_flight(&self) -> usize {
        1
    }
    fn is_broken(&self) -> bool {
        false
    }
    fn timed_out(&self, waited: Duration) -> VerbsError {
        VerbsError::Timeout {
            device: "inproc0".into(),
            qpn: 1,
            waited_ms: u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
        }
    }
}

/// One replica's control side: answers at once, or (silent) only after
/// [`SILENCE`], with an error, as a socket read timeout would.
#[derive(Default)]
struct Replica {
    silent: AtomicBool,
    statuses: AtomicU64,
    seals: AtomicU64,
    connects: AtomicU64,
}

struct Session(Arc<Replica>);

impl Session {
    fn wait(&self) -> Result<(), SessionError> {
        if self.0.silent.load(Ordering::SeqCst) {
            std::thread::sleep(SILENCE);
            return Err(SessionError::Channel(
                fabric::wire::ChannelError::TimedOut { op: "receive" },
            ));
        }
        Ok(())
    }
}

impl ControlSession for Session {
    fn status(&mut self) -> Result<Status, SessionError> {
        self.wait()?;
        self.0.statuses.fetch_add(1, Ordering::SeqCst);
        Ok(Status {
            durable_tail: 0,
            applied_lsn: 0,
            epoch: 1,
            sealed: false,
            head: 0,
        })
    }
    fn seal(&mut self, point: SealPoint) -> Result<SealPoint, SessionError> {
        self.wait()?;
        self.0.seals.fetch_add(1, Ordering::SeqCst);
        Ok(point)
    }
}

/// Three in-process replicas, `r0`..`r2`.
struct InProc {
    replicas: Vec<Arc<Replica>>,
}

impl InProc {
    fn by_name(&self, name: &str) -> Arc<Replica> {
        let i: usize = name[1..].parse().unwrap();
        Arc::clone(&self.replicas[i])
    }
}

impl Transport for InProc {
    type Path = InstantPath;
    type Control = Session;
    type Clock = OsClock;

    fn clock(&self) -> OsClock {
        OsClock
    }

    fn connect(
        &self,
        spec: &ReplicaSpec,
        _opts: &ConnectOptions,
        _log: &LogIdentity,
    ) -> Result<Connected<InstantPath, Session, OsClock>, ReplicaError> {
        let r = self.by_name(&spec.name);
        if r.silent.load(Ordering::SeqCst) {
            std::thread::sleep(SILENCE);
            return Err(ReplicaError::NotConnected {
                replica: spec.name.clone(),
            });
        }
        r.connects.fetch_add(1, Ordering::SeqCst);
        Ok(Connected {
            mirror: Mirror::new(
                &spec.name,
                InstantPath { posted: 0 },
                OsClock,
                1 << 20,
                0,
                PersistenceMode::Apm,
                Duration::from_secs(1),
            ),
            control: Session(r),
            durable: 0,
            region: fabric::transport::RegionId {
                gid: [0; 16],
                lid: 0,
                rkey: spec.name[1..].parse().unwrap(),
                addr: 0,
            },
        })
    }
}

fn spec(i: usize) -> ReplicaSpec {
    ReplicaSpec {
        name: format!("r{i}"),
        address: format!("127.0.0.1:{}", 7000 + i),
        key: PreSharedKey::from_bytes(vec![7u8; 32]).unwrap(),
    }
}

fn options() -> ClosureOptions {
    ClosureOptions {
        log_path: "/nonexistent/host.log".into(),
        device: "inproc0".into(),
        port: 1,
        connect: ConnectOptions {
            writer: WriterName::new("host-a-closure").unwrap(),
            qp: QpConfig::default(),
            persistence: PersistenceMode::Apm,
            op_timeout: Duration::from_secs(1),
            connect_timeout: SILENCE,
        },
        replicas: (0..3).map(spec).collect(),
        quorum: 2,
        cores: Vec::new(),
        heartbeat_timeout: Duration::from_secs(1),
        poll_interval: Duration::from_millis(10),
        keepalive: Duration::from_millis(100),
        restart: None,
        realtime_priority: None,
        kill_hung_host: false,
        metrics_listen: None,
    }
}

fn armed(t: InProc, opts: &ClosureOptions) -> Standby<InProc> {
    let identity = LogIdentity {
        uuid: [1; 16],
        epoch: 1,
        geometry: logcore::Geometry {
            ring_offset: 4096,
            capacity: 1 << 20,
        },
        region_len: (1 << 20) + 4096,
    };
    let links = opts
        .replicas
        .iter()
        .map(|s| {
            let c = t.connect(s, &opts.connect, &identity).unwrap();
            StandbyLink::new(s.clone(), Some(c))
        })
        .collect();
    Standby {
        takeover_region: None,
        transport: Arc::new(t),
        identity,
        links,
        cold_connect: Duration::ZERO,
    }
}

fn inproc() -> InProc {
    InProc {
        replicas: (0..3).map(|_| Arc::new(Replica::default())).collect(),
    }
}

/// Runs keep-alive passes for `d`, as the watch loop would (every 10 ms);
/// returns the longest pass.
fn passes(standby: &mut Standby<InProc>, opts: &ClosureOptions, d: Duration) -> Duration {
    let end = Instant::now() + d;
    let mut longest = Duration::ZERO;
    while Instant::now() < end {
        let t = Instant::now();
        standby.keepalive(opts);
        longest = longest.max(t.elapsed());
        std::thread::sleep(Duration::from_millis(10));
    }
    longest
}

#[test]
fn a_silent_replica_never_stalls_a_keepalive_pass() {
    let opts = options();
    let t = inproc();
    let replicas = t.replicas.clone();
    let mut standby = armed(t, &opts);
    let longest = passes(&mut standby, &opts, Duration::from_millis(300));
    assert!(
        replicas
            .iter()
            .all(|r| r.statuses.load(Ordering::SeqCst) > 0),
        "every link was checked"
    );
    assert!(standby.links.iter().all(StandbyLink::is_up));

    replicas[2].silent.store(true, Ordering::SeqCst);
    let longest = longest.max(passes(&mut standby, &opts, SILENCE * 2));
    assert!(
        longest < Duration::from_millis(200),
        "a keep-alive pass took {longest:?} while r2 was silent for {SILENCE:?} per request: \
         the watch loop would stall"
    );
    assert!(
        !standby.links[2].is_up(),
        "the silent replica's link is down"
    );
    assert!(standby.links[0].is_up() && standby.links[1].is_up());
    let checked = replicas[0].statuses.load(Ordering::SeqCst);
    assert!(
        checked >= 20,
        "r0 kept being checked while r2 was silent ({checked} statuses)"
    );

    // r2 answers again: its link is reconnected by its own thread.
    replicas[2].silent.store(false, Ordering::SeqCst);
    let end = Instant::now() + SILENCE * 4;
    while !standby.links[2].is_up() {
        assert!(Instant::now() < end, "r2 never came back");
        standby.keepalive(&opts);
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        replicas[2].connects.load(Ordering::SeqCst) >= 2,
        "r2 reconnected"
    );
}

#[test]
fn the_takeover_seals_the_quorum_without_waiting_for_a_silent_replica() {
    let opts = options();
    let t = inproc();
    let replicas = t.replicas.clone();
    let mut standby = armed(t, &opts);
    // r1 goes silent after its link was checked: the link looks fine.
    replicas[1].silent.store(true, Ordering::SeqCst);
    let start = Instant::now();
    let home = standby.recall(opts.quorum, SILENCE);
    assert_eq!(home, 3, "nothing was out: all three links are home");
    let point = SealPoint { epoch: 1, tail: 0 };
    let (sealed, missed) = standby.seal(point, opts.quorum, &opts, SILENCE * 2);
    let took = start.elapsed();
    assert_eq!(sealed, 2, "r0 and r2 confirm the seal");
    assert_eq!(missed.len(), 1, "{missed:?}");
    assert_eq!(missed[0].0, "r1", "{missed:?}");
    assert!(
        missed[0].1.contains("did not answer the seal"),
        "{missed:?}"
    );
    assert!(
        took < STRAGGLER_GRACE + Duration::from_millis(500),
        "sealing waited {took:?} for the silent replica (its silence is {SILENCE:?})"
    );
    assert_eq!(replicas[0].seals.load(Ordering::SeqCst), 1);
    assert_eq!(replicas[2].seals.load(Ordering::SeqCst), 1);
}

#[test]
fn a_takeover_takes_home_a_link_out_on_a_keepalive() {
    let opts = options();
    let t = inproc();
    let replicas = t.replicas.clone();
    let mut standby = armed(t, &opts);
    // Every link goes out on a keep-alive; r0 and r2 answer at once, r1
    // only after its silence.
    replicas[1].silent.store(true, Ordering::SeqCst);
    standby.keepalive(&opts);
    assert!(standby.links.iter().all(StandbyLink::is_away));
    let start = Instant::now();
    let home = standby.recall(opts.quorum, SILENCE * 2);
    let took = start.elapsed();
    assert_eq!(home, 2, "r0 and r2 came home");
    assert!(standby.links[1].is_away(), "r1 is still out");
    assert!(
        took < STRAGGLER_GRACE + Duration::from_millis(500),
        "recall waited {took:?} for the silent replica"
    );
    // With all three needed, recall waits for r1 (its status fails).
    let start = Instant::now();
    let home = standby.recall(3, SILENCE * 2);
    assert_eq!(home, 2, "r1's status failed: it is home, not connected");
    assert!(!standby.links[1].is_away());
    assert!(
        start.elapsed() >= SILENCE / 2,
        "recall did not wait for the last link"
    );
}
