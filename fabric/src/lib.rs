//! tailguard's RDMA layer: verbs resources behind safe types, the control
//! channel, and the mirror that ships log ranges with RDMA WRITE + READ flush.
#![warn(missing_docs)]

pub mod auth;
pub mod config;
pub mod verbs;
pub mod wire;
