//! `raceloop pipeline`: collect (train and val seeds) → extract → train → evaluate, in one
//! directory with one log; with `dagger.iterations` = N, N DAgger rounds come before the final
//! training (train `dagger/roundK` → collect episodes it drives, labelled by the expert →
//! extract everything so far). Every stage is cached: collection resumes and skips finished
//! episodes, datasets are content-addressed, a model is retrained only when its dataset or
//! configs change, and an evaluation is redone only when the model or its settings change
//! (see [`super::evaluate::evaluation_key`]).

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use serde::Serialize;

use super::collect::{collect, collect_dagger};
use super::evaluate::{EvaluationSummary, evaluate, table};
use super::extract::{Manifest, extract};
use super::metrics;
use super::train::{TrainJob, train_model};
use crate::config::Resolved;
use crate::episode::jobs::load_tracks;
use crate::tracking::{Run, Tracker};

/// Where a pipeline writes and how much it collects (the `raceloop pipeline` options that are
/// not config keys).
#[derive(Debug, Clone)]
pub struct PipelinePlan {
    /// Random-start training episodes to collect.
    pub rs_train: usize,
    /// Random-start validation episodes to collect (seeds after the training ones).
    pub rs_val: usize,
    /// Compute device for training: `cpu` or `wgpu`.
    pub device: String,
    /// Where pipeline directories live (`runs/pipeline`).
    pub out: PathBuf,
    /// Where dataset versions live (`datasets`).
    pub datasets: PathBuf,
    /// Where model directories live (`models`).
    pub models: PathBuf,
}

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

/// One pipeline run: its directory, log, stage times and tracked parent run.
struct Stages<'a> {
    version: &'a str,
    dir: PathBuf,
    resolved: &'a Resolved,
    tracker: &'a Tracker,
    parent: &'a Run,
    log: Log,
    times: Vec<StageTime>,
}

impl Stages<'_> {
    /// A stage's tracked run: a child of the pipeline's, with the stage's config as params.
    fn child(&self, command: &str, name: &str, config: &Resolved) -> Result<Run> {
        let run = self.tracker.start(
            command,
            &format!("{}/{name}", self.version),
            Some(self.parent),
        )?;
        metrics::config(&run, config)?;
        Ok(run)
    }

    fn timed(&mut self, name: &'static str, t: Instant) {
        let seconds = t.elapsed().as_secs_f64();
        self.log.line(&format!("[{name}] {seconds:.1} s"));
        self.times.push(StageTime {
            stage: name,
            seconds,
        });
    }

    /// Collects training and validation episodes as runs `collect-<name>` of this pipeline:
    /// `(name, first seed, episodes)` each, driven by the expert or, with `learner`, by that
    /// model with the expert labelling (DAgger). Returns their run directories.
    fn collect(
        &mut self,
        parts: [(String, u64, usize); 2],
        learner: Option<&Path>,
    ) -> Result<[PathBuf; 2]> {
        let c = &self.resolved.config.collection;
        let run_sim = c.episode_sim(&self.resolved.sim())?;
        let tracks = load_tracks(&c.tracks)?;
        let mut runs = Vec::new();
        for (name, seed, episodes) in parts {
            // What this collection runs with: the pipeline's config with its episodes and seeds.
            let stage_config = self.resolved.with_overrides(&[
                format!("collection.episodes={episodes}"),
                format!("collection.seed={seed}"),
            ])?;
            let cc = &stage_config.config.collection;
            let tracked = self.child("collect", &format!("collect-{name}"), &stage_config)?;
            let dir = self.dir.join(format!("collect-{name}"));
            let result = match learner {
                Some(model) => collect_dagger(
                    &dir,
                    cc,
                    &run_sim,
                    &tracks,
                    model,
                    self.resolved.config.dagger.label_lookahead_error_gain,
                ),
                None => collect(&dir, cc, &run_sim, &tracks),
            }
            .and_then(|collected| {
                stage_config.save(&collected.dir)?;
                metrics::collection(&tracked, &collected, seed)?;
                for file in ["config.ron", "overrides.ron"] {
                    tracked.log_artifact(&collected.dir.join(file), "")?;
                }
                Ok(collected)
            });
            let collected = tracked.end_with(result)?;
            self.log.line(&format!(
                "collect {name} (seeds {seed}..{}{}): {}",
                seed + episodes as u64,
                learner.map_or(String::new(), |m| format!(", driven by {}", m.display())),
                collected.summary.line()
            ));
            runs.push(collected.dir);
        }
        Ok(runs.try_into().expect("two runs"))
    }

    fn extract(
        &mut self,
        train: &[PathBuf],
        val: &[PathBuf],
        datasets: &Path,
    ) -> Result<(PathBuf, Manifest)> {
        let tracked = self.child("extract", "extract", self.resolved)?;
        let result = extract(
            train,
            val,
            None,
            None,
            &self.resolved.config.dataset,
            &self.resolved.config.dagger,
            datasets,
        )
        .and_then(|(d, m)| {
            metrics::dataset(&tracked, &d, &m)?;
            Ok((d, m))
        });
        let (dataset, manifest) = tracked.end_with(result)?;
        self.log.line(&format!(
            "extract: dataset {} — {} train / {} val samples from {} / {} episodes; dropped {:?}",
            manifest.version,
            manifest.samples[0],
            manifest.samples[1],
            manifest.train.len(),
            manifest.val.len(),
            manifest.dropped
        ));
        Ok((dataset, manifest))
    }

    /// Trains `name` on `dataset` into `models_root/name` (a tracked run `run_name`).
    fn train(
        &mut self,
        dataset: &Path,
        plan: &PipelinePlan,
        models_root: &Path,
        name: &str,
        run_name: &str,
    ) -> Result<PathBuf> {
        let tracked = self.child("train", run_name, self.resolved)?;
        let job = TrainJob {
            dataset_dir: dataset.to_path_buf(),
            name: name.to_string(),
            model: self.resolved.config.model.clone(),
            training: self.resolved.config.training.clone(),
            device: plan.device.clone(),
            models_root: models_root.to_path_buf(),
        };
        let result = train_model(&job, &tracked, &mut |_| {}, &crate::interrupt::requested)
            .and_then(|m| {
                self.resolved.save(&m)?;
                metrics::model(&tracked, &m, self.resolved)?;
                Ok(m)
            });
        let model = tracked.end_with(result)?;
        self.log.line(&format!("{run_name}: {}", model.display()));
        Ok(model)
    }

    fn evaluate(&mut self, model: &Path) -> Result<(PathBuf, EvaluationSummary)> {
        let e = self.resolved.config.evaluation.clone();
        let sim = self.resolved.sim();
        let eval_dir = self.dir.join("evaluation");
        let tracked = self.child("evaluate", "evaluate", self.resolved)?;
        let result = evaluate(model, &e, &sim, &eval_dir).and_then(|s| {
            metrics::evaluation(&tracked, &eval_dir, &s)?;
            Ok(s)
        });
        let summary = tracked.end_with(result)?;
        // The model's own record is the evaluation of its first pipeline run; later runs
        // (possibly with other settings) keep theirs in the pipeline directory.
        if !model.join("evaluation_summary.json").is_file() {
            raceloop_files::write_json(&model.join("evaluation_summary.json"), &summary)?;
        }
        Ok((eval_dir, summary))
    }
}

/// Runs the whole loop as version `version` (the `--version` name, suffixed by the job number
/// in a sweep) into `plan.out/<version>`, or, with `evaluation.cross_track_folds` = N, once per
/// cross-track fold (see [`cross_track`]). Each stage is a child run of `parent`. Returns the
/// pipeline directory.
///
/// # Errors
/// Any stage's error; a fold count outside 2..=the shipped tracks.
pub fn pipeline(
    plan: &PipelinePlan,
    version: &str,
    resolved: &Resolved,
    tracker: &Tracker,
    parent: &Run,
) -> Result<PathBuf> {
    match resolved.config.evaluation.cross_track_folds {
        0 => one_pipeline(plan, version, resolved, tracker, parent),
        folds => cross_track(plan, version, resolved, tracker, parent, folds),
    }
}

/// The entries of a collection's track list that are not shipped tracks (CSV paths, generated
/// circuits): every cross-track fold trains on them too, since no fold evaluates on them.
fn extra_tracks(spec: &str) -> Vec<&str> {
    let shipped = raceloop_sim::track::shipped_names();
    spec.split(',')
        .map(str::trim)
        .filter(|t| {
            !t.is_empty()
                && !t.eq_ignore_ascii_case("all")
                && !shipped.iter().any(|s| s.eq_ignore_ascii_case(t))
        })
        .collect()
}

/// The shipped tracks of fold `k` of `folds`: track i (in name order) is in fold i mod `folds`.
pub fn fold_tracks(k: usize, folds: usize) -> Vec<&'static str> {
    let mut names = raceloop_sim::track::shipped_names();
    names.sort_unstable();
    names
        .into_iter()
        .enumerate()
        .filter(|(i, _)| i % folds == k)
        .map(|(_, n)| n)
        .collect()
}

/// One held-out track's row of `cross_track.csv`.
#[derive(Debug, Serialize)]
struct HeldOut<'a> {
    track: &'a str,
    fold: usize,
    episodes: usize,
    success_rate: f64,
    expert_success_rate: Option<f64>,
    mean_lap_time_s: Option<f64>,
    lap_time_ratio_to_expert: Option<f64>,
    lap_time_ratio_to_reference: Option<f64>,
    peak_lateral_acceleration_mps2: f64,
    min_wall_clearance_m: f64,
    failures: String,
}

/// Cross-track generalisation: for each fold k of `folds`, a whole pipeline (`VERSION-foldK`)
/// that collects and trains on the shipped tracks outside fold k (and on `collection.tracks`'
/// other entries, see [`extra_tracks`]) and evaluates on fold k's, which its model never saw.
/// Writes one table of every track's held-out result, `plan.out/VERSION/cross_track.csv` and
/// `.json`, and prints it.
fn cross_track(
    plan: &PipelinePlan,
    version: &str,
    resolved: &Resolved,
    tracker: &Tracker,
    parent: &Run,
    folds: usize,
) -> Result<PathBuf> {
    let shipped = raceloop_sim::track::shipped_names().len();
    if !(2..=shipped).contains(&folds) {
        anyhow::bail!(
            "evaluation.cross_track_folds must be 0 (off) or 2..={shipped} (the shipped tracks), found {folds}"
        );
    }
    let dir = plan.out.join(version);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let extra = extra_tracks(&resolved.config.collection.tracks);
    let mut summaries = Vec::new();
    for k in 0..folds {
        let held_out = fold_tracks(k, folds);
        let training: Vec<&str> = (0..folds)
            .filter(|&j| j != k)
            .flat_map(|j| fold_tracks(j, folds))
            .chain(extra.iter().copied())
            .collect();
        println!(
            "[cross-track fold {}/{folds}] trains on {}; holds out {}",
            k + 1,
            training.join(", "),
            held_out.join(", ")
        );
        let fold = resolved.with_overrides(&[
            format!("collection.tracks='{}'", training.join(",")),
            format!("evaluation.tracks='{}'", held_out.join(",")),
            "evaluation.cross_track_folds=0".into(),
        ])?;
        let fold_dir = one_pipeline(plan, &format!("{version}-fold{k}"), &fold, tracker, parent)?;
        let summary: EvaluationSummary = raceloop_files::read_json(
            &fold_dir.join("evaluation").join("evaluation_summary.json"),
        )?;
        summaries.push((k, summary));
    }
    let mut rows = Vec::new();
    for (k, s) in &summaries {
        for (track, m) in &s.model_per_track {
            rows.push(HeldOut {
                track,
                fold: *k,
                episodes: m.episodes,
                success_rate: m.success_rate,
                expert_success_rate: s.expert_per_track.get(track).map(|e| e.success_rate),
                mean_lap_time_s: m.mean_lap_time_s,
                lap_time_ratio_to_expert: m.lap_time_ratio_to_expert,
                lap_time_ratio_to_reference: m.lap_time_ratio_to_reference,
                peak_lateral_acceleration_mps2: m.peak_lateral_acceleration_mps2,
                min_wall_clearance_m: m.min_wall_clearance_m,
                failures: m
                    .failures()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    }
    rows.sort_by(|a, b| a.track.cmp(b.track));
    let mut csv = csv::Writer::from_writer(Vec::new());
    for r in &rows {
        csv.serialize(r)?;
    }
    raceloop_files::write(&dir.join("cross_track.csv"), csv.into_inner()?)?;
    raceloop_files::write_json(&dir.join("cross_track.json"), &rows)?;
    let pct = |x: Option<f64>| x.map_or("-".into(), |x| format!("{:.1}%", 100.0 * x));
    println!(
        "held-out results ({folds} folds; each model never saw the track it is evaluated on):"
    );
    println!(
        "{:<14} {:>4} {:>8} {:>10} {:>8} {:>8} {:>7}  failures",
        "track", "fold", "success", "lap time", "vs exp.", "vs ref.", "expert"
    );
    let mut meeting = 0;
    for r in &rows {
        meeting += (r.success_rate >= 0.95 && r.lap_time_ratio_to_expert.is_some_and(|x| x <= 1.10))
            as usize;
        println!(
            "{:<14} {:>4} {:>7.0}% {:>10} {:>8} {:>8} {:>7}  {}",
            r.track,
            r.fold,
            100.0 * r.success_rate,
            r.mean_lap_time_s
                .map_or("-".into(), |x| format!("{x:.2} s")),
            pct(r.lap_time_ratio_to_expert),
            pct(r.lap_time_ratio_to_reference),
            pct(r.expert_success_rate),
            r.failures
        );
    }
    let mean = rows.iter().map(|r| r.success_rate).sum::<f64>() / rows.len().max(1) as f64;
    println!(
        "mean held-out success {:.1} %; {meeting} of {} tracks meet ≥95 % success with lap time ≤110 % of the expert's",
        100.0 * mean,
        rows.len()
    );
    println!(
        "cross-track table: {}",
        dir.join("cross_track.csv").display()
    );
    Ok(dir)
}

/// One pipeline: collect → extract → train → evaluate into `plan.out/<version>`.
fn one_pipeline(
    plan: &PipelinePlan,
    version: &str,
    resolved: &Resolved,
    tracker: &Tracker,
    parent: &Run,
) -> Result<PathBuf> {
    let dir = plan.out.join(version);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    resolved.save(&dir)?;
    let log = Log(OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("pipeline.log"))?);
    let mut p = Stages {
        version,
        dir: dir.clone(),
        resolved,
        tracker,
        parent,
        log,
        times: Vec::new(),
    };
    p.log.line(&format!(
        "pipeline {version} — {}",
        std::env::args().collect::<Vec<_>>().join(" ")
    ));
    let t_all = Instant::now();
    let c = &resolved.config.collection;
    let t = Instant::now();
    let [train_run, val_run] = p.collect(
        [
            ("train".into(), c.seed, plan.rs_train),
            ("val".into(), c.seed + plan.rs_train as u64, plan.rs_val),
        ],
        None,
    )?;
    p.timed("collect", t);
    let (mut train_runs, mut val_runs) = (vec![train_run], vec![val_run]);
    let t = Instant::now();
    let (mut dataset, _) = p.extract(&train_runs, &val_runs, &plan.datasets)?;
    p.timed("extract", t);
    let dagger = &resolved.config.dagger;
    let mut seed = c.seed + (plan.rs_train + plan.rs_val) as u64;
    for k in 0..dagger.iterations {
        let t = Instant::now();
        let name = format!("round{k}");
        let learner = p.train(
            &dataset,
            plan,
            &dir.join("dagger"),
            &name,
            &format!("train-dagger-{name}"),
        )?;
        p.timed("dagger train", t);
        let t = Instant::now();
        let [train_run, val_run] = p.collect(
            [
                (format!("dagger{k}-train"), seed, dagger.episodes),
                (
                    format!("dagger{k}-val"),
                    seed + dagger.episodes as u64,
                    dagger.val_episodes,
                ),
            ],
            Some(&learner),
        )?;
        seed += (dagger.episodes + dagger.val_episodes) as u64;
        train_runs.push(train_run);
        val_runs.push(val_run);
        p.timed("dagger collect", t);
        let t = Instant::now();
        dataset = p.extract(&train_runs, &val_runs, &plan.datasets)?.0;
        p.timed("extract", t);
    }
    let t = Instant::now();
    let model = p.train(&dataset, plan, &plan.models, version, "train")?;
    p.timed("train", t);
    let t = Instant::now();
    let (eval_dir, summary) = p.evaluate(&model)?;
    p.timed("evaluate", t);
    p.log.line(&table(&summary));
    raceloop_files::write_json(
        &dir.join("pipeline.json"),
        &serde_json::json!({"version": version, "stages": p.times, "total_s": t_all.elapsed().as_secs_f64(), "dataset": dataset, "model": model, "evaluation": eval_dir}),
    )?;
    let log = &mut p.log;
    log.line(&format!("total {:.1} s", t_all.elapsed().as_secs_f64()));
    log.line(&format!(
        "collection runs: {}",
        train_runs
            .iter()
            .chain(&val_runs)
            .map(|r| r.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
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

#[cfg(test)]
mod tests {
    use super::{extra_tracks, fold_tracks};

    #[test]
    fn folds_keep_the_tracks_that_no_fold_holds_out() {
        assert_eq!(
            extra_tracks("all, Montreal,synthetic:0..40,my/track_centerline.csv,monza"),
            ["synthetic:0..40", "my/track_centerline.csv"]
        );
        assert!(extra_tracks("all,Montreal").is_empty());
    }

    #[test]
    fn every_shipped_track_is_held_out_once() {
        let mut held_out: Vec<&str> = (0..5).flat_map(|k| fold_tracks(k, 5)).collect();
        assert!((0..5).all(|k| fold_tracks(k, 5).len() == 3));
        held_out.sort_unstable();
        let mut shipped = raceloop_sim::track::shipped_names();
        shipped.sort_unstable();
        assert_eq!(held_out, shipped);
        assert_eq!(fold_tracks(0, 5), ["Austin", "IMS", "Nuerburgring"]);
    }
}
