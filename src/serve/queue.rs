//! The service's job queue: jobs wait in order and run one at a time on one worker thread
//! (they share the cores), each as a tracked run whose id is the job id.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};

use anyhow::Result;
use serde::Serialize;
use utoipa::ToSchema;

use crate::jobs::{self, Report};
use crate::tracking::{Run, Status, Tracker, now_ms};

/// The tag that marks a tracked run as a service job, and its value.
pub const JOB_TAG: (&str, &str) = ("raceloop.service", "job");
/// The tag that holds a job's kind.
pub const KIND_TAG: &str = "raceloop.job_kind";

/// What a job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Optionally collect and extract, then train and export ONNX.
    Training,
    /// Closed-loop evaluation of a model.
    Evaluation,
    /// Collect expert episodes and extract a dataset version.
    Collection,
}

impl Kind {
    /// The name in routes and tags.
    pub fn name(self) -> &'static str {
        match self {
            Self::Training => "training",
            Self::Evaluation => "evaluation",
            Self::Collection => "collection",
        }
    }
}

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Waiting for the jobs before it.
    Queued,
    /// Under way.
    Running,
    /// Done.
    Finished,
    /// Ended with an error (named in `error`), or lost to a service restart.
    Failed,
    /// Stopped by `POST /…/stop/{id}` (a training keeps its best epoch so far).
    Stopped,
}

impl State {
    /// Whether the job has ended.
    pub fn terminal(self) -> bool {
        matches!(self, Self::Finished | Self::Failed | Self::Stopped)
    }
}

/// What a finished job produced.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct Produced {
    /// Model directory (training).
    #[schema(value_type = Option<String>)]
    pub model_dir: Option<PathBuf>,
    /// Its `model.onnx` (training).
    #[schema(value_type = Option<String>)]
    pub onnx: Option<PathBuf>,
    /// Dataset version directory (collection, or a training that collected first).
    #[schema(value_type = Option<String>)]
    pub dataset_dir: Option<PathBuf>,
    /// Evaluation directory (evaluation).
    #[schema(value_type = Option<String>)]
    pub output_dir: Option<PathBuf>,
    /// The model's overall success rate, 0–1 (evaluation).
    pub success_rate: Option<f64>,
}

/// A job's status: `GET /{kind}/status/{id}` and every WebSocket message.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobStatus {
    /// Job id: the MLflow run id.
    pub id: String,
    /// What it does.
    pub kind: Kind,
    /// Where it is.
    pub state: State,
    /// Model name (training, evaluation) or the job's run name.
    pub name: String,
    /// Jobs ahead of it in the queue (0 when running or ended).
    pub queue_position: usize,
    /// Submitted, started and ended, ms since the Unix epoch.
    pub created_ms: u64,
    /// See `created_ms`.
    pub started_ms: Option<u64>,
    /// See `created_ms`.
    pub ended_ms: Option<u64>,
    /// Live progress: stage, epoch, batch, losses, samples/s, ETA, episodes.
    #[serde(flatten)]
    pub progress: Report,
    /// What it produced.
    #[serde(flatten)]
    pub produced: Produced,
    /// Why it failed.
    pub error: Option<String>,
}

/// A job's work: runs on the worker thread with the job's run, report and stop flag.
pub type Work = Box<dyn FnOnce(&Run, &Mutex<Report>, &dyn Fn() -> bool) -> Result<Produced> + Send>;

struct Entry {
    status: Mutex<JobStatus>,
    report: Mutex<Report>,
    stop: AtomicBool,
    run: Run,
    work: Mutex<Option<Work>>,
}

/// The jobs of this process: their ids in submission order, and each by id.
#[derive(Default)]
struct Jobs {
    order: Vec<String>,
    by_id: HashMap<String, Arc<Entry>>,
}

/// The jobs of this process, in submission order, and the worker that runs them.
#[derive(Clone)]
pub struct Queue {
    jobs: Arc<Mutex<Jobs>>,
    submit: Sender<String>,
}

impl Queue {
    /// An empty queue and its worker thread, which ends when the queue is dropped.
    pub fn start() -> (Self, std::thread::JoinHandle<()>) {
        let (submit, next) = channel();
        let queue = Self {
            jobs: Arc::default(),
            submit,
        };
        let worker = queue.jobs.clone();
        let handle = std::thread::Builder::new()
            .name("raceloop-jobs".into())
            .spawn(move || work_loop(&worker, next))
            .expect("spawning the job thread");
        (queue, handle)
    }

    /// Queues `work` as a job of `kind` named `name`, tracked as a run of `tracker`. Returns the
    /// job id (the run id).
    ///
    /// # Errors
    /// Store errors creating the run.
    pub fn submit(&self, tracker: &Tracker, kind: Kind, name: &str, work: Work) -> Result<String> {
        let command = match kind {
            Kind::Training => "train",
            Kind::Evaluation => "evaluate",
            Kind::Collection => "collect",
        };
        let run = tracker.start(command, &format!("{}-{name}", kind.name()), None)?;
        run.set_tags(&[
            (JOB_TAG.0.into(), JOB_TAG.1.into()),
            (KIND_TAG.into(), kind.name().into()),
        ])?;
        let id = run.id.clone();
        let entry = Arc::new(Entry {
            status: Mutex::new(JobStatus {
                id: id.clone(),
                kind,
                state: State::Queued,
                name: name.into(),
                queue_position: 0,
                created_ms: now_ms(),
                started_ms: None,
                ended_ms: None,
                progress: Report {
                    status: "queued".into(),
                    ..Report::default()
                },
                produced: Produced::default(),
                error: None,
            }),
            report: Mutex::default(),
            stop: AtomicBool::new(false),
            run,
            work: Mutex::new(Some(work)),
        });
        {
            let mut jobs = self.jobs.lock().expect("not poisoned");
            jobs.order.push(id.clone());
            jobs.by_id.insert(id.clone(), entry);
        }
        self.submit
            .send(id.clone())
            .map_err(|_| anyhow::anyhow!("the job thread has ended"))?;
        Ok(id)
    }

    /// Jobs waiting to start.
    pub fn queued(&self) -> usize {
        let jobs = self.jobs.lock().expect("not poisoned");
        jobs.by_id
            .values()
            .filter(|e| e.status.lock().expect("not poisoned").state == State::Queued)
            .count()
    }

    /// The status of job `id` of this process, if it is one.
    pub fn status(&self, id: &str) -> Option<JobStatus> {
        let jobs = self.jobs.lock().expect("not poisoned");
        let entry = jobs.by_id.get(id)?;
        let mut status = entry.status.lock().expect("not poisoned").clone();
        match status.state {
            State::Queued => {
                status.queue_position = jobs
                    .order
                    .iter()
                    .filter(|j| {
                        jobs.by_id[*j].status.lock().expect("not poisoned").state == State::Queued
                    })
                    .position(|j| j == id)
                    .unwrap_or(0)
                    + 1;
            }
            State::Running => {
                let mut progress = entry.report.lock().expect("not poisoned").clone();
                if matches!(progress.stage.as_str(), "collect" | "evaluate") {
                    progress.read_episodes();
                }
                status.progress = progress;
            }
            _ => {}
        }
        Some(status)
    }

    /// Asks job `id` to stop: a queued job will not start, a running one stops at its next batch
    /// or episode. Returns its status, or `None` for an unknown id.
    pub fn stop(&self, id: &str) -> Option<JobStatus> {
        {
            let jobs = self.jobs.lock().expect("not poisoned");
            let entry = jobs.by_id.get(id)?;
            entry.stop.store(true, Ordering::SeqCst);
            if entry.status.lock().expect("not poisoned").state == State::Running {
                jobs::STOP_JOB.store(true, Ordering::SeqCst);
            }
        }
        self.status(id)
    }

    /// Ends every queued job as stopped (the service is shutting down) and asks the running one
    /// to stop.
    pub fn stop_all(&self) {
        let ids: Vec<String> = self.jobs.lock().expect("not poisoned").order.clone();
        for id in ids {
            self.stop(&id);
        }
    }
}

fn work_loop(jobs: &Mutex<Jobs>, next: Receiver<String>) {
    for id in next {
        let Some(entry) = jobs.lock().expect("not poisoned").by_id.get(&id).cloned() else {
            continue;
        };
        let Some(work) = entry.work.lock().expect("not poisoned").take() else {
            continue;
        };
        let stopped = || entry.stop.load(Ordering::SeqCst) || crate::interrupt::requested();
        if stopped() {
            finish(
                &entry,
                Err(anyhow::anyhow!("stopped before it started")),
                true,
            );
            continue;
        }
        jobs::begin();
        {
            let mut s = entry.status.lock().expect("not poisoned");
            s.state = State::Running;
            s.started_ms = Some(now_ms());
        }
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            work(&entry.run, &entry.report, &stopped)
        }))
        .unwrap_or_else(|_| Err(anyhow::anyhow!("the job panicked (see the service's log)")));
        finish(&entry, result, stopped());
    }
}

/// Records a job's end in its status and its tracked run.
fn finish(entry: &Entry, result: Result<Produced>, stopped: bool) {
    let mut s = entry.status.lock().expect("not poisoned");
    s.progress = entry.report.lock().expect("not poisoned").clone();
    s.progress.read_episodes();
    s.ended_ms = Some(now_ms());
    let status = match result {
        Ok(produced) => {
            s.produced = produced;
            s.state = if stopped {
                State::Stopped
            } else {
                State::Finished
            };
            s.progress.status = if stopped { "stopped" } else { "finished" }.into();
            if stopped {
                Status::Killed
            } else {
                Status::Finished
            }
        }
        Err(e) => {
            let message = format!("{e:#}");
            s.state = if stopped {
                State::Stopped
            } else {
                State::Failed
            };
            s.progress.status = message.clone();
            if let Err(e) = entry.run.set_tag("raceloop.error", &message) {
                tracing::warn!("tracking: {e:#}");
            }
            s.error = Some(message);
            if stopped {
                Status::Killed
            } else {
                Status::Failed
            }
        }
    };
    if let Err(e) = entry.run.end(status) {
        tracing::warn!("could not end tracked run {}: {e:#}", entry.run.id);
    }
}
