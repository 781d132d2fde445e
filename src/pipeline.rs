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
use crate::collect::{CollectionConfig, collect, load_tracks};
use crate::evaluate::{EvaluationConfig, EvaluationSummary, evaluate, table};
use crate::extract::{DatasetConfig, extract};

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

/// Runs the whole loop. Returns the pipeline directory.
///
/// # Errors
/// Any stage's error.
pub fn run(args: &PipelineArgs) -> Result<PathBuf> {
    let dir = args.out.join(&args.version);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut log = Log(OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("pipeline.log"))?);
    log.line(&format!(
        "pipeline {} — {}",
        args.version,
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

    let sim = crate::drive::load_config(&args.configs)?;
    let mut c = CollectionConfig::load(&args.configs)?;
    if let Some(t) = &args.track {
        c.tracks = t.clone();
    }
    let mut run_sim = sim.clone();
    run_sim.episode.laps = c.laps;
    run_sim.episode.start.mode = c.start;
    run_sim.lidar.period_steps = c.lidar_period_steps;
    run_sim.validate()?;
    let t = Instant::now();
    let tracks = load_tracks(&c.tracks)?;
    let mut runs = Vec::new();
    for (name, seed, episodes) in [
        ("train", c.seed, args.rs_train),
        ("val", c.seed + args.rs_train as u64, args.rs_val),
    ] {
        let cc = CollectionConfig {
            episodes,
            seed,
            ..c.clone()
        };
        let (run, s) = collect(&dir.join(format!("collect-{name}")), &cc, &run_sim, &tracks)?;
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
    let settings = DatasetConfig::load(&args.configs)?;
    let (dataset, manifest) = extract(
        &[train_run.clone()],
        &[val_run.clone()],
        None,
        None,
        &settings,
        &args.datasets,
    )?;
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
    let (mut model_cfg, mut train_cfg) = crate::train_cmd::load_configs(&args.configs)?;
    if let Some(e) = args.epochs {
        train_cfg.epochs = e;
    }
    if let Some(a) = args.arch {
        model_cfg.architecture = a.into();
    }
    let model = crate::train_cmd::train(
        &dataset,
        &args.version,
        &model_cfg,
        &train_cfg,
        &args.device,
        &args.models,
    )?;
    log.line(&format!("train: {}", model.display()));
    stage("train", t, &mut log);

    let t = Instant::now();
    let mut e = EvaluationConfig::load(&args.configs)?;
    if let Some(n) = args.eval_episodes {
        e.episodes_per_track = n;
    }
    if let Some(t) = &args.track {
        e.tracks = t.clone();
    }
    let eval_dir = dir.join("evaluation");
    let weights = std::fs::read(model.join(raceloop_learn::policy::WEIGHTS_FILE))?;
    let key: String = Sha256::digest(
        [
            weights.as_slice(),
            serde_json::to_string(&e)?.as_bytes(),
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
    let summary: EvaluationSummary = if cached && eval_dir.join("evaluation_summary.json").is_file()
    {
        log.line("evaluate: cached (same model and settings)");
        atomic_file::read_json(&eval_dir.join("evaluation_summary.json"))?
    } else {
        let _ = std::fs::remove_dir_all(&eval_dir);
        let s = evaluate(&model, &e, &sim, &eval_dir)?;
        atomic_file::write(&eval_dir.join("evaluation.key"), &key)?;
        s
    };
    // The model's own record is the evaluation of its first pipeline run; later runs (possibly
    // with other settings) keep theirs in the pipeline directory.
    if !model.join("evaluation_summary.json").is_file() {
        atomic_file::write_json(&model.join("evaluation_summary.json"), &summary)?;
    }
    stage("evaluate", t, &mut log);
    log.line(&table(&summary));
    atomic_file::write_json(
        &dir.join("pipeline.json"),
        &serde_json::json!({"version": args.version, "stages": times, "total_s": t_all.elapsed().as_secs_f64(), "dataset": dataset, "model": model, "evaluation": eval_dir}),
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
