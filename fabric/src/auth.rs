//! Pre-shared keys, HMAC-SHA256 and nonces for the control-channel handshake.
//!
//! A writer proves it holds the key its name is paired with on the replica's
//! allow-list by a MAC over the replica's fresh nonce (challenge-response);
//! the key itself never crosses the wire. Keys are kept out of logs: their
//! `Debug` output is redacted.
#![forbid(unsafe_code)]

use std::fmt;
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::wire::{WriterName, MAC_LEN, NONCE_LEN};

type HmacSha256 = Hmac<Sha256>;

/// Shortest key accepted, in bytes (the HMAC-SHA256 output size: shorter keys
/// would make the key, not the hash, the weakest link).
pub const MIN_KEY_LEN: usize = 32;
/// Largest key file read, in bytes (a key file is a few dozen bytes; this
/// bounds the read if the path points at something else).
pub const MAX_KEY_FILE_LEN: u64 = 4096;

/// Why a key could not be loaded.
#[derive(Debug)]
#[non_exhaustive]
pub enum KeyError {
    /// The key file could not be opened or read.
    Read {
        /// The key file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The key file can be read or written by group or others.
    Permissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The key is shorter than [`MIN_KEY_LEN`].
    TooShort {
        /// The key file, if the key came from one.
        path: Option<PathBuf>,
        /// Key length in bytes (after hex decoding).
        len: usize,
        /// Minimum length.
        min: usize,
    },
    /// The key file is larger than [`MAX_KEY_FILE_LEN`].
    TooLong {
        /// The key file.
        path: PathBuf,
        /// Its size in bytes.
        len: u64,
    },
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::Read { path, source } => {
                write!(f, "cannot read key file {}: {source}", path.display())
            }
            KeyError::Permissions { path, mode } => write!(
                f,
                "key file {} has mode {:03o}, readable or writable by group or others: \
                 run `chmod 600 {}`",
                path.display(),
                mode & 0o777,
                path.display()
            ),
            KeyError::TooShort { path, len, min } => {
                if let Some(p) = path {
                    write!(f, "key in {} is {len} bytes, ", p.display())?;
                } else {
                    write!(f, "key is {len} bytes, ")?;
                }
                write!(
                    f,
                    "at least {min} are needed: generate one with \
                     `tg-replica keygen FILE`"
                )
            }
            KeyError::TooLong { path, len } => write!(
                f,
                "key file {} is {len} bytes, more than the {MAX_KEY_FILE_LEN} a key file may be: \
                 is this the right path?",
                path.display()
            ),
        }
    }
}

impl std::error::Error for KeyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            KeyError::Read { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// A pre-shared key of at least [`MIN_KEY_LEN`] bytes. `Debug` prints
/// `PreSharedKey(<redacted, N bytes>)`.
#[derive(Clone)]
pub struct PreSharedKey(Box<[u8]>);

impl fmt::Debug for PreSharedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PreSharedKey(<redacted, {} bytes>)", self.0.len())
    }
}

impl PreSharedKey {
    /// A key from raw bytes.
    pub fn from_bytes(bytes: impl Into<Vec<u8>>) -> Result<Self, KeyError> {
        let bytes = bytes.into();
        if bytes.len() < MIN_KEY_LEN {
            return Err(KeyError::TooShort {
                path: None,
                len: bytes.len(),
                min: MIN_KEY_LEN,
            });
        }
        Ok(PreSharedKey(bytes.into_boxed_slice()))
    }

    /// Loads a key file.
    ///
    /// The file must not be accessible by group or others (`mode & 0o077 ==
    /// 0`), like an ssh private key. Its content is hex if, after trimming
    /// ASCII whitespace, it is a non-empty even number of hex digits (as
    /// `xxd -p` writes); otherwise the raw bytes are the key. Either way the
    /// key must be at least [`MIN_KEY_LEN`] bytes.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, KeyError> {
        let path = path.as_ref();
        let read_err = |source| KeyError::Read {
            path: path.to_owned(),
            source,
        };
        let file = fs::File::open(path).map_err(read_err)?;
        let meta = file.metadata().map_err(read_err)?;
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(KeyError::Permissions {
                path: path.to_owned(),
                mode,
            });
        }
        if meta.len() > MAX_KEY_FILE_LEN {
            return Err(KeyError::TooLong {
                path: path.to_owned(),
                len: meta.len(),
            });
        }
        let mut content = Vec::with_capacity(meta.len() as usize);
        // Bounded read: the file may grow after the metadata check.
        file.take(MAX_KEY_FILE_LEN + 1)
            .read_to_end(&mut content)
            .map_err(read_err)?;
        if content.len() as u64 > MAX_KEY_FILE_LEN {
            return Err(KeyError::TooLong {
                path: path.to_owned(),
                len: content.len() as u64,
            });
        }
        let key = decode_hex(content.trim_ascii()).unwrap_or(content);
        if key.len() < MIN_KEY_LEN {
            return Err(KeyError::TooShort {
                path: Some(path.to_owned()),
                len: key.len(),
                min: MIN_KEY_LEN,
            });
        }
        Ok(PreSharedKey(key.into_boxed_slice()))
    }

    /// A new random key of [`MIN_KEY_LEN`] bytes from the kernel's CSPRNG
    /// (`/dev/urandom`, which never blocks once the system has booted).
    ///
    /// # Errors
    /// Opening or reading `/dev/urandom`.
    pub fn generate() -> io::Result<Self> {
        let mut key = vec![0u8; MIN_KEY_LEN];
        fs::File::open("/dev/urandom")?.read_exact(&mut key)?;
        Ok(PreSharedKey(key.into_boxed_slice()))
    }

    /// Writes the key to a new file at `path` as one line of hex (the form
    /// [`PreSharedKey::load`] reads), mode 0600 from its creation, and
    /// syncs it. Never replaces a file: a key in use would silently lock
    /// out every peer holding it.
    ///
    /// # Errors
    /// [`io::ErrorKind::AlreadyExists`] if `path` exists; the OS error
    /// otherwise (a file created before a failed write is removed).
    pub fn write_new(&self, path: impl AsRef<Path>) -> io::Result<()> {
        use std::fmt::Write as _;
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let path = path.as_ref();
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        let mut text = String::with_capacity(self.0.len() * 2 + 1);
        for b in &self.0 {
            // Writing into a String cannot fail.
            let _ = write!(text, "{b:02x}");
        }
        text.push('\n');
        let written = file
            .write_all(text.as_bytes())
            .and_then(|()| file.sync_all());
        if written.is_err() {
            let _ = fs::remove_file(path);
        }
        written
    }

    /// HMAC-SHA256 over the concatenation of `parts`.
    pub fn mac(&self, parts: &[&[u8]]) -> [u8; MAC_LEN] {
        let mut m = self.hmac();
        for p in parts {
            m.update(p);
        }
        m.finalize().into_bytes().into()
    }

    /// Whether `tag` is the HMAC-SHA256 of the concatenation of `parts`,
    /// compared in constant time.
    pub fn verify(&self, parts: &[&[u8]], tag: &[u8]) -> bool {
        let mut m = self.hmac();
        for p in parts {
            m.update(p);
        }
        m.verify_slice(tag).is_ok()
    }

    fn hmac(&self) -> HmacSha256 {
        // HMAC accepts keys of any length; the error type exists only for
        // fixed-key-size MACs.
        <HmacSha256 as Mac>::new_from_slice(&self.0).expect("HMAC takes keys of any length")
    }
}

fn decode_hex(s: &[u8]) -> Option<Vec<u8>> {
    if s.is_empty() || !s.len().is_multiple_of(2) {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    s.chunks_exact(2)
        .map(|p| Some(nibble(p[0])? << 4 | nibble(p[1])?))
        .collect()
}

/// 32 bytes from the kernel's CSPRNG (`/dev/urandom`), for handshake nonces.
pub fn random_nonce() -> io::Result<[u8; NONCE_LEN]> {
    let mut n = [0u8; NONCE_LEN];
    fs::File::open("/dev/urandom")?.read_exact(&mut n)?;
    Ok(n)
}

/// One allow-list entry: a writer and the file of the key it shares with
/// this replica (an entry of the replica config's `allow` list, read by
/// `replica::config`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct AllowedWriter {
    /// The writer's name (its `name` setting). Required.
    pub name: String,
    /// The key shared with that writer. Required; relative to the config
    /// file's directory.
    pub key_file: PathBuf,
}

/// The replica's admission list: each writer name with its key.
#[derive(Debug, Clone, Default)]
pub struct AllowList {
    entries: Vec<(WriterName, PreSharedKey)>,
}

impl AllowList {
    /// An empty list (admits no one).
    pub fn new() -> Self {
        AllowList::default()
    }

    /// Loads every writer's key file from the replica config's `allow` list.
    pub fn load(entries: &[AllowedWriter]) -> Result<Self, AllowListError> {
        let mut list = AllowList::new();
        for e in entries {
            let writer =
                WriterName::new(e.name.clone()).map_err(|reason| AllowListError::InvalidName {
                    name: e.name.clone(),
                    reason,
                })?;
            let key = PreSharedKey::load(&e.key_file).map_err(|source| AllowListError::Key {
                writer: e.name.clone(),
                source,
            })?;
            list.insert(writer, key);
        }
        Ok(list)
    }

    /// Adds (or replaces) a writer's key.
    pub fn insert(&mut self, writer: WriterName, key: PreSharedKey) {
        match self.entries.iter_mut().find(|(w, _)| *w == writer) {
            Some(e) => e.1 = key,
            None => self.entries.push((writer, key)),
        }
    }

    /// The key of an allowed writer.
    pub fn key(&self, writer: &WriterName) -> Option<&PreSharedKey> {
        self.entries
            .iter()
            .find(|(w, _)| w == writer)
            .map(|(_, k)| k)
    }

    /// Number of writers on the list.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the list admits no one.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Why an allow-list could not be loaded.
#[derive(Debug)]
#[non_exhaustive]
pub enum AllowListError {
    /// An entry's name is not a valid writer name.
    InvalidName {
        /// The name.
        name: String,
        /// Why.
        reason: String,
    },
    /// An entry's key file could not be loaded.
    Key {
        /// The writer the key belongs to.
        writer: String,
        /// Why.
        source: KeyError,
    },
}

impl fmt::Display for AllowListError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AllowListError::InvalidName { name, reason } => {
                write!(f, "allow-list writer name {name:?}: {reason}")
            }
            AllowListError::Key { writer, source } => {
                write!(f, "allow-list key of writer {writer:?}: {source}")
            }
        }
    }
}

impl std::error::Error for AllowListError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AllowListError::Key { source, .. } => Some(source),
            AllowListError::InvalidName { .. } => None,
        }
    }
}
