//! `raceloop pipeline`: collect (train and val seeds) → extract → train → evaluate, in one
//! directory with one log. Every stage is cached: collection resumes and skips finished
//! episodes, datasets are content-addressed, a model is retrained only when its dataset or
//! configs change, and an evaluation is redone only when the model or its settings change.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::atomic_file;
use crate::cli::PipelineArgs;
use crate::collect::{collect, load_tracks};
use crate::configs::Resolved;
use crate::evaluate::{EvaluationConfig, EvaluationSummary, evaluate, table};
use crate::extract::extract;
use crate::stage_metrics;
use crate::tracking::{Run, Tracker};

/// Prints and appends to `pipeline.log`.
struct Log(std::fs::File);

impl Log {
    fn line(&mut self, text: &str) {
        println!("{text}");
        let _ = writeln!(self.0, "{text}");
    }
}

#[derive(Debug, Serialize)]
struct StageTime {
    stage: &'static str,
    seconds: f64,
}

/// Runs the whole loop as version `version` (the `--version` name, suffixed by the job number
/// in a sweep). Each stage is a child run of `parent`. Returns the pipeline directory.
///
/// # Errors
/// Any stage's error.
pub fn run(
    args: &PipelineArgs,
    version: &str,
    resolved: &Resolved,
    tracker: &Tracker,
    parent: &Run,
) -> Result<PathBuf> {
    let dir = args.out.join(version);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    resolved.save(&dir)?;
    let mut log = Log(OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("pipeline.log"))?);
    log.line(&format!(
        "pipeline {version} — {}",
        std::env::args().collect::<Vec<_>>().join(" ")
    ));
    let t_all = Instant::now();
    let mut times = Vec::new();
    let mut stage = |name: &'static str, t: Instant, log: &mut Log| {
        let seconds = t.elapsed().as_secs_f64();
        log.line(&format!("[{name}] {seconds:.1} s"));
        times.push(StageTime {
            stage: name,
            seconds,
        });
    };
    // A stage's tracked run: a child of the pipeline's, with the stage's config as params.
    let child = |command: &str, name: &str, config: &Resolved| -> Result<Run> {
        let run = tracker.start(command, &format!("{version}/{name}"), Some(parent))?;
        stage_metrics::config(&run, config)?;
        Ok(run)
    };

    let (c, run_sim) = crate::collect::resolve(resolved)?;
    let sim = resolved.sim();
    let t = Instant::now();
    let tracks = load_tracks(&c.tracks)?;
    let mut runs = Vec::new();
    for (name, seed, episodes) in [
        ("train", c.seed, args.rs_train),
        ("val", c.seed + args.rs_train as u64, args.rs_val),
    ] {
        // What this collection runs with: the pipeline's config with its episodes and seeds.
        let stage_config = resolved.with_overrides(&[
            format!("collection.episodes={episodes}"),
            format!("collection.seed={seed}"),
        ])?;
        let cc = &stage_config.config.collection;
        let tracked = child("collect", &format!("collect-{name}"), &stage_config)?;
        let t_run = Instant::now();
        let result = collect(&dir.join(format!("collect-{name}")), cc, &run_sim, &tracks).and_then(
            |(run, s)| {
                stage_config.save(&run)?;
                stage_metrics::collection(&tracked, &run, &s, t_run.elapsed().as_secs_f64(), seed)?;
                for file in ["config.ron", "overrides.ron"] {
                    tracked.log_artifact(&run.join(file), "")?;
                }
                Ok((run, s))
            },
        );
        let (run, s) = tracked.end_with(result)?;
        log.line(&format!(
            "collect {name} (seeds {seed}..{}): {}",
            seed + episodes as u64,
            s.line()
        ));
        runs.push(run);
    }
    let [train_run, val_run]: [PathBuf; 2] = runs.try_into().expect("two runs");
    stage("collect", t, &mut log);

    let t = Instant::now();
    let tracked = child("extract", "extract", resolved)?;
    let result = extract(
        &[train_run.clone()],
        &[val_run.clone()],
        None,
        None,
        &resolved.config.dataset,
        &args.datasets,
    )
    .and_then(|(d, m)| {
        stage_metrics::dataset(&tracked, &d, &m)?;
        Ok((d, m))
    });
    let (dataset, manifest) = tracked.end_with(result)?;
    log.line(&format!(
        "extract: dataset {} — {} train / {} val samples from {} / {} episodes; dropped {:?}",
        manifest.version,
        manifest.samples[0],
        manifest.samples[1],
        manifest.train.len(),
        manifest.val.len(),
        manifest.dropped
    ));
    stage("extract", t, &mut log);

    let t = Instant::now();
    let tracked = child("train", "train", resolved)?;
    let result = crate::train_cmd::train(
        &dataset,
        version,
        &resolved.config.model,
        &resolved.config.training,
        &args.device,
        &args.models,
        &tracked,
        &mut |_| {},
        &|| crate::STOP.load(std::sync::atomic::Ordering::Relaxed),
    )
    .and_then(|m| {
        resolved.save(&m)?;
        stage_metrics::model(&tracked, &m, resolved)?;
        Ok(m)
    });
    let model = tracked.end_with(result)?;
    log.line(&format!("train: {}", model.display()));
    stage("train", t, &mut log);

    let t = Instant::now();
    let e = resolved.config.evaluation.clone();
    let eval_dir = dir.join("evaluation");
    let tracked = child("evaluate", "evaluate", resolved)?;
    let result = evaluate_cached(&model, &e, &sim, &eval_dir, &mut log).and_then(|s| {
        stage_metrics::evaluation(&tracked, &eval_dir, &s)?;
        Ok(s)
    });
    let summary = tracked.end_with(result)?;
    // The model's own record is the evaluation of its first pipeline run; later runs (possibly
    // with other settings) keep theirs in the pipeline directory.
    if !model.join("evaluation_summary.json").is_file() {
        atomic_file::write_json(&model.join("evaluation_summary.json"), &summary)?;
    }
    stage("evaluate", t, &mut log);
    log.line(&table(&summary));
    atomic_file::write_json(
        &dir.join("pipeline.json"),
        &serde_json::json!({"version": version, "stages": times, "total_s": t_all.elapsed().as_secs_f64(), "dataset": dataset, "model": model, "evaluation": eval_dir}),
    )?;
    log.line(&format!("total {:.1} s", t_all.elapsed().as_secs_f64()));
    log.line(&format!(
        "collection runs: {} and {}",
        train_run.display(),
        val_run.display()
    ));
    log.line(&format!("dataset:         {}", dataset.display()));
    log.line(&format!("model:           {}", model.display()));
    log.line(&format!(
        "evaluation:      {} (evaluation_summary.json, per_track.csv, episode MCAPs)",
        eval_dir.display()
    ));
    log.line(&format!(
        "log:             {}",
        dir.join("pipeline.log").display()
    ));
    Ok(dir)
}

/// Evaluates `model` into `eval_dir`, or reuses the evaluation there when the model's weights
/// and the settings are unchanged (`evaluation.key`).
fn evaluate_cached(
    model: &std::path::Path,
    e: &EvaluationConfig,
    sim: &raceloop_sim::SimConfig,
    eval_dir: &std::path::Path,
    log: &mut Log,
) -> Result<EvaluationSummary> {
    let weights = std::fs::read(model.join(raceloop_learn::policy::WEIGHTS_FILE))?;
    let key: String = Sha256::digest(
        [
            weights.as_slice(),
            serde_json::to_string(e)?.as_bytes(),
            sim.to_ron().as_bytes(),
        ]
        .concat(),
    )
    .iter()
    .take(8)
    .map(|b| format!("{b:02x}"))
    .collect();
    let cached =
        std::fs::read_to_string(eval_dir.join("evaluation.key")).is_ok_and(|k| k.trim() == key);
    if cached && eval_dir.join("evaluation_summary.json").is_file() {
        log.line("evaluate: cached (same model and settings)");
        return atomic_file::read_json(&eval_dir.join("evaluation_summary.json"));
    }
    let _ = std::fs::remove_dir_all(eval_dir);
    let s = evaluate(model, e, sim, eval_dir)?;
    atomic_file::write(&eval_dir.join("evaluation.key"), &key)?;
    Ok(s)
}
