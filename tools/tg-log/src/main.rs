//! `tg-log`: create, verify, dump and inspect tailguard logs.
//!
//! Exit status: 0 success, 1 corruption (or not a log), 2 cannot open /
//! usage error.
#![forbid(unsafe_code)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use logcore::{Access, CreateOptions, Image, Log, Record, Region, RegionKind, StopReason};

#[derive(Debug, Parser)]
#[command(
    name = "tg-log",
    version,
    about = "Create, verify, dump and inspect tailguard logs"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Format a new log.
    Create {
        /// Region path: /dev/daxX.Y, a file on a DAX filesystem, or a plain file.
        path: PathBuf,
        /// Region size for files (e.g. 64M, 1G); devdax uses the whole device.
        #[arg(long, default_value = "64M", value_parser = parse_size)]
        size: u64,
        /// Region kind: auto, devdax, fsdax, file.
        #[arg(long, default_value = "auto", value_parser = parse_kind)]
        kind: RegionKind,
        /// Initial epoch.
        #[arg(long, default_value_t = 1)]
        epoch: u32,
        /// Ring capacity (default: the whole region after the 4 KiB metadata page).
        #[arg(long, value_parser = parse_size)]
        capacity: Option<u64>,
        /// Destroy an existing log at PATH.
        #[arg(long)]
        force: bool,
    },
    /// Check every record up to the persisted tail; exit 1 on corruption.
    Verify {
        /// Region path.
        path: PathBuf,
        /// Region kind: auto, devdax, fsdax, file.
        #[arg(long, default_value = "auto", value_parser = parse_kind)]
        kind: RegionKind,
    },
    /// Print the valid records from the head to the tail.
    Dump {
        /// Region path.
        path: PathBuf,
        /// One JSON object per record (lsn, pos, epoch, kind, len, crc).
        #[arg(long)]
        jsonl: bool,
        /// Include the payload as hex.
        #[arg(long)]
        payload: bool,
        /// Region kind: auto, devdax, fsdax, file.
        #[arg(long, default_value = "auto", value_parser = parse_kind)]
        kind: RegionKind,
    },
    /// Print the superblock, control block and scan totals.
    Stat {
        /// Region path.
        path: PathBuf,
        /// Region kind: auto, devdax, fsdax, file.
        #[arg(long, default_value = "auto", value_parser = parse_kind)]
        kind: RegionKind,
    },
}

fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        None => (s, 1u64),
        Some((i, _)) => {
            let m = match s[i..]
                .to_ascii_uppercase()
                .trim_end_matches("IB")
                .trim_end_matches('B')
            {
                "" => 1,
                "K" => 1 << 10,
                "M" => 1 << 20,
                "G" => 1 << 30,
                "T" => 1 << 40,
                other => return Err(format!("unknown size suffix {other:?}: use K, M, G or T")),
            };
            (&s[..i], m)
        }
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("not a size: {s:?} (e.g. 64M)"))?;
    n.checked_mul(mult)
        .ok_or_else(|| format!("size {s} overflows"))
}

fn parse_kind(s: &str) -> Result<RegionKind, String> {
    RegionKind::from_name(s)
        .ok_or_else(|| format!("unknown kind {s:?}: auto, devdax, fsdax or file"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Create {
            path,
            size,
            kind,
            epoch,
            capacity,
            force,
        } => create(&path, size, kind, epoch, capacity, force),
        Cmd::Verify { path, kind } => with_image(&path, kind, verify),
        Cmd::Dump {
            path,
            jsonl,
            payload,
            kind,
        } => with_image(&path, kind, |p, img| dump(p, img, jsonl, payload)),
        Cmd::Stat { path, kind } => with_image(&path, kind, stat),
    }
}

fn create(
    path: &Path,
    size: u64,
    kind: RegionKind,
    epoch: u32,
    capacity: Option<u64>,
    force: bool,
) -> ExitCode {
    let opts = CreateOptions {
        kind,
        epoch,
        uuid: None,
        overwrite: force,
        capacity,
    };
    match Log::create(path, size, &opts) {
        Ok(log) => {
            let sb = log.superblock();
            println!(
                "created {} kind={} uuid={} epoch={} ring_offset={} capacity_bytes={} max_record_bytes={}",
                path.display(),
                log.region().kind().name(),
                sb.uuid_string(),
                sb.epoch,
                sb.geometry.ring_offset,
                sb.geometry.capacity,
                log.max_payload()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tg-log create: {e}");
            ExitCode::from(2)
        }
    }
}

/// Maps the region read-only and hands its image to `f`.
fn with_image(
    path: &Path,
    kind: RegionKind,
    f: impl FnOnce(&Path, &Image<'_, Region>) -> ExitCode,
) -> ExitCode {
    let region = match Region::open_with(path, kind, Access::ReadOnly) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tg-log: {e}");
            return ExitCode::from(2);
        }
    };
    // Read by copying out of the mapping: the log may be live (a host
    // appending, a NIC writing a replica's ring) while this reads it.
    match Image::read(&region) {
        Ok(img) => f(path, &img),
        Err(e) => {
            eprintln!("tg-log: {}: {e}", path.display());
            ExitCode::from(1)
        }
    }
}

fn stop_text(r: StopReason) -> String {
    match r {
        StopReason::Fault(f) => format!("next record invalid: {f}"),
        StopReason::RingFull => "ring full".to_owned(),
        _ => "unknown".to_owned(),
    }
}

fn verify(path: &Path, img: &Image<'_, Region>) -> ExitCode {
    match img.verify() {
        Ok(s) => {
            let c = img.control();
            println!(
                "ok: {} records, LSN {}..{}, positions {}..{} (persisted tail {}); end: {}",
                s.records,
                s.start.lsn,
                s.stop.at.lsn,
                s.start.pos,
                s.stop.at.pos,
                c.persisted.pos,
                stop_text(s.stop.reason)
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tg-log verify: {}: {e}", path.display());
            ExitCode::from(1)
        }
    }
}

/// The header's `len` field: payload bytes, or for padding the bytes it
/// fills after its header.
fn header_len(r: &Record<'_>) -> u64 {
    if r.kind == logcore::RecordKind::Padding {
        r.total_len - logcore::HEADER_LEN as u64
    } else {
        r.payload.len() as u64
    }
}

fn json_record(r: &Record<'_>, payload: bool) -> String {
    let mut s = format!(
        "{{\"lsn\":{},\"pos\":{},\"epoch\":{},\"kind\":\"{}\",\"len\":{},\"crc\":{}",
        r.lsn,
        r.pos,
        r.epoch,
        r.kind.name(),
        header_len(r),
        r.crc
    );
    if payload {
        s.push_str(",\"payload\":\"");
        for b in r.payload {
            let _ = write!(s, "{b:02x}");
        }
        s.push('"');
    }
    s.push('}');
    s
}

fn dump(path: &Path, img: &Image<'_, Region>, jsonl: bool, payload: bool) -> ExitCode {
    let mut scan = match img.scan() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tg-log dump: {}: {e}", path.display());
            return ExitCode::from(1);
        }
    };
    use std::io::Write;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    while let Some(rec) = scan.next_record() {
        match rec {
            Ok(r) => {
                let line = if jsonl {
                    json_record(&r, payload)
                } else {
                    format!(
                        "lsn={} pos={} epoch={} kind={} len={} crc={:#010x}",
                        r.lsn,
                        r.pos,
                        r.epoch,
                        r.kind.name(),
                        header_len(&r),
                        r.crc
                    )
                };
                if writeln!(out, "{line}").is_err() {
                    return ExitCode::SUCCESS; // reader went away (| head)
                }
            }
            Err(e) => {
                let _ = out.flush();
                eprintln!("tg-log dump: {}: {e}", path.display());
                return ExitCode::from(1);
            }
        }
    }
    let _ = out.flush();
    ExitCode::SUCCESS
}

fn stat(path: &Path, img: &Image<'_, Region>) -> ExitCode {
    let sb = img.superblock();
    let c = img.control();
    println!("path: {}", path.display());
    println!("uuid: {}", sb.uuid_string());
    println!("format_version: {}", logcore::FORMAT_VERSION);
    println!("created_unix_ms: {}", sb.created_unix_ms);
    println!("region_len_bytes: {}", sb.region_len);
    println!("ring_offset: {}", sb.geometry.ring_offset);
    println!("ring_capacity_bytes: {}", sb.geometry.capacity);
    println!("epoch: created {} current {}", sb.epoch, c.epoch);
    println!("state: {} (host pid {})", c.state.name(), c.host_pid);
    println!("incarnation: {}", c.incarnation);
    println!("heartbeat: {}", c.heartbeat);
    println!("closure_pid: {} (beat {})", c.closure_pid, c.closure_beat);
    println!("head: pos {} lsn {}", c.head.pos, c.head.lsn);
    println!(
        "persisted_tail: pos {} lsn {}",
        c.persisted.pos, c.persisted.lsn
    );
    println!(
        "remote_durable_tail: pos {} lsn {}",
        c.remote_durable.pos, c.remote_durable.lsn
    );
    println!("flush_method: {}", logcore::flush_method().name());
    match img.verify() {
        Ok(s) => {
            println!("records: {}", s.records);
            println!("scanned_tail: pos {} lsn {}", s.stop.at.pos, s.stop.at.lsn);
            println!("used_bytes: {} of {}", s.bytes, sb.geometry.capacity);
            println!("end: {}", stop_text(s.stop.reason));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tg-log stat: {}: {e}", path.display());
            ExitCode::from(1)
        }
    }
}
