//! Typed errors, one enum per operation. Each carries the context a person
//! needs (path, offset, LSN, expected/got) and its message says what to do.

mod append;
mod epoch;
mod head;
mod layout;
mod open;
mod persist;
mod region;
mod replay;
mod scan;

pub use append::AppendError;
pub use epoch::{EpochError, SealError};
pub use head::HeadError;
pub use layout::LayoutError;
pub use open::OpenError;
pub use persist::PersistError;
pub use region::RegionError;
pub use replay::{CommitError, ReplayError};
pub use scan::{RecordFault, ScanError};
