//! The background jobs that the window's panels and `raceloop serve` start: collect + extract,
//! training, and evaluation. Each is one function over the stages' code (the commands call the
//! same stages), reports into a shared [`Report`], and is a tracked run whose id the caller
//! created. A job stops at its next batch or episode when asked.
//!
//! One job runs at a time in a process (they share the cores): [`STOP_JOB`] and
//! [`EPISODES_DONE`] of the episode runner belong to the running one.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::Ordering;

use anyhow::{Context, Result};
use raceloop_learn::{Progress, onnx};
use serde::Serialize;

use crate::config::Resolved;
pub use crate::episode::jobs::{EPISODES_DONE, EPISODES_TOTAL, STOP_JOB};
use crate::stages::evaluate::{EvaluationSummary, evaluate};
use crate::stages::extract::extract;
use crate::stages::metrics;
use crate::stages::train::{TrainJob, train_model};
use crate::tracking::{Run, Tracker};

/// What a running job reports: a status line, the training's progress and curves, and the
/// episodes done. Serialised (curves left out) as the service's progress message.
#[derive(Debug, Default, Clone, Serialize, utoipa::ToSchema)]
pub struct Report {
    /// One line of status.
    pub status: String,
    /// The stage under way: `collect`, `extract`, `train` or `evaluate`.
    pub stage: String,
    /// Current epoch (1-based; 0 before the first batch).
    pub epoch: usize,
    /// Epochs to train.
    pub epochs: usize,
    /// Batches done in all epochs so far.
    pub batch: usize,
    /// Batches in all epochs.
    pub batches: usize,
    /// Loss of the last training batch.
    pub batch_loss: Option<f64>,
    /// Mean training loss of the last finished epoch.
    pub train_loss: Option<f64>,
    /// Validation loss of the last finished epoch.
    pub val_loss: Option<f64>,
    /// Training throughput so far (validation passes included), samples/s.
    pub samples_per_s: Option<f64>,
    /// Estimated time to the end of training, s.
    pub eta_s: Option<f64>,
    /// Episodes finished in the current collection or evaluation stage.
    pub episodes_done: usize,
    /// Episodes of that stage.
    pub episodes_total: usize,
    /// Training loss per batch: (fractional epoch, loss).
    #[serde(skip)]
    pub batch_loss_curve: Vec<[f64; 2]>,
    /// Training loss per epoch: (epoch, loss).
    #[serde(skip)]
    pub train_loss_curve: Vec<[f64; 2]>,
    /// Validation loss per epoch: (epoch, loss).
    #[serde(skip)]
    pub val_loss_curve: Vec<[f64; 2]>,
}

impl Report {
    /// Copies the episode counters of the running stage in.
    pub fn read_episodes(&mut self) {
        self.episodes_done = EPISODES_DONE.load(Ordering::Relaxed);
        self.episodes_total = EPISODES_TOTAL.load(Ordering::Relaxed);
    }
}

/// Marks the start of a job: clears the stop flag and the episode counters.
pub fn begin() {
    STOP_JOB.store(false, Ordering::SeqCst);
    EPISODES_DONE.store(0, Ordering::SeqCst);
    EPISODES_TOTAL.store(0, Ordering::SeqCst);
}

fn set_stage(report: &Mutex<Report>, stage: &str, status: String) {
    let mut r = report.lock().expect("not poisoned");
    r.stage = stage.into();
    r.status = status;
}

/// Collects expert episodes with `resolved`'s collection config and extracts a dataset version
/// under `datasets/`. The collection and the extraction are runs of `tracker` (children of
/// `parent` when given). Returns the dataset directory.
///
/// # Errors
/// Collection or extraction errors, or a stop before the extraction.
pub fn collect_and_extract(
    resolved: &Resolved,
    tracker: &Tracker,
    parent: Option<&Run>,
    report: &Mutex<Report>,
) -> Result<PathBuf> {
    let episodes = resolved.config.collection.episodes;
    set_stage(
        report,
        "collect",
        format!("collecting {episodes} expert episodes"),
    );
    let run = tracker.start("collect", "collect-job", parent)?;
    metrics::config(&run, resolved)?;
    let seed = resolved.config.collection.seed;
    let result = crate::stages::collect::collect_resolved(resolved, None).and_then(|c| {
        metrics::collection(&run, &c, seed)?;
        Ok(c.dir)
    });
    let dir = run.end_with(result)?;
    if STOP_JOB.load(Ordering::Relaxed) {
        anyhow::bail!("stopped after the collection; nothing extracted");
    }
    set_stage(report, "extract", format!("extracting {}", dir.display()));
    let run = tracker.start("extract", "extract-job", parent)?;
    metrics::config(&run, resolved)?;
    let result = extract(
        &[dir],
        &[],
        None,
        None,
        &resolved.config.dataset,
        &resolved.config.dagger,
        Path::new("datasets"),
    )
    .and_then(|(dataset, manifest)| {
        metrics::dataset(&run, &dataset, &manifest)?;
        Ok(dataset)
    });
    run.end_with(result)
}

/// Trains model `name` (under `models/`) on the dataset version `dataset` with `resolved`'s
/// model and training configs, logging to `run`, and saves the resolved config beside it.
/// `stop` ends training after the current batch (the best epoch so far is kept). Returns the
/// model directory, which holds `model.onnx` too.
///
/// # Errors
/// A bad dataset, training or export errors, or a stop before the first epoch ended.
pub fn train(
    resolved: &Resolved,
    dataset: &Path,
    name: &str,
    run: &Run,
    report: &Mutex<Report>,
    stop: &dyn Fn() -> bool,
) -> Result<PathBuf> {
    metrics::config(run, resolved)?;
    let training = &resolved.config.training;
    let batches_per_epoch = raceloop_learn::Dataset::load(dataset)
        .map(|d| d.stats.train_samples.div_ceil(training.batch_size))
        .with_context(|| format!("loading dataset {}", dataset.display()))?
        .max(1);
    // An ensemble trains its members one after another: the epochs and curves run on across them.
    let (epochs, batch_size) = (
        training.epochs * resolved.config.model.members,
        training.batch_size,
    );
    {
        let mut r = report.lock().expect("not poisoned");
        r.stage = "train".into();
        r.status = format!("training {name}");
        r.epochs = epochs;
        r.batches = epochs * batches_per_epoch;
    }
    let started = std::time::Instant::now();
    let job = TrainJob {
        dataset_dir: dataset.to_path_buf(),
        name: name.to_string(),
        model: resolved.config.model.clone(),
        training: training.clone(),
        device: "cpu".into(),
        models_root: PathBuf::from("models"),
    };
    let (mut batch, mut epochs_done) = (0usize, 0usize);
    let dir = train_model(
        &job,
        run,
        &mut |p| {
            let mut r = report.lock().expect("not poisoned");
            match p {
                Progress::Batch { loss, .. } => {
                    batch += 1;
                    let epoch = epochs_done + 1;
                    r.batch_loss_curve
                        .push([batch as f64 / batches_per_epoch as f64, *loss]);
                    // Throughput and ETA over the batches so far (validation included).
                    let elapsed = started.elapsed().as_secs_f64().max(1e-9);
                    let eta = elapsed / batch as f64 * r.batches.saturating_sub(batch) as f64;
                    let rate = (batch * batch_size) as f64 / elapsed;
                    r.epoch = epoch;
                    r.batch = batch;
                    r.batch_loss = Some(*loss);
                    r.samples_per_s = Some(rate);
                    r.eta_s = Some(eta);
                    r.status = format!(
                        "epoch {epoch}/{epochs}: loss {loss:.5}, {rate:.0} samples/s, ETA {eta:.0} s"
                    );
                }
                Progress::Epoch(m) => {
                    epochs_done += 1;
                    r.train_loss = Some(m.train_loss);
                    r.val_loss = Some(m.val_loss);
                    r.train_loss_curve.push([epochs_done as f64, m.train_loss]);
                    r.val_loss_curve.push([epochs_done as f64, m.val_loss]);
                }
            }
        },
        stop,
    )?;
    metrics::model(run, &dir, resolved)?;
    resolved.save(&dir)?;
    let mut r = report.lock().expect("not poisoned");
    r.status = format!("trained {}", dir.display());
    r.eta_s = Some(0.0);
    Ok(dir)
}

/// The ONNX file of a model directory, if it has one.
pub fn onnx_file(model_dir: &Path) -> Option<PathBuf> {
    Some(model_dir.join(onnx::ONNX_FILE)).filter(|p| p.is_file())
}

/// Evaluates the model directory `model` with `resolved`'s evaluation config into `out`,
/// logging to `run`.
///
/// # Errors
/// An unloadable model, bad tracks, or a stop.
pub fn evaluate_model(
    resolved: &Resolved,
    model: &Path,
    out: &Path,
    run: &Run,
    report: &Mutex<Report>,
) -> Result<EvaluationSummary> {
    metrics::config(run, resolved)?;
    set_stage(
        report,
        "evaluate",
        format!("evaluating {} on {}", model.display(), out.display()),
    );
    let summary = evaluate(model, &resolved.config.evaluation, &resolved.sim(), out)?;
    metrics::evaluation(run, out, &summary)?;
    Ok(summary)
}
