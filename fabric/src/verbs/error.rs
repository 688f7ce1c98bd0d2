//! Errors of the verbs layer: each names the device, queue pair or buffer
//! involved and, where a person can act, what to do.

use std::fmt;
use std::io;

/// An error from the verbs layer.
#[derive(Debug)]
#[non_exhaustive]
pub enum VerbsError {
    /// The kernel has no RDMA support (libibverbs reported `ENOSYS`), or
    /// there is no device at all.
    NoRdma {
        /// What libibverbs said, if it said anything.
        source: Option<io::Error>,
    },
    /// No device of that name (or on that netdev).
    DeviceNotFound {
        /// The name asked for.
        wanted: String,
        /// The devices that exist.
        available: Vec<String>,
    },
    /// The port is not ACTIVE (or ARMED).
    PortNotActive {
        /// Device name.
        device: String,
        /// Port number.
        port: u8,
        /// The state libibverbs reported (`ibv_port_state`).
        state: u32,
    },
    /// No usable GID (RoCE needs one; RoCE v2 wants an IPv4-mapped one).
    NoGid {
        /// Device name.
        device: String,
        /// Port number.
        port: u8,
        /// What was looked for.
        wanted: String,
    },
    /// A verb failed.
    Verb {
        /// The verb (`ibv_reg_mr`, `ibv_modify_qp(RTR)`, ...).
        op: &'static str,
        /// Device name.
        device: String,
        /// The OS error it returned.
        source: io::Error,
    },
    /// The device (or its rdma-core provider, or the kernel) does not
    /// support a verb or an attribute asked for: the verb returned
    /// `EOPNOTSUPP`.
    Unsupported {
        /// The verb (`ibv_query_gid_table`, `ibv_reg_mr`, ...).
        op: &'static str,
        /// Device name.
        device: String,
        /// The OS error it returned.
        source: io::Error,
    },
    /// A work request completed with an error status.
    Completion {
        /// Device name.
        device: String,
        /// Local queue pair number.
        qpn: u32,
        /// Index of the failed operation in the posted list.
        op_index: usize,
        /// `ibv_wc_status` value.
        status: u32,
        /// `ibv_wc_status_str` of it.
        status_str: String,
        /// Vendor error syndrome.
        vendor_err: u32,
    },
    /// No completion arrived in time; the queue pair was moved to the error
    /// state and must be replaced.
    Timeout {
        /// Device name.
        device: String,
        /// Local queue pair number.
        qpn: u32,
        /// How long we waited, in milliseconds.
        waited_ms: u64,
    },
    /// The queue pair is in the error state after an earlier failure.
    QpBroken {
        /// Device name.
        device: String,
        /// Local queue pair number.
        qpn: u32,
    },
    /// A slice reaches outside its memory region.
    OutOfBounds {
        /// What was sliced (`local MR`, `remote region`).
        what: &'static str,
        /// Requested offset.
        offset: u64,
        /// Requested length.
        len: u64,
        /// Length of the region.
        region_len: u64,
    },
    /// A request the verbs layer refuses (too many operations, a READ into
    /// memory registered without local write, an empty slice...).
    InvalidRequest {
        /// What is wrong.
        reason: String,
    },
}

impl VerbsError {
    /// The error of verb `op` on `device`: [`VerbsError::Unsupported`] when
    /// it says the operation is not supported, [`VerbsError::Verb`]
    /// otherwise.
    pub(crate) fn verb(op: &'static str, device: &str, source: io::Error) -> Self {
        let device = device.to_owned();
        if tg_sys::is_unsupported(&source) {
            VerbsError::Unsupported { op, device, source }
        } else {
            VerbsError::Verb { op, device, source }
        }
    }
}

const RXE_HINT: &str = "load rdma_rxe and run `rdma link add rxe0 type rxe netdev IFACE` \
     (ci/rxe-up IFACE does it), or run inside ci/rxe-vm";

impl fmt::Display for VerbsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerbsError::NoRdma { source: Some(e) } => {
                write!(f, "no RDMA support on this machine ({e}): {RXE_HINT}")
            }
            VerbsError::NoRdma { source: None } => {
                write!(f, "no RDMA device found: {RXE_HINT}")
            }
            VerbsError::DeviceNotFound { wanted, available } => write!(
                f,
                "RDMA device '{wanted}' not found (devices here: {}); \
                 check the `device` setting or `rdma link show`",
                if available.is_empty() {
                    "none".to_owned()
                } else {
                    available.join(", ")
                }
            ),
            VerbsError::PortNotActive {
                device,
                port,
                state,
            } => write!(
                f,
                "{device} port {port} is not active (state {state}); \
                 check the link (`ibv_devinfo -d {device}`, `ip link`)"
            ),
            VerbsError::NoGid {
                device,
                port,
                wanted,
            } => write!(
                f,
                "{device} port {port} has no {wanted} GID: give the netdev an IPv4 \
                 address, or set `gid-index` (see `show_gids`)"
            ),
            VerbsError::Verb { op, device, source } => {
                write!(f, "{op} failed on {device}: {source}")
            }
            VerbsError::Unsupported { op, device, source } => write!(
                f,
                "{op} is not supported by {device} ({source}): use a device whose \
                 provider supports it, or update rdma-core and the kernel"
            ),
            VerbsError::Completion {
                device,
                qpn,
                op_index,
                status,
                status_str,
                vendor_err,
            } => write!(
                f,
                "work request {op_index} on {device} QP {qpn:#x} failed: {status_str} \
                 (status {status}, vendor error {vendor_err:#x})"
            ),
            VerbsError::Timeout {
                device,
                qpn,
                waited_ms,
            } => write!(
                f,
                "no completion on {device} QP {qpn:#x} within {waited_ms} ms: \
                 the peer is unreachable or stalled; the QP was moved to error"
            ),
            VerbsError::QpBroken { device, qpn } => write!(
                f,
                "{device} QP {qpn:#x} is in the error state after an earlier failure; \
                 reconnect to get a new queue pair"
            ),
            VerbsError::OutOfBounds {
                what,
                offset,
                len,
                region_len,
            } => write!(
                f,
                "{what} slice [{offset}, {offset}+{len}) is outside the region of {region_len} bytes"
            ),
            VerbsError::InvalidRequest { reason } => write!(f, "invalid verbs request: {reason}"),
        }
    }
}

impl std::error::Error for VerbsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            VerbsError::NoRdma { source: Some(e) }
            | VerbsError::Verb { source: e, .. }
            | VerbsError::Unsupported { source: e, .. } => Some(e),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eopnotsupp_is_a_typed_unsupported_error_that_says_what_to_do() {
        let e = VerbsError::verb(
            "ibv_query_gid_table",
            "rxe0",
            io::Error::from_raw_os_error(libc::EOPNOTSUPP),
        );
        assert!(matches!(
            e,
            VerbsError::Unsupported {
                op: "ibv_query_gid_table",
                ..
            }
        ));
        let msg = e.to_string();
        assert!(msg.contains("not supported by rxe0"), "{msg}");
        assert!(msg.contains("update rdma-core"), "{msg}");
    }

    #[test]
    fn other_errnos_stay_plain_verb_errors() {
        let e = VerbsError::verb(
            "ibv_reg_mr",
            "rxe0",
            io::Error::from_raw_os_error(libc::EFAULT),
        );
        assert!(matches!(
            e,
            VerbsError::Verb {
                op: "ibv_reg_mr",
                ..
            }
        ));
    }
}
