//! `gpspm` ("general purpose server persistency method"), both sides: after
//! its WRITEs the writer SENDs a [`PersistMsg`] request naming the log range
//! on the same queue pair; the replica's CPU makes that range persistent
//! (cache-line flush + fence on pmem) and SENDs back a reply with the same
//! range.
//!
//! - [`msg`]: the 24-byte SEND payload, byte by byte (also in
//!   `docs/control-channel.md`, "gpspm over RDMA SEND").
//! - [`responder`]: the replica side, [`GpspmResponder`].
//!
//! The writer side posts the request at the end of its WRITE list and reaps
//! the reply in [`crate::mirror`].

pub mod msg;
pub mod responder;

pub use msg::{PersistKind, PersistMsg, PersistMsgError, PERSIST_MSG_LEN, PERSIST_MSG_MAGIC};
pub use responder::GpspmResponder;
