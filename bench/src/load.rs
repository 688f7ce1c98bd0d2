//! `tg-bench load`: a host workload for drills and tests. Record `i`'s
//! payload is derived from its LSN and the seed, so a checker can verify any
//! record on any image; each commit that returns prints `committed LSN`.

use std::io::Write;
use std::time::{Duration, Instant};

use fabric::replicated::ReplicatedLog;
use hdrhistogram::Histogram;
use serde_json::{json, Value};

use crate::progress::Progress;
use crate::stats::{histogram, Summary};

/// The payload of the record with LSN `lsn` under `seed`: 16 to 1039 bytes,
/// starting with the LSN and seed so a stray record is recognisable.
pub(crate) fn payload(seed: u64, lsn: u64) -> Vec<u8> {
    let mut x = (lsn ^ seed.rotate_left(17)).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let len = 16 + (x >> 11) % 1024;
    let mut p = Vec::with_capacity(len as usize);
    p.extend_from_slice(&lsn.to_le_bytes());
    p.extend_from_slice(&seed.to_le_bytes());
    while (p.len() as u64) < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p.push(x as u8);
    }
    p
}

/// The host's own replay after a restart: every record already in the log
/// is applied in LSN order and checked against the payload its LSN and
/// embedded seed give (so a restarted load verifies what the previous run
/// left, whatever its seed). Records other subcommands wrote into the same
/// log (latency, throughput) are counted as `foreign`, not refused.
#[derive(Debug, Default)]
pub(crate) struct Replayed {
    pub(crate) records: u64,
    pub(crate) first_lsn: Option<u64>,
    pub(crate) last_lsn: Option<u64>,
    pub(crate) bytes: u64,
    /// Records that are not `tg-bench load` records.
    pub(crate) foreign: u64,
    pub(crate) micros: u64,
    /// The log was sealed (a closure took it over) and starts a new epoch.
    pub(crate) was_sealed: bool,
}

impl logcore::Apply for Replayed {
    type Error = std::convert::Infallible;

    fn apply(&mut self, lsn: logcore::Lsn, p: &[u8]) -> Result<(), Self::Error> {
        let word = |at: usize| {
            p.get(at..at + 8)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_le_bytes)
        };
        let ours = match (word(0), word(8)) {
            (Some(embedded), Some(seed)) => embedded == lsn.0 && p == payload(seed, lsn.0),
            _ => false,
        };
        if !ours {
            self.foreign += 1;
        }
        self.first_lsn.get_or_insert(lsn.0);
        self.last_lsn = Some(lsn.0);
        self.records += 1;
        self.bytes += p.len() as u64;
        Ok(())
    }
}

impl Replayed {
    /// Replays `log` from its head into a checker.
    pub(crate) fn run(log: &mut logcore::Log) -> Result<Replayed, String> {
        let mut r = Replayed {
            was_sealed: log.is_sealed(),
            ..Replayed::default()
        };
        let t = Instant::now();
        let from = log.head().lsn;
        log.replay(from, &mut r)
            .map_err(|e| format!("replaying the log: {e}"))?;
        r.micros = u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX);
        Ok(r)
    }

    pub(crate) fn json(&self) -> Value {
        json!({
            "records": self.records,
            "first_lsn": self.first_lsn,
            "last_lsn": self.last_lsn,
            "bytes": self.bytes,
            "foreign": self.foreign,
            "micros": self.micros,
            "was_sealed": self.was_sealed,
        })
    }
}

/// What a load run did, for `--json`.
#[derive(Debug)]
pub(crate) struct LoadRun {
    pub(crate) records: u64,
    pub(crate) first_lsn: Option<u64>,
    pub(crate) last_lsn: Option<u64>,
    pub(crate) payload_bytes: u64,
    pub(crate) seconds: f64,
    /// append + commit of each record, ns.
    pub(crate) commit: Histogram<u64>,
}

impl LoadRun {
    pub(crate) fn json(&self) -> Value {
        json!({
            "records": self.records,
            "first_lsn": self.first_lsn,
            "last_lsn": self.last_lsn,
            "payload_bytes": self.payload_bytes,
            "seconds": self.seconds,
            "records_per_s": self.records as f64 / self.seconds.max(f64::MIN_POSITIVE),
            "commit": Summary::of(&self.commit).json(),
        })
    }
}

pub(crate) fn run(
    rl: &ReplicatedLog,
    records: u64,
    rate: Option<f64>,
    seed: u64,
    progress: &mut Progress,
) -> Result<LoadRun, String> {
    let out = std::io::stdout();
    let mut out = out.lock();
    let start = Instant::now();
    let mut run = LoadRun {
        records: 0,
        first_lsn: None,
        last_lsn: None,
        payload_bytes: 0,
        seconds: 0.0,
        commit: histogram(),
    };
    // A milestone line every tenth of the run (at least every record on
    // tiny runs), so a piped log shows it moving without one line a record.
    let milestone_every = (records / 10).max(1);
    for i in 0..records {
        if let Some(r) = rate {
            let due = start + Duration::from_secs_f64(i as f64 / r);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        let next = rl.log().tail().lsn.0;
        let payload = payload(seed, next);
        let t = Instant::now();
        let a = rl.append(&payload).map_err(|e| format!("append: {e}"))?;
        debug_assert_eq!(a.lsn.0, next, "single appender: the LSN is the tail's");
        rl.commit(a.lsn)
            .map_err(|e| format!("commit of LSN {}: {e}", a.lsn.0))?;
        run.commit.saturating_record(
            u64::try_from(t.elapsed().as_nanos())
                .unwrap_or(u64::MAX)
                .max(1),
        );
        // Postcondition the drills rely on: committed LSNs strictly increase.
        assert!(
            run.last_lsn.is_none_or(|l| a.lsn.0 > l),
            "LSN {} after {:?}",
            a.lsn.0,
            run.last_lsn
        );
        run.first_lsn.get_or_insert(a.lsn.0);
        run.last_lsn = Some(a.lsn.0);
        run.records += 1;
        run.payload_bytes += payload.len() as u64;
        writeln!(out, "committed {}", a.lsn.0).map_err(|e| e.to_string())?;
        out.flush().map_err(|e| e.to_string())?;
        if run.records.is_multiple_of(milestone_every) {
            progress.milestone(&format!(
                "load: {}/{records} records committed",
                run.records
            ));
        }
    }
    run.seconds = start.elapsed().as_secs_f64();
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::payload;

    #[test]
    fn payloads_carry_their_lsn_and_differ() {
        let a = payload(7, 100);
        assert_eq!(&a[..8], &100u64.to_le_bytes());
        assert_eq!(&a[8..16], &7u64.to_le_bytes());
        assert!((16..=1039).contains(&a.len()));
        assert_ne!(payload(7, 101)[16..], a[16..]);
        assert_eq!(payload(7, 100), a, "deterministic");
    }
}
