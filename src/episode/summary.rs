//! What a set of episodes achieved: the one aggregate ([`Aggregate`]) that collection
//! summaries and evaluations share, and a run's `aggregated_results.csv` and `summary.json`
//! from its episodes' `result.json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::result::{Collided, EpisodeResult};
use super::runner::RESULT_FILE;

/// The one aggregate of a set of episodes (a run, a track, a driver on a track). Units in the
/// field names; means are over episodes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Aggregate {
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
    /// Mean progress as a fraction of the goal (each episode clamped to [0, 1]).
    pub mean_progress_fraction: f64,
    /// Mean time of the completed laps, s (`None` when no lap was completed).
    pub mean_lap_time_s: Option<f64>,
    /// Mean of the episodes' mean |lateral deviation| from the centerline, m.
    pub mean_abs_deviation_m: f64,
    /// Mean checkpoints passed (every 10 % of a lap).
    pub mean_checkpoints: f64,
    /// Peak |lateral acceleration| over the episodes, m/s².
    #[serde(default)]
    pub peak_lateral_acceleration_mps2: f64,
    /// Least clearance between the car's side and the nearest wall over the episodes, m
    /// (0 when there are none).
    #[serde(default)]
    pub min_wall_clearance_m: f64,
    /// Collisions with a wall.
    #[serde(default)]
    pub wall_collisions: usize,
    /// Collisions with an obstacle.
    #[serde(default)]
    pub obstacle_collisions: usize,
    /// Mean distance driven before a collision, over the episodes that ended in one, m (the
    /// avoidance flow's "distance travelled before a collision"; `None` without collisions).
    #[serde(default)]
    pub mean_distance_before_collision_m: Option<f64>,
    /// Episodes with obstacles.
    #[serde(default)]
    pub obstacle_episodes: usize,
    /// Obstacles passed, summed over the episodes (each counted once per lap).
    #[serde(default)]
    pub obstacles_passed: u64,
    /// Least distance between the car's footprint and an obstacle over the episodes with
    /// obstacles, m (searched up to 2 m; `None` without obstacles).
    #[serde(default)]
    pub min_obstacle_clearance_m: Option<f64>,
    /// Total physics steps.
    pub steps: u64,
}

impl Aggregate {
    /// Aggregates `results`.
    pub fn of<'a>(results: impl IntoIterator<Item = &'a EpisodeResult>) -> Self {
        let results: Vec<&EpisodeResult> = results.into_iter().collect();
        let n = results.len().max(1) as f64;
        let mut a = Aggregate {
            episodes: results.len(),
            min_wall_clearance_m: if results.is_empty() { 0.0 } else { f64::MAX },
            ..Default::default()
        };
        let (mut lap_sum, mut laps) = (0.0, 0usize);
        let (mut collided_distance, mut collisions) = (0.0, 0usize);
        for r in &results {
            match r.collision_with {
                Some(Collided::Wall) => a.wall_collisions += 1,
                Some(Collided::Obstacle) => a.obstacle_collisions += 1,
                None => {}
            }
            if r.collision_with.is_some() {
                collided_distance += r.distance_m;
                collisions += 1;
            }
            if let Some(o) = &r.obstacles {
                a.obstacle_episodes += 1;
                a.obstacles_passed += o.passed as u64;
                a.min_obstacle_clearance_m = Some(
                    a.min_obstacle_clearance_m
                        .map_or(o.min_clearance_m, |m| m.min(o.min_clearance_m)),
                );
            }
            a.successes += r.success as usize;
            *a.outcomes.entry(r.outcome.as_str().into()).or_default() += 1;
            a.mean_duration_s += r.duration_s / n;
            a.mean_distance_m += r.distance_m / n;
            a.mean_progress_m += r.progress_m / n;
            a.mean_progress_fraction += (r.progress_m / r.goal_m).clamp(0.0, 1.0) / n;
            a.mean_abs_deviation_m += r.mean_abs_deviation_m / n;
            a.mean_checkpoints += r.checkpoints as f64 / n;
            a.peak_lateral_acceleration_mps2 = a
                .peak_lateral_acceleration_mps2
                .max(r.peak_lateral_acceleration_mps2);
            a.min_wall_clearance_m = a.min_wall_clearance_m.min(r.min_wall_clearance_m);
            a.steps += r.steps;
            lap_sum += r.lap_times_s.iter().sum::<f64>();
            laps += r.lap_times_s.len();
        }
        a.success_rate = a.successes as f64 / n;
        a.mean_distance_before_collision_m =
            (collisions > 0).then(|| collided_distance / collisions as f64);
        a.mean_lap_time_s = (laps > 0).then(|| lap_sum / laps as f64);
        a
    }

    /// [`Self::of`] for each track of `results`, by track name.
    pub fn per_track<'a>(
        results: impl IntoIterator<Item = &'a EpisodeResult>,
    ) -> BTreeMap<String, Self> {
        let mut by: BTreeMap<String, Vec<&EpisodeResult>> = BTreeMap::new();
        for r in results {
            by.entry(r.track.clone()).or_default().push(r);
        }
        by.into_iter().map(|(t, rs)| (t, Self::of(rs))).collect()
    }

    /// The outcomes other than `goal_reached`, with their counts.
    pub fn failures(&self) -> impl Iterator<Item = (&str, usize)> {
        self.outcomes
            .iter()
            .filter(|(k, _)| *k != "goal_reached")
            .map(|(k, v)| (k.as_str(), *v))
    }
}

/// `summary.json` of a collection run: the whole run and each track.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Over all episodes.
    #[serde(flatten)]
    pub overall: Aggregate,
    /// Per track.
    pub per_track: BTreeMap<String, Aggregate>,
}

impl Summary {
    /// Aggregates `results`.
    pub fn of(results: &[EpisodeResult]) -> Self {
        Self {
            overall: Aggregate::of(results),
            per_track: Aggregate::per_track(results),
        }
    }

    /// One line for the terminal.
    pub fn line(&self) -> String {
        let o = &self.overall;
        let failures: Vec<String> = o.failures().map(|(k, v)| format!("{k} {v}")).collect();
        format!(
            "{} episodes, success rate {:.1} % ({}){}; mean progress {:.1} m, mean |d| {:.3} m",
            o.episodes,
            100.0 * o.success_rate,
            o.successes,
            if failures.is_empty() {
                String::new()
            } else {
                format!(", failures: {}", failures.join(", "))
            },
            o.mean_progress_m,
            o.mean_abs_deviation_m
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
            results.push(raceloop_files::read_json::<EpisodeResult>(&path)?);
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
        "collision_with",
        "obstacles",
        "obstacles_passed",
        "min_obstacle_clearance_m",
        "collided_obstacle_id",
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
            r.collision_with.map_or("", Collided::as_str).into(),
            r.obstacles.as_ref().map_or(0, |o| o.count).to_string(),
            r.obstacles.as_ref().map_or(0, |o| o.passed).to_string(),
            r.obstacles
                .as_ref()
                .map_or(String::new(), |o| format!("{:.4}", o.min_clearance_m)),
            r.obstacles
                .as_ref()
                .and_then(|o| o.collided_id)
                .map_or(String::new(), |id| id.to_string()),
            r.steps.to_string(),
        ])?;
    }
    raceloop_files::write(&run.join("aggregated_results.csv"), csv.into_inner()?)?;
    let summary = Summary::of(results);
    raceloop_files::write_json(&run.join("summary.json"), &summary)?;
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
