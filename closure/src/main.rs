//! `tg-closure`: the closure daemon (see the crate docs and README).
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use closure::daemon::{self, Outcome, Supervisor};
use closure::error::ClosureError;
use closure::options::ClosureOptions;
use tg_ops::signals::Signals;

/// Watches a tailguard host and, when it dies or hangs, ships its log tail
/// to the replicas with pre-established queue pairs, seals the epoch, and
/// runs the restart command.
#[derive(Debug, Parser)]
#[command(name = "tg-closure", version, about)]
struct Cli {
    #[command(flatten)]
    logging: tg_ops::logging::LogArgs,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Arm on the host's log and watch it. After a takeover it waits for
    /// the host the restart command brings back (at its new epoch) and
    /// re-arms on it; after a clean shutdown it waits for the next host.
    /// Exits on an error (1), on SIGTERM or SIGINT (0: it stands down
    /// without a takeover), or with --once.
    Run {
        /// The node's config file (needs `closure:`, `log.path`, `replicas`).
        #[arg(long, short)]
        config: PathBuf,
        /// How long to wait at start for a host running on the log (an
        /// error past it); later waits (for a restarted host) warn every
        /// this often and go on.
        #[arg(long, default_value_t = 60_000)]
        wait_host_ms: u64,
        /// Exit after one takeover or stand-down (0) instead of re-arming,
        /// for a supervisor that restarts the daemon itself, and drills.
        #[arg(long)]
        once: bool,
    },
    /// Whether takeover is armed for this node's host, and if not, why:
    /// from the host's log (no daemon or device needed) and, with
    /// `closure.metrics-listen`, from the daemon (keep-alive per replica,
    /// last takeover). Exit 0 when armed, 3 when not.
    Status {
        /// The node's config file.
        #[arg(long, short)]
        config: PathBuf,
        /// One JSON object on stdout instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Not armed (`tg-closure status`): distinct from a failure (1).
const NOT_ARMED: u8 = 3;

fn status(config: &std::path::Path, json: bool) -> ExitCode {
    match closure::status::read(config) {
        Ok(st) => {
            if json {
                println!("{}", st.to_json());
            } else {
                print!("{}", st.to_text());
            }
            if st.armed {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(NOT_ARMED)
            }
        }
        Err(e) => {
            eprintln!("tg-closure: {e}");
            ExitCode::from(1)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = tg_ops::logging::init(&cli.logging, "info") {
        eprintln!("tg-closure: {e}");
        return ExitCode::from(2);
    }
    let (config, wait_host_ms, once) = match cli.cmd {
        Cmd::Run {
            config,
            wait_host_ms,
            once,
        } => (config, wait_host_ms, once),
        Cmd::Status { config, json } => return status(&config, json),
    };
    let opts = match ClosureOptions::from_file(&config) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("tg-closure: {e}");
            return ExitCode::from(1);
        }
    };
    let signals = match Signals::install(false) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tg-closure: cannot install signal handlers: {e}");
            return ExitCode::from(1);
        }
    };
    let mut sup = Supervisor::from_env(signals);
    if let Some(listen) = &opts.metrics_listen {
        if let Err(e) = sup.serve_metrics(listen) {
            eprintln!("tg-closure: closure.metrics-listen: {e}");
            return ExitCode::from(1);
        }
    }
    let wait = Duration::from_millis(wait_host_ms);
    let result = if once {
        match daemon::run(&opts, wait, &mut sup) {
            Err(ClosureError::Stopped) => Ok(()),
            r => r.map(|_: Outcome| ()),
        }
    } else {
        daemon::serve(&opts, wait, &mut sup)
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("tg-closure: {e}");
            ExitCode::from(1)
        }
    }
}
