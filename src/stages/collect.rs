//! Headless parallel collection of expert episodes: `raceloop --headless --episodes 200` /
//! `raceloop collect`, and `raceloop summarize`.
//!
//! Episode `i` uses seed `BASE + i` and track `i mod (number of tracks)`; results do not depend
//! on the number of workers. The run directory is named after a hash of the resolved settings,
//! so running the same command again resumes: finished episodes are verified and skipped.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use raceloop_learn::Policy;
use raceloop_sim::{PurePursuit, SimConfig, Track};
use serde::{Deserialize, Serialize};

use crate::config::{CollectionConfig, Resolved, digest};
use crate::episode::jobs::{load_tracks, run_jobs};
use crate::episode::model_driver::{ModelDriver, model_digest};
use crate::episode::plugin::{Driver, SteeringNoise};
use crate::episode::runner::EpisodeJob;
use crate::episode::summary::{self, Summary};
use crate::tracking::provenance::Versions;

/// `run.json`: how a collection run was made.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunInfo {
    /// The command line.
    pub command: Vec<String>,
    /// Collection settings.
    pub collection: CollectionConfig,
    /// The simulation config applied to every episode.
    pub sim: SimConfig,
    /// Track names, in round-robin order.
    pub tracks: Vec<String>,
    /// First and last seed.
    pub seeds: [u64; 2],
    /// Versions of the build.
    pub versions: Versions,
    /// Wall time of the last invocation, s.
    pub wall_time_s: f64,
    /// Whether every episode finished.
    pub complete: bool,
    /// DAgger runs: the model that drove (its directory and
    /// [`crate::episode::model_driver::model_digest`]) and the labeller's setting; absent for the
    /// expert's runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// Digests of the geometry of the tracks that are not shipped ([`custom_geometry`]), so
    /// that a run never resumes into episodes of an edited CSV or another generator; absent
    /// when every track is shipped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub track_geometry: Vec<String>,
}

/// A digest of the centerline and widths of each track that is not shipped (a CSV file or a
/// generated circuit), in order. The shipped tracks are compiled into the binary, and their
/// names alone keep the run keys of earlier versions.
fn custom_geometry(tracks: &[Arc<Track>]) -> Vec<String> {
    tracks
        .iter()
        .filter(|t| {
            let shipped = raceloop_sim::track::SHIPPED.iter().any(|s| s.0 == t.name);
            !shipped || t.source != Path::new("tracks").join(format!("{}_centerline.csv", t.name))
        })
        .map(|t| {
            digest(&format!(
                "{}|{:?}|{:?}|{:?}",
                t.name,
                t.centerline.points(),
                t.w_right,
                t.w_left
            ))
        })
        .collect()
}

/// The default run directory of a collection: `runs/collect-<hash of what the episodes depend on>`
/// (not the worker count), so that the same command resumes.
pub fn default_dir(c: &CollectionConfig, sim: &SimConfig, tracks: &[Arc<Track>]) -> PathBuf {
    let names: Vec<String> = tracks.iter().map(|t| t.name.clone()).collect();
    let mut key = format!(
        "{}|{}|{}|{}|{}|{}|{}",
        c.episodes,
        c.seed,
        names.join(","),
        c.steering_noise,
        c.steering_noise_tau,
        c.steering_noise_speed,
        sim.to_ron()
    );
    let geometry = custom_geometry(tracks);
    if !geometry.is_empty() {
        key.push_str(&format!("|{}", geometry.join(",")));
    }
    PathBuf::from("runs").join(format!("collect-{}", digest(&key)))
}

/// What a collection produced.
#[derive(Debug, Clone)]
pub struct Collected {
    /// The run directory.
    pub dir: PathBuf,
    /// Its summary over every episode, earlier finished ones included.
    pub summary: Summary,
    /// Episodes simulated by this invocation (the others were finished before).
    pub ran: usize,
    /// Physics steps of those episodes.
    pub ran_steps: u64,
    /// Wall time of this invocation, s.
    pub wall_s: f64,
}

/// Runs (or resumes) a collection into `out` (default: [`default_dir`]) and writes its summary.
///
/// # Errors
/// Bad settings, I/O errors, or an interruption by Ctrl-C (finished episodes are kept).
pub fn collect_resolved(resolved: &Resolved, out: Option<&Path>) -> Result<Collected> {
    let c = &resolved.config.collection;
    let sim = c.episode_sim(&resolved.sim())?;
    let tracks = load_tracks(&c.tracks)?;
    let dir = out.map_or_else(|| default_dir(c, &sim, &tracks), Path::to_path_buf);
    let collected = collect(&dir, c, &sim, &tracks)?;
    println!("{}", collected.summary.line());
    println!("run: {}", collected.dir.display());
    Ok(collected)
}

/// Whether the run described by `old` made its episodes with the same settings and driver as
/// `new` (the episode count and the worker count aside: they change no episode).
fn same_episodes(old: &RunInfo, new: &RunInfo) -> bool {
    let settings = |i: &RunInfo| CollectionConfig {
        episodes: 0,
        workers: 0,
        ..i.collection.clone()
    };
    settings(old) == settings(new)
        && old.sim == new.sim
        && old.tracks == new.tracks
        && old.policy == new.policy
        && old.track_geometry == new.track_geometry
}

/// Removes the episodes and summaries of `dir` when its `run.json` describes other settings
/// than `info` (saying so), so that a resumed run never mixes them.
fn clear_if_other(dir: &Path, info: &RunInfo) -> Result<()> {
    let Ok(old) = raceloop_files::read_json::<RunInfo>(&dir.join("run.json")) else {
        return Ok(());
    };
    if same_episodes(&old, info) {
        return Ok(());
    }
    println!(
        "collection: {} holds episodes of other settings; starting afresh",
        dir.display()
    );
    for name in ["episodes", "summary.json", "aggregated_results.csv"] {
        raceloop_files::remove(&dir.join(name))?;
    }
    Ok(())
}

/// Collects `c.episodes` expert episodes into `dir`, resuming the finished ones when `dir`
/// holds a run of the same settings (else starting afresh), then summarises.
///
/// # Errors
/// As [`collect_resolved`].
pub fn collect(
    dir: &Path,
    c: &CollectionConfig,
    sim: &SimConfig,
    tracks: &[Arc<Track>],
) -> Result<Collected> {
    collect_with(dir, c, sim, tracks, None)
}

/// Collects `c.episodes` DAgger episodes into `dir`: the model in `model_dir` drives (without
/// noise) and the expert's command for each visited state, with its lookahead grown by
/// `label_gain` per metre off its path, is recorded as `/expert/control`, the label. Resumes as
/// [`collect`] does, only when the same model drove and the same labeller labelled.
///
/// # Errors
/// As [`collect_resolved`]; an unloadable model, or one whose beam count differs from the LiDAR's.
pub fn collect_dagger(
    dir: &Path,
    c: &CollectionConfig,
    sim: &SimConfig,
    tracks: &[Arc<Track>],
    model_dir: &Path,
    label_gain: f64,
) -> Result<Collected> {
    let policy = Policy::load(model_dir)
        .with_context(|| format!("loading model {}", model_dir.display()))?;
    let beams = policy.config().num_beams;
    if sim.lidar.num_beams != beams {
        anyhow::bail!(
            "the LiDAR has {} beams but model {} reads {beams}",
            sim.lidar.num_beams,
            model_dir.display()
        );
    }
    let key = format!(
        "{}:{}, label lookahead error gain {label_gain}",
        model_dir.display(),
        model_digest(model_dir)?
    );
    let learner = Learner {
        policy,
        key,
        label_gain,
    };
    collect_with(dir, c, sim, tracks, Some(learner))
}

/// The model that drives a DAgger collection, what keys its run, and the labeller's setting.
struct Learner {
    policy: Policy,
    key: String,
    label_gain: f64,
}

fn collect_with(
    dir: &Path,
    c: &CollectionConfig,
    sim: &SimConfig,
    tracks: &[Arc<Track>],
    learner: Option<Learner>,
) -> Result<Collected> {
    let started = Instant::now();
    let mut info = RunInfo {
        command: std::env::args().collect(),
        collection: c.clone(),
        sim: sim.clone(),
        tracks: tracks.iter().map(|t| t.name.clone()).collect(),
        seeds: [c.seed, c.seed + c.episodes.saturating_sub(1) as u64],
        versions: Versions::current(),
        wall_time_s: 0.0,
        complete: false,
        policy: learner.as_ref().map(|l| l.key.clone()),
        track_geometry: custom_geometry(tracks),
    };
    clear_if_other(dir, &info)?;
    std::fs::create_dir_all(dir.join("episodes"))
        .with_context(|| format!("creating {}", dir.display()))?;
    raceloop_files::write_json(&dir.join("run.json"), &info)?;
    let jobs: Vec<EpisodeJob> = (0..c.episodes)
        .map(|i| {
            let seed = c.seed + i as u64;
            EpisodeJob {
                track: tracks[i % tracks.len()].clone(),
                config: sim.clone(),
                seed,
                dir: Some(dir.join("episodes").join(seed.to_string())),
                detail: raceloop_record::Detail::Full {
                    state_every: c.log_state_every,
                },
            }
        })
        .collect();
    let label_gain = learner.as_ref().map_or(0.0, |l| l.label_gain);
    let shared = learner.map(|l| std::sync::Mutex::new(l.policy));
    let ran = run_jobs(
        &jobs,
        c.workers,
        if shared.is_some() {
            "collect (DAgger)"
        } else {
            "collect"
        },
        |job| {
            let expert =
                PurePursuit::new(job.config.expert.clone(), &job.track, &job.config.vehicle);
            if let Some(policy) = &shared {
                let policy = policy.lock().expect("policy").clone();
                Driver::Dagger(
                    expert.with_lookahead_error_gain(label_gain),
                    Box::new(ModelDriver(policy)),
                )
            } else if c.steering_noise > 0.0 {
                Driver::NoisyExpert(
                    expert,
                    SteeringNoise::new(
                        job.seed,
                        c.steering_noise,
                        c.steering_noise_tau,
                        job.config.sim.dt,
                        c.steering_noise_speed,
                    ),
                )
            } else {
                Driver::PurePursuit(expert)
            }
        },
        if shared.is_some() { "dagger" } else { "expert" },
    )?;
    info.wall_time_s = started.elapsed().as_secs_f64();
    info.complete = true;
    raceloop_files::write_json(&dir.join("run.json"), &info)?;
    let summary = summary::write(dir, &ran.results)?;
    Ok(Collected {
        dir: dir.to_path_buf(),
        summary,
        ran: ran.ran,
        ran_steps: ran.ran_steps,
        wall_s: started.elapsed().as_secs_f64(),
    })
}

/// `raceloop summarize [RUN_DIR]`: recomputes a run's summary from its episodes.
///
/// # Errors
/// Missing run or unreadable results.
pub fn summarize(run: Option<&Path>) -> Result<()> {
    let dir = match run {
        Some(d) => d.to_path_buf(),
        None => summary::latest_run(Path::new("runs"))?,
    };
    let results = summary::read_results(&dir)?;
    let s = summary::write(&dir, &results)?;
    println!("{}: {}", dir.display(), s.line());
    for (track, t) in &s.per_track {
        println!(
            "  {track:14} {:>4} episodes  success {:5.1} %",
            t.episodes,
            100.0 * t.success_rate
        );
    }
    Ok(())
}
