//! The closure daemon's errors: each names what failed (path, replica,
//! pid) and says what to do.

use std::fmt;
use std::path::PathBuf;

use fabric::config::ConfigError;
use fabric::replicated::ReplicaError;
use fabric::settings::SettingsError;
use fabric::verbs::VerbsError;

/// Why the closure could not arm or could not complete a takeover.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClosureError {
    /// The config file is unreadable or invalid.
    Config(ConfigError),
    /// The config has no `closure:` section.
    NoClosureSection {
        /// The config file.
        path: PathBuf,
    },
    /// A setting could not be turned into runtime options (device, key).
    Settings(SettingsError),
    /// The host's log could not be mapped.
    Region {
        /// The log.
        path: PathBuf,
        /// Why.
        source: logcore::RegionError,
    },
    /// The host's log has no valid superblock or control block.
    Layout {
        /// The log.
        path: PathBuf,
        /// Why.
        source: logcore::LayoutError,
    },
    /// No running host appeared on the log within the bound.
    NoHost {
        /// The log.
        path: PathBuf,
        /// How long we waited.
        waited_ms: u64,
        /// The state the control block showed last.
        state: &'static str,
    },
    /// A stop (SIGTERM) was asked for while waiting for a host to arm on:
    /// not a failure.
    Stopped,
    /// A pidfd for the host could not be opened.
    Pidfd {
        /// The host pid.
        pid: u32,
        /// Why.
        source: std::io::Error,
    },
    /// Polling the pidfd failed.
    Poll(std::io::Error),
    /// The device could not be opened or the log registered.
    Verbs(VerbsError),
    /// A replica could not be connected at start.
    Connect(ReplicaError),
    /// Taking over the log (recovery scan) failed.
    TakeOver {
        /// The log.
        path: PathBuf,
        /// Why.
        source: logcore::OpenError,
    },
    /// The seal record could not be written locally.
    Seal(logcore::SealError),
    /// A replica holds more of the log than the local log: shipping would
    /// not make them equal.
    Diverged {
        /// Replica.
        replica: String,
        /// Its durable tail.
        replica_durable: u64,
        /// The local tail after recovery.
        local_tail: u64,
    },
    /// A replica did not confirm the seal.
    /// Fewer replicas than the host's commit policy needs took a step of
    /// the takeover (the others are named with why).
    TooFewReplicas {
        /// The step: `ship the tail`, `ship the seal record` or `seal`.
        step: &'static str,
        /// How many it needs (`commit.acks` under `sync`, all under
        /// `async`).
        needed: usize,
        /// How many took it.
        reached: usize,
        /// Each replica that did not, and why.
        missed: Vec<(String, String)>,
    },
    /// The restart command could not be started.
    Restart {
        /// The program.
        program: String,
        /// Why.
        source: std::io::Error,
    },
}

impl fmt::Display for ClosureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config(e) => write!(f, "{e}"),
            Self::NoClosureSection { path } => write!(
                f,
                "{}: no `closure:` section; add one with the closure's name, key-file and cores \
                 (see configs/rxe-loopback.yaml)",
                path.display()
            ),
            Self::Settings(e) => write!(f, "{e}"),
            Self::Region { path, source } => {
                write!(f, "mapping the host's log {}: {source}", path.display())
            }
            Self::Layout { path, source } => write!(
                f,
                "the host's log {} is not a readable tailguard log: {source}; is log.path the host's log?",
                path.display()
            ),
            Self::NoHost { path, waited_ms, state } => write!(
                f,
                "no running host on {} after {waited_ms} ms (log state {state}); start the host first \
                 or raise --wait-host-ms",
                path.display()
            ),
            Self::Stopped => f.write_str("stopped (SIGTERM) while waiting for a host to arm on"),
            Self::Pidfd { pid, source } => write!(
                f,
                "pidfd_open({pid}): {source}; the closure needs Linux 5.3+ and the host in its pid namespace"
            ),
            Self::Poll(e) => write!(f, "polling the host's pidfd: {e}"),
            Self::Verbs(e) => write!(f, "{e}"),
            Self::Connect(e) => write!(f, "pre-establishing the mirror: {e}"),
            Self::TakeOver { path, source } => {
                write!(f, "taking over the log {}: {source}", path.display())
            }
            Self::Seal(e) => write!(f, "{e}"),
            Self::Diverged { replica, replica_durable, local_tail } => write!(
                f,
                "replica {replica} holds the log up to {replica_durable} but the local log ends at \
                 {local_tail}: the histories diverged; promote the replica instead of restarting the host"
            ),
            Self::TooFewReplicas {
                step,
                needed,
                reached,
                missed,
            } => {
                write!(
                    f,
                    "takeover could not {step} on enough replicas: {reached} of the {needed} the \
                     commit policy needs"
                )?;
                for (replica, why) in missed {
                    write!(f, "; replica {replica}: {why}")?;
                }
                f.write_str(
                    " (the stream is not sealed: check each replica's copy before promoting one)",
                )
            }
            Self::Restart { program, source } => write!(
                f,
                "running the restart command {program:?}: {source}; check closure.restart"
            ),
        }
    }
}

impl std::error::Error for ClosureError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Config(e) => Some(e),
            Self::Settings(e) => Some(e),
            Self::Region { source, .. } => Some(source),
            Self::Layout { source, .. } => Some(source),
            Self::Pidfd { source, .. } | Self::Poll(source) | Self::Restart { source, .. } => {
                Some(source)
            }
            Self::Verbs(e) => Some(e),
            Self::Connect(e) => Some(e),
            Self::TakeOver { source, .. } => Some(source),
            Self::Seal(e) => Some(e),
            _ => None,
        }
    }
}
