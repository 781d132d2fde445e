//! Helpers shared by the integration tests.

use std::ffi::OsStr;
use std::process::Command;

/// Runs `tests/<script>` with `python` and the arguments, and parses what it prints as JSON.
/// Panics with the script's stderr when it fails.
#[allow(dead_code)] // not every test file that uses this module runs Python
pub fn python_json(python: &str, script: &str, args: &[&OsStr]) -> serde_json::Value {
    let out = Command::new(python)
        .arg(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests")
                .join(script),
        )
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The one dataset version directory name under `datasets` (what `raceloop extract` made).
#[allow(dead_code)] // not every test file that uses this module extracts
pub fn dataset_version(datasets: &std::path::Path) -> String {
    std::fs::read_dir(datasets)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .find(|n| !n.ends_with(".dvc") && !n.starts_with('.'))
        .expect("a dataset version")
}
