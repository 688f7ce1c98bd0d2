//! `tg-closure`: not built yet; tracked by issue #5.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    eprintln!("tg-closure: not built yet (issue #5); see README.md for what exists today");
    std::process::ExitCode::from(2)
}
