//! Background work started from the panels (collect + extract, training, evaluation), on
//! threads so that the window never freezes: the jobs of [`crate::jobs`], which the service
//! runs too. Each job is a tracked run, like its command.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use anyhow::Result;
use bevy::prelude::*;

use crate::config::Resolved;
use crate::episode::result::EpisodeResult;
use crate::episode::runner::MCAP_FILE;
use crate::jobs::{self, Report};
use crate::stages::evaluate::EvaluationSummary;
use crate::tracking::{Tracker, TrackingArgs};

/// What a finished job produced.
pub enum Output {
    /// A dataset directory.
    Dataset(PathBuf),
    /// A model directory.
    Model(PathBuf),
    /// An evaluation.
    Evaluation(Evaluation),
}

/// One background job.
pub struct Job {
    /// What it does.
    pub name: String,
    /// Live report.
    pub report: Arc<Mutex<Report>>,
    /// Set to stop it at the next batch or episode.
    pub stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Result<Output>>>,
}

/// The jobs of the window and their results.
#[derive(Resource)]
pub struct Jobs {
    /// The running job, if any (one at a time: they share the cores).
    pub running: Option<Job>,
    /// Last message (finished, failed).
    pub last: String,
    /// The last finished training's model directory.
    pub trained: Option<PathBuf>,
    /// The last finished dataset.
    pub dataset: Option<PathBuf>,
    /// The last evaluation.
    pub evaluation: Option<Evaluation>,
    /// Report of the last finished job (to keep its curves on screen).
    pub finished_report: Report,
    /// Where the jobs' runs are tracked.
    pub tracking: TrackingArgs,
}

/// A finished evaluation and its failed model episodes, listed once when it ends.
pub struct Evaluation {
    /// Evaluation directory.
    pub dir: PathBuf,
    /// Its summary.
    pub summary: Box<EvaluationSummary>,
    /// Failed model episodes per track: (seed, MCAP path), by seed.
    pub failures: BTreeMap<String, Vec<(u64, PathBuf)>>,
}

impl Jobs {
    /// No jobs yet; they will be tracked as `tracking` says (the command line's options), with
    /// a note that the window started them.
    pub fn new(tracking: &TrackingArgs) -> Self {
        Self {
            running: None,
            last: String::new(),
            trained: None,
            dataset: None,
            evaluation: None,
            finished_report: Report::default(),
            tracking: TrackingArgs {
                note: Some(
                    tracking
                        .note
                        .clone()
                        .unwrap_or_else(|| "started from the window".into()),
                ),
                run_name: None,
                ..tracking.clone()
            },
        }
    }

    fn start(
        &mut self,
        name: String,
        work: impl FnOnce(&Mutex<Report>, &AtomicBool) -> Result<Output> + Send + 'static,
    ) {
        if self.running.is_some() {
            self.last = "a job is already running".into();
            return;
        }
        let report = Arc::new(Mutex::new(Report {
            status: "starting".into(),
            ..Default::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s) = (report.clone(), stop.clone());
        let handle = std::thread::spawn(move || {
            jobs::begin();
            work(&r, &s)
        });
        self.running = Some(Job {
            name,
            report,
            stop,
            handle: Some(handle),
        });
    }

    /// Collects `episodes` expert episodes (collection config otherwise) and extracts a dataset.
    pub fn collect(&mut self, resolved: Resolved, episodes: usize) {
        let tracking = self.tracking.clone();
        self.start(
            format!("collect {episodes} episodes + extract"),
            move |report, _| {
                let tracker = Tracker::open(&tracking)?;
                let resolved =
                    resolved.with_overrides(&[format!("collection.episodes={episodes}")])?;
                let dataset = jobs::collect_and_extract(&resolved, &tracker, None, report)?;
                Ok(Output::Dataset(dataset))
            },
        );
    }

    /// Trains a model named `name` on `dataset` with `resolved`'s model and training configs.
    pub fn train(&mut self, resolved: Resolved, dataset: PathBuf, name: String) {
        let tracking = self.tracking.clone();
        self.start(format!("train {name}"), move |report, stop| {
            let tracker = Tracker::open(&tracking)?;
            let run = tracker.start("train", &format!("train-{name}-window"), None)?;
            let result = jobs::train(&resolved, &dataset, &name, &run, report, &|| {
                stop.load(Ordering::Relaxed)
            });
            Ok(Output::Model(run.end_with(result)?))
        });
    }

    /// Evaluates `model` on `tracks` with `episodes` per track into `runs/eval-<name>-window`.
    pub fn evaluate(
        &mut self,
        resolved: Resolved,
        model: PathBuf,
        tracks: String,
        episodes: usize,
    ) {
        let name = model
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model".into());
        let tracking = self.tracking.clone();
        self.start(format!("evaluate {name}"), move |report, _| {
            let tracker = Tracker::open(&tracking)?;
            let resolved = resolved.with_overrides(&[
                format!("evaluation.tracks='{tracks}'"),
                format!("evaluation.episodes_per_track={episodes}"),
            ])?;
            let run = tracker.start("evaluate", &format!("evaluate-{name}-window"), None)?;
            let out = PathBuf::from("runs").join(format!("eval-{name}-window"));
            let result = jobs::evaluate_model(&resolved, &model, &out, &run, report);
            let summary = Box::new(run.end_with(result)?);
            let failures = failures(&out);
            Ok(Output::Evaluation(Evaluation {
                dir: out,
                summary,
                failures,
            }))
        });
    }
}

/// Failed model episodes in an evaluation directory, per track: (seed, MCAP path), by seed.
fn failures(dir: &Path) -> BTreeMap<String, Vec<(u64, PathBuf)>> {
    let mut out: BTreeMap<String, Vec<(u64, PathBuf)>> = BTreeMap::new();
    let episodes = std::fs::read_dir(dir.join("model").join("episodes"));
    for entry in episodes.into_iter().flatten().flatten() {
        let d = entry.path();
        if let Ok(r) = raceloop_files::read_json::<EpisodeResult>(&d.join("result.json"))
            && !r.success
        {
            out.entry(r.track)
                .or_default()
                .push((r.seed, d.join(MCAP_FILE)));
        }
    }
    out.values_mut().for_each(|v| v.sort());
    out
}

/// Collects finished jobs.
pub fn poll(mut jobs: ResMut<Jobs>) {
    let finished = jobs
        .running
        .as_ref()
        .is_some_and(|j| j.handle.as_ref().is_some_and(JoinHandle::is_finished));
    if !finished {
        return;
    }
    let mut job = jobs.running.take().expect("checked");
    jobs.finished_report = job.report.lock().expect("not poisoned").clone();
    let result = job
        .handle
        .take()
        .expect("present")
        .join()
        .unwrap_or_else(|_| Err(anyhow::anyhow!("the job panicked")));
    jobs.last = match result {
        Ok(Output::Dataset(d)) => {
            let m = format!("{}: dataset {}", job.name, d.display());
            jobs.dataset = Some(d);
            m
        }
        Ok(Output::Model(d)) => {
            let m = format!(
                "{}: model {} (load it with the Model pilot)",
                job.name,
                d.display()
            );
            jobs.trained = Some(d);
            m
        }
        Ok(Output::Evaluation(e)) => {
            let m = format!("{}: {}", job.name, e.dir.display());
            jobs.evaluation = Some(e);
            m
        }
        Err(e) => format!("{} failed: {e:#}", job.name),
    };
}
