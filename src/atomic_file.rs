//! Files are written under a temporary name and renamed when complete, so that an interrupted
//! run never leaves a partial file under a final name.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// The temporary name used while `path` is being written: `.NAME.tmp` beside it.
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp"))
}

/// Writes `bytes` to `path` atomically (temporary file, fsync-free rename).
///
/// # Errors
/// I/O errors naming the file.
pub fn write(path: &Path, bytes: impl AsRef<[u8]>) -> Result<()> {
    let tmp = temp_path(path);
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    commit(&tmp, path)
}

/// Renames a finished temporary file to its final name.
///
/// # Errors
/// I/O errors naming the file.
pub fn commit(tmp: &Path, path: &Path) -> Result<()> {
    std::fs::rename(tmp, path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
}

/// Serialises `value` as pretty JSON into `path` atomically.
///
/// # Errors
/// I/O errors naming the file.
pub fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    write(path, text)
}

/// Reads and parses a JSON file, naming it (and the line and column) in errors.
///
/// # Errors
/// I/O and parse errors.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}
