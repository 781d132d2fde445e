//! Episodes: the gym-style `reset(seed) → observation`, `step(action) → outcome` loop over one
//! track, with progress and lap timing by centerline arc length (not by a start box).

use std::sync::Arc;

use glam::DVec2;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};

use crate::config::SimConfig;
use crate::error::{Result, SimError};
use crate::lidar::Lidar;
use crate::start::{StartConfig, StartPose, sample_start};
use crate::track::{Frenet, Track};
use crate::vehicle::{Action, Vehicle, VehicleState};

/// Episode rules (`configs/episode.ron`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EpisodeConfig {
    /// Goal: this many laps of progress from the start (`goal_reached`).
    pub laps: f64,
    /// Time limit = goal distance / this speed, m/s (`timeout`).
    pub min_average_speed: f64,
    /// How the episode starts.
    pub start: StartConfig,
}

impl EpisodeConfig {
    /// Checks ranges of values.
    ///
    /// # Errors
    /// [`SimError::ConfigValue`] naming the field.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &str, message: String| {
            Err(SimError::ConfigValue {
                field: format!("episode.{field}"),
                message,
            })
        };
        if !(self.laps > 0.0 && self.laps.is_finite()) {
            return bad("laps", format!("must be > 0, found {}", self.laps));
        }
        if !(self.min_average_speed > 0.0) {
            return bad(
                "min_average_speed",
                format!("must be > 0 m/s, found {}", self.min_average_speed),
            );
        }
        let s = &self.start;
        if !(s.heading_bound >= 0.0 && s.heading_bound < std::f64::consts::PI) {
            return bad(
                "start.heading_bound",
                format!("must be in [0, π) rad, found {}", s.heading_bound),
            );
        }
        if !(s.speed_max >= 0.0 && s.speed_max.is_finite()) {
            return bad(
                "start.speed_max",
                format!("must be ≥ 0 m/s, found {}", s.speed_max),
            );
        }
        if !(s.edge_margin >= 0.0 && s.edge_margin.is_finite()) {
            return bad(
                "start.edge_margin",
                format!("must be ≥ 0 m, found {}", s.edge_margin),
            );
        }
        Ok(())
    }
}

/// How an episode ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The goal progress was reached.
    GoalReached,
    /// The car's reference point left the corridor without touching a wall first (e.g. a start off the track).
    OffTrack,
    /// The car's footprint touched a wall.
    Collision,
    /// The time limit passed.
    Timeout,
}

impl Outcome {
    /// The snake_case name used in results (`goal_reached`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::GoalReached => "goal_reached",
            Self::OffTrack => "off_track",
            Self::Collision => "collision",
            Self::Timeout => "timeout",
        }
    }
}

/// What the agent sees after a reset or a step.
#[derive(Clone, Copy, Debug)]
pub struct Observation<'a> {
    /// Simulation time since the reset, s.
    pub time: f64,
    /// Vehicle state.
    pub state: VehicleState,
    /// Latest LiDAR ranges, m, `[num_beams]`.
    pub scan: &'a [f32],
    /// Whether `scan` was taken at this step (see `lidar.period_steps`).
    pub scan_fresh: bool,
    /// Frenet coordinates of the car on the centerline.
    pub frenet: Frenet,
    /// Signed progress along the centerline since the start, m.
    pub progress: f64,
}

/// Per-episode measurements, updated every step.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EpisodeStats {
    /// Physics steps taken.
    pub steps: u64,
    /// Distance driven, m.
    pub distance: f64,
    /// Progress along the centerline, m.
    pub progress: f64,
    /// Goal progress, m.
    pub goal: f64,
    /// Completed laps.
    pub laps: u32,
    /// Duration of each completed lap, s (the first from the start).
    pub lap_times: Vec<f64>,
    /// Checkpoints passed: every 10 % of a lap of progress.
    pub checkpoints: u32,
    /// Mean |lateral offset| from the centerline over the steps, m.
    pub mean_abs_deviation: f64,
    /// Max |lateral offset| from the centerline, m.
    pub max_abs_deviation: f64,
}

/// One car on one track: the simulation of an episode.
#[derive(Clone, Debug)]
pub struct Sim {
    track: Arc<Track>,
    config: SimConfig,
    lidar: Lidar,
    vehicle: Vehicle,
    rng: Xoshiro256PlusPlus,
    scan: Vec<f32>,
    scan_fresh: bool,
    time: f64,
    frenet: Frenet,
    start: StartPose,
    time_limit: f64,
    stats: EpisodeStats,
    deviation_sum: f64,
    outcome: Option<Outcome>,
}

/// Seed-stream tags: the start draw and the LiDAR noise use independent generators.
const START_STREAM: u64 = 0x5354_4152_5421;
const NOISE_STREAM: u64 = 0x4e4f_4953_4521;

impl Sim {
    /// A simulator for `track` with `config`. Call [`Self::reset`] before stepping.
    ///
    /// # Errors
    /// Invalid config values, or a track narrower than the car (naming the CSV line).
    pub fn new(track: Arc<Track>, config: SimConfig) -> Result<Self> {
        config.validate()?;
        track.check_fits(config.vehicle.width)?;
        let lidar = Lidar::new(config.lidar.clone());
        let start = StartPose::at(&track, 0.0, 0.0, 0.0, 0.0);
        let frenet = track.centerline.project(DVec2::new(start.x, start.y));
        Ok(Self {
            scan: vec![0.0; config.lidar.num_beams],
            vehicle: Vehicle::new(config.vehicle.clone(), VehicleState::default()),
            rng: Xoshiro256PlusPlus::seed_from_u64(0),
            lidar,
            track,
            config,
            scan_fresh: false,
            time: 0.0,
            frenet,
            start,
            time_limit: 0.0,
            stats: EpisodeStats::default(),
            deviation_sum: 0.0,
            outcome: None,
        })
    }

    /// Starts a new episode from `seed`, with the configured start mode.
    pub fn reset(&mut self, seed: u64) -> Observation<'_> {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ START_STREAM);
        let pose = sample_start(
            &self.config.episode.start,
            &self.track,
            self.car_half(),
            &mut rng,
        );
        self.reset_to(seed, pose)
    }

    /// Starts a new episode at `pose`; `seed` drives the LiDAR noise.
    pub fn reset_to(&mut self, seed: u64, pose: StartPose) -> Observation<'_> {
        self.rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ NOISE_STREAM);
        let state = VehicleState {
            x: pose.x,
            y: pose.y,
            yaw: pose.yaw,
            v: pose.speed,
            ..Default::default()
        };
        self.vehicle = Vehicle::new(self.config.vehicle.clone(), state);
        self.start = pose;
        self.time = 0.0;
        self.frenet = self.track.centerline.project(DVec2::new(pose.x, pose.y));
        let goal = self.config.episode.laps * self.track.centerline.length();
        self.time_limit = goal / self.config.episode.min_average_speed;
        self.stats = EpisodeStats {
            goal,
            ..Default::default()
        };
        self.deviation_sum = 0.0;
        self.outcome = None;
        self.take_scan();
        self.outcome = self.judge(DVec2::new(pose.x, pose.y));
        self.observation()
    }

    /// Advances one physics step under `action`. Returns the outcome once the episode has ended
    /// (and keeps returning it; further steps do nothing).
    pub fn step(&mut self, action: Action) -> Option<Outcome> {
        if self.outcome.is_some() {
            return self.outcome;
        }
        let dt = self.config.sim.dt;
        let before = self.position();
        self.vehicle.step(action, dt);
        self.time += dt;
        let after = self.position();
        let prev = self.frenet;
        self.frenet = self.track.centerline.project_near(after, prev.segment, 16);
        let progress_before = self.stats.progress;
        self.stats.progress += self.track.centerline.delta_s(prev.s, self.frenet.s);
        self.stats.steps += 1;
        self.stats.distance += before.distance(after);
        let dev = self.frenet.d.abs();
        self.deviation_sum += dev;
        self.stats.max_abs_deviation = self.stats.max_abs_deviation.max(dev);
        self.stats.mean_abs_deviation = self.deviation_sum / self.stats.steps as f64;
        self.count_laps(progress_before, dt);
        self.scan_fresh = false;
        if self.stats.steps % self.config.lidar.period_steps as u64 == 0 {
            self.take_scan();
        }
        self.outcome = self.judge(after);
        self.outcome
    }

    fn count_laps(&mut self, progress_before: f64, dt: f64) {
        let lap = self.track.centerline.length();
        let s = &mut self.stats;
        while s.progress >= (s.laps + 1) as f64 * lap {
            let mark = (s.laps + 1) as f64 * lap;
            let crossed =
                self.time - dt + dt * (mark - progress_before) / (s.progress - progress_before);
            let previous: f64 = s.lap_times.iter().sum();
            s.lap_times.push(crossed - previous);
            s.laps += 1;
        }
        s.checkpoints = s
            .checkpoints
            .max((s.progress.max(0.0) / (0.1 * lap)).floor() as u32);
    }

    fn judge(&self, p: DVec2) -> Option<Outcome> {
        let st = self.vehicle.state();
        if self.track.grid.rect_hits_wall(p, st.yaw, self.car_half()) {
            return Some(Outcome::Collision);
        }
        let (wr, wl) = self.track.widths_at(self.frenet.s);
        if !(-wr..=wl).contains(&self.frenet.d) && !self.track.grid.contains(p) {
            return Some(Outcome::OffTrack);
        }
        if self.stats.progress >= self.stats.goal {
            return Some(Outcome::GoalReached);
        }
        (self.time >= self.time_limit - 1e-9).then_some(Outcome::Timeout)
    }

    fn take_scan(&mut self) {
        let st = self.vehicle.state();
        let sensor = self.lidar.sensor_position(DVec2::new(st.x, st.y), st.yaw);
        self.lidar
            .scan_exact(&self.track.grid, sensor, st.yaw, &mut self.scan);
        self.lidar.add_noise(&mut self.rng, &mut self.scan);
        self.scan_fresh = true;
    }

    fn position(&self) -> DVec2 {
        DVec2::new(self.vehicle.state().x, self.vehicle.state().y)
    }

    /// Half length and half width of the car footprint, m.
    pub fn car_half(&self) -> DVec2 {
        DVec2::new(
            0.5 * self.config.vehicle.length,
            0.5 * self.config.vehicle.width,
        )
    }

    /// The current observation.
    pub fn observation(&self) -> Observation<'_> {
        Observation {
            time: self.time,
            state: *self.vehicle.state(),
            scan: &self.scan,
            scan_fresh: self.scan_fresh,
            frenet: self.frenet,
            progress: self.stats.progress,
        }
    }

    /// The outcome, once the episode has ended.
    pub fn outcome(&self) -> Option<Outcome> {
        self.outcome
    }

    /// Measurements so far.
    pub fn stats(&self) -> &EpisodeStats {
        &self.stats
    }

    /// The start pose of the current episode.
    pub fn start(&self) -> &StartPose {
        &self.start
    }

    /// Simulation time since the reset, s.
    pub fn time(&self) -> f64 {
        self.time
    }

    /// The time limit of the current episode, s.
    pub fn time_limit(&self) -> f64 {
        self.time_limit
    }

    /// The track.
    pub fn track(&self) -> &Arc<Track> {
        &self.track
    }

    /// The configuration.
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// The LiDAR.
    pub fn lidar(&self) -> &Lidar {
        &self.lidar
    }
}
