//! The episode's scenario beside the track (`configs/scenario.ron`): seeded static obstacles.
//!
//! Episode `seed`'s obstacles come from `obstacles.generation.seed` and `seed` alone, so the
//! same pair gives the same obstacles on any worker, and a sweep over the generation seed
//! (`-m scenario.obstacles.generation.seed=range(100,105)`) gives a different scenario set per
//! value. Placement follows the flow that raceloop replaces: a count per lap from a density,
//! a size range, a lateral range, a least spacing along the track, a passable gap and a clear
//! zone around the start.

use glam::DVec2;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};

use crate::error::{Result, SimError};
use crate::obstacle::{Obstacle, PARKED_CAR, Shape};
use crate::seed::splitmix;
use crate::track::Track;

/// What an obstacle may be; each obstacle draws one of the configured kinds uniformly.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ObstacleKind {
    /// A parked F1TENTH car: a 0.58 × 0.31 m box ([`PARKED_CAR`]).
    ParkedCar,
    /// A box with length (along its yaw) and width uniform in these `(min, max)` ranges, m.
    Box {
        /// Length range, m.
        length: (f64, f64),
        /// Width range, m.
        width: (f64, f64),
    },
    /// A circle with radius uniform in this `(min, max)` range, m.
    Circle {
        /// Radius range, m.
        radius: (f64, f64),
    },
}

/// The seed of obstacle generation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Generation {
    /// Generation seed; episode `i`'s obstacles come from this and `i`.
    pub seed: u64,
}

/// Seeded obstacle placement (`scenario.obstacles`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObstacleConfig {
    /// Obstacles per 100 m of centerline: an episode gets `round(density · lap / 100 m)` (0 = none).
    pub density: f64,
    /// The kinds to draw from (at least one).
    pub kinds: Vec<ObstacleKind>,
    /// Yaw relative to the centerline heading, uniform in `±yaw_bound`, rad.
    pub yaw_bound: f64,
    /// Lateral offset of the centre from the centerline, uniform in `(min, max)`, m (left +).
    pub lateral: (f64, f64),
    /// Least distance along the centerline between two obstacles' centres, m.
    pub min_spacing: f64,
    /// The wider of the two gaps beside an obstacle (to the track edge) is at least the car's
    /// width plus this, m.
    pub gap_margin: f64,
    /// No obstacle centre lies within this distance ahead of the start along the centerline,
    /// nor within [`START_BEHIND`] behind it, m.
    pub start_clearance: f64,
    /// The generation seed.
    pub generation: Generation,
}

/// Distance behind the start kept free of obstacle centres, m (a car length and a half).
pub const START_BEHIND: f64 = 1.0;

/// Placement attempts per wanted obstacle before generation settles for fewer.
const ATTEMPTS: usize = 64;

/// Everything an episode holds beside the track (`configs/scenario.ron`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioConfig {
    /// Static obstacles.
    pub obstacles: ObstacleConfig,
}

impl ScenarioConfig {
    /// Whether this is the shipped default (which configs then leave out, so that obstacle-free
    /// configs and their hashes are those from before scenarios existed).
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// Checks ranges of values.
    ///
    /// # Errors
    /// [`SimError::ConfigValue`] naming the field.
    pub fn validate(&self) -> Result<()> {
        let o = &self.obstacles;
        let bad = |field: &str, message: String| {
            Err(SimError::ConfigValue {
                field: format!("scenario.obstacles.{field}"),
                message,
            })
        };
        let range_ok = |(lo, hi): (f64, f64)| lo.is_finite() && hi.is_finite() && lo <= hi;
        if !(o.density >= 0.0 && o.density <= 50.0) {
            return bad(
                "density",
                format!("must be in [0, 50] per 100 m, found {}", o.density),
            );
        }
        if o.kinds.is_empty() {
            return bad("kinds", "needs at least one kind".into());
        }
        for (i, kind) in o.kinds.iter().enumerate() {
            let ok = match kind {
                ObstacleKind::ParkedCar => true,
                ObstacleKind::Box { length, width } => {
                    range_ok(*length) && range_ok(*width) && length.0 > 0.0 && width.0 > 0.0
                }
                ObstacleKind::Circle { radius } => range_ok(*radius) && radius.0 > 0.0,
            };
            if !ok {
                return bad(
                    &format!("kinds[{i}]"),
                    format!("sizes need 0 < min ≤ max, m, found {kind:?}"),
                );
            }
        }
        if !(o.yaw_bound >= 0.0 && o.yaw_bound <= std::f64::consts::PI) {
            return bad(
                "yaw_bound",
                format!("must be in [0, π] rad, found {}", o.yaw_bound),
            );
        }
        if !range_ok(o.lateral) {
            return bad(
                "lateral",
                format!("needs finite min ≤ max, m, found {:?}", o.lateral),
            );
        }
        for (field, v) in [
            ("min_spacing", o.min_spacing),
            ("gap_margin", o.gap_margin),
            ("start_clearance", o.start_clearance),
        ] {
            if !(v >= 0.0 && v.is_finite()) {
                return bad(field, format!("must be ≥ 0 m, found {v}"));
            }
        }
        Ok(())
    }
}

/// The obstacles of episode `seed` on `track` for a car of width `car_width` (m) starting at
/// centerline arc length `start_s` (m): deterministic in (`config.generation.seed`, `seed`).
/// Fewer than the density asks for when the spacing and gap rules leave no room.
pub fn generate(
    track: &Track,
    config: &ObstacleConfig,
    car_width: f64,
    seed: u64,
    start_s: f64,
) -> Vec<Obstacle> {
    let lap = track.centerline.length();
    let wanted = (config.density * lap / 100.0).round() as usize;
    let free = lap - config.start_clearance - START_BEHIND;
    if wanted == 0 || free <= 0.0 {
        return Vec::new();
    }
    let mut rng =
        Xoshiro256PlusPlus::seed_from_u64(splitmix(splitmix(config.generation.seed) ^ seed));
    let mut placed: Vec<(f64, Obstacle)> = Vec::new();
    for _ in 0..wanted * ATTEMPTS {
        if placed.len() == wanted {
            break;
        }
        let s = track
            .centerline
            .wrap_s(start_s + config.start_clearance + rng.random_range(0.0..free));
        let kind = &config.kinds[rng.random_range(0..config.kinds.len())];
        let mut draw = |(lo, hi): (f64, f64)| {
            if hi > lo {
                rng.random_range(lo..=hi)
            } else {
                lo
            }
        };
        let shape = match kind {
            ObstacleKind::ParkedCar => Shape::Box {
                length: PARKED_CAR.x,
                width: PARKED_CAR.y,
            },
            ObstacleKind::Box { length, width } => Shape::Box {
                length: draw(*length),
                width: draw(*width),
            },
            ObstacleKind::Circle { radius } => Shape::Circle {
                radius: draw(*radius),
            },
        };
        let d = draw(config.lateral);
        let turn = draw((-config.yaw_bound, config.yaw_bound));
        if placed
            .iter()
            .any(|(t, _)| track.centerline.delta_s(*t, s).abs() < config.min_spacing)
        {
            continue;
        }
        let heading = track.centerline.heading_at(s);
        let center = track.centerline.point_at(s) + DVec2::from_angle(heading).perp() * d;
        let obstacle = Obstacle {
            id: placed.len() as u32,
            x: center.x,
            y: center.y,
            yaw: heading + turn,
            shape,
        };
        if passable(track, &obstacle, car_width + config.gap_margin) {
            placed.push((s, obstacle));
        }
    }
    placed.into_iter().map(|(_, o)| o).collect()
}

/// Whether `o` lies inside the track and leaves, on one side, a gap of at least `gap` m between
/// its outline and the track edge (checked at its outline's points, in the centerline's frame).
pub fn passable(track: &Track, o: &Obstacle, gap: f64) -> bool {
    let outline = o.outline();
    let (mut room_left, mut room_right) = (f64::INFINITY, f64::INFINITY);
    for p in outline {
        let f = track.centerline.project(p);
        let (wr, wl) = track.widths_at(f.s);
        if f.d > wl || f.d < -wr {
            return false;
        }
        room_left = room_left.min(wl - f.d);
        room_right = room_right.min(f.d + wr);
    }
    room_left.max(room_right) >= gap
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(density: f64, seed: u64) -> ObstacleConfig {
        ObstacleConfig {
            density,
            generation: Generation { seed },
            ..ScenarioConfig::default().obstacles
        }
    }

    #[test]
    fn generation_is_seeded_spaced_and_passable() {
        let track = Track::load("Austin").unwrap();
        let lap = track.centerline.length();
        let c = config(2.0, 100);
        let a = generate(&track, &c, 0.31, 7, 10.0);
        assert_eq!(
            a,
            generate(&track, &c, 0.31, 7, 10.0),
            "same seeds, same obstacles"
        );
        assert_eq!(a.len(), (2.0 * lap / 100.0).round() as usize, "{lap} m lap");
        assert_ne!(a, generate(&track, &c, 0.31, 8, 10.0), "another episode");
        assert_ne!(
            a,
            generate(&track, &config(2.0, 101), 0.31, 7, 10.0),
            "another generation seed"
        );
        for (i, o) in a.iter().enumerate() {
            assert_eq!(o.id, i as u32);
            assert!(passable(&track, o, 0.31 + c.gap_margin));
            let s = track.centerline.project(o.center()).s;
            let ahead = (s - 10.0).rem_euclid(lap);
            assert!(
                ahead >= c.start_clearance - 0.5 && ahead <= lap - START_BEHIND + 0.5,
                "obstacle {i} at {ahead} m from the start"
            );
            for p in &a[..i] {
                let t = track.centerline.project(p.center()).s;
                assert!(track.centerline.delta_s(s, t).abs() >= c.min_spacing - 0.5);
            }
        }
        assert!(generate(&track, &config(0.0, 100), 0.31, 7, 10.0).is_empty());
    }

    #[test]
    fn shipped_scenario_is_off_and_valid() {
        let s = ScenarioConfig::default();
        assert_eq!(s.obstacles.density, 0.0);
        s.validate().unwrap();
        let mut bad = s.clone();
        bad.obstacles.lateral = (1.0, -1.0);
        let e = bad.validate().unwrap_err().to_string();
        assert!(e.contains("scenario.obstacles.lateral"), "{e}");
    }
}
