//! `raceloop serve`: an HTTP service (axum on tokio) that starts, watches and stops training,
//! evaluation and collection jobs, lists the tracked experiments, and streams progress over
//! WebSocket. Jobs run on the same code as the commands and the window ([`crate::jobs`]), one at
//! a time in a queue ([`queue`]); each is a tracked MLflow run whose id is the job id.
//!
//! Safe by default: it binds 127.0.0.1; a non-loopback `--host` needs `--token`, and with a
//! token every request needs `Authorization: Bearer TOKEN`. Bodies are limited to
//! [`BODY_LIMIT`] bytes, names are checked against path traversal, and every error is JSON
//! that names the field.

mod queue;
mod routes;
mod state;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use clap::Args;

use crate::tracking::{Tracker, TrackingArgs};
use queue::Queue;
pub use state::AppState;

/// Largest request body, bytes.
pub const BODY_LIMIT: usize = 64 * 1024;

/// `raceloop serve` options.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to bind. Anything but a loopback address needs --token.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Port (0 = any free port; the chosen one is printed).
    #[arg(long, default_value_t = 8000)]
    pub port: u16,
    /// Bearer token that every request must carry (`Authorization: Bearer TOKEN`).
    #[arg(long, env = "RACELOOP_TOKEN")]
    pub token: Option<String>,
    /// Directory of RON config files that jobs start from (their overrides apply on top).
    #[arg(long, default_value = "configs")]
    pub configs: PathBuf,
}

/// Runs the service until Ctrl-C: binds, marks the jobs of an earlier run of the service that
/// were still running as failed, then serves.
///
/// # Errors
/// A non-loopback address without a token, tracking turned off, an unreachable store, or an
/// address in use.
pub fn serve(args: &ServeArgs, tracking: &TrackingArgs) -> Result<()> {
    if !args.host.is_loopback() && args.token.as_deref().is_none_or(str::is_empty) {
        bail!(
            "--host {} is reachable from other machines: give --token (or RACELOOP_TOKEN) so that \
             every request must carry `Authorization: Bearer TOKEN`",
            args.host
        );
    }
    if tracking.no_tracking {
        bail!("the service tracks every job (its id is the run id): drop --no-tracking");
    }
    let tracker = Tracker::open(&TrackingArgs {
        run_name: None,
        ..tracking.clone()
    })?;
    let lost = tracker.fail_running(
        queue::JOB_TAG.0,
        queue::JOB_TAG.1,
        "the service stopped while the job was queued or running",
    )?;
    if !lost.is_empty() {
        println!(
            "marked {} job(s) of an earlier service run as failed: {}",
            lost.len(),
            lost.join(", ")
        );
    }
    let (queue, worker) = Queue::start();
    let state = AppState {
        queue: queue.clone(),
        tracker,
        configs: args.configs.clone(),
        token: args.token.clone().map(Into::into),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(SocketAddr::new(args.host, args.port))
            .await
            .with_context(|| format!("binding {}:{}", args.host, args.port))?;
        let addr = listener.local_addr()?;
        println!(
            "raceloop serve: listening on http://{addr} (OpenAPI at /openapi.json; tracking {}, experiment {}){}",
            tracking.tracking_uri,
            tracking.experiment_name,
            if args.token.is_some() {
                "; requests need the bearer token"
            } else {
                ""
            }
        );
        axum::serve(listener, router(state))
            .with_graceful_shutdown(async {
                while !crate::interrupt::requested() {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            })
            .await
            .context("serving")
    })?;
    println!("stopping: queued jobs end as stopped; the running one stops at its next batch");
    queue.stop_all();
    drop(queue);
    let _ = worker.join();
    Ok(())
}

/// The routes, the token check, the body limit and the JSON 404.
pub fn router(state: AppState) -> Router {
    routes::routes()
        .fallback(|| async {
            routes::ApiError::new(StatusCode::NOT_FOUND, "no such route (see /openapi.json)")
        })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_token,
        ))
        .with_state(state)
}

/// Answers 401 unless the request carries the service's bearer token (when it has one).
async fn require_token(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if let Some(token) = &state.token {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !same(given.as_bytes(), token.as_bytes()) {
            return routes::ApiError::new(
                StatusCode::UNAUTHORIZED,
                "missing or wrong `Authorization: Bearer TOKEN` header",
            )
            .into_response();
        }
    }
    next.run(request).await
}

/// Compares two secrets in time that does not depend on where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
