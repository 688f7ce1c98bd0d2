//! The restart command runs without a shell and a command that cannot be
//! started is reported with its program and the fix.

use closure::takeover::spawn_restart;

#[test]
fn a_missing_program_is_named() {
    let e = spawn_restart(&["/nonexistent/tg-restart".to_owned()])
        .unwrap_err()
        .to_string();
    assert!(e.contains("/nonexistent/tg-restart"), "{e}");
    assert!(e.contains("closure.restart"), "{e}");
}

#[test]
fn an_empty_command_is_refused() {
    assert!(spawn_restart(&[]).is_err());
}

#[test]
fn the_command_runs_with_its_arguments() {
    let dir = std::env::temp_dir().join(format!("tg-restart-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let marker = dir.join("ran");
    let pid = spawn_restart(&["touch".to_owned(), marker.display().to_string()]).unwrap();
    assert!(pid > 0);
    let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !marker.exists() {
        assert!(
            std::time::Instant::now() < end,
            "the restart command did not run"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    std::fs::remove_dir_all(dir).unwrap();
}
