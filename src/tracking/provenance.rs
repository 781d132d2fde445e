//! What built this binary: version, git commit, compiler.

use serde::Serialize;

/// raceloop's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Git commit of the build (`unknown` outside a checkout).
pub const GIT_COMMIT: &str = env!("RACELOOP_GIT_COMMIT");
/// Whether tracked files differed from the commit at build time.
pub const GIT_DIRTY: &str = env!("RACELOOP_GIT_DIRTY");
/// `rustc --version` of the build.
pub const RUSTC: &str = env!("RACELOOP_RUSTC");

/// Versions of the key crates, from `Cargo.lock` (`bevy 0.19.1, burn 0.22.1, ...`).
pub const CRATES: &str = env!("RACELOOP_CRATES");

/// The CPU model and logical core count (`/proc/cpuinfo` on Linux).
pub fn cpu() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!("{model} ({cores} cores)")
}

/// Versions recorded with every run.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct Versions {
    /// raceloop's version.
    pub raceloop: String,
    /// Git commit.
    pub git_commit: String,
    /// Whether the working tree was dirty.
    pub git_dirty: bool,
    /// Compiler.
    pub rustc: String,
}

impl Versions {
    /// This binary's versions.
    pub fn current() -> Self {
        Self {
            raceloop: VERSION.into(),
            git_commit: GIT_COMMIT.into(),
            git_dirty: GIT_DIRTY == "true",
            rustc: RUSTC.into(),
        }
    }
}
