//! The takeover: after the host died or hung, make every record it
//! persisted locally durable on the replicas, end its epoch with a seal
//! record (locally and on the replicas), then run the restart command.
//!
//! Every step goes to every replica it can reach and needs the host's
//! quorum of them ([`ClosureOptions::quorum`]: `commit.acks` under `sync`,
//! all under `async`): a replica that is down or fails a step is skipped,
//! named in the report and the log, and left unsealed (so it is not
//! promoted without `--force`). Fewer than the quorum fails the takeover
//! with [`ClosureError::TooFewReplicas`] naming each replica it missed.
//!
//! Steps, each timed from detection:
//!
//! 1. `recover`: [`Log::take_over`] scans the log from its head and finds
//!    the real tail (the control block's persisted tail, confirmed and
//!    possibly extended by the scan: records the host wrote but had not
//!    yet recorded as persisted are flushed and kept).
//! 2. `ship`: per replica, its durable tail (the last one known from the
//!    keep-alive when the gap is short, else asked by status on the
//!    pre-established channel), then the pre-established [`Mirror`] ships
//!    `[durable, tail)` with WRITEs and a flush. At the end of this step the
//!    tail is durable on every replica reached.
//! 3. `seal`: a seal record for the epoch is appended and persisted locally
//!    (the log is now `sealed`), then shipped the same way.
//! 4. `seal-replicas`: `Seal { epoch, tail }` on each control channel; each
//!    replica answers once its copy reaches the tail and it has recorded
//!    the epoch as sealed.
//! 5. `restart`: the restart command is spawned (not waited for).
//!
//! Allocation on this path, honestly: the verbs work (posting, polling) and
//! the control messages' encoding use the stack, but [`Log::take_over`]
//! builds a `Log` (a path clone, a few small values), the status and seal
//! replies are decoded into owned messages, each step's log line is
//! formatted by `tracing`, and spawning the restart command allocates its
//! argv. No connection, registration or mapping is made.
//!
//! [`Mirror`]: fabric::mirror::Mirror

use std::process::{Command, Stdio};
use std::time::Instant;

use fabric::transport::Transport;
use fabric::wire::SealPoint;
use logcore::Log;
use serde_json::{json, Value};

use crate::error::ClosureError;
use crate::liveness::Verdict;
use crate::options::ClosureOptions;
use crate::standby::{ShipFrom, Standby};

/// What a takeover did, with the time of each step from detection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TakeoverReport {
    /// Why the host was taken over.
    pub reason: Verdict,
    /// The host's pid.
    pub host_pid: u32,
    /// The sealed epoch.
    pub epoch: u32,
    /// Persisted tail the control block recorded.
    pub recorded_tail: u64,
    /// Tail found by the recovery scan (>= `recorded_tail`).
    pub tail: u64,
    /// Per replica, its durable tail before shipping.
    pub replica_durable: Vec<(String, u64)>,
    /// Bytes shipped to the replicas (tail only, summed).
    pub shipped_bytes: u64,
    /// LSN of the seal record.
    pub seal_lsn: u64,
    /// Position after the seal record.
    pub sealed_at: u64,
    /// Replicas skipped (down, or a step failed there), with why: they
    /// were not sealed.
    pub missed: Vec<(String, String)>,
    /// Step durations from detection, microseconds.
    pub recover_us: u64,
    /// Detection to the tail durable on every replica.
    pub tail_durable_us: u64,
    /// Detection to the seal record durable on every replica.
    pub seal_durable_us: u64,
    /// Detection to every replica reporting the stream sealed.
    pub sealed_us: u64,
    /// Detection to the restart command spawned (`None`: none configured).
    pub restart_us: Option<u64>,
    /// The restart command's pid.
    pub restart_pid: Option<u32>,
    /// A hung host was killed before the takeover
    /// (`closure.kill-hung-host`).
    pub host_killed: bool,
}

impl TakeoverReport {
    /// As JSON (one line of the daemon's stdout).
    #[must_use]
    pub fn to_json(&self) -> Value {
        let reason = match self.reason {
            Verdict::Died => "died".to_owned(),
            Verdict::Hung { stale_ms } => format!("hung ({stale_ms} ms without a heartbeat)"),
            v => format!("{v:?}"),
        };
        json!({
            "reason": reason,
            "host_pid": self.host_pid,
            "epoch": self.epoch,
            "recorded_tail": self.recorded_tail,
            "tail": self.tail,
            "replica_durable": self.replica_durable.iter().map(|(n, d)| json!({"replica": n, "durable": d})).collect::<Vec<_>>(),
            "shipped_bytes": self.shipped_bytes,
            "seal_lsn": self.seal_lsn,
            "sealed_at": self.sealed_at,
            "replicas_missed": self.missed.iter().map(|(n, why)| json!({"replica": n, "why": why})).collect::<Vec<_>>(),
            "recover_us": self.recover_us,
            "tail_durable_us": self.tail_durable_us,
            "seal_durable_us": self.seal_durable_us,
            "sealed_us": self.sealed_us,
            "restart_us": self.restart_us,
            "restart_pid": self.restart_pid,
            "host_killed": self.host_killed,
        })
    }
}

fn us(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// Starts the restart command (argv, no shell, stdin closed) without
/// waiting for it; returns its pid.
///
/// # Errors
/// [`ClosureError::Restart`] when it cannot be started (or `argv` is
/// empty, which config validation already refuses).
pub fn spawn_restart(argv: &[String]) -> Result<u32, ClosureError> {
    let Some((program, args)) = argv.split_first() else {
        return Err(ClosureError::Restart {
            program: String::new(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "empty command"),
        });
    };
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .spawn()
        .map_err(|source| ClosureError::Restart {
            program: program.clone(),
            source,
        })?;
    let pid = child.id();
    // Reaped by a thread of its own (the daemon lives on and re-arms); its
    // exit status is logged, a failed restart being worth a warning.
    let program = program.clone();
    let reaper = std::thread::Builder::new()
        .name("tg-restart-reaper".into())
        .spawn(move || match child.wait() {
            Ok(st) if st.success() => tracing::info!(pid, %program, "restart command exited: {st}"),
            Ok(st) => tracing::warn!(pid, %program, "restart command failed: {st}"),
            Err(e) => {
                tracing::warn!(pid, %program, error = %e, "cannot wait for the restart command")
            }
        });
    if let Err(e) = reaper {
        tracing::warn!(pid, error = %e, "cannot start a thread to reap the restart command; it stays a zombie when it exits");
    }
    Ok(pid)
}

/// The taken-over log until the takeover completes: dropped on an early
/// return, it is abandoned ([`Log::abandon`]) so the log is not marked
/// cleanly shut down (a host could then open a log a hung host still
/// writes, and a closure would see nothing to take over).
struct Unsealed(Option<Log>);

impl Unsealed {
    fn log(&self) -> &Log {
        self.0.as_ref().expect("held until sealed")
    }

    /// Every replica holds the seal: the log closes normally (it stays
    /// sealed).
    fn sealed(mut self) {
        drop(self.0.take());
    }
}

impl Drop for Unsealed {
    fn drop(&mut self) {
        if let Some(log) = self.0.take() {
            tracing::warn!(
                "takeover failed: the log is left as after a crash, not cleanly shut down"
            );
            log.abandon();
        }
    }
}

/// `Ok` if `reached` replicas are enough for the quorum `needed`.
fn quorum(
    step: &'static str,
    reached: usize,
    needed: usize,
    missed: &[(String, String)],
) -> Result<(), ClosureError> {
    if reached >= needed {
        return Ok(());
    }
    Err(ClosureError::TooFewReplicas {
        step,
        needed,
        reached,
        missed: missed.to_vec(),
    })
}

/// Adds to `missed` the replicas of `more` it does not name yet (the first
/// reason a replica was missed is the one reported).
/// How long a takeover waits for links out with their keep-alive threads,
/// and for seal answers: a replica answers a seal within its control
/// timeout (it waits half of it for its replay to reach the tail).
fn seal_bound(opts: &ClosureOptions) -> std::time::Duration {
    opts.connect.connect_timeout
}

fn merge(missed: &mut Vec<(String, String)>, more: Vec<(String, String)>) {
    for (name, why) in more {
        if !missed.iter().any(|(n, _)| *n == name) {
            missed.push((name, why));
        }
    }
}

/// Runs the takeover on an armed standby. `detected` is when the verdict
/// was reached (every duration is measured from it).
///
/// # Errors
/// [`ClosureError`] of the failing step; the steps before it stay done
/// (a tail already durable stays durable).
pub fn take_over<T: Transport>(
    standby: &mut Standby<T>,
    opts: &ClosureOptions,
    reason: Verdict,
    host_pid: u32,
    detected: Instant,
) -> Result<TakeoverReport, ClosureError> {
    let path = &opts.log_path;
    let region = standby
        .takeover_region
        .take()
        .unwrap_or_else(|| unreachable!("one takeover per standby"));
    let log = Log::take_over(region).map_err(|source| ClosureError::TakeOver {
        path: path.clone(),
        source,
    })?;
    // Until every replica reports the seal, any way out of here leaves the
    // log as a crash would, never marked cleanly shut down.
    let held = Unsealed(Some(log));
    let log = held.log();
    let rec = *log.recovery();
    let tail = log.persisted();
    let epoch = log.epoch();
    let recover_us = us(detected);
    tracing::info!(
        recorded_tail = rec.recorded_tail.pos,
        tail = tail.pos,
        next_lsn = tail.lsn.0,
        epoch,
        elapsed_us = recover_us,
        "takeover: recovered the host's log"
    );

    // A keep-alive in flight holds its link: take the links home (a
    // replica that stopped answering is left out once a quorum is back).
    let home = standby.recall(opts.quorum, seal_bound(opts));
    let mut replica_durable = Vec::with_capacity(standby.links.len());
    let mut missed = Vec::new();
    for link in standby.links.iter().filter(|l| l.is_away()) {
        missed.push((
            link.spec.name.clone(),
            "its keep-alive was still waiting for the replica at takeover".to_owned(),
        ));
    }
    tracing::info!(home, away = missed.len(), "takeover: links taken home");
    let (mut shipped, reached) = standby.ship(
        tail.pos,
        ShipFrom::ReplicaStatus,
        &mut replica_durable,
        &mut missed,
    )?;
    quorum("ship the tail", reached, opts.quorum, &missed)?;
    let tail_durable_us = us(detected);
    tracing::info!(tail = tail.pos, elapsed_us = tail_durable_us, replicas = ?replica_durable, reached, "takeover: tail durable on the replicas reached");

    let seal_lsn = log.seal().map_err(ClosureError::Seal)?;
    let sealed_at = log.persisted().pos;
    // Replicas missed above are not connected now: ship() skips them
    // again, and they are named once.
    let mut again = Vec::new();
    let (more, reached) = standby.ship(
        sealed_at,
        ShipFrom::Mirror,
        &mut replica_durable,
        &mut again,
    )?;
    shipped += more;
    merge(&mut missed, again);
    quorum("ship the seal record", reached, opts.quorum, &missed)?;
    let seal_durable_us = us(detected);
    tracing::info!(
        seal_lsn = seal_lsn.0,
        sealed_at,
        elapsed_us = seal_durable_us,
        reached,
        "takeover: seal record durable on the replicas reached"
    );

    let point = SealPoint {
        epoch: u64::from(epoch),
        tail: sealed_at,
    };
    let (sealed, unsealed) = standby.seal(point, opts.quorum, opts, seal_bound(opts));
    merge(&mut missed, unsealed);
    quorum("seal", sealed, opts.quorum, &missed)?;
    for (replica, why) in &missed {
        tracing::warn!(%replica, %why, "takeover: replica skipped; it is not sealed and may lack the tail: check it before promoting it");
    }
    if let Err(e) = log.control().set_remote_durable_tail(log.persisted()) {
        tracing::warn!(error = %e, "could not record the remote durable tail in the control block");
    }
    let sealed_us = us(detected);
    tracing::info!(
        epoch,
        elapsed_us = sealed_us,
        sealed,
        "takeover: the replicas reached report the stream sealed"
    );
    // The log stays sealed on disk; closing it here keeps it sealed (and
    // unmaps the takeover mapping) before the host restarts.
    held.sealed();

    let (restart_us, restart_pid) = match &opts.restart {
        None => (None, None),
        Some(argv) => {
            let pid = spawn_restart(argv)?;
            let t = us(detected);
            tracing::info!(pid, elapsed_us = t, command = ?argv, "takeover: restart command started");
            (Some(t), Some(pid))
        }
    };
    Ok(TakeoverReport {
        reason,
        host_pid,
        epoch,
        recorded_tail: rec.recorded_tail.pos,
        tail: tail.pos,
        replica_durable,
        shipped_bytes: shipped,
        seal_lsn: seal_lsn.0,
        sealed_at,
        missed,
        recover_us,
        tail_durable_us,
        seal_durable_us,
        sealed_us,
        restart_us,
        restart_pid,
        host_killed: false,
    })
}
