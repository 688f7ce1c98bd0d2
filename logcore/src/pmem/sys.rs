//! The OS constants and small calls of the pmem layer. Every libc call of
//! `pmem` is checked with [`tg_sys::syscall!`] (or [`tg_sys::mapped`] for
//! `mmap`): one way to call the OS in the whole workspace.

use tg_sys::syscall;

/// `MAP_SYNC` from `<linux/mman.h>`: the same value on every Linux
/// architecture. Defined here because not every libc target exports it.
pub(crate) const MAP_SYNC: libc::c_int = 0x80000;
/// `MAP_SHARED_VALIDATE` from `<linux/mman.h>`: makes the kernel reject
/// flags it does not know (instead of ignoring `MAP_SYNC` silently).
pub(crate) const MAP_SHARED_VALIDATE: libc::c_int = 0x03;

/// The system page size (msync granularity).
pub(crate) fn page_size() -> usize {
    // SAFETY: sysconf has no memory-safety preconditions.
    let sz = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(sz)
        .ok()
        .filter(|s| s.is_power_of_two())
        .unwrap_or(4096)
}

/// Whether a process with this pid exists (signal 0 probes without sending).
pub(crate) fn pid_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill with signal 0 sends nothing; it only checks that the
    // process exists and may be signalled.
    match syscall!(unsafe { libc::kill(pid, 0) }) {
        Ok(_) => true,
        // EPERM: it exists but belongs to someone else.
        Err(e) => e.raw_os_error() == Some(libc::EPERM),
    }
}
