//! The host (`tg-bench load`, commit async so the replica lags) is killed
//! with SIGKILL at random points, several times, each with a fresh log and
//! replica: after each takeover the replica's image holds every record the
//! host's local log holds, byte for byte at the same positions, the last
//! being the seal of the epoch; `tg-replica status` reports it sealed, and
//! every LSN the host reported committed is there.

mod common;

use std::time::{Duration, Instant};

use common::{assert_replica_holds_host, wait_exit, Node, Rng};

const ROUNDS: u64 = 5;

#[test]
#[ignore = "rdma: needs an RDMA device (TG_RDMA_DEVICE) and real processes; runs in the rxe VM"]
fn rdma_sigkill_takeover_ships_every_local_record() {
    let mut rng = Rng::from_time();
    eprintln!("kill-point seed {}", rng.0);
    let started = Instant::now();
    let mut figures = Vec::new();
    for round in 0..ROUNDS {
        let round_start = Instant::now();
        let mut node = Node::new(
            &format!("closure-kill-{round}"),
            "  heartbeat-interval-ms: 50\n",
        );
        node.start_replica();
        // Paced, so the host, the replica and the closure share the VM's
        // two emulated CPUs without starving each other; async commits
        // still let the replica lag.
        let (mut host, host_out) = node.start_host(1_000_000, 100 + round, Some(2000));
        let note = |l: &str, committed: &mut u64| {
            if let Some(n) = l.strip_prefix("committed ") {
                *committed = n.parse().unwrap();
            }
        };
        let mut committed = node.first_commit(&host_out);
        let t_host = round_start.elapsed();
        let (mut closure, closure_out) = node.start_closure();
        let armed = node.armed(&closure_out, Duration::from_secs(30));
        let t_armed = round_start.elapsed();
        // A random kill point: 0..1 s of appends after arming.
        let delay = Duration::from_millis(rng.below(1000));
        let end = Instant::now() + delay;
        while Instant::now() < end {
            host_out.drain(|l| note(l, &mut committed));
            std::thread::sleep(Duration::from_millis(5));
        }
        host.kill().unwrap(); // SIGKILL
        let killed_at = Instant::now();
        host.wait().unwrap();
        std::thread::sleep(Duration::from_millis(50));
        host_out.drain(|l| note(l, &mut committed));

        let st = wait_exit(&mut closure, Duration::from_secs(60), "tg-closure", || {
            node.logs()
        });
        let report = closure_out
            .wait_for("takeover ", Duration::from_secs(5), |_| {})
            .unwrap_or_else(|| panic!("no takeover report (closure {st})\n{}", node.logs()));
        assert!(st.success(), "tg-closure failed: {st}\n{}", node.logs());
        let observed_ms = killed_at.elapsed().as_millis();
        let r: serde_json::Value =
            serde_json::from_str(report.strip_prefix("takeover ").unwrap()).unwrap();
        assert_eq!(r["reason"], "died", "{r}");

        let t_took_over = round_start.elapsed();
        let host_records = assert_replica_holds_host(&node);
        let last = host_records.last().expect("the host log has records");
        assert_eq!(
            last.kind, "seal",
            "the local log ends with the seal: {last:?}"
        );
        assert_eq!(last.lsn, r["seal_lsn"].as_u64().unwrap());
        let data_max = host_records
            .iter()
            .filter(|d| d.kind == "data")
            .map(|d| d.lsn)
            .max()
            .unwrap_or(0);
        assert!(
            data_max >= committed,
            "the host reported LSN {committed} committed but its log ends at {data_max}"
        );
        let status = node.replica_status();
        assert_eq!(status["sealed"], true, "replica status: {status}");
        assert_eq!(
            status["durable_tail"].as_u64().unwrap(),
            r["sealed_at"].as_u64().unwrap(),
            "{status}"
        );
        eprintln!(
            "round {round}: kill after {delay:?}, committed LSN {committed}, local tail {} (recorded {}), \
             replica was at {}, shipped {} bytes; takeover: recover {} us, tail durable {} us, seal durable {} us, \
             sealed {} us; kill-to-exit observed {observed_ms} ms; cold connect at arming {} us; round took {:?} (host committing at {t_host:?}, closure armed at {t_armed:?}, took over at {t_took_over:?})",
            r["tail"], r["recorded_tail"], r["replica_durable"], r["shipped_bytes"], r["recover_us"],
            r["tail_durable_us"], r["seal_durable_us"], r["sealed_us"], armed["cold_connect_us"], round_start.elapsed(),
        );
        if round == 0 {
            // The closure's own step log (arming and takeover, timed).
            eprintln!("closure log, round 0:\n{}", node.log("closure.err"));
        }
        figures.push((
            r["tail_durable_us"].as_u64().unwrap(),
            r["shipped_bytes"].as_u64().unwrap(),
        ));
    }
    eprintln!(
        "{ROUNDS} takeovers in {:?}: (tail durable us, bytes) = {figures:?}",
        started.elapsed()
    );
}
