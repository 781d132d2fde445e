//! What each stage logs to its tracked run: metrics, tags and artifacts.

use std::path::Path;

use anyhow::Result;

use super::collect::Collected;
use super::evaluate::EvaluationSummary;
use super::extract::Manifest;
use super::train::Lineage;
use crate::config::Resolved;
use crate::tracking::{Run, dvc};

/// Params (the flattened resolved config), its hash and the overrides.
///
/// # Errors
/// Store errors.
pub fn config(run: &Run, resolved: &Resolved) -> Result<()> {
    run.log_params(&resolved.params())?;
    run.set_tags(&[
        ("raceloop.config_hash".into(), resolved.hash()),
        ("raceloop.overrides".into(), resolved.overrides.join(" ")),
    ])
}

/// A collection: episodes, success rate, per-track success rates (`<track>/success_rate`: a
/// file store cannot hold both `a` and `a/b`), and the throughput of this invocation alone
/// (`episodes_per_s`, `steps_per_s` over the episodes it simulated; `episodes_reused` counts
/// the finished ones it found); `summary.json` and `run.json` as artifacts.
///
/// # Errors
/// Store errors.
pub fn collection(run: &Run, c: &Collected, seed: u64) -> Result<()> {
    let dir = &c.dir;
    run.set_tags(&[
        ("raceloop.seed".into(), seed.to_string()),
        ("raceloop.run_dir".into(), dir.display().to_string()),
    ])?;
    let wall = c.wall_s.max(1e-9);
    let o = &c.summary.overall;
    run.log_metrics(
        &[
            ("episodes", o.episodes as f64),
            ("episodes_run", c.ran as f64),
            ("episodes_reused", (o.episodes - c.ran) as f64),
            ("success_rate", o.success_rate),
            ("episodes_per_s", c.ran as f64 / wall),
            ("steps_per_s", c.ran_steps as f64 / wall),
            ("mean_progress_m", o.mean_progress_m),
            ("wall_time_s", c.wall_s),
        ],
        0,
    )?;
    let per_track: Vec<(String, f64)> = c
        .summary
        .per_track
        .iter()
        .map(|(t, m)| (format!("{t}/success_rate"), m.success_rate))
        .collect();
    run.log_metrics(&per_track, 0)?;
    for file in ["summary.json", "run.json", "aggregated_results.csv"] {
        if dir.join(file).is_file() {
            run.log_artifact(&dir.join(file), "")?;
        }
    }
    Ok(())
}

/// A dataset version: its id, DVC hash, sample and episode counts; `manifest.json` and
/// `stats.json` as artifacts.
///
/// # Errors
/// Store errors.
pub fn dataset(run: &Run, dir: &Path, m: &Manifest) -> Result<()> {
    run.set_tags(&[
        ("raceloop.dataset_version".into(), m.version.clone()),
        ("raceloop.dataset_dir".into(), dir.display().to_string()),
    ])?;
    run.log_metrics(
        &[
            ("samples_train", m.samples[0] as f64),
            ("samples_val", m.samples[1] as f64),
            ("episodes_train", m.train.len() as f64),
            ("episodes_val", m.val.len() as f64),
            ("episodes_dropped", m.dropped.values().sum::<usize>() as f64),
        ],
        0,
    )?;
    for file in ["manifest.json", "stats.json"] {
        run.log_artifact(&dir.join(file), "")?;
    }
    // Its DVC pointer as a tag, not an artifact: DVC would take a copy under mlruns/ for an output.
    if let Ok(text) = std::fs::read_to_string(dvc::dvc_file(dir))
        && let Some(md5) = text.lines().find_map(|l| l.trim().strip_prefix("- md5: "))
    {
        run.set_tag("raceloop.dvc_md5", md5)?;
    }
    Ok(())
}

/// An evaluation: overall and per-track success rate, progress, lap-time ratio to the expert,
/// deviation; `evaluation_summary.json` and `per_track.csv` as artifacts.
///
/// # Errors
/// Store errors.
pub fn evaluation(run: &Run, dir: &Path, s: &EvaluationSummary) -> Result<()> {
    run.set_tag("raceloop.seed", s.settings.seed)?;
    let o = &s.model_overall;
    let mut values = vec![
        ("success_rate".to_string(), o.success_rate),
        ("mean_progress_fraction".into(), o.mean_progress_fraction),
        ("mean_abs_deviation_m".into(), o.mean_abs_deviation_m),
        (
            "tracks_meeting_target".into(),
            s.tracks_meeting_target as f64,
        ),
        ("wall_time_s".into(), s.wall_time_s),
    ];
    if let Some(r) = o.lap_time_ratio_to_expert {
        values.push(("lap_time_ratio_to_expert".into(), r));
    }
    if let Some(e) = &s.expert_overall {
        values.push(("expert_success_rate".into(), e.success_rate));
    }
    for (track, m) in &s.model_per_track {
        values.push((format!("{track}/success_rate"), m.success_rate));
        if let Some(r) = m.lap_time_ratio_to_expert {
            values.push((format!("{track}/lap_time_ratio_to_expert"), r));
        }
    }
    run.log_metrics(&values, 0)?;
    for file in ["evaluation_summary.json", "per_track.csv"] {
        if dir.join(file).is_file() {
            run.log_artifact(&dir.join(file), "")?;
        }
    }
    Ok(())
}

/// A trained model: its dataset version, seed and best validation loss; the model directory as
/// the artifact `model/`.
///
/// # Errors
/// Store errors.
pub fn model(run: &Run, dir: &Path, resolved: &Resolved) -> Result<()> {
    let lineage: Lineage = raceloop_files::read_json(&dir.join("lineage.json"))?;
    run.set_tags(&[
        (
            "raceloop.dataset_version".into(),
            lineage.dataset_version.clone(),
        ),
        (
            "raceloop.seed".into(),
            resolved.config.training.seed.to_string(),
        ),
        ("raceloop.model_dir".into(), dir.display().to_string()),
    ])?;
    run.log_metrics(
        &[
            ("best_val_loss", lineage.best_val_loss),
            ("best_epoch", lineage.best_epoch as f64),
            ("train_seconds", lineage.train_seconds),
        ],
        lineage.best_epoch as i64,
    )?;
    for e in std::fs::read_dir(dir)? {
        let path = e?.path();
        if path.is_file() {
            run.log_artifact(&path, "model")?;
        }
    }
    Ok(())
}
