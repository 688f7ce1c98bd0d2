use std::io;
use std::sync::{Arc, Mutex, PoisonError};

use super::*;

fn os(s: &str) -> Option<&OsStr> {
    Some(OsStr::new(s))
}

#[test]
fn the_flag_beats_tg_log_beats_rust_log_beats_the_default() {
    let d = "info";
    assert_eq!(
        choose_filter(os("debug"), os("warn"), os("error"), d),
        (FilterSource::Flag, OsStr::new("debug"))
    );
    assert_eq!(
        choose_filter(None, os("warn"), os("error"), d),
        (FilterSource::TgLog, OsStr::new("warn"))
    );
    assert_eq!(
        choose_filter(None, None, os("error"), d),
        (FilterSource::RustLog, OsStr::new("error"))
    );
    // An empty variable counts as unset (`TG_LOG= tg-replica ...`).
    assert_eq!(
        choose_filter(None, os(""), os(""), d),
        (FilterSource::Default, OsStr::new("info"))
    );
}

#[test]
fn a_bad_filter_names_where_it_came_from_and_how_to_write_one() {
    let e = parse_filter(FilterSource::TgLog, OsStr::new("replica=loud")).unwrap_err();
    assert_eq!(e.source, FilterSource::TgLog);
    let msg = e.to_string();
    assert!(
        msg.starts_with("TG_LOG: invalid log filter \"replica=loud\""),
        "{msg}"
    );
    assert!(msg.contains("warn,replica=debug"), "{msg}");
    use std::os::unix::ffi::OsStrExt as _;
    let e = parse_filter(FilterSource::Flag, OsStr::from_bytes(b"info\xff")).unwrap_err();
    assert!(e.to_string().contains("not UTF-8"), "{e}");
    assert!(parse_filter(FilterSource::Flag, OsStr::new("warn,replica::server=debug")).is_ok());
}

#[test]
fn colour_only_on_a_terminal_without_no_color() {
    assert!(use_ansi(true, None));
    assert!(use_ansi(true, os("")));
    assert!(!use_ansi(true, os("1")));
    assert!(!use_ansi(false, None), "colours into a pipe or journald");
}

/// A writer into a shared buffer.
#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl io::Write for Buf {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Buf {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

/// Logs one event per level from two targets under `filter`.
fn emit(format: LogFormat, filter: &str, ansi: bool) -> String {
    let buf = Buf::default();
    let w = buf.clone();
    let f = parse_filter(FilterSource::Flag, OsStr::new(filter)).unwrap();
    let sub = subscriber(format, f, ansi, move || w.clone());
    tracing::subscriber::with_default(sub, || {
        tracing::info!(target: "replica::server", epoch = 2, "writer admitted");
        tracing::debug!(target: "replica::server", "a debug line");
        tracing::debug!(target: "fabric::mirror", "a fabric debug line");
    });
    buf.text()
}

#[test]
fn json_lines_are_plain_objects_with_the_fields_at_the_top() {
    let out = emit(LogFormat::Json, "info", false);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "{out}");
    let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(v["level"], "INFO");
    assert_eq!(v["target"], "replica::server");
    assert_eq!(v["message"], "writer admitted");
    assert_eq!(v["epoch"], 2);
    assert!(v["timestamp"].is_string(), "{v}");
}

#[test]
fn directives_pick_targets_by_prefix() {
    let out = emit(LogFormat::Text, "info,replica=debug", false);
    assert!(
        out.contains("writer admitted") && out.contains("a debug line"),
        "{out}"
    );
    assert!(!out.contains("a fabric debug line"), "{out}");
    assert_eq!(emit(LogFormat::Text, "off", false), "");
}

#[test]
fn text_has_no_escape_codes_unless_asked() {
    let plain = emit(LogFormat::Text, "info", false);
    assert!(
        plain.contains("writer admitted") && plain.contains("epoch=2"),
        "{plain}"
    );
    assert!(!plain.contains('\x1b'), "ANSI in {plain:?}");
    assert!(emit(LogFormat::Text, "info", true).contains('\x1b'));
}
