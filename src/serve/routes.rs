//! The service's routes: job start/status/stop for training, evaluation and collection, their
//! WebSocket progress streams, the tracked experiments, and the OpenAPI description.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use raceloop_learn::Architecture;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use super::queue::{JobStatus, KIND_TAG, Kind, Produced, State as JobState, Work};
use super::state::AppState;
use crate::config::Resolved;
use crate::jobs;
use crate::tracking::{ExperimentRecord, RunRecord};

/// The longest gap between two progress messages on a job's WebSocket, s.
pub const HEARTBEAT_S: u64 = 5;
/// Jobs that may wait in the queue; a start beyond them is refused with 429.
pub const MAX_QUEUED: usize = 16;

/// An error answer: `{"error": "...", "field": "..."}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiError {
    #[serde(skip)]
    status: StatusCode,
    /// What is wrong.
    error: String,
    /// The request field at fault, where one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
}

impl ApiError {
    /// An error with `status` and `message`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            error: message.into(),
            field: None,
        }
    }

    fn field(status: StatusCode, field: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            error: format!("`{field}`: {}", message.into()),
            field: Some(field.into()),
        }
    }

    fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::field(StatusCode::UNPROCESSABLE_ENTITY, field, message)
    }

    fn internal(e: &anyhow::Error) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self)).into_response()
    }
}

type ApiResult<T> = Result<Json<T>, ApiError>;

/// What to collect before training, or in a collection job.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CollectSpec {
    /// Expert episodes [default: `collection.episodes` of the configs].
    pub episodes: Option<usize>,
    /// Tracks: shipped names, comma-separated, or `all` [default: the configs'].
    pub tracks: Option<String>,
    /// Config overrides for the collection, in the config grammar (`collection.laps=1.0`).
    #[serde(default)]
    pub overrides: Vec<String>,
}

/// `POST /training/start`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrainingRequest {
    /// A dataset version under `datasets/` (`96b00f5d44581d9d` or `datasets/96b00f5d44581d9d`).
    /// Give this or `collect`.
    pub dataset: Option<String>,
    /// Collect and extract a dataset first. Give this or `dataset`.
    pub collect: Option<CollectSpec>,
    /// Model name: the directory `models/NAME` [default: `serve-` and the job id's first 8 digits].
    pub name: Option<String>,
    /// `TinyLidarNet` or `Mlp` [default: the configs'].
    #[schema(value_type = Option<String>, example = "TinyLidarNet")]
    pub network: Option<Architecture>,
    /// 1 (steering) or 2 (steering, speed).
    pub outputs: Option<usize>,
    /// Epochs.
    pub epochs: Option<usize>,
    /// Peak learning rate.
    pub learning_rate: Option<f64>,
    /// Batch size.
    pub batch_size: Option<usize>,
    /// Further overrides in the config grammar (`training.mirror=true`).
    #[serde(default)]
    pub overrides: Vec<String>,
}

/// `POST /evaluation/start`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EvaluationRequest {
    /// A model under `models/` (`default` or `models/default`).
    pub model: String,
    /// Tracks: shipped names, comma-separated, or `all` [default: the configs'].
    pub tracks: Option<String>,
    /// Episodes per track [default: the configs'].
    pub episodes_per_track: Option<usize>,
    /// Further overrides in the config grammar (`evaluation.seed=2000000`).
    #[serde(default)]
    pub overrides: Vec<String>,
}

/// The answer to a start: the job id (the MLflow run id) and `"status": "started"`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Started {
    /// Job id: the MLflow run id.
    pub id: String,
    /// Always `started` (the job may wait in the queue: see its status).
    pub status: &'static str,
    /// Where its status is.
    pub status_url: String,
    /// Where its progress streams.
    pub websocket_url: String,
}

/// `GET /experiments`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Experiments {
    /// Every experiment of the tracking store.
    #[schema(value_type = Vec<Object>)]
    pub experiments: Vec<ExperimentRecord>,
}

/// `GET /experiments/{id}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExperimentRuns {
    /// The experiment.
    #[schema(value_type = Object)]
    pub experiment: ExperimentRecord,
    /// Its runs, newest first: id, name, status, start and end (ms), tags, latest metrics.
    #[schema(value_type = Vec<Object>)]
    pub runs: Vec<RunRecord>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "raceloop",
        description = "Start, watch and stop raceloop's training, evaluation and collection \
                       jobs; list the tracked experiments. Progress also streams as JSON on \
                       WebSocket /ws/{training,evaluation,collection}/{id}, at every epoch or \
                       episode batch and at least every 5 s, ending with a final message."
    ),
    paths(
        training_start,
        training_status,
        training_stop,
        evaluation_start,
        evaluation_status,
        evaluation_stop,
        collection_start,
        collection_status,
        collection_stop,
        experiments,
        experiment
    ),
    components(schemas(ApiError, JobStatus, Started, CollectSpec))
)]
struct ApiDoc;

/// The service's routes (without state).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/training/start", post(training_start))
        .route("/training/status/{id}", get(training_status))
        .route("/training/stop/{id}", post(training_stop))
        .route("/evaluation/start", post(evaluation_start))
        .route("/evaluation/status/{id}", get(evaluation_status))
        .route("/evaluation/stop/{id}", post(evaluation_stop))
        .route("/collection/start", post(collection_start))
        .route("/collection/status/{id}", get(collection_status))
        .route("/collection/stop/{id}", post(collection_stop))
        .route("/ws/training/{id}", get(training_ws))
        .route("/ws/evaluation/{id}", get(evaluation_ws))
        .route("/ws/collection/{id}", get(collection_ws))
        .route("/experiments", get(experiments))
        .route("/experiments/{id}", get(experiment))
        .route("/openapi.json", get(openapi))
}

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

/// Parses a JSON body; a syntax or type error is a 400 that names the field and position.
fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        let message = format!("malformed JSON body: {inner}");
        if field == "." || field == "?" {
            ApiError::new(StatusCode::BAD_REQUEST, message)
        } else {
            ApiError::field(StatusCode::BAD_REQUEST, &field, message)
        }
    })
}

/// A model or dataset name: letters, digits, `.`, `_` and `-`, not starting with `.`, at most
/// 64 characters, given bare or under `folder/`. Anything else (`..`, `/`, absolute paths) is
/// refused, so that a name never leaves its folder.
fn checked_name(field: &str, value: &str, folder: &str) -> Result<String, ApiError> {
    let bare = value
        .strip_prefix(folder)
        .and_then(|v| v.strip_prefix('/'))
        .unwrap_or(value);
    let ok = !bare.is_empty()
        && bare.len() <= 64
        && !bare.starts_with('.')
        && bare
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(bare.to_string())
    } else {
        Err(ApiError::invalid(
            field,
            format!(
                "`{value}` is not a name under {folder}/: use letters, digits, `.`, `_` and `-` \
                 (at most 64, not starting with `.`)"
            ),
        ))
    }
}

/// Loads the configs with `overrides`, and checks the model and training configs, so that a bad
/// override is a 422 before anything runs.
fn resolve(state: &AppState, field: &str, overrides: &[String]) -> Result<Resolved, ApiError> {
    let resolved = Resolved::load(&state.configs, overrides)
        .map_err(|e| ApiError::invalid(field, format!("{e:#}")))?;
    resolved
        .config
        .model
        .validate()
        .and_then(|()| resolved.config.training.validate())
        .map_err(|e| ApiError::invalid(field, e.to_string()))?;
    Ok(resolved)
}

/// Collection overrides from a spec, with a bound on the episodes that one request may start.
/// `field` is where the spec sits in the request (`collect.`, or empty).
fn collect_overrides(spec: &CollectSpec, field: &str) -> Result<Vec<String>, ApiError> {
    let mut out = spec.overrides.clone();
    if let Some(n) = spec.episodes {
        if !(1..=10_000).contains(&n) {
            return Err(ApiError::invalid(
                &format!("{field}episodes"),
                format!("must be 1 to 10,000, found {n}"),
            ));
        }
        out.push(format!("collection.episodes={n}"));
    }
    if let Some(t) = &spec.tracks {
        out.push(format!("collection.tracks='{}'", t.replace('\'', "")));
    }
    Ok(out)
}

/// Queues a job unless [`MAX_QUEUED`] jobs already wait.
fn submit(state: &AppState, kind: Kind, name: &str, work: Work) -> Result<String, ApiError> {
    if state.queue.queued() >= MAX_QUEUED {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!("{MAX_QUEUED} jobs are already queued; wait for them or stop some"),
        ));
    }
    state
        .queue
        .submit(&state.tracker, kind, name, work)
        .map_err(|e| ApiError::internal(&e))
}

/// The first 8 digits of a job id, for directory names.
fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

fn started(kind: Kind, id: String) -> Json<Started> {
    Json(Started {
        status_url: format!("/{}/status/{id}", kind.name()),
        websocket_url: format!("/ws/{}/{id}", kind.name()),
        id,
        status: "started",
    })
}

/// Starts a training: collects and extracts first when `collect` is given, trains, writes
/// `model.onnx`. Returns the job id (the MLflow run id).
#[utoipa::path(post, path = "/training/start", request_body = TrainingRequest,
    responses((status = 200, body = Started), (status = 400, body = ApiError),
              (status = 422, description = "a missing dataset or a bad override", body = ApiError),
              (status = 429, description = "the queue is full", body = ApiError)))]
async fn training_start(State(state): State<AppState>, body: Bytes) -> ApiResult<Started> {
    let req: TrainingRequest = parse(&body)?;
    let mut overrides = Vec::new();
    let dataset = match (&req.dataset, &req.collect) {
        (Some(d), None) => {
            let name = checked_name("dataset", d, "datasets")?;
            let dir = Path::new("datasets").join(&name);
            if !dir.join("manifest.json").is_file() {
                return Err(ApiError::invalid(
                    "dataset",
                    format!(
                        "no dataset version {} (run a collection first)",
                        dir.display()
                    ),
                ));
            }
            Some(dir)
        }
        (None, Some(spec)) => {
            overrides.extend(collect_overrides(spec, "collect.")?);
            None
        }
        _ => {
            return Err(ApiError::invalid(
                "dataset",
                "give either `dataset` (a version under datasets/) or `collect`",
            ));
        }
    };
    let name = req
        .name
        .as_deref()
        .map(|n| checked_name("name", n, "models"))
        .transpose()?;
    if let Some(n) = req.network {
        overrides.push(format!("model.architecture={n:?}"));
    }
    for (key, value) in [
        ("model.outputs", req.outputs.map(|v| v.to_string())),
        ("training.epochs", req.epochs.map(|v| v.to_string())),
        ("training.lr", req.learning_rate.map(|v| format!("{v:e}"))),
        ("training.batch_size", req.batch_size.map(|v| v.to_string())),
    ] {
        if let Some(v) = value {
            overrides.push(format!("{key}={v}"));
        }
    }
    overrides.extend(req.overrides.iter().cloned());
    let resolved = resolve(&state, "overrides", &overrides)?;
    let tracker = state.tracker.clone();
    let label = name.clone().unwrap_or_else(|| "serve".into());
    let work: Work = Box::new(move |run, report, stop| {
        let mut produced = Produced::default();
        let dataset = match dataset {
            Some(d) => d,
            None => {
                let d = jobs::collect_and_extract(&resolved, &tracker, Some(run), report)?;
                produced.dataset_dir = Some(d.clone());
                d
            }
        };
        let name = name.unwrap_or_else(|| format!("serve-{}", short(&run.id)));
        let dir = jobs::train(&resolved, &dataset, &name, run, report, stop)?;
        produced.onnx = jobs::onnx_file(&dir);
        produced.model_dir = Some(dir);
        Ok(produced)
    });
    let id = submit(&state, Kind::Training, &label, work)?;
    Ok(started(Kind::Training, id))
}

/// Starts a closed-loop evaluation of a model into `runs/eval-MODEL-ID8`.
#[utoipa::path(post, path = "/evaluation/start", request_body = EvaluationRequest,
    responses((status = 200, body = Started), (status = 400, body = ApiError),
              (status = 422, description = "a missing model or a bad override", body = ApiError),
              (status = 429, description = "the queue is full", body = ApiError)))]
async fn evaluation_start(State(state): State<AppState>, body: Bytes) -> ApiResult<Started> {
    let req: EvaluationRequest = parse(&body)?;
    let name = checked_name("model", &req.model, "models")?;
    let model = Path::new("models").join(&name);
    if !model.join(raceloop_learn::policy::WEIGHTS_FILE).is_file() {
        return Err(ApiError::invalid(
            "model",
            format!("no trained model in {}", model.display()),
        ));
    }
    let mut overrides = Vec::new();
    if let Some(t) = &req.tracks {
        overrides.push(format!("evaluation.tracks='{}'", t.replace('\'', "")));
    }
    if let Some(n) = req.episodes_per_track {
        if !(1..=1000).contains(&n) {
            return Err(ApiError::invalid(
                "episodes_per_track",
                format!("must be 1 to 1,000, found {n}"),
            ));
        }
        overrides.push(format!("evaluation.episodes_per_track={n}"));
    }
    overrides.extend(req.overrides.iter().cloned());
    let resolved = resolve(&state, "overrides", &overrides)?;
    crate::episode::jobs::load_tracks(&resolved.config.evaluation.tracks)
        .map_err(|e| ApiError::invalid("tracks", format!("{e:#}")))?;
    let model_name = name.clone();
    let work: Work = Box::new(move |run, report, _stop| {
        let out = PathBuf::from("runs").join(format!("eval-{model_name}-{}", short(&run.id)));
        let summary = jobs::evaluate_model(&resolved, &model, &out, run, report)?;
        Ok(Produced {
            model_dir: Some(model),
            output_dir: Some(out),
            success_rate: Some(summary.model_overall.aggregate.success_rate),
            ..Produced::default()
        })
    });
    let id = submit(&state, Kind::Evaluation, &name, work)?;
    Ok(started(Kind::Evaluation, id))
}

/// Starts a collection of expert episodes and extracts a dataset version from it.
#[utoipa::path(post, path = "/collection/start", request_body = CollectSpec,
    responses((status = 200, body = Started), (status = 400, body = ApiError),
              (status = 422, description = "a bad override", body = ApiError),
              (status = 429, description = "the queue is full", body = ApiError)))]
async fn collection_start(State(state): State<AppState>, body: Bytes) -> ApiResult<Started> {
    let spec: CollectSpec = parse(&body)?;
    let overrides = collect_overrides(&spec, "")?;
    let resolved = resolve(&state, "overrides", &overrides)?;
    crate::episode::jobs::load_tracks(&resolved.config.collection.tracks)
        .map_err(|e| ApiError::invalid("tracks", format!("{e:#}")))?;
    let tracker = state.tracker.clone();
    let work: Work = Box::new(move |run, report, _stop| {
        let dir = jobs::collect_and_extract(&resolved, &tracker, Some(run), report)?;
        Ok(Produced {
            dataset_dir: Some(dir),
            ..Produced::default()
        })
    });
    let id = submit(&state, Kind::Collection, "collection", work)?;
    Ok(started(Kind::Collection, id))
}

/// A job's status from this process, or from the tracking store for a job of an earlier run
/// of the service (ended, or marked failed when the service restarted).
fn status_of(state: &AppState, kind: Kind, id: &str) -> Result<JobStatus, ApiError> {
    let unknown = || {
        ApiError::field(
            StatusCode::NOT_FOUND,
            "id",
            format!("no {} job `{id}`", kind.name()),
        )
    };
    if let Some(s) = state.queue.status(id) {
        return if s.kind == kind {
            Ok(s)
        } else {
            Err(unknown())
        };
    }
    if id.len() != 32 || !id.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(unknown());
    }
    let runs = state
        .tracker
        .runs(state.tracker.experiment_id())
        .map_err(|e| ApiError::internal(&e))?;
    let run = runs
        .into_iter()
        .find(|r| r.id == id && r.tags.get(KIND_TAG).is_some_and(|k| k == kind.name()))
        .ok_or_else(unknown)?;
    let job_state = match run.status {
        "FINISHED" => JobState::Finished,
        "KILLED" => JobState::Stopped,
        "RUNNING" => JobState::Running,
        _ => JobState::Failed,
    };
    Ok(JobStatus {
        id: run.id,
        kind,
        state: job_state,
        name: run.name,
        queue_position: 0,
        created_ms: run.start_ms,
        started_ms: Some(run.start_ms),
        ended_ms: run.end_ms,
        progress: jobs::Report {
            status: format!("{} (from the tracking store)", run.status.to_lowercase()),
            ..jobs::Report::default()
        },
        produced: Produced::default(),
        error: run.tags.get("raceloop.error").cloned(),
    })
}

fn stop_job(state: &AppState, kind: Kind, id: &str) -> ApiResult<JobStatus> {
    status_of(state, kind, id)?;
    state.queue.stop(id).map(Json).ok_or_else(|| {
        ApiError::field(
            StatusCode::CONFLICT,
            "id",
            format!("job `{id}` belongs to an earlier run of the service and has ended"),
        )
    })
}

macro_rules! job_routes {
    ($kind:expr, $status:ident, $stop:ident, $ws:ident, $status_path:literal, $stop_path:literal) => {
        /// The job's state, progress (epoch, batch, losses, samples/s, ETA, episodes), outputs
        /// and error.
        #[utoipa::path(get, path = $status_path, params(("id" = String, Path, description = "job id")),
            responses((status = 200, body = JobStatus), (status = 404, body = ApiError)))]
        async fn $status(
            State(state): State<AppState>,
            UrlPath(id): UrlPath<String>,
        ) -> ApiResult<JobStatus> {
            status_of(&state, $kind, &id).map(Json)
        }

        /// Stops the job: a queued one never starts, a running one stops at its next batch or
        /// episode (a training keeps its best epoch so far).
        #[utoipa::path(post, path = $stop_path, params(("id" = String, Path, description = "job id")),
            responses((status = 200, body = JobStatus), (status = 404, body = ApiError),
                      (status = 409, body = ApiError)))]
        async fn $stop(
            State(state): State<AppState>,
            UrlPath(id): UrlPath<String>,
        ) -> ApiResult<JobStatus> {
            stop_job(&state, $kind, &id)
        }

        async fn $ws(
            State(state): State<AppState>,
            UrlPath(id): UrlPath<String>,
            upgrade: WebSocketUpgrade,
        ) -> Response {
            match status_of(&state, $kind, &id) {
                Ok(_) => upgrade.on_upgrade(move |socket| stream(socket, state, $kind, id)),
                Err(e) => e.into_response(),
            }
        }
    };
}

job_routes!(
    Kind::Training,
    training_status,
    training_stop,
    training_ws,
    "/training/status/{id}",
    "/training/stop/{id}"
);
job_routes!(
    Kind::Evaluation,
    evaluation_status,
    evaluation_stop,
    evaluation_ws,
    "/evaluation/status/{id}",
    "/evaluation/stop/{id}"
);
job_routes!(
    Kind::Collection,
    collection_status,
    collection_stop,
    collection_ws,
    "/collection/status/{id}",
    "/collection/stop/{id}"
);

/// A progress message: the job's status with `"type": "progress"` or `"final"`.
#[derive(Serialize)]
struct StreamMessage<'a> {
    r#type: &'static str,
    #[serde(flatten)]
    status: &'a JobStatus,
}

/// Streams a job's status: at once, whenever its state, stage, epoch or episode count changes
/// (checked every 250 ms), at least every [`HEARTBEAT_S`] s, and a final message when it ends.
async fn stream(mut socket: WebSocket, state: AppState, kind: Kind, id: String) {
    let mut last_key = None;
    let mut last_sent = Instant::now();
    while let Ok(status) = status_of(&state, kind, &id) {
        let done = status.state.terminal();
        let key = (
            status.state,
            status.progress.stage.clone(),
            status.progress.epoch,
            status.progress.episodes_done,
        );
        if done || last_key.as_ref() != Some(&key) || last_sent.elapsed().as_secs() >= HEARTBEAT_S {
            let message = StreamMessage {
                r#type: if done { "final" } else { "progress" },
                status: &status,
            };
            let text = serde_json::to_string(&message).unwrap_or_default();
            if socket.send(Message::Text(text.into())).await.is_err() {
                return;
            }
            last_key = Some(key);
            last_sent = Instant::now();
        }
        if done {
            break;
        }
        tokio::select! {
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                _ => {}
            },
            () = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
    }
    let _ = socket.send(Message::Close(None)).await;
}

/// Every experiment of the tracking store (the file store or the MLflow server of
/// `--tracking-uri`).
#[utoipa::path(get, path = "/experiments",
    responses((status = 200, body = Experiments), (status = 500, body = ApiError)))]
async fn experiments(State(state): State<AppState>) -> ApiResult<Experiments> {
    let tracker = state.tracker.clone();
    let list = tokio::task::spawn_blocking(move || tracker.experiments())
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| ApiError::internal(&e))?;
    Ok(Json(Experiments { experiments: list }))
}

/// One experiment and its runs, newest first.
#[utoipa::path(get, path = "/experiments/{id}",
    params(("id" = String, Path, description = "experiment id")),
    responses((status = 200, body = ExperimentRuns), (status = 404, body = ApiError)))]
async fn experiment(
    State(state): State<AppState>,
    UrlPath(id): UrlPath<String>,
) -> ApiResult<ExperimentRuns> {
    let tracker = state.tracker.clone();
    let found = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let Some(experiment) = tracker
            .experiments()?
            .into_iter()
            .find(|e| e.experiment_id == id)
        else {
            return Ok(Err(id));
        };
        let runs = tracker.runs(&experiment.experiment_id)?;
        Ok(Ok(ExperimentRuns { experiment, runs }))
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    .map_err(|e| ApiError::internal(&e))?;
    found
        .map(Json)
        .map_err(|id| ApiError::field(StatusCode::NOT_FOUND, "id", format!("no experiment `{id}`")))
}
