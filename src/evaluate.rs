//! `raceloop evaluate`: a trained model drives closed loop on the shipped tracks from evaluation
//! seeds; the expert drives the same seeds as the reference.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use raceloop_learn::Policy;
use raceloop_sim::{PurePursuit, SimConfig, StartMode, Track};
use serde::{Deserialize, Serialize};

use crate::atomic_file;
use crate::collect::{load_tracks, run_jobs};
use crate::headless::EpisodeJob;
use crate::model_driver::ModelDriver;
use crate::result::EpisodeResult;
use crate::sim_plugin::Driver;

/// Evaluation settings (`configs/evaluation.ron`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvaluationConfig {
    /// Episodes per track.
    pub episodes_per_track: usize,
    /// Seed of the first evaluation episode.
    pub seed: u64,
    /// `all`, or comma-separated names / paths.
    pub tracks: String,
    /// Goal, laps.
    pub laps: f64,
    /// Start mode.
    pub start: StartMode,
    /// Scan (and model) period, physics steps.
    pub lidar_period_steps: u32,
    /// Time limit = goal / this, m/s.
    pub min_average_speed: f64,
    /// Write the MCAP (and config, result) of every model episode (≈ 30 MB per 2-lap episode).
    pub record: bool,
    /// Also write the expert reference episodes' files (doubles the disk use).
    pub record_expert: bool,
    /// Evaluate the expert too.
    pub expert_reference: bool,
    /// Parallel episodes; 0 = all cores.
    pub workers: usize,
}

/// Aggregates of one driver on one track.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrackMetrics {
    /// Episodes.
    pub episodes: usize,
    /// Fraction with outcome `goal_reached`.
    pub success_rate: f64,
    /// Count of each outcome.
    pub outcomes: BTreeMap<String, usize>,
    /// Mean progress, m.
    pub mean_progress_m: f64,
    /// Mean progress as a fraction of the goal.
    pub mean_progress_fraction: f64,
    /// Mean time of completed laps, s (NaN → null when none).
    pub mean_lap_time_s: Option<f64>,
    /// `mean_lap_time_s` over the expert's on the same track.
    pub lap_time_ratio_to_expert: Option<f64>,
    /// Mean |lateral deviation| from the centerline, m.
    pub mean_abs_deviation_m: f64,
    /// Mean checkpoints passed.
    pub mean_checkpoints: f64,
}

impl TrackMetrics {
    fn of(results: &[&EpisodeResult]) -> Self {
        let n = results.len().max(1) as f64;
        let mut m = TrackMetrics {
            episodes: results.len(),
            ..Default::default()
        };
        let laps: Vec<f64> = results
            .iter()
            .flat_map(|r| r.lap_times_s.iter().copied())
            .collect();
        for r in results {
            *m.outcomes.entry(r.outcome.as_str().into()).or_default() += 1;
            m.mean_progress_m += r.progress_m / n;
            m.mean_progress_fraction += (r.progress_m / r.goal_m).clamp(0.0, 1.0) / n;
            m.mean_abs_deviation_m += r.mean_abs_deviation_m / n;
            m.mean_checkpoints += r.checkpoints as f64 / n;
        }
        m.success_rate = results.iter().filter(|r| r.success).count() as f64 / n;
        m.mean_lap_time_s =
            (!laps.is_empty()).then(|| laps.iter().sum::<f64>() / laps.len() as f64);
        m
    }
}

/// `evaluation_summary.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvaluationSummary {
    /// Model directory.
    pub model: PathBuf,
    /// Settings.
    pub settings: EvaluationConfig,
    /// Per track, the model's metrics.
    pub model_per_track: BTreeMap<String, TrackMetrics>,
    /// Per track, the expert's metrics (reference).
    pub expert_per_track: BTreeMap<String, TrackMetrics>,
    /// Over all tracks, the model.
    pub model_overall: TrackMetrics,
    /// Over all tracks, the expert.
    pub expert_overall: Option<TrackMetrics>,
    /// Tracks where the model's success rate is ≥ 95 % and its lap time within 110 % of the expert's.
    pub tracks_meeting_target: usize,
    /// Wall time, s.
    pub wall_time_s: f64,
}

fn per_track(results: &[EpisodeResult]) -> BTreeMap<String, TrackMetrics> {
    let mut by: BTreeMap<String, Vec<&EpisodeResult>> = BTreeMap::new();
    for r in results {
        by.entry(r.track.clone()).or_default().push(r);
    }
    by.into_iter()
        .map(|(t, rs)| (t, TrackMetrics::of(&rs)))
        .collect()
}

/// Evaluates `model_dir` into `out`. Returns the summary.
///
/// # Errors
/// Unloadable model, bad settings, I/O errors, Ctrl-C.
pub fn evaluate(
    model_dir: &Path,
    e: &EvaluationConfig,
    base: &SimConfig,
    out: &Path,
) -> Result<EvaluationSummary> {
    let t0 = std::time::Instant::now();
    let policy = Policy::load(model_dir)
        .with_context(|| format!("loading model {}", model_dir.display()))?;
    let mut tracks = load_tracks(&e.tracks)?;
    let mut seen = std::collections::HashSet::new();
    tracks.retain(|t| seen.insert(t.name.clone()));
    let mut sim = base.clone();
    sim.episode.laps = e.laps;
    sim.episode.start.mode = e.start;
    sim.episode.min_average_speed = e.min_average_speed;
    sim.lidar.period_steps = e.lidar_period_steps;
    sim.validate()?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let jobs = |driver: &str, record: bool| -> Vec<EpisodeJob> {
        tracks
            .iter()
            .enumerate()
            .flat_map(|(k, track)| {
                (0..e.episodes_per_track)
                    .map(move |i| (k, track, e.seed + (k * e.episodes_per_track + i) as u64))
            })
            .map(|(_, track, seed): (usize, &Arc<Track>, u64)| EpisodeJob {
                track: track.clone(),
                config: sim.clone(),
                seed,
                dir: record.then(|| out.join(driver).join("episodes").join(seed.to_string())),
            })
            .collect()
    };
    let shared = Mutex::new(policy);
    let model_results = run_jobs(
        &jobs("model", e.record),
        e.workers,
        "evaluate model",
        |_| {
            Driver::Model(Box::new(ModelDriver(
                shared.lock().expect("policy").clone(),
            )))
        },
        &model_dir.display().to_string(),
    )?;
    let expert_results = if e.expert_reference {
        run_jobs(
            &jobs("expert", e.record_expert),
            e.workers,
            "evaluate expert",
            |job| Driver::PurePursuit(PurePursuit::new(job.config.expert.clone(), &job.track)),
            "expert",
        )?
    } else {
        Vec::new()
    };
    let mut model_per_track = per_track(&model_results);
    let expert_per_track = per_track(&expert_results);
    let mut meeting = 0;
    for (track, m) in &mut model_per_track {
        if let (Some(ml), Some(el)) = (
            m.mean_lap_time_s,
            expert_per_track.get(track).and_then(|x| x.mean_lap_time_s),
        ) {
            m.lap_time_ratio_to_expert = Some(ml / el);
        }
        meeting += (m.success_rate >= 0.95 && m.lap_time_ratio_to_expert.is_some_and(|r| r <= 1.10))
            as usize;
    }
    let all_model: Vec<&EpisodeResult> = model_results.iter().collect();
    let all_expert: Vec<&EpisodeResult> = expert_results.iter().collect();
    let summary = EvaluationSummary {
        model: model_dir.to_path_buf(),
        settings: e.clone(),
        model_overall: TrackMetrics::of(&all_model),
        expert_overall: e.expert_reference.then(|| TrackMetrics::of(&all_expert)),
        model_per_track,
        expert_per_track,
        tracks_meeting_target: meeting,
        wall_time_s: t0.elapsed().as_secs_f64(),
    };
    atomic_file::write_json(&out.join("evaluation_summary.json"), &summary)?;
    atomic_file::write(&out.join("per_track.csv"), table_csv(&summary)?)?;
    Ok(summary)
}

fn table_csv(s: &EvaluationSummary) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "track",
        "driver",
        "episodes",
        "success_rate",
        "failures",
        "mean_progress_m",
        "mean_progress_pct",
        "mean_lap_time_s",
        "lap_time_ratio_to_expert",
        "mean_abs_deviation_m",
        "mean_checkpoints",
    ])?;
    let rows = s
        .model_per_track
        .iter()
        .map(|(t, m)| (t, "model", m))
        .chain(s.expert_per_track.iter().map(|(t, m)| (t, "expert", m)));
    for (t, driver, m) in rows {
        let failures: Vec<String> = m
            .outcomes
            .iter()
            .filter(|(k, _)| *k != "goal_reached")
            .map(|(k, v)| format!("{k}:{v}"))
            .collect();
        w.write_record([
            t.clone(),
            driver.into(),
            m.episodes.to_string(),
            format!("{:.3}", m.success_rate),
            failures.join(" "),
            format!("{:.1}", m.mean_progress_m),
            format!("{:.1}", 100.0 * m.mean_progress_fraction),
            m.mean_lap_time_s
                .map_or(String::new(), |x| format!("{x:.3}")),
            m.lap_time_ratio_to_expert
                .map_or(String::new(), |x| format!("{x:.3}")),
            format!("{:.3}", m.mean_abs_deviation_m),
            format!("{:.2}", m.mean_checkpoints),
        ])?;
    }
    Ok(w.into_inner()?)
}

/// The per-track table as text.
pub fn table(s: &EvaluationSummary) -> String {
    let mut out = format!(
        "{:<14} {:>8} {:>9} {:>10} {:>8} {:>9} {:>8}  failures\n",
        "track", "success", "progress", "lap time", "vs exp.", "expert", "mean|d|"
    );
    for (t, m) in &s.model_per_track {
        let ex = s.expert_per_track.get(t);
        let failures: Vec<String> = m
            .outcomes
            .iter()
            .filter(|(k, _)| *k != "goal_reached")
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        out += &format!(
            "{:<14} {:>7.0}% {:>8.0}% {:>10} {:>8} {:>8} {:>8.3}  {}\n",
            t,
            100.0 * m.success_rate,
            100.0 * m.mean_progress_fraction,
            m.mean_lap_time_s
                .map_or("-".into(), |x| format!("{x:.2} s")),
            m.lap_time_ratio_to_expert
                .map_or("-".into(), |x| format!("{:.1}%", 100.0 * x)),
            ex.map_or("-".into(), |x| format!("{:.0}%", 100.0 * x.success_rate)),
            m.mean_abs_deviation_m,
            failures.join(", ")
        );
    }
    let o = &s.model_overall;
    out += &format!(
        "{:<14} {:>7.1}% {:>8.0}%   (expert {}), {} of {} tracks meet ≥95 % success with lap time ≤110 % of the expert's\n",
        "overall",
        100.0 * o.success_rate,
        100.0 * o.mean_progress_fraction,
        s.expert_overall
            .as_ref()
            .map_or("-".into(), |x| format!("{:.1} %", 100.0 * x.success_rate)),
        s.tracks_meeting_target,
        s.model_per_track.len()
    );
    out
}
