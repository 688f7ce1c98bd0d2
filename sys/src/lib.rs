//! One way to call the OS: the failure conventions of libc and libibverbs
//! turned into [`io::Result`] in one place, so that every crate of tailguard
//! tests a return value the same way (mio's `syscall!` is the model).
//!
//! | On failure the call returns                 | Use           | For example                          |
//! |---------------------------------------------|---------------|--------------------------------------|
//! | a negative value (`-1`) and sets `errno`    | [`syscall!`]  | `poll`, `msync`, `kill`, `getrandom` |
//! | `NULL` and sets `errno`                     | [`non_null`]  | `ibv_create_qp`, `ibv_reg_mr`        |
//! | `MAP_FAILED` and sets `errno`               | [`mapped`]    | `mmap`                               |
//! | the errno itself (and 0 on success)         | [`errno_result`] | `ibv_post_send`, `ibv_modify_qp`  |
//! | a negated errno (and a count on success)    | [`count`]     | `ibv_poll_cq`, `ibv_query_gid_table` |
//!
//! [`is_unsupported`] recognises the answer a kernel or RDMA provider gives
//! for a feature it lacks (`EOPNOTSUPP`), so that a caller can turn it into
//! a typed "unsupported" error that says so, as rust-ibverbs does.
//!
//! The unsafe call itself stays at the call site, in the caller's crate,
//! with its `// SAFETY:` comment: these helpers only look at return values
//! and `errno`. This crate has no unsafe code, and a crate that denies
//! `unsafe_code` cannot reach the OS through it by accident.
#![warn(missing_docs)]
#![deny(unsafe_code)]

use std::io;
use std::ptr::NonNull;

/// Evaluates a libc call (written by the caller, `unsafe` block and all)
/// and turns a negative return into `Err(io::Error::last_os_error())`;
/// otherwise `Ok` of the value returned.
///
/// Works for any signed return type (`c_int`, `ssize_t`, `c_long`). The
/// thread's `errno` is read right after the call, before anything else can
/// change it.
///
/// ```
/// // SAFETY: getpid has no preconditions.
/// let pid = tg_sys::syscall!(unsafe { libc::getpid() }).unwrap();
/// assert!(pid > 0);
/// // SAFETY: closing an fd that cannot be open touches nothing of ours.
/// let err = tg_sys::syscall!(unsafe { libc::close(-1) }).unwrap_err();
/// assert_eq!(err.raw_os_error(), Some(libc::EBADF));
/// ```
#[macro_export]
macro_rules! syscall {
    ($call:expr) => {{
        let ret = $call;
        if ret < 0 {
            ::std::result::Result::Err(::std::io::Error::last_os_error())
        } else {
            ::std::result::Result::Ok(ret)
        }
    }};
}

/// A pointer from a call that returns `NULL` and sets `errno` on failure
/// (`ibv_create_cq`, `ibv_create_qp`, `ibv_alloc_pd`, `ibv_reg_mr`,
/// `ibv_open_device`, `ibv_get_device_list`).
///
/// Call it directly on the call's result, so that nothing runs between the
/// call and the read of `errno`.
///
/// # Errors
/// `io::Error::last_os_error()` for `NULL`.
pub fn non_null<T>(ptr: *mut T) -> io::Result<NonNull<T>> {
    NonNull::new(ptr).ok_or_else(io::Error::last_os_error)
}

/// The address `mmap` returned, or its `errno` for `MAP_FAILED`.
///
/// # Errors
/// `io::Error::last_os_error()` for `MAP_FAILED`.
pub fn mapped(addr: *mut libc::c_void) -> io::Result<*mut libc::c_void> {
    if addr == libc::MAP_FAILED {
        Err(io::Error::last_os_error())
    } else {
        Ok(addr)
    }
}

/// The result of a call that returns 0 on success and the errno itself on
/// failure, without setting `errno` (libibverbs' `ibv_post_send`,
/// `ibv_post_recv`, `ibv_modify_qp`, `ibv_query_device`, `ibv_query_port`).
/// A negative value is taken as a negated errno: some providers return
/// `-EINVAL` where the manual says `EINVAL`.
///
/// # Errors
/// `io::Error::from_raw_os_error` of the code for any non-zero `rc`.
pub fn errno_result(rc: libc::c_int) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(errno_error(rc.unsigned_abs().into()))
    }
}

/// A count from a call that returns it (0 or more) on success and a negated
/// errno on failure (`ibv_poll_cq`, `_ibv_query_gid_table`).
///
/// # Errors
/// `io::Error::from_raw_os_error(-ret)` for a negative `ret`; `EOVERFLOW`
/// for a count that does not fit a `usize`.
pub fn count<T: TryInto<i64>>(ret: T) -> io::Result<usize> {
    let ret: i64 = ret
        .try_into()
        .map_err(|_| io::Error::from_raw_os_error(libc::EOVERFLOW))?;
    if ret < 0 {
        return Err(errno_error(ret.unsigned_abs()));
    }
    usize::try_from(ret).map_err(|_| io::Error::from_raw_os_error(libc::EOVERFLOW))
}

/// Whether `err` says the kernel or the RDMA provider does not support the
/// operation (`EOPNOTSUPP`, which is also `ENOTSUP` on Linux).
#[must_use]
pub fn is_unsupported(err: &io::Error) -> bool {
    err.raw_os_error() == Some(libc::EOPNOTSUPP)
}

/// An `io::Error` for errno `code` (a code past `i32::MAX`, which no errno
/// is, becomes `EIO` rather than a wrong code).
fn errno_error(code: u64) -> io::Error {
    io::Error::from_raw_os_error(i32::try_from(code).unwrap_or(libc::EIO))
}

#[cfg(test)]
#[allow(unsafe_code)]
mod tests {
    use super::*;

    #[test]
    fn a_negative_return_is_the_threads_errno() {
        // SAFETY: closing an fd that cannot be open touches nothing of ours.
        let err = syscall!(unsafe { libc::close(-1) }).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EBADF));
        // SAFETY: getpid has no preconditions.
        let pid = syscall!(unsafe { libc::getpid() }).unwrap();
        assert!(pid > 0);
    }

    #[test]
    fn a_wide_return_type_is_checked_too() {
        // SAFETY: a NULL buffer of length 0 to an fd that cannot be open.
        let err = syscall!(unsafe { libc::read(-1, std::ptr::null_mut(), 0) }).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EBADF));
    }

    #[test]
    fn a_returned_errno_is_the_error_whatever_its_sign() {
        assert!(errno_result(0).is_ok());
        let pos = errno_result(libc::EINVAL).unwrap_err();
        assert_eq!(pos.raw_os_error(), Some(libc::EINVAL));
        let neg = errno_result(-libc::ENOMEM).unwrap_err();
        assert_eq!(neg.raw_os_error(), Some(libc::ENOMEM));
        assert!(errno_result(i32::MIN).is_err());
    }

    #[test]
    fn a_count_or_a_negated_errno() {
        assert_eq!(count(3i32).unwrap(), 3);
        assert_eq!(count(0isize).unwrap(), 0);
        let err = count(-libc::EAGAIN).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EAGAIN));
        assert!(count(i64::MIN).is_err());
    }

    #[test]
    fn null_and_map_failed_read_errno() {
        // SAFETY: errno is the calling thread's own variable.
        unsafe { *libc::__errno_location() = libc::ENOMEM };
        let err = non_null(std::ptr::null_mut::<u8>()).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOMEM));
        let mut x = 0u8;
        assert!(non_null(&raw mut x).is_ok());

        // SAFETY: as above.
        unsafe { *libc::__errno_location() = libc::ENODEV };
        let err = mapped(libc::MAP_FAILED).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENODEV));
    }

    #[test]
    fn eopnotsupp_is_unsupported_and_nothing_else_is() {
        assert!(is_unsupported(&io::Error::from_raw_os_error(
            libc::EOPNOTSUPP
        )));
        assert!(is_unsupported(&io::Error::from_raw_os_error(libc::ENOTSUP)));
        assert!(!is_unsupported(&io::Error::from_raw_os_error(libc::EINVAL)));
        assert!(!is_unsupported(&io::Error::other("not an errno")));
    }
}
