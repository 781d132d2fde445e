//! A trained model as the car's driver.

use std::path::Path;

use anyhow::{Context, Result};
use raceloop_learn::model::ENSEMBLE_RULE;
use raceloop_learn::policy::{MODEL_FILE, STATS_FILE, WEIGHTS_FILE};
use raceloop_learn::{ModelConfig, Policy};
use raceloop_sim::Action;
use sha2::{Digest, Sha256};

use super::plugin::ScanPolicy;

/// Drives with a loaded model directory: steering (and speed, for 2-output models) from each
/// scan (and the ego speed, for a model that reads it).
pub struct ModelDriver(pub Policy);

impl ScanPolicy for ModelDriver {
    fn act(&mut self, ranges: &[f32], ego_speed: f64) -> Action {
        let (steering, speed) = self.0.act(ranges, ego_speed as f32);
        Action {
            steering: steering as f64,
            speed: speed as f64,
        }
    }
}

/// What a model's commands depend on: a digest (16 hex digits) of the weights, `model.json` and
/// `stats.json` in `model_dir`, an ensemble's rule of combining its members
/// ([`ENSEMBLE_RULE`]), the rounding class of the inference path that this CPU takes
/// ([`raceloop_learn::kernel::Kernel::numerics`]) and the CPU architecture: the C library's
/// `tanhf` rounds differently on x86-64 and aarch64 (a hash over 8.4 M inputs differs), so
/// the same weights and products still give different commands. Keys evaluations and DAgger
/// runs.
///
/// # Errors
/// An unreadable model file or a malformed `model.json`, named.
pub fn model_digest(model_dir: &Path) -> Result<String> {
    let mut h = Sha256::new();
    let mut members = 1;
    for file in [WEIGHTS_FILE, MODEL_FILE, STATS_FILE] {
        let path = model_dir.join(file);
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        if file == MODEL_FILE {
            let config: ModelConfig = serde_json::from_slice(&bytes)
                .with_context(|| format!("parsing {}", path.display()))?;
            members = config.members;
        }
        h.update(bytes);
    }
    if members > 1 {
        h.update(ENSEMBLE_RULE.as_bytes());
    }
    h.update(
        raceloop_learn::kernel::Kernel::choose()
            .numerics()
            .as_bytes(),
    );
    h.update(std::env::consts::ARCH.as_bytes());
    Ok(crate::config::hex(&h.finalize()[..8]))
}
