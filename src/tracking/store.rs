//! What every tracking store shares: MLflow's run status, metric records, the store trait
//! and small helpers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Result;

/// How a run ended (MLflow's `RunStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Completed.
    Finished,
    /// Ended with an error.
    Failed,
    /// Stopped by the user (Ctrl-C).
    Killed,
}

impl Status {
    /// MLflow's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Finished => "FINISHED",
            Self::Failed => "FAILED",
            Self::Killed => "KILLED",
        }
    }

    /// MLflow's number in a file store's `meta.yaml`.
    pub fn code(self) -> u8 {
        match self {
            Self::Finished => 3,
            Self::Failed => 4,
            Self::Killed => 5,
        }
    }
}

/// One metric observation.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// Name (letters, digits, `_ - . /` and spaces).
    pub key: String,
    /// Value.
    pub value: f64,
    /// Wall-clock time, ms since the Unix epoch.
    pub timestamp_ms: u64,
    /// Step (epoch, episode, ...).
    pub step: i64,
}

/// A run as read back from a store (`raceloop runs`, the service's `/experiments/{id}`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunRecord {
    /// Run id.
    pub id: String,
    /// Run name.
    pub name: String,
    /// `RUNNING`, `FINISHED`, `FAILED` or `KILLED`.
    pub status: &'static str,
    /// Start, ms since the Unix epoch.
    pub start_ms: u64,
    /// End, ms since the Unix epoch (`None` while running).
    pub end_ms: Option<u64>,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// The latest value of each metric.
    pub metrics: BTreeMap<String, f64>,
}

/// An experiment as read back from a store.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExperimentRecord {
    /// Experiment id.
    pub experiment_id: String,
    /// Name.
    pub name: String,
    /// `active` or `deleted`.
    pub lifecycle_stage: String,
    /// Created, ms since the Unix epoch.
    pub creation_time: u64,
    /// Last updated, ms since the Unix epoch.
    pub last_update_time: u64,
}

/// What a tracking store does: the subset of MLflow's tracking API that raceloop uses.
pub trait Store: Send + Sync {
    /// The id of experiment `name`, created when missing.
    fn experiment_id(&self, name: &str) -> Result<String>;
    /// Creates a run named `name` started at `start_ms` (ms since the Unix epoch); its id.
    fn create_run(&self, experiment_id: &str, name: &str, start_ms: u64) -> Result<String>;
    /// Logs params, metrics and tags of `run` in one call.
    fn log_batch(
        &self,
        run: &str,
        params: &[(String, String)],
        metrics: &[Metric],
        tags: &[(String, String)],
    ) -> Result<()>;
    /// Copies `local` (a file or directory) under the run's `artifact_path`.
    fn log_artifact(&self, run: &str, local: &Path, artifact_path: &str) -> Result<()>;
    /// Ends `run` with `status` at `end_ms`.
    fn end_run(&self, run: &str, status: Status, end_ms: u64) -> Result<()>;
    /// Every experiment.
    fn list_experiments(&self) -> Result<Vec<ExperimentRecord>>;
    /// The runs of experiment `experiment_id`, newest first.
    fn list_runs(&self, experiment_id: &str) -> Result<Vec<RunRecord>>;
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Files under `local` (itself when a file) with their path relative to `local`'s parent.
pub fn walk(local: &Path) -> Result<Vec<(PathBuf, String)>> {
    Ok(raceloop_files::files_under(
        local,
        local.parent().unwrap_or(Path::new("")),
    )?)
}

/// The user for `mlflow.user` and a run's `user_id`.
pub fn user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "raceloop".into())
}

/// MLflow's name of a run status (a file store's number or a server's name).
pub fn status_name(name: &str) -> &'static str {
    match name {
        "1" | "RUNNING" => "RUNNING",
        "3" | "FINISHED" => "FINISHED",
        "4" | "FAILED" => "FAILED",
        "5" | "KILLED" => "KILLED",
        _ => "SCHEDULED",
    }
}
