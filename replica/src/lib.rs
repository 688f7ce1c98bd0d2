//! `tg-replica`: the replica daemon.
//!
//! It holds a pmem region that mirrors a writer's log ring byte for byte,
//! registers it for RDMA, admits writers (allow-list, pre-shared-key proof,
//! epoch fencing), replays what they write into a state copy, and answers
//! status and seal requests on the control channel. Its CPU is not on the
//! data path in `apm` mode; in `gpspm` mode it persists ranges on request.
//!
//! - [`config`]: the `replica:` section of the config file and its checks.
//! - [`server`]: region check at start, admission, fencing, sessions, seal,
//!   the `gpspm` loop.
//! - [`settings`]: what `tg-replica serve` runs with, from the config.
//! - [`replay`]: scanning the mirror and applying it.
//! - [`fencing`]: who may write: the admission and seal rules, without I/O.
//! - [`epoch`]: the durable record of the highest admitted epoch.
//! - [`digest`]: the built-in state machine.
//! - [`hex`]: hex text of the log UUID.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
pub mod digest;
pub mod epoch;
pub mod fencing;
#[cfg(test)]
mod fixture;
pub mod hex;
pub mod replay;
pub mod server;
pub mod settings;
