//! Every system call of the closure daemon (the crate's only `unsafe`):
//! pidfd, poll, CPU affinity, memory locking. One way to call the OS: each
//! wrapper checks its call with [`tg_sys::syscall!`], which turns a negative
//! return into `io::Error::last_os_error()`.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use tg_sys::syscall;

/// `pidfd_open(pid, 0)`: a descriptor that becomes readable when `pid`
/// exits (Linux 5.3+).
///
/// # Errors
/// `ESRCH` if no such process; `ENOSYS` on older kernels.
pub(crate) fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    let pid = libc::pid_t::try_from(pid)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "pid out of range"))?;
    // SAFETY: pidfd_open takes a pid and flags by value and returns a new
    // descriptor or -1; no memory is shared with the kernel.
    let fd = syscall!(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })?;
    let fd = i32::try_from(fd)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "descriptor out of range"))?;
    // SAFETY: the kernel just returned this descriptor to us; nothing else
    // owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Waits up to `timeout_ms` for `fd` to become readable; returns whether it
/// did. `EINTR` counts as "not yet".
///
/// # Errors
/// The poll's errno.
pub(crate) fn wait_readable(fd: &OwnedFd, timeout_ms: u64) -> io::Result<bool> {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let t = libc::c_int::try_from(timeout_ms).unwrap_or(libc::c_int::MAX);
    // SAFETY: `p` is one valid pollfd on the stack for the call's duration.
    match syscall!(unsafe { libc::poll(&raw mut p, 1, t) }) {
        Ok(n) => Ok(n > 0 && p.revents != 0),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(false),
        Err(e) => Err(e),
    }
}

/// Pins the calling thread (and the threads it creates later) to `cores`.
///
/// # Errors
/// `EINVAL` when none of the cores is online or allowed (cpuset); a core
/// number past the set's size is `InvalidInput`.
pub(crate) fn pin_to(cores: &[u32]) -> io::Result<()> {
    // SAFETY: cpu_set_t is a plain bit array; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let max = 8 * std::mem::size_of::<libc::cpu_set_t>();
    for &c in cores {
        let c = c as usize;
        if c >= max {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("core {c} is past the {max} a cpu_set_t holds"),
            ));
        }
        // SAFETY: `c` is below the set's bit count (checked above).
        unsafe { libc::CPU_SET(c, &mut set) };
    }
    // SAFETY: `set` is a valid cpu_set_t of the size passed; pid 0 is the
    // calling thread.
    syscall!(unsafe {
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &raw const set)
    })?;
    Ok(())
}

/// Runs the calling thread under `SCHED_FIFO` at `priority` (1..=99), so
/// no ordinary task on its cores delays the watch loop or the takeover.
///
/// # Errors
/// `EPERM` without `CAP_SYS_NICE` (or an `RLIMIT_RTPRIO` below
/// `priority`), `EINVAL` for a priority out of range.
pub(crate) fn set_fifo(priority: u8) -> io::Result<()> {
    let param = libc::sched_param {
        sched_priority: i32::from(priority),
    };
    // SAFETY: `param` is a valid sched_param for the duration of the call;
    // pid 0 is the calling thread.
    syscall!(unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &raw const param) })?;
    Ok(())
}

/// Sends SIGKILL through a pidfd: the process it names, and never another
/// that reused its pid.
///
/// # Errors
/// `ESRCH` once the process has exited; `EPERM` without the right to
/// signal it.
pub(crate) fn pidfd_kill(pidfd: &OwnedFd) -> io::Result<()> {
    // SAFETY: pidfd_send_signal takes a descriptor, a signal number, a
    // null siginfo (the kernel fills a default one) and flags by value.
    syscall!(unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            libc::SIGKILL,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    })?;
    Ok(())
}

/// Locks every current and future page of the process in RAM, so the
/// takeover path never waits for a page-in.
///
/// # Errors
/// `EPERM` without `CAP_IPC_LOCK`, `ENOMEM` over `RLIMIT_MEMLOCK`.
pub(crate) fn lock_memory() -> io::Result<()> {
    // SAFETY: mlockall takes flags by value and touches no user memory.
    syscall!(unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE) })?;
    Ok(())
}
