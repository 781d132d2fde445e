//! raceloop's one home for writing files safely: a file is written under a temporary name
//! (`.NAME.tmp` beside it) and renamed when complete, so an interrupted run never leaves a
//! partial file under a final name. Also JSON reads that name the file, line and column, and
//! sorted file listings with `/`-separated relative paths (MLflow artifact paths, DVC listings).

use std::path::{Path, PathBuf};

/// A file operation that failed; the message names the file.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// Reading, writing, renaming or listing failed.
    #[error("{action} {path}: {error}")]
    Io {
        /// What was being done: `reading`, `writing`, `renaming … to`, `listing`.
        action: String,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        error: std::io::Error,
    },
    /// A JSON file did not parse, or a value did not serialise.
    #[error("{path}: {error}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The cause, with line and column for parse errors.
        error: serde_json::Error,
    },
}

impl FileError {
    fn io(action: &str, path: &Path, error: std::io::Error) -> Self {
        Self::Io {
            action: action.into(),
            path: path.to_path_buf(),
            error,
        }
    }
}

/// Result alias of this crate.
pub type Result<T, E = FileError> = std::result::Result<T, E>;

/// The temporary name used while `path` is being written: `.NAME.tmp` beside it.
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp"))
}

/// Writes `bytes` to `path` atomically: to [`temp_path`] first, then renamed (no fsync).
///
/// # Errors
/// [`FileError::Io`] naming the temporary or final file.
pub fn write(path: &Path, bytes: impl AsRef<[u8]>) -> Result<()> {
    let tmp = temp_path(path);
    std::fs::write(&tmp, bytes).map_err(|e| FileError::io("writing", &tmp, e))?;
    commit(&tmp, path)
}

/// Renames a finished temporary file (see [`temp_path`]) to its final name.
///
/// # Errors
/// [`FileError::Io`] naming both files.
pub fn commit(tmp: &Path, path: &Path) -> Result<()> {
    std::fs::rename(tmp, path)
        .map_err(|e| FileError::io(&format!("renaming {} to", tmp.display()), path, e))
}

/// Replaces directory `dir` by the finished directory `staged` (written under [`temp_path`]
/// of `dir`, so beside it): the old `dir` is first renamed to `.NAME.old`, then `staged` takes
/// its name, then the old one is removed. An interrupted replacement leaves either the old
/// directory, or none, under the final name, never a mix of old and new files.
///
/// # Errors
/// [`FileError::Io`] naming the directory.
pub fn replace_dir(staged: &Path, dir: &Path) -> Result<()> {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let old = dir.with_file_name(format!(".{name}.old"));
    remove(&old)?;
    if dir.exists() {
        commit(dir, &old)?;
    }
    commit(staged, dir)?;
    remove(&old)
}

/// Serialises `value` as pretty JSON (with a final newline) into `path` atomically.
///
/// # Errors
/// [`FileError`] naming the file.
pub fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value).map_err(|error| FileError::Json {
        path: path.to_path_buf(),
        error,
    })?;
    text.push('\n');
    write(path, text)
}

/// Reads and parses a JSON file.
///
/// # Errors
/// [`FileError::Io`] when unreadable, [`FileError::Json`] with line and column when malformed.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| FileError::io("reading", path, e))?;
    serde_json::from_str(&text).map_err(|error| FileError::Json {
        path: path.to_path_buf(),
        error,
    })
}

/// Removes `path`, a file or a whole directory; nothing when it does not exist.
///
/// # Errors
/// [`FileError::Io`] naming the path.
pub fn remove(path: &Path) -> Result<()> {
    let removed = if path.is_dir() {
        std::fs::remove_dir_all(path)
    } else if path.exists() {
        std::fs::remove_file(path)
    } else {
        Ok(())
    };
    removed.map_err(|e| FileError::io("removing", path, e))
}

/// The files under `root` (`root` itself when it is a file), each with its path relative to
/// `base`, `/`-separated, sorted by that path.
///
/// # Errors
/// [`FileError::Io`] naming an unreadable directory.
pub fn files_under(root: &Path, base: &Path) -> Result<Vec<(PathBuf, String)>> {
    let mut out = Vec::new();
    for entry in walkdir::WalkDir::new(root) {
        let entry = entry.map_err(|e| {
            let path = e.path().unwrap_or(root).to_path_buf();
            FileError::io("listing", &path, e.into())
        })?;
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

#[cfg(test)]
mod tests {
    #[test]
    fn replace_dir_swaps_whole_directories() {
        let root = std::env::temp_dir().join(format!("raceloop-files-swap-{}", std::process::id()));
        let dir = root.join("model");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("old-only"), "old").unwrap();
        std::fs::write(dir.join("weights"), "old").unwrap();
        let staged = super::temp_path(&dir);
        std::fs::create_dir_all(&staged).unwrap();
        std::fs::write(staged.join("weights"), "new").unwrap();
        super::replace_dir(&staged, &dir).unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("weights")).unwrap(), "new");
        assert!(
            !dir.join("old-only").exists(),
            "no file of the old directory is left"
        );
        assert!(!staged.exists() && !root.join(".model.old").exists());
        // Into a place where nothing was.
        let fresh = root.join("fresh");
        std::fs::create_dir_all(super::temp_path(&fresh)).unwrap();
        super::replace_dir(&super::temp_path(&fresh), &fresh).unwrap();
        assert!(fresh.is_dir());
        std::fs::remove_dir_all(&root).unwrap();
    }

    use super::*;

    #[test]
    fn writes_replace_atomically_and_errors_name_the_file() {
        let dir = std::env::temp_dir().join(format!("raceloop-files-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        let path = dir.join("a.json");
        write_json(&path, &serde_json::json!({"x": 1})).unwrap();
        write_json(&path, &serde_json::json!({"x": 2})).unwrap();
        assert!(!temp_path(&path).exists());
        let v: serde_json::Value = read_json(&path).unwrap();
        assert_eq!(v["x"], 2);
        std::fs::write(dir.join("sub").join("bad.json"), "{\n  \"x\": ,\n}").unwrap();
        let e = read_json::<serde_json::Value>(&dir.join("sub").join("bad.json"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("bad.json") && e.contains("line 2"), "{e}");
        let e = read_json::<serde_json::Value>(&dir.join("none.json"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("reading ") && e.contains("none.json"), "{e}");
        let listed: Vec<String> = files_under(&dir, &dir)
            .unwrap()
            .into_iter()
            .map(|(_, rel)| rel)
            .collect();
        assert_eq!(listed, ["a.json", "sub/bad.json"]);
        remove(&dir.join("sub")).unwrap();
        remove(&dir.join("a.json")).unwrap();
        remove(&dir.join("none")).unwrap();
        assert!(files_under(&dir, &dir).unwrap().is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
