//! `raceloop extract`: collection runs → a versioned behavioral-cloning dataset.
//!
//! Only episodes whose outcome is `goal_reached` are kept ("noisy data filtering" of the
//! pipeline we replace), except in DAgger runs (a model drove, the expert labelled): there an
//! episode that ended in a collision keeps its scans up to `dagger.failure_margin_s` before it.
//! Pairing rule: the scan logged at time t is paired with the command logged at the same t,
//! i.e. the one the expert issued right after that scan: `/expert/control` where the episode
//! has it (noise injection or DAgger: the expert's command), else `/control` (the applied
//! command). The episode's last scan has no command and is dropped.
//! Splits are by episode, never by sample: the first `rs_train` kept episodes (by run, then
//! seed) train, the next `rs_val` validate.
//!
//! The dataset version id is a hash of the extraction settings and of every used episode's
//! MCAP bytes and split, so re-running with unchanged inputs reuses `datasets/<id>/`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use raceloop_learn::dataset::{Dataset, Split, Stats};
use raceloop_record::EpisodeLog;
use raceloop_sim::SimConfig;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::collect::RunInfo;
use crate::config::{DaggerConfig, DatasetConfig};
use crate::episode::result::EpisodeResult;
use crate::episode::runner::MCAP_FILE;
use crate::episode::summary::read_results;
use crate::tracking::dvc;

/// An episode used in the dataset.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EpisodeRef {
    /// Run directory.
    pub run: PathBuf,
    /// Episode seed.
    pub seed: u64,
    /// Track.
    pub track: String,
    /// SHA-256 of the episode's MCAP.
    pub mcap_sha256: String,
    /// Samples taken from it.
    pub samples: usize,
    /// A DAgger episode that ended in a collision: its scans after this time (s) were left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_s: Option<f64>,
}

/// `manifest.json` of a dataset version.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// Dataset version id (content hash).
    pub version: String,
    /// Source collection runs.
    pub source_runs: Vec<PathBuf>,
    /// Extraction settings.
    pub settings: DatasetConfig,
    /// Training episodes.
    pub train: Vec<EpisodeRef>,
    /// Validation episodes.
    pub val: Vec<EpisodeRef>,
    /// Episodes dropped, by outcome.
    pub dropped: std::collections::BTreeMap<String, usize>,
    /// Training and validation sample counts.
    pub samples: [usize; 2],
}

/// What a dataset version holds, part of its key: a version written before the ego speeds were
/// stored has another key, so it is extracted again rather than reused without them.
const DATASET_FORMAT: &str = "scans u16, labels [steering, speed], ego speeds\n";

/// Scan/command pairs of one episode: ranges `[n, beams]` (m), ego speeds `[n]` (m/s) and
/// labels `[n, 2]` (rad, m/s),
/// every `sample_every`-th scan (see [`EpisodeLog::scan_command_pairs`]) taken at or before
/// `until_s` (s; `None`: all). Every scan must have `beams` ranges (the run's LiDAR).
fn episode_samples(
    mcap_bytes: &[u8],
    sample_every: usize,
    beams: usize,
    until_s: Option<f64>,
    path: &Path,
) -> Result<Split> {
    let mut log = EpisodeLog::from_bytes(mcap_bytes, path)?;
    if log.thin {
        bail!(
            "{} is a thin log (a successful evaluation episode, with a scan per second): \
             extract from collection runs, or evaluate with evaluation.thin_successes=false",
            path.display()
        );
    }
    if let Some((t, scan)) = log.scans.iter().find(|(_, s)| s.len() != beams) {
        bail!(
            "{}: the /scan at {:.2} s has {} ranges, but the run's LiDAR has {beams} beams",
            path.display(),
            *t as f64 * 1e-9,
            scan.len()
        );
    }
    if let Some(until) = until_s {
        log.scans.retain(|(t, _)| *t as f64 * 1e-9 <= until);
    }
    let mut split = Split::default();
    for (ranges, speed, label) in log.scan_command_pairs(sample_every) {
        split.scans.extend_from_slice(ranges);
        split.speeds.push(speed as f32);
        split
            .labels
            .extend([label.steering as f32, label.speed as f32]);
    }
    Ok(split)
}

/// Extracts a dataset into `root/<version>/` (reusing an existing identical one). Training
/// episodes come from `train_runs`; validation episodes from `val_runs`, or, when that is empty,
/// from the successful episodes of `train_runs` after the first `rs_train`. `rs_train`/`rs_val`
/// cap the successful episodes used (`None`: all; without `val_runs`, 80 % / 20 %). DAgger
/// runs' collisions are kept up to `dagger.failure_margin_s` before they ended.
///
/// # Errors
/// Unreadable runs or MCAPs (named), or no successful episode.
pub fn extract(
    train_runs: &[PathBuf],
    val_runs: &[PathBuf],
    rs_train: Option<usize>,
    rs_val: Option<usize>,
    settings: &DatasetConfig,
    dagger: &DaggerConfig,
    root: &Path,
) -> Result<(PathBuf, Manifest)> {
    let margin = dagger.failure_margin_s;
    let (mut kept, mut dropped, sim) = successful(train_runs, margin)?;
    let n_train;
    if val_runs.is_empty() {
        n_train = rs_train.unwrap_or(kept.len() * 4 / 5).min(kept.len());
        let n_val = rs_val
            .unwrap_or(kept.len() - n_train)
            .min(kept.len() - n_train);
        kept.truncate(n_train + n_val);
    } else {
        kept.truncate(rs_train.unwrap_or(usize::MAX));
        n_train = kept.len();
        let (mut val, val_dropped, val_sim) = successful(val_runs, margin)?;
        if val_sim.lidar.num_beams != sim.lidar.num_beams || val_sim.vehicle != sim.vehicle {
            bail!(
                "the validation runs were collected with another LiDAR or vehicle than the training runs"
            );
        }
        val.truncate(rs_val.unwrap_or(usize::MAX));
        kept.extend(val);
        for (k, v) in val_dropped {
            *dropped.entry(k).or_insert(0) += v;
        }
    }
    let runs: Vec<PathBuf> = train_runs.iter().chain(val_runs).cloned().collect();
    if n_train == 0 {
        bail!(
            "no successful training episode in {}",
            train_runs
                .iter()
                .map(|r| r.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    extract_episodes(&runs, kept, n_train, dropped, &sim, settings, root)
}

/// A kept episode: its run, result, and the time (s) after which its scans are left out (a
/// DAgger collision's).
type KeptEpisode = (PathBuf, EpisodeResult, Option<f64>);

type Kept = (
    Vec<KeptEpisode>,
    std::collections::BTreeMap<String, usize>,
    SimConfig,
);

/// The successful episodes of `runs` in order (with DAgger runs' collisions, cut `margin` s
/// before they ended, unless `margin` < 0; a timeout can hold minutes of a stopped car and a
/// wrong-way episode a car driving backwards, and both are dropped), the dropped ones by
/// outcome, and the simulation config of the first run (every run must have the same vehicle
/// and LiDAR beam count).
fn successful(runs: &[PathBuf], margin: f64) -> Result<Kept> {
    let mut kept: Vec<KeptEpisode> = Vec::new();
    let mut dropped = std::collections::BTreeMap::new();
    let mut first: Option<(PathBuf, SimConfig)> = None;
    for run in runs {
        let info: RunInfo = raceloop_files::read_json(&run.join("run.json"))
            .with_context(|| format!("{} is not a collection run", run.display()))?;
        if let Some((first_run, sim)) = &first {
            if sim.lidar.num_beams != info.sim.lidar.num_beams || sim.vehicle != info.sim.vehicle {
                bail!(
                    "{} ({} beams) and {} ({} beams) were collected with another LiDAR or \
                     vehicle; a dataset takes runs of one kind",
                    first_run.display(),
                    sim.lidar.num_beams,
                    run.display(),
                    info.sim.lidar.num_beams
                );
            }
        } else {
            first = Some((run.clone(), info.sim.clone()));
        }
        let margin = (info.policy.is_some() && margin >= 0.0).then_some(margin);
        for r in read_results(run)? {
            if r.success {
                kept.push((run.clone(), r, None));
            } else if let Some(m) = margin
                && r.outcome == raceloop_sim::Outcome::Collision
                && r.duration_s > m
            {
                let until = r.duration_s - m;
                kept.push((run.clone(), r, Some(until)));
            } else {
                *dropped.entry(r.outcome.as_str().to_string()).or_insert(0) += 1;
            }
        }
    }
    Ok((kept, dropped, first.context("no run given")?.1))
}

fn extract_episodes(
    runs: &[PathBuf],
    kept: Vec<KeptEpisode>,
    n_train: usize,
    dropped: std::collections::BTreeMap<String, usize>,
    sim: &SimConfig,
    settings: &DatasetConfig,
    root: &Path,
) -> Result<(PathBuf, Manifest)> {
    let episodes: Vec<(EpisodeRef, Split)> = kept
        .par_iter()
        .map(|(run, r, until)| {
            let path = run
                .join("episodes")
                .join(r.seed.to_string())
                .join(MCAP_FILE);
            let bytes =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            let split = episode_samples(
                &bytes,
                settings.sample_every,
                sim.lidar.num_beams,
                *until,
                &path,
            )?;
            let hash = crate::config::hex(&Sha256::digest(&bytes));
            let samples = split.labels.len() / 2;
            Ok((
                EpisodeRef {
                    run: run.clone(),
                    seed: r.seed,
                    track: r.track.clone(),
                    mcap_sha256: hash,
                    samples,
                    until_s: *until,
                },
                split,
            ))
        })
        .collect::<Result<_>>()?;
    let mut hasher = Sha256::new();
    hasher.update(DATASET_FORMAT.as_bytes());
    hasher.update(ron::to_string(settings)?.as_bytes());
    for (i, (e, _)) in episodes.iter().enumerate() {
        hasher.update(
            format!(
                "{}|{}|{}\n",
                if i < n_train { "train" } else { "val" },
                e.seed,
                e.mcap_sha256
            )
            .as_bytes(),
        );
        if let Some(until) = e.until_s {
            hasher.update(format!("until {until}\n").as_bytes());
        }
    }
    let version = crate::config::hex(&hasher.finalize()[..8]);
    let dir = root.join(&version);
    if let Ok(manifest) = raceloop_files::read_json::<Manifest>(&dir.join("manifest.json"))
        && dir.join("data.safetensors").is_file()
    {
        if !dvc::dvc_file(&dir).is_file() {
            dvc::write(&dir)?;
        }
        return Ok((dir, manifest));
    }
    let (mut train, mut val) = (Split::default(), Split::default());
    let (mut train_refs, mut val_refs) = (Vec::new(), Vec::new());
    for (i, (e, s)) in episodes.into_iter().enumerate() {
        let (split, refs) = if i < n_train {
            (&mut train, &mut train_refs)
        } else {
            (&mut val, &mut val_refs)
        };
        split.scans.extend(s.scans);
        split.labels.extend(s.labels);
        split.speeds.extend(s.speeds);
        refs.push(e);
    }
    let beams = sim.lidar.num_beams;
    if train.labels.is_empty() {
        bail!("the training split has no samples");
    }
    let stats = Stats::compute(
        &train,
        &val,
        beams,
        settings.range_clip,
        sim.vehicle.s_max as f32 * settings.steering_headroom,
        sim.vehicle.v_max as f32,
    );
    let manifest = Manifest {
        version: version.clone(),
        source_runs: runs.to_vec(),
        settings: settings.clone(),
        samples: [stats.train_samples, stats.val_samples],
        train: train_refs,
        val: val_refs,
        dropped,
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Dataset { train, val, stats }.save(&dir)?;
    raceloop_files::write_json(&dir.join("manifest.json"), &manifest)?;
    dvc::write(&dir)?;
    Ok((dir, manifest))
}

/// Prints what an extraction produced.
pub fn report(dir: &Path, m: &Manifest) {
    let dropped: usize = m.dropped.values().sum();
    println!(
        "dataset {} : {} train episodes ({} samples), {} val episodes ({} samples); dropped {dropped} failed episode(s) {:?}",
        m.version,
        m.train.len(),
        m.samples[0],
        m.val.len(),
        m.samples[1],
        m.dropped
    );
    println!("dataset: {}", dir.display());
}
