//! What the replica finds in its region at start: the log it mirrors (or
//! none yet), checked against the config and the epoch file; a durable tail
//! that outran the intact records is rewound before any writer is told it.

use std::fmt;

use logcore::{Control, Image, Region, RegionKind, MAGIC};

use super::ServeError;
use crate::epoch::EpochState;
use crate::hex;
use crate::replay::{Damage, Progress};
use crate::settings::Settings;

/// Reads the region's log identity: `Ok(None)` for a region that holds no
/// log yet (no magic), an error for one that holds something else.
pub(super) fn inspect_region(
    s: &Settings,
    ep: &EpochState,
) -> Result<Option<Progress>, ServeError> {
    let bad = |reason: String| ServeError::Region {
        path: s.region.clone(),
        reason,
    };
    let region = match Region::open(&s.region, RegionKind::Auto) {
        Ok(r) => r,
        Err(e) => return Err(bad(format!("{e}"))),
    };
    if region.len() < s.geometry.region_len_bytes as usize {
        return Err(bad(format!(
            "{} bytes, smaller than the log ({} bytes, log.size-bytes)",
            region.len(),
            s.geometry.region_len_bytes
        )));
    }
    // Copied out, not borrowed: the region is registered for remote writes.
    let mut magic = [0u8; 8];
    region.read_at(0, &mut magic);
    if magic != MAGIC {
        if let Some(u) = ep.uuid {
            return Err(bad(format!(
                "holds no log, but the epoch file {} says it mirrored log {}: the region was \
                 wiped or replaced; remove the epoch file only if starting over is intended",
                s.epoch_file.display(),
                hex::encode(&u)
            )));
        }
        return Ok(None);
    }
    let img = Image::read(&region).map_err(|e| bad(format!("{e}; refusing to overwrite it")))?;
    let sb = img.superblock();
    if sb.geometry.ring_offset != s.geometry.ring_offset_bytes
        || sb.geometry.capacity != s.geometry.ring_capacity_bytes
    {
        return Err(bad(format!(
            "formatted for a ring of {} bytes at {}, but log.size-bytes gives {} at {}: fix the config \
             (every node of a log uses the same size)",
            sb.geometry.capacity, sb.geometry.ring_offset, s.geometry.ring_capacity_bytes, s.geometry.ring_offset_bytes
        )));
    }
    if ep.uuid.is_some_and(|u| u != sb.uuid) {
        return Err(bad(format!(
            "mirrors log {} but the epoch file belongs to log {}",
            hex::encode(&sb.uuid),
            hex::encode(&ep.uuid.unwrap_or_default())
        )));
    }
    let (progress, damage) =
        Progress::from_image(&img, u32::try_from(ep.epoch).unwrap_or(u32::MAX));
    if let Some(d) = damage {
        rewind(&region, &s.region, &d).map_err(bad)?;
    }
    // What it holds is reported as durable from the first handshake on: a
    // build before replay flushed what it applied may have recorded it
    // unflushed, and the bytes may still sit in the CPU caches after a
    // process crash. One ring at most, once per start.
    if let Some(g) = progress.geometry {
        crate::replay::flush_ring(g, progress.head.pos, progress.cursor.pos, |off, len| {
            region.persist(off, len)
        })
        .map_err(|e| {
            bad(format!(
                "cannot flush the records it holds ({}..{}): {e}; check the region's device or file",
                progress.head.pos, progress.cursor.pos
            ))
        })?;
    }
    Ok(Some(progress))
}

/// The records end before the recorded durable tail (`d`): say so, and
/// record the last intact position as the durable tail (persisted), so that
/// what the replica reports at handshake, `tg-replica status`, `tg-log
/// verify` and the next start agree. The writer then re-ships from there.
/// With nothing intact, that is the head: the writer re-ships everything
/// from it, if its ring still holds it.
fn rewind(region: &Region, path: &std::path::Path, d: &Damage) -> Result<(), String> {
    tracing::warn!(
        region = %path.display(),
        recorded_tail = d.recorded.pos,
        recorded_next_lsn = d.recorded.lsn.0,
        intact_tail = d.intact.pos,
        intact_next_lsn = d.intact.lsn.0,
        "{d}; the region lost or damaged records it had acknowledged (a power-off with \
         the ring not persistent, a zeroed or torn ring): starting from the intact tail and \
         reporting it as durable, so the writer re-ships LSN {} on from its ring; if it \
         reclaimed them it refuses this replica (too far behind) and the replica must be \
         re-seeded from a full copy",
        d.intact.lsn.0
    );
    let cannot = |e: &dyn fmt::Display| {
        format!(
            "{d}; cannot record the intact tail {} in the control block: {e}; check that the \
             region's device or file is writable",
            d.intact.pos
        )
    };
    let c = Control::new(region).map_err(|e| cannot(&e))?;
    c.rewind_mirror_durable(d.intact).map_err(|e| cannot(&e))
}

/// A formatted region whose epoch file names no log: the replica crashed
/// between formatting the region and recording the first admission (in
/// that order). Record the region's log and the highest epoch it holds.
pub(super) fn adopt(ep: &EpochState, p: &Progress) -> Option<EpochState> {
    match (ep.uuid, p.uuid) {
        (None, Some(u)) => Some(EpochState {
            epoch: ep.epoch.max(u64::from(p.max_epoch)),
            sealed: ep.sealed,
            uuid: Some(u),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use fabric::auth::AllowList;
    use fabric::verbs::QpConfig;
    use fabric::wire::{Geometry, PersistenceMode};

    use super::*;
    use crate::fixture::{self, Fixture};
    use crate::replay;
    use crate::replay::Flaw;
    use logcore::{Cursor, RecordFault};

    const REGION_LEN: u64 = 128 << 10;

    fn settings(f: &Fixture) -> Settings {
        Settings {
            listen: "127.0.0.1:0".into(),
            region: f.path.clone(),
            epoch_file: f.dir.join("epoch"),
            allow: AllowList::new(),
            device: "rxe0".into(),
            port: 1,
            qp: QpConfig::default(),
            persistence: PersistenceMode::Apm,
            geometry: Geometry {
                ring_offset_bytes: f.geometry.ring_offset,
                ring_capacity_bytes: f.geometry.capacity,
                region_len_bytes: REGION_LEN,
            },
            control_timeout: Duration::from_secs(1),
            max_sessions: 1,
            idle_session: Duration::from_secs(30),
            replay_idle: Duration::from_millis(1),
            metrics_listen: None,
        }
    }

    /// What `Replica::bind` finds, and what the control block records
    /// after it.
    fn inspect(f: &Fixture) -> (Progress, Cursor) {
        let ep = EpochState {
            epoch: 1,
            sealed: false,
            uuid: Some(f.uuid),
        };
        let p = inspect_region(&settings(f), &ep).unwrap().unwrap();
        let bytes = f.bytes();
        (p, Image::parse(&bytes).unwrap().control().persisted)
    }

    /// Starts twice on a damaged image: the first start reports and records
    /// the intact tail, the second finds nothing wrong and agrees.
    fn starts_at(f: &Fixture, intact: Cursor) {
        let (p, recorded) = inspect(f);
        assert_eq!(p.cursor, intact, "the durable tail reported at handshake");
        assert_eq!(p.head, f.head);
        assert_eq!(recorded, intact, "the control block now says so too");
        let bytes = f.bytes();
        assert_eq!(replay::verify(&Image::parse(&bytes).unwrap()), Ok(()));
        let (again, recorded) = inspect(f);
        assert_eq!(
            (again.cursor, recorded),
            (intact, intact),
            "a restart agrees"
        );
    }

    #[test]
    fn an_intact_region_starts_at_its_recorded_tail_untouched() {
        let f = fixture::wrapped("server-intact", REGION_LEN, 600);
        let before = f.bytes();
        let (p, recorded) = inspect(&f);
        assert_eq!((p.cursor, recorded), (f.tail, f.tail));
        assert!(f.bytes() == before, "nothing was written");
    }

    #[test]
    fn a_region_with_a_zeroed_record_restarts_before_it() {
        let f = fixture::wrapped("server-zeroed-middle", REGION_LEN, 600);
        let i = f.middle();
        f.zero_record(i);
        starts_at(&f, f.records[i].start);
    }

    #[test]
    fn a_region_with_a_zeroed_ring_restarts_at_its_head() {
        let f = fixture::wrapped("server-zeroed-ring", REGION_LEN, 600);
        f.zero_ring();
        starts_at(&f, f.head);
    }

    #[test]
    fn a_region_with_a_torn_last_record_restarts_before_it() {
        let f = fixture::wrapped("server-flipped-last", REGION_LEN, 600);
        let last = f.records.len() - 1;
        f.flip_payload_byte(last);
        starts_at(&f, f.records[last].start);
    }

    #[test]
    fn the_damage_message_names_both_tails_and_the_fault() {
        let d = Damage {
            recorded: Cursor {
                pos: 292_992,
                lsn: logcore::Lsn(495),
            },
            intact: Cursor {
                pos: 0,
                lsn: logcore::Lsn::FIRST,
            },
            flaw: Flaw::Record(RecordFault::Zeroed),
        };
        assert_eq!(
            d.to_string(),
            "the control block records the durable tail at 292992 (next LSN 495), but the \
             records end at 0 (next LSN 1): the record there does not verify: header is all \
             zero (never written)"
        );
    }

    #[test]
    fn a_formatted_region_without_an_epoch_record_is_adopted() {
        let mut p = Progress::fresh(0);
        p.uuid = Some([9; 16]);
        p.max_epoch = 3;
        let ep = EpochState {
            epoch: 1,
            sealed: false,
            uuid: None,
        };
        assert_eq!(
            adopt(&ep, &p),
            Some(EpochState {
                epoch: 3,
                sealed: false,
                uuid: Some([9; 16])
            })
        );
        // Already recorded, or nothing to adopt: unchanged.
        assert_eq!(
            adopt(
                &EpochState {
                    uuid: Some([9; 16]),
                    ..ep
                },
                &p
            ),
            None
        );
        assert_eq!(adopt(&ep, &Progress::fresh(0)), None);
    }
}
