//! Episodes: the gym-style `reset(seed) → observation`, `step(action) → outcome` loop over one
//! track, with progress and lap timing by centerline arc length (not by a start box).

use std::sync::Arc;

use glam::DVec2;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};

use crate::config::SimConfig;
use crate::error::{Result, SimError};
use crate::lidar::{Lidar, LidarSensor};
use crate::start::{StartConfig, StartPose, sample_start};
use crate::track::{Frenet, Track};
use crate::vehicle::{Action, Vehicle, VehicleParams, VehicleState};

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
        if !(s.clear_ahead >= 0.0 && s.clear_ahead.is_finite()) {
            return bad(
                "start.clear_ahead",
                format!("must be ≥ 0 s, found {}", s.clear_ahead),
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

/// Progress, laps, deviation, time and the outcome of one episode, updated once per step.
#[derive(Clone, Debug)]
pub struct EpisodeTracker {
    frenet: Frenet,
    time: f64,
    time_limit: f64,
    stats: EpisodeStats,
    deviation_sum: f64,
    outcome: Option<Outcome>,
}

impl EpisodeTracker {
    /// Starts tracking a car at `position` (m) under `rules`.
    pub fn new(track: &Track, rules: &EpisodeConfig, position: DVec2) -> Self {
        let goal = rules.laps * track.centerline.length();
        Self {
            frenet: track.centerline.project(position),
            time: 0.0,
            time_limit: goal / rules.min_average_speed,
            stats: EpisodeStats {
                goal,
                ..Default::default()
            },
            deviation_sum: 0.0,
            outcome: None,
        }
    }

    /// Accounts one step of `dt` seconds in which the car moved from `before` to `after` (m).
    pub fn advance(&mut self, track: &Track, before: DVec2, after: DVec2, dt: f64) {
        self.time += dt;
        let prev = self.frenet;
        self.frenet = track.centerline.project_near(after, prev.segment, 16);
        let progress_before = self.stats.progress;
        let s = &mut self.stats;
        s.progress += track.centerline.delta_s(prev.s, self.frenet.s);
        s.steps += 1;
        s.distance += before.distance(after);
        let dev = self.frenet.d.abs();
        self.deviation_sum += dev;
        s.max_abs_deviation = s.max_abs_deviation.max(dev);
        s.mean_abs_deviation = self.deviation_sum / s.steps as f64;
        let lap = track.centerline.length();
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

    /// Decides whether the episode has ended, in this order: `collision` (the footprint `half`
    /// extents, m, at the car's pose touch a wall), `off_track` (the reference point is outside
    /// the walls), `goal_reached`, `timeout`. Once decided, the outcome stays.
    pub fn judge(&mut self, track: &Track, state: &VehicleState, half: DVec2) -> Option<Outcome> {
        if self.outcome.is_none() {
            self.outcome = judge(self, track, state, half);
        }
        self.outcome
    }

    /// Frenet coordinates of the car on the centerline.
    pub fn frenet(&self) -> Frenet {
        self.frenet
    }

    /// Time since the start, s.
    pub fn time(&self) -> f64 {
        self.time
    }

    /// Time limit, s.
    pub fn time_limit(&self) -> f64 {
        self.time_limit
    }

    /// Measurements so far.
    pub fn stats(&self) -> &EpisodeStats {
        &self.stats
    }

    /// The outcome, once decided.
    pub fn outcome(&self) -> Option<Outcome> {
        self.outcome
    }
}

fn judge(t: &EpisodeTracker, track: &Track, state: &VehicleState, half: DVec2) -> Option<Outcome> {
    let p = DVec2::new(state.x, state.y);
    if track.grid.rect_hits_wall(p, state.yaw, half) {
        return Some(Outcome::Collision);
    }
    let (wr, wl) = track.widths_at(t.frenet.s);
    if !(-wr..=wl).contains(&t.frenet.d) && !track.grid.contains(p) {
        return Some(Outcome::OffTrack);
    }
    if t.stats.progress >= t.stats.goal {
        return Some(Outcome::GoalReached);
    }
    (t.time >= t.time_limit - 1e-9).then_some(Outcome::Timeout)
}

/// One car on one track: the simulation of an episode, as a gym-style API.
#[derive(Clone, Debug)]
pub struct Sim {
    track: Arc<Track>,
    config: SimConfig,
    vehicle: Vehicle,
    sensor: LidarSensor,
    tracker: EpisodeTracker,
    start: StartPose,
}

/// Seed-stream tag of the start draw (the LiDAR noise has its own, see [`LidarSensor`]).
const START_STREAM: u64 = 0x5354_4152_5421;

/// Draws the start pose of episode `seed` with the configured start mode.
pub fn draw_start(track: &Track, config: &SimConfig, seed: u64) -> StartPose {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ START_STREAM);
    sample_start(
        &config.episode.start,
        track,
        car_half(&config.vehicle),
        &mut rng,
    )
}

/// Half length and half width of the car footprint, m.
pub fn car_half(vehicle: &VehicleParams) -> DVec2 {
    DVec2::new(0.5 * vehicle.length, 0.5 * vehicle.width)
}

/// The vehicle state at a start pose.
pub fn start_state(pose: &StartPose) -> VehicleState {
    VehicleState {
        x: pose.x,
        y: pose.y,
        yaw: pose.yaw,
        v: pose.speed,
        ..Default::default()
    }
}

impl Sim {
    /// A simulator for `track` with `config`. Call [`Self::reset`] before stepping.
    ///
    /// # Errors
    /// Invalid config values, or a track narrower than the car (naming the CSV line).
    pub fn new(track: Arc<Track>, config: SimConfig) -> Result<Self> {
        config.validate()?;
        track.check_fits(config.vehicle.width)?;
        let start = StartPose::at(&track, 0.0, 0.0, 0.0, 0.0);
        Ok(Self {
            vehicle: Vehicle::new(config.vehicle.clone(), start_state(&start)),
            sensor: LidarSensor::new(Lidar::new(config.lidar.clone()), 0),
            tracker: EpisodeTracker::new(&track, &config.episode, DVec2::new(start.x, start.y)),
            track,
            config,
            start,
        })
    }

    /// Starts a new episode from `seed`, with the configured start mode.
    pub fn reset(&mut self, seed: u64) -> Observation<'_> {
        let pose = draw_start(&self.track, &self.config, seed);
        self.reset_to(seed, pose)
    }

    /// Starts a new episode at `pose`; `seed` drives the LiDAR noise.
    pub fn reset_to(&mut self, seed: u64, pose: StartPose) -> Observation<'_> {
        self.vehicle = Vehicle::new(self.config.vehicle.clone(), start_state(&pose));
        self.sensor = LidarSensor::new(Lidar::new(self.config.lidar.clone()), seed);
        self.tracker = EpisodeTracker::new(
            &self.track,
            &self.config.episode,
            DVec2::new(pose.x, pose.y),
        );
        self.start = pose;
        self.sensor.sense(&self.track, self.vehicle.state(), 0);
        self.tracker.judge(
            &self.track,
            self.vehicle.state(),
            car_half(&self.config.vehicle),
        );
        self.observation()
    }

    /// Advances one physics step under `action`. Returns the outcome once the episode has ended
    /// (and keeps returning it; further steps do nothing).
    pub fn step(&mut self, action: Action) -> Option<Outcome> {
        if let Some(o) = self.tracker.outcome() {
            return Some(o);
        }
        let before = self.vehicle.state().position();
        self.vehicle.step(action, self.config.sim.dt);
        let state = *self.vehicle.state();
        self.tracker
            .advance(&self.track, before, state.position(), self.config.sim.dt);
        self.sensor
            .sense(&self.track, &state, self.tracker.stats().steps);
        self.tracker
            .judge(&self.track, &state, car_half(&self.config.vehicle))
    }

    /// The current observation.
    pub fn observation(&self) -> Observation<'_> {
        Observation {
            time: self.tracker.time(),
            state: *self.vehicle.state(),
            scan: self.sensor.ranges(),
            scan_fresh: self.sensor.fresh(),
            frenet: self.tracker.frenet(),
            progress: self.tracker.stats().progress,
        }
    }

    /// The outcome, once the episode has ended.
    pub fn outcome(&self) -> Option<Outcome> {
        self.tracker.outcome()
    }

    /// Measurements so far.
    pub fn stats(&self) -> &EpisodeStats {
        self.tracker.stats()
    }

    /// The episode tracker.
    pub fn tracker(&self) -> &EpisodeTracker {
        &self.tracker
    }

    /// The start pose of the current episode.
    pub fn start(&self) -> &StartPose {
        &self.start
    }

    /// Simulation time since the reset, s.
    pub fn time(&self) -> f64 {
        self.tracker.time()
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
        self.sensor.lidar()
    }
}
