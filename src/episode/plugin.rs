//! The simulation as Bevy ECS data and systems: a thin adapter over `raceloop-sim`.
//!
//! Two resources, [`RaceTrack`] and [`RaceConfig`]; a car entity with [`Car`], [`Body`] (vehicle
//! state), [`MountedLidar`] (configuration and noise), [`Scan`] (latest ranges), [`Driver`],
//! [`Control`], [`ExpertLabel`] and [`Episode`].
//! Systems run in `FixedUpdate`, chained: input → step → sense → judge → record
//! ([`SimSystems`]). The headless runner and the window use the same plugin.

use std::sync::Arc;

use bevy::prelude::*;
use raceloop_sim::{
    Action, EpisodeTracker, LidarSensor, Obstacle, Outcome, PurePursuit, SimConfig, StartPose,
    Track, Vehicle, car_half, start_state,
};

/// The track being driven.
#[derive(Resource, Clone)]
pub struct RaceTrack(pub Arc<Track>);

/// The resolved simulation configuration of the episode.
#[derive(Resource, Clone)]
pub struct RaceConfig(pub SimConfig);

/// Marks the ego car.
#[derive(Component, Debug, Default)]
pub struct Car;

/// Vehicle parameters and state (single-track model, f1tenth_gym parameters).
#[derive(Component, Debug, Clone)]
pub struct Body(pub Vehicle);

/// The mounted LiDAR: its configuration and its seeded noise generator.
#[derive(Component, Debug, Clone)]
pub struct MountedLidar(pub LidarSensor);

/// The latest scan: ranges in m, `[num_beams]`, and whether it was taken this step.
#[derive(Component, Debug, Clone, Default)]
pub struct Scan {
    /// Ranges, m.
    pub ranges: Vec<f32>,
    /// Taken at the last step (scans come every `lidar.period_steps`).
    pub fresh: bool,
}

/// A learned driving policy: maps a scan (m, `[num_beams]`) and the ego speed to an action.
pub trait ScanPolicy: Send + Sync {
    /// The command (steering rad, speed m/s) for this scan (ranges in m, `[num_beams]`),
    /// taken at the ego's longitudinal speed `speed` (m/s).
    fn act(&mut self, ranges: &[f32], speed: f64) -> Action;
}

/// Correlated Gaussian steering noise added to the expert's command (DART: Laskey et al.,
/// "DART: Noise Injection for Robust Imitation Learning", CoRL 2017), so that demonstrations
/// include recoveries. A first-order Gauss–Markov process: `n ← a·n + √(1−a²)·σ·ε`, `a = e^(−dt/τ)`.
/// Above `reference_speed` the added steering is scaled by `(reference_speed/v)²`, so that the
/// lateral acceleration it causes (≈ v²·δ/L) stays that of `σ` at the reference speed.
#[derive(Debug, Clone)]
pub struct SteeringNoise {
    rng: rand_xoshiro::Xoshiro256PlusPlus,
    std: f64,
    a: f64,
    value: f64,
    reference_speed: f64,
}

impl SteeringNoise {
    /// Noise of standard deviation `std` (rad) and time constant `tau` (s) at step `dt` (s), drawn
    /// from `seed`, scaled down above `reference_speed` (m/s; 0 = never).
    pub fn new(seed: u64, std: f64, tau: f64, dt: f64, reference_speed: f64) -> Self {
        use rand::SeedableRng;
        Self {
            rng: rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed ^ 0x4441_5254),
            std,
            a: (-dt / tau.max(dt)).exp(),
            value: 0.0,
            reference_speed,
        }
    }

    /// The next steering offset (rad) at speed `v` (m/s).
    fn next(&mut self, v: f64) -> f64 {
        let e: f64 = rand::Rng::sample(&mut self.rng, rand_distr::StandardNormal);
        self.value = self.a * self.value + (1.0 - self.a * self.a).sqrt() * self.std * e;
        let v = v.abs();
        if self.reference_speed > 0.0 && v > self.reference_speed {
            self.value * (self.reference_speed / v).powi(2)
        } else {
            self.value
        }
    }
}

/// Who drives the car.
#[derive(Component)]
pub enum Driver {
    /// The Pure Pursuit expert.
    PurePursuit(PurePursuit),
    /// The expert with injected steering noise; its clean command is the [`ExpertLabel`].
    NoisyExpert(PurePursuit, SteeringNoise),
    /// A learned policy, queried at every fresh scan; its last action is held in between.
    Model(Box<dyn ScanPolicy>),
    /// DAgger: the learned policy drives (as [`Driver::Model`]) while the expert's command for
    /// each visited state is the [`ExpertLabel`]; the expert keeps the side of an obstacle that
    /// the car has already taken ([`PurePursuit::commit`]).
    Dagger(PurePursuit, Box<dyn ScanPolicy>),
    /// A person: the window's keyboard system writes the [`Control`].
    #[cfg_attr(not(feature = "gui"), allow(dead_code))]
    Manual,
}

/// The command (steering rad, speed m/s) applied at the next step.
#[derive(Component, Debug, Clone, Copy, Default)]
pub struct Control(pub Action);

/// The expert's command for the current state when it differs from the applied [`Control`]
/// (noise injection); recorded as the training label.
#[derive(Component, Debug, Clone, Copy, Default)]
pub struct ExpertLabel(pub Option<Action>);

/// Episode bookkeeping: progress, laps and outcome.
#[derive(Component, Debug, Clone)]
pub struct Episode {
    /// Progress, laps, outcome.
    pub tracker: EpisodeTracker,
}

impl Episode {
    /// Whether the episode has ended.
    pub fn done(&self) -> bool {
        self.tracker.outcome().is_some()
    }
}

/// The chained stages of one physics step, in `FixedUpdate`.
#[derive(SystemSet, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SimSystems {
    /// Drivers choose a [`Control`].
    Input,
    /// The vehicle model advances by `dt`.
    Step,
    /// The LiDAR scans.
    Sense,
    /// Progress, laps and the outcome are updated.
    Judge,
    /// Loggers record the step.
    Record,
}

/// Registers the simulation systems. Needs the [`RaceTrack`] and [`RaceConfig`] resources.
pub struct SimPlugin;

impl Plugin for SimPlugin {
    fn build(&self, app: &mut App) {
        app.configure_sets(
            FixedUpdate,
            (
                SimSystems::Input,
                SimSystems::Step,
                SimSystems::Sense,
                SimSystems::Judge,
                SimSystems::Record,
            )
                .chain(),
        )
        .add_systems(
            FixedUpdate,
            (
                drive.in_set(SimSystems::Input),
                step.in_set(SimSystems::Step),
                sense.in_set(SimSystems::Sense),
                judge.in_set(SimSystems::Judge),
            ),
        );
    }
}

/// The components of a car at `start` for episode `seed` among `obstacles`, with its first scan
/// taken and judged, as `raceloop_sim::Sim::reset_with` does; an expert driver plans around
/// the obstacles. Spawn it with `Commands::spawn` or `World::spawn`.
pub fn car_bundle(
    track: &Track,
    config: &SimConfig,
    seed: u64,
    start: StartPose,
    obstacles: Arc<[Obstacle]>,
    mut driver: Driver,
) -> impl Bundle {
    if let Driver::PurePursuit(pp) | Driver::NoisyExpert(pp, _) | Driver::Dagger(pp, _) =
        &mut driver
    {
        pp.avoid(track, &obstacles);
    }
    let vehicle = Vehicle::new(config.vehicle.clone(), start_state(&start));
    let mut sensor = LidarSensor::new(raceloop_sim::Lidar::new(config.lidar.clone()), seed);
    sensor.sense(track, &obstacles, vehicle.state(), 0);
    let mut tracker = EpisodeTracker::new(
        track,
        &config.episode,
        vehicle.state(),
        car_half(&config.vehicle),
        obstacles,
    );
    tracker.judge(track, vehicle.state());
    let scan = Scan {
        ranges: sensor.ranges().to_vec(),
        fresh: true,
    };
    (
        Car,
        Body(vehicle),
        MountedLidar(sensor),
        scan,
        driver,
        Control::default(),
        ExpertLabel::default(),
        Episode { tracker },
    )
}

fn drive(
    track: Res<RaceTrack>,
    mut cars: Query<(
        &mut Driver,
        &Body,
        &Scan,
        &mut Control,
        &mut ExpertLabel,
        &Episode,
    )>,
) {
    for (mut driver, body, scan, mut command, mut label, episode) in &mut cars {
        if episode.done() {
            continue;
        }
        match &mut *driver {
            Driver::PurePursuit(pp) => command.0 = pp.act(body.0.params(), body.0.state()),
            Driver::NoisyExpert(pp, noise) => {
                let clean = pp.act(body.0.params(), body.0.state());
                label.0 = Some(clean);
                let p = body.0.params();
                command.0 = Action {
                    steering: (clean.steering + noise.next(body.0.state().v))
                        .clamp(p.s_min, p.s_max),
                    speed: clean.speed,
                };
            }
            Driver::Dagger(pp, policy) => {
                pp.commit(&track.0, body.0.state());
                label.0 = Some(pp.act(body.0.params(), body.0.state()));
                if scan.fresh {
                    command.0 = policy.act(&scan.ranges, body.0.state().v);
                }
            }
            Driver::Model(policy) if scan.fresh => {
                command.0 = policy.act(&scan.ranges, body.0.state().v);
            }
            Driver::Model(_) | Driver::Manual => {}
        }
    }
}

fn step(
    track: Res<RaceTrack>,
    config: Res<RaceConfig>,
    mut cars: Query<(&mut Body, &Control, &mut Episode)>,
) {
    let dt = config.0.sim.dt;
    for (mut body, command, mut episode) in &mut cars {
        if episode.done() {
            continue;
        }
        let before = body.0.state().position();
        body.0.step(command.0, dt);
        episode
            .tracker
            .advance(&track.0, before, body.0.state(), dt);
    }
}

fn sense(track: Res<RaceTrack>, mut cars: Query<(&Body, &mut MountedLidar, &mut Scan, &Episode)>) {
    for (body, mut lidar, mut scan, episode) in &mut cars {
        if episode.done() {
            continue;
        }
        lidar.0.sense(
            &track.0,
            episode.tracker.obstacles(),
            body.0.state(),
            episode.tracker.stats().steps,
        );
        scan.fresh = lidar.0.fresh();
        if scan.fresh {
            scan.ranges.copy_from_slice(lidar.0.ranges());
        }
    }
}

fn judge(track: Res<RaceTrack>, mut cars: Query<(&Body, &mut Episode)>) {
    for (body, mut episode) in &mut cars {
        if episode.done() {
            continue;
        }
        episode.tracker.judge(&track.0, body.0.state());
    }
}

/// The outcome of the episode of `entity`, if it has ended.
pub fn outcome_of(world: &World, entity: Entity) -> Option<Outcome> {
    world
        .get::<Episode>(entity)
        .and_then(|e| e.tracker.outcome())
}
