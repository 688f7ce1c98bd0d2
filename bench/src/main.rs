//! `tg-bench`: replication latency and throughput the way RDMA people
//! measure them: percentiles from HDR histograms, next to the raw link on
//! the same queue pair in the same run. Scenarios: `bench/README.md`.
#![forbid(unsafe_code)]

mod latency;
mod load;
mod output;
mod plot;
mod progress;
mod setup;
mod stats;
mod takeover;
mod throughput;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use serde_json::json;

use output::{check_output, JsonOut, Sink};
use progress::Progress;

/// Bounds on the flags: a typo should not start a run of days.
const MAX_ITERATIONS: u64 = 10_000_000;
const MAX_THREADS: usize = 64;
const MAX_BATCH: usize = 4096;
const MAX_RECORDS: u64 = 1_000_000_000;

/// Measure tailguard against the raw RDMA link it runs on.
///
/// Every subcommand reads the writer side of a YAML config (`log`, `device`,
/// `qp`, `persistence`, `commit`, `replicas`; see configs/rxe-loopback.yaml),
/// opens the RDMA device, creates or reopens the log at `log.path` and
/// connects to every replica, which must be running (`tg-replica serve
/// --config FILE`). Results go to stdout as a table; progress goes to stderr.
/// perftest's flags work as RDMA people type them: -d/--ib-dev, -i/--ib-port
/// and -x/--gid-index override the config's device; -s/--size, -n/--iters
/// and -D/--duration set the record size, iterations and seconds. Figures
/// are whole round trips: ib_write_lat prints half of one, so compare with
/// twice its numbers. Scenarios and how to read them: bench/README.md.
#[derive(Debug, Parser)]
#[command(
    name = "tg-bench",
    version,
    about,
    long_about,
    after_help = "Examples:\n  tg-replica serve --config configs/rxe-loopback.yaml &\n  \
                  tg-bench latency --config configs/rxe-loopback.yaml --json lat.json --plot lat.svg\n  \
                  tg-bench throughput --threads 1,2,4 --batch 1,8 --plot tput.svg\n  \
                  tg-bench latency -d mlx5_0 -i 1 -x 3 -s 64 -n 10000 --json - | jq .results\n  \
                  tg-bench load --records 1000 --seed 7 > committed.txt"
)]
struct Cli {
    /// Log the fabric's own events on stderr: -v warnings (e.g. a replica
    /// link going down and retrying), -vv info, -vvv debug. Default: errors
    /// only, so a failure is the one `tg-bench: ...` line. A filter from
    /// --log, TG_LOG or RUST_LOG wins over it.
    #[arg(long, short, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(flatten)]
    logging: tg_ops::logging::LogArgs,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, clap::Args)]
struct Common {
    /// The writer's YAML config (device, log, replicas).
    #[arg(
        long,
        short,
        value_name = "FILE",
        default_value = "configs/rxe-loopback.yaml"
    )]
    config: PathBuf,
    /// Also write every figure, the run's parameters, machine, kernel,
    /// device and versions to this JSON file (schema: bench/schema/), or
    /// with `-` to stdout: stdout then holds the JSON alone, and the table
    /// goes to stderr (nowhere with --quiet). Not `-` for load, whose
    /// stdout is its `committed LSN` lines.
    #[arg(long, value_name = "FILE.json|-", value_parser = JsonOut::parse)]
    json: Option<JsonOut>,
    /// No progress on stderr (errors are still printed).
    #[arg(long, short)]
    quiet: bool,
    /// RDMA device, as perftest's -d (e.g. mlx5_0, rxe0): overrides the
    /// config's device.name, and its device.netdev or device.ip.
    #[arg(long = "ib-dev", short = 'd', value_name = "DEVICE")]
    ib_dev: Option<String>,
    /// Device port, as perftest's -i: overrides the config's device.port
    /// (1..=255).
    #[arg(long = "ib-port", short = 'i', value_name = "PORT")]
    ib_port: Option<u32>,
    /// GID table index, as perftest's -x: overrides the config's
    /// device.gid-index (0..=255; default on RoCE the RoCE v2 entry of the
    /// port's IPv4 address).
    #[arg(long = "gid-index", short = 'x', value_name = "INDEX")]
    gid_index: Option<u32>,
}

impl Common {
    fn overrides(&self) -> setup::DeviceOverrides {
        setup::DeviceOverrides {
            name: self.ib_dev.clone(),
            port: self.ib_port,
            gid_index: self.gid_index,
        }
    }

    fn load(&self) -> Result<setup::Loaded, String> {
        setup::load(&self.config, &self.overrides())
    }
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Commit latency per record size (one outstanding commit), with a raw
    /// WRITE+READ and a raw READ round trip on the same QP as baselines.
    ///
    /// Each iteration does, back to back: append + commit one record (the
    /// tailguard figure), a raw RDMA WRITE of the record's on-wire length
    /// followed by a READ flush (what a commit costs on the link at
    /// minimum), and a raw READ of the record's size (perftest's
    /// ib_read_lat). Warm-up iterations are not recorded. Percentiles come
    /// from HDR histograms; the ratios commit / raw WRITE+READ are what to
    /// compare across machines.
    Latency {
        #[command(flatten)]
        common: Common,
        /// Record sizes in bytes, comma-separated (each 1 B..=128 KiB minus
        /// the record header, and at most a quarter of log.size-bytes);
        /// perftest's -s/--size, which takes one.
        #[arg(
            long,
            short = 's',
            visible_alias = "size",
            value_name = "BYTES,...",
            value_delimiter = ',',
            default_value = "8,64,512,4096,32768,65536"
        )]
        sizes: Vec<u32>,
        /// Recorded iterations per size (1..=10000000), perftest's
        /// -n/--iters.
        #[arg(
            long,
            short = 'n',
            visible_alias = "iters",
            value_name = "N",
            default_value_t = 2000
        )]
        iterations: u64,
        /// Unrecorded iterations before them, per size (0..=10000000).
        #[arg(long, value_name = "N", default_value_t = 200)]
        warmup: u64,
        /// Draw the latency CDFs (tailguard vs raw WRITE+READ vs raw READ,
        /// one panel per size, log-scale x) to this SVG file.
        #[arg(long, value_name = "FILE.svg")]
        plot: Option<PathBuf>,
    },
    /// Commits/s and MB/s for 1..N appender threads and records per commit,
    /// against the raw WRITE bandwidth of the link.
    ///
    /// For each batch size and each thread count, that many threads each
    /// append BATCH records and commit the last, in a loop, for SECONDS.
    /// Before the sweep, 128 KiB WRITE+READ pairs on the same QP measure the
    /// link's raw WRITE bandwidth (for at most 2 s). Each point also shows
    /// commits per ship to the first replica: how many commits group commit
    /// folded into each ship (compare `qp.ships-in-flight` 1 and 4 with it).
    Throughput {
        #[command(flatten)]
        common: Common,
        /// Appender thread counts, comma-separated (1..=64 each).
        #[arg(
            long,
            value_name = "N,...",
            value_delimiter = ',',
            default_value = "1,2,4"
        )]
        threads: Vec<usize>,
        /// Records per commit, comma-separated (1..=4096 each).
        #[arg(
            long,
            value_name = "N,...",
            value_delimiter = ',',
            default_value = "1,8"
        )]
        batch: Vec<usize>,
        /// Record size in bytes (same bounds as latency --sizes).
        #[arg(long, short = 's', value_name = "BYTES", default_value_t = 64)]
        size: u32,
        /// Seconds per (threads, batch) point (0.1..=3600), perftest's
        /// -D/--duration.
        #[arg(
            long,
            short = 'D',
            visible_alias = "duration",
            value_name = "SECONDS",
            default_value_t = 3.0
        )]
        seconds: f64,
        /// Draw commits/s and MB/s against threads, one line per batch
        /// size, with the raw WRITE bandwidth, to this SVG file.
        #[arg(long, value_name = "FILE.svg")]
        plot: Option<PathBuf>,
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
        /// Measurements per tail length (percentiles over them), perftest's
        /// -n/--iters.
        #[arg(long, short = 'n', visible_alias = "iters", default_value_t = 10)]
        iterations: u64,
        /// Payload bytes per record.
        #[arg(long, short = 's', default_value_t = 64)]
        size: u32,
    },
    /// A host workload for drills: deterministic records (payload from LSN
    /// and seed), one commit each, printing `committed LSN` as commits return.
    ///
    /// Record payloads are 16..=1039 bytes derived from the LSN and the
    /// seed (the first 16 bytes are the LSN and the seed, little-endian), so
    /// a checker can recompute any record on any image. Each line on stdout
    /// is printed only after that record's commit returned.
    Load {
        #[command(flatten)]
        common: Common,
        /// How many records (1..=1000000000).
        #[arg(long, value_name = "N")]
        records: u64,
        /// Records per second (default: as fast as commits return).
        #[arg(long, value_name = "PER_SECOND")]
        rate: Option<f64>,
        /// Payload seed.
        #[arg(long, value_name = "S", default_value_t = 1)]
        seed: u64,
        /// After the last commit, keep the log open (replicating, its
        /// `metrics-listen` endpoint answering) this many milliseconds
        /// before the clean close: a last scrape sees the final figures.
        #[arg(long, value_name = "MS", default_value_t = 0)]
        hold_ms: u64,
    },
}

/// Largest payload whose record fits one probe (the raw baseline moves the
/// record's on-wire length in one WRITE).
fn max_size_bytes() -> u32 {
    let max = fabric::mirror::MAX_PROBE_LEN;
    (1..=max)
        .rev()
        .find(|&s| logcore::record_len(u64::from(s)) <= u64::from(max))
        .unwrap_or(1)
}

/// Sizes that need no config: 1..=the largest probe.
fn check_sizes_static(flag: &str, sizes: &[u32]) -> Result<(), String> {
    let max = max_size_bytes();
    if sizes.is_empty() {
        return Err(format!("{flag}: give at least one size in bytes"));
    }
    match sizes.iter().find(|&&s| s == 0 || s > max) {
        Some(s) => Err(format!(
            "{flag}: {s} bytes is out of range: use 1..={max} bytes"
        )),
        None => Ok(()),
    }
}

/// Sizes against the ring: at most a quarter of it per record.
fn check_sizes_log(flag: &str, sizes: &[u32], log_size: u64) -> Result<(), String> {
    for &s in sizes {
        let wire = logcore::record_len(u64::from(s));
        if wire * 4 > log_size {
            return Err(format!(
                "{flag}: {s} bytes is too large for this log: a record ({wire} B on the wire) may take at most a quarter of log.size-bytes ({log_size}); raise log.size-bytes or pick smaller sizes"
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
            plot,
        } => {
            if !(1..=MAX_ITERATIONS).contains(&iterations) {
                return Err(format!(
                    "-n/--iterations must be 1..={MAX_ITERATIONS}, got {iterations}"
                ));
            }
            if warmup > MAX_ITERATIONS {
                return Err(format!(
                    "--warmup must be 0..={MAX_ITERATIONS}, got {warmup}"
                ));
            }
            check_sizes_static("-s/--sizes", &sizes)?;
            let sink = Sink::new(common.json.clone(), common.quiet)?;
            check_output("--plot", plot.as_ref(), "svg")?;
            let loaded = common.load()?;
            check_sizes_log("-s/--sizes", &sizes, loaded.cfg.log.size_bytes)?;
            let rl = setup::connect(&loaded)?;
            let env = setup::environment(&loaded.cfg, &rl);
            let mut progress = Progress::new(!common.quiet);
            let runs = latency::run(&rl, &sizes, iterations, warmup, &mut progress)?;
            progress.finish();
            sink.table(&format!(
                "tailguard commit latency vs the raw link (same QP, same run), {iterations} iterations per size\n{}",
                latency::table(&runs)
            ));
            if let Some(p) = &plot {
                plot::latency_svg(p, &runs, &setup::machine_caption(&env))?;
            }
            sink.json(&json!({
                "kind": "latency", "environment": env,
                "parameters": {"sizes": sizes, "iterations": iterations, "warmup": warmup},
                "results": latency::json(&runs),
            }))?;
            sink.announce(plot.as_ref());
            Ok(())
        }
        Cmd::Throughput {
            common,
            threads,
            batch,
            size,
            seconds,
            plot,
        } => {
            if threads.is_empty() || threads.iter().any(|&t| !(1..=MAX_THREADS).contains(&t)) {
                return Err(format!("--threads: each count must be 1..={MAX_THREADS}"));
            }
            if batch.is_empty() || batch.iter().any(|&b| !(1..=MAX_BATCH).contains(&b)) {
                return Err(format!(
                    "--batch: each batch must be 1..={MAX_BATCH} records"
                ));
            }
            if !(0.1..=3600.0).contains(&seconds) {
                return Err(format!("-D/--seconds {seconds}: must be 0.1..=3600"));
            }
            check_sizes_static("-s/--size", &[size])?;
            let sink = Sink::new(common.json.clone(), common.quiet)?;
            check_output("--plot", plot.as_ref(), "svg")?;
            let loaded = common.load()?;
            check_sizes_log("-s/--size", &[size], loaded.cfg.log.size_bytes)?;
            let rl = setup::connect(&loaded)?;
            let env = setup::environment(&loaded.cfg, &rl);
            let d = Duration::from_secs_f64(seconds);
            let mut progress = Progress::new(!common.quiet);
            progress.milestone("measuring the raw WRITE bandwidth of the link");
            let raw = throughput::raw_write_mb_per_s(&rl, d.min(Duration::from_secs(2)))?;
            let points = throughput::run(&rl, &threads, &batch, size, d, &mut progress)?;
            progress.finish();
            sink.table(&format!(
                "tailguard commit throughput, {size}-byte records\n{}",
                throughput::table(&points, raw)
            ));
            if let Some(p) = &plot {
                plot::throughput_svg(p, &points, raw, size, &setup::machine_caption(&env))?;
            }
            sink.json(&json!({
                "kind": "throughput", "environment": env,
                "parameters": {"threads": threads, "batch": batch, "size_bytes": size, "seconds": seconds},
                "results": throughput::json(&points, raw),
            }))?;
            sink.announce(plot.as_ref());
            Ok(())
        }
        Cmd::Takeover {
            common,
            tails,
            iterations,
            size,
        } => {
            if iterations == 0 || tails.is_empty() || tails.contains(&0) {
                return Err(
                    "--tails must be at least 1 record each, -n/--iterations at least 1".into(),
                );
            }
            check_sizes_static("-s/--size", &[size])?;
            let sink = Sink::new(common.json.clone(), common.quiet)?;
            let loaded = common.load()?;
            check_sizes_log("-s/--size", &[size], loaded.cfg.log.size_bytes)?;
            let rl = setup::connect(&loaded)?;
            let env = setup::environment(&loaded.cfg, &rl);
            let points = takeover::run(
                &loaded.cfg,
                &common.config,
                &rl,
                &tails,
                iterations,
                size,
                !common.quiet,
            )?;
            sink.table(&format!(
                "closure takeover: tail shipped and durable, pre-established vs cold connect (same run), \
                 {iterations} runs per tail, {size}-byte records\n{}",
                takeover::table(&points)
            ));
            sink.json(&json!({
                "kind": "takeover", "environment": env,
                "parameters": {"tails": tails, "iterations": iterations, "size_bytes": size},
                "results": takeover::json(&points),
            }))
        }
        Cmd::Load {
            common,
            records,
            rate,
            seed,
            hold_ms,
        } => {
            if !(1..=MAX_RECORDS).contains(&records) {
                return Err(format!("--records must be 1..={MAX_RECORDS}"));
            }
            if rate.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
                return Err("--rate must be a positive number of records per second".into());
            }
            let sink = Sink::new(common.json.clone(), common.quiet)?;
            if sink.json_on_stdout() {
                return Err(
                    "--json -: load prints its `committed LSN` lines on stdout; write the JSON to a file (--json FILE.json)"
                        .into(),
                );
            }
            let loaded = common.load()?;
            let mut log = setup::open_log(&loaded)?;
            // A restarted host first replays its own log (checking every
            // record), as an application rebuilds its state.
            let replayed = load::Replayed::run(&mut log)?;
            tracing::info!(
                records = replayed.records,
                last_lsn = replayed.last_lsn,
                micros = replayed.micros,
                sealed = replayed.was_sealed,
                "replayed the local log"
            );
            let rl = setup::join(&loaded, log)?;
            let env = setup::environment(&loaded.cfg, &rl);
            let mut progress = Progress::new(!common.quiet);
            let done = load::run(&rl, records, rate, seed, &mut progress)?;
            progress.finish();
            if hold_ms > 0 {
                tracing::info!(hold_ms, metrics = ?rl.metrics_addr(), "load done: holding the log open");
                std::thread::sleep(std::time::Duration::from_millis(hold_ms));
            }
            sink.json(&json!({
                "kind": "load", "environment": env,
                "parameters": {"records": records, "rate": rate, "seed": seed},
                "replayed": replayed.json(),
                "takeover": rl.takeover_readiness().to_string(),
                "results": done.json(),
            }))
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default = match cli.verbose {
        0 => "error",
        1 => "warn",
        2 => "info",
        _ => "debug",
    };
    if let Err(e) = tg_ops::logging::init(&cli.logging, default) {
        eprintln!("tg-bench: {e}");
        return ExitCode::from(2);
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tg-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
