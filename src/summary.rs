//! Run summaries: `aggregated_results.csv` and `summary.json` from the episodes' `result.json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::atomic_file;
use crate::headless::RESULT_FILE;
use crate::result::EpisodeResult;

/// Aggregate of a run's episodes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Finished episodes.
    pub episodes: usize,
    /// Episodes with outcome `goal_reached`.
    pub successes: usize,
    /// `successes / episodes`.
    pub success_rate: f64,
    /// Count of each outcome.
    pub outcomes: BTreeMap<String, usize>,
    /// Mean simulated duration, s.
    pub mean_duration_s: f64,
    /// Mean distance driven, m.
    pub mean_distance_m: f64,
    /// Mean progress, m.
    pub mean_progress_m: f64,
    /// Mean of the episodes' mean |lateral deviation|, m.
    pub mean_abs_deviation_m: f64,
    /// Total physics steps.
    pub steps: u64,
    /// Success rate per track.
    pub per_track: BTreeMap<String, TrackSummary>,
}

/// Per-track aggregate.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrackSummary {
    /// Episodes on this track.
    pub episodes: usize,
    /// Successful ones.
    pub successes: usize,
    /// `successes / episodes`.
    pub success_rate: f64,
}

impl Summary {
    /// Aggregates `results`.
    pub fn of(results: &[EpisodeResult]) -> Self {
        let n = results.len().max(1) as f64;
        let mut s = Summary {
            episodes: results.len(),
            ..Default::default()
        };
        for r in results {
            s.successes += r.success as usize;
            *s.outcomes.entry(r.outcome.as_str().into()).or_default() += 1;
            s.mean_duration_s += r.duration_s / n;
            s.mean_distance_m += r.distance_m / n;
            s.mean_progress_m += r.progress_m / n;
            s.mean_abs_deviation_m += r.mean_abs_deviation_m / n;
            s.steps += r.steps;
            let t = s.per_track.entry(r.track.clone()).or_default();
            t.episodes += 1;
            t.successes += r.success as usize;
        }
        s.success_rate = s.successes as f64 / n;
        for t in s.per_track.values_mut() {
            t.success_rate = t.successes as f64 / t.episodes.max(1) as f64;
        }
        s
    }

    /// One line for the terminal.
    pub fn line(&self) -> String {
        let failures: Vec<String> = self
            .outcomes
            .iter()
            .filter(|(k, _)| *k != "goal_reached")
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        format!(
            "{} episodes, success rate {:.1} % ({}){}; mean progress {:.1} m, mean |d| {:.3} m",
            self.episodes,
            100.0 * self.success_rate,
            self.successes,
            if failures.is_empty() {
                String::new()
            } else {
                format!(", failures: {}", failures.join(", "))
            },
            self.mean_progress_m,
            self.mean_abs_deviation_m
        )
    }
}

/// Reads every finished episode's `result.json` under `run/episodes/`, sorted by seed.
///
/// # Errors
/// A missing `episodes/` folder, or a `result.json` that does not parse (naming it).
pub fn read_results(run: &Path) -> Result<Vec<EpisodeResult>> {
    let dir = run.join("episodes");
    let entries = std::fs::read_dir(&dir).with_context(|| {
        format!(
            "reading {} (is {} a run directory?)",
            dir.display(),
            run.display()
        )
    })?;
    let mut results = Vec::new();
    for entry in entries {
        let path = entry?.path().join(RESULT_FILE);
        if path.is_file() {
            results.push(atomic_file::read_json::<EpisodeResult>(&path)?);
        }
    }
    results.sort_by_key(|r| r.seed);
    Ok(results)
}

/// Writes `aggregated_results.csv` (one row per episode) and `summary.json` into `run`.
///
/// # Errors
/// I/O errors naming the file.
pub fn write(run: &Path, results: &[EpisodeResult]) -> Result<Summary> {
    let mut csv = csv::Writer::from_writer(Vec::new());
    csv.write_record([
        "seed",
        "track",
        "success",
        "outcome",
        "duration_s",
        "distance_m",
        "progress_m",
        "goal_m",
        "laps",
        "best_lap_s",
        "mean_abs_deviation_m",
        "max_abs_deviation_m",
        "checkpoints",
        "steps",
    ])?;
    for r in results {
        let best = r.lap_times_s.iter().cloned().fold(f64::INFINITY, f64::min);
        csv.write_record([
            r.seed.to_string(),
            r.track.clone(),
            r.success.to_string(),
            r.outcome.as_str().into(),
            format!("{:.3}", r.duration_s),
            format!("{:.3}", r.distance_m),
            format!("{:.3}", r.progress_m),
            format!("{:.3}", r.goal_m),
            r.laps.to_string(),
            if best.is_finite() {
                format!("{best:.3}")
            } else {
                String::new()
            },
            format!("{:.4}", r.mean_abs_deviation_m),
            format!("{:.4}", r.max_abs_deviation_m),
            r.checkpoints.to_string(),
            r.steps.to_string(),
        ])?;
    }
    atomic_file::write(&run.join("aggregated_results.csv"), csv.into_inner()?)?;
    let summary = Summary::of(results);
    atomic_file::write_json(&run.join("summary.json"), &summary)?;
    Ok(summary)
}

/// The most recently modified run directory under `root` (one holding `episodes/`).
///
/// # Errors
/// When there is none.
pub fn latest_run(root: &Path) -> Result<PathBuf> {
    let mut best: Option<(std::time::SystemTime, PathBuf)> = None;
    if let Ok(entries) = std::fs::read_dir(root) {
        for e in entries.flatten() {
            let p = e.path();
            if p.join("episodes").is_dir()
                && let Ok(t) = e.metadata().and_then(|m| m.modified())
                && best.as_ref().is_none_or(|(b, _)| t > *b)
            {
                best = Some((t, p));
            }
        }
    }
    match best {
        Some((_, p)) => Ok(p),
        None => bail!("no run directory under {}", root.display()),
    }
}
