//! MLflow's file store (`mlruns/`), written the way `mlflow.store.tracking.file_store` does:
//! `<exp_id>/meta.yaml`, `<exp_id>/<run_id>/{meta.yaml, params/<k>, metrics/<k>, tags/<k>,
//! artifacts/}`; metric lines are `<timestamp_ms> <value> <step>`. Read it with
//! `MLFLOW_ALLOW_FILE_STORE=true mlflow ui --backend-store-uri ./mlruns`, or convert it with
//! `mlflow migrate-filestore --source mlruns --target sqlite:///mlflow.db`.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::store::{
    ExperimentRecord, Metric, RunRecord, Status, Store, now_ms, status_name, user, walk,
};

/// `<exp_id>/meta.yaml`.
#[derive(Debug, Serialize, Deserialize)]
struct ExperimentMeta {
    artifact_location: String,
    creation_time: u64,
    experiment_id: String,
    last_update_time: u64,
    lifecycle_stage: String,
    name: String,
}

/// `<exp_id>/<run_id>/meta.yaml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RunMeta {
    artifact_uri: String,
    end_time: Option<u64>,
    entry_point_name: String,
    experiment_id: String,
    lifecycle_stage: String,
    run_id: String,
    run_name: String,
    source_name: String,
    source_type: u8,
    source_version: String,
    start_time: u64,
    status: u8,
    tags: Vec<String>,
    user_id: String,
}

/// An MLflow file store rooted at a directory.
pub struct FileStore {
    root: PathBuf,
}

fn yaml_read<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_yaml_ng::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

fn yaml_write<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    Ok(raceloop_files::write(
        path,
        serde_yaml_ng::to_string(value)?,
    )?)
}

fn file_uri(path: &Path) -> String {
    format!("file://{}", path.display())
}

impl FileStore {
    /// Opens (creating) the store at `root`, with MLflow's `Default` experiment 0.
    ///
    /// # Errors
    /// An unwritable directory.
    pub fn new(root: PathBuf) -> Result<Self> {
        std::fs::create_dir_all(&root)
            .with_context(|| format!("creating the tracking store {}", root.display()))?;
        let root = root.canonicalize()?;
        let store = Self { root };
        if !store.root.join("0").join("meta.yaml").is_file() {
            store.create_experiment("0", "Default")?;
        }
        Ok(store)
    }

    fn create_experiment(&self, id: &str, name: &str) -> Result<()> {
        let dir = self.root.join(id);
        std::fs::create_dir_all(&dir)?;
        let t = now_ms();
        yaml_write(
            &dir.join("meta.yaml"),
            &ExperimentMeta {
                artifact_location: file_uri(&dir),
                creation_time: t,
                experiment_id: id.into(),
                last_update_time: t,
                lifecycle_stage: "active".into(),
                name: name.into(),
            },
        )
    }

    fn experiments(&self) -> Result<Vec<ExperimentMeta>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(&self.root)? {
            let meta = e?.path().join("meta.yaml");
            if meta.is_file() {
                out.push(yaml_read::<ExperimentMeta>(&meta)?);
            }
        }
        Ok(out)
    }

    fn run_dir(&self, run: &str) -> Result<PathBuf> {
        for e in std::fs::read_dir(&self.root)? {
            let dir = e?.path().join(run);
            if dir.join("meta.yaml").is_file() {
                return Ok(dir);
            }
        }
        bail!("run {run} not found in {}", self.root.display())
    }

    /// Runs of the experiment named `experiment`, newest first.
    ///
    /// # Errors
    /// A missing experiment or malformed files.
    pub fn runs(&self, experiment: &str) -> Result<Vec<RunRecord>> {
        let Some(exp) = self
            .experiments()?
            .into_iter()
            .find(|e| e.name == experiment)
        else {
            bail!(
                "no experiment `{experiment}` in {} (see --experiment-name)",
                self.root.display()
            );
        };
        self.runs_of(&exp.experiment_id)
    }

    /// Runs of the experiment with id `experiment_id`, newest first.
    ///
    /// # Errors
    /// Malformed files.
    fn runs_of(&self, experiment_id: &str) -> Result<Vec<RunRecord>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(self.root.join(experiment_id))? {
            let dir = e?.path();
            if !dir.join("meta.yaml").is_file() || !dir.is_dir() {
                continue;
            }
            let meta: RunMeta = yaml_read(&dir.join("meta.yaml"))?;
            let mut tags = BTreeMap::new();
            for (path, key) in walk_keys(&dir.join("tags"))? {
                tags.insert(key, std::fs::read_to_string(path)?);
            }
            let mut metrics = BTreeMap::new();
            for (path, key) in walk_keys(&dir.join("metrics"))? {
                let text = std::fs::read_to_string(path)?;
                if let Some(v) = text
                    .lines()
                    .last()
                    .and_then(|l| l.split(' ').nth(1))
                    .and_then(|v| v.parse().ok())
                {
                    metrics.insert(key, v);
                }
            }
            out.push(RunRecord {
                id: meta.run_id,
                name: meta.run_name,
                status: status_name(&meta.status.to_string()),
                start_ms: meta.start_time,
                end_ms: meta.end_time,
                tags,
                metrics,
            });
        }
        out.sort_by_key(|r| std::cmp::Reverse(r.start_ms));
        Ok(out)
    }
}

/// Files under `dir` with their `/`-joined key relative to it (keys may contain `/`).
fn walk_keys(dir: &Path) -> Result<Vec<(PathBuf, String)>> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    Ok(raceloop_files::files_under(dir, dir)?)
}

fn append(path: &Path, text: &str) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

impl Store for FileStore {
    fn list_experiments(&self) -> Result<Vec<ExperimentRecord>> {
        let mut out: Vec<ExperimentRecord> = self
            .experiments()?
            .into_iter()
            .map(|e| ExperimentRecord {
                experiment_id: e.experiment_id,
                name: e.name,
                lifecycle_stage: e.lifecycle_stage,
                creation_time: e.creation_time,
                last_update_time: e.last_update_time,
            })
            .collect();
        out.sort_by(|a, b| a.experiment_id.cmp(&b.experiment_id));
        Ok(out)
    }

    fn list_runs(&self, experiment_id: &str) -> Result<Vec<RunRecord>> {
        self.runs_of(experiment_id)
    }

    fn experiment_id(&self, name: &str) -> Result<String> {
        if let Some(e) = self.experiments()?.into_iter().find(|e| e.name == name) {
            return Ok(e.experiment_id);
        }
        // The id is a hash of the name, so that concurrent processes creating the same
        // experiment write the same directory (MLflow's own ids are random integers too).
        use sha2::Digest;
        let hash = sha2::Sha256::digest(name.as_bytes());
        let id = (u64::from_le_bytes(hash[..8].try_into().expect("8 bytes")) >> 1).to_string();
        let taken = yaml_read::<ExperimentMeta>(&self.root.join(&id).join("meta.yaml"))
            .is_ok_and(|e| e.name != name);
        let id = if taken {
            (uuid::Uuid::new_v4().as_u128() as u64 >> 1).to_string()
        } else {
            id
        };
        self.create_experiment(&id, name)?;
        Ok(id)
    }

    fn create_run(&self, experiment_id: &str, name: &str, start_ms: u64) -> Result<String> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let dir = self.root.join(experiment_id).join(&id);
        for sub in ["params", "metrics", "tags", "artifacts"] {
            std::fs::create_dir_all(dir.join(sub))
                .with_context(|| format!("creating {}", dir.display()))?;
        }
        yaml_write(
            &dir.join("meta.yaml"),
            &RunMeta {
                artifact_uri: file_uri(&dir.join("artifacts")),
                end_time: None,
                entry_point_name: String::new(),
                experiment_id: experiment_id.into(),
                lifecycle_stage: "active".into(),
                run_id: id.clone(),
                run_name: name.into(),
                source_name: String::new(),
                source_type: 4,
                source_version: String::new(),
                start_time: start_ms,
                status: 1,
                tags: Vec::new(),
                user_id: user(),
            },
        )?;
        Ok(id)
    }

    fn log_batch(
        &self,
        run: &str,
        params: &[(String, String)],
        metrics: &[Metric],
        tags: &[(String, String)],
    ) -> Result<()> {
        let dir = self.run_dir(run)?;
        for (sub, items) in [("params", params), ("tags", tags)] {
            for (k, v) in items {
                let path = dir.join(sub).join(k);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)
                        .with_context(|| format!("creating {}", parent.display()))?;
                }
                raceloop_files::write(&path, v)?;
            }
        }
        for m in metrics {
            append(
                &dir.join("metrics").join(&m.key),
                &format!("{} {} {}\n", m.timestamp_ms, m.value, m.step),
            )?;
        }
        Ok(())
    }

    fn log_artifact(&self, run: &str, local: &Path, artifact_path: &str) -> Result<()> {
        let dest = self.run_dir(run)?.join("artifacts").join(artifact_path);
        for (file, rel) in walk(local)? {
            let target = dest.join(&rel);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::copy(&file, &target)
                .with_context(|| format!("copying {} to {}", file.display(), target.display()))?;
        }
        Ok(())
    }

    fn end_run(&self, run: &str, status: Status, end_ms: u64) -> Result<()> {
        let path = self.run_dir(run)?.join("meta.yaml");
        let mut meta: RunMeta = yaml_read(&path)?;
        meta.status = status.code();
        meta.end_time = Some(end_ms);
        yaml_write(&path, &meta)
    }
}
