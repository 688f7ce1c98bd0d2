//! `tg-closure`: the closure partition of tailguard. It runs beside the host
//! on reserved cores, holding its own registration of the host's log and its
//! own queue pairs to every replica. When the host dies (pidfd) or hangs
//! (heartbeat), it ships the rest of the log tail with those pre-established
//! resources, seals the epoch locally and on the replicas, and runs the
//! restart command.
//!
//! - [`config`]: the `closure:` section of the config file, its defaults
//!   and checks.
//! - [`options`]: that section and the writer's settings as runtime options.
//! - [`isolation`]: core pinning, memory locking, OOM protection.
//! - [`standby`]: the pre-established mapping, registration and mirrors.
//! - [`liveness`]: judging the host (pidfd, heartbeat, clean shutdown).
//! - [`takeover`]: the steps after a failure.
//! - [`daemon`]: the whole run, as `tg-closure run` does it.
#![warn(missing_docs)]
#![deny(unsafe_code)]

pub mod config;
pub mod daemon;
pub mod error;
pub mod isolation;
pub mod liveness;
pub mod metrics;
pub mod options;
pub mod standby;
pub mod status;
// The crate's only unsafe code: the system calls.
#[allow(unsafe_code)]
mod sys;
pub mod takeover;

pub use error::ClosureError;
