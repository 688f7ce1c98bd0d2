//! `tg-bench`: not built yet; tracked by issue #6.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    eprintln!("tg-bench: not built yet (issue #6); see README.md for what exists today");
    std::process::ExitCode::from(2)
}
