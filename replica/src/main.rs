//! `tg-replica`: not built yet; tracked by issue #4.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    eprintln!("tg-replica: not built yet (issue #4); see README.md for what exists today");
    std::process::ExitCode::from(2)
}
