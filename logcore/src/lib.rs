//! The persistent-memory update log: regions, persistence, layout, recovery, replay.
//! Not built yet (issue #3).
#![warn(missing_docs)]
