//! The replica's epoch file: the highest writer epoch admitted, whether the
//! stream is sealed at it, and the log UUID the region mirrors. Written
//! atomically (temporary file, fsync, rename, fsync of the folder) before a
//! newer writer gets an rkey, so a restarted replica never admits an epoch it
//! has fenced.
//!
//! Format: UTF-8 lines `key=value`: `epoch`, `sealed` (`true`/`false`),
//! `uuid` (32 hex digits, absent before the first admission).

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::hex;

/// What the epoch file records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EpochState {
    /// Highest epoch admitted (0: none yet).
    pub epoch: u64,
    /// Whether the stream is sealed at `epoch`.
    pub sealed: bool,
    /// The log the region mirrors (None until the first admission).
    pub uuid: Option<[u8; 16]>,
}

/// Why the epoch file could not be read or written.
#[derive(Debug)]
#[non_exhaustive]
pub enum EpochFileError {
    /// Reading or writing failed.
    Io {
        /// The file.
        path: PathBuf,
        /// The step.
        op: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// A line is not what this module writes.
    Malformed {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

impl fmt::Display for EpochFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EpochFileError::Io { path, op, source } => {
                write!(f, "epoch file {}: {op} failed: {source}", path.display())
            }
            EpochFileError::Malformed { path, line, reason } => write!(
                f,
                "epoch file {}:{line}: {reason}; it is written only by tg-replica: restore it \
                 from a backup, or remove it only if this replica's region is wiped too",
                path.display()
            ),
        }
    }
}

impl std::error::Error for EpochFileError {}

/// Loads the epoch file; a missing file is the initial state.
///
/// # Errors
/// [`EpochFileError`] for I/O or a malformed file (never silently reset:
/// that would re-admit fenced writers).
pub fn load(path: &Path) -> Result<EpochState, EpochFileError> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(EpochState::default()),
        Err(source) => {
            return Err(EpochFileError::Io {
                path: path.to_owned(),
                op: "read",
                source,
            })
        }
    };
    let mut st = EpochState::default();
    let mut seen_epoch = false;
    for (i, line) in text.lines().enumerate() {
        let bad = |reason: String| EpochFileError::Malformed {
            path: path.to_owned(),
            line: i + 1,
            reason,
        };
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .ok_or_else(|| bad(format!("expected key=value, got {line:?}")))?;
        match k {
            "epoch" => {
                st.epoch = v
                    .parse()
                    .map_err(|_| bad(format!("epoch must be a number, got {v:?}")))?;
                seen_epoch = true;
            }
            "sealed" => {
                st.sealed = v
                    .parse()
                    .map_err(|_| bad(format!("sealed must be true or false, got {v:?}")))?
            }
            "uuid" => {
                st.uuid = Some(
                    hex::decode_16(v)
                        .ok_or_else(|| bad(format!("uuid must be 32 hex digits, got {v:?}")))?,
                )
            }
            _ => return Err(bad(format!("unknown key {k:?}"))),
        }
    }
    if !seen_epoch {
        return Err(EpochFileError::Malformed {
            path: path.to_owned(),
            line: 0,
            reason: "no epoch line".into(),
        });
    }
    Ok(st)
}

/// Writes the epoch file atomically and durably.
///
/// # Errors
/// [`EpochFileError::Io`] naming the step.
pub fn store(path: &Path, st: &EpochState) -> Result<(), EpochFileError> {
    let io = |op| {
        move |source| EpochFileError::Io {
            path: path.to_owned(),
            op,
            source,
        }
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(io("create folder"))?;
    let tmp = path.with_extension("tmp");
    let mut text = format!("epoch={}\nsealed={}\n", st.epoch, st.sealed);
    if let Some(u) = st.uuid {
        text.push_str(&format!("uuid={}\n", hex::encode(&u)));
    }
    let mut f = fs::File::create(&tmp).map_err(io("create"))?;
    f.write_all(text.as_bytes()).map_err(io("write"))?;
    f.sync_all().map_err(io("fsync"))?;
    fs::rename(&tmp, path).map_err(io("rename"))?;
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("fsync folder"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_missing_file() {
        let dir = std::env::temp_dir().join(format!("tg-epoch-{}", std::process::id()));
        let p = dir.join("epoch");
        let _ = fs::remove_dir_all(&dir);
        assert_eq!(load(&p).unwrap(), EpochState::default());
        let st = EpochState {
            epoch: 7,
            sealed: true,
            uuid: Some([0xab; 16]),
        };
        store(&p, &st).unwrap();
        assert_eq!(load(&p).unwrap(), st);
        fs::write(&p, "epoch=3\nsealed=maybe\n").unwrap();
        let e = load(&p).unwrap_err().to_string();
        assert!(e.contains(":2:") && e.contains("sealed"), "{e}");
        fs::write(&p, "sealed=false\n").unwrap();
        assert!(load(&p).unwrap_err().to_string().contains("no epoch line"));
        fs::write(&p, "epoch=1\nuuid=zz\n").unwrap();
        assert!(load(&p).unwrap_err().to_string().contains("32 hex digits"));
        let _ = fs::remove_dir_all(&dir);
    }
}
