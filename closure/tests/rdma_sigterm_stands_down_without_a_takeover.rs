//! `tg-closure run` under a service manager, on real verbs: it says
//! `READY=1` on `$NOTIFY_SOCKET` once it is armed (not before), and on
//! SIGTERM it stands down without a takeover and exits 0: the host's log
//! no longer names a closure (the host reports takeover disarmed), and a
//! host that dies afterwards is not taken over (no seal in its log or on
//! the replica).

mod common;

use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{dump, wait_exit, Node};
use logcore::{Control, Region, RegionKind};

fn recv_containing(sock: &UnixDatagram, what: &str, within: Duration, node: &Node) -> String {
    let end = Instant::now() + within;
    let mut buf = [0u8; 512];
    while Instant::now() < end {
        if let Ok(n) = sock.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            if msg.contains(what) {
                return msg;
            }
        }
    }
    panic!(
        "no {what:?} on NOTIFY_SOCKET within {within:?}\n{}",
        node.logs()
    );
}

#[test]
#[ignore = "rdma: needs an RDMA device (TG_RDMA_DEVICE) and real processes; runs in the rxe VM"]
fn rdma_sigterm_stands_down_without_a_takeover() {
    let mut node = Node::new("closure-sigterm", "");
    node.start_replica();
    let (mut host, host_out) = node.start_host(1_000_000, 31, Some(200));
    node.first_commit(&host_out);
    let sock_path = node.dir.join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let (mut closure, closure_out) =
        node.closure_process_env(&[], &[("NOTIFY_SOCKET", sock_path.as_path())]);
    let armed = node.armed(&closure_out, Duration::from_secs(30));
    let ready = recv_containing(&sock, "READY=1", Duration::from_secs(5), &node);
    assert!(
        ready.contains(&format!("armed: host pid {}", host.id())),
        "READY=1 must say what it is armed on: {ready:?}"
    );
    assert_eq!(armed["host_pid"].as_u64(), Some(u64::from(host.id())));
    let region = Region::open(node.host_log(), RegionKind::File).unwrap();
    let control = Control::new(&region).unwrap();
    assert_eq!(
        control.closure_pid(),
        closure.id(),
        "armed closure in the control block"
    );

    let st = Command::new("kill")
        .args(["-TERM", &closure.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let st = wait_exit(
        &mut closure,
        Duration::from_secs(10),
        "tg-closure after SIGTERM",
        || node.logs(),
    );
    assert!(
        st.success(),
        "tg-closure exited {st} on SIGTERM\n{}",
        node.logs()
    );
    let line = closure_out
        .wait_for("stood-down ", Duration::from_secs(5), |l| {
            assert!(!l.starts_with("takeover "), "SIGTERM took over: {l}");
        })
        .unwrap_or_else(|| panic!("no stood-down line\n{}", node.logs()));
    assert!(line.contains("Stopped"), "{line}");
    assert_eq!(
        control.closure_pid(),
        0,
        "a stopped closure still looks armed to the host"
    );
    assert!(
        host.try_wait().unwrap().is_none(),
        "the host runs on after the closure stops\n{}",
        node.logs()
    );

    // The host dies now: no one takes it over.
    host.kill().unwrap();
    host.wait().unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let records = dump(&node.host_log());
    assert!(
        records.iter().any(|d| d.kind == "data"),
        "the host committed records"
    );
    assert!(
        records.iter().all(|d| d.kind != "seal"),
        "a stopped closure sealed the log"
    );
    let status = node.replica_status();
    assert_eq!(status["sealed"], false, "replica status: {status}");
}
