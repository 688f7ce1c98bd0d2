//! tailguard's RDMA layer: verbs resources behind safe types, the control
//! channel, and the mirror that ships log ranges with RDMA WRITE + READ flush.
//!
//! - [`verbs`]: device, PD, CQ, RC QP, MR (all FFI and all `unsafe` live
//!   here: the crate denies `unsafe_code` everywhere else).
//! - [`wire`], [`auth`]: the control channel (handshake, admission, status).
//! - [`config`]: YAML configuration and its validation.
//! - [`mirror`], [`gpspm`]: shipping ring ranges to one replica durably.
//! - [`replicated`]: [`replicated::ReplicatedLog`], a `logcore` log joined
//!   to its replicas under a commit policy.
#![warn(missing_docs)]
#![deny(unsafe_code)]

pub mod auth;
pub mod config;
pub mod gpspm;
#[allow(unsafe_code)] // TODO(lead): removed by the safe post API
pub mod mirror;
pub mod replicated;
pub mod settings;
#[allow(unsafe_code)] // The FFI owner: every unsafe block of the crate.
pub mod verbs;
pub mod wire;
