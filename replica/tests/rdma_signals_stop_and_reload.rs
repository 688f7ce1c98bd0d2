//! `tg-replica serve` under a service manager, on real verbs:
//!
//! - it says `READY=1` on `$NOTIFY_SOCKET` once it listens;
//! - SIGTERM fences its writer, closes its session, replays and flushes
//!   everything committed, says `STOPPING=1` and exits 0; the region then
//!   holds every committed record;
//! - SIGHUP rereads the allow-list and its keys: the admitted writer goes
//!   on, a writer with the old key is refused, one with the new key is
//!   admitted; a key file that does not load changes nothing.

mod common;

use std::os::unix::net::UnixDatagram;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{dump, hex, payload, Node, Shape};
use fabric::auth::PreSharedKey;
use fabric::replicated::{CommitError, ReplicatedLog};
use logcore::{Log, RegionKind};

/// The datagrams `tg-replica` sends to its notify socket.
struct Notify(UnixDatagram);

impl Notify {
    fn bind(node: &Node) -> (Notify, std::path::PathBuf) {
        let path = node.dir.join("notify.sock");
        let s = UnixDatagram::bind(&path).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        (Notify(s), path)
    }

    /// Waits (bounded) for a datagram containing `what`.
    fn wait_for(&self, what: &str, within: Duration, node: &Node) -> String {
        let end = Instant::now() + within;
        let mut buf = [0u8; 512];
        while Instant::now() < end {
            if let Ok(n) = self.0.recv(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                if msg.contains(what) {
                    return msg;
                }
            }
        }
        panic!(
            "no {what:?} on NOTIFY_SOCKET within {within:?}: {}",
            node.replica_log()
        );
    }
}

/// Starts `tg-replica serve` with `NOTIFY_SOCKET` and waits for `READY=1`.
fn start(node: &mut Node) -> Notify {
    let (notify, path) = Notify::bind(node);
    let child: Child = Command::new(testkit::bin("tg-replica"))
        .args(["serve", "--config"])
        .arg(&node.cfg_path)
        .env("NOTIFY_SOCKET", &path)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(node.dir.join("replica.log")).unwrap())
        .spawn()
        .unwrap();
    node.replica = Some(child);
    let ready = notify.wait_for("READY=1", Duration::from_secs(30), node);
    assert!(ready.contains("STATUS=serving on 127.0.0.1:"), "{ready}");
    // Ready means listening.
    std::net::TcpStream::connect(("127.0.0.1", node.port)).expect("READY=1 before it listens");
    notify
}

fn signal(node: &Node, sig: &str) {
    signal_pid(node.replica.as_ref().unwrap().id(), sig);
}

fn signal_pid(pid: u32, sig: &str) {
    let pid = pid.to_string();
    let st = Command::new("kill").args([sig, &pid]).status().unwrap();
    assert!(st.success(), "kill {sig} {pid}");
}

fn commit_some(w: &ReplicatedLog, seed: u64, n: u64, into: &mut Vec<(u64, Vec<u8>)>) {
    for i in 0..n {
        let p = payload(seed, i);
        let a = w.append(&p).unwrap();
        w.commit(a.lsn).unwrap();
        into.push((a.lsn.0, p));
    }
}

#[test]
#[ignore = "rdma: needs an RDMA device; ci/test runs it in the rxe VM"]
fn sigterm_fences_the_writer_flushes_everything_and_exits_zero() {
    let mut node = Node::new(
        "sigterm",
        Shape {
            persistence: "gpspm",
            ..Shape::default()
        },
    );
    let notify = start(&mut node);
    let w = {
        let log = Log::create(
            node.dir.join("host.log"),
            node.shape.log_size,
            &logcore::CreateOptions::default(),
        )
        .unwrap();
        let mut o = node.options();
        o.commit_timeout = Duration::from_secs(3);
        ReplicatedLog::open(log, o).unwrap()
    };
    let mut committed = Vec::new();
    commit_some(&w, 11, 2000, &mut committed);
    let persisted = w.log().persisted().pos;
    signal(&node, "-TERM");
    let mut child = node.replica.take().unwrap();
    let logfile = node.dir.join("replica.log");
    let st = testkit::wait_exit(
        &mut child,
        Duration::from_secs(20),
        "tg-replica after SIGTERM",
        || std::fs::read_to_string(&logfile).unwrap_or_default(),
    );
    let log = node.replica_log();
    assert!(st.success(), "tg-replica exited {st} on SIGTERM: {log}");
    notify.wait_for("STOPPING=1", Duration::from_secs(5), &node);
    assert!(
        log.contains("tg-replica stopped") && log.contains("sessions_ended=1"),
        "the stop did not end the writer's session: {log}"
    );
    // The writer's next commit finds no replica (its QP was fenced, its
    // session closed, nothing listens).
    let a = w.append(b"after the stop").unwrap();
    match w.commit(a.lsn) {
        Err(CommitError::NotEnoughAcks { .. }) => {}
        other => panic!("a commit after the replica stopped: {other:?}"),
    }
    drop(w);
    // Everything committed was replayed, flushed and recorded before exit.
    let status = node.replica_status();
    assert!(
        status["durable_tail"].as_u64().unwrap() >= persisted,
        "durable tail {} short of the committed {persisted}: {status}",
        status["durable_tail"]
    );
    let held: std::collections::BTreeMap<u64, String> = dump(&node.replica_region())
        .into_iter()
        .filter(|d| d.kind == "data")
        .map(|d| (d.lsn, d.payload))
        .collect();
    for (lsn, p) in &committed {
        assert_eq!(
            held.get(lsn),
            Some(&hex(p)),
            "committed LSN {lsn} missing or wrong after the stop"
        );
    }
}

#[test]
#[ignore = "rdma: needs an RDMA device; ci/test runs it in the rxe VM"]
fn sighup_rotates_a_key_without_a_restart() {
    let mut node = Node::new("sighup", Shape::default());
    // The replica reads its own copy of the key, so the two ends can be
    // rotated apart.
    let cfg = std::fs::read_to_string(&node.cfg_path).unwrap();
    let allow = "    - name: host-a\n      key-file: host-a.key\n";
    assert!(cfg.contains(allow), "{cfg}");
    std::fs::write(
        &node.cfg_path,
        cfg.replace(allow, "    - name: host-a\n      key-file: allow.key\n"),
    )
    .unwrap();
    let replica_key = node.dir.join("allow.key");
    std::fs::copy(node.dir.join("host-a.key"), &replica_key).unwrap();
    let _notify = start(&mut node);
    let w = node.writer();
    let mut committed = Vec::new();
    commit_some(&w, 21, 50, &mut committed);

    let reloads = |node: &Node, needle: &str, n: usize| {
        let end = Instant::now() + Duration::from_secs(10);
        while node.replica_log().matches(needle).count() < n {
            assert!(
                Instant::now() < end,
                "no {needle:?} in: {}",
                node.replica_log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    // A key file that does not load: the list in use is kept.
    std::fs::write(&replica_key, b"not a key\n").unwrap();
    signal(&node, "-HUP");
    reloads(&node, "cannot reread the allow-list", 1);
    commit_some(&w, 22, 20, &mut committed);

    // The new key, on the replica's side only.
    testkit::write_key(&replica_key, 0x5e);
    let new_key = PreSharedKey::load(&replica_key).unwrap();
    signal(&node, "-HUP");
    reloads(&node, "allow-list and keys reread", 1);
    // The admitted writer proved its key when it connected: it goes on.
    commit_some(&w, 23, 20, &mut committed);
    let persisted = w.log().persisted();
    drop(w);

    let reopen = |key: Option<PreSharedKey>| {
        let log = Log::open(node.dir.join("host.log"), RegionKind::File).unwrap();
        let mut o = node.options();
        o.commit_timeout = Duration::from_millis(1500);
        if let Some(k) = key {
            o.replicas[0].key = k;
        }
        ReplicatedLog::open(log, o).unwrap()
    };
    // The old key is refused now.
    {
        let old = reopen(None);
        let a = old.append(b"with the old key").unwrap();
        match old.commit(a.lsn) {
            Err(e @ CommitError::NotEnoughAcks { .. }) => assert!(
                e.to_string().to_lowercase().contains("authentication"),
                "refused, but not for its key: {e}"
            ),
            other => panic!("a writer with the rotated-out key: {other:?}"),
        }
    }
    // The new one is admitted and commits.
    let fresh = reopen(Some(new_key));
    assert!(fresh.log().persisted().pos >= persisted.pos);
    commit_some(&fresh, 24, 20, &mut committed);
    assert!(
        node.replica.as_mut().unwrap().try_wait().unwrap().is_none(),
        "tg-replica must serve on through reloads: {}",
        node.replica_log()
    );
    let end = fresh.log().persisted().pos;
    drop(fresh);
    node.wait_replica_durable(end);
    let held: std::collections::BTreeMap<u64, String> = dump(&node.replica_region())
        .into_iter()
        .filter(|d| d.kind == "data")
        .map(|d| (d.lsn, d.payload))
        .collect();
    for (lsn, p) in &committed {
        assert_eq!(held.get(lsn), Some(&hex(p)), "committed LSN {lsn}");
    }
}
