//! The simulator: one car on one track as a gym-style `reset(seed) → observation`,
//! `step(action) → outcome` loop (f1tenth_gym's API shape), over the vehicle model, the LiDAR
//! and the episode rules of [`crate::episode`].

use std::sync::Arc;

use glam::DVec2;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::config::SimConfig;
use crate::episode::{EpisodeStats, EpisodeTracker, Outcome};
use crate::error::Result;
use crate::lidar::{Lidar, LidarSensor};
use crate::obstacle::Obstacle;
use crate::start::{StartPose, sample_start};
use crate::track::{Frenet, Track};
use crate::vehicle::{Action, Vehicle, VehicleParams, VehicleState};

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

/// The obstacles of episode `seed` that starts at `start`, from `config.scenario` (none when its
/// density is 0): see [`crate::scenario::generate`].
pub fn draw_obstacles(
    track: &Track,
    config: &SimConfig,
    seed: u64,
    start: &StartPose,
) -> Arc<[Obstacle]> {
    Arc::from(crate::scenario::generate(
        track,
        &config.scenario.obstacles,
        config.vehicle.width,
        seed,
        start.s,
    ))
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
            tracker: EpisodeTracker::new(
                &track,
                &config.episode,
                &start_state(&start),
                car_half(&config.vehicle),
                Arc::from([]),
            ),
            track,
            config,
            start,
        })
    }

    /// Starts a new episode from `seed`, with the configured start mode and scenario.
    pub fn reset(&mut self, seed: u64) -> Observation<'_> {
        let pose = draw_start(&self.track, &self.config, seed);
        self.reset_to(seed, pose)
    }

    /// Starts a new episode at `pose` with the scenario's obstacles of `seed`; `seed` also
    /// drives the LiDAR noise.
    pub fn reset_to(&mut self, seed: u64, pose: StartPose) -> Observation<'_> {
        let obstacles = draw_obstacles(&self.track, &self.config, seed, &pose);
        self.reset_with(seed, pose, obstacles)
    }

    /// Starts a new episode at `pose` among `obstacles` (a replayed or edited scenario); `seed`
    /// drives the LiDAR noise.
    pub fn reset_with(
        &mut self,
        seed: u64,
        pose: StartPose,
        obstacles: Arc<[Obstacle]>,
    ) -> Observation<'_> {
        self.vehicle = Vehicle::new(self.config.vehicle.clone(), start_state(&pose));
        self.sensor = LidarSensor::new(Lidar::new(self.config.lidar.clone()), seed);
        self.tracker = EpisodeTracker::new(
            &self.track,
            &self.config.episode,
            self.vehicle.state(),
            car_half(&self.config.vehicle),
            obstacles,
        );
        self.start = pose;
        self.sensor.sense(
            &self.track,
            self.tracker.obstacles(),
            self.vehicle.state(),
            0,
        );
        self.tracker.judge(&self.track, self.vehicle.state());
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
            .advance(&self.track, before, &state, self.config.sim.dt);
        self.sensor.sense(
            &self.track,
            self.tracker.obstacles(),
            &state,
            self.tracker.stats().steps,
        );
        self.tracker.judge(&self.track, &state)
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

    /// The obstacles of the current episode.
    pub fn obstacles(&self) -> &Arc<[Obstacle]> {
        self.tracker.obstacles()
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
