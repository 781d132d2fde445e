//! A trained model directory as a driving policy: scan (m) → steering (rad), speed (m/s).
//!
//! A model directory holds `weights.safetensors` (Burn's `SafetensorsStore`), `model.json`
//! ([`ModelConfig`]) and `stats.json` (the dataset [`Stats`] used for normalisation), plus the
//! training records written beside them.

use std::path::Path;

use burn::prelude::*;
use burn::store::{ModuleSnapshot, SafetensorsStore};
use burn::tensor::TensorData;

use crate::dataset::Stats;
use crate::error::{LearnError, Result};
use crate::kernel::Kernel;
use crate::model::{Model, ModelConfig};
use crate::packed::PackedNet;

/// File names in a model directory.
pub const WEIGHTS_FILE: &str = "weights.safetensors";
/// Model configuration.
pub const MODEL_FILE: &str = "model.json";
/// Normalisation statistics.
pub const STATS_FILE: &str = "stats.json";

/// Saves the weights of `model` into `dir/weights.safetensors` (temporary name, then renamed).
///
/// # Errors
/// I/O errors naming the file.
pub fn save_weights(model: &Model, dir: &Path) -> Result<()> {
    let path = dir.join(WEIGHTS_FILE);
    let tmp = raceloop_files::temp_path(&path);
    // One metadata key: burn's default three sit in a HashMap, whose random order made two
    // identical trainings write different bytes.
    let mut store = SafetensorsStore::from_file(&tmp)
        .overwrite(true)
        .clear_metadata()
        .metadata(
            "producer",
            concat!("raceloop ", env!("CARGO_PKG_VERSION"), " (burn)"),
        );
    model.save_into(&mut store).map_err(|e| LearnError::File {
        path: tmp.clone(),
        message: e.to_string(),
    })?;
    Ok(raceloop_files::commit(&tmp, &path)?)
}

/// Loads `weights.safetensors` of `dir` into a model built from `config` on `device`.
///
/// # Errors
/// Missing file, or tensors that do not match the configured network (named).
pub fn load_weights(config: &ModelConfig, dir: &Path, device: &Device) -> Result<Model> {
    let path = dir.join(WEIGHTS_FILE);
    if !path.is_file() {
        return Err(LearnError::File {
            path,
            message: "missing (is this a model directory?)".into(),
        });
    }
    let mut model = config.init(device);
    let mut store = SafetensorsStore::from_file(&path)
        .validate(true)
        .allow_partial(false);
    let applied = model.load_from(&mut store).map_err(|e| LearnError::File {
        path: path.clone(),
        message: e.to_string(),
    })?;
    if !applied.errors.is_empty() || !applied.missing.is_empty() {
        return Err(LearnError::File {
            path,
            message: format!(
                "weights do not fit {:?}: missing {:?}, errors {:?}",
                config.architecture, applied.missing, applied.errors
            ),
        });
    }
    Ok(model)
}

/// Loads a model directory onto the CPU (`flex`) device: its network, `model.json` and
/// `stats.json`.
///
/// # Errors
/// Missing or malformed `model.json`, `stats.json` or weights, or a `stats.json` for another
/// beam count, named.
pub fn load_dir(dir: &Path) -> Result<(Model, ModelConfig, Stats)> {
    let config: ModelConfig = raceloop_files::read_json(&dir.join(MODEL_FILE))?;
    config.validate().map_err(|e| LearnError::File {
        path: dir.join(MODEL_FILE),
        message: e.to_string(),
    })?;
    let stats: Stats = raceloop_files::read_json(&dir.join(STATS_FILE))?;
    if stats.num_beams != config.num_beams {
        return Err(LearnError::File {
            path: dir.join(STATS_FILE),
            message: format!(
                "num_beams {} differs from model.json's {}",
                stats.num_beams, config.num_beams
            ),
        });
    }
    let model = load_weights(&config, dir, &Device::flex())?;
    Ok((model, config, stats))
}

/// A loaded model ready to drive. Scans go through the [`PackedNet`] copy of the network
/// (the same outputs as Burn's forward pass, several times faster for one scan) where
/// [`Kernel::choose`] picks a packed kernel, else through Burn's forward pass.
#[derive(Clone, Debug)]
pub struct Policy {
    model: Model,
    packed: PackedNet,
    kernel: Kernel,
    config: ModelConfig,
    stats: Stats,
    device: Device,
    input: Vec<f32>,
    output: Vec<f32>,
}

impl Policy {
    /// Loads a model directory onto the CPU (`flex`) device.
    ///
    /// # Errors
    /// Missing or malformed `model.json`, `stats.json` or weights, named.
    pub fn load(dir: &Path) -> Result<Self> {
        let (model, config, stats) = load_dir(dir)?;
        Ok(Self::new(model, config, stats, Device::flex()))
    }

    /// Wraps an in-memory model.
    pub fn new(model: Model, config: ModelConfig, stats: Stats, device: Device) -> Self {
        let model = model.valid();
        Self {
            packed: PackedNet::new(&model, config.num_beams),
            kernel: Kernel::choose(),
            model,
            input: Vec::with_capacity(config.num_beams),
            output: vec![0.0; config.outputs],
            config,
            stats,
            device,
        }
    }

    /// The code path of inference: a packed micro-kernel, or [`Kernel::Burn`].
    pub fn kernel(&self) -> Kernel {
        self.kernel
    }

    /// Runs inference on `kernel` (for tests and benchmarks; a path that this CPU lacks runs
    /// the portable loops).
    pub fn with_kernel(mut self, kernel: Kernel) -> Self {
        self.packed = self.packed.with_kernel(kernel);
        self.kernel = if kernel == Kernel::Burn {
            kernel
        } else {
            self.packed.kernel()
        };
        self
    }

    /// Arithmetic of one scan through the network (see [`PackedNet::flop`]).
    pub fn flop(&self) -> u64 {
        self.packed.flop()
    }

    /// The model configuration.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The normalisation statistics.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Steering (rad) and speed (m/s) for each of `scans` (`[n, num_beams]` ranges in m, row-major).
    ///
    /// # Panics
    /// If `scans.len()` is not a multiple of `num_beams`.
    pub fn act_batch(&mut self, scans: &[f32]) -> Vec<(f32, f32)> {
        if self.kernel == Kernel::Burn {
            return self.act_batch_burn(scans);
        }
        let beams = self.config.num_beams;
        assert_eq!(scans.len() % beams, 0, "scans must be [n, {beams}]");
        scans
            .chunks_exact(beams)
            .map(|scan| {
                self.input.clear();
                self.input.extend_from_slice(scan);
                self.stats.normalize_scan(&mut self.input);
                self.packed.forward(&self.input, &mut self.output);
                self.stats.denormalize(&self.output)
            })
            .collect()
    }

    /// The same as [`Policy::act_batch`] through Burn's forward pass on the policy's device
    /// (the reference that [`PackedNet`] is checked against).
    ///
    /// # Panics
    /// If `scans.len()` is not a multiple of `num_beams`.
    pub fn act_batch_burn(&mut self, scans: &[f32]) -> Vec<(f32, f32)> {
        let beams = self.config.num_beams;
        assert_eq!(scans.len() % beams, 0, "scans must be [n, {beams}]");
        let n = scans.len() / beams;
        self.input.clear();
        self.input.extend_from_slice(scans);
        self.stats.normalize_scan(&mut self.input);
        let x = Tensor::<3>::from_data(
            TensorData::new(self.input.clone(), [n, 1, beams]),
            &self.device,
        );
        let out = self.model.forward(x).into_data();
        let values = out.as_slice::<f32>().expect("f32 outputs");
        values
            .chunks_exact(self.config.outputs)
            .map(|o| self.stats.denormalize(o))
            .collect()
    }

    /// Steering (rad) and speed (m/s) for one scan (`[num_beams]` ranges in m).
    pub fn act(&mut self, scan: &[f32]) -> (f32, f32) {
        self.act_batch(scan)[0]
    }
}
