//! The topics of an episode log and their message types (JSON schemas for the JSON topics).

use raceloop_sim::VehicleState;
use raceloop_sim::episode::EpisodeTracker;
use serde::{Deserialize, Serialize};

/// Topic names.
pub mod topics {
    /// LiDAR scans.
    pub const SCAN: &str = "/scan";
    /// Transforms.
    pub const TF: &str = "/tf";
    /// Track geometry.
    pub const TRACK: &str = "/track";
    /// Vehicle state.
    pub const EGO_STATE: &str = "/ego/state";
    /// Applied command.
    pub const CONTROL: &str = "/control";
    /// The expert's command where it differs from the applied one (noise injection): the label.
    pub const EXPERT_CONTROL: &str = "/expert/control";
    /// Start and outcome.
    pub const EVENTS: &str = "/events";
    /// Obstacles (only in episodes that have some).
    pub const OBSTACLES: &str = "/obstacles";
    /// The expert's avoidance plan (only in expert episodes with obstacles).
    pub const PLAN: &str = "/expert/plan";
}

/// `/ego/state` message (REP-103: x forward, y left, yaw counter-clockwise).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EgoState {
    /// x, m.
    pub x: f64,
    /// y, m.
    pub y: f64,
    /// Heading, rad.
    pub yaw: f64,
    /// Longitudinal speed, m/s.
    pub speed: f64,
    /// Yaw rate, rad/s.
    pub yaw_rate: f64,
    /// Slip angle, rad.
    pub slip: f64,
    /// Steering angle, rad.
    pub steering: f64,
    /// Centerline arc length (Frenet s), m.
    pub s: f64,
    /// Lateral offset from the centerline (Frenet d), m, left positive.
    pub d: f64,
    /// Progress since the start, m.
    pub progress: f64,
}

impl EgoState {
    /// The message for a car in `state` whose episode is tracked by `tracker`.
    pub fn of(state: &VehicleState, tracker: &EpisodeTracker) -> Self {
        let f = tracker.frenet();
        Self {
            x: state.x,
            y: state.y,
            yaw: state.yaw,
            speed: state.v,
            yaw_rate: state.yaw_rate,
            slip: state.slip,
            steering: state.steering,
            s: f.s,
            d: f.d,
            progress: tracker.stats().progress,
        }
    }

    /// The recorded state as a vehicle state (for drawing a replay).
    pub fn vehicle_state(&self) -> VehicleState {
        VehicleState {
            x: self.x,
            y: self.y,
            steering: self.steering,
            v: self.speed,
            yaw: self.yaw,
            yaw_rate: self.yaw_rate,
            slip: self.slip,
        }
    }
}

/// JSON schema of `/ego/state`.
pub(crate) const EGO_SCHEMA: &str = r#"{"title":"raceloop.EgoState","type":"object","properties":{"x":{"type":"number","description":"m"},"y":{"type":"number","description":"m"},"yaw":{"type":"number","description":"rad"},"speed":{"type":"number","description":"m/s"},"yaw_rate":{"type":"number","description":"rad/s"},"slip":{"type":"number","description":"rad"},"steering":{"type":"number","description":"rad"},"s":{"type":"number","description":"centerline arc length, m"},"d":{"type":"number","description":"lateral offset, m, left positive"},"progress":{"type":"number","description":"m since the start"}}}"#;
/// JSON schema of `/control` and `/expert/control`.
pub(crate) const CONTROL_SCHEMA: &str = r#"{"title":"raceloop.Control","type":"object","properties":{"steering":{"type":"number","description":"target steering angle, rad"},"speed":{"type":"number","description":"target speed, m/s"}}}"#;
