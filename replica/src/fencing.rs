//! Who may write into the region, as rules with no I/O: the epoch record,
//! the writers admitted under it, and the region's current registration
//! (its rkey). The server performs what the rules decide (formats the
//! region, stores the epoch file, registers the region, moves queue pairs
//! to the error state) and reports each step that succeeded; a simulation
//! of the protocol can drive the same rules over simulated steps.
//!
//! The rules, each driven by a test below:
//!
//! - A writer is admitted only for the log the region mirrors, at the
//!   admitted epoch or a newer one, and never at a sealed epoch. They are
//!   checked here, under the admission lock, because the handshake checked
//!   them against a snapshot taken before it read the writer's `Hello`: a
//!   seal, a newer epoch or a first writer's log may have been recorded
//!   since.
//! - Nothing is taken into memory before it is stored: a record that could
//!   not be stored changes nothing (the old writers keep writing, the rkey
//!   stays), and the next admission or seal tries again.
//! - Once a newer epoch is recorded, every writer of an older epoch is
//!   fenced and the registration is dropped, so the newer writer gets a new
//!   rkey.
//! - A seal fences first: when it is asked for, every writer of its epoch
//!   is fenced, the registration dropped and its epoch refused, before the
//!   replica waits for replay to reach the sealed tail (a hung host that
//!   resumed meanwhile must not write past the tail the closure sealed).
//!   The seal is then recorded, or abandoned (the epoch is admissible
//!   again, nothing was recorded).

use fabric::wire::handshake::Refusal;

use crate::epoch::EpochState;

/// A writer's hold on the region that can be revoked: its queue pair moved
/// to the error state (it executes no remote access afterwards).
pub trait Fence {
    /// Revokes the hold.
    fn fence(&mut self, why: Why);
}

/// Why a writer's hold is revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// A newer epoch was recorded.
    NewerEpoch,
    /// Its epoch is being sealed.
    Sealed,
    /// Its control session ended (the usual way out: not a fault).
    SessionEnded,
    /// The replica is stopping (SIGTERM).
    Shutdown,
}

impl std::fmt::Display for Why {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Why::NewerEpoch => "a newer epoch is admitted",
            Why::Sealed => "its epoch is being sealed",
            Why::SessionEnded => "its session ended",
            Why::Shutdown => "the replica is shutting down",
        })
    }
}

/// What admitting a writer takes, in this order, before its `Accept`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdmitPlan {
    /// The region is fresh: format it for the writer's log first.
    pub format: bool,
    /// Store this record in the epoch file, then report it with
    /// [`Fencing::recorded`].
    pub record: Option<EpochState>,
    /// Register the region (a new rkey), then report it with
    /// [`Fencing::keyed`].
    pub register: bool,
}

struct Admitted<W> {
    id: u64,
    epoch: u64,
    writer: W,
}

/// The admission rules' state: `W` is an admitted writer's hold (its queue
/// pair), `K` the region's registration.
pub struct Fencing<W, K> {
    record: EpochState,
    key: Option<K>,
    writers: Vec<Admitted<W>>,
    next_id: u64,
    /// The epoch a seal is pending for (fenced, not yet recorded).
    sealing: Option<u64>,
}

impl<W, K> std::fmt::Debug for Fencing<W, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fencing")
            .field("record", &self.record)
            .field("keyed", &self.key.is_some())
            .field("writers", &self.writers.len())
            .field("sealing", &self.sealing)
            .finish()
    }
}

impl<W: Fence, K> Fencing<W, K> {
    /// The rules as the epoch file left them: no writer, no registration.
    pub fn new(record: EpochState) -> Self {
        Fencing {
            record,
            key: None,
            writers: Vec::new(),
            next_id: 1,
            sealing: None,
        }
    }

    /// The stored record.
    pub fn record(&self) -> EpochState {
        self.record
    }

    /// The registration a writer may be given, if any.
    pub fn key(&self) -> Option<&K> {
        self.key.as_ref()
    }

    /// How many writers are admitted.
    pub fn writers(&self) -> usize {
        self.writers.len()
    }

    /// Every admitted writer, in admission order: its id, epoch and hold.
    pub fn admitted(&self) -> impl Iterator<Item = (u64, u64, &W)> {
        self.writers.iter().map(|w| (w.id, w.epoch, &w.writer))
    }

    /// Decides whether a writer of log `uuid` at `epoch` may be admitted
    /// now, and what that takes.
    ///
    /// # Errors
    /// The [`Refusal`] to send: another log, an older epoch, or the sealed
    /// epoch.
    pub fn plan(&self, epoch: u64, uuid: [u8; 16]) -> Result<AdmitPlan, Refusal> {
        let r = self.record;
        if let Some(mine) = r.uuid {
            if mine != uuid {
                return Err(Refusal::UuidMismatch {
                    writer: uuid,
                    replica: mine,
                });
            }
        }
        if epoch < r.epoch {
            return Err(Refusal::StaleEpoch {
                writer: epoch,
                admitted: r.epoch,
            });
        }
        if epoch == r.epoch && (r.sealed || self.sealing == Some(epoch)) {
            return Err(Refusal::Sealed { epoch });
        }
        let next = EpochState {
            epoch,
            sealed: false,
            uuid: Some(uuid),
        };
        let record = (next != r).then_some(next);
        Ok(AdmitPlan {
            format: r.uuid.is_none(),
            record,
            register: record.is_some() || self.key.is_none(),
        })
    }

    /// `record` (from [`plan`](Self::plan)) is stored: it is taken, every
    /// writer of an older epoch is fenced, and the registration dropped.
    pub fn recorded(&mut self, record: EpochState) {
        self.record = record;
        self.sealing = None;
        self.fence_below(record.epoch, Why::NewerEpoch);
        self.key = None;
    }

    /// The region is registered anew.
    pub fn keyed(&mut self, key: K) {
        self.key = Some(key);
    }

    /// A writer at `epoch` got its `Accept` and connected: it is admitted
    /// (and fenced by the next newer epoch or seal). Returns its id.
    pub fn admit(&mut self, epoch: u64, writer: W) -> u64 {
        debug_assert!(epoch == self.record.epoch && !self.record.sealed);
        let id = self.next_id;
        self.next_id += 1;
        self.writers.push(Admitted { id, epoch, writer });
        id
    }

    /// The writer's session ended: its hold is revoked.
    pub fn release(&mut self, id: u64) {
        if let Some(i) = self.writers.iter().position(|w| w.id == id) {
            self.writers.remove(i).writer.fence(Why::SessionEnded);
        }
    }

    /// A seal of `epoch` is asked for: every writer of it is fenced, the
    /// registration dropped, and the epoch refused until the seal is
    /// recorded ([`sealed`](Self::sealed)) or abandoned
    /// ([`abandon_seal`](Self::abandon_seal)).
    ///
    /// # Errors
    /// [`Refusal::StaleEpoch`] if another epoch is admitted (nothing is
    /// fenced).
    pub fn begin_seal(&mut self, epoch: u64) -> Result<(), Refusal> {
        self.plan_seal(epoch)?;
        self.sealing = Some(epoch);
        self.fence_below(epoch.saturating_add(1), Why::Sealed);
        self.key = None;
        Ok(())
    }

    /// The pending seal could not be completed: its epoch is admissible
    /// again (its writers stay fenced; they reconnect).
    pub fn abandon_seal(&mut self) {
        self.sealing = None;
    }

    /// Decides whether `epoch` may be sealed: the record to store.
    ///
    /// # Errors
    /// [`Refusal::StaleEpoch`] if another epoch is admitted.
    pub fn plan_seal(&self, epoch: u64) -> Result<EpochState, Refusal> {
        if epoch != self.record.epoch {
            return Err(Refusal::StaleEpoch {
                writer: epoch,
                admitted: self.record.epoch,
            });
        }
        Ok(EpochState {
            sealed: true,
            ..self.record
        })
    }

    /// The seal `record` (from [`plan_seal`](Self::plan_seal)) is stored:
    /// every writer of the sealed epoch is fenced, the registration dropped.
    pub fn sealed(&mut self, record: EpochState) {
        self.record = record;
        self.sealing = None;
        self.fence_below(record.epoch.saturating_add(1), Why::Sealed);
        self.key = None;
    }

    /// The replica stops: every writer is fenced and the registration
    /// dropped (no remote access lands after this). Admission stays
    /// possible by these rules; the server refuses it while it stops.
    pub fn fence_all(&mut self, why: Why) {
        for w in &mut self.writers {
            w.writer.fence(why);
        }
        self.writers.clear();
        self.key = None;
    }

    fn fence_below(&mut self, below: u64, why: Why) {
        for w in self.writers.iter_mut().filter(|w| w.epoch < below) {
            w.writer.fence(why);
        }
        self.writers.retain(|w| w.epoch >= below);
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use super::*;

    const LOG: [u8; 16] = [7; 16];
    const OTHER: [u8; 16] = [9; 16];

    /// A writer whose fences are recorded in a shared list.
    struct Qp(&'static str, Rc<RefCell<Vec<&'static str>>>);

    impl Fence for Qp {
        fn fence(&mut self, _why: Why) {
            self.1.borrow_mut().push(self.0);
        }
    }

    type Rules = Fencing<Qp, u32>;

    fn at(epoch: u64, sealed: bool) -> EpochState {
        EpochState {
            epoch,
            sealed,
            uuid: Some(LOG),
        }
    }

    /// Admits a writer the way the server does: every step of the plan
    /// succeeds; the rkey is the epoch.
    fn admit(r: &mut Rules, epoch: u64, name: &'static str, log: &Rc<RefCell<Vec<&'static str>>>) {
        let plan = r.plan(epoch, LOG).expect("admissible");
        if let Some(rec) = plan.record {
            r.recorded(rec);
        }
        if plan.register {
            r.keyed(u32::try_from(epoch).unwrap());
        }
        r.admit(epoch, Qp(name, Rc::clone(log)));
    }

    #[test]
    fn a_shutdown_fences_every_writer_once_and_drops_the_key() {
        let fenced = Rc::default();
        let mut r = Rules::new(at(2, false));
        admit(&mut r, 2, "host", &fenced);
        admit(&mut r, 2, "closure", &fenced);
        r.fence_all(Why::Shutdown);
        assert_eq!(*fenced.borrow(), ["host", "closure"]);
        assert_eq!((r.writers(), r.key()), (0, None));
        r.release(1);
        assert_eq!(
            fenced.borrow().len(),
            2,
            "a session ending after it fences nothing again"
        );
    }

    #[test]
    fn a_fresh_region_is_formatted_recorded_and_registered_for_its_first_writer() {
        let r = Rules::new(EpochState::default());
        assert_eq!(
            r.plan(1, LOG),
            Ok(AdmitPlan {
                format: true,
                record: Some(at(1, false)),
                register: true
            })
        );
    }

    #[test]
    fn the_admitted_epoch_joins_on_the_same_registration() {
        let fenced = Rc::default();
        let mut r = Rules::new(at(2, false));
        admit(&mut r, 2, "host", &fenced);
        assert_eq!(
            r.plan(2, LOG),
            Ok(AdmitPlan {
                format: false,
                record: None,
                register: false
            })
        );
        admit(&mut r, 2, "closure", &fenced);
        assert_eq!((r.writers(), r.key()), (2, Some(&2)));
        assert!(fenced.borrow().is_empty());
    }

    #[test]
    fn a_newer_epoch_fences_the_older_writers_and_gets_a_new_key() {
        let fenced = Rc::default();
        let mut r = Rules::new(at(2, false));
        admit(&mut r, 2, "host", &fenced);
        admit(&mut r, 2, "closure", &fenced);
        let plan = r.plan(3, LOG).unwrap();
        assert_eq!(plan.record, Some(at(3, false)));
        assert!(plan.register);
        // Nothing is fenced until the record is stored.
        assert!(fenced.borrow().is_empty());
        r.recorded(plan.record.unwrap());
        assert_eq!(*fenced.borrow(), ["host", "closure"]);
        assert_eq!(r.key(), None, "the old rkey must not be handed out");
        r.keyed(3);
        r.admit(3, Qp("restarted host", Rc::clone(&fenced)));
        assert_eq!(r.writers(), 1);
    }

    #[test]
    fn older_epochs_and_other_logs_are_refused() {
        let r = Rules::new(at(4, false));
        assert_eq!(
            r.plan(3, LOG),
            Err(Refusal::StaleEpoch {
                writer: 3,
                admitted: 4
            })
        );
        assert_eq!(
            r.plan(5, OTHER),
            Err(Refusal::UuidMismatch {
                writer: OTHER,
                replica: LOG
            })
        );
    }

    /// Hole: the handshake checks `sealed` against a snapshot taken before
    /// it reads the Hello. A writer at the sealed epoch whose Hello was read
    /// before the seal reached these rules, which used to re-check only
    /// `epoch < admitted` and, finding no registration (the seal drops it),
    /// registered the region anew and admitted it into the sealed epoch.
    #[test]
    fn a_writer_at_a_sealed_epoch_is_refused_even_after_a_snapshot_said_unsealed() {
        let fenced = Rc::default();
        let mut r = Rules::new(at(5, false));
        admit(&mut r, 5, "host", &fenced);
        // The closure seals epoch 5 while the host's reconnect is between
        // its Hello and these rules.
        r.begin_seal(5).unwrap();
        let seal = r.plan_seal(5).unwrap();
        r.sealed(seal);
        assert_eq!(*fenced.borrow(), ["host"]);
        assert_eq!(r.key(), None);
        assert_eq!(r.plan(5, LOG), Err(Refusal::Sealed { epoch: 5 }));
        // The restarted host comes back at the next epoch.
        assert!(r.plan(6, LOG).is_ok());
    }

    /// Hole: a second writer of another log, authenticated against the
    /// fresh region's snapshot (no log yet) while the first was being
    /// admitted, used to be admitted into the region formatted for the
    /// first log.
    #[test]
    fn two_logs_racing_for_a_fresh_region_get_one_of_them() {
        let fenced = Rc::default();
        let mut r = Rules::new(EpochState::default());
        admit(&mut r, 1, "first", &fenced);
        assert_eq!(
            r.plan(1, OTHER),
            Err(Refusal::UuidMismatch {
                writer: OTHER,
                replica: LOG
            })
        );
    }

    /// Hole: the epoch (and a seal) used to be raised in memory before the
    /// epoch file was written. A failed store left the older writers live on
    /// the old rkey and the newer epoch unrecorded, and the next writer at
    /// that epoch was admitted on the old rkey without any store: after a
    /// restart the replica would admit the fenced epoch again.
    #[test]
    fn a_record_that_could_not_be_stored_changes_nothing_and_is_retried() {
        let fenced = Rc::default();
        let mut r = Rules::new(at(2, false));
        admit(&mut r, 2, "host", &fenced);
        assert!(r.plan(3, LOG).unwrap().record.is_some());
        // The store fails: the server refuses the writer and reports nothing.
        assert_eq!(r.record(), at(2, false));
        assert_eq!((r.writers(), r.key()), (1, Some(&2)));
        assert!(fenced.borrow().is_empty());
        // The next writer at epoch 3 is asked to store it again.
        assert_eq!(r.plan(3, LOG).unwrap().record, Some(at(3, false)));
        // The same for a seal: until stored, nothing is sealed.
        let _ = r.plan_seal(2).unwrap();
        assert_eq!(r.record(), at(2, false));
        assert!(r.plan(2, LOG).is_ok());
    }

    #[test]
    fn a_seal_of_another_epoch_is_refused_and_a_repeated_seal_is_the_same_record() {
        let fenced = Rc::default();
        let mut r = Rules::new(at(7, false));
        admit(&mut r, 7, "host", &fenced);
        assert_eq!(
            r.plan_seal(6),
            Err(Refusal::StaleEpoch {
                writer: 6,
                admitted: 7
            })
        );
        assert!(r.begin_seal(6).is_err());
        assert_eq!(r.writers(), 1, "a refused seal fences no one");
        r.begin_seal(7).unwrap();
        let seal = r.plan_seal(7).unwrap();
        r.sealed(seal);
        assert_eq!(r.plan_seal(7), Ok(at(7, true)));
        r.begin_seal(7).unwrap();
    }

    /// Hole: the seal fenced the epoch's writers only after waiting for
    /// replay to reach the sealed tail, so a hung host that resumed during
    /// the wait could write past the tail the closure sealed.
    #[test]
    fn a_seal_fences_its_epoch_before_it_waits_and_refuses_it_meanwhile() {
        let fenced = Rc::default();
        let mut r = Rules::new(at(3, false));
        admit(&mut r, 3, "hung host", &fenced);
        admit(&mut r, 3, "closure", &fenced);
        r.begin_seal(3).unwrap();
        assert_eq!(*fenced.borrow(), ["hung host", "closure"]);
        assert_eq!(r.key(), None);
        assert_eq!(r.plan(3, LOG), Err(Refusal::Sealed { epoch: 3 }));
        assert!(r.plan(4, LOG).is_ok(), "the next epoch is not held up");
        // Replay never reached the tail: the seal is abandoned, nothing
        // recorded, the epoch admissible again.
        r.abandon_seal();
        assert_eq!(r.record(), at(3, false));
        assert_eq!(r.plan(3, LOG).map(|p| p.register), Ok(true));
    }

    #[test]
    fn a_released_writer_is_fenced_and_forgotten() {
        let fenced = Rc::default();
        let mut r = Rules::new(at(1, false));
        admit(&mut r, 1, "a", &fenced);
        admit(&mut r, 1, "b", &fenced);
        r.release(1);
        r.release(1);
        assert_eq!(*fenced.borrow(), ["a"]);
        assert_eq!(r.writers(), 1);
    }
}
