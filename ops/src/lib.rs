//! What every tailguard binary shares for the person running it: one
//! logging setup ([`logging`]), so `tg-replica`, `tg-closure` and
//! `tg-bench` take the same flags, read the same variables and write the
//! same lines.

pub mod logging;
