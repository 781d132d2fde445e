//! Experiment tracking in MLflow's data model: every command is a run with params (the
//! flattened resolved config), metric time series, tags (provenance) and artifacts.
//!
//! Stores: an MLflow file-store tree (`mlruns/`, the default; no server needed) or an MLflow
//! tracking server through its REST API (`--tracking-uri http://HOST:PORT`).
//! Reference: <https://mlflow.org/docs/latest/api_reference/rest-api.html>.

pub mod dvc;
mod file_store;
pub mod provenance;
mod rest;
mod store;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Result;
use clap::Args;

pub use file_store::FileStore;
pub use store::now_ms;
pub use store::{ExperimentRecord, RunRecord};
use store::{Metric, Store};
pub use store::{Status, user};

/// Where and how runs are tracked (global options).
#[derive(Debug, Clone, Args)]
pub struct TrackingArgs {
    /// Tracking store: a directory (an MLflow file store) or an MLflow server `http://HOST:PORT`.
    #[arg(
        long,
        global = true,
        env = "MLFLOW_TRACKING_URI",
        default_value = "mlruns",
        value_parser = tracking_uri
    )]
    pub tracking_uri: String,
    /// MLflow experiment that runs are logged to (created when missing).
    #[arg(
        long,
        global = true,
        env = "MLFLOW_EXPERIMENT_NAME",
        default_value = "raceloop"
    )]
    pub experiment_name: String,
    /// Run name [default: the command and a timestamp].
    #[arg(long, global = true)]
    pub run_name: Option<String>,
    /// A free-text note on the run (intent, observations, next action): `mlflow.note.content`.
    #[arg(long, global = true)]
    pub note: Option<String>,
    /// Do not track this invocation.
    #[arg(long, global = true)]
    pub no_tracking: bool,
}

/// Checks a `--tracking-uri`: a directory, `file://DIR` or `http://HOST:PORT`. `https://` is
/// refused here, before anything runs: the REST client is built without TLS.
fn tracking_uri(uri: &str) -> Result<String, String> {
    if uri.trim().is_empty() {
        return Err("empty; give a directory (an MLflow file store) or http://HOST:PORT".into());
    }
    if uri.starts_with("https://") {
        return Err(format!(
            "`{uri}`: https is not supported (raceloop talks to MLflow over plain HTTP, without \
             TLS); use http://HOST:PORT, for example through an SSH tunnel or a local proxy that \
             terminates TLS, or a file store directory"
        ));
    }
    Ok(uri.to_string())
}

/// A connection to a store and an experiment; hands out runs.
#[derive(Clone)]
pub struct Tracker {
    store: Option<Arc<dyn Store>>,
    experiment_id: String,
    args: TrackingArgs,
}

impl Tracker {
    /// Opens the store named by `args` and finds or creates its experiment.
    ///
    /// # Errors
    /// An unreachable server, an unwritable directory, or a malformed store.
    pub fn open(args: &TrackingArgs) -> Result<Self> {
        if args.no_tracking {
            return Ok(Self {
                store: None,
                experiment_id: String::new(),
                args: args.clone(),
            });
        }
        let uri = &args.tracking_uri;
        let store: Arc<dyn Store> = if uri.starts_with("http://") {
            Arc::new(rest::RestStore::new(uri))
        } else {
            let dir = uri.strip_prefix("file://").unwrap_or(uri);
            Arc::new(FileStore::new(PathBuf::from(dir))?)
        };
        let experiment_id = store.experiment_id(&args.experiment_name)?;
        Ok(Self {
            store: Some(store),
            experiment_id,
            args: args.clone(),
        })
    }

    /// Starts a run named `name` (the `--run-name` option wins for a top-level run), with the
    /// provenance tags, the note, and `parent`'s id as `mlflow.parentRunId`.
    ///
    /// # Errors
    /// Store errors.
    pub fn start(&self, command: &str, name: &str, parent: Option<&Run>) -> Result<Run> {
        let Some(store) = &self.store else {
            return Ok(Run {
                store: None,
                id: String::new(),
            });
        };
        let name = match (&self.args.run_name, parent) {
            (Some(n), None) => n.clone(),
            _ => name.to_string(),
        };
        let id = store.create_run(&self.experiment_id, &name, now_ms())?;
        let run = Run {
            store: Some(store.clone()),
            id,
        };
        let mut tags = tags(command);
        tags.push(("mlflow.runName".into(), name));
        if let Some(p) = parent.filter(|p| !p.id.is_empty()) {
            tags.push(("mlflow.parentRunId".into(), p.id.clone()));
        }
        if let Some(note) = &self.args.note {
            tags.push(("mlflow.note.content".into(), note.clone()));
        }
        run.set_tags(&tags)?;
        Ok(run)
    }

    /// The store's location, for messages.
    pub fn uri(&self) -> &str {
        &self.args.tracking_uri
    }

    /// This tracker's experiment id (empty when not tracked).
    pub fn experiment_id(&self) -> &str {
        &self.experiment_id
    }

    fn store(&self) -> Result<&Arc<dyn Store>> {
        self.store
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("tracking is off (--no-tracking)"))
    }

    /// Every experiment of the store.
    ///
    /// # Errors
    /// Store errors, or tracking off.
    pub fn experiments(&self) -> Result<Vec<ExperimentRecord>> {
        self.store()?.list_experiments()
    }

    /// The runs of experiment `experiment_id`, newest first.
    ///
    /// # Errors
    /// Store errors, or tracking off.
    pub fn runs(&self, experiment_id: &str) -> Result<Vec<RunRecord>> {
        self.store()?.list_runs(experiment_id)
    }

    /// Ends as FAILED every run of this tracker's experiment that is still RUNNING and carries
    /// the tag `key` = `value` (jobs of a process that ended without ending them), and tags
    /// each with `raceloop.error` = `reason`. Returns their ids.
    ///
    /// # Errors
    /// Store errors, or tracking off.
    pub fn fail_running(&self, key: &str, value: &str, reason: &str) -> Result<Vec<String>> {
        let store = self.store()?;
        let mut failed = Vec::new();
        for r in store.list_runs(&self.experiment_id)? {
            if r.status == "RUNNING" && r.tags.get(key).is_some_and(|v| v == value) {
                let run = Run {
                    store: Some(store.clone()),
                    id: r.id.clone(),
                };
                run.set_tag("raceloop.error", reason)?;
                run.end(Status::Failed)?;
                failed.push(r.id);
            }
        }
        Ok(failed)
    }
}

/// A tracked run. A run of a tracker opened with `--no-tracking` accepts and drops everything.
pub struct Run {
    store: Option<Arc<dyn Store>>,
    /// MLflow run id (32 hex digits); empty when not tracked.
    pub id: String,
}

impl Run {
    /// Logs params (values are truncated to MLflow's 6,000 characters).
    ///
    /// # Errors
    /// Store errors.
    pub fn log_params(&self, params: &[(String, String)]) -> Result<()> {
        let Some(s) = &self.store else { return Ok(()) };
        let params: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.clone(), v.chars().take(6000).collect()))
            .collect();
        s.log_batch(&self.id, &params, &[], &[])
    }

    /// Sets tags.
    ///
    /// # Errors
    /// Store errors.
    pub fn set_tags(&self, tags: &[(String, String)]) -> Result<()> {
        let Some(s) = &self.store else { return Ok(()) };
        s.log_batch(&self.id, &[], &[], tags)
    }

    /// Sets one tag.
    ///
    /// # Errors
    /// Store errors.
    pub fn set_tag(&self, key: &str, value: impl ToString) -> Result<()> {
        self.set_tags(&[(key.to_string(), value.to_string())])
    }

    /// Logs metric values at `step`, time-stamped now.
    ///
    /// # Errors
    /// Store errors.
    pub fn log_metrics<K: AsRef<str>>(&self, values: &[(K, f64)], step: i64) -> Result<()> {
        let Some(s) = &self.store else { return Ok(()) };
        let t = now_ms();
        let metrics: Vec<Metric> = values
            .iter()
            .filter(|(_, v)| v.is_finite())
            .map(|(k, v)| Metric {
                key: k.as_ref().to_string(),
                value: *v,
                timestamp_ms: t,
                step,
            })
            .collect();
        s.log_batch(&self.id, &[], &metrics, &[])
    }

    /// Copies a file or a directory (recursively) to the run's artifacts under `artifact_path`
    /// (`""` for the root).
    ///
    /// # Errors
    /// I/O or store errors.
    pub fn log_artifact(&self, local: &Path, artifact_path: &str) -> Result<()> {
        let Some(s) = &self.store else { return Ok(()) };
        s.log_artifact(&self.id, local, artifact_path)
    }

    /// Ends the run.
    ///
    /// # Errors
    /// Store errors.
    pub fn end(&self, status: Status) -> Result<()> {
        let Some(s) = &self.store else { return Ok(()) };
        s.end_run(&self.id, status, now_ms())
    }

    /// Ends the run with the status that `result` implies (Ctrl-C → KILLED) and passes it on.
    pub fn end_with<T>(&self, result: Result<T>) -> Result<T> {
        let status = match &result {
            Ok(_) => Status::Finished,
            Err(_) if crate::interrupt::requested() => Status::Killed,
            Err(_) => Status::Failed,
        };
        if let Err(e) = self.end(status) {
            tracing::warn!("could not end tracked run {}: {e:#}", self.id);
        }
        result
    }
}

/// Provenance tags of a tracked run of `command` (`collect`, `train`, ...): the MLflow source
/// tags and raceloop's own (`raceloop.*`).
pub fn tags(command: &str) -> Vec<(String, String)> {
    let v = provenance::Versions::current();
    [
        ("mlflow.source.name", format!("raceloop {command}")),
        ("mlflow.source.type", "LOCAL".into()),
        ("mlflow.source.git.commit", v.git_commit),
        ("mlflow.user", user()),
        (
            "raceloop.command",
            std::env::args().collect::<Vec<_>>().join(" "),
        ),
        ("raceloop.git_dirty", v.git_dirty.to_string()),
        ("raceloop.version", v.raceloop),
        ("raceloop.rustc", v.rustc),
        ("raceloop.crates", provenance::CRATES.into()),
        (
            "raceloop.os",
            format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
        ),
        ("raceloop.cpu", provenance::cpu()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}
