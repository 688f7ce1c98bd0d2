//! Reliable-connected queue pairs: creation, connection (RESET → INIT →
//! RTR → RTS), and posting linked lists of RDMA operations with one doorbell.
//!
//! - [`config`]: the parameters ([`QpConfig`], [`Mtu`]) and their defaults.
//! - [`prepared`]: a [`PreparedQp`] (RESET) and its [`QpEndpoint`]; only
//!   [`PreparedQp::connect`] makes a [`QueuePair`].
//! - [`connected`]: the [`QueuePair`]: its state, and running a posted list
//!   to completion (`execute`, `reap`, `abort`, `set_error`).
//! - [`post`]: the operations of a list ([`Op`]) and posting them.
//! - [`recv`]: two-sided receives (`enable_recv`, `recv`).

mod config;
mod connected;
mod post;
mod prepared;
mod recv;

pub use config::{Mtu, QpConfig};
pub use connected::QueuePair;
pub use post::{Op, MAX_OPS_PER_POST};
pub use prepared::{PreparedQp, QpEndpoint};

/// Completions polled per `ibv_poll_cq` call.
const POLL_BATCH: usize = 16;
