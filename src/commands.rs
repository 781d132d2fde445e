//! Runs the parsed command line. Commands that use configs resolve them (files, experiment,
//! overrides, and the flags as overrides), expand sweeps under `--multirun`, and run each job
//! as a tracked run that saves its `config.ron` and `overrides.ron`.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

use crate::cli::{
    ArchArg, BenchCommand, Cli, Command, ConfigArgs, EvaluateArgs, PipelineArgs, TrainArgs,
};
use crate::configs::Resolved;
use crate::overrides::expand_sweeps;
use crate::stage_metrics;
use crate::tracking::{Run, Tracker, TrackingArgs};

/// Runs the parsed command.
///
/// # Errors
/// The command's error.
pub fn run(cli: Cli) -> Result<()> {
    let tracking = cli.tracking;
    let Some(command) = cli.command else {
        if cli.headless {
            return collect(&cli.collect, &tracking);
        }
        #[cfg(feature = "gui")]
        return crate::view::run(&crate::view::ViewArgs::default(), &tracking);
        #[cfg(not(feature = "gui"))]
        bail!(
            "this build has no window (the `gui` feature); use `raceloop --headless` or a subcommand (see --help)"
        );
    };
    match command {
        Command::Collect(args) => collect(&args, &tracking),
        Command::Extract(a) => {
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
            tracked("extract", &config, Vec::new(), &tracking, |r, run, _, _| {
                let (dir, m) = crate::extract::extract(
                    &runs,
                    &a.val,
                    a.rs_train,
                    a.rs_val,
                    &r.config.dataset,
                    &a.datasets,
                )?;
                crate::extract::report(&dir, &m);
                println!("DVC: {}", crate::dvc::dvc_file(&dir).display());
                stage_metrics::dataset(run, &dir, &m)?;
                Ok(None)
            })
        }
        Command::Train(a) => train(&a, &tracking),
        Command::Evaluate(a) => evaluate(&a, &tracking),
        Command::Pipeline(a) => pipeline(&a, &tracking),
        #[cfg(feature = "gui")]
        Command::View(a) => crate::view::run(&a, &tracking),
        Command::Runs(a) => crate::runs::list(&tracking, a.limit),
        Command::Lineage { model } => crate::runs::lineage(&model),
        Command::Summarize { run } => crate::collect::summarize(run.as_deref()),
        Command::Drive(args) => crate::drive::run(&args),
        Command::Bench(BenchCommand::Sim(args)) => crate::bench::sim(&args),
        Command::Bench(BenchCommand::Collect(args)) => crate::bench::collect(&args),
        Command::Bench(BenchCommand::Lidar(args)) => crate::bench::lidar(&args),
        Command::Bench(BenchCommand::Train(args)) => crate::bench::train(&args),
        Command::Bench(BenchCommand::Infer(args)) => crate::bench::infer(&args),
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

fn job_path(path: &Path, job: Option<usize>) -> PathBuf {
    PathBuf::from(job_name(&path.to_string_lossy(), job))
}

fn collect(args: &crate::cli::CollectArgs, tracking: &TrackingArgs) -> Result<()> {
    let flags = crate::collect::flag_overrides(args);
    tracked(
        "collect",
        &args.config,
        flags,
        tracking,
        |r, run, _, job| {
            let out = args.out.as_deref().map(|o| job_path(o, job));
            let (dir, summary, wall) = crate::collect::run(r, out.as_deref())?;
            stage_metrics::collection(run, &dir, &summary, wall, r.config.collection.seed)?;
            Ok(Some(dir))
        },
    )
}

fn arch(a: ArchArg) -> &'static str {
    match a {
        ArchArg::TinyLidarNet => "TinyLidarNet",
        ArchArg::Mlp => "Mlp",
    }
}

fn train(a: &TrainArgs, tracking: &TrackingArgs) -> Result<()> {
    let mut flags = Vec::new();
    if let Some(e) = a.epochs {
        flags.push(format!("training.epochs={e}"));
    }
    if let Some(x) = a.arch {
        flags.push(format!("model.architecture={}", arch(x)));
    }
    if let Some(o) = a.outputs {
        flags.push(format!("model.outputs={o}"));
    }
    tracked("train", &a.config, flags, tracking, |r, run, _, job| {
        let version = a
            .dataset
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let name = a.name.clone().unwrap_or_else(|| {
            let prefix = match r.config.model.architecture {
                raceloop_learn::Architecture::Mlp => "mlp",
                _ => "tln",
            };
            format!("{prefix}-{version}")
        });
        let dir = crate::train_cmd::train(
            &a.dataset,
            &job_name(&name, job),
            &r.config.model,
            &r.config.training,
            &a.device,
            &a.models,
            run,
            &mut |_| {},
            &|| crate::STOP.load(std::sync::atomic::Ordering::Relaxed),
        )?;
        stage_metrics::model(run, &dir, r)?;
        Ok(Some(dir))
    })
}

fn evaluate(a: &EvaluateArgs, tracking: &TrackingArgs) -> Result<()> {
    let mut flags = Vec::new();
    if let Some(t) = &a.track {
        flags.push(format!("evaluation.tracks='{t}'"));
    }
    if let Some(n) = a.episodes {
        flags.push(format!("evaluation.episodes_per_track={n}"));
    }
    if let Some(s) = a.seed {
        flags.push(format!("evaluation.seed={s}"));
    }
    if let Some(l) = a.laps {
        flags.push(format!("evaluation.laps={l}"));
    }
    if let Some(w) = a.workers {
        flags.push(format!("evaluation.workers={w}"));
    }
    if a.no_expert {
        flags.push("evaluation.expert_reference=false".into());
    }
    tracked("evaluate", &a.config, flags, tracking, |r, run, _, job| {
        let name = a
            .model
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model".into());
        let out = a
            .out
            .clone()
            .unwrap_or_else(|| PathBuf::from("runs").join(format!("eval-{name}")));
        let out = job_path(&out, job);
        run.set_tag("raceloop.model_dir", a.model.display())?;
        let s = crate::evaluate::evaluate(&a.model, &r.config.evaluation, &r.sim(), &out)?;
        print!("{}", crate::evaluate::table(&s));
        println!("evaluation: {} ({:.1} s)", out.display(), s.wall_time_s);
        stage_metrics::evaluation(run, &out, &s)?;
        Ok(Some(out))
    })
}

fn pipeline(a: &PipelineArgs, tracking: &TrackingArgs) -> Result<()> {
    let mut flags = Vec::new();
    if let Some(e) = a.epochs {
        flags.push(format!("training.epochs={e}"));
    }
    if let Some(x) = a.arch {
        flags.push(format!("model.architecture={}", arch(x)));
    }
    if let Some(t) = &a.track {
        flags.push(format!("collection.tracks='{t}'"));
        flags.push(format!("evaluation.tracks='{t}'"));
    }
    if let Some(n) = a.eval_episodes {
        flags.push(format!("evaluation.episodes_per_track={n}"));
    }
    tracked(
        "pipeline",
        &a.config,
        flags,
        tracking,
        |r, run, tracker, job| {
            let dir = crate::pipeline::run(a, &job_name(&a.version, job), r, tracker, run)?;
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
        stage_metrics::config(run, r)?;
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
