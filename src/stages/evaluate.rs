//! `raceloop evaluate`: a trained model drives closed loop on the shipped tracks from evaluation
//! seeds; the expert drives the same seeds as the reference.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail};
use raceloop_learn::Policy;
use raceloop_record::Detail;
use raceloop_sim::speed_profile::lap_time;
use raceloop_sim::{PurePursuit, SimConfig, Track};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::EvaluationConfig;
use crate::episode::jobs::{load_tracks, run_jobs};
use crate::episode::model_driver::ModelDriver;
use crate::episode::plugin::Driver;
use crate::episode::result::EpisodeResult;
use crate::episode::runner::EpisodeJob;
use crate::episode::summary::Aggregate;
use crate::tracking::provenance;

/// One driver's [`Aggregate`] on one track, with its lap time relative to the expert's.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrackMetrics {
    /// Success, progress, lap time, deviation, checkpoints.
    #[serde(flatten)]
    pub aggregate: Aggregate,
    /// `mean_lap_time_s` over the expert's on the same track and seeds.
    pub lap_time_ratio_to_expert: Option<f64>,
    /// `mean_lap_time_s` over the shipped raceline's reference lap time (its speed profile
    /// integrated over one lap); `None` where the track ships no raceline.
    #[serde(default)]
    pub lap_time_ratio_to_reference: Option<f64>,
}

impl std::ops::Deref for TrackMetrics {
    type Target = Aggregate;

    fn deref(&self) -> &Aggregate {
        &self.aggregate
    }
}

impl From<Aggregate> for TrackMetrics {
    fn from(aggregate: Aggregate) -> Self {
        Self {
            aggregate,
            lap_time_ratio_to_expert: None,
            lap_time_ratio_to_reference: None,
        }
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
    /// Per track with a shipped raceline, its reference lap time, s.
    #[serde(default)]
    pub reference_lap_time_s: BTreeMap<String, f64>,
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
    Aggregate::per_track(results)
        .into_iter()
        .map(|(t, a)| (t, a.into()))
        .collect()
}

/// Evaluates `model_dir` into `out`, or returns the evaluation already there when it was made
/// from the same weights, settings, tracks and build (`evaluation.key`); results of anything
/// else in `out` are removed first, never mixed. Returns the summary.
///
/// # Errors
/// Unloadable model, a LiDAR whose beam count differs from the model's, bad settings, I/O
/// errors, Ctrl-C.
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
    let sim = e.episode_sim(base)?;
    let beams = policy.config().num_beams;
    if sim.lidar.num_beams != beams {
        bail!(
            "the LiDAR has {} beams (lidar.num_beams) but model {} reads {beams} (its model.json); \
             evaluate with lidar.num_beams={beams}",
            sim.lidar.num_beams,
            model_dir.display()
        );
    }
    let key = evaluation_key(model_dir, e, &sim, &tracks)?;
    if let Some(summary) = reuse_or_clear(out, &key)? {
        println!(
            "evaluate: cached (same weights, settings, tracks and build) in {}",
            out.display()
        );
        return Ok(summary);
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    raceloop_files::write(&out.join(KEY_FILE), &key)?;
    let detail = if e.thin_successes {
        Detail::Thin
    } else {
        Detail::ALL
    };
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
                detail,
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
    )?
    .results;
    let expert_results = if e.expert_reference {
        run_jobs(
            &jobs("expert", e.record_expert),
            e.workers,
            "evaluate expert",
            |job| {
                Driver::PurePursuit(PurePursuit::new(
                    job.config.expert.clone(),
                    &job.track,
                    &job.config.vehicle,
                ))
            },
            "expert",
        )?
        .results
    } else {
        Vec::new()
    };
    let mut model_per_track = per_track(&model_results);
    let mut expert_per_track = per_track(&expert_results);
    let reference_lap_time_s: BTreeMap<String, f64> = tracks
        .iter()
        .filter_map(|t| {
            let r = t.raceline.as_ref()?;
            Some((t.name.clone(), lap_time(&r.path, &r.speed)))
        })
        .collect();
    for (track, m) in model_per_track.iter_mut().chain(&mut expert_per_track) {
        if let (Some(l), Some(r)) = (m.mean_lap_time_s, reference_lap_time_s.get(track)) {
            m.lap_time_ratio_to_reference = Some(l / r);
        }
    }
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
    let summary = EvaluationSummary {
        model: model_dir.to_path_buf(),
        settings: e.clone(),
        model_overall: Aggregate::of(&model_results).into(),
        expert_overall: e
            .expert_reference
            .then(|| Aggregate::of(&expert_results).into()),
        model_per_track,
        expert_per_track,
        reference_lap_time_s,
        tracks_meeting_target: meeting,
        wall_time_s: t0.elapsed().as_secs_f64(),
    };
    raceloop_files::write_json(&out.join("evaluation_summary.json"), &summary)?;
    raceloop_files::write(&out.join("per_track.csv"), table_csv(&summary)?)?;
    Ok(summary)
}

/// The file in an evaluation directory that names what produced its results.
pub const KEY_FILE: &str = "evaluation.key";

/// A digest of everything an evaluation's episodes depend on: the model
/// ([`crate::episode::model_driver::model_digest`]: weights, `model.json`, `stats.json`, the
/// rounding class of the inference path and the CPU architecture), the settings (not the worker
/// count), the simulation config, the tracks' geometry and the build.
///
/// # Errors
/// Unreadable model files.
pub fn evaluation_key(
    model_dir: &Path,
    e: &EvaluationConfig,
    sim: &SimConfig,
    tracks: &[Arc<Track>],
) -> Result<String> {
    let model = crate::episode::model_driver::model_digest(model_dir)?;
    let settings = EvaluationConfig {
        workers: 0,
        ..e.clone()
    };
    let mut h = Sha256::new();
    h.update(model.as_bytes());
    h.update(serde_json::to_string(&settings)?.as_bytes());
    h.update(sim.to_ron().as_bytes());
    for t in tracks {
        h.update(format!("{}|{:?}", t.name, t.centerline.points()).as_bytes());
    }
    h.update(
        format!(
            "{}|{}|{}",
            provenance::VERSION,
            provenance::GIT_COMMIT,
            provenance::GIT_DIRTY,
        )
        .as_bytes(),
    );
    Ok(crate::config::hex(&h.finalize()[..8]))
}

/// The finished evaluation in `out` when its key is `key`; otherwise `None`, after removing
/// the results there of another model, settings or track set (saying so), so that they are
/// never mixed with the new ones.
fn reuse_or_clear(out: &Path, key: &str) -> Result<Option<EvaluationSummary>> {
    let old = std::fs::read_to_string(out.join(KEY_FILE)).ok();
    let summary = out.join("evaluation_summary.json");
    if old.as_deref().map(str::trim) == Some(key) {
        return Ok(summary
            .is_file()
            .then(|| raceloop_files::read_json(&summary))
            .transpose()?);
    }
    let stale = [
        "model",
        "expert",
        "evaluation_summary.json",
        "per_track.csv",
        KEY_FILE,
    ]
    .map(|name| out.join(name))
    .into_iter()
    .filter(|p| p.exists())
    .collect::<Vec<_>>();
    if !stale.is_empty() {
        println!(
            "evaluation: {} holds results of another model, settings or tracks; starting afresh",
            out.display()
        );
    }
    for path in stale {
        raceloop_files::remove(&path)?;
    }
    Ok(None)
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
        "lap_time_ratio_to_reference",
        "peak_lateral_acceleration_mps2",
        "min_wall_clearance_m",
        "mean_abs_deviation_m",
        "mean_checkpoints",
    ])?;
    let rows = s
        .model_per_track
        .iter()
        .map(|(t, m)| (t, "model", m))
        .chain(s.expert_per_track.iter().map(|(t, m)| (t, "expert", m)));
    for (t, driver, m) in rows {
        let failures: Vec<String> = m.failures().map(|(k, v)| format!("{k}:{v}")).collect();
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
            m.lap_time_ratio_to_reference
                .map_or(String::new(), |x| format!("{x:.3}")),
            format!("{:.2}", m.peak_lateral_acceleration_mps2),
            format!("{:.3}", m.min_wall_clearance_m),
            format!("{:.3}", m.mean_abs_deviation_m),
            format!("{:.2}", m.mean_checkpoints),
        ])?;
    }
    Ok(w.into_inner()?)
}

/// The per-track table as text: the model's success, progress, mean lap time and its ratios to
/// the expert's (same seeds) and to the raceline reference, peak lateral acceleration, least wall
/// clearance and failures, with the expert's success.
pub fn table(s: &EvaluationSummary) -> String {
    let pct = |x: Option<f64>| x.map_or("-".into(), |x| format!("{:.1}%", 100.0 * x));
    let mut out = format!(
        "{:<14} {:>8} {:>9} {:>10} {:>8} {:>8} {:>9} {:>8} {:>7}  failures\n",
        "track",
        "success",
        "progress",
        "lap time",
        "vs exp.",
        "vs ref.",
        "peak a_y",
        "clear.",
        "expert"
    );
    for (t, m) in &s.model_per_track {
        let ex = s.expert_per_track.get(t);
        let failures: Vec<String> = m.failures().map(|(k, v)| format!("{k} {v}")).collect();
        out += &format!(
            "{:<14} {:>7.0}% {:>8.0}% {:>10} {:>8} {:>8} {:>9} {:>8} {:>7}  {}\n",
            t,
            100.0 * m.success_rate,
            100.0 * m.mean_progress_fraction,
            m.mean_lap_time_s
                .map_or("-".into(), |x| format!("{x:.2} s")),
            pct(m.lap_time_ratio_to_expert),
            pct(m.lap_time_ratio_to_reference),
            format!("{:.1} m/s²", m.peak_lateral_acceleration_mps2),
            format!("{:.2} m", m.min_wall_clearance_m),
            ex.map_or("-".into(), |x| format!("{:.0}%", 100.0 * x.success_rate)),
            failures.join(", ")
        );
    }
    let o = &s.model_overall;
    let target = match &s.expert_overall {
        Some(x) => format!(
            "(expert {:.1} %), {} of {} tracks meet ≥95 % success with lap time ≤110 % of the expert's",
            100.0 * x.success_rate,
            s.tracks_meeting_target,
            s.model_per_track.len()
        ),
        None => "(no expert reference: evaluation.expert_reference is off)".into(),
    };
    out += &format!(
        "{:<14} {:>7.1}% {:>8.0}%   {target}\n",
        "overall",
        100.0 * o.success_rate,
        100.0 * o.mean_progress_fraction,
    );
    out
}
