//! Files under a path with `/`-separated paths relative to a base directory: MLflow artifact
//! and key paths, DVC directory listings.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// The files under `root` (`root` itself when it is a file), each with its path relative to
/// `base`, `/`-separated, sorted by that path.
///
/// # Errors
/// Unreadable directories, naming them.
pub fn files_under(root: &Path, base: &Path) -> Result<Vec<(PathBuf, String)>> {
    let mut out = Vec::new();
    for entry in walkdir::WalkDir::new(root) {
        let entry = entry.with_context(|| format!("listing {}", root.display()))?;
        if entry.file_type().is_file() {
            let rel: Vec<String> = entry
                .path()
                .strip_prefix(base)
                .unwrap_or(entry.path())
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            out.push((entry.path().to_path_buf(), rel.join("/")));
        }
    }
    out.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(out)
}
