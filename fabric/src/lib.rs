//! tailguard's RDMA layer: verbs resources behind safe types, the control
//! channel, and the mirror that ships log ranges with RDMA WRITE + READ flush.
//!
//! - [`verbs`]: device, PD, CQ, RC QP, MR (all FFI and all `unsafe` live
//!   here: the crate denies `unsafe_code` everywhere else).
//! - [`wire`], [`auth`]: the control channel (handshake, admission, status).
//! - [`config`]: YAML configuration and its validation.
//! - [`mirror`]: shipping ring ranges to one replica durably.
//! - [`gpspm`]: the `gpspm` persist request/reply, both sides (the replica's
//!   responder included).
//! - [`transport`]: the seam under the protocol (data path, control
//!   session, clock) and its production instance on verbs and TCP.
//! - [`replicated`]: [`replicated::ReplicatedLog`], a `logcore` log joined
//!   to its replicas under a commit policy.
#![warn(missing_docs)]
#![deny(unsafe_code)]

pub mod auth;
pub mod config;
pub mod gpspm;
mod layout;
pub mod mirror;
pub mod replicated;
pub mod settings;
pub mod transport;
#[allow(unsafe_code)] // The FFI owner: every unsafe block of the crate.
pub mod verbs;
pub mod wire;
