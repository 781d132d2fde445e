//! Episode logs as MCAP files that Foxglove opens.
//!
//! Topics (log time = simulation time, ns; zstd chunks):
//! - `/scan` `foxglove.LaserScan` in frame `laser`, at every scan: ranges in m, `[num_beams]`;
//! - `/tf` `foxglove.FrameTransform`: `world → base_link` (the car's reference point) and
//!   `base_link → laser`, every step;
//! - `/track` `foxglove.SceneUpdate`: walls, centerline and raceline, once at t = 0;
//! - `/ego/state` (JSON, [`EgoState`]): x, y (m), yaw (rad), speed (m/s), yaw_rate (rad/s),
//!   slip, steering (rad), Frenet s, d and progress (m), every step;
//! - `/control` (JSON): the command issued at its log time and applied over the next step:
//!   steering (rad), speed (m/s);
//! - `/expert/control` (JSON): with noise injection, the expert's clean command at the same time
//!   as `/control` (the training label);
//! - `/events` `foxglove.Log`: the start and the outcome;
//! - `/obstacles` `foxglove.SceneUpdate`: the scenario's obstacles (boxes as cubes, circles as
//!   cylinders), once at t = 0, only in episodes with obstacles;
//! - `/expert/plan` `foxglove.SceneUpdate`: the expert's followed path and, per obstacle, the
//!   side and lateral offset it chose, once at t = 0, only in expert episodes with obstacles.
//!
//! [`McapLog`] writes them, [`EpisodeLog::read`] reads them back. "Every step" becomes every
//! `state_every` steps with [`Detail::Full`] (collection logs: 25 Hz). A thin log
//! ([`Detail::Thin`], for successful evaluation episodes) keeps the track and events, the
//! transforms, ego state and commands at 10 Hz and one scan per second.

mod error;
mod messages;
mod reader;
mod scene;
mod writer;

pub use error::{RecordError, Result};
pub use messages::{EgoState, topics};
pub use reader::EpisodeLog;
pub use scene::track_scene;
pub use writer::{Detail, McapLog, THIN_METADATA, THIN_SCAN_PERIOD_NS, THIN_STATE_PERIOD_NS};
