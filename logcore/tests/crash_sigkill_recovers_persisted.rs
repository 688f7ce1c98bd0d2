//! Real-process crash test: a child appends deterministic records from two
//! threads and prints every LSN it was told is persisted; the parent kills
//! it with SIGKILL at random points, many times. After every kill the log
//! verifies (nothing corrupt before the persisted tail), every printed LSN
//! that is not yet reclaimed is recovered with identical payload, and the
//! scan ends at the first invalid record. Every other round the parent also
//! reopens the log as writer (recovery + new incarnation) before the next
//! child continues it.
//!
//! The child is this same test binary, re-executed with `TG_CRASH_CHILD`.

mod common;

use std::collections::HashMap;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use logcore::{AppendError, Image, Log, RecordKind, RegionKind};

const ROUNDS: u64 = 40;
const MAX_PAYLOAD: usize = 1500;
const CHILD_ENV: &str = "TG_CRASH_CHILD";

fn seed_of(run: u64, thread: u64, k: u64) -> u64 {
    (run << 40) | (thread << 32) | k
}

/// Child entry: runs only when re-executed by the parent.
#[test]
fn crash_child_entry() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let run: u64 = std::env::var("TG_CRASH_RUN").unwrap().parse().unwrap();
    let log = Log::open(&path, RegionKind::File).expect("child open");
    let cap = log.geometry().capacity;
    // Persisted tails reported so far: each is a record boundary, so a valid
    // reclaim point (what a replication layer would advance the head to).
    let marks = Mutex::new(VecDeque::<u64>::with_capacity(256));
    std::thread::scope(|s| {
        for t in 0..2u64 {
            let (log, marks) = (&log, &marks);
            s.spawn(move || {
                for k in 0.. {
                    let p = common::payload(seed_of(run, t, k), MAX_PAYLOAD);
                    let lsn = loop {
                        match log.append(&p) {
                            Ok(l) => break l,
                            Err(AppendError::Full { head, .. }) => {
                                // Free about a quarter ring, keeping the rest
                                // for the parent to check.
                                let mut m = marks.lock().unwrap();
                                while m.front().is_some_and(|&x| x <= head) {
                                    m.pop_front();
                                }
                                let to = m.iter().copied().find(|&x| x >= head + cap / 4);
                                if let Some(to) = to.or_else(|| m.back().copied()) {
                                    let _ = log.advance_head(to);
                                }
                                drop(m);
                                std::thread::yield_now();
                            }
                            Err(e) => panic!("child append: {e}"),
                        }
                    };
                    let durable = log.persist_to(lsn).expect("child persist");
                    println!("P {} {run} {t} {k}", lsn.0);
                    let mut m = marks.lock().unwrap();
                    if m.len() == m.capacity() {
                        m.pop_front();
                    }
                    m.push_back(durable.pos);
                }
            });
        }
    });
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn crash_sigkill_recovers_persisted() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let seed = std::env::var("TG_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("crash test seed {seed} (rerun with TG_CRASH_SEED={seed})");
    let mut rng = Rng(seed);
    // 256 KiB ring: children lap it several times per round.
    let (_dir, path, log) = common::new_log(4096 + (256 << 10));
    drop(log);
    let exe = std::env::current_exe().unwrap();
    // lsn -> (run, thread, k) for every LSN a child reported persisted.
    let mut printed: HashMap<u64, (u64, u64, u64)> = HashMap::new();
    let mut max_printed = 0u64;
    let started = Instant::now();
    for run in 1..=ROUNDS {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash_child_entry",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &path)
            .env("TG_CRASH_RUN", run.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut lines = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                lines.push(line);
            }
            lines
        });
        std::thread::sleep(Duration::from_millis(20 + rng.next() % 150));
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        assert!(!status.success(), "child must have been killed, not exited");
        let lines = reader.join().unwrap();
        let mut this_round = 0;
        for l in &lines {
            let f: Vec<&str> = l.split_whitespace().collect();
            // A line cut by the kill has fewer fields: it was not "told".
            if f.len() == 5 && f[0] == "P" {
                let v: Vec<u64> = f[1..].iter().map(|x| x.parse().unwrap()).collect();
                let prev = printed.insert(v[0], (v[1], v[2], v[3]));
                assert!(prev.is_none(), "LSN {} reported persisted twice", v[0]);
                max_printed = max_printed.max(v[0]);
                this_round += 1;
            }
        }

        // Check the image as a replica or tg-log would see it.
        let bytes = std::fs::read(&path).unwrap();
        let img = Image::parse(&bytes).unwrap();
        let head = img.control().head;
        let mut scan = img.scan().unwrap();
        let mut found: HashMap<u64, Vec<u8>> = HashMap::new();
        let mut prev_end = head.pos;
        for r in scan.by_ref() {
            let r = r.unwrap_or_else(|e| panic!("round {run}: corruption after SIGKILL: {e}"));
            assert_eq!(r.pos, prev_end, "records are contiguous");
            prev_end = r.end();
            if r.kind == RecordKind::Data {
                found.insert(r.lsn.0, r.payload.to_vec());
            }
        }
        let tail = scan.stop().unwrap().at;
        assert!(
            tail.lsn.0 > max_printed,
            "round {run}: tail LSN {} but LSN {max_printed} was reported persisted",
            tail.lsn
        );
        for (&lsn, &(r, t, k)) in &printed {
            if lsn < head.lsn.0 {
                continue; // reclaimed by advance_head, legitimately gone
            }
            let got = found
                .get(&lsn)
                .unwrap_or_else(|| panic!("round {run}: LSN {lsn} lost"));
            assert_eq!(
                got,
                &common::payload(seed_of(r, t, k), MAX_PAYLOAD),
                "LSN {lsn} payload"
            );
        }
        let live = printed.keys().filter(|&&l| l >= head.lsn.0).count();
        eprintln!(
            "round {run}: {this_round} persisted this round, {live} still in the log, tail LSN {}",
            tail.lsn
        );
        if run % 2 == 0 {
            // Recover as writer too, then let the next child continue.
            let log = Log::open(&path, RegionKind::File).unwrap();
            assert_eq!(log.tail(), tail, "writer recovery finds the same tail");
            assert!(log.persisted().lsn.0 > max_printed);
            drop(log);
        }
    }
    assert!(
        max_printed > 200,
        "children made progress ({max_printed} LSNs)"
    );
    assert!(
        printed.values().any(|&(r, _, _)| r > 1),
        "later children continued the log"
    );
    eprintln!("{ROUNDS} kills in {:?}", started.elapsed());
}
