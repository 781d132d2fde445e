//! `result.json`: the outcome and measurements of one episode.

use raceloop_sim::{Contact, EpisodeTracker, Outcome};
use serde::{Deserialize, Serialize};

use crate::tracking::provenance;

/// What one episode achieved. Units in the field names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpisodeResult {
    /// `outcome == goal_reached`.
    pub success: bool,
    /// `goal_reached`, `off_track`, `collision`, `wrong_way` or `timeout`.
    pub outcome: Outcome,
    /// Simulated duration, s.
    pub duration_s: f64,
    /// Distance driven, m.
    pub distance_m: f64,
    /// Progress along the centerline, m.
    pub progress_m: f64,
    /// Goal progress, m.
    pub goal_m: f64,
    /// Completed laps.
    pub laps: u32,
    /// Lap times, s.
    pub lap_times_s: Vec<f64>,
    /// Mean |lateral deviation| from the centerline, m.
    pub mean_abs_deviation_m: f64,
    /// Max |lateral deviation| from the centerline, m.
    pub max_abs_deviation_m: f64,
    /// Checkpoints passed (every 10 % of a lap).
    pub checkpoints: u32,
    /// Peak |lateral acceleration| of the centre of gravity, normal to its velocity, m/s².
    #[serde(default)]
    pub peak_lateral_acceleration_mps2: f64,
    /// Least clearance between the car's side and the nearest wall, m (searched up to 1 m from
    /// the centre of gravity).
    #[serde(default)]
    pub min_wall_clearance_m: f64,
    /// What a collision touched: `wall` or `obstacle` (absent unless the outcome is `collision`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collision_with: Option<Collided>,
    /// The scenario's obstacles (absent in obstacle-free episodes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub obstacles: Option<ObstacleResult>,
    /// Physics steps.
    pub steps: u64,
    /// Episode seed.
    pub seed: u64,
    /// Track name.
    pub track: String,
    /// raceloop version.
    pub raceloop_version: String,
    /// Git commit of the build.
    pub git_commit: String,
}

/// What a collision touched (`result.json`'s `collision_with`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Collided {
    /// A track wall.
    Wall,
    /// An obstacle (its id is in [`ObstacleResult::collided_id`]).
    Obstacle,
}

impl Collided {
    /// The snake_case name used in results (`wall`, `obstacle`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Wall => "wall",
            Self::Obstacle => "obstacle",
        }
    }
}

/// How an episode went among its obstacles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObstacleResult {
    /// Obstacles in the scenario.
    pub count: u32,
    /// Obstacles whose centre the car's progress passed, once per lap.
    pub passed: u32,
    /// Least distance between the car's footprint and any obstacle, m (0 = contact), searched
    /// up to 2 m.
    pub min_clearance_m: f64,
    /// The id of the obstacle hit, when the car collided with one.
    pub collided_id: Option<u32>,
}

impl EpisodeResult {
    /// The result of a finished episode.
    pub fn from_tracker(
        tracker: &EpisodeTracker,
        outcome: Outcome,
        seed: u64,
        track: &str,
    ) -> Self {
        let s = tracker.stats();
        Self {
            success: outcome == Outcome::GoalReached,
            outcome,
            duration_s: tracker.time(),
            distance_m: s.distance,
            progress_m: s.progress,
            goal_m: s.goal,
            laps: s.laps,
            lap_times_s: s.lap_times.clone(),
            mean_abs_deviation_m: s.mean_abs_deviation,
            max_abs_deviation_m: s.max_abs_deviation,
            checkpoints: s.checkpoints,
            peak_lateral_acceleration_mps2: s.peak_lateral_acceleration,
            min_wall_clearance_m: s.min_wall_clearance,
            collision_with: s.contact.map(|c| match c {
                Contact::Wall => Collided::Wall,
                Contact::Obstacle(_) => Collided::Obstacle,
            }),
            obstacles: (!tracker.obstacles().is_empty()).then(|| ObstacleResult {
                count: tracker.obstacles().len() as u32,
                passed: s.obstacles_passed,
                min_clearance_m: s.min_obstacle_clearance,
                collided_id: match s.contact {
                    Some(Contact::Obstacle(id)) => Some(id),
                    _ => None,
                },
            }),
            steps: s.steps,
            seed,
            track: track.into(),
            raceloop_version: provenance::VERSION.into(),
            git_commit: provenance::GIT_COMMIT.into(),
        }
    }
}
