//! A trained model directory as a driving policy: scan (m) → steering (rad), speed (m/s).
//!
//! A model directory holds `weights.safetensors` (Burn's `SafetensorsStore`: one network, or an
//! [`Ensemble`]'s members), `model.json` ([`ModelConfig`]) and `stats.json` (the dataset
//! [`Stats`] used for normalisation), plus the training records written beside them.

use std::path::Path;

use burn::prelude::*;
use burn::store::{ModuleSnapshot, SafetensorsStore};
use burn::tensor::TensorData;

use crate::dataset::Stats;
use crate::error::{LearnError, Result};
use crate::kernel::Kernel;
use crate::model::{Ensemble, Model, ModelConfig, forward_ensemble};
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
    save_module(model, dir)
}

/// Saves the members of an ensemble into `dir/weights.safetensors`: one member as
/// [`save_weights`] does, more as an [`Ensemble`] (tensors `members.J.…`).
///
/// # Errors
/// I/O errors naming the file.
///
/// # Panics
/// With no members.
pub fn save_members(members: &[Model], dir: &Path) -> Result<()> {
    match members {
        [] => panic!("an ensemble needs a member"),
        [model] => save_module(model, dir),
        _ => save_module(
            &Ensemble {
                members: members.to_vec(),
            },
            dir,
        ),
    }
}

fn save_module<M: ModuleSnapshot>(module: &M, dir: &Path) -> Result<()> {
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
    module.save_into(&mut store).map_err(|e| LearnError::File {
        path: tmp.clone(),
        message: e.to_string(),
    })?;
    Ok(raceloop_files::commit(&tmp, &path)?)
}

/// Loads `weights.safetensors` of `dir` into the [`ModelConfig::members`] networks built from
/// `config` on `device`, in seed order.
///
/// # Errors
/// Missing file, or tensors that do not match the configured network or member count (named).
pub fn load_weights(config: &ModelConfig, dir: &Path, device: &Device) -> Result<Vec<Model>> {
    let path = dir.join(WEIGHTS_FILE);
    if !path.is_file() {
        return Err(LearnError::File {
            path,
            message: "missing (is this a model directory?)".into(),
        });
    }
    if config.members == 1 {
        let mut model = config.init(device);
        load_module(&mut model, config, &path)?;
        Ok(vec![model])
    } else {
        let mut ensemble = Ensemble {
            members: (0..config.members).map(|_| config.init(device)).collect(),
        };
        load_module(&mut ensemble, config, &path)?;
        Ok(ensemble.members)
    }
}

fn load_module<M: ModuleSnapshot>(module: &mut M, config: &ModelConfig, path: &Path) -> Result<()> {
    let mut store = SafetensorsStore::from_file(path)
        .validate(true)
        .allow_partial(false);
    let applied = module.load_from(&mut store).map_err(|e| LearnError::File {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    if !applied.errors.is_empty() || !applied.missing.is_empty() || !applied.unused.is_empty() {
        return Err(LearnError::File {
            path: path.to_path_buf(),
            message: format!(
                "weights do not fit {:?} with {} member(s): missing {:?}, unused {:?}, errors {:?}",
                config.architecture,
                config.members,
                applied.missing,
                applied.unused,
                applied.errors
            ),
        });
    }
    Ok(())
}

/// Loads a model directory onto the CPU (`flex`) device: its networks (one per ensemble member),
/// `model.json` and `stats.json`.
///
/// # Errors
/// Missing or malformed `model.json`, `stats.json` or weights, or a `stats.json` for another
/// beam count, named.
pub fn load_dir(dir: &Path) -> Result<(Vec<Model>, ModelConfig, Stats)> {
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
    let models = load_weights(&config, dir, &Device::flex())?;
    Ok((models, config, stats))
}

/// A loaded model ready to drive. Scans go through the [`PackedNet`] copy of each network
/// (the same outputs as Burn's forward pass, several times faster for one scan) where
/// [`Kernel::choose`] picks a packed kernel, else through Burn's forward pass. An ensemble's
/// command is the trimmed mean of its members' normalised outputs (as [`Ensemble::forward`]).
#[derive(Clone, Debug)]
pub struct Policy {
    models: Vec<Model>,
    packed: Vec<PackedNet>,
    kernel: Kernel,
    config: ModelConfig,
    stats: Stats,
    device: Device,
    input: Vec<f32>,
    output: Vec<f32>,
    sum: Vec<f32>,
    max: Vec<f32>,
    min: Vec<f32>,
}

impl Policy {
    /// Loads a model directory onto the CPU (`flex`) device.
    ///
    /// # Errors
    /// Missing or malformed `model.json`, `stats.json` or weights, named.
    pub fn load(dir: &Path) -> Result<Self> {
        let (models, config, stats) = load_dir(dir)?;
        Ok(Self::from_members(models, config, stats, Device::flex()))
    }

    /// Wraps an in-memory model (one network).
    pub fn new(model: Model, config: ModelConfig, stats: Stats, device: Device) -> Self {
        Self::from_members(vec![model], config, stats, device)
    }

    /// Wraps the in-memory members of an ensemble, in seed order.
    ///
    /// # Panics
    /// With no members.
    pub fn from_members(
        models: Vec<Model>,
        config: ModelConfig,
        stats: Stats,
        device: Device,
    ) -> Self {
        assert!(!models.is_empty(), "a policy needs a network");
        let models: Vec<Model> = models.into_iter().map(|m| m.valid()).collect();
        Self {
            packed: models
                .iter()
                .map(|m| PackedNet::new(m, config.num_beams))
                .collect(),
            kernel: Kernel::choose(),
            models,
            input: Vec::with_capacity(config.inputs()),
            output: vec![0.0; config.outputs],
            sum: vec![0.0; config.outputs],
            max: vec![0.0; config.outputs],
            min: vec![0.0; config.outputs],
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
        self.packed = self
            .packed
            .into_iter()
            .map(|p| p.with_kernel(kernel))
            .collect();
        self.kernel = if kernel == Kernel::Burn {
            kernel
        } else {
            self.packed[0].kernel()
        };
        self
    }

    /// Arithmetic of one scan through every network (see [`PackedNet::flop`]).
    pub fn flop(&self) -> u64 {
        self.packed.iter().map(PackedNet::flop).sum()
    }

    /// Networks in the ensemble (1 for a single network).
    pub fn members(&self) -> usize {
        self.models.len()
    }

    /// The model configuration.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The normalisation statistics.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Steering (rad) and speed (m/s) for each of `scans` (`[n, num_beams]` ranges in m,
    /// row-major) taken at the ego speeds `speeds` (`[n]`, m/s; read only by a model with
    /// [`ModelConfig::speed_input`]).
    ///
    /// # Panics
    /// If `scans.len()` is not a multiple of `num_beams`, or `speeds` is not `[n]`.
    pub fn act_batch(&mut self, scans: &[f32], speeds: &[f32]) -> Vec<(f32, f32)> {
        if self.kernel == Kernel::Burn {
            return self.act_batch_burn(scans, speeds);
        }
        let beams = self.config.num_beams;
        assert_eq!(scans.len() % beams, 0, "scans must be [n, {beams}]");
        assert_eq!(speeds.len(), scans.len() / beams, "speeds must be [n]");
        scans
            .chunks_exact(beams)
            .zip(speeds)
            .map(|(scan, &speed)| {
                self.input.clear();
                self.input.extend_from_slice(scan);
                self.stats.normalize_scan(&mut self.input);
                if self.config.speed_input {
                    self.input.push(self.stats.normalize_speed_input(speed));
                }
                let k = self.packed.len();
                let (first, rest) = self.packed.split_first_mut().expect("a network");
                first.forward(&self.input, &mut self.sum);
                if !rest.is_empty() {
                    self.max.copy_from_slice(&self.sum);
                    self.min.copy_from_slice(&self.sum);
                    for net in rest.iter_mut() {
                        net.forward(&self.input, &mut self.output);
                        for (o, &y) in self.output.iter().enumerate() {
                            self.sum[o] += y;
                            self.max[o] = self.max[o].max(y);
                            self.min[o] = self.min[o].min(y);
                        }
                    }
                    // As `forward_ensemble`: the mean of 2, the trimmed mean of 3 or more.
                    for o in 0..self.sum.len() {
                        self.sum[o] = if k == 2 {
                            self.sum[o] / 2.0
                        } else {
                            (self.sum[o] - self.max[o] - self.min[o]) / (k - 2) as f32
                        };
                    }
                }
                self.stats.denormalize(&self.sum)
            })
            .collect()
    }

    /// The same as [`Policy::act_batch`] through Burn's forward pass on the policy's device
    /// (the reference that [`PackedNet`] is checked against).
    ///
    /// # Panics
    /// As [`Policy::act_batch`].
    pub fn act_batch_burn(&mut self, scans: &[f32], speeds: &[f32]) -> Vec<(f32, f32)> {
        let beams = self.config.num_beams;
        assert_eq!(scans.len() % beams, 0, "scans must be [n, {beams}]");
        let n = scans.len() / beams;
        assert_eq!(speeds.len(), n, "speeds must be [n]");
        self.input.clear();
        for (scan, &speed) in scans.chunks_exact(beams).zip(speeds) {
            let start = self.input.len();
            self.input.extend_from_slice(scan);
            self.stats.normalize_scan(&mut self.input[start..]);
            if self.config.speed_input {
                self.input.push(self.stats.normalize_speed_input(speed));
            }
        }
        let x = Tensor::<3>::from_data(
            TensorData::new(self.input.clone(), [n, 1, self.config.inputs()]),
            &self.device,
        );
        let out = forward_ensemble(&self.models, x).into_data();
        let values = out.as_slice::<f32>().expect("f32 outputs");
        values
            .chunks_exact(self.config.outputs)
            .map(|o| self.stats.denormalize(o))
            .collect()
    }

    /// Steering (rad) and speed (m/s) for one scan (`[num_beams]` ranges in m) taken at the
    /// ego speed `speed` (m/s).
    pub fn act(&mut self, scan: &[f32], speed: f32) -> (f32, f32) {
        self.act_batch(scan, &[speed])[0]
    }
}
