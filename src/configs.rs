//! Per-area RON config files (`configs/*.ron`), with the shipped files compiled in as defaults.

use std::path::Path;

use anyhow::{Result, bail};
use serde::de::DeserializeOwned;

/// Reads `dir/file`, or the shipped `shipped` text where that file is absent. The default
/// `configs` directory may itself be absent (running outside the repository); any other missing
/// directory is an error, so that a mistyped `--configs` is not silently ignored.
///
/// # Errors
/// A missing non-default directory; read and parse errors naming file, line, column and field.
pub fn load_area<T: DeserializeOwned>(dir: &Path, file: &str, shipped: &str) -> Result<T> {
    if !dir.is_dir() && dir != Path::new("configs") {
        bail!("config directory {} not found", dir.display());
    }
    let path = dir.join(file);
    Ok(if path.is_file() {
        let text = std::fs::read_to_string(&path)?;
        raceloop_sim::config::parse_ron(&path, &text)?
    } else {
        raceloop_sim::config::parse_ron(&Path::new("configs").join(file), shipped)?
    })
}
