//! Admission and epoch fencing. Admission is serialised under one lock: a
//! writer with a newer epoch is recorded in the epoch file, every queue pair
//! of an older epoch is moved to the error state (a QP in error executes no
//! remote access), and the region is registered anew (a new rkey), all
//! before the new writer gets its `Accept`.

use std::fmt;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use fabric::gpspm::GpspmResponder;
use fabric::replicated::RegionMemory;
use fabric::verbs::{Access, MemoryRegion, PreparedQp, QueuePair, VerbsError};
use fabric::wire::handshake::{Authenticated, ReplicaExpectation};
use fabric::wire::{Channel, PersistenceMode, RejectCode};
use logcore::{CreateOptions, Log, Region, RegionKind};

use super::gpspm::gpspm_loop;
use super::{lock, Inner};
use crate::epoch::{self, EpochState};
use crate::replay::Progress;

/// A writer's queue pair as the replica holds it.
pub(super) enum WriterQp {
    /// apm: the replica CPU never touches it.
    Passive(QueuePair),
    /// gpspm: a responder thread serves persist requests on it.
    Gpspm(GpspmResponder),
}

impl WriterQp {
    fn fence(&mut self) {
        let qp = match self {
            WriterQp::Passive(qp) => qp,
            WriterQp::Gpspm(r) => r.qp_mut(),
        };
        if let Err(e) = qp.set_error() {
            tracing::error!(error = %e, "could not move a fenced QP to error");
        }
    }
}

/// An admitted writer: its queue pair and the flag that stops its `gpspm`
/// thread.
pub(super) struct Writer {
    id: u64,
    name: String,
    epoch: u64,
    qp: Arc<Mutex<WriterQp>>,
    stop: Arc<AtomicBool>,
}

/// Who is admitted, behind the admission lock: the epoch record, the
/// registered region (its rkey) and the admitted writers.
pub(super) struct Admission {
    pub(super) epoch: EpochState,
    pub(super) mr: Option<Arc<MemoryRegion<RegionMemory>>>,
    pub(super) writers: Vec<Writer>,
    pub(super) next_id: u64,
}

/// Why an admission (or the region registration at start) failed.
#[derive(Debug)]
pub(super) enum AdmitError {
    Verbs(VerbsError),
    Other(String),
}

impl fmt::Display for AdmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AdmitError::Verbs(e) => write!(f, "{e}"),
            AdmitError::Other(s) => f.write_str(s),
        }
    }
}

/// Moves every writer QP of an epoch below `below` to the error state (so
/// its WRITEs and READs fail at the device) and forgets the writer; its
/// session ends when it next talks.
pub(super) fn fence_writers(a: &mut Admission, below: u64, why: &str) {
    for w in a.writers.iter().filter(|w| w.epoch < below) {
        tracing::warn!(writer = %w.name, epoch = w.epoch, "fencing writer: {why}");
        w.stop.store(true, Ordering::Relaxed);
        lock(&w.qp).fence();
    }
    a.writers.retain(|w| w.epoch >= below);
}

impl Inner {
    pub(super) fn expectation(&self, a: &Admission) -> ReplicaExpectation {
        ReplicaExpectation {
            log_uuid: a.epoch.uuid,
            geometry: self.s.geometry,
            persistence: self.s.persistence,
            admitted_epoch: a.epoch.epoch,
            sealed: a.epoch.sealed,
        }
    }

    /// Registers the first `region_len` bytes of the region (a new rkey).
    pub(super) fn register_region(&self, a: &mut Admission) -> Result<(), AdmitError> {
        let region = Region::open(&self.s.region, RegionKind::Auto)
            .map_err(|e| AdmitError::Other(e.to_string()))?;
        let len = usize::try_from(self.s.geometry.region_len_bytes).unwrap_or(usize::MAX);
        let mem = RegionMemory::new(region, len).ok_or_else(|| {
            AdmitError::Other(format!("region is smaller than the log's {len} bytes"))
        })?;
        a.mr = Some(Arc::new(
            MemoryRegion::register(&self.pd, mem, Access::REPLICA).map_err(AdmitError::Verbs)?,
        ));
        Ok(())
    }

    /// Formats a fresh region for the writer's log.
    pub(super) fn format_region(&self, uuid: [u8; 16], epoch: u32) -> Result<(), AdmitError> {
        let opts = CreateOptions {
            kind: RegionKind::Auto,
            epoch,
            uuid: Some(uuid),
            capacity: Some(self.s.geometry.ring_capacity_bytes),
            overwrite: false,
        };
        let log = Log::create(&self.s.region, self.s.geometry.region_len_bytes, &opts)
            .map_err(|e| AdmitError::Other(e.to_string()))?;
        let geometry = log.geometry();
        drop(log);
        let mut g = lock(&self.replay.progress);
        let mut p = Progress::fresh(epoch);
        p.uuid = Some(uuid);
        p.geometry = Some(geometry);
        *g = Some(p);
        Ok(())
    }

    /// Drops a writer's QP when its session ends.
    pub(super) fn release(&self, id: u64) {
        let mut a = lock(&self.admission);
        if let Some(i) = a.writers.iter().position(|w| w.id == id) {
            let w = a.writers.remove(i);
            w.stop.store(true, Ordering::Relaxed);
            lock(&w.qp).fence();
        }
    }

    pub(super) fn admit(
        &self,
        auth: Authenticated<TcpStream>,
    ) -> Result<(u64, String, Channel<TcpStream>), String> {
        let mut a = lock(&self.admission);
        let hello = auth.hello().clone();
        let name = hello.writer.to_string();
        // Re-check under the lock: another writer may have moved the epoch.
        if hello.epoch < a.epoch.epoch {
            let msg = format!(
                "stale epoch {}: epoch {} is admitted",
                hello.epoch, a.epoch.epoch
            );
            return Err(auth.reject(RejectCode::StaleEpoch, msg).to_string());
        }
        let epoch32 = u32::try_from(hello.epoch).unwrap_or(u32::MAX);
        let fail = |auth: Authenticated<TcpStream>, e: AdmitError| {
            auth.reject(RejectCode::Internal, e.to_string()).to_string()
        };
        if a.epoch.uuid.is_none() {
            if let Err(e) = self.format_region(hello.log_uuid, epoch32) {
                return Err(fail(auth, e));
            }
            a.epoch.uuid = Some(hello.log_uuid);
            a.mr = None;
        }
        if hello.epoch > a.epoch.epoch || a.mr.is_none() {
            // Fence: record the epoch durably, stop every older writer's QP,
            // and hand out a new rkey.
            fence_writers(&mut a, hello.epoch, "a newer epoch is admitted");
            if hello.epoch > a.epoch.epoch {
                a.epoch.epoch = hello.epoch;
                a.epoch.sealed = false;
            }
            if let Err(e) = epoch::store(&self.s.epoch_file, &a.epoch) {
                return Err(fail(auth, AdmitError::Other(e.to_string())));
            }
            if let Some(p) = lock(&self.replay.progress).as_mut() {
                p.admitted_epoch = p.admitted_epoch.max(epoch32);
            }
            a.mr = None;
            if let Err(e) = self.register_region(&mut a) {
                return Err(fail(auth, e));
            }
        }
        let mr = Arc::clone(a.mr.as_ref().expect("registered above"));
        let prepared = match PreparedQp::new(&self.pd, self.s.qp) {
            Ok(q) => q,
            Err(e) => return Err(fail(auth, AdmitError::Verbs(e))),
        };
        let endpoint = match prepared.endpoint() {
            Ok(e) => e,
            Err(e) => return Err(fail(auth, AdmitError::Verbs(e))),
        };
        let durable = self.replay.get().map_or(0, |p| p.cursor.pos);
        let connecting = auth
            .accept(endpoint, mr.remote(), durable)
            .map_err(|e| e.to_string())?;
        let qp = match prepared.connect(connecting.writer_endpoint(), Access::REPLICA) {
            Ok(q) => q,
            Err(e) => {
                return Err(connecting
                    .reject(RejectCode::Internal, e.to_string())
                    .to_string())
            }
        };
        let stop = Arc::new(AtomicBool::new(false));
        let wqp = match self.s.persistence {
            PersistenceMode::Apm => WriterQp::Passive(qp),
            PersistenceMode::Gpspm => match GpspmResponder::new(qp, &self.pd) {
                Ok(r) => WriterQp::Gpspm(r),
                Err(e) => {
                    return Err(connecting
                        .reject(RejectCode::Internal, e.to_string())
                        .to_string())
                }
            },
        };
        let wqp = Arc::new(Mutex::new(wqp));
        let admitted = connecting.ready().map_err(|e| e.to_string())?;
        let id = a.next_id;
        a.next_id += 1;
        if self.s.persistence == PersistenceMode::Gpspm {
            let (wqp, stop, mr, geometry) = (
                Arc::clone(&wqp),
                Arc::clone(&stop),
                Arc::clone(&mr),
                self.s.geometry,
            );
            std::thread::spawn(move || gpspm_loop(&wqp, &stop, &mr, geometry));
        }
        a.writers.push(Writer {
            id,
            name: name.clone(),
            epoch: hello.epoch,
            qp: wqp,
            stop,
        });
        tracing::info!(writer = %name, epoch = hello.epoch, durable, "writer admitted");
        Ok((id, name, admitted.into_channel()))
    }
}
