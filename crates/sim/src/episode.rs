//! Episode rules and bookkeeping: the goal, time limit and outcome of an episode, with progress
//! and lap timing by centerline arc length (not by a start box). The `simulator` module runs them.

use std::sync::Arc;

use glam::DVec2;
use serde::{Deserialize, Serialize};

use crate::error::{Result, SimError};
use crate::obstacle::{self, Obstacle};
use crate::start::StartConfig;
use crate::track::{Frenet, Track};
use crate::vehicle::VehicleState;

/// Episode rules (`configs/episode.ron`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EpisodeConfig {
    /// Goal: this many laps of progress from the start (`goal_reached`).
    pub laps: f64,
    /// Time limit = goal distance / this speed, m/s (`timeout`).
    pub min_average_speed: f64,
    /// The episode ends as `wrong_way` once the progress has fallen this far below its best, m:
    /// the car turned round and drives the circuit backwards (0 = never). Configs written before
    /// it read 0.
    #[serde(default)]
    pub wrong_way_distance: f64,
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
        if !(self.wrong_way_distance >= 0.0 && self.wrong_way_distance.is_finite()) {
            return bad(
                "wrong_way_distance",
                format!("must be ≥ 0 m, found {}", self.wrong_way_distance),
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
    /// The car's footprint touched a wall or an obstacle ([`EpisodeStats::contact`] says which).
    Collision,
    /// The progress fell [`EpisodeConfig::wrong_way_distance`] below its best: the car drives
    /// the circuit backwards.
    WrongWay,
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
            Self::WrongWay => "wrong_way",
            Self::Timeout => "timeout",
        }
    }
}

/// How far from the car walls are searched for [`EpisodeStats::min_wall_clearance`], m.
pub const CLEARANCE_RANGE: f64 = 1.0;

/// How far from the car's footprint obstacles are searched for
/// [`EpisodeStats::min_obstacle_clearance`], m.
pub const OBSTACLE_CLEARANCE_RANGE: f64 = 2.0;

/// What a collision touched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Contact {
    /// A track wall.
    Wall,
    /// The obstacle with this id ([`Obstacle::id`]).
    Obstacle(u32),
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
    /// Peak |lateral acceleration| of the centre of gravity, normal to its velocity, m/s².
    #[serde(default)]
    pub peak_lateral_acceleration: f64,
    /// Least clearance between the car's side and the nearest wall, m: the distance from the
    /// centre of gravity to the nearest wall segment less the half-width, counted up to
    /// [`CLEARANCE_RANGE`] (so at most `CLEARANCE_RANGE − half_width`). It is measured from the
    /// centre, so a nose-first collision reads up to half the diagonal less the half-width
    /// (0.17 m for the F1TENTH car) while a side scrape reads about 0.
    #[serde(default)]
    pub min_wall_clearance: f64,
    /// What the footprint touched, when the outcome is `collision`.
    #[serde(default)]
    pub contact: Option<Contact>,
    /// Obstacles whose centre the car's progress passed, counted once per lap.
    #[serde(default)]
    pub obstacles_passed: u32,
    /// Least distance between the car's footprint and any obstacle, m (exact; 0 = contact),
    /// counted up to [`OBSTACLE_CLEARANCE_RANGE`] (that value when none came closer).
    #[serde(default)]
    pub min_obstacle_clearance: f64,
}

/// Progress, laps, deviation, time and the outcome of one episode, updated once per step.
#[derive(Clone, Debug)]
pub struct EpisodeTracker {
    frenet: Frenet,
    half: DVec2,
    start_s: f64,
    obstacles: Arc<[Obstacle]>,
    /// Progress from the start at which each obstacle's centre is passed first, m, `[0, lap)`.
    marks: Vec<f64>,
    velocity: DVec2,
    time: f64,
    time_limit: f64,
    /// Best progress so far, m.
    best_progress: f64,
    /// `wrong_way` below the best progress by this, m (0 = never).
    wrong_way_distance: f64,
    stats: EpisodeStats,
    deviation_sum: f64,
    outcome: Option<Outcome>,
}

impl EpisodeTracker {
    /// Starts tracking a car of footprint half extents `half` (m, x along the heading, y to the
    /// left) in `state` under `rules`, among the static `obstacles`.
    pub fn new(
        track: &Track,
        rules: &EpisodeConfig,
        state: &VehicleState,
        half: DVec2,
        obstacles: Arc<[Obstacle]>,
    ) -> Self {
        let goal = rules.laps * track.centerline.length();
        let frenet = track.centerline.project(state.position());
        let mut tracker = Self {
            frenet,
            half,
            start_s: frenet.s,
            obstacles: Arc::from([]),
            marks: Vec::new(),
            velocity: DVec2::ZERO,
            time: 0.0,
            time_limit: goal / rules.min_average_speed,
            best_progress: 0.0,
            wrong_way_distance: rules.wrong_way_distance,
            stats: EpisodeStats {
                goal,
                min_wall_clearance: f64::MAX,
                min_obstacle_clearance: OBSTACLE_CLEARANCE_RANGE,
                ..Default::default()
            },
            deviation_sum: 0.0,
            outcome: None,
        };
        tracker.set_obstacles(track, obstacles);
        tracker.measure(track, state, None);
        tracker
    }

    /// Replaces the obstacles (a person edits them in the window); the passes counted so far stay.
    pub fn set_obstacles(&mut self, track: &Track, obstacles: Arc<[Obstacle]>) {
        let lap = track.centerline.length();
        self.marks = obstacles
            .iter()
            .map(|o| (track.centerline.project(o.center()).s - self.start_s).rem_euclid(lap))
            .collect();
        self.obstacles = obstacles;
    }

    /// The obstacles of the episode.
    pub fn obstacles(&self) -> &Arc<[Obstacle]> {
        &self.obstacles
    }

    /// Updates the clearance and, given the step `dt` (s), the lateral acceleration: the change
    /// of the centre of gravity's velocity vector `v·(cos(ψ+β), sin(ψ+β))` over the step, normal
    /// to that velocity (`v·ψ̇` alone overstates it while the slip angle β changes).
    fn measure(&mut self, track: &Track, state: &VehicleState, dt: Option<f64>) {
        let wall = track.grid.wall_distance(state.position(), CLEARANCE_RANGE);
        let near = obstacle::clearance(
            &self.obstacles,
            state.position(),
            state.yaw,
            self.half,
            OBSTACLE_CLEARANCE_RANGE,
        );
        let s = &mut self.stats;
        s.min_wall_clearance = s.min_wall_clearance.min(wall - self.half.y);
        s.min_obstacle_clearance = s.min_obstacle_clearance.min(near);
        let direction = DVec2::from_angle(state.yaw + state.slip);
        let velocity = state.v * direction;
        if let Some(dt) = dt {
            let a_y = ((velocity - self.velocity) / dt)
                .dot(direction.perp())
                .abs();
            s.peak_lateral_acceleration = s.peak_lateral_acceleration.max(a_y);
        }
        self.velocity = velocity;
    }

    /// Accounts one step of `dt` seconds in which the car moved from `before` (m) to `state`.
    pub fn advance(&mut self, track: &Track, before: DVec2, state: &VehicleState, dt: f64) {
        let after = state.position();
        self.time += dt;
        let prev = self.frenet;
        self.frenet = track.centerline.project_near(after, prev.segment, 16);
        let progress_before = self.stats.progress;
        let s = &mut self.stats;
        s.progress += track.centerline.delta_s(prev.s, self.frenet.s);
        self.best_progress = self.best_progress.max(s.progress);
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
        let passed: u32 = self
            .marks
            .iter()
            .filter(|&&m| s.progress >= m)
            .map(|&m| ((s.progress - m) / lap).floor() as u32 + 1)
            .sum();
        s.obstacles_passed = s.obstacles_passed.max(passed);
        self.measure(track, state, Some(dt));
    }

    /// Decides whether the episode has ended, in this order: `collision` (the footprint at the
    /// car's pose touches a wall, then an obstacle: [`EpisodeStats::contact`]), `off_track` (the
    /// reference point is outside the walls), `goal_reached`, `wrong_way`, `timeout`. Once
    /// decided, the outcome stays.
    pub fn judge(&mut self, track: &Track, state: &VehicleState) -> Option<Outcome> {
        if self.outcome.is_none() {
            let (outcome, contact) = judge(self, track, state);
            self.outcome = outcome;
            self.stats.contact = contact;
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

fn judge(
    t: &EpisodeTracker,
    track: &Track,
    state: &VehicleState,
) -> (Option<Outcome>, Option<Contact>) {
    let p = DVec2::new(state.x, state.y);
    if track.grid.rect_hits_wall(p, state.yaw, t.half) {
        return (Some(Outcome::Collision), Some(Contact::Wall));
    }
    if let Some(id) = obstacle::first_hit(&t.obstacles, p, state.yaw, t.half) {
        return (Some(Outcome::Collision), Some(Contact::Obstacle(id)));
    }
    let (wr, wl) = track.widths_at(t.frenet.s);
    if !(-wr..=wl).contains(&t.frenet.d) && !track.grid.contains(p) {
        return (Some(Outcome::OffTrack), None);
    }
    if t.stats.progress >= t.stats.goal {
        return (Some(Outcome::GoalReached), None);
    }
    if t.wrong_way_distance > 0.0 && t.stats.progress < t.best_progress - t.wrong_way_distance {
        return (Some(Outcome::WrongWay), None);
    }
    (
        (t.time >= t.time_limit - 1e-9).then_some(Outcome::Timeout),
        None,
    )
}
