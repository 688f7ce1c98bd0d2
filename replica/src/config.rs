//! The `replica:` section of a node's config file: where `tg-replica`
//! listens, the region it mirrors into, its epoch file and its allow-list.
//!
//! fabric reads the rest of the file (`fabric::config`); this section is a
//! [`Section`] of it, so one file still carries the writer, the replica and
//! the closure. `tg-replica` reads the file as a [`ReplicaConfig`] (the
//! `closure` section is `tg-closure`'s).

use std::path::{Path, PathBuf};

use fabric::auth::AllowedWriter;
use fabric::config::{
    check_host_port, resolve_relative, Config, Foreign, Issues, Section, ValidatedConfig,
};
use fabric::wire::WriterName;
use serde::Deserialize;

/// The config file as `tg-replica` reads it: the writer's part (`log`,
/// `device`, `qp`, `persistence`, `control-timeout-ms`) and the `replica`
/// section.
pub type ReplicaConfig = Config<ReplicaSection, Foreign>;

/// A [`ReplicaConfig`] that passed validation.
pub type ValidatedReplicaConfig = ValidatedConfig<ReplicaSection, Foreign>;

/// Most writers on one replica's allow-list.
pub const MAX_ALLOWED_WRITERS: usize = 64;

/// The replica side (`tg-replica serve`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ReplicaSection {
    /// Control address to listen on, `HOST:PORT`. Required; port 1..=65535.
    pub listen: String,
    /// The pmem region mirroring the writer's log: a devdax device
    /// (`/dev/dax0.0`) or a file on fsdax or a plain file system. Required;
    /// relative paths are relative to the config file's directory.
    pub region: PathBuf,
    /// File holding the highest admitted epoch (written before a newer
    /// writer is admitted). Required; relative as above.
    pub epoch_file: PathBuf,
    /// Writers allowed to connect, each with its key file. Required,
    /// 1..=[`MAX_ALLOWED_WRITERS`] entries, names unique.
    pub allow: Vec<AllowedWriter>,
    /// An admitted writer (or closure) that sends no request for this long
    /// is taken for gone (its host may have lost power: its connection
    /// never closes): its session ends and its queue pair is dropped, so
    /// its slot, thread and QP are not kept forever. Writers ask for status
    /// every second; keep this above the closure's `keepalive-ms` too.
    /// Default 30000; 1000..=3600000.
    #[serde(default = "default_idle_session_ms")]
    pub idle_session_ms: u64,
    /// Serve metrics (OpenMetrics, `GET /metrics`) and the daemon's live
    /// status (`GET /status`: connected writers and their epochs) on this
    /// `HOST:PORT`; `tg-replica status` asks it. Off when absent. Anyone
    /// who can reach it can read both: bind it to a management address.
    #[serde(default)]
    pub metrics_listen: Option<String>,
}

fn default_idle_session_ms() -> u64 {
    30_000
}

impl Section for ReplicaSection {
    /// The section needs no narrowing: checked, it is itself.
    type Checked = ReplicaSection;

    fn check<R, C>(&self, _: &Config<R, C>, v: &mut Issues) -> Option<ReplicaSection> {
        let before = v.len();
        if let Err(why) = check_host_port(&self.listen) {
            v.push("replica.listen", why);
        }
        if let Some(m) = &self.metrics_listen {
            if let Err(why) = check_host_port(m) {
                v.push("replica.metrics-listen", why);
            } else if *m == self.listen {
                v.push(
                    "replica.metrics-listen",
                    "must differ from replica.listen (the control port)",
                );
            }
        }
        if self.region.as_os_str().is_empty() {
            v.push("replica.region", "must not be empty");
        }
        if self.epoch_file.as_os_str().is_empty() {
            v.push("replica.epoch-file", "must not be empty");
        }
        v.range(
            "replica.idle-session-ms",
            self.idle_session_ms,
            1000,
            3_600_000,
        );
        if self.allow.is_empty() || self.allow.len() > MAX_ALLOWED_WRITERS {
            v.push(
                "replica.allow",
                format!(
                    "must list 1..={MAX_ALLOWED_WRITERS} writers, got {}",
                    self.allow.len()
                ),
            );
        }
        for (i, a) in self.allow.iter().enumerate() {
            let at = |f: &str| format!("replica.allow[{i}].{f}");
            if let Err(why) = WriterName::new(a.name.clone()) {
                v.push(at("name"), format!("{why}, got {:?}", a.name));
            }
            if self.allow[..i].iter().any(|o| o.name == a.name) {
                v.push(at("name"), format!("duplicate writer name {:?}", a.name));
            }
            if a.key_file.as_os_str().is_empty() {
                v.push(at("key-file"), "must not be empty");
            }
        }
        (v.len() == before).then(|| self.clone())
    }

    fn resolve_relative_paths(&mut self, dir: &Path) {
        resolve_relative(dir, &mut self.region);
        resolve_relative(dir, &mut self.epoch_file);
        for a in &mut self.allow {
            resolve_relative(dir, &mut a.key_file);
        }
    }
}
