//! tailguard's RDMA layer: verbs resources behind safe types, the control
//! channel, and the mirror that ships log ranges with RDMA WRITE + READ flush.
#![warn(missing_docs)]

pub mod gpspm;
pub mod mirror;
pub mod verbs;
