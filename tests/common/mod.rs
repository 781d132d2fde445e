//! Helpers shared by the integration tests.

use std::ffi::OsStr;
use std::process::Command;

/// Runs `tests/<script>` with `python` and the arguments, and parses what it prints as JSON.
/// Panics with the script's stderr when it fails.
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
