//! Records the git commit (and whether the tree was dirty) for run provenance.
//! The dirty flag compares tracked files with HEAD at build time.
use std::process::Command;

fn main() {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = git(&["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
        .map(|s| !s.is_empty())
        .unwrap_or(false);
    println!("cargo:rustc-env=RACELOOP_GIT_COMMIT={commit}");
    println!("cargo:rustc-env=RACELOOP_GIT_DIRTY={dirty}");
    println!(
        "cargo:rustc-env=RACELOOP_RUSTC={}",
        Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    );
    let lock = std::fs::read_to_string("Cargo.lock").unwrap_or_default();
    let crates: Vec<String> = ["bevy", "bevy_rapier2d", "burn", "mcap", "foxglove", "rayon"]
        .iter()
        .filter_map(|name| {
            let key = format!("name = \"{name}\"\nversion = \"");
            let rest = &lock[lock.find(&key)? + key.len()..];
            Some(format!("{name} {}", &rest[..rest.find('"')?]))
        })
        .collect();
    println!("cargo:rustc-env=RACELOOP_CRATES={}", crates.join(", "));
    // Rerun when anything the binary is built from changes, so that the dirty flag is never
    // stale (a directory is scanned recursively), and when HEAD or the branch it names moves.
    for path in [
        "Cargo.lock",
        "Cargo.toml",
        "build.rs",
        "src",
        "crates",
        "configs",
        "tracks",
        "assets",
        ".git/HEAD",
        ".git/index",
        ".git/packed-refs",
    ] {
        // A path that does not exist would rerun this script on every build.
        if std::path::Path::new(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    if let Some(branch) = std::fs::read_to_string(".git/HEAD")
        .ok()
        .and_then(|head| head.strip_prefix("ref: ").map(|r| r.trim().to_string()))
        && std::path::Path::new(".git").join(&branch).exists()
    {
        println!("cargo:rerun-if-changed=.git/{branch}");
    }
}
