//! `tg-replica`: serve a replica region, report its status, promote it.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use logcore::{Image, Log, Region, RegionKind, MAGIC};
use replica::config::ReplicaConfig;
use replica::epoch;
use replica::replay::Progress;
use replica::server::{Hooks, Replica, Settings};
use tg_ops::signals::Signals;
use tg_ops::systemd::{Notifier, Watchdog};

/// The tailguard replica daemon.
#[derive(Debug, Parser)]
#[command(name = "tg-replica", version, about)]
struct Cli {
    #[command(flatten)]
    logging: tg_ops::logging::LogArgs,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Serve: admit writers, mirror their log into the region, replay it.
    Serve {
        /// YAML config with `log`, `device`, `qp`, `persistence` and `replica`.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Print the replica's state from its region and epoch file (works with
    /// the daemon running or not).
    Status {
        /// YAML config (as for `serve`).
        #[arg(long, short)]
        config: PathBuf,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Turn the replica's log into a primary log with a new epoch. Refused
    /// unless the stream is sealed (the primary's closure shipped its tail),
    /// or with --force when the primary is unreachable for good. Run it with
    /// the daemon stopped.
    Promote {
        /// YAML config (as for `serve`).
        #[arg(long, short)]
        config: PathBuf,
        /// Promote an unsealed replica (its primary may have had records it
        /// never shipped).
        #[arg(long)]
        force: bool,
    },
    /// Write a new random pre-shared key (32 bytes, hex) to FILE, mode 0600.
    /// Give the same file to both ends of a link: the writer's
    /// `replicas[i].key-file` and the replica's `replica.allow[j].key-file`
    /// (and `closure.key-file` for the closure's own entry). Never replaces
    /// an existing file.
    Keygen {
        /// Where to write the key (must not exist).
        file: PathBuf,
    },
}

/// `tg-replica keygen FILE`.
fn keygen(file: &std::path::Path) -> Result<(), String> {
    let key = fabric::auth::PreSharedKey::generate()
        .map_err(|e| format!("cannot read random bytes from /dev/urandom: {e}"))?;
    key.write_new(file).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => format!(
            "{} exists: not replacing it (peers holding that key would be locked out); \
             remove it first to rotate the key, or choose another path",
            file.display()
        ),
        _ => format!("cannot write key file {}: {e}", file.display()),
    })?;
    println!("wrote a new key to {} (mode 0600)", file.display());
    Ok(())
}

/// Reads and validates the config (the writer's part and the `replica`
/// section; the `closure` section is tg-closure's) and loads the keys.
fn load(path: &PathBuf) -> Result<Settings, String> {
    let cfg = ReplicaConfig::from_yaml_file(path).map_err(|e| e.to_string())?;
    Settings::from_config(&cfg).map_err(|e| format!("{}: {e}", path.display()))
}

fn status(s: &Settings, json: bool) -> Result<(), String> {
    let ep = epoch::load(&s.epoch_file).map_err(|e| e.to_string())?;
    let region = Region::open(&s.region, RegionKind::Auto).map_err(|e| e.to_string())?;
    // Read by copying out of the mapping: a running daemon's NIC and replay
    // may be writing it while this reads.
    let mut magic = [0u8; 8];
    region.read_at(0, &mut magic);
    let formatted = magic == MAGIC;
    let start = logcore::Cursor {
        pos: 0,
        lsn: logcore::Lsn::FIRST,
    };
    let (uuid, durable, head, records, damage) = if formatted {
        // The durable tail shown is the one the daemon reports (or will at
        // its next start): the end of the last intact record, not the
        // recorded one taken on trust. With the daemon running, its head may
        // move while this scans (and the writer then overwrites what was
        // behind it), which looks like damage: such a finding counts only if
        // the head held still; bounded retries.
        let mut tries = 0;
        loop {
            let img =
                Image::read(&region).map_err(|e| format!("region {}: {e}", s.region.display()))?;
            let (p, damage) =
                Progress::from_image(&img, u32::try_from(ep.epoch).unwrap_or(u32::MAX));
            let records = img
                .scan()
                .map(|mut sc| {
                    let mut n = 0;
                    while let Some(r) = sc.next_record() {
                        if r.is_ok_and(|r| r.kind == logcore::RecordKind::Data) {
                            n += 1;
                        }
                    }
                    n
                })
                .unwrap_or(0);
            let moved = logcore::Control::new(&region).and_then(|c| c.head()) != Ok(p.head);
            tries += 1;
            if damage.is_none() || !moved || tries == 3 {
                break (
                    Some(img.superblock().uuid),
                    p.cursor,
                    p.head,
                    records,
                    damage,
                );
            }
        }
    } else {
        (None, start, start, 0, None)
    };
    let live = live_status(s);
    if json {
        let v = serde_json::json!({
            "daemon": live.as_json(),
            "region": s.region,
            "log_uuid": uuid.map(|u| replica::hex::encode(&u)),
            "epoch": ep.epoch,
            "sealed": ep.sealed,
            "durable_tail": durable.pos,
            "next_lsn": durable.lsn.0,
            "head": head.pos,
            "records_in_ring": records,
            "damage": damage.map(|d| serde_json::json!({
                "recorded_durable_tail": d.recorded.pos,
                "recorded_next_lsn": d.recorded.lsn.0,
                "reason": d.to_string(),
            })),
        });
        println!("{v}");
    } else {
        println!("region        {}", s.region.display());
        println!(
            "log           {}",
            uuid.map_or("none yet (no writer admitted)".to_owned(), |u| {
                replica::hex::encode(&u)
            })
        );
        println!(
            "epoch         {}{}",
            ep.epoch,
            if ep.sealed { " (sealed)" } else { "" }
        );
        println!("durable tail  {} (next LSN {})", durable.pos, durable.lsn.0);
        println!("head          {}", head.pos);
        println!("records       {records} in the ring from the head");
        live.print();
        if let Some(d) = damage {
            println!(
                "damaged       {d}; tg-replica reports durable tail {} and the writer re-ships \
                 from there (the recorded tail is rewound when tg-replica starts)",
                d.intact.pos
            );
        }
    }
    Ok(())
}

/// What the running daemon says (`GET /status` on `replica.metrics-listen`).
enum Live {
    /// No `replica.metrics-listen`: the daemon cannot be asked.
    NotAsked,
    /// Nothing answered there.
    NotRunning { addr: String, why: String },
    /// Its answer.
    Running(serde_json::Value),
}

impl Live {
    fn as_json(&self) -> serde_json::Value {
        match self {
            Live::NotAsked => serde_json::Value::Null,
            Live::NotRunning { addr, why } => {
                serde_json::json!({ "running": false, "metrics_listen": addr, "error": why })
            }
            Live::Running(v) => {
                let mut v = v.clone();
                v["running"] = true.into();
                v
            }
        }
    }

    fn print(&self) {
        match self {
            Live::NotAsked => println!(
                "daemon        not asked (set replica.metrics-listen to see connected writers)"
            ),
            Live::NotRunning { addr, why } => {
                println!("daemon        not running (nothing answers on {addr}: {why})");
            }
            Live::Running(v) => {
                println!("daemon        running, pid {}", v["pid"]);
                let writers = v["writers"].as_array().map_or(&[][..], Vec::as_slice);
                if writers.is_empty() {
                    println!("writers       none connected");
                }
                for w in writers {
                    println!(
                        "writer        {} at epoch {} (session {})",
                        w["name"].as_str().unwrap_or("?"),
                        w["epoch"],
                        w["session"]
                    );
                }
            }
        }
    }
}

/// Asks the daemon for its live status (bounded: 2 s).
fn live_status(s: &Settings) -> Live {
    let Some(addr) = &s.metrics_listen else {
        return Live::NotAsked;
    };
    let answer = tg_ops::metrics::fetch(addr, "/status", std::time::Duration::from_secs(2))
        .and_then(|body| {
            serde_json::from_str::<serde_json::Value>(&body)
                .map_err(|e| format!("not a tg-replica status answer: {e}"))
        });
    match answer {
        Ok(v) => Live::Running(v),
        Err(why) => Live::NotRunning {
            addr: addr.clone(),
            why,
        },
    }
}

fn promote(s: &Settings, force: bool) -> Result<(), String> {
    let mut ep = epoch::load(&s.epoch_file).map_err(|e| e.to_string())?;
    if ep.uuid.is_none() {
        return Err("this replica never mirrored a log: nothing to promote".into());
    }
    if !ep.sealed && !force {
        return Err(format!(
            "epoch {} is not sealed: the primary (or its closure) may still hold records this replica lacks; \
             promote with --force only if the primary is gone for good",
            ep.epoch
        ));
    }
    let log = Log::open(&s.region, RegionKind::Auto)
        .map_err(|e| format!("opening the replica's log: {e}"))?;
    let new_epoch =
        u32::try_from(ep.epoch.max(u64::from(log.epoch())) + 1).map_err(|_| "epoch overflow")?;
    log.begin_epoch(new_epoch).map_err(|e| e.to_string())?;
    let tail = log.persisted();
    drop(log);
    ep.epoch = u64::from(new_epoch);
    ep.sealed = false;
    epoch::store(&s.epoch_file, &ep).map_err(|e| e.to_string())?;
    println!(
        "promoted: {} is now a primary log at epoch {new_epoch}, tail {} (next LSN {})",
        s.region.display(),
        tail.pos,
        tail.lsn.0
    );
    Ok(())
}

/// `tg-replica serve`: until SIGTERM or SIGINT; SIGHUP rereads the
/// allow-list and its keys. Under systemd (`Type=notify`) it says
/// `READY=1` once it listens, and pets the watchdog from its accept loop.
fn serve(config: &PathBuf, s: Settings) -> Result<(), String> {
    let signals =
        Signals::install(true).map_err(|e| format!("cannot install signal handlers: {e}"))?;
    let notifier = Notifier::from_env();
    let mut watchdog = Watchdog::from_env(notifier.clone());
    let apm = s.persistence == fabric::wire::PersistenceMode::Apm;
    let r = Replica::bind(s).map_err(|e| e.to_string())?;
    let addr = r.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(%addr, metrics = ?r.metrics_addr(), "tg-replica serving");
    if apm {
        tracing::warn!(
            "persistence: apm: a writer's RDMA READ proves its data was placed in this \
             machine's memory, which is persistence only with eADR, or ADR with DDIO \
             off; on any other platform set `persistence: gpspm` on both sides"
        );
    }
    notifier.tell(&format!("READY=1\nSTATUS=serving on {addr}"));
    let reread = || load(config).map(|s| s.allow);
    let mut tick = || watchdog.tick();
    let stopped = r
        .serve(&mut Hooks {
            signals: &signals,
            reread: &reread,
            tick: &mut tick,
        })
        .map_err(|e| format!("serving on {addr}: {e}"))?;
    notifier.tell("STOPPING=1");
    tracing::info!(
        sessions_ended = stopped.sessions_ended,
        durable_tail = stopped.durable_tail,
        "tg-replica stopped: every writer fenced, all that arrived replayed and flushed"
    );
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = tg_ops::logging::init(&cli.logging, "info") {
        eprintln!("tg-replica: {e}");
        return ExitCode::from(2);
    }
    let result = match &cli.cmd {
        Cmd::Serve { config } => load(config).and_then(|s| serve(config, s)),
        Cmd::Status { config, json } => load(config).and_then(|s| status(&s, *json)),
        Cmd::Promote { config, force } => load(config).and_then(|s| promote(&s, *force)),
        Cmd::Keygen { file } => keygen(file),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tg-replica: {e}");
            ExitCode::FAILURE
        }
    }
}
