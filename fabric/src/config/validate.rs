//! Checking a parsed config: [`Config::validate`] collects every problem
//! with its field path ([`Issues`]) and, when there is none, returns the
//! [`ValidatedConfig`] the runtime settings are built from, its numbers
//! already narrowed to the types the runtime takes.

use std::ops::Deref;
use std::time::Duration;

use super::writer::check_replicas;
use super::{CommitPolicy, Config, ConfigIssue, Section, ValidationErrors};
use crate::verbs;
use crate::wire::WriterName;

/// Collects validation issues, each with its field path.
#[derive(Debug, Default)]
pub struct Issues(Vec<ConfigIssue>);

impl Issues {
    /// Records that `field` is wrong, saying how (with the value found).
    pub fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(ConfigIssue {
            field: field.into(),
            message: message.into(),
        });
    }

    /// Checks `min <= value <= max`.
    pub fn range(&mut self, field: &str, value: u64, min: u64, max: u64) {
        if !(min..=max).contains(&value) {
            self.push(field, format!("must be {min}..={max}, got {value}"));
        }
    }

    /// Checks `min <= value <= max` and returns the value as a `u8` (0 when
    /// out of range: an issue was pushed, so no [`ValidatedConfig`] holds it).
    pub fn u8_in(&mut self, field: &str, value: u32, min: u8, max: u8) -> u8 {
        self.range(field, value.into(), min.into(), max.into());
        u8::try_from(value).unwrap_or(0)
    }

    /// How many issues so far.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there is no issue so far.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn finish(self) -> Result<(), ValidationErrors> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ValidationErrors(self.0))
        }
    }
}

/// A config that passed [`Config::validate`], the only way to make one.
///
/// It reads as the [`Config`] it checked (`Deref`), and adds what the
/// check produced: the writer name parsed, the device port and queue-pair
/// parameters narrowed to what verbs takes, and each owned section's
/// checked form. Settings built from it never re-check a bound.
#[derive(Debug, Clone)]
pub struct ValidatedConfig<R: Section = super::Foreign, C: Section = super::Foreign> {
    config: Config<R, C>,
    writer: Option<WriterName>,
    port: u8,
    qp: verbs::QpConfig,
    replica: Option<R::Checked>,
    closure: Option<C::Checked>,
}

impl<R: Section, C: Section> Deref for ValidatedConfig<R, C> {
    type Target = Config<R, C>;

    fn deref(&self) -> &Config<R, C> {
        &self.config
    }
}

impl<R: Section, C: Section> ValidatedConfig<R, C> {
    /// The writer name (`name`) as sent in the handshake; `None` when unset
    /// (a replica-only node).
    pub fn writer_name(&self) -> Option<&WriterName> {
        self.writer.as_ref()
    }

    /// The device port (`device.port`).
    pub fn port(&self) -> u8 {
        self.port
    }

    /// Queue pair parameters from `qp` and `device` (GID index, traffic
    /// class, hop limit, service level).
    pub fn qp_config(&self) -> verbs::QpConfig {
        self.qp
    }

    /// The checked `replica` section, when the file has one.
    pub fn replica(&self) -> Option<&R::Checked> {
        self.replica.as_ref()
    }

    /// The checked `closure` section, when the file has one.
    pub fn closure(&self) -> Option<&C::Checked> {
        self.closure.as_ref()
    }
}

impl<R, C> Config<R, C> {
    /// The control-channel socket timeout (`control-timeout-ms`), to pass to
    /// `set_read_timeout`, `set_write_timeout` and `connect_timeout`.
    pub fn control_timeout(&self) -> Duration {
        Duration::from_millis(self.control_timeout_ms)
    }

    /// The number of replica acks a `sync` commit waits for (all replicas
    /// when `acks` is not set); `None` for `async`.
    pub fn required_acks(&self) -> Option<usize> {
        match self.commit {
            CommitPolicy::Sync { acks: Some(k) } => Some(k as usize),
            CommitPolicy::Sync { acks: None } => Some(self.replicas.len()),
            CommitPolicy::Async { .. } => None,
        }
    }
}

impl<R: Section, C: Section> Config<R, C> {
    /// Checks every bound and cross-field rule, the writer's and those of
    /// each owned section, collecting every problem (not just the first)
    /// with its field path.
    ///
    /// # Errors
    /// [`ValidationErrors`], never empty.
    pub fn validate(self) -> Result<ValidatedConfig<R, C>, ValidationErrors> {
        let mut v = Issues::default();
        if self.replicas.is_empty() && self.replica.is_none() {
            v.push(
                "replicas",
                "neither `replicas` (writer side) nor `replica` (replica side) is set: \
                 this node would do nothing",
            );
        }
        let writer = match &self.name {
            Some(n) => WriterName::new(n.clone())
                .map_err(|why| v.push("name", format!("{why}, got {n:?}")))
                .ok(),
            None if !self.replicas.is_empty() => {
                v.push(
                    "name",
                    "required when `replicas` is set (the writer's name on their allow-lists)",
                );
                None
            }
            None => None,
        };
        self.log.check(!self.replicas.is_empty(), &mut v);
        let device = self.device.check(&mut v);
        let qp = self.qp.check(device, &mut v);
        v.range("control-timeout-ms", self.control_timeout_ms, 100, 600_000);
        if let Some(m) = &self.metrics_listen {
            if let Err(why) = check_host_port(m) {
                v.push("metrics-listen", why);
            }
        }
        self.commit.check(self.replicas.len(), &mut v);
        check_replicas(&self.replicas, &mut v);
        let closure = self
            .closure
            .as_ref()
            .and_then(|c| check_section(c, "closure", &self, &mut v));
        let replica = self
            .replica
            .as_ref()
            .and_then(|s| check_section(s, "replica", &self, &mut v));
        v.finish()?;
        Ok(ValidatedConfig {
            config: self,
            writer,
            port: device.port,
            qp,
            replica,
            closure,
        })
    }
}

/// Runs a section's check, holding it to its contract: no checked form
/// without an issue saying why.
fn check_section<S: Section, R, C>(
    section: &S,
    key: &str,
    cfg: &Config<R, C>,
    v: &mut Issues,
) -> Option<S::Checked> {
    let before = v.len();
    let checked = section.check(cfg, v);
    if checked.is_none() && v.len() == before {
        v.push(
            key,
            "refused without a reason (a bug in the section's check)",
        );
    }
    checked
}

/// Checks `HOST:PORT` (IPv6 hosts in brackets); returns why not.
///
/// # Errors
/// What is wrong with `s`, with the value found.
pub fn check_host_port(s: &str) -> Result<(), String> {
    let Some((host, port)) = s.rsplit_once(':') else {
        return Err(format!("expected HOST:PORT, got {s:?}"));
    };
    if host.is_empty() {
        return Err(format!("host is empty in {s:?}"));
    }
    if let Some(inner) = host.strip_prefix('[') {
        match inner.strip_suffix(']') {
            Some(addr) if addr.parse::<std::net::Ipv6Addr>().is_ok() => {}
            _ => {
                return Err(format!(
                    "bracketed host must be an IPv6 address, got {host:?}"
                ))
            }
        }
    } else if host.contains(':') {
        return Err(format!(
            "IPv6 hosts must be bracketed, as [ADDR]:PORT, got {s:?}"
        ));
    }
    match port.parse::<u32>() {
        Ok(p) if (1..=65535).contains(&p) => Ok(()),
        Ok(p) => Err(format!("port must be 1..=65535, got {p}")),
        Err(_) => Err(format!("port must be a number 1..=65535, got {port:?}")),
    }
}
