//! `tg-bench`: replication latency and throughput the way RDMA people
//! measure them: percentiles from HDR histograms, next to the raw link on
//! the same queue pair in the same run. Scenarios: `bench/README.md`.
#![forbid(unsafe_code)]

mod latency;
mod load;
mod setup;
mod stats;
mod takeover;
mod throughput;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use serde_json::json;

/// Measure tailguard against the raw RDMA link. Every subcommand reads the
/// writer side of a YAML config (`log`, `device`, `qp`, `persistence`,
/// `commit`, `replicas`); the replicas (`tg-replica serve`) must be running.
#[derive(Debug, Parser)]
#[command(name = "tg-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, clap::Args)]
struct Common {
    /// The writer's config file.
    #[arg(long, short, default_value = "configs/rxe-loopback.yaml")]
    config: PathBuf,
    /// Also write every figure, the configuration, device, kernel and
    /// versions to this JSON file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// No progress lines on stderr.
    #[arg(long)]
    quiet: bool,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Commit latency per record size (one outstanding commit), with a raw
    /// WRITE+READ and a raw READ round trip on the same QP as baselines.
    Latency {
        #[command(flatten)]
        common: Common,
        /// Record sizes in bytes.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "8,64,512,4096,32768,65536"
        )]
        sizes: Vec<u32>,
        /// Recorded iterations per size.
        #[arg(long, default_value_t = 2000)]
        iterations: u64,
        /// Unrecorded iterations before them.
        #[arg(long, default_value_t = 200)]
        warmup: u64,
    },
    /// Commits/s and MB/s for 1..N appender threads and records per commit,
    /// against the raw WRITE bandwidth of the link.
    Throughput {
        #[command(flatten)]
        common: Common,
        /// Appender thread counts.
        #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
        threads: Vec<usize>,
        /// Records per commit.
        #[arg(long, value_delimiter = ',', default_value = "1,8")]
        batch: Vec<usize>,
        /// Record size in bytes.
        #[arg(long, default_value_t = 64)]
        size: u32,
        /// Seconds per point.
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
    },
    /// Closure takeover time for a tail of N records the replica lacks:
    /// shipped through the closure's pre-established mirrors, next to a
    /// cold agent that must first open the device, register the log and
    /// connect (the same tail, the same run). Needs a `sync` config with a
    /// `closure:` section whose name is on the replicas' allow-lists.
    Takeover {
        #[command(flatten)]
        common: Common,
        /// Tail lengths in records.
        #[arg(long, value_delimiter = ',', default_value = "1,100,10000")]
        tails: Vec<u64>,
        /// Measurements per tail length.
        #[arg(long, default_value_t = 3)]
        iterations: u64,
        /// Payload bytes per record.
        #[arg(long, default_value_t = 64)]
        size: u32,
    },
    /// A host workload for drills: deterministic records (payload from LSN
    /// and seed), one commit each, printing `committed LSN` as commits return.
    Load {
        #[command(flatten)]
        common: Common,
        /// How many records.
        #[arg(long)]
        records: u64,
        /// Records per second (default: as fast as commits return).
        #[arg(long)]
        rate: Option<f64>,
        /// Payload seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

fn write_json(path: &Option<PathBuf>, v: &serde_json::Value) -> Result<(), String> {
    if let Some(p) = path {
        std::fs::write(p, serde_json::to_string_pretty(v).expect("serialisable"))
            .map_err(|e| format!("writing {}: {e}", p.display()))?;
        eprintln!("tg-bench: wrote {}", p.display());
    }
    Ok(())
}

fn check_sizes(sizes: &[u32], log_size: u64) -> Result<(), String> {
    for &s in sizes {
        let wire = logcore::record_len(u64::from(s));
        if s == 0 || wire > u64::from(fabric::mirror::MAX_PROBE_LEN) || wire * 4 > log_size {
            return Err(format!(
                "--sizes: {s} bytes is out of range: 1..={} bytes, and at most a quarter of log.size-bytes ({log_size})",
                fabric::mirror::MAX_PROBE_LEN - 128
            ));
        }
    }
    Ok(())
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.cmd {
        Cmd::Latency {
            common,
            sizes,
            iterations,
            warmup,
        } => {
            if iterations == 0 {
                return Err("--iterations must be at least 1".into());
            }
            let (cfg, rl) = setup::writer(&common.config)?;
            check_sizes(&sizes, cfg.log.size_bytes)?;
            let env = setup::environment(&cfg, &rl);
            let runs = latency::run(&rl, &sizes, iterations, warmup, !common.quiet)?;
            println!("tailguard commit latency vs the raw link (same QP, same run), {iterations} iterations per size");
            println!("{}", latency::table(&runs));
            write_json(
                &common.json,
                &json!({
                    "kind": "latency", "environment": env,
                    "parameters": {"sizes": sizes, "iterations": iterations, "warmup": warmup},
                    "results": latency::json(&runs),
                }),
            )
        }
        Cmd::Throughput {
            common,
            threads,
            batch,
            size,
            seconds,
        } => {
            if threads.contains(&0) || batch.contains(&0) || !(0.1..=3600.0).contains(&seconds) {
                return Err(
                    "--threads and --batch must be at least 1, --seconds 0.1..=3600".into(),
                );
            }
            let (cfg, rl) = setup::writer(&common.config)?;
            check_sizes(&[size], cfg.log.size_bytes)?;
            let env = setup::environment(&cfg, &rl);
            let d = Duration::from_secs_f64(seconds);
            let raw = throughput::raw_write_mb_per_s(&rl, d.min(Duration::from_secs(2)))?;
            let points = throughput::run(&rl, &threads, &batch, size, d, !common.quiet)?;
            println!("tailguard commit throughput, {size}-byte records");
            println!("{}", throughput::table(&points, raw));
            write_json(
                &common.json,
                &json!({
                    "kind": "throughput", "environment": env,
                    "parameters": {"threads": threads, "batch": batch, "size_bytes": size, "seconds": seconds},
                    "results": throughput::json(&points, raw),
                }),
            )
        }
        Cmd::Takeover {
            common,
            tails,
            iterations,
            size,
        } => {
            if iterations == 0 || tails.is_empty() || tails.contains(&0) {
                return Err(
                    "--tails must be at least 1 record each, --iterations at least 1".into(),
                );
            }
            let (cfg, rl) = setup::writer(&common.config)?;
            check_sizes(&[size], cfg.log.size_bytes)?;
            let env = setup::environment(&cfg, &rl);
            let points = takeover::run(
                &cfg,
                &common.config,
                &rl,
                &tails,
                iterations,
                size,
                !common.quiet,
            )?;
            println!("closure takeover: tail shipped and durable, pre-established vs cold connect (same run), {iterations} runs per tail, {size}-byte records");
            println!("{}", takeover::table(&points));
            write_json(
                &common.json,
                &json!({
                    "kind": "takeover", "environment": env,
                    "parameters": {"tails": tails, "iterations": iterations, "size_bytes": size},
                    "results": takeover::json(&points),
                }),
            )
        }
        Cmd::Load {
            common,
            records,
            rate,
            seed,
        } => {
            if rate.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
                return Err("--rate must be a positive number of records per second".into());
            }
            let (_, rl) = setup::writer(&common.config)?;
            load::run(&rl, records, rate, seed)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::WARN)
        .init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tg-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
