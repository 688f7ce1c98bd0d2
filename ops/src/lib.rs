//! What every tailguard binary shares for the person running it: one
//! logging setup ([`logging`]), so `tg-replica`, `tg-closure` and
//! `tg-bench` take the same flags, read the same variables and write the
//! same lines; the signals a daemon answers ([`signals`]); and what it
//! tells systemd ([`systemd`]).

pub mod logging;
pub mod metrics;
pub mod signals;
pub mod systemd;
