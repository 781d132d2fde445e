//! Runs the parsed command line. Commands that use configs resolve them (files, experiment,
//! overrides, and the flags as overrides), expand sweeps under `--multirun`, and run each job
//! as a tracked run that saves its `config.ron` and `overrides.ron`.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

use crate::cli::{
    BenchCommand, Cli, CollectArgs, Command, ConfigArgs, EvaluateArgs, ExtractArgs, PipelineArgs,
    TrainArgs,
};
use crate::config::{Resolved, expand_sweeps};
use crate::stages::{collect, drive, evaluate, extract, metrics, pipeline, runs, train};
use crate::tracking::{Run, Tracker, TrackingArgs};

/// Runs the parsed command.
///
/// # Errors
/// The command's error.
pub fn dispatch(cli: Cli) -> Result<()> {
    let tracking = cli.tracking;
    let Some(command) = cli.command else {
        if cli.headless {
            return collect_command(&cli.collect, &tracking);
        }
        #[cfg(feature = "gui")]
        return crate::view::open_window(&crate::view::ViewArgs::default(), &tracking);
        #[cfg(not(feature = "gui"))]
        bail!(
            "this build has no window (the `gui` feature); use `raceloop --headless` or a subcommand (see --help)"
        );
    };
    match command {
        Command::Collect(args) => collect_command(&args, &tracking),
        Command::Extract(a) => extract_command(&a, &tracking),
        Command::Train(a) => train_command(&a, &tracking),
        Command::Evaluate(a) => evaluate_command(&a, &tracking),
        Command::Pipeline(a) => pipeline_command(&a, &tracking),
        #[cfg(feature = "gui")]
        Command::View(a) => crate::view::open_window(&a, &tracking),
        Command::Serve(a) => crate::serve::serve(&a, &tracking),
        Command::Runs(a) => runs::list(&tracking, a.limit),
        Command::Lineage { model } => runs::lineage(&model),
        Command::Export { model } => train::export_onnx(&model),
        Command::Summarize { run } => collect::summarize(run.as_deref()),
        Command::Drive(a) => {
            let sim = Resolved::load(&a.sim.configs, &[])?.sim();
            drive::drive(&a.sim.track, sim, a.laps, a.start.into(), a.seed)
        }
        Command::Bench(BenchCommand::Sim(args)) => crate::bench::sim::sim(&args),
        Command::Bench(BenchCommand::Lidar(args)) => crate::bench::sim::lidar(&args),
        Command::Bench(BenchCommand::Collect(args)) => crate::bench::collect::collect(&args),
        Command::Bench(BenchCommand::Train(args)) => crate::bench::learn::train(&args),
        Command::Bench(BenchCommand::Infer(args)) => crate::bench::learn::infer(&args),
        Command::Tracks => {
            for name in raceloop_sim::track::shipped_names() {
                let t = raceloop_sim::Track::load(name)?;
                println!(
                    "{name:14} {:7.1} m{}",
                    t.centerline.length(),
                    if t.raceline.is_some() {
                        ""
                    } else {
                        "  (no raceline)"
                    }
                );
            }
            println!(
                "and generated circuits: {}N (hairpins) and {}N (linked corners) for any whole N \
                 (the main job collects on {}0..24)",
                raceloop_sim::track::synthetic::PREFIX,
                raceloop_sim::track::synthetic::ESSES_PREFIX,
                raceloop_sim::track::synthetic::PREFIX
            );
            Ok(())
        }
    }
}

/// `name`, or `name-i` for job `i` of a sweep.
fn job_name(name: &str, job: Option<usize>) -> String {
    match job {
        Some(i) => format!("{name}-{i}"),
        None => name.to_string(),
    }
}

/// The last component of `path` (a dataset version, a model name), or `default`.
fn last_name(path: &Path, default: &str) -> String {
    path.file_name()
        .map_or_else(|| default.to_string(), |n| n.to_string_lossy().into_owned())
}

fn job_path(path: &Path, job: Option<usize>) -> PathBuf {
    PathBuf::from(job_name(&path.to_string_lossy(), job))
}

fn collect_command(args: &CollectArgs, tracking: &TrackingArgs) -> Result<()> {
    tracked(
        "collect",
        &args.config,
        args.overrides(),
        tracking,
        |r, run, _, job| {
            let out = args.out.as_deref().map(|o| job_path(o, job));
            let collected = collect::collect_resolved(r, out.as_deref())?;
            metrics::collection(run, &collected, r.config.collection.seed)?;
            Ok(Some(collected.dir))
        },
    )
}

fn extract_command(a: &ExtractArgs, tracking: &TrackingArgs) -> Result<()> {
    // The collection runs are the positional arguments without `=`.
    let (runs, overrides): (Vec<String>, Vec<String>) = a
        .config
        .overrides
        .iter()
        .cloned()
        .partition(|o| !o.contains('=') && !o.starts_with('~'));
    if runs.is_empty() {
        bail!("give at least one collection run directory: raceloop extract RUN_DIR...");
    }
    let runs: Vec<PathBuf> = runs.into_iter().map(PathBuf::from).collect();
    let config = ConfigArgs {
        overrides,
        ..a.config.clone()
    };
    tracked("extract", &config, Vec::new(), tracking, |r, run, _, _| {
        let (dir, m) = extract::extract(
            &runs,
            &a.val,
            a.rs_train,
            a.rs_val,
            &r.config.dataset,
            &r.config.dagger,
            &a.datasets,
        )?;
        extract::report(&dir, &m);
        println!("DVC: {}", crate::tracking::dvc::dvc_file(&dir).display());
        metrics::dataset(run, &dir, &m)?;
        Ok(None)
    })
}

fn train_command(a: &TrainArgs, tracking: &TrackingArgs) -> Result<()> {
    tracked(
        "train",
        &a.config,
        a.overrides(),
        tracking,
        |r, run, _, job| {
            let version = last_name(&a.dataset, "");
            let name = a.name.clone().unwrap_or_else(|| {
                let prefix = match r.config.model.architecture {
                    raceloop_learn::Architecture::Mlp => "mlp",
                    _ => "tln",
                };
                format!("{prefix}-{version}")
            });
            let job = train::TrainJob {
                dataset_dir: a.dataset.clone(),
                name: job_name(&name, job),
                model: r.config.model.clone(),
                training: r.config.training.clone(),
                device: a.device.clone(),
                models_root: a.models.clone(),
            };
            let dir = train::train_model(&job, run, &mut |_| {}, &crate::interrupt::requested)?;
            metrics::model(run, &dir, r)?;
            Ok(Some(dir))
        },
    )
}

fn evaluate_command(a: &EvaluateArgs, tracking: &TrackingArgs) -> Result<()> {
    tracked(
        "evaluate",
        &a.config,
        a.overrides(),
        tracking,
        |r, run, _, job| {
            let name = last_name(&a.model, "model");
            let out = a
                .out
                .clone()
                .unwrap_or_else(|| PathBuf::from("runs").join(format!("eval-{name}")));
            let out = job_path(&out, job);
            run.set_tag("raceloop.model_dir", a.model.display())?;
            let s = evaluate::evaluate(&a.model, &r.config.evaluation, &r.sim(), &out)?;
            print!("{}", evaluate::table(&s));
            println!("evaluation: {} ({:.1} s)", out.display(), s.wall_time_s);
            metrics::evaluation(run, &out, &s)?;
            Ok(Some(out))
        },
    )
}

fn pipeline_command(a: &PipelineArgs, tracking: &TrackingArgs) -> Result<()> {
    let plan = a.plan();
    tracked(
        "pipeline",
        &a.config,
        a.overrides(),
        tracking,
        |r, run, tracker, job| {
            let dir = pipeline::pipeline(&plan, &job_name(&a.version, job), r, tracker, run)?;
            Ok(Some(dir))
        },
    )
}

/// Resolves the config of every job (one, or one per sweep combination with `--multirun`),
/// then runs `body` for each as a tracked run: params, config hash and overrides logged;
/// `config.ron` and `overrides.ron` saved into the directory that `body` returns and logged as
/// artifacts. Sweep jobs are child runs of one sweep run, and stop at the first failure.
fn tracked(
    command: &str,
    config: &ConfigArgs,
    flags: Vec<String>,
    tracking: &TrackingArgs,
    mut body: impl FnMut(&Resolved, &Run, &Tracker, Option<usize>) -> Result<Option<PathBuf>>,
) -> Result<()> {
    let mut given = config.overrides.clone();
    given.extend(flags);
    let jobs = if config.multirun {
        expand_sweeps(&given)?
    } else {
        vec![given]
    };
    let resolved: Vec<Resolved> = jobs
        .iter()
        .map(|j| Resolved::load(&config.configs, j))
        .collect::<Result<_>>()?;
    let tracker = Tracker::open(tracking)?;
    let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S").to_string();
    let mut one = |r: &Resolved, run: &Run, job: Option<usize>| -> Result<()> {
        metrics::config(run, r)?;
        let out = body(r, run, &tracker, job)?;
        let dir = match &out {
            Some(dir) => dir.clone(),
            None => std::env::temp_dir().join(format!("raceloop-config-{}", std::process::id())),
        };
        r.save(&dir)?;
        for file in ["config.ron", "overrides.ron"] {
            run.log_artifact(&dir.join(file), "")?;
        }
        if out.is_none() {
            let _ = std::fs::remove_dir_all(&dir);
        }
        Ok(())
    };
    if !config.multirun {
        let run = tracker.start(command, &format!("{command}-{stamp}"), None)?;
        let result = run.end_with(one(&resolved[0], &run, None));
        announce(&tracker, &run);
        result
    } else {
        let parent = tracker.start(command, &format!("{command}-sweep-{stamp}"), None)?;
        parent.set_tag("raceloop.sweep", config.overrides.join(" "))?;
        let n = resolved.len();
        let result = resolved.iter().enumerate().try_for_each(|(i, r)| {
            println!("[{command} job {}/{n}] {}", i + 1, r.overrides.join(" "));
            let child = tracker.start(
                command,
                &format!("{command}-sweep-{stamp}-{i}"),
                Some(&parent),
            )?;
            child.end_with(one(r, &child, Some(i)))
        });
        let result = parent.end_with(result);
        announce(&tracker, &parent);
        result
    }
}

fn announce(tracker: &Tracker, run: &Run) {
    if !run.id.is_empty() {
        println!("tracked: run {} in {}", run.id, tracker.uri());
    }
}
