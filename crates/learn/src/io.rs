//! Small file helpers: atomic writes (temporary name, then rename) and JSON with named errors.

use std::path::Path;

use crate::error::{LearnError, Result};

/// Writes `bytes` to `.NAME.tmp` beside `path`, then renames it to `path`.
///
/// # Errors
/// I/O errors naming the file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&tmp, bytes).map_err(|e| LearnError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| LearnError::io(path, e))
}

/// Pretty JSON, written atomically.
///
/// # Errors
/// I/O errors naming the file.
pub fn write_json_atomic(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    let mut text =
        serde_json::to_string_pretty(value).map_err(|e| LearnError::Format(e.to_string()))?;
    text.push('\n');
    write_atomic(path, text.as_bytes())
}

/// Reads JSON, naming the file, line and column on error.
///
/// # Errors
/// I/O and parse errors.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| LearnError::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| LearnError::File {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}
