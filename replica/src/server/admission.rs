//! Admission and epoch fencing. Admission is serialised under one lock: a
//! writer with a newer epoch is recorded in the epoch file, every queue pair
//! of an older epoch is moved to the error state (a QP in error executes no
//! remote access), and the region is registered anew (a new rkey), all
//! before the new writer gets its `Accept`. What is decided is
//! [`crate::fencing`]'s; this module performs it on the device and the disk.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use fabric::gpspm::GpspmResponder;
use fabric::replicated::RegionMemory;
use fabric::verbs::{Access, MemoryRegion, PreparedQp, QueuePair, VerbsError};
use fabric::wire::handshake::{Authenticated, HandshakeError, ReplicaExpectation};
use fabric::wire::{Channel, PersistenceMode, RejectCode};
use logcore::{CreateOptions, Log, Region, RegionKind};

use super::gpspm::gpspm_loop;
use super::paced::Paced;
use super::{lock, Inner};
use crate::epoch;
use crate::fencing::{Fence, Fencing, Why};
use crate::replay::Progress;

/// A writer's queue pair as the replica holds it.
pub(super) enum WriterQp {
    /// apm: the replica CPU never touches it.
    Passive(QueuePair),
    /// gpspm: a responder thread serves persist requests on it.
    Gpspm(GpspmResponder),
}

/// An admitted writer: its queue pair and the flag that stops its `gpspm`
/// thread.
pub(super) struct Writer {
    name: String,
    epoch: u64,
    qp: Arc<Mutex<WriterQp>>,
    stop: Arc<AtomicBool>,
}

impl Writer {
    /// The writer's name.
    pub(super) fn name(&self) -> &str {
        &self.name
    }
}

impl Fence for Writer {
    fn fence(&mut self, why: Why) {
        if matches!(why, Why::SessionEnded | Why::Shutdown) {
            tracing::debug!(writer = %self.name, "dropping the writer's QP: {why}");
        } else {
            tracing::warn!(writer = %self.name, epoch = self.epoch, "fencing writer: {why}");
        }
        self.stop.store(true, Ordering::Relaxed);
        let mut q = lock(&self.qp);
        let qp = match &mut *q {
            WriterQp::Passive(qp) => qp,
            WriterQp::Gpspm(r) => r.qp_mut(),
        };
        if let Err(e) = qp.set_error() {
            tracing::error!(error = %e, "could not move a fenced QP to error");
        }
    }
}

/// The region's registration: what a writer's rkey names.
pub(super) type Registration = Arc<MemoryRegion<RegionMemory>>;

/// Who is admitted, behind the admission lock (see [`crate::fencing`]).
pub(super) type Admission = Fencing<Writer, Registration>;

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

impl Inner {
    pub(super) fn expectation(&self, a: &Admission) -> ReplicaExpectation {
        let r = a.record();
        ReplicaExpectation {
            log_uuid: r.uuid,
            geometry: self.s.geometry,
            persistence: self.s.persistence,
            admitted_epoch: r.epoch,
            sealed: r.sealed,
        }
    }

    /// Registers the first `region_len` bytes of the region (a new rkey).
    pub(super) fn register_region(&self) -> Result<Registration, AdmitError> {
        let region = Region::open(&self.s.region, RegionKind::Auto)
            .map_err(|e| AdmitError::Other(e.to_string()))?;
        let len = usize::try_from(self.s.geometry.region_len_bytes).unwrap_or(usize::MAX);
        let mem = RegionMemory::new(region, len).ok_or_else(|| {
            AdmitError::Other(format!("region is smaller than the log's {len} bytes"))
        })?;
        Ok(Arc::new(
            MemoryRegion::register(&self.pd, mem, Access::REPLICA).map_err(AdmitError::Verbs)?,
        ))
    }

    /// Formats a fresh region for the writer's log, unless an earlier
    /// admission formatted it already and then failed to store the epoch
    /// file.
    fn format_region(&self, uuid: [u8; 16], epoch: u32) -> Result<(), AdmitError> {
        if self.replay.get().is_some_and(|p| p.uuid == Some(uuid)) {
            return Ok(());
        }
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
        lock(&self.admission).release(id);
    }

    /// Performs what the admission rules decide for this writer, in their
    /// order, then hands it the rkey and connects its queue pair. Any step
    /// that fails refuses the writer and leaves the rules as they were.
    pub(super) fn admit(
        &self,
        auth: Authenticated<Paced>,
    ) -> Result<(u64, String, Channel<Paced>), HandshakeError> {
        let mut a = lock(&self.admission);
        let hello = auth.hello().clone();
        let name = hello.writer.to_string();
        if self.stopping.load(Ordering::Relaxed) {
            return Err(auth.reject(
                RejectCode::Internal,
                "replica shutting down (SIGTERM): reconnect when it is back",
            ));
        }
        if a.writers() >= self.s.max_sessions {
            let why = format!(
                "replica busy: {} writers admitted, the most it serves; a slot is freed \
                 when a writer's session ends",
                a.writers()
            );
            return Err(auth.reject(RejectCode::Internal, why));
        }
        // The handshake checked a snapshot: decide again under the lock.
        let plan = match a.plan(hello.epoch, hello.log_uuid) {
            Ok(p) => p,
            Err(refusal) => return Err(auth.refuse(refusal)),
        };
        let epoch32 = u32::try_from(hello.epoch).unwrap_or(u32::MAX);
        let fail = |auth: Authenticated<Paced>, e: AdmitError| {
            auth.reject(RejectCode::Internal, e.to_string())
        };
        if plan.format {
            if let Err(e) = self.format_region(hello.log_uuid, epoch32) {
                return Err(fail(auth, e));
            }
        }
        if let Some(record) = plan.record {
            // Durably first; then every older writer's QP stops and the
            // old rkey is dropped.
            if let Err(e) = epoch::store(&self.s.epoch_file, &record) {
                return Err(fail(auth, AdmitError::Other(e.to_string())));
            }
            a.recorded(record);
            if let Some(p) = lock(&self.replay.progress).as_mut() {
                p.admitted_epoch = p.admitted_epoch.max(epoch32);
            }
        }
        if plan.register {
            match self.register_region() {
                Ok(mr) => a.keyed(mr),
                Err(e) => return Err(fail(auth, e)),
            }
        }
        let mr = Arc::clone(a.key().expect("registered above"));
        let prepared = match PreparedQp::new(&self.pd, self.s.qp) {
            Ok(q) => q,
            Err(e) => return Err(fail(auth, AdmitError::Verbs(e))),
        };
        let endpoint = match prepared.endpoint() {
            Ok(e) => e,
            Err(e) => return Err(fail(auth, AdmitError::Verbs(e))),
        };
        let durable = self.replay.get().map_or(0, |p| p.cursor.pos);
        let connecting = auth.accept(endpoint, mr.remote(), durable)?;
        let qp = match prepared.connect(connecting.writer_endpoint(), Access::REPLICA) {
            Ok(q) => q,
            Err(e) => return Err(connecting.reject(RejectCode::Internal, e.to_string())),
        };
        let stop = Arc::new(AtomicBool::new(false));
        let wqp = match self.s.persistence {
            PersistenceMode::Apm => WriterQp::Passive(qp),
            PersistenceMode::Gpspm => match GpspmResponder::new(qp, &self.pd) {
                Ok(r) => WriterQp::Gpspm(r),
                Err(e) => return Err(connecting.reject(RejectCode::Internal, e.to_string())),
            },
        };
        let wqp = Arc::new(Mutex::new(wqp));
        let admitted = connecting.ready()?;
        if self.s.persistence == PersistenceMode::Gpspm {
            let (wqp, stop, mr, geometry) = (
                Arc::clone(&wqp),
                Arc::clone(&stop),
                Arc::clone(&mr),
                self.s.geometry,
            );
            std::thread::spawn(move || gpspm_loop(&wqp, &stop, &mr, geometry));
        }
        let id = a.admit(
            hello.epoch,
            Writer {
                name: name.clone(),
                epoch: hello.epoch,
                qp: wqp,
                stop,
            },
        );
        tracing::info!(writer = %name, epoch = hello.epoch, durable, "writer admitted");
        Ok((id, name, admitted.into_channel()))
    }
}
