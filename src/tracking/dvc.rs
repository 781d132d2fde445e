//! DVC 3 pointer files for dataset versions: `datasets/<version>.dvc` beside
//! `datasets/<version>/`, so that `dvc status` and `dvc add`/`dvc checkout` accept data that
//! raceloop wrote without DVC.
//!
//! Format (DVC 3, `hash: md5`): the directory's hash is the md5 of its `.dir` listing, a JSON
//! list of `{"md5": <file md5>, "relpath": <path>}` sorted by `relpath` and serialised as
//! Python's `json.dumps(..., sort_keys=True)` does (`", "` and `": "` separators).
//! Reference: <https://dvc.org/doc/user-guide/project-structure/dvc-files>.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use md5::{Digest, Md5};

use crate::config::hex;

/// The `.dvc` file of a dataset directory: `<dir>.dvc`.
pub fn dvc_file(dir: &Path) -> PathBuf {
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push(".dvc");
    dir.with_file_name(name)
}

/// The `.dir` listing of `dir` (what DVC hashes) and the total size and count of its files.
///
/// # Errors
/// I/O errors.
pub fn dir_listing(dir: &Path) -> Result<(String, u64, usize)> {
    let files = raceloop_files::files_under(dir, dir)?;
    let mut size = 0;
    let mut entries = Vec::new();
    for (path, rel) in &files {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        size += bytes.len() as u64;
        entries.push(format!(
            "{{\"md5\": \"{}\", \"relpath\": {}}}",
            hex(&Md5::digest(&bytes)),
            serde_json::to_string(rel)?
        ));
    }
    Ok((format!("[{}]", entries.join(", ")), size, files.len()))
}

/// Writes `<dir>.dvc` for the directory `dir`. Returns its path.
///
/// # Errors
/// I/O errors.
pub fn write(dir: &Path) -> Result<PathBuf> {
    let (listing, size, nfiles) = dir_listing(dir)?;
    let name = dir
        .file_name()
        .context("a dataset directory has a name")?
        .to_string_lossy();
    let text = format!(
        "outs:\n- md5: {}.dir\n  size: {size}\n  nfiles: {nfiles}\n  hash: md5\n  path: {name}\n",
        hex(&Md5::digest(listing.as_bytes()))
    );
    let path = dvc_file(dir);
    raceloop_files::write(&path, text)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_matches_dvc_format() {
        let dir = std::env::temp_dir().join(format!("raceloop-dvc-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("b.txt"), "b").unwrap();
        std::fs::write(dir.join("sub").join("a.txt"), "").unwrap();
        let (listing, size, n) = dir_listing(&dir).unwrap();
        // md5("b") and md5("").
        assert_eq!(
            listing,
            "[{\"md5\": \"92eb5ffee6ae2fec3ad71c777531578f\", \"relpath\": \"b.txt\"}, \
             {\"md5\": \"d41d8cd98f00b204e9800998ecf8427e\", \"relpath\": \"sub/a.txt\"}]"
        );
        assert_eq!((size, n), (1, 2));
        let dvc = write(&dir).unwrap();
        assert!(std::fs::read_to_string(&dvc).unwrap().contains("nfiles: 2"));
        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::remove_file(dvc).unwrap();
    }
}
