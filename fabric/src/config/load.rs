//! Reading a config: a bounded read of the file, parsing, resolving
//! relative paths against the file's directory, then validation.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::{resolve_relative, Config, ConfigError, Section, ValidatedConfig};

/// Largest config file read, in bytes.
pub const MAX_CONFIG_FILE_LEN: u64 = 1 << 20;

fn parse<R: Section, C: Section>(
    yaml: &str,
    path: Option<&Path>,
) -> Result<Config<R, C>, ConfigError> {
    serde_saphyr::from_str::<Config<R, C>>(yaml).map_err(|e| {
        let loc = e.location();
        ConfigError::Parse {
            path: path.map(Path::to_owned),
            line: loc.map(|l| l.line()),
            column: loc.map(|l| l.column()),
            message: e.to_string(),
        }
    })
}

impl<R: Section, C: Section> Config<R, C> {
    /// Parses and validates a config from a YAML string. Relative paths are
    /// left as they are.
    ///
    /// # Errors
    /// [`ConfigError::Parse`] or [`ConfigError::Invalid`].
    pub fn from_yaml_str(yaml: &str) -> Result<ValidatedConfig<R, C>, ConfigError> {
        parse::<R, C>(yaml, None)?
            .validate()
            .map_err(|errors| ConfigError::Invalid { path: None, errors })
    }

    /// Reads, parses and validates a config file. Relative key, log, region
    /// and epoch-file paths are resolved against the file's directory.
    /// Errors carry the file's path (and the line, for parse errors).
    ///
    /// # Errors
    /// Any [`ConfigError`].
    pub fn from_yaml_file(path: impl AsRef<Path>) -> Result<ValidatedConfig<R, C>, ConfigError> {
        let path = path.as_ref();
        let read_err = |source| ConfigError::Read {
            path: path.to_owned(),
            source,
        };
        let file = std::fs::File::open(path).map_err(read_err)?;
        let mut text = String::new();
        file.take(MAX_CONFIG_FILE_LEN + 1)
            .read_to_string(&mut text)
            .map_err(read_err)?;
        if text.len() as u64 > MAX_CONFIG_FILE_LEN {
            return Err(ConfigError::TooLarge {
                path: path.to_owned(),
            });
        }
        let mut config = parse::<R, C>(&text, Some(path))?;
        if let Some(dir) = path.parent() {
            config.resolve_relative_paths(dir);
        }
        config.validate().map_err(|errors| ConfigError::Invalid {
            path: Some(path.to_owned()),
            errors,
        })
    }

    fn resolve_relative_paths(&mut self, dir: &Path) {
        let fix = |p: &mut PathBuf| resolve_relative(dir, p);
        for r in &mut self.replicas {
            fix(&mut r.key_file);
        }
        if let Some(p) = &mut self.log.path {
            fix(p);
        }
        if let Some(s) = &mut self.replica {
            s.resolve_relative_paths(dir);
        }
        if let Some(c) = &mut self.closure {
            c.resolve_relative_paths(dir);
        }
    }
}
