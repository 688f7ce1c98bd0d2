//! What can be wrong with a config: each validation issue with its field
//! path, and why a file could not be loaded.

use std::fmt;
use std::io;
use std::path::PathBuf;

use super::MAX_CONFIG_FILE_LEN;

/// One problem found by [`Config::validate`](super::Config::validate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    /// The field's path, e.g. `replicas[1].control`.
    pub field: String,
    /// What is wrong, with the value found.
    pub message: String,
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Every problem [`Config::validate`](super::Config::validate) found
/// (never empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationErrors(pub Vec<ConfigIssue>);

impl ValidationErrors {
    /// Whether some issue is about `field`.
    pub fn has_field(&self, field: &str) -> bool {
        self.0.iter().any(|i| i.field == field)
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, issue) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{issue}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

/// Why a config could not be loaded.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    Read {
        /// The config file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The file is larger than [`MAX_CONFIG_FILE_LEN`].
    TooLarge {
        /// The config file.
        path: PathBuf,
    },
    /// The YAML does not parse into a [`Config`](super::Config) (syntax,
    /// unknown key, wrong type).
    Parse {
        /// The config file, if read from one.
        path: Option<PathBuf>,
        /// 1-based line of the problem, when known.
        line: Option<u64>,
        /// 1-based column of the problem, when known.
        column: Option<u64>,
        /// The parser's message.
        message: String,
    },
    /// The config parsed but some values are out of bounds.
    Invalid {
        /// The config file, if read from one.
        path: Option<PathBuf>,
        /// Each problem, with its field path.
        errors: ValidationErrors,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let src = |p: &Option<PathBuf>| match p {
            Some(p) => p.display().to_string(),
            None => "<config>".to_owned(),
        };
        match self {
            ConfigError::Read { path, source } => {
                write!(f, "cannot read config {}: {source}", path.display())
            }
            ConfigError::TooLarge { path } => write!(
                f,
                "config {} is larger than {MAX_CONFIG_FILE_LEN} bytes: is this the right file?",
                path.display()
            ),
            ConfigError::Parse {
                path,
                line,
                column,
                message,
            } => {
                write!(f, "{}", src(path))?;
                if let Some(l) = line {
                    write!(f, ":{l}")?;
                    if let Some(c) = column {
                        write!(f, ":{c}")?;
                    }
                }
                write!(f, ": {message}")
            }
            ConfigError::Invalid { path, errors } => {
                let src = src(path);
                for (i, issue) in errors.0.iter().enumerate() {
                    if i > 0 {
                        f.write_str("\n")?;
                    }
                    write!(f, "{src}: {issue}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Read { source, .. } => Some(source),
            ConfigError::Invalid { errors, .. } => Some(errors),
            _ => None,
        }
    }
}
