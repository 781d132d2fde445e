//! The avoidance planner of the expert: a Frenet-frame evasion of each static obstacle, in the
//! manner of ForzaETH's Spliner (race_stack, `spliner`): in the centerline's Frenet frame
//! (s along, d to the left), each obstacle gets a side and a lateral target that keeps
//! `clearance` between the car's side and the obstacle, and the followed path is shifted towards
//! that target with a quintic smoothstep (C², so that curvature stays continuous) over a blend
//! length that grows with the speed, held past the obstacle, and blended back out.
//! The friction-limited speed profile is then computed over the shifted path, so that the
//! evasion's curvature is taken at a speed the tires allow.

use glam::DVec2;
use serde::{Deserialize, Serialize};

use crate::error::{Result, SimError};
use crate::obstacle::Obstacle;
use crate::track::{ClosedPath, Track};

/// Avoidance settings (`expert.avoidance`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AvoidanceConfig {
    /// Least distance planned between the car's side and an obstacle's outline, m.
    pub clearance: f64,
    /// Least distance planned between the car's side and the track edge while evading, m.
    pub edge_clearance: f64,
    /// Blend length (in and out) = `clamp(v · blend_time, blend_min, blend_max)` with `v` the
    /// planned speed at the obstacle: s, m, m.
    pub blend_time: f64,
    /// Shortest blend, m.
    pub blend_min: f64,
    /// Longest blend, m.
    pub blend_max: f64,
    /// The full offset is held this far before and after the obstacle's outline, m (Pure
    /// Pursuit cuts the corners of a short plateau by about its lookahead).
    pub hold: f64,
    /// Speed cap where the path is moved for an obstacle (over its blends and hold), m/s; the
    /// friction-limited profile brakes for it beforehand. 0 = none (configs without the field).
    #[serde(default)]
    pub speed_cap: f64,
}

impl Default for AvoidanceConfig {
    /// The values of the shipped `configs/expert.ron`.
    fn default() -> Self {
        Self {
            clearance: 0.25,
            edge_clearance: 0.25,
            blend_time: 0.8,
            blend_min: 2.0,
            blend_max: 7.0,
            hold: 0.8,
            speed_cap: 0.0,
        }
    }
}

impl AvoidanceConfig {
    /// Whether these are the default values (which configs then leave out).
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// Checks ranges of values.
    ///
    /// # Errors
    /// [`SimError::ConfigValue`] naming the field.
    pub fn validate(&self) -> Result<()> {
        for (field, v) in [
            ("clearance", self.clearance),
            ("edge_clearance", self.edge_clearance),
            ("blend_time", self.blend_time),
            ("hold", self.hold),
            ("speed_cap", self.speed_cap),
        ] {
            if !(v >= 0.0 && v.is_finite()) {
                return Err(SimError::ConfigValue {
                    field: format!("expert.avoidance.{field}"),
                    message: format!("must be ≥ 0, found {v}"),
                });
            }
        }
        if !(self.blend_min > 0.0 && self.blend_max >= self.blend_min && self.blend_max.is_finite())
        {
            return Err(SimError::ConfigValue {
                field: "expert.avoidance.blend_min".into(),
                message: format!(
                    "needs 0 < blend_min ≤ blend_max, found {} and {}",
                    self.blend_min, self.blend_max
                ),
            });
        }
        Ok(())
    }
}

/// Which side the car passes an obstacle on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// With the obstacle on its right (d above it).
    Left,
    /// With the obstacle on its left (d below it).
    Right,
}

/// The plan for one obstacle: what a person reads to see why the expert turned.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evasion {
    /// The obstacle's id.
    pub obstacle: u32,
    /// The side the car passes on.
    pub side: Side,
    /// Centerline arc length of the obstacle's outline, start and end, m.
    pub s_range: (f64, f64),
    /// Planned lateral offset of the car's centre abeam the obstacle, m (left +).
    pub target_d: f64,
    /// Largest lateral move of the base path abeam the obstacle, m (≥ 0; 0 = the base path
    /// already clears it).
    pub shift: f64,
    /// Blend length in and out, m.
    pub blend: f64,
    /// Whether the target keeps the full `clearance` (false: the gap was narrower, and the car
    /// aims at the middle of the wider gap).
    pub full_clearance: bool,
}

/// A base path in the centerline's Frenet frame, computed once per track and path.
#[derive(Clone, Debug)]
pub struct FrenetPath {
    /// Centerline `(s, d)` of each path point, m.
    pub sd: Vec<(f64, f64)>,
}

impl FrenetPath {
    /// The centerline Frenet coordinates of every point of `path`.
    pub fn new(track: &Track, path: &ClosedPath) -> Self {
        let mut hint = None;
        let sd = path
            .points()
            .iter()
            .map(|&p| {
                let f = match hint {
                    Some(h) => track.centerline.project_near(p, h, 32),
                    None => track.centerline.project(p),
                };
                hint = Some(f.segment);
                (f.s, f.d)
            })
            .collect();
        Self { sd }
    }
}

/// `path` resampled about every `spacing` m along a Catmull–Rom spline through its points
/// (Catmull & Rom, 1974; C¹, through every point), so that the curvature of the fine points is
/// that of the curve rather than spikes at the vertices of a polyline.
pub fn resample_smooth(path: &ClosedPath, spacing: f64) -> ClosedPath {
    let p = path.points();
    let n = p.len();
    let mut out = Vec::with_capacity((path.length() / spacing) as usize + n);
    for i in 0..n {
        let (p0, p1, p2, p3) = (p[(i + n - 1) % n], p[i], p[(i + 1) % n], p[(i + 2) % n]);
        let m = (p1.distance(p2) / spacing).ceil().max(1.0) as usize;
        for k in 0..m {
            let t = k as f64 / m as f64;
            let (t2, t3) = (t * t, t * t * t);
            out.push(
                0.5 * (2.0 * p1
                    + (p2 - p0) * t
                    + (2.0 * p0 - 5.0 * p1 + 4.0 * p2 - p3) * t2
                    + (3.0 * p1 - p0 - 3.0 * p2 + p3) * t3),
            );
        }
    }
    ClosedPath::new(out).unwrap_or_else(|_| path.clone())
}

/// Quintic smoothstep `6x⁵ − 15x⁴ + 10x³` on `[0, 1]`: zero first and second derivatives at
/// both ends.
fn smoothstep(x: f64) -> f64 {
    let x = x.clamp(0.0, 1.0);
    x * x * x * (x * (6.0 * x - 15.0) + 10.0)
}

/// One side of an obstacle as a candidate: the target offset, whether it keeps the full
/// clearance within the track, and the largest move of the base path it asks.
#[derive(Clone, Copy, Debug)]
struct Candidate {
    target_d: f64,
    full_clearance: bool,
    shift: f64,
}

/// The evasion path: `base` (with its centerline coordinates `frenet` and planned speed
/// `speed` at each point, m/s) moved, around each of the `obstacles`, towards the chosen target
/// offset wherever it lies on the wrong side of it, with the blend weight, for a car of half
/// width `half_width` (m) that can turn at most `max_curvature` (1/m). Each obstacle is passed
/// on the side that moves the base path least, unless that bends the path beyond half the
/// car's curvature limit (an inside line through a hairpin) and the other side does not.
/// Opposite passes in a row get blends short enough not to overlap. The obstacles named in
/// `forced` are passed on the side given there. Returns the moved points and one [`Evasion`]
/// per obstacle.
#[allow(clippy::too_many_arguments)]
pub fn plan(
    track: &Track,
    base: &ClosedPath,
    frenet: &FrenetPath,
    speed: &dyn Fn(usize) -> f64,
    obstacles: &[Obstacle],
    forced: &[(u32, Side)],
    half_width: f64,
    max_curvature: f64,
    config: &AvoidanceConfig,
) -> (Vec<DVec2>, Vec<Evasion>) {
    let center = &track.centerline;
    let forced_side = |id: u32| forced.iter().find(|(o, _)| *o == id).map(|(_, side)| *side);
    // Each obstacle's chosen evasion with the other side as a candidate, in the order of s.
    let mut plans: Vec<(Evasion, Candidate)> = obstacles
        .iter()
        .map(|o| {
            let (mut e, mut other) = evade(track, frenet, speed, o, half_width, config);
            if forced_side(o.id).is_some_and(|side| side != e.side) {
                flip(&mut e, &mut other);
            }
            (e, other)
        })
        .collect();
    plans.sort_by(|a, b| a.0.s_range.0.total_cmp(&b.0.s_range.0));
    let chosen = |plans: &[(Evasion, Candidate)]| -> Vec<Evasion> {
        plans.iter().map(|(e, _)| e.clone()).collect()
    };
    // The largest |curvature| of `points` within reach of each evasion, 1/m.
    let bends = |points: &[DVec2], evasions: &[Evasion]| -> Vec<f64> {
        let Ok(path) = ClosedPath::new(points.iter().copied()) else {
            return vec![f64::INFINITY; evasions.len()];
        };
        evasions
            .iter()
            .map(|e| {
                (0..path.len())
                    .filter(|&i| {
                        let s = frenet.sd[i].0;
                        center.delta_s(e.s_range.0, s) >= -(e.blend + config.hold)
                            && center.delta_s(e.s_range.1, s) <= e.blend + config.hold
                    })
                    .map(|i| path.curvature_at(path.s_at_point(i)).abs())
                    .fold(0.0, f64::max)
            })
            .collect()
    };
    let mut evasions = chosen(&plans);
    let mut points = moved(track, base, frenet, &evasions, half_width, config);
    let limit = 0.5 * max_curvature;
    let before = bends(&points, &evasions);
    if before.iter().any(|&b| b > limit) {
        // Try the other side where the path bends too much, and keep it where it bends less.
        let mut trial = plans.clone();
        for ((e, other), &b) in trial.iter_mut().zip(&before) {
            if b > limit
                && e.shift > 0.0
                && other.full_clearance
                && forced_side(e.obstacle).is_none()
            {
                flip(e, other);
            }
        }
        let tried = chosen(&trial);
        let after = bends(
            &moved(track, base, frenet, &tried, half_width, config),
            &tried,
        );
        for (k, (plan, tried)) in plans.iter_mut().zip(trial).enumerate() {
            if tried.0.side != plan.0.side && after[k] < before[k] {
                *plan = tried;
            }
        }
        evasions = chosen(&plans);
        points = moved(track, base, frenet, &evasions, half_width, config);
    }
    evasions.sort_by_key(|e| e.obstacle);
    (points, evasions)
}

/// Swaps `e` to the other side, whose target is `other`; `other` becomes the side left.
fn flip(e: &mut Evasion, other: &mut Candidate) {
    e.side = match e.side {
        Side::Left => Side::Right,
        Side::Right => Side::Left,
    };
    std::mem::swap(&mut e.target_d, &mut other.target_d);
    std::mem::swap(&mut e.full_clearance, &mut other.full_clearance);
    std::mem::swap(&mut e.shift, &mut other.shift);
}

/// The preferred evasion of `o`, and the other side as a candidate.
fn evade(
    track: &Track,
    frenet: &FrenetPath,
    speed: &dyn Fn(usize) -> f64,
    o: &Obstacle,
    half_width: f64,
    config: &AvoidanceConfig,
) -> (Evasion, Candidate) {
    let center = &track.centerline;
    let mid = center.project(o.center());
    let outline = o.outline();
    let (mut s_lo, mut s_hi, mut d_lo, mut d_hi) = (0f64, 0f64, f64::MAX, f64::MIN);
    let (mut left_edge, mut right_edge) = (f64::MAX, f64::MAX);
    for p in outline {
        let f = center.project_near(p, mid.segment, 16);
        let ds = center.delta_s(mid.s, f.s);
        (s_lo, s_hi) = (s_lo.min(ds), s_hi.max(ds));
        (d_lo, d_hi) = (d_lo.min(f.d), d_hi.max(f.d));
        let (wr, wl) = track.widths_at(f.s);
        (left_edge, right_edge) = (left_edge.min(wl), right_edge.min(wr));
    }
    let (s_lo, s_hi) = (mid.s + s_lo, mid.s + s_hi);
    // The base path's lateral extent abeam the obstacle (with the hold).
    let (mut base_lo, mut base_hi, mut nearest) = (f64::MAX, f64::MIN, (f64::MAX, 0usize));
    for (i, &(s, d)) in frenet.sd.iter().enumerate() {
        let ds = center.delta_s(s_lo, s);
        if ds >= -config.hold && ds <= s_hi - s_lo + config.hold {
            (base_lo, base_hi) = (base_lo.min(d), base_hi.max(d));
        }
        let dm = center.delta_s(mid.s, s).abs();
        if dm < nearest.0 {
            nearest = (dm, i);
        }
    }
    if base_lo > base_hi {
        let d = frenet.sd[nearest.1].1;
        (base_lo, base_hi) = (d, d);
    }
    let reach = half_width + config.clearance;
    let edge = half_width + config.edge_clearance;
    let left = {
        let target = d_hi + reach;
        let full = target <= left_edge - edge;
        let target_d = if full {
            target
        } else {
            0.5 * (d_hi + left_edge)
        };
        Candidate {
            target_d,
            full_clearance: full,
            shift: (target_d - base_lo).max(0.0),
        }
    };
    let right = {
        let target = d_lo - reach;
        let full = target >= -right_edge + edge;
        let target_d = if full {
            target
        } else {
            0.5 * (d_lo - right_edge)
        };
        Candidate {
            target_d,
            full_clearance: full,
            shift: (base_hi - target_d).max(0.0),
        }
    };
    let left_first = match (left.full_clearance, right.full_clearance) {
        (true, false) => true,
        (false, true) => false,
        (true, true) => left.shift <= right.shift,
        (false, false) => left_edge - d_hi >= d_lo + right_edge,
    };
    let (side, chosen, other) = if left_first {
        (Side::Left, left, right)
    } else {
        (Side::Right, right, left)
    };
    let v = speed(nearest.1);
    let evasion = Evasion {
        obstacle: o.id,
        side,
        s_range: (center.wrap_s(s_lo), center.wrap_s(s_hi)),
        target_d: chosen.target_d,
        shift: chosen.shift,
        blend: (v * config.blend_time).clamp(config.blend_min, config.blend_max),
        full_clearance: chosen.full_clearance,
    };
    (evasion, other)
}

/// `base` moved for `evasions` (sorted by `s_range.0`): opposite passes in a row first get
/// blends that fit between them (at least 1 m each).
fn moved(
    track: &Track,
    base: &ClosedPath,
    frenet: &FrenetPath,
    evasions: &[Evasion],
    half_width: f64,
    config: &AvoidanceConfig,
) -> Vec<DVec2> {
    let center = &track.centerline;
    let mut blends: Vec<f64> = evasions.iter().map(|e| e.blend).collect();
    let n = evasions.len();
    for k in 0..n {
        let (a, b) = (&evasions[k], &evasions[(k + 1) % n]);
        if n < 2 || a.side == b.side || a.shift == 0.0 || b.shift == 0.0 {
            continue;
        }
        let room = center.delta_s(a.s_range.1, b.s_range.0) - 2.0 * config.hold;
        if blends[k] + blends[(k + 1) % n] > room {
            let fit = (0.5 * room).max(1.0);
            blends[k] = blends[k].min(fit);
            blends[(k + 1) % n] = blends[(k + 1) % n].min(fit);
        }
    }
    (0..base.len())
        .map(|i| {
            let (s, d) = frenet.sd[i];
            // The most that the passes near `s` ask towards each side: blend weight × how far
            // the base path lies on the wrong side of the target.
            let (mut up, mut down) = (0f64, 0f64);
            for (e, &blend) in evasions.iter().zip(&blends) {
                let before = center.delta_s(s, e.s_range.0) - config.hold;
                let after = center.delta_s(e.s_range.1, s) - config.hold;
                let w = if before > 0.0 {
                    smoothstep(1.0 - before / blend)
                } else if after > 0.0 {
                    smoothstep(1.0 - after / blend)
                } else {
                    1.0
                };
                match e.side {
                    Side::Left => up = up.max(w * (e.target_d - d).max(0.0)),
                    Side::Right => down = down.max(w * (d - e.target_d).max(0.0)),
                }
            }
            let (wr, wl) = track.widths_at(s);
            let limit_hi = (wl - half_width - config.edge_clearance).max(d);
            let limit_lo = (-wr + half_width + config.edge_clearance).min(d);
            let shifted = (d + up - down).clamp(limit_lo, limit_hi);
            let normal = DVec2::from_angle(center.heading_at(s)).perp();
            base.points()[i] + normal * (shifted - d)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::obstacle::Shape;

    #[test]
    fn smoothstep_is_c2_at_its_ends() {
        assert_eq!(smoothstep(0.0), 0.0);
        assert_eq!(smoothstep(1.0), 1.0);
        assert_eq!(smoothstep(0.5), 0.5);
        let h = 1e-4;
        let d2 = |x: f64| (smoothstep(x + h) - 2.0 * smoothstep(x) + smoothstep(x - h)) / (h * h);
        assert!(d2(h).abs() < 1e-2 && d2(1.0 - h).abs() < 1e-2);
    }

    #[test]
    fn the_plan_passes_an_obstacle_with_the_clearance() {
        let track = Track::load("Spa").unwrap();
        let base = track.centerline.clone();
        let frenet = FrenetPath::new(&track, &base);
        let s = 40.0;
        let p = base.point_at(s);
        let normal = DVec2::from_angle(base.heading_at(s)).perp();
        for (d, want) in [(0.3, Side::Right), (-0.3, Side::Left)] {
            let c = p + normal * d;
            let o = Obstacle {
                id: 4,
                x: c.x,
                y: c.y,
                yaw: base.heading_at(s),
                shape: Shape::Box {
                    length: 0.58,
                    width: 0.31,
                },
            };
            let config = AvoidanceConfig::default();
            let (points, plan) = plan(
                &track,
                &base,
                &frenet,
                &|_| 5.0,
                &[o],
                &[],
                0.155,
                1.35,
                &config,
            );
            assert_eq!(plan.len(), 1);
            assert_eq!(plan[0].side, want, "obstacle at d = {d}");
            assert!(plan[0].full_clearance);
            let path = ClosedPath::new(points).unwrap();
            // Abeam the obstacle the path keeps half the car's width plus the clearance.
            let gap = o.distance_to_rect(
                path.point_at(path.project(o.center()).s),
                o.yaw,
                DVec2::new(0.0, 0.155),
            );
            assert!(gap >= config.clearance - 0.01, "gap {gap}");
            // Far from it, the path is the base path.
            let far = path.point_at(path.project(base.point_at(s + 20.0)).s);
            assert!(far.distance(base.point_at(s + 20.0)) < 1e-6);
        }
    }
}
