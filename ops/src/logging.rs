//! One logging setup for every binary.
//!
//! * Lines go to stderr; stdout stays for what a command prints (tables,
//!   `--json` objects), so `tg-replica status --json | jq` never sees a log
//!   line.
//! * `--log-format text|json`: text for people; one JSON object per line
//!   (`timestamp`, `level`, `target`, `message` and the event's fields at
//!   the top level) for a log shipper.
//! * Which lines: `target=level` directives separated by commas, as
//!   `RUST_LOG` writes them (`info`, `warn,replica=debug`, `off`), from the
//!   first of `--log FILTER`, `TG_LOG`, `RUST_LOG` that is set and not empty,
//!   else the binary's default. Directives match a target and its children
//!   by prefix; span and field matching (the regex-based `EnvFilter`) is not
//!   supported. A filter that does not parse is an error that names where it
//!   came from: nothing runs with a filter its operator did not mean.
//! * ANSI colours only when stderr is a terminal and `NO_COLOR` is unset or
//!   empty: never into journald, a pipe or a file.

use std::ffi::OsStr;
use std::fmt;
use std::io::IsTerminal;
use std::str::FromStr;

use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;

/// The variable a filter is read from first.
pub const FILTER_ENV: &str = "TG_LOG";
/// The conventional variable, read when [`FILTER_ENV`] is unset.
pub const RUST_LOG_ENV: &str = "RUST_LOG";

/// How log lines are written.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// The logging flags every binary takes (flatten into its `clap` parser).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct LogArgs {
    /// How log lines on stderr are written: `text` for people, `json` (one
    /// object per line) for a log shipper.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// Which log lines: `target=level` directives separated by commas, as in
    /// RUST_LOG (`info`, `warn,replica=debug`). Wins over TG_LOG, which wins
    /// over RUST_LOG.
    #[arg(long = "log", value_name = "FILTER", global = true)]
    pub log: Option<String>,
}

/// Where the filter in force came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterSource {
    /// `--log`.
    Flag,
    /// [`FILTER_ENV`].
    TgLog,
    /// [`RUST_LOG_ENV`].
    RustLog,
    /// The binary's default.
    Default,
}

impl fmt::Display for FilterSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FilterSource::Flag => "--log",
            FilterSource::TgLog => FILTER_ENV,
            FilterSource::RustLog => RUST_LOG_ENV,
            FilterSource::Default => "the default log filter",
        })
    }
}

/// A filter that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError {
    /// Where it came from.
    pub source: FilterSource,
    /// What was given (lossily decoded if it is not UTF-8).
    pub value: String,
    /// Why it was refused.
    pub reason: String,
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: invalid log filter {:?}: {}; write target=level directives separated by \
             commas, e.g. `info` or `warn,replica=debug` (levels: error, warn, info, debug, \
             trace, off)",
            self.source, self.value, self.reason
        )
    }
}

impl std::error::Error for FilterError {}

/// The first of `flag`, `tg_log`, `rust_log` that is set and not empty,
/// else `default`, with where it came from.
#[must_use]
pub fn choose_filter<'a>(
    flag: Option<&'a OsStr>,
    tg_log: Option<&'a OsStr>,
    rust_log: Option<&'a OsStr>,
    default: &'a str,
) -> (FilterSource, &'a OsStr) {
    [
        (FilterSource::Flag, flag),
        (FilterSource::TgLog, tg_log),
        (FilterSource::RustLog, rust_log),
    ]
    .into_iter()
    .find_map(|(s, v)| v.filter(|v| !v.is_empty()).map(|v| (s, v)))
    .unwrap_or((FilterSource::Default, OsStr::new(default)))
}

/// Parses a filter.
///
/// # Errors
/// [`FilterError`] when `value` is not UTF-8 or not a list of directives.
pub fn parse_filter(source: FilterSource, value: &OsStr) -> Result<Targets, FilterError> {
    let refuse = |reason: String| FilterError {
        source,
        value: value.to_string_lossy().into_owned(),
        reason,
    };
    let text = value
        .to_str()
        .ok_or_else(|| refuse("it is not UTF-8".into()))?;
    Targets::from_str(text.trim()).map_err(|e| refuse(e.to_string()))
}

/// Whether to colour: only on a terminal, and only while `NO_COLOR` is unset
/// or empty (<https://no-color.org>).
#[must_use]
pub fn use_ansi(stderr_is_terminal: bool, no_color: Option<&OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(OsStr::is_empty)
}

/// The subscriber [`init`] installs, writing to `writer` (tests give it a
/// buffer).
pub fn subscriber<W>(
    format: LogFormat,
    filter: Targets,
    ansi: bool,
    writer: W,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let registry = tracing_subscriber::registry().with(filter);
    match format {
        LogFormat::Text => Box::new(
            registry.with(
                tracing_subscriber::fmt::layer()
                    .with_writer(writer)
                    .with_ansi(ansi),
            ),
        ),
        LogFormat::Json => Box::new(
            registry.with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(false)
                    .with_span_list(false)
                    .with_writer(writer),
            ),
        ),
    }
}

/// Installs the process's logging from `args`, the environment and the
/// binary's `default` filter (for example `"info"`). A second call leaves
/// the first setup in place.
///
/// # Errors
/// [`FilterError`] for a filter that does not parse (print it and exit 2).
pub fn init(args: &LogArgs, default: &str) -> Result<(), FilterError> {
    let (tg, rust) = (std::env::var_os(FILTER_ENV), std::env::var_os(RUST_LOG_ENV));
    let (source, value) = choose_filter(
        args.log.as_deref().map(OsStr::new),
        tg.as_deref(),
        rust.as_deref(),
        default,
    );
    let filter = parse_filter(source, value)?;
    let ansi = use_ansi(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    let sub = subscriber(args.log_format, filter, ansi, std::io::stderr);
    // Already set (a second init in one process): the first one stays.
    let _ = tracing::subscriber::set_global_default(sub);
    Ok(())
}

#[cfg(test)]
mod tests;
