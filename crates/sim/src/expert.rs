//! The Pure Pursuit expert (Coulter, "Implementation of the Pure Pursuit Path Tracking
//! Algorithm", CMU-RI-TR-92-01, 1992), following the raceline (or the centerline), shifted
//! around the episode's obstacles by the [`crate::avoidance`] planner.

use glam::DVec2;
use serde::{Deserialize, Serialize};

use crate::avoidance::{AvoidanceConfig, Evasion, FrenetPath, Side};
use crate::error::{Result, SimError};
use crate::obstacle::Obstacle;
use std::sync::Arc;

use crate::track::{ClosedPath, Track};
use crate::vehicle::{Action, VehicleParams, VehicleState};

/// Which path the expert follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExpertPath {
    /// The shipped raceline where it keeps `edge_margin` from both edges everywhere; else (and
    /// on tracks without one) the minimum-curvature raceline with that margin
    /// ([`crate::min_curvature`]).
    Raceline,
    /// Always the minimum-curvature raceline with `edge_margin`.
    MinCurvature,
    /// Always the centerline.
    Centerline,
}

/// Lookahead distance of Pure Pursuit.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Lookahead {
    /// A fixed distance, m.
    Fixed(f64),
    /// `clamp(base + gain·v, min, max)`: m, s, m, m.
    SpeedScaled {
        /// Lookahead at standstill, m.
        base: f64,
        /// Added lookahead per m/s of speed, s.
        gain: f64,
        /// Lower bound, m.
        min: f64,
        /// Upper bound, m.
        max: f64,
    },
}

/// Speed command of the expert.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum ExpertSpeed {
    /// A constant speed, m/s (the default for steering-only behavioral cloning).
    Fixed(f64),
    /// The raceline's speed profile times `scale`, capped at `max` m/s (centerline: `max`).
    Profile {
        /// Factor on the profile speed.
        scale: f64,
        /// Cap, m/s.
        max: f64,
    },
    /// A friction-limited profile over the path actually followed
    /// ([`crate::speed_profile::speed_profile`]), read one lookahead ahead.
    Friction {
        /// `μ_eff / μ`: the fraction of the tire friction used for cornering.
        mu_fraction: f64,
        /// Cap, m/s.
        max: f64,
        /// Braking limit, m/s².
        brake: f64,
    },
}

/// Expert configuration (`configs/expert.ron`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpertConfig {
    /// Path to follow.
    pub path: ExpertPath,
    /// Lookahead distance.
    pub lookahead: Lookahead,
    /// Speed command.
    pub speed: ExpertSpeed,
    /// Least distance kept between the followed path and the track edge, m. The shipped racelines
    /// reach |d| ≈ 0.95 m of the 1.1 m half-width; where one comes closer to an edge than this,
    /// the expert follows the minimum-curvature raceline computed with this margin instead.
    pub edge_margin: f64,
    /// Obstacle avoidance; left out of the text when it is the default.
    #[serde(default, skip_serializing_if = "AvoidanceConfig::is_default")]
    pub avoidance: AvoidanceConfig,
}

impl ExpertConfig {
    /// Checks ranges of values.
    ///
    /// # Errors
    /// [`SimError::ConfigValue`] naming the field.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &str, message: String| {
            Err(SimError::ConfigValue {
                field: format!("expert.{field}"),
                message,
            })
        };
        match self.lookahead {
            Lookahead::Fixed(l) if !(l > 0.0) => {
                return bad("lookahead", format!("must be > 0 m, found {l}"));
            }
            Lookahead::SpeedScaled {
                base,
                gain,
                min,
                max,
            } if !(min > 0.0 && max >= min && base.is_finite() && gain.is_finite()) => {
                return bad(
                    "lookahead",
                    format!(
                        "needs 0 < min ≤ max and finite base/gain, found base {base} gain {gain} min {min} max {max}"
                    ),
                );
            }
            _ => {}
        }
        self.avoidance.validate()?;
        if !(self.edge_margin >= 0.0 && self.edge_margin.is_finite()) {
            return bad(
                "edge_margin",
                format!("must be ≥ 0 m, found {}", self.edge_margin),
            );
        }
        match self.speed {
            ExpertSpeed::Fixed(v) if !v.is_finite() => {
                bad("speed", format!("must be finite, found {v}"))
            }
            ExpertSpeed::Profile { scale, max } if !(scale > 0.0 && max > 0.0) => bad(
                "speed",
                format!("needs scale > 0 and max > 0, found {scale}, {max}"),
            ),
            ExpertSpeed::Friction {
                mu_fraction,
                max,
                brake,
            } if !(mu_fraction > 0.0 && mu_fraction <= 1.0 && max > 0.0 && brake > 0.0) => bad(
                "speed",
                format!(
                    "Friction needs 0 < mu_fraction ≤ 1, max > 0 and brake > 0, found \
                     {mu_fraction}, {max}, {brake}"
                ),
            ),
            _ => Ok(()),
        }
    }
}

/// Point spacing of the path that evasions are planned on, m.
const AVOIDANCE_SPACING: f64 = 0.1;

/// A Pure Pursuit driver bound to one track. It remembers where it is on its path, so it follows
/// the leg it is on where two legs come close.
#[derive(Clone, Debug)]
pub struct PurePursuit {
    config: ExpertConfig,
    params: VehicleParams,
    path: Arc<ClosedPath>,
    /// Profile speed at each path point, m/s (the raceline's, or the friction-limited one).
    speed: Option<Arc<Vec<f64>>>,
    /// The path and profile without obstacles.
    base: (Arc<ClosedPath>, Option<Arc<Vec<f64>>>),
    /// The base path resampled every [`AVOIDANCE_SPACING`], with its centerline coordinates.
    fine: Option<(Arc<ClosedPath>, Arc<FrenetPath>)>,
    plan: Vec<Evasion>,
    /// The obstacles planned around, and the sides [`Self::commit`] fixed.
    obstacles: Vec<Obstacle>,
    forced: Vec<(u32, Side)>,
    /// Lookahead added per metre of lateral distance from the path, m/m.
    lookahead_error_gain: f64,
    hint: Option<usize>,
}

impl PurePursuit {
    /// A driver for `track` with the vehicle `params` (for a friction-limited speed profile).
    pub fn new(config: ExpertConfig, track: &Track, params: &VehicleParams) -> Self {
        let margin = config.edge_margin;
        let shipped = match (&track.raceline, config.path) {
            (Some(r), ExpertPath::Raceline) if keeps_margin(track, &r.path, margin) => Some(r),
            _ => None,
        };
        let (path, mut speed) = match (shipped, config.path) {
            (Some(r), _) => (r.path.clone(), Some(Arc::new(r.speed.clone()))),
            (None, ExpertPath::Centerline) => (track.centerline.clone(), None),
            (None, _) => match crate::min_curvature::min_curvature_raceline(track, margin) {
                Ok(path) => ((*path).clone(), None),
                Err(e) => {
                    eprintln!("{e}; the expert follows the centerline");
                    (track.centerline.clone(), None)
                }
            },
        };
        if let Some(v) = friction_profile(&config, &path, params, &|_| f64::INFINITY) {
            speed = Some(Arc::new(v));
        }
        let path = Arc::new(path);
        Self {
            base: (path.clone(), speed.clone()),
            config,
            params: params.clone(),
            path,
            speed,
            fine: None,
            plan: Vec::new(),
            obstacles: Vec::new(),
            forced: Vec::new(),
            lookahead_error_gain: 0.0,
            hint: None,
        }
    }

    /// Plans around the episode's static `obstacles` on `track` (the track this driver was
    /// built for): the followed path becomes the base path shifted by [`crate::avoidance::plan`],
    /// and a friction-limited profile is recomputed over it. No obstacles restores the base path.
    pub fn avoid(&mut self, track: &Track, obstacles: &[Obstacle]) {
        self.obstacles = obstacles.to_vec();
        self.forced.clear();
        self.replan(track);
    }

    /// For a labeller of states that another driver reached (DAgger): the lookahead grows by
    /// `gain` (m/m, ≥ 0) per metre of lateral distance from the path, so that away from it the
    /// command steers back over a longer distance rather than at the tire limit (at 8 m/s and
    /// 0.6 m off, 0 gives a lateral acceleration of about 19 m/s², 3 about 5 m/s²). On the path
    /// it changes nothing. Not for driving: the longer lookahead cuts corners, which moves the
    /// car further off, which lengthens it again (with 0.5 the expert itself crashed 4 % of
    /// obstacle episodes, with 0 under 1 %).
    pub fn with_lookahead_error_gain(mut self, gain: f64) -> Self {
        self.lookahead_error_gain = gain.max(0.0);
        self
    }

    /// For a labeller of states that another driver reached (DAgger): where the car, within an
    /// evasion's blend distance before its obstacle or abeam it, is already on the other side of
    /// the obstacle's centre than planned, the plan is redone with that obstacle passed on the
    /// car's side, so that the expert's command finishes the pass rather than crossing the
    /// obstacle. `state` is the car's (m, rad). Returns whether the plan changed.
    pub fn commit(&mut self, track: &Track, state: &VehicleState) -> bool {
        let center = &track.centerline;
        let car = center.project(DVec2::new(state.x, state.y));
        let mut changed = false;
        for e in &self.plan {
            let ahead = center.delta_s(car.s, e.s_range.0);
            let abeam = center.delta_s(e.s_range.0, car.s) >= 0.0
                && center.delta_s(car.s, e.s_range.1) >= 0.0;
            if !(abeam || (0.0..=e.blend).contains(&ahead)) {
                continue;
            }
            let Some(o) = self.obstacles.iter().find(|o| o.id == e.obstacle) else {
                continue;
            };
            let side = if car.d > center.project(o.center()).d {
                Side::Left
            } else {
                Side::Right
            };
            if side != e.side && !self.forced.iter().any(|(id, _)| *id == o.id) {
                self.forced.push((o.id, side));
                changed = true;
            }
        }
        if changed {
            // The moved path keeps the base path's points, so the position on it still holds.
            let hint = self.hint;
            self.replan(track);
            self.hint = hint;
        }
        changed
    }

    /// Recomputes the path around `self.obstacles` with the `self.forced` sides.
    fn replan(&mut self, track: &Track) {
        self.hint = None;
        let obstacles = &self.obstacles;
        if obstacles.is_empty() {
            (self.path, self.speed) = self.base.clone();
            self.plan.clear();
            return;
        }
        let (base, base_speed) = &self.base;
        // Evasions bend the path over a few metres: resample it finely enough to carry them
        // (the shipped racelines have 0.5 m between points).
        let (base, frenet) = self
            .fine
            .get_or_insert_with(|| {
                let fine = crate::avoidance::resample_smooth(base, AVOIDANCE_SPACING);
                let frenet = FrenetPath::new(track, &fine);
                (Arc::new(fine), Arc::new(frenet))
            })
            .clone();
        let fixed = match self.config.speed {
            ExpertSpeed::Fixed(v) => v,
            ExpertSpeed::Profile { max, .. } | ExpertSpeed::Friction { max, .. } => max,
        };
        let coarse = &self.base.0;
        let base_speed_at = |s: f64| base_speed.as_ref().map_or(fixed, |v| v[coarse.locate(s).0]);
        let speed_at = |i: usize| base_speed_at(base.s_at_point(i));
        let (points, plan) = crate::avoidance::plan(
            track,
            &base,
            &frenet,
            &speed_at,
            obstacles,
            &self.forced,
            0.5 * self.params.width,
            self.params.s_max.tan() / self.params.wheelbase(),
            &self.config.avoidance,
        );
        let Ok(path) = ClosedPath::new(points) else {
            return;
        };
        let avoidance = &self.config.avoidance;
        let center = &track.centerline;
        // The path keeps the fine base path's points, so `frenet.sd[i]` is point i's (s, d).
        let cap = |i: usize| {
            let s = frenet.sd[i % frenet.sd.len()].0;
            let evading = plan.iter().any(|e| {
                let reach = e.blend + avoidance.hold;
                e.shift > 0.0
                    && center.delta_s(e.s_range.0, s) >= -reach
                    && center.delta_s(e.s_range.1, s) <= reach
            });
            if evading && avoidance.speed_cap > 0.0 {
                avoidance.speed_cap
            } else {
                f64::INFINITY
            }
        };
        self.speed = match friction_profile(&self.config, &path, &self.params, &cap) {
            Some(v) => Some(Arc::new(v)),
            None => base_speed.as_ref().map(|_| {
                Arc::new(
                    (0..path.len())
                        .map(|i| base_speed_at(base.s_at_point(i)))
                        .collect(),
                )
            }),
        };
        self.path = Arc::new(path);
        self.plan = plan;
    }

    /// The evasions planned by the last [`Self::avoid`], one per obstacle.
    pub fn plan(&self) -> &[Evasion] {
        &self.plan
    }

    /// The path being followed.
    pub fn path(&self) -> &ClosedPath {
        &self.path
    }

    /// The speed at each point of [`Self::path`], m/s, where the speed command follows a profile.
    pub fn speed_profile(&self) -> Option<&[f64]> {
        self.speed.as_deref().map(Vec::as_slice)
    }

    /// Forgets the position on the path (call at every episode reset).
    pub fn reset(&mut self) {
        self.hint = None;
    }

    /// The lookahead distance at speed `v` (m/s), m.
    pub fn lookahead(&self, v: f64) -> f64 {
        match self.config.lookahead {
            Lookahead::Fixed(l) => l,
            Lookahead::SpeedScaled {
                base,
                gain,
                min,
                max,
            } => (base + gain * v.abs()).clamp(min, max),
        }
    }

    /// The command for `state`: steering towards the path point one lookahead ahead of the rear
    /// axle's projection, `atan(2·L·sin α / l_d)`, and the configured speed.
    pub fn act(&mut self, params: &VehicleParams, state: &VehicleState) -> Action {
        let heading = DVec2::from_angle(state.yaw);
        let rear = DVec2::new(state.x, state.y) - heading * params.lr;
        let f = match self.hint {
            Some(h) => self.path.project_near(rear, h, 16),
            None => self.path.project(rear),
        };
        self.hint = Some(f.segment);
        let lookahead = self.lookahead(state.v) + self.lookahead_error_gain * f.d.abs();
        let target = self.path.point_at(f.s + lookahead);
        let to_target = target - rear;
        let alpha = heading.perp_dot(to_target).atan2(heading.dot(to_target));
        let steering =
            (2.0 * params.wheelbase() * alpha.sin() / to_target.length().max(1e-6)).atan();
        let speed = match (self.config.speed, &self.speed) {
            (ExpertSpeed::Fixed(v), _) => v,
            (ExpertSpeed::Profile { scale, max }, Some(profile)) => {
                (profile[f.segment] * scale).min(max)
            }
            (ExpertSpeed::Profile { max, .. }, None) => max,
            (
                ExpertSpeed::Friction {
                    max, mu_fraction, ..
                },
                Some(profile),
            ) => {
                // Also within the friction limit on the arc that this command steers (which
                // the profile does not know while the car merges onto the path).
                let (i, _) = self.path.locate(f.s + lookahead);
                let kappa = steering.clamp(params.s_min, params.s_max).tan() / params.wheelbase();
                let arc = (mu_fraction * params.mu * crate::speed_profile::G
                    / kappa.abs().max(1e-9))
                .sqrt();
                profile[f.segment].min(profile[i]).min(max).min(arc)
            }
            (ExpertSpeed::Friction { max, .. }, None) => max,
        };
        Action {
            steering: steering.clamp(params.s_min, params.s_max),
            speed,
        }
    }
}

/// The friction-limited profile over `path` when the speed command is `Friction`.
fn friction_profile(
    config: &ExpertConfig,
    path: &ClosedPath,
    params: &VehicleParams,
    cap: &dyn Fn(usize) -> f64,
) -> Option<Vec<f64>> {
    let ExpertSpeed::Friction {
        mu_fraction,
        max,
        brake,
    } = config.speed
    else {
        return None;
    };
    Some(crate::speed_profile::speed_profile_capped(
        path,
        params,
        mu_fraction * params.mu,
        max,
        brake,
        cap,
    ))
}

/// Whether every point of `raceline` is at least `margin` m inside the track edges.
fn keeps_margin(track: &Track, raceline: &ClosedPath, margin: f64) -> bool {
    raceline.points().iter().all(|&p| {
        let f = track.centerline.project(p);
        let (wr, wl) = track.widths_at(f.s);
        (-(wr - margin)..=wl - margin).contains(&f.d)
    })
}
