//! `tg-closure`: the closure daemon (see the crate docs and README).
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use closure::daemon::{self, Outcome};
use closure::options::ClosureOptions;

/// Watches a tailguard host and, when it dies or hangs, ships its log tail
/// to the replicas with pre-established queue pairs, seals the epoch, and
/// runs the restart command.
#[derive(Debug, Parser)]
#[command(name = "tg-closure", version, about)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Arm on the host's log and watch it; exits after one takeover (0),
    /// when the host shuts down cleanly (0), or on an error (1). Run it
    /// under a supervisor that restarts it (configs/tg-closure.service) to
    /// re-arm for the next host.
    Run {
        /// The node's config file (needs `closure:`, `log.path`, `replicas`).
        #[arg(long, short)]
        config: PathBuf,
        /// How long to wait at start for a host running on the log.
        #[arg(long, default_value_t = 60_000)]
        wait_host_ms: u64,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let Cmd::Run {
        config,
        wait_host_ms,
    } = Cli::parse().cmd;
    let opts = match ClosureOptions::from_file(&config) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("tg-closure: {e}");
            return ExitCode::from(1);
        }
    };
    match daemon::run(&opts, Duration::from_millis(wait_host_ms)) {
        Ok(Outcome::TookOver(_) | Outcome::StoodDown(_)) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("tg-closure: {e}");
            ExitCode::from(1)
        }
    }
}
