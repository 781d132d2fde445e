//! Episode starts: a fixed grid start, or the random start of the pipeline we replace
//! (uniform arc length, lateral offset across the usable width, heading and speed jitter).

use glam::DVec2;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::track::Track;

/// How an episode starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StartMode {
    /// Random pose and speed drawn from the episode seed.
    Random,
    /// On the centerline at `s = 0`, along the track, at rest.
    Grid,
}

/// Start configuration (inside `configs/episode.ron`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartConfig {
    /// Random or grid.
    pub mode: StartMode,
    /// Random start: heading = track heading ± this bound, rad.
    pub heading_bound: f64,
    /// Random start: initial speed uniform in `[0, speed_max]`, m/s.
    pub speed_max: f64,
    /// Random start: clearance kept between the car's bounding circle and the track edge, m.
    pub edge_margin: f64,
    /// Random start: the footprint must also stay clear of the walls when moved straight ahead
    /// for this long at the start speed, s (0 = only the start pose is checked). This rejects
    /// starts that no driver can recover from, such as 2 m/s towards a wall 10 cm away.
    /// Older configs without the field get 0.
    #[serde(default)]
    pub clear_ahead: f64,
}

/// A start pose in Frenet and world coordinates.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct StartPose {
    /// Centerline arc length, m.
    pub s: f64,
    /// Lateral offset from the centerline, m (positive = left).
    pub d: f64,
    /// Heading minus the track heading at `s`, rad.
    pub heading_offset: f64,
    /// x, m.
    pub x: f64,
    /// y, m.
    pub y: f64,
    /// Heading, rad.
    pub yaw: f64,
    /// Initial speed, m/s.
    pub speed: f64,
}

impl StartPose {
    /// The pose at centerline arc length `s` (m), lateral offset `d` (m), heading offset (rad) and speed (m/s).
    pub fn at(track: &Track, s: f64, d: f64, heading_offset: f64, speed: f64) -> Self {
        let s = track.centerline.wrap_s(s);
        let h = track.centerline.heading_at(s);
        let p = track.centerline.point_at(s) + DVec2::from_angle(h).perp() * d;
        Self {
            s,
            d,
            heading_offset,
            x: p.x,
            y: p.y,
            yaw: crate::vehicle::wrap_angle(h + heading_offset),
            speed,
        }
    }
}

/// Draws a start. A random start whose footprint would touch a wall (possible at corners tighter
/// than the half-width), at the start pose or anywhere on the straight path of
/// [`StartConfig::clear_ahead`] seconds at the start speed (checked every 5 cm), is drawn again,
/// up to 1000 times, then falls back to the grid start.
pub fn sample_start(
    cfg: &StartConfig,
    track: &Track,
    car_half: DVec2,
    rng: &mut impl Rng,
) -> StartPose {
    if cfg.mode == StartMode::Grid {
        return StartPose::at(track, 0.0, 0.0, 0.0, 0.0);
    }
    let radius = car_half.length() + cfg.edge_margin;
    for _ in 0..1000 {
        let s = rng.random_range(0.0..track.centerline.length());
        let (wr, wl) = track.widths_at(s);
        let (lo, hi) = (-(wr - radius), wl - radius);
        let d = if lo < hi {
            rng.random_range(lo..=hi)
        } else {
            0.0
        };
        let dh = if cfg.heading_bound > 0.0 {
            rng.random_range(-cfg.heading_bound..=cfg.heading_bound)
        } else {
            0.0
        };
        let v = if cfg.speed_max > 0.0 {
            rng.random_range(0.0..=cfg.speed_max)
        } else {
            0.0
        };
        let pose = StartPose::at(track, s, d, dh, v);
        let c = DVec2::new(pose.x, pose.y);
        let ahead = DVec2::from_angle(pose.yaw) * (v * cfg.clear_ahead);
        let checks = ((ahead.length() / 0.05).ceil() as usize).max(1);
        let clear =
            |p: DVec2| track.grid.contains(p) && !track.grid.rect_hits_wall(p, pose.yaw, car_half);
        if (0..=checks).all(|i| clear(c + ahead * (i as f64 / checks as f64))) {
            return pose;
        }
    }
    StartPose::at(track, 0.0, 0.0, 0.0, 0.0)
}
