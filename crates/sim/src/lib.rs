//! raceloop's simulation core, without Bevy: real race tracks with walls built from the union of
//! the corridor, f1tenth_gym's single-track vehicle model (RK4, dt = 0.01 s), an exact 1080-beam
//! LiDAR, seeded static obstacles, the Pure Pursuit expert with Frenet-frame avoidance, random
//! starts and episode rules.
//!
//! Conventions (REP-103): x forward, y left, yaw counter-clockwise, SI units (m, s, rad, m/s).
//!
//! ```no_run
//! use std::sync::Arc;
//! use raceloop_sim::{PurePursuit, Sim, SimConfig, Track};
//!
//! let track = Arc::new(Track::load("Austin")?);
//! let config = SimConfig::default();
//! let mut expert = PurePursuit::new(config.expert.clone(), &track, &config.vehicle);
//! let mut sim = Sim::new(track.clone(), config)?;
//! sim.reset(42);
//! let outcome = loop {
//!     let action = expert.act(&sim.config().vehicle, &sim.observation().state);
//!     if let Some(outcome) = sim.step(action) {
//!         break outcome;
//!     }
//! };
//! println!("{} after {:.1} s", outcome.as_str(), sim.time());
//! # Ok::<(), raceloop_sim::SimError>(())
//! ```

pub mod avoidance;
pub mod config;
pub mod episode;
pub mod error;
pub mod expert;
pub mod lidar;
pub mod min_curvature;
pub mod obstacle;
pub mod scenario;
pub mod seed;
pub mod simulator;
pub mod speed_profile;
pub mod start;
pub mod track;
pub mod vehicle;

pub use config::SimConfig;
pub use episode::{Contact, EpisodeConfig, EpisodeStats, EpisodeTracker, Outcome};
pub use error::{Result, SimError};
pub use expert::{ExpertConfig, PurePursuit};
pub use lidar::{Lidar, LidarConfig, LidarSensor};
pub use obstacle::{Obstacle, Shape};
pub use scenario::ScenarioConfig;
pub use simulator::{Observation, Sim, car_half, draw_obstacles, draw_start, start_state};
pub use start::{StartConfig, StartMode, StartPose};
pub use track::Track;
pub use vehicle::{Action, Vehicle, VehicleParams, VehicleState};
