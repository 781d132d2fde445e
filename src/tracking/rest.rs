//! An MLflow tracking server through its REST API (`/api/2.0/mlflow/...`), respecting
//! `runs/log-batch`'s limits (1,000 metrics, 100 params, 100 tags per call). Artifacts go
//! through the server's artifact proxy (`/api/2.0/mlflow-artifacts/artifacts/...`, served by
//! `mlflow server` by default). Plain HTTP only (a server on the local network).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use ureq::Agent;

use super::store::{ExperimentRecord, Metric, RunRecord, Status, Store, status_name, user, walk};

/// A tracking server at `base` (`http://HOST:PORT`).
pub struct RestStore {
    base: String,
    agent: Agent,
    /// Run id → artifact URI, from `runs/create`.
    artifact_uris: Mutex<HashMap<String, String>>,
}

impl RestStore {
    /// A client for `base`; nothing is sent until the first call.
    pub fn new(base: &str) -> Self {
        let agent: Agent = Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        Self {
            base: base.trim_end_matches('/').to_string(),
            agent,
            artifact_uris: Mutex::new(HashMap::new()),
        }
    }

    /// Sends `body` to `endpoint` (`runs/create`, ...); returns the reply and its HTTP status.
    fn call(&self, method: &str, endpoint: &str, body: &Value) -> Result<(u16, Value)> {
        let url = format!("{}/api/2.0/mlflow/{endpoint}", self.base);
        let response = match method {
            "GET" => {
                let mut r = self.agent.get(&url);
                for (k, v) in body.as_object().into_iter().flatten() {
                    r = r.query(k, v.as_str().unwrap_or_default());
                }
                r.call()
            }
            _ => self.agent.post(&url).send_json(body),
        };
        let mut response = response
            .with_context(|| format!("MLflow server {}: {method} {endpoint}", self.base))?;
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, value))
    }

    fn ok(&self, endpoint: &str, body: &Value) -> Result<Value> {
        let (status, reply) = self.call("POST", endpoint, body)?;
        if status != 200 {
            bail!(
                "MLflow server {}: {endpoint} answered {status}: {reply}",
                self.base
            );
        }
        Ok(reply)
    }
}

fn pairs(items: &[(String, String)]) -> Vec<Value> {
    items
        .iter()
        .map(|(k, v)| json!({"key": k, "value": v}))
        .collect()
}

/// The `[{key, value}]` list of a server's run data as a map (`value` as text or a number).
fn key_values<T>(list: &Value, value: impl Fn(&Value) -> Option<T>) -> BTreeMap<String, T> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|kv| Some((kv["key"].as_str()?.to_string(), value(&kv["value"])?)))
        .collect()
}

/// A number that the server may send as a string (`start_time`).
fn number(v: &Value) -> Option<u64> {
    v.as_u64().or_else(|| v.as_str()?.parse().ok())
}

impl Store for RestStore {
    fn list_experiments(&self) -> Result<Vec<ExperimentRecord>> {
        let reply = self.ok(
            "experiments/search",
            &json!({"max_results": 1000, "view_type": "ALL"}),
        )?;
        Ok(reply["experiments"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| ExperimentRecord {
                experiment_id: e["experiment_id"].as_str().unwrap_or_default().into(),
                name: e["name"].as_str().unwrap_or_default().into(),
                lifecycle_stage: e["lifecycle_stage"].as_str().unwrap_or_default().into(),
                creation_time: number(&e["creation_time"]).unwrap_or(0),
                last_update_time: number(&e["last_update_time"]).unwrap_or(0),
            })
            .collect())
    }

    fn list_runs(&self, experiment_id: &str) -> Result<Vec<RunRecord>> {
        let reply = self.ok(
            "runs/search",
            &json!({
                "experiment_ids": [experiment_id],
                "max_results": 1000,
                "order_by": ["attributes.start_time DESC"],
            }),
        )?;
        Ok(reply["runs"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                let info = &r["info"];
                RunRecord {
                    id: info["run_id"].as_str().unwrap_or_default().into(),
                    name: info["run_name"].as_str().unwrap_or_default().into(),
                    status: status_name(info["status"].as_str().unwrap_or_default()),
                    start_ms: number(&info["start_time"]).unwrap_or(0),
                    end_ms: number(&info["end_time"]),
                    tags: key_values(&r["data"]["tags"], |v| v.as_str().map(String::from)),
                    metrics: key_values(&r["data"]["metrics"], Value::as_f64),
                }
            })
            .collect())
    }

    fn experiment_id(&self, name: &str) -> Result<String> {
        let (status, reply) = self.call(
            "GET",
            "experiments/get-by-name",
            &json!({"experiment_name": name}),
        )?;
        if status == 200
            && let Some(id) = reply["experiment"]["experiment_id"].as_str()
        {
            return Ok(id.to_string());
        }
        let reply = self.ok("experiments/create", &json!({"name": name}))?;
        reply["experiment_id"]
            .as_str()
            .map(String::from)
            .context("experiments/create returned no experiment_id")
    }

    fn create_run(&self, experiment_id: &str, name: &str, start_ms: u64) -> Result<String> {
        let reply = self.ok(
            "runs/create",
            &json!({"experiment_id": experiment_id, "run_name": name, "start_time": start_ms,
                    "user_id": user()}),
        )?;
        let info = &reply["run"]["info"];
        let id = info["run_id"]
            .as_str()
            .context("runs/create returned no run_id")?
            .to_string();
        let uri = info["artifact_uri"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        self.artifact_uris
            .lock()
            .expect("not poisoned")
            .insert(id.clone(), uri);
        Ok(id)
    }

    fn log_batch(
        &self,
        run: &str,
        params: &[(String, String)],
        metrics: &[Metric],
        tags: &[(String, String)],
    ) -> Result<()> {
        for chunk in params.chunks(100) {
            self.ok(
                "runs/log-batch",
                &json!({"run_id": run, "params": pairs(chunk)}),
            )?;
        }
        for chunk in tags.chunks(100) {
            self.ok(
                "runs/log-batch",
                &json!({"run_id": run, "tags": pairs(chunk)}),
            )?;
        }
        for chunk in metrics.chunks(1000) {
            let metrics: Vec<Value> = chunk
                .iter()
                .map(|m| json!({"key": m.key, "value": m.value, "timestamp": m.timestamp_ms, "step": m.step}))
                .collect();
            self.ok(
                "runs/log-batch",
                &json!({"run_id": run, "metrics": metrics}),
            )?;
        }
        Ok(())
    }

    fn log_artifact(&self, run: &str, local: &Path, artifact_path: &str) -> Result<()> {
        let uri = self
            .artifact_uris
            .lock()
            .expect("not poisoned")
            .get(run)
            .cloned()
            .unwrap_or_default();
        let Some(root) = uri.strip_prefix("mlflow-artifacts:") else {
            bail!(
                "the server's artifact store `{uri}` is not proxied (start it with --serve-artifacts)"
            );
        };
        let root = root.trim_start_matches('/');
        for (file, rel) in walk(local)? {
            let dest = [root, artifact_path, &rel]
                .iter()
                .filter(|s| !s.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join("/");
            let url = format!("{}/api/2.0/mlflow-artifacts/artifacts/{dest}", self.base);
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let response = self
                .agent
                .put(&url)
                .send(&bytes[..])
                .with_context(|| format!("uploading {}", file.display()))?;
            if response.status() != 200 {
                bail!(
                    "uploading {} answered {}",
                    file.display(),
                    response.status()
                );
            }
        }
        Ok(())
    }

    fn end_run(&self, run: &str, status: Status, end_ms: u64) -> Result<()> {
        self.ok(
            "runs/update",
            &json!({"run_id": run, "status": status.name(), "end_time": end_ms}),
        )?;
        Ok(())
    }
}
