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
use raceloop_sim::{PurePursuit, SimConfig, Track};
use serde::{Deserialize, Serialize};

use crate::config::{CollectionConfig, Resolved, digest};
use crate::episode::jobs::{load_tracks, run_jobs};
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
}

/// The default run directory of a collection: `runs/collect-<hash of what the episodes depend on>`
/// (not the worker count), so that the same command resumes.
pub fn default_dir(c: &CollectionConfig, sim: &SimConfig, tracks: &[Arc<Track>]) -> PathBuf {
    let names: Vec<String> = tracks.iter().map(|t| t.name.clone()).collect();
    let key = format!(
        "{}|{}|{}|{}|{}|{}",
        c.episodes,
        c.seed,
        names.join(","),
        c.steering_noise,
        c.steering_noise_tau,
        sim.to_ron()
    );
    PathBuf::from("runs").join(format!("collect-{}", digest(&key)))
}

/// Runs (or resumes) a collection into `out` (default: [`default_dir`]) and writes its summary.
/// Returns the run directory, its summary and the wall time, s.
///
/// # Errors
/// Bad settings, I/O errors, or [`Interrupted`] after Ctrl-C (finished episodes are kept).
pub fn collect_resolved(
    resolved: &Resolved,
    out: Option<&Path>,
) -> Result<(PathBuf, Summary, f64)> {
    let t0 = Instant::now();
    let c = &resolved.config.collection;
    let sim = c.episode_sim(&resolved.sim())?;
    let tracks = load_tracks(&c.tracks)?;
    let dir = out.map_or_else(|| default_dir(c, &sim, &tracks), Path::to_path_buf);
    let (dir, summary) = collect(&dir, c, &sim, &tracks)?;
    println!("{}", summary.line());
    println!("run: {}", dir.display());
    Ok((dir, summary, t0.elapsed().as_secs_f64()))
}

/// Collects `c.episodes` expert episodes into `dir` (resuming), then summarises.
///
/// # Errors
/// As [`collect_resolved`].
pub fn collect(
    dir: &Path,
    c: &CollectionConfig,
    sim: &SimConfig,
    tracks: &[Arc<Track>],
) -> Result<(PathBuf, Summary)> {
    std::fs::create_dir_all(dir.join("episodes"))
        .with_context(|| format!("creating {}", dir.display()))?;
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
    };
    raceloop_files::write_json(&dir.join("run.json"), &info)?;
    let jobs: Vec<EpisodeJob> = (0..c.episodes)
        .map(|i| {
            let seed = c.seed + i as u64;
            EpisodeJob {
                track: tracks[i % tracks.len()].clone(),
                config: sim.clone(),
                seed,
                dir: Some(dir.join("episodes").join(seed.to_string())),
            }
        })
        .collect();
    let results = run_jobs(
        &jobs,
        c.workers,
        "collect",
        |job| {
            let expert = PurePursuit::new(job.config.expert.clone(), &job.track);
            if c.steering_noise > 0.0 {
                Driver::NoisyExpert(
                    expert,
                    SteeringNoise::new(
                        job.seed,
                        c.steering_noise,
                        c.steering_noise_tau,
                        job.config.sim.dt,
                    ),
                )
            } else {
                Driver::PurePursuit(expert)
            }
        },
        "expert",
    )?;
    info.wall_time_s = started.elapsed().as_secs_f64();
    info.complete = true;
    raceloop_files::write_json(&dir.join("run.json"), &info)?;
    let summary = summary::write(dir, &results)?;
    Ok((dir.to_path_buf(), summary))
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
