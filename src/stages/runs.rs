//! `raceloop runs` (recent tracked runs) and `raceloop lineage` (where a model came from).

use std::path::Path;

use anyhow::{Result, bail};

use raceloop_files::read_json;

use super::collect::RunInfo;
use super::extract::{EpisodeRef, Manifest};
use super::train::Lineage;
use crate::tracking::{FileStore, RunRecord, TrackingArgs};

/// Metrics shown in the list, in this order, where a run has them.
pub const KEY_METRICS: [&str; 5] = [
    "success_rate",
    "best_val_loss",
    "episodes_per_s",
    "samples_train",
    "lap_time_ratio_to_expert",
];

/// The runs of the tracked experiment in a file store, newest first.
///
/// # Errors
/// A server URI (use the MLflow UI there), a missing or unreadable store.
pub fn recent(tracking: &TrackingArgs) -> Result<Vec<RunRecord>> {
    let uri = &tracking.tracking_uri;
    if uri.starts_with("http://") || uri.starts_with("https://") {
        bail!("runs are listed from a file store; for the server {uri}, open its web UI");
    }
    let root = Path::new(uri.strip_prefix("file://").unwrap_or(uri));
    if !root.is_dir() {
        bail!(
            "no tracking store at {} yet: run a command first",
            root.display()
        );
    }
    FileStore::new(root.to_path_buf())?.runs(&tracking.experiment_name)
}

/// Prints the `limit` newest runs of the experiment in a file store.
///
/// # Errors
/// As [`recent`].
pub fn list(tracking: &TrackingArgs, limit: usize) -> Result<()> {
    let runs = recent(tracking)?;
    println!(
        "{:<19} {:>7} {:<9} {:<34} {:<32} key metrics",
        "start", "time", "status", "run name", "run id"
    );
    for r in runs.iter().take(limit) {
        let start = chrono::DateTime::from_timestamp_millis(r.start_ms as i64)
            .map(|t| {
                t.with_timezone(&chrono::Local)
                    .format("%Y-%m-%d %H:%M:%S")
                    .to_string()
            })
            .unwrap_or_default();
        let metrics: Vec<String> = KEY_METRICS
            .iter()
            .filter_map(|k| r.metrics.get(*k).map(|v| format!("{k}={v:.4}")))
            .collect();
        let child = if r.tags.contains_key("mlflow.parentRunId") {
            "  └ "
        } else {
            ""
        };
        let duration = r
            .end_ms
            .map(|e| format!("{:.0} s", e.saturating_sub(r.start_ms) as f64 / 1000.0))
            .unwrap_or_default();
        println!(
            "{start:<19} {duration:>7} {:<9} {:<34} {:<32} {}",
            r.status,
            format!("{child}{}", r.name),
            r.id,
            metrics.join("  ")
        );
    }
    println!(
        "{} of {} runs in {} (experiment {}); all of them: MLFLOW_ALLOW_FILE_STORE=true mlflow ui --backend-store-uri {}",
        runs.len().min(limit),
        runs.len(),
        tracking.tracking_uri,
        tracking.experiment_name,
        tracking.tracking_uri
    );
    Ok(())
}

/// Prints model → training run → dataset version → collection runs → seeds, configs, commits.
/// Missing links (a dataset or run not on this machine) are reported, not fatal.
///
/// # Errors
/// A directory without `lineage.json`.
pub fn lineage(model: &Path) -> Result<()> {
    let l: Lineage = read_json(&model.join("lineage.json"))?;
    println!("model {} ({})", l.model, model.display());
    println!(
        "  trained: best epoch {} (val loss {:.5}) in {:.0} s; configs {}; commit {}{}; {}",
        l.best_epoch,
        l.best_val_loss,
        l.train_seconds,
        l.config_hash,
        l.versions.git_commit,
        if l.versions.git_dirty { " (dirty)" } else { "" },
        l.versions.rustc
    );
    if !l.tracking_run.is_empty() {
        println!("  tracked run: {}", l.tracking_run);
    }
    for file in ["config.ron", "evaluation_summary.json"] {
        if model.join(file).is_file() {
            println!("  {}", model.join(file).display());
        }
    }
    println!(
        "  dataset {} ({})",
        l.dataset_version,
        l.dataset_dir.display()
    );
    let Ok(m) = read_json::<Manifest>(&l.dataset_dir.join("manifest.json")) else {
        println!("    (not on this machine; its source runs were:)");
        for r in &l.source_runs {
            println!("    collection run {}", r.display());
        }
        return Ok(());
    };
    println!(
        "    {} train / {} val samples; {} train / {} val episodes; dropped {:?}",
        m.samples[0],
        m.samples[1],
        m.train.len(),
        m.val.len(),
        m.dropped
    );
    for run in &m.source_runs {
        let seeds = |refs: &[EpisodeRef]| {
            let s: Vec<u64> = refs
                .iter()
                .filter(|e| &e.run == run)
                .map(|e| e.seed)
                .collect();
            match (s.iter().min(), s.iter().max()) {
                (Some(a), Some(b)) => format!("{} episodes, seeds {a}..={b}", s.len()),
                _ => "none".into(),
            }
        };
        println!("    collection run {}", run.display());
        println!("      train: {}; val: {}", seeds(&m.train), seeds(&m.val));
        match read_json::<RunInfo>(&run.join("run.json")) {
            Ok(info) => println!(
                "      {} episodes on {} track(s), commit {}{}; config {}",
                info.collection.episodes,
                info.tracks.len(),
                info.versions.git_commit,
                if info.versions.git_dirty {
                    " (dirty)"
                } else {
                    ""
                },
                if run.join("config.ron").is_file() {
                    run.join("config.ron").display().to_string()
                } else {
                    "in run.json".into()
                }
            ),
            Err(_) => println!("      (run.json not on this machine)"),
        }
    }
    Ok(())
}
