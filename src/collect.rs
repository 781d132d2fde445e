//! Headless parallel collection: `raceloop --headless --episodes 200` / `raceloop collect`.
//!
//! Episode `i` uses seed `BASE + i` and track `i mod (number of tracks)`; results do not depend
//! on the number of workers. The run directory is named after a hash of the resolved settings,
//! so running the same command again resumes: finished episodes are verified and skipped.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use raceloop_sim::{PurePursuit, SimConfig, StartMode, Track};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::cli::{CollectArgs, StartArg};
use crate::configs::Resolved;
use crate::headless::{EpisodeJob, Interrupted, finished_result, run_episode};
use crate::provenance::Versions;
use crate::result::EpisodeResult;
use crate::sim_plugin::{Driver, SteeringNoise};
use crate::summary::{self, Summary};
use crate::{STOP, atomic_file};

/// Collection settings (`configs/collection.ron`, override keys `collection.*`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectionConfig {
    /// Number of episodes.
    pub episodes: usize,
    /// Seed of episode 0.
    pub seed: u64,
    /// `all`, or comma-separated shipped names / centerline CSV paths.
    pub tracks: String,
    /// Episode goal, laps of progress.
    pub laps: f64,
    /// Start mode.
    pub start: StartMode,
    /// Scan every N physics steps.
    pub lidar_period_steps: u32,
    /// Parallel episodes; 0 = all cores.
    pub workers: usize,
    /// Noise injected into the expert's steering (DART), rad (0 = none); the clean command is the label.
    pub steering_noise: f64,
    /// Time constant of that noise, s.
    pub steering_noise_tau: f64,
}

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

/// Loads the tracks named by a `--track` value: comma-separated shipped names, centerline CSV
/// paths, or `all` (every shipped track). A track named twice (`all,Montreal`) gets twice the
/// share of round-robin episodes (each track is loaded once).
///
/// # Errors
/// Unknown names or bad files.
pub fn load_tracks(spec: &str) -> Result<Vec<Arc<Track>>> {
    let names = track_names(spec);
    if names.is_empty() {
        bail!("no track given");
    }
    let mut distinct = names.clone();
    distinct.sort();
    distinct.dedup();
    let loaded: std::collections::HashMap<&String, Arc<Track>> = distinct
        .par_iter()
        .map(|n| Ok((n, Arc::new(Track::load(n)?))))
        .collect::<Result<_>>()?;
    Ok(names.iter().map(|n| loaded[n].clone()).collect())
}

/// The names or paths of a `--track` value, `all` expanded, in order, repeats kept.
fn track_names(spec: &str) -> Vec<String> {
    spec.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .flat_map(|s| {
            if s.eq_ignore_ascii_case("all") {
                raceloop_sim::track::shipped_names()
                    .into_iter()
                    .map(String::from)
                    .collect()
            } else {
                vec![s.to_string()]
            }
        })
        .collect()
}

/// A short hex digest of `text`.
pub fn digest(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The collection settings and the simulation config of its episodes (the collection's goal,
/// start mode and scan period replace the episode's and LiDAR's).
///
/// # Errors
/// Out-of-range values after that.
pub fn resolve(resolved: &Resolved) -> Result<(CollectionConfig, SimConfig)> {
    let c = resolved.config.collection.clone();
    let mut sim = resolved.sim();
    sim.episode.laps = c.laps;
    sim.episode.start.mode = c.start;
    sim.lidar.period_steps = c.lidar_period_steps;
    sim.validate()?;
    Ok((c, sim))
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

/// The command-line flags of `raceloop collect` as overrides.
pub fn flag_overrides(args: &CollectArgs) -> Vec<String> {
    let mut o = Vec::new();
    if let Some(n) = args.episodes {
        o.push(format!("collection.episodes={n}"));
    }
    if let Some(s) = args.seed {
        o.push(format!("collection.seed={s}"));
    }
    if let Some(t) = &args.track {
        o.push(format!("collection.tracks='{t}'"));
    }
    if let Some(w) = args.workers {
        o.push(format!("collection.workers={w}"));
    }
    if let Some(l) = args.laps {
        o.push(format!("collection.laps={l}"));
    }
    if let Some(s) = args.start {
        o.push(format!(
            "collection.start={}",
            match s {
                StartArg::Grid => "Grid",
                StartArg::Random => "Random",
            }
        ));
    }
    o
}

/// Runs (or resumes) a collection into `out` (default: [`default_dir`]) and writes its summary.
/// Returns the run directory, its summary and the wall time, s.
///
/// # Errors
/// Bad settings, I/O errors, or [`Interrupted`] after Ctrl-C (finished episodes are kept).
pub fn run(resolved: &Resolved, out: Option<&Path>) -> Result<(PathBuf, Summary, f64)> {
    let t0 = Instant::now();
    let (c, sim) = resolve(resolved)?;
    let tracks = load_tracks(&c.tracks)?;
    let dir = out.map_or_else(|| default_dir(&c, &sim, &tracks), Path::to_path_buf);
    let (dir, summary) = collect(&dir, &c, &sim, &tracks)?;
    println!("{}", summary.line());
    println!("run: {}", dir.display());
    Ok((dir, summary, t0.elapsed().as_secs_f64()))
}

/// Collects `c.episodes` expert episodes into `dir` (resuming), then summarises.
///
/// # Errors
/// As [`run`].
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
    atomic_file::write_json(&dir.join("run.json"), &info)?;
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
    atomic_file::write_json(&dir.join("run.json"), &info)?;
    let summary = summary::write(dir, &results)?;
    Ok((dir.to_path_buf(), summary))
}

/// Runs `jobs` on `workers` rayon threads (0 = all cores) with a progress bar, skipping episodes
/// already finished in their directory. Results come back in job order.
///
/// # Errors
/// The first failing episode's error, or [`Interrupted`].
pub fn run_jobs(
    jobs: &[EpisodeJob],
    workers: usize,
    label: &str,
    driver: impl Fn(&EpisodeJob) -> Driver + Sync,
    driver_name: &str,
) -> Result<Vec<EpisodeResult>> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(workers)
        .build()?;
    let bar = ProgressBar::new(jobs.len() as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix} [{bar:30}] {pos}/{len} episodes, {per_sec}, {msg}, ETA {eta}",
        )
        .expect("template")
        .progress_chars("=> "),
    );
    bar.set_prefix(label.to_string());
    let successes = AtomicUsize::new(0);
    let results: Vec<Result<EpisodeResult>> = pool.install(|| {
        jobs.par_iter()
            .map(|job| {
                let result = match job.dir.as_deref().and_then(finished_result) {
                    Some(done) => Ok(done),
                    None => run_episode(job, driver(job), driver_name, &STOP),
                };
                if let Ok(r) = &result {
                    let ok = successes.fetch_add(r.success as usize, Ordering::Relaxed)
                        + r.success as usize;
                    bar.inc(1);
                    bar.set_message(format!(
                        "success {:.0} %",
                        100.0 * ok as f64 / bar.position().max(1) as f64
                    ));
                }
                result
            })
            .collect()
    });
    bar.finish_and_clear();
    let mut out = Vec::with_capacity(results.len());
    for r in results {
        match r {
            Ok(r) => out.push(r),
            Err(e) if e.is::<Interrupted>() => {
                bail!(
                    "interrupted after {} finished episodes; run the same command again to resume",
                    bar.position()
                )
            }
            Err(e) => return Err(e),
        }
    }
    Ok(out)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn track_lists_expand_all_and_keep_repeats() {
        let shipped = raceloop_sim::track::shipped_names();
        assert_eq!(track_names("all"), shipped);
        let weighted = track_names("all, Montreal");
        assert_eq!(weighted.len(), shipped.len() + 1);
        assert_eq!(weighted.iter().filter(|n| *n == "Montreal").count(), 2);
        assert_eq!(
            track_names("Austin,,tracks/x.csv"),
            ["Austin", "tracks/x.csv"]
        );
        assert!(track_names(" , ").is_empty());
    }
}
