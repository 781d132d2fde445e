//! Behavioral cloning: a manual Burn training loop with AdamW, mini-batches and validation.
//!
//! For Tiny Lidar Net on the CPU the loss gradients come from the hand-written backward pass of
//! [`crate::backprop`] (about 4× faster than Burn's autodiff on `flex`, and checked against it);
//! otherwise from Burn's autodiff. The CPU path keeps the parameters packed between batches and
//! updates them with [`crate::adamw`], which gives the same parameters as Burn's AdamW, bit for
//! bit; the autodiff path uses Burn's AdamW.

use std::time::Instant;

use burn::optim::{AdamWConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::TensorData;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};

use crate::adamw::AdamW;
use crate::backprop;
use crate::dataset::{Dataset, LABELS, Split, Stats};
use crate::error::{LearnError, Result};
use crate::kernel::Kernel;
use crate::loss::{LossKind, loss_tensor};
use crate::model::{Architecture, BURN_RNG, Model, ModelConfig, forward_ensemble};

/// Learning-rate schedule over the epochs.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Schedule {
    /// `lr` throughout.
    Constant,
    /// Cosine annealing per batch from `lr` down to this minimum.
    Cosine(f64),
}

/// Training configuration (`configs/training.ron`). Defaults follow the pipeline we replace:
/// AdamW, lr 3e-4, batch 64 (PyTorch's AdamW defaults for betas, ε 1e-8 and weight decay 1e-2).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Passes over the training split.
    pub epochs: usize,
    /// Samples per mini-batch.
    pub batch_size: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// AdamW decoupled weight decay.
    pub weight_decay: f32,
    /// AdamW ε.
    pub epsilon: f32,
    /// AdamW β1, β2.
    pub betas: [f32; 2],
    /// Loss.
    pub loss: LossKind,
    /// Learning-rate schedule.
    pub schedule: Schedule,
    /// Seed of weight initialisation and shuffling.
    pub seed: u64,
    /// Stop after this many epochs without a better validation loss (0 = never).
    pub early_stopping_patience: usize,
    /// Augmentation: Gaussian noise added to training ranges, m (0 = none).
    pub scan_noise_std: f32,
    /// Augmentation: each epoch, a random half of the training samples is mirrored left–right
    /// (the beam order reversed, the steering label negated), as if driven on the mirrored
    /// track; exact for a LiDAR whose beams are symmetric about x. Configs without the field
    /// use `false`.
    #[serde(default)]
    pub mirror: bool,
    /// Augmentation for a model that reads the ego speed: Gaussian noise added to the training
    /// speed inputs each epoch, m/s (0 = none), so that the network cannot copy its speed into
    /// its speed command (the "copycat" or inertia problem of behavioral cloning with the ego's
    /// past motion as input: Codevilla et al. 2019, Wen et al. 2020). Configs without the field
    /// use 0.
    #[serde(default)]
    pub speed_noise_std: f32,
}

impl TrainConfig {
    /// The learning rate after `fraction` (0 to 1) of all batches: `lr`, or cosine annealing
    /// from `lr` to the schedule's minimum (Loshchilov and Hutter, SGDR, 2017).
    pub fn lr_at(&self, fraction: f64) -> f64 {
        match self.schedule {
            Schedule::Constant => self.lr,
            Schedule::Cosine(min) => {
                min + 0.5 * (self.lr - min) * (1.0 + (std::f64::consts::PI * fraction).cos())
            }
        }
    }

    /// Checks value ranges.
    ///
    /// # Errors
    /// [`LearnError::Config`] naming the field.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &str, message: String| {
            Err(LearnError::Config {
                field: format!("training.{field}"),
                message,
            })
        };
        if self.epochs == 0 {
            return bad("epochs", "must be ≥ 1".into());
        }
        if self.batch_size == 0 {
            return bad("batch_size", "must be ≥ 1".into());
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return bad("lr", format!("must be > 0, found {}", self.lr));
        }
        if !(self.scan_noise_std >= 0.0 && self.scan_noise_std.is_finite()) {
            return bad(
                "scan_noise_std",
                format!("must be ≥ 0 m, found {}", self.scan_noise_std),
            );
        }
        if !(self.speed_noise_std >= 0.0 && self.speed_noise_std.is_finite()) {
            return bad(
                "speed_noise_std",
                format!("must be ≥ 0 m/s, found {}", self.speed_noise_std),
            );
        }
        Ok(())
    }
}

/// Measurements of one epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean training loss over the epoch's batches.
    pub train_loss: f64,
    /// Validation loss (mean over samples).
    pub val_loss: f64,
    /// Learning rate at the epoch's end.
    pub lr: f64,
    /// Wall time of the epoch (training and validation), s.
    pub seconds: f64,
    /// Training samples per second.
    pub samples_per_s: f64,
}

/// Training progress, for progress bars and trackers.
#[derive(Clone, Debug)]
pub enum Progress {
    /// A batch finished.
    Batch {
        /// 1-based epoch.
        epoch: usize,
        /// Batches done in this epoch.
        batch: usize,
        /// Batches per epoch.
        batches: usize,
        /// This batch's loss.
        loss: f64,
    },
    /// An epoch finished.
    Epoch(EpochMetrics),
}

/// A trained model and its history.
pub struct Trained {
    /// The best model by validation loss (validation mode, no autodiff).
    pub model: Model,
    /// Per-epoch metrics.
    pub metrics: Vec<EpochMetrics>,
    /// Epoch of the best validation loss (1-based).
    pub best_epoch: usize,
}

/// Normalised inputs `[n, num_beams + extras]` (each scan, then its normalised ego speed for a
/// model with [`ModelConfig::speed_input`]) and targets `[n, outputs]` of a split.
///
/// # Errors
/// [`LearnError::Config`] naming `model.speed_input` when the model reads the ego speed but
/// the dataset has none (it was written before speeds were stored).
pub fn prepare(split: &Split, stats: &Stats, model: &ModelConfig) -> Result<(Vec<f32>, Vec<f32>)> {
    let (beams, outputs) = (stats.num_beams, model.outputs);
    let n = split.len(beams);
    let x = if model.speed_input {
        if split.speeds.len() != n {
            return Err(LearnError::Config {
                field: "model.speed_input".into(),
                message: format!(
                    "the model reads the ego speed, but the dataset has {} speeds for {n} \
                     samples: extract it again",
                    split.speeds.len()
                ),
            });
        }
        let mut x = Vec::with_capacity(n * (beams + 1));
        for (scan, &speed) in split.scans.chunks_exact(beams).zip(&split.speeds) {
            let start = x.len();
            x.extend_from_slice(scan);
            stats.normalize_scan(&mut x[start..]);
            x.push(stats.normalize_speed_input(speed));
        }
        x
    } else {
        let mut x = split.scans.clone();
        stats.normalize_scan(&mut x);
        x
    };
    let y = split
        .labels
        .chunks_exact(LABELS)
        .flat_map(|l| stats.normalize_label(l[0], l[1]).into_iter().take(outputs))
        .collect();
    Ok((x, y))
}

fn batch(
    x: &[f32],
    y: &[f32],
    idx: &[usize],
    beams: usize,
    outputs: usize,
    device: &Device,
) -> (Tensor<3>, Tensor<2>) {
    let mut xb = Vec::with_capacity(idx.len() * beams);
    let mut yb = Vec::with_capacity(idx.len() * outputs);
    for &i in idx {
        xb.extend_from_slice(&x[i * beams..(i + 1) * beams]);
        yb.extend_from_slice(&y[i * outputs..(i + 1) * outputs]);
    }
    (
        Tensor::from_data(TensorData::new(xb, [idx.len(), 1, beams]), device),
        Tensor::from_data(TensorData::new(yb, [idx.len(), outputs]), device),
    )
}

/// Mean loss of the combined output of `members` (one network, or an ensemble: see
/// [`forward_ensemble`](crate::model::forward_ensemble)) over normalised `x` (`[n, beams]`,
/// `beams` the input length with the extras), `y` (`[n, outputs]`), in batches of 1024; NaN
/// for no samples.
///
/// # Panics
/// With no members.
pub fn evaluate_loss(
    members: &[Model],
    x: &[f32],
    y: &[f32],
    beams: usize,
    outputs: usize,
    kind: LossKind,
    device: &Device,
) -> f64 {
    let n = x.len() / beams;
    if n == 0 {
        return f64::NAN;
    }
    let mut total = 0.0;
    let all: Vec<usize> = (0..n).collect();
    for idx in all.chunks(1024) {
        let (xb, yb) = batch(x, y, idx, beams, outputs, device);
        total += loss_tensor(kind, forward_ensemble(members, xb), yb).into_scalar::<f32>() as f64
            * idx.len() as f64;
    }
    total / n as f64
}

/// Trains `model_cfg` on `ds` with `cfg` on `device` (plain; autodiff is added here), with the
/// gradients of [`Backward::default_for`]. Calls `progress` after every batch and epoch; stops
/// early when `stop()` turns true (after the current batch, keeping the best model so far).
///
/// # Errors
/// Invalid settings, an empty training split, or a scan length that differs from the model's.
pub fn train(
    ds: &Dataset,
    model_cfg: &ModelConfig,
    cfg: &TrainConfig,
    device: &Device,
    progress: &mut dyn FnMut(Progress),
    stop: &dyn Fn() -> bool,
) -> Result<Trained> {
    let backward = Backward::default_for(model_cfg, device);
    train_with(ds, model_cfg, cfg, device, backward, progress, stop)
}

/// Where the loss gradients come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backward {
    /// The hand-written CPU backward pass of [`crate::backprop`] on this micro-kernel (CPU
    /// devices only; [`Kernel::Burn`] or a kernel that the CPU lacks runs the portable loops).
    Packed(Kernel),
    /// Burn's autodiff (any device).
    BurnAutodiff,
}

impl Backward {
    /// The faster one for `model` on `device`: [`Backward::Packed`] for Tiny Lidar Net on the
    /// CPU when [`Kernel::choose`] picks an AVX micro-kernel (about 4× Burn's autodiff with
    /// AVX-512 here), else Burn's autodiff (which also trains the MLP's plain matrix products
    /// faster than the packed kernels do). `RACELOOP_KERNEL=portable` forces the packed
    /// backward pass on the portable loops.
    pub fn default_for(model: &ModelConfig, device: &Device) -> Self {
        let kernel = Kernel::choose();
        if *device == Device::flex()
            && model.architecture == Architecture::TinyLidarNet
            && kernel != Kernel::Burn
        {
            Self::Packed(kernel)
        } else {
            Self::BurnAutodiff
        }
    }
}

/// [`train`] with the gradient source chosen by the caller (benchmarks compare the two).
///
/// # Errors
/// As [`train`], and [`Backward::Packed`] on a device other than the CPU's.
pub fn train_with(
    ds: &Dataset,
    model_cfg: &ModelConfig,
    cfg: &TrainConfig,
    device: &Device,
    backward: Backward,
    progress: &mut dyn FnMut(Progress),
    stop: &dyn Fn() -> bool,
) -> Result<Trained> {
    let packed = matches!(backward, Backward::Packed(_));
    check_inputs(ds, model_cfg, cfg, device, packed)?;
    let (beams, outputs) = (model_cfg.num_beams, model_cfg.outputs);
    let inputs = model_cfg.inputs();
    let (mut xt, mut yt) = prepare(&ds.train, &ds.stats, model_cfg)?;
    let (xv, yv) = prepare(&ds.val, &ds.stats, model_cfg)?;
    let n = xt.len() / inputs;
    if n == 0 {
        return Err(LearnError::Config {
            field: "dataset".into(),
            message: "the training split is empty".into(),
        });
    }
    let clean = (cfg.scan_noise_std > 0.0).then(|| xt.clone());
    let clean_speeds: Option<Vec<f32>> = (cfg.speed_noise_std > 0.0 && model_cfg.speed_input)
        .then(|| xt.chunks_exact(inputs).map(|row| row[beams]).collect());
    let ad = device.clone().autodiff();
    // The initial weights are drawn on the CPU on every device, so that a seed gives the same
    // starting model everywhere and the GPU's losses can be checked against the CPU's.
    let cpu = Device::flex().autodiff();
    let mut model = {
        let _turn = BURN_RNG.lock().unwrap_or_else(|e| e.into_inner());
        ad.seed(cfg.seed);
        cpu.seed(cfg.seed);
        // Parameters initialise lazily, on the device they are on at first use: draw them here.
        let model = model_cfg.init(&cpu);
        model.visit(&mut InitialiseParams);
        model
    };
    if ad != cpu {
        model = model.fork(&ad);
    }
    let mut gradients = match backward {
        Backward::Packed(kernel) => Gradients::Packed(
            backprop::Backprop::new(&model, beams).with_kernel(kernel),
            AdamW::new(cfg.betas, cfg.epsilon, cfg.weight_decay),
        ),
        Backward::BurnAutodiff => Gradients::Autodiff(
            ad.clone(),
            AdamWConfig::new()
                .with_weight_decay(cfg.weight_decay)
                .with_epsilon(cfg.epsilon)
                .with_beta_1(cfg.betas[0])
                .with_beta_2(cfg.betas[1])
                .init(),
        ),
    };
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(cfg.seed);
    let batches = n.div_ceil(cfg.batch_size);
    let total_batches = (batches * cfg.epochs) as f64;
    let mut order: Vec<usize> = (0..n).collect();
    // Which samples of `xt` and `yt` are mirrored now (noise rebuilds `xt` unmirrored).
    let (mut x_mirrored, mut y_mirrored) = (vec![false; n], vec![false; n]);
    let (mut metrics, mut best): (Vec<EpochMetrics>, Option<(f64, usize, Model)>) =
        (Vec::new(), None);
    let mut lr = cfg.lr;
    'epochs: for epoch in 1..=cfg.epochs {
        let t0 = Instant::now();
        order.shuffle(&mut rng);
        if let Some(clean) = &clean {
            add_noise(
                &mut xt,
                clean,
                (beams, inputs),
                cfg.scan_noise_std / ds.stats.scan_std,
                &mut rng,
            );
            x_mirrored.fill(false);
        }
        if let Some(clean) = &clean_speeds {
            use rand::Rng;
            let std = cfg.speed_noise_std * ds.stats.inv_speed_input_std();
            let normal = rand_distr::Normal::new(0.0f32, std).expect("std ≥ 0");
            for (row, &c) in xt.chunks_exact_mut(inputs).zip(clean) {
                row[beams] = c + rng.sample(normal);
            }
        }
        if cfg.mirror {
            for i in 0..n {
                let want = rng.random::<bool>();
                if x_mirrored[i] != want {
                    xt[i * inputs..i * inputs + beams].reverse();
                    x_mirrored[i] = want;
                }
                if y_mirrored[i] != want {
                    yt[i * outputs] = -yt[i * outputs];
                    y_mirrored[i] = want;
                }
            }
        }
        let mut sum = 0.0;
        for (b, idx) in order.chunks(cfg.batch_size).enumerate() {
            if stop() {
                break 'epochs;
            }
            let done = ((epoch - 1) * batches + b) as f64;
            lr = cfg.lr_at(done / total_batches);
            let value;
            (model, value) =
                gradients.step(model, (&xt, &yt), idx, (inputs, outputs), (cfg.loss, lr));
            sum += value;
            progress(Progress::Batch {
                epoch,
                batch: b + 1,
                batches,
                loss: value,
            });
        }
        let train_secs = t0.elapsed().as_secs_f64();
        model = gradients.sync(model);
        let valid = model.valid();
        let val_loss = match gradients {
            Gradients::Packed(..) => backprop::mean_loss(&valid, beams, (&xv, &yv), cfg.loss),
            Gradients::Autodiff(..) => evaluate_loss(
                std::slice::from_ref(&valid),
                &xv,
                &yv,
                inputs,
                outputs,
                cfg.loss,
                device,
            ),
        };
        let m = EpochMetrics {
            epoch,
            train_loss: sum / batches as f64,
            val_loss,
            lr,
            seconds: t0.elapsed().as_secs_f64(),
            samples_per_s: n as f64 / train_secs,
        };
        progress(Progress::Epoch(m.clone()));
        metrics.push(m);
        let score = if val_loss.is_nan() {
            metrics.last().unwrap().train_loss
        } else {
            val_loss
        };
        if best.as_ref().is_none_or(|(b, _, _)| score < *b) {
            best = Some((score, epoch, valid));
        } else if cfg.early_stopping_patience > 0
            && best
                .as_ref()
                .is_some_and(|(_, e, _)| epoch - e >= cfg.early_stopping_patience)
        {
            break;
        }
    }
    let model = gradients.sync(model);
    let (_, best_epoch, model) = best.unwrap_or_else(|| (f64::NAN, 0, model.valid()));
    Ok(Trained {
        model,
        metrics,
        best_epoch,
    })
}

/// Draws every (lazily initialised) parameter of a module on the device it is on.
struct InitialiseParams;

impl burn::module::ModuleVisitor for InitialiseParams {
    fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
        let _ = param.val();
    }
}

/// Where a batch's gradients come from and how they update the parameters (see [`Backward`]).
enum Gradients {
    /// The hand-written CPU backward pass on packed parameters, and the packed AdamW.
    Packed(backprop::Backprop, AdamW),
    /// Burn's autodiff on this autodiff device, and Burn's AdamW.
    Autodiff(Device, burn::optim::ModuleOptimizer),
}

impl Gradients {
    /// One optimizer step with learning rate `lr` on the samples `idx` of normalised `(x, y)`
    /// (`[n, inputs]`, `[n, outputs]`, `dims = (inputs, outputs)`): the model after it and the
    /// samples' mean loss before it. The packed path returns `model` as it came, behind its packed
    /// parameters until [`Gradients::sync`].
    fn step(
        &mut self,
        model: Model,
        (x, y): (&[f32], &[f32]),
        idx: &[usize],
        (beams, outputs): (usize, usize),
        (kind, lr): (LossKind, f64),
    ) -> (Model, f64) {
        match self {
            Self::Packed(cpu, optim) => (model, cpu.train_step((x, y), idx, kind, lr, optim)),
            Self::Autodiff(ad, optim) => {
                let (xb, yb) = batch(x, y, idx, beams, outputs, ad);
                let loss = loss_tensor(kind, model.forward(xb), yb);
                let value = loss.clone().into_scalar::<f32>() as f64;
                let grads = GradientsParams::from_grads(loss.backward(), &model);
                (optim.step(lr, model, grads), value)
            }
        }
    }

    /// `model` with the current parameters.
    fn sync(&self, model: Model) -> Model {
        match self {
            Self::Packed(cpu, _) => cpu.write_to(model),
            Self::Autodiff(..) => model,
        }
    }
}

/// `x = clean + n` on the first `beams` of each row of `inputs` (the scan, not the ego speed),
/// with Gaussian `n` of standard deviation `std` (normalised units), drawn in order from `rng`.
fn add_noise(
    x: &mut [f32],
    clean: &[f32],
    (beams, inputs): (usize, usize),
    std: f32,
    rng: &mut Xoshiro256PlusPlus,
) {
    use rand::Rng;
    let normal = rand_distr::Normal::new(0.0f32, std).expect("std ≥ 0");
    for (x, c) in x.chunks_exact_mut(inputs).zip(clean.chunks_exact(inputs)) {
        for (x, c) in x[..beams].iter_mut().zip(&c[..beams]) {
            *x = c + rng.sample(normal);
        }
    }
}

/// The settings, the model and the dataset fit together, and the gradient source runs on
/// `device`.
fn check_inputs(
    ds: &Dataset,
    model_cfg: &ModelConfig,
    cfg: &TrainConfig,
    device: &Device,
    packed: bool,
) -> Result<()> {
    if packed && *device != Device::flex() {
        return Err(LearnError::Config {
            field: "device".into(),
            message: "the hand-written backward pass runs on the CPU (flex) only".into(),
        });
    }
    cfg.validate()?;
    model_cfg.validate()?;
    let beams = model_cfg.num_beams;
    if ds.stats.num_beams != beams {
        return Err(LearnError::Config {
            field: "model.num_beams".into(),
            message: format!(
                "{beams}, but the dataset's scans have {} beams",
                ds.stats.num_beams
            ),
        });
    }
    Ok(())
}
