//! `raceloop train`: trains Tiny Lidar Net (or the MLP baseline), or an ensemble of them
//! (`model.members`, each member from its own seed), on a dataset version and writes
//! `models/<name>/`: weights, `model.json`, `training.json`, `stats.json`, `metrics.csv`,
//! `lineage.json` and `model.onnx` (the deployable graph, see [`raceloop_learn::onnx`]).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use raceloop_learn::{Dataset, ModelConfig, Progress, TrainConfig, Trained, onnx, policy};
use serde::{Deserialize, Serialize};

use super::extract::Manifest;
use crate::config::digest;
use crate::tracking::Run;
use crate::tracking::provenance::Versions;

/// `lineage.json`: where a model came from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Lineage {
    /// Model name.
    pub model: String,
    /// Dataset version id.
    pub dataset_version: String,
    /// Dataset directory.
    pub dataset_dir: PathBuf,
    /// Collection runs behind the dataset.
    pub source_runs: Vec<PathBuf>,
    /// Hash of `model.json` and `training.json`.
    pub config_hash: String,
    /// Build versions (git commit, ...).
    pub versions: Versions,
    /// Best epoch (1-based) of the first member (the only one of a single network).
    pub best_epoch: usize,
    /// Validation loss of the saved weights: of the ensemble's combined output where
    /// `model.members` > 1.
    pub best_val_loss: f64,
    /// Each member's best validation loss, in seed order (`training.seed` + index).
    #[serde(default)]
    pub member_val_losses: Vec<f64>,
    /// Wall time of training, s.
    pub train_seconds: f64,
    /// MLflow run id of the training run (empty when not tracked).
    #[serde(default)]
    pub tracking_run: String,
}

/// A short hash of the model and training configs.
pub fn config_hash(model: &ModelConfig, training: &TrainConfig) -> String {
    digest(&format!(
        "{}|{}",
        serde_json::to_string(model).unwrap_or_default(),
        serde_json::to_string(training).unwrap_or_default()
    ))
}

/// The compute device: `cpu` (Burn's flex backend) or `wgpu` (GPU, with the `wgpu` feature).
///
/// # Errors
/// An unknown name, or `wgpu` in a build without it.
pub fn device(name: &str) -> Result<burn::prelude::Device> {
    match name {
        "cpu" => Ok(burn::prelude::Device::flex()),
        #[cfg(feature = "wgpu")]
        "wgpu" => Ok(burn::prelude::Device::wgpu(Default::default())),
        other => anyhow::bail!(
            "unknown device `{other}`: use `cpu`{}",
            if cfg!(feature = "wgpu") {
                " or `wgpu`"
            } else {
                " (this build has no `wgpu` feature)"
            }
        ),
    }
}

/// What to train: a dataset version into `models_root/<name>` with these configs on a device.
#[derive(Debug, Clone)]
pub struct TrainJob {
    /// Dataset version directory (from `raceloop extract`).
    pub dataset_dir: PathBuf,
    /// Model name: the directory `models_root/<name>`.
    pub name: String,
    /// Network.
    pub model: ModelConfig,
    /// Optimiser, loss, epochs, batches.
    pub training: TrainConfig,
    /// `cpu` or `wgpu` (see [`device`]).
    pub device: String,
    /// Where model directories live.
    pub models_root: PathBuf,
}

impl TrainJob {
    /// The model directory.
    pub fn dir(&self) -> PathBuf {
        self.models_root.join(&self.name)
    }
}

/// Trains `job`, or reuses an existing model trained from the same dataset version with the
/// same configs. Per-epoch metrics go to `run`; `observe` sees every batch and epoch; `stop`
/// ends training after the current batch (the best epoch so far is kept). Returns the model
/// directory: weights, `model.json`, `training.json`, `stats.json`, `metrics.csv`, `lineage.json`.
///
/// # Errors
/// Bad dataset or configs, I/O errors, or Ctrl-C before the first epoch ended.
pub fn train_model(
    job: &TrainJob,
    run: &Run,
    observe: &mut dyn FnMut(&Progress),
    stop: &dyn Fn() -> bool,
) -> Result<PathBuf> {
    let manifest: Manifest = raceloop_files::read_json(&job.dataset_dir.join("manifest.json"))
        .with_context(|| {
            format!(
                "{} is not a dataset version directory",
                job.dataset_dir.display()
            )
        })?;
    let dir = job.dir();
    let hash = config_hash(&job.model, &job.training);
    if let Ok(old) = raceloop_files::read_json::<Lineage>(&dir.join("lineage.json"))
        && old.dataset_version == manifest.version
        && old.config_hash == hash
        && dir.join(policy::WEIGHTS_FILE).is_file()
    {
        println!(
            "model {} is up to date (dataset {}, configs {hash})",
            dir.display(),
            manifest.version
        );
        // Model directories from before the ONNX export get their `model.onnx` now.
        if !dir.join(onnx::ONNX_FILE).is_file() {
            export_onnx(&dir)?;
        }
        return Ok(dir);
    }
    let dataset = Dataset::load(&job.dataset_dir)?;
    let t0 = std::time::Instant::now();
    let members = fit(job, &dataset, run, observe, stop)?;
    let first = &members[0];
    let models: Vec<raceloop_learn::Model> = members.iter().map(|t| t.model.clone()).collect();
    let member_val_losses: Vec<f64> = members
        .iter()
        .map(|t| t.metrics[t.best_epoch.max(1) - 1].val_loss)
        .collect();
    let best_val_loss = if members.len() == 1 {
        member_val_losses[0]
    } else {
        ensemble_val_loss(job, &dataset, &models)?
    };
    let lineage = Lineage {
        model: job.name.clone(),
        dataset_version: manifest.version.clone(),
        dataset_dir: job.dataset_dir.clone(),
        source_runs: manifest.source_runs.clone(),
        config_hash: hash,
        versions: Versions::current(),
        best_epoch: first.best_epoch,
        best_val_loss,
        member_val_losses,
        train_seconds: t0.elapsed().as_secs_f64(),
        tracking_run: run.id.clone(),
    };
    save_model_dir(&dir, job, &dataset, &members, &models, &lineage)?;
    let params: usize = models.iter().map(burn::module::Module::num_params).sum();
    if members.len() == 1 {
        println!(
            "trained {:?} ({params} parameters) in {:.1} s: best epoch {} with val loss {:.5}",
            job.model.architecture, lineage.train_seconds, lineage.best_epoch, best_val_loss
        );
    } else {
        println!(
            "trained an ensemble of {} {:?} ({params} parameters) in {:.1} s: val loss {:.5} \
             (members {})",
            members.len(),
            job.model.architecture,
            lineage.train_seconds,
            best_val_loss,
            lineage
                .member_val_losses
                .iter()
                .map(|l| format!("{l:.5}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    println!("model: {}", dir.display());
    Ok(dir)
}

/// Validation loss of the ensemble's combined output (normalised labels, the training loss).
fn ensemble_val_loss(
    job: &TrainJob,
    dataset: &Dataset,
    models: &[raceloop_learn::Model],
) -> Result<f64> {
    let (x, y) = raceloop_learn::train::prepare(&dataset.val, &dataset.stats, &job.model)?;
    Ok(raceloop_learn::train::evaluate_loss(
        models,
        &x,
        &y,
        job.model.inputs(),
        job.model.outputs,
        job.training.loss,
        &device(&job.device)?,
    ))
}

/// Writes `dir/model.onnx` from the model directory `dir` (`raceloop export`, and every
/// training) and prints its size and the export time.
///
/// # Errors
/// A missing or malformed model directory, or an export that fails (named).
pub fn export_onnx(dir: &Path) -> Result<()> {
    let done = onnx::export(dir).with_context(|| format!("exporting {} to ONNX", dir.display()))?;
    print_exported(dir, &done);
    Ok(())
}

fn print_exported(dir: &Path, done: &onnx::Exported) {
    println!(
        "onnx: {} ({:.0} KB, exported in {:.3} s)",
        dir.join(onnx::ONNX_FILE).display(),
        done.bytes as f64 / 1e3,
        done.seconds
    );
}

/// Runs the training loop of each of `model.members` members (member j from seed
/// `training.seed` + j) with one progress bar, logging each epoch's metrics to `run` (member j's
/// epoch e at step j · epochs + e, with its `member`).
///
/// # Errors
/// As [`raceloop_learn::train`]; a stop before the first epoch ended, or before the last member
/// began (an ensemble is saved with all its members or not at all).
fn fit(
    job: &TrainJob,
    dataset: &Dataset,
    run: &Run,
    observe: &mut dyn FnMut(&Progress),
    stop: &dyn Fn() -> bool,
) -> Result<Vec<Trained>> {
    let cfg = &job.training;
    let k = job.model.members;
    let device = device(&job.device)?;
    let bar = ProgressBar::new(
        (k * cfg.epochs * dataset.stats.train_samples.div_ceil(cfg.batch_size)) as u64,
    );
    bar.set_style(
        ProgressStyle::with_template(
            "train [{bar:30}] {pos}/{len} batches, {per_sec}, {msg}, ETA {eta}",
        )
        .expect("template")
        .progress_chars("=> "),
    );
    let mut members = Vec::with_capacity(k);
    for member in 0..k {
        let member_cfg = TrainConfig {
            seed: cfg.seed.wrapping_add(member as u64),
            ..cfg.clone()
        };
        let tag = if k > 1 {
            format!("member {}/{k} ", member + 1)
        } else {
            String::new()
        };
        let mut last_val = String::new();
        let trained = raceloop_learn::train(
            dataset,
            &job.model,
            &member_cfg,
            &device,
            &mut |p| {
                observe(&p);
                match p {
                    Progress::Batch { epoch, loss, .. } => {
                        bar.inc(1);
                        bar.set_message(format!(
                            "{tag}epoch {epoch}/{} loss {loss:.5}{last_val}",
                            cfg.epochs
                        ));
                    }
                    Progress::Epoch(m) => {
                        last_val = format!(", val {:.5}", m.val_loss);
                        if let Err(e) = run.log_metrics(
                            &[
                                ("train_loss", m.train_loss),
                                ("val_loss", m.val_loss),
                                ("lr", m.lr),
                                ("samples_per_s", m.samples_per_s),
                                ("epoch_seconds", m.seconds),
                                ("member", member as f64),
                            ],
                            (member * cfg.epochs + m.epoch) as i64,
                        ) {
                            tracing::warn!("tracking: {e:#}");
                        }
                        let line = format!(
                            "{tag}epoch {:>3}: train loss {:.5}  val loss {:.5}  {:.1} s  {:.0} samples/s",
                            m.epoch, m.train_loss, m.val_loss, m.seconds, m.samples_per_s
                        );
                        if bar.is_hidden() {
                            println!("{line}");
                        } else {
                            bar.println(line);
                        }
                    }
                }
            },
            stop,
        )?;
        if trained.metrics.is_empty() {
            anyhow::bail!("interrupted before the first epoch ended; nothing saved");
        }
        members.push(trained);
        if stop() && member + 1 < k {
            anyhow::bail!(
                "interrupted after {} of {k} ensemble members; nothing saved",
                member + 1
            );
        }
    }
    bar.finish_and_clear();
    Ok(members)
}

/// Writes the model directory: `models`' weights (the networks of `members`), configs,
/// statistics, `metrics.csv`, `lineage.json`.
/// It is written whole beside `dir` and then replaces it, so that a killed run never leaves a
/// directory that loads with a mix of old and new files (an earlier evaluation of other
/// weights goes too).
fn save_model_dir(
    dir: &Path,
    job: &TrainJob,
    dataset: &Dataset,
    members: &[Trained],
    models: &[raceloop_learn::Model],
    lineage: &Lineage,
) -> Result<()> {
    let final_dir = dir;
    let staged = raceloop_files::temp_path(final_dir);
    raceloop_files::remove(&staged)?;
    let dir = staged.as_path();
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    policy::save_members(models, dir)?;
    raceloop_files::write_json(&dir.join(policy::MODEL_FILE), &job.model)?;
    raceloop_files::write_json(&dir.join("training.json"), &job.training)?;
    raceloop_files::write_json(&dir.join(policy::STATS_FILE), &dataset.stats)?;
    let mut csv = csv::Writer::from_writer(Vec::new());
    csv.write_record([
        "epoch",
        "train_loss",
        "val_loss",
        "lr",
        "seconds",
        "samples_per_s",
        "member",
    ])?;
    for (member, trained) in members.iter().enumerate() {
        for m in &trained.metrics {
            csv.write_record([
                m.epoch.to_string(),
                m.train_loss.to_string(),
                m.val_loss.to_string(),
                m.lr.to_string(),
                format!("{:.3}", m.seconds),
                format!("{:.1}", m.samples_per_s),
                member.to_string(),
            ])?;
        }
    }
    raceloop_files::write(&dir.join("metrics.csv"), csv.into_inner()?)?;
    raceloop_files::write_json(&dir.join("lineage.json"), lineage)?;
    let exported =
        onnx::export(dir).with_context(|| format!("exporting {} to ONNX", dir.display()))?;
    raceloop_files::replace_dir(dir, final_dir)?;
    print_exported(final_dir, &exported);
    Ok(())
}
