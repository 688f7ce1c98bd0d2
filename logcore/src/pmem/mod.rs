//! Persistent-memory regions and the persistence primitives.
//!
//! This module and its children hold all of the crate's `unsafe` code: the
//! `mmap`/`msync`/`munmap` calls, the cache-line flush instructions, and the
//! raw accesses to the mapping. Everything above it (layout, scan, log) works
//! through the safe methods of [`Region`].

mod flush;
mod region;
mod sys;

pub(crate) use sys::pid_alive;

pub use flush::{flush_method, FlushMethod};
pub use region::{Access, Persistence, Region, RegionKind};
