//! The settings of the data path's stages (`collection.ron`, `dataset.ron`, `evaluation.ron`)
//! and the one place where a stage's episode settings replace the simulation config's.

use anyhow::{Result, bail};
use raceloop_sim::{SimConfig, StartMode};
use serde::{Deserialize, Serialize};

/// Collection settings (`configs/collection.ron`, override keys `collection.*`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectionConfig {
    /// Number of episodes.
    pub episodes: usize,
    /// Seed of episode 0; episode i uses `seed + i`.
    pub seed: u64,
    /// `all`, or comma-separated shipped names / centerline CSV paths (repeats weight a track).
    pub tracks: String,
    /// Episode goal, laps of progress.
    pub laps: f64,
    /// Start mode.
    pub start: StartMode,
    /// Scan every N physics steps.
    pub lidar_period_steps: u32,
    /// The MCAP keeps the transforms, ego state and commands every N physics steps (every scan
    /// is kept); N must divide `lidar_period_steps`, so that each scan keeps its command.
    /// Configs without the field keep every step.
    #[serde(default = "every_step")]
    pub log_state_every: u32,
    /// Parallel episodes; 0 = all cores.
    pub workers: usize,
    /// Noise injected into the expert's steering (DART), rad (0 = none); the clean command is the label.
    pub steering_noise: f64,
    /// Time constant of that noise, s.
    pub steering_noise_tau: f64,
    /// Above this speed (m/s) the noise is scaled by `(speed_ref/v)²`, so that the lateral
    /// acceleration it causes stays that at this speed (0 = unscaled; configs without the field).
    #[serde(default)]
    pub steering_noise_speed: f64,
}

/// DAgger (Ross, Gordon and Bagnell, "A Reduction of Imitation Learning and Structured
/// Prediction to No-Regret Online Learning", AISTATS 2011) in `raceloop pipeline`: after the
/// model trained on the expert's episodes, each round collects episodes that the latest model
/// drives alone (β = 0) while the expert labels every state it visits,
/// aggregates them with every earlier episode, and retrains (`configs/dagger.ron`, override keys
/// `dagger.*`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaggerConfig {
    /// Rounds after the first model (0 = off: the pipeline trains once on the expert's episodes).
    pub iterations: usize,
    /// Training episodes per round (seeds after every earlier collection's).
    pub episodes: usize,
    /// Validation episodes per round.
    pub val_episodes: usize,
    /// A model-driven episode that ended in a collision still teaches the expert's labels up to
    /// it: its scans are kept except those in the last `failure_margin_s` s, where the car could
    /// no longer recover (s; negative = drop them, as for the expert). Timeouts and wrong-way
    /// episodes are dropped.
    pub failure_margin_s: f64,
    /// The labelling expert's lookahead grows by this per metre of lateral distance from its
    /// path (m/m, ≥ 0; see `PurePursuit::with_lookahead_error_gain`), so that its labels steer a
    /// displaced car back within the tire's grip; 0 = the driving expert's own commands.
    pub label_lookahead_error_gain: f64,
}

impl Default for DaggerConfig {
    fn default() -> Self {
        Self {
            iterations: 0,
            episodes: 200,
            val_episodes: 50,
            failure_margin_s: 1.0,
            label_lookahead_error_gain: 0.0,
        }
    }
}

impl DaggerConfig {
    /// Whether DAgger is off and every setting is the default (then configs leave it out).
    pub fn is_off(&self) -> bool {
        *self == Self::default()
    }

    /// Checks value ranges.
    ///
    /// # Errors
    /// The field out of range.
    pub fn validate(&self) -> Result<()> {
        if self.iterations > 0 && (self.episodes == 0 || self.val_episodes == 0) {
            bail!("dagger.episodes and dagger.val_episodes must be ≥ 1 when dagger.iterations > 0");
        }
        if !(self.label_lookahead_error_gain >= 0.0 && self.label_lookahead_error_gain.is_finite())
        {
            bail!(
                "dagger.label_lookahead_error_gain must be ≥ 0 m/m, found {}",
                self.label_lookahead_error_gain
            );
        }
        if !self.failure_margin_s.is_finite() {
            bail!(
                "dagger.failure_margin_s must be finite, found {}",
                self.failure_margin_s
            );
        }
        Ok(())
    }
}

impl CollectionConfig {
    /// The simulation config of this collection's episodes: `base` with the collection's goal,
    /// start mode and scan period.
    ///
    /// # Errors
    /// Out-of-range values after that, naming the field.
    pub fn episode_sim(&self, base: &SimConfig) -> Result<SimConfig> {
        if self.log_state_every == 0
            || !self.lidar_period_steps.is_multiple_of(self.log_state_every)
        {
            bail!(
                "collection.log_state_every must divide collection.lidar_period_steps ({}), found {}",
                self.lidar_period_steps,
                self.log_state_every
            );
        }
        episode_sim(base, self.laps, self.start, self.lidar_period_steps, None)
    }
}

fn every_step() -> u32 {
    1
}

/// Extraction settings (`configs/dataset.ron`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetConfig {
    /// Keep every k-th scan of an episode.
    pub sample_every: usize,
    /// Range clip for normalisation, m; also the largest range stored (at most
    /// [`raceloop_learn::dataset::MAX_RANGE_CLIP`], 63.999 m).
    pub range_clip: f32,
    /// Steering normalisation = this × the vehicle's steering limit (≥ 1).
    pub steering_headroom: f32,
}

impl DatasetConfig {
    /// Checks value ranges.
    ///
    /// # Errors
    /// The field out of range.
    pub fn validate(&self) -> Result<()> {
        if self.sample_every == 0 {
            bail!("dataset.sample_every must be ≥ 1");
        }
        let max_clip = raceloop_learn::dataset::MAX_RANGE_CLIP;
        if !(self.range_clip > 0.0 && self.range_clip <= max_clip) {
            bail!(
                "dataset.range_clip must be in (0, {max_clip:.3}] m (ranges are stored as u16 \
                 multiples of 2⁻¹⁰ m), found {}",
                self.range_clip
            );
        }
        if !(self.steering_headroom >= 1.0) {
            bail!(
                "dataset.steering_headroom must be ≥ 1, found {}",
                self.steering_headroom
            );
        }
        Ok(())
    }
}

/// Evaluation settings (`configs/evaluation.ron`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvaluationConfig {
    /// Episodes per track.
    pub episodes_per_track: usize,
    /// Seed of the first evaluation episode.
    pub seed: u64,
    /// `all`, or comma-separated names / paths.
    pub tracks: String,
    /// Goal, laps.
    pub laps: f64,
    /// Start mode.
    pub start: StartMode,
    /// Scan (and model) period, physics steps.
    pub lidar_period_steps: u32,
    /// Time limit = goal / this, m/s.
    pub min_average_speed: f64,
    /// Write the MCAP (and config, result) of every model episode.
    pub record: bool,
    /// Write a successful episode's MCAP thin (states at 10 Hz, a scan per second: about
    /// 1 MB per 2-lap episode instead of 15 MB); failed episodes are always written in full.
    /// Configs without the field write every episode in full.
    #[serde(default)]
    pub thin_successes: bool,
    /// Also write the expert reference episodes' files (doubles the disk use).
    pub record_expert: bool,
    /// Evaluate the expert too.
    pub expert_reference: bool,
    /// Parallel episodes; 0 = all cores.
    pub workers: usize,
    /// `raceloop pipeline` only: 0 = one pipeline on `collection.tracks` and `tracks`; N > 1 =
    /// N cross-track folds over the shipped tracks (the tracks in name order, track i in fold
    /// i mod N): fold k collects and trains on the other folds' tracks and evaluates on its own
    /// (`experiment=cross_track`). Configs without the field use 0.
    #[serde(default)]
    pub cross_track_folds: usize,
    /// Obstacle generation seed of the evaluation episodes, in place of
    /// `scenario.obstacles.generation.seed` (held-out scenarios; `experiment=obstacles` sets 200).
    /// Absent: the scenario's own seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub obstacle_seed: Option<u64>,
}

impl EvaluationConfig {
    /// The simulation config of the evaluation episodes: `base` with the evaluation's goal,
    /// start mode, scan period and minimum average speed.
    ///
    /// # Errors
    /// Out-of-range values after that, naming the field.
    pub fn episode_sim(&self, base: &SimConfig) -> Result<SimConfig> {
        let mut sim = episode_sim(
            base,
            self.laps,
            self.start,
            self.lidar_period_steps,
            Some(self.min_average_speed),
        )?;
        if let Some(seed) = self.obstacle_seed {
            sim.scenario.obstacles.generation.seed = seed;
        }
        Ok(sim)
    }
}

/// `base` with a stage's goal (laps), start mode, scan period (physics steps) and, where given,
/// minimum average speed (m/s), validated.
fn episode_sim(
    base: &SimConfig,
    laps: f64,
    start: StartMode,
    lidar_period_steps: u32,
    min_average_speed: Option<f64>,
) -> Result<SimConfig> {
    let mut sim = base.clone();
    sim.episode.laps = laps;
    sim.episode.start.mode = start;
    sim.lidar.period_steps = lidar_period_steps;
    if let Some(v) = min_average_speed {
        sim.episode.min_average_speed = v;
    }
    sim.validate()?;
    Ok(sim)
}
