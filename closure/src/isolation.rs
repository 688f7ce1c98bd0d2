//! Keeping the closure runnable while the host misbehaves: pinned to its
//! reserved cores, its memory locked, and out of the OOM killer's reach.
//! Each measure that the platform refuses (no privilege, a cpuset that
//! excludes the cores) is reported as a warning, not a failure: a closure
//! with weaker isolation still ships the tail; the operator is told what
//! is missing and how to fix it.

use std::path::Path;

use crate::sys;

/// What [`isolate`] achieved; every `false` comes with a warning.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Isolation {
    /// Pinned to the configured cores.
    pub pinned: bool,
    /// Every configured core is in the kernel's isolated set
    /// (`isolcpus=`) or `nohz_full=` set.
    pub cores_isolated: bool,
    /// `mlockall` succeeded.
    pub memory_locked: bool,
    /// `oom_score_adj` is -1000.
    pub oom_protected: bool,
    /// Running under `SCHED_FIFO` (only when a priority was asked).
    pub realtime: bool,
    /// What could not be done, each with the fix.
    pub warnings: Vec<String>,
}

/// Parses a kernel CPU list (`0-3,8,10-11`; empty means none).
///
/// # Errors
/// The offending piece.
pub fn parse_cpu_list(s: &str) -> Result<Vec<u32>, String> {
    let mut out = Vec::new();
    for piece in s.trim().split(',').filter(|p| !p.is_empty()) {
        let num = |t: &str| {
            t.parse::<u32>()
                .map_err(|_| format!("bad CPU number {t:?} in {s:?}"))
        };
        match piece.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b)?);
                if a > b || b - a > 4096 {
                    return Err(format!("bad CPU range {piece:?} in {s:?}"));
                }
                out.extend(a..=b);
            }
            None => out.push(num(piece)?),
        }
    }
    Ok(out)
}

/// Whether every core of `cores` is in one of the kernel's sequestered
/// sets, read from `sysfs` (`<sysfs>/devices/system/cpu/{isolated,nohz_full}`).
#[must_use]
pub fn cores_isolated(sysfs: &Path, cores: &[u32]) -> bool {
    let read = |name: &str| {
        std::fs::read_to_string(sysfs.join("devices/system/cpu").join(name))
            .ok()
            .and_then(|s| parse_cpu_list(&s).ok())
            .unwrap_or_default()
    };
    let isolated = read("isolated");
    let nohz = read("nohz_full");
    !cores.is_empty()
        && cores
            .iter()
            .all(|c| isolated.contains(c) || nohz.contains(c))
}

/// Pins to `cores` (when not empty), switches to `SCHED_FIFO` at
/// `realtime` (when set), protects from the OOM killer; call [`lock`] once
/// everything the takeover needs is allocated. Applies to the calling
/// thread (and the threads it spawns later).
#[must_use]
pub fn isolate(cores: &[u32], realtime: Option<u8>) -> Isolation {
    let mut r = Isolation::default();
    if let Some(p) = realtime {
        match sys::set_fifo(p) {
            Ok(()) => r.realtime = true,
            Err(e) => r.warnings.push(format!(
                "cannot run under SCHED_FIFO priority {p}: {e}; grant CAP_SYS_NICE \
                 (systemd: CPUSchedulingPolicy=fifo, or AmbientCapabilities=CAP_SYS_NICE) or \
                 leave closure.realtime-priority out"
            )),
        }
    }
    if cores.is_empty() {
        r.warnings.push(
            "closure.cores is empty: the closure is not pinned and competes with the host for CPU; \
             reserve cores (README: sequestering cores) and list them"
                .into(),
        );
    } else {
        match sys::pin_to(cores) {
            Ok(()) => r.pinned = true,
            Err(e) => r.warnings.push(format!(
                "cannot pin to cores {cores:?}: {e}; check they are online and in this process's cpuset"
            )),
        }
        r.cores_isolated = cores_isolated(Path::new("/sys"), cores);
        if !r.cores_isolated {
            r.warnings.push(format!(
                "cores {cores:?} are not isolated (not in isolcpus= or nohz_full=): other work may run \
                 there and delay a takeover; boot with isolcpus={list} nohz_full={list} or give them a \
                 dedicated cpuset cgroup",
                list = cores
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            ));
        }
    }
    match std::fs::write("/proc/self/oom_score_adj", "-1000") {
        Ok(()) => r.oom_protected = true,
        Err(e) => r.warnings.push(format!(
            "cannot set oom_score_adj to -1000: {e}; run as root or with CAP_SYS_RESOURCE \
             (systemd: OOMScoreAdjust=-1000)"
        )),
    }
    r
}

/// Locks all current and future memory (`mlockall`); records the outcome
/// in `r`.
pub fn lock(r: &mut Isolation) {
    match sys::lock_memory() {
        Ok(()) => r.memory_locked = true,
        Err(e) => r.warnings.push(format!(
            "mlockall failed: {e}; grant CAP_IPC_LOCK or raise RLIMIT_MEMLOCK (systemd: LimitMEMLOCK=infinity)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_parse() {
        assert_eq!(parse_cpu_list("").unwrap(), Vec::<u32>::new());
        assert_eq!(parse_cpu_list("\n").unwrap(), Vec::<u32>::new());
        assert_eq!(parse_cpu_list("0-2,5\n").unwrap(), vec![0, 1, 2, 5]);
        assert!(parse_cpu_list("3-1").is_err());
        assert!(parse_cpu_list("x").is_err());
    }

    #[test]
    fn isolation_is_read_from_sysfs() {
        let d = std::env::temp_dir().join(format!("tg-sysfs-{}", std::process::id()));
        let cpu = d.join("devices/system/cpu");
        std::fs::create_dir_all(&cpu).unwrap();
        std::fs::write(cpu.join("isolated"), "2-3\n").unwrap();
        std::fs::write(cpu.join("nohz_full"), "5\n").unwrap();
        assert!(cores_isolated(&d, &[2, 3, 5]));
        assert!(!cores_isolated(&d, &[1, 2]));
        assert!(!cores_isolated(&d, &[]));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn pinning_applies_to_the_calling_thread() {
        // On a thread of its own, so the test harness's threads keep their CPUs.
        let list = std::thread::spawn(|| {
            let r = isolate(&[0], None);
            assert!(r.pinned, "{r:?}");
            std::fs::read_to_string("/proc/thread-self/status")
                .unwrap()
                .lines()
                .find_map(|l| {
                    l.strip_prefix("Cpus_allowed_list:")
                        .map(|v| v.trim().to_owned())
                })
                .unwrap()
        })
        .join()
        .unwrap();
        assert_eq!(list, "0");
    }

    #[test]
    fn a_refused_realtime_policy_warns_with_the_fix() {
        // Priority 100 is past SCHED_FIFO's range: refused (EINVAL) even
        // with privileges, so the warning path runs everywhere.
        let r = std::thread::spawn(|| isolate(&[], Some(100)))
            .join()
            .unwrap();
        assert!(!r.realtime, "{r:?}");
        assert!(
            r.warnings
                .iter()
                .any(|w| w.contains("SCHED_FIFO priority 100") && w.contains("CAP_SYS_NICE")),
            "{r:?}"
        );
    }

    #[test]
    fn a_granted_realtime_policy_is_the_threads() {
        let (r, policy) = std::thread::spawn(|| {
            let r = isolate(&[], Some(1));
            // Field 41 of /proc/thread-self/stat: the scheduling policy.
            let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
            let after_comm = &stat[stat.rfind(')').unwrap() + 2..];
            let policy: u32 = after_comm.split(' ').nth(38).unwrap().parse().unwrap();
            (r, policy)
        })
        .join()
        .unwrap();
        if r.realtime {
            assert_eq!(policy, 1, "SCHED_FIFO is policy 1: {r:?}");
        } else {
            // No CAP_SYS_NICE here: then it must say so, and not pretend.
            assert_eq!(policy, 0, "{r:?}");
            assert!(
                r.warnings.iter().any(|w| w.contains("CAP_SYS_NICE")),
                "{r:?}"
            );
        }
    }

    #[test]
    fn pinning_to_an_impossible_core_warns_instead_of_failing() {
        let r = isolate(&[1023], None);
        assert!(!r.pinned);
        assert!(r.warnings.iter().any(|w| w.contains("cannot pin")), "{r:?}");
    }
}
