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

#[cfg(test)]
mod tests {
    /// The key crates' versions are those of `Cargo.lock`.
    #[test]
    fn crate_versions_come_from_the_lock_file() {
        let lock = include_str!("../../Cargo.lock");
        for entry in super::CRATES.split(", ") {
            let (name, version) = entry.split_once(' ').unwrap();
            assert!(
                !version.trim().is_empty()
                    && lock.contains(&format!("name = \"{name}\"\nversion = \"{version}\"")),
                "`{entry}` in {}",
                super::CRATES
            );
        }
        assert!(super::CRATES.starts_with("bevy 0."), "{}", super::CRATES);
    }

    /// The build script reruns when any source changes, so that the dirty flag of a binary
    /// built from edited, unstaged sources is never a stale `false`.
    #[test]
    fn the_build_script_reruns_on_any_source_change() {
        let output = std::path::Path::new(env!("OUT_DIR"))
            .parent()
            .unwrap()
            .join("output");
        let text = std::fs::read_to_string(&output).unwrap();
        for path in ["src", "crates", "configs", "Cargo.toml", ".git/index"] {
            assert!(
                text.lines()
                    .any(|l| l == format!("cargo:rerun-if-changed={path}")),
                "{}: no rerun on {path}:\n{text}",
                output.display()
            );
        }
    }
}
