//! Where a run's results go: the table on stdout, `--json FILE` or
//! `--json -` (stdout, alone: the table moves to stderr), `--plot FILE.svg`,
//! and a `wrote FILE` line on stderr for each file written.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// Where `--json` writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum JsonOut {
    /// `--json -`: standard output, holding the JSON and nothing else.
    Stdout,
    /// `--json FILE`.
    File(PathBuf),
}

impl JsonOut {
    /// Parses `--json`'s value: `-` is stdout, anything else a file name.
    pub(crate) fn parse(s: &str) -> Result<JsonOut, String> {
        match s {
            "-" => Ok(JsonOut::Stdout),
            "" => Err("give a FILE.json, or - for stdout".into()),
            _ => Ok(JsonOut::File(PathBuf::from(s))),
        }
    }
}

/// An output file's folder must exist before a long run starts, not after.
pub(crate) fn check_output(flag: &str, path: Option<&PathBuf>, ext: &str) -> Result<(), String> {
    let Some(p) = path else { return Ok(()) };
    if p.extension().and_then(|e| e.to_str()) != Some(ext) {
        return Err(format!(
            "{flag} {}: the file name must end in .{ext}",
            p.display()
        ));
    }
    let dir = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(format!(
            "{flag} {}: folder {} does not exist: create it first",
            p.display(),
            dir.display()
        ));
    }
    Ok(())
}

/// Where one run's results go, checked before the run starts.
#[derive(Debug)]
pub(crate) struct Sink {
    json: Option<JsonOut>,
    quiet: bool,
}

impl Sink {
    /// Checks `--json` (a file's name and folder; `-` needs no check).
    pub(crate) fn new(json: Option<JsonOut>, quiet: bool) -> Result<Sink, String> {
        if let Some(JsonOut::File(p)) = &json {
            check_output("--json", Some(p), "json")?;
        }
        Ok(Sink { json, quiet })
    }

    /// Whether the JSON goes to stdout (which then holds nothing else).
    pub(crate) fn json_on_stdout(&self) -> bool {
        self.json == Some(JsonOut::Stdout)
    }

    /// Prints a results table: on stdout, or, when the JSON takes stdout,
    /// on stderr (and with `--quiet` not at all).
    pub(crate) fn table(&self, text: &str) {
        match (self.json_on_stdout(), self.quiet) {
            (false, _) => println!("{text}"),
            (true, false) => eprintln!("{text}"),
            (true, true) => {}
        }
    }

    /// Writes the run's JSON document where `--json` said, if anywhere.
    pub(crate) fn json(&self, v: &Value) -> Result<(), String> {
        let text = serde_json::to_string_pretty(v).expect("serialisable");
        match &self.json {
            None => {}
            Some(JsonOut::Stdout) => println!("{text}"),
            Some(JsonOut::File(p)) => {
                std::fs::write(p, text).map_err(|e| format!("--json {}: {e}", p.display()))?;
                self.announce(Some(p));
            }
        }
        Ok(())
    }

    /// `wrote FILE` on stderr, so a script's log says where the results went.
    pub(crate) fn announce(&self, path: Option<&PathBuf>) {
        if let (Some(p), false) = (path, self.quiet) {
            eprintln!("tg-bench: wrote {}", p.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dash_is_stdout_and_anything_else_a_file() {
        assert_eq!(JsonOut::parse("-"), Ok(JsonOut::Stdout));
        assert_eq!(
            JsonOut::parse("out/lat.json"),
            Ok(JsonOut::File("out/lat.json".into()))
        );
        assert!(JsonOut::parse("").unwrap_err().contains("- for stdout"));
        // `-` is not checked as a file name; a file still is.
        let s = Sink::new(Some(JsonOut::Stdout), false).unwrap();
        assert!(s.json_on_stdout());
        let e = Sink::new(Some(JsonOut::File("lat.txt".into())), false).unwrap_err();
        assert_eq!(e, "--json lat.txt: the file name must end in .json");
        assert!(!Sink::new(None, false).unwrap().json_on_stdout());
    }
}
