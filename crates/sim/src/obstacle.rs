//! Static obstacles: boxes of any size and yaw, and circles, with the exact geometry that the
//! LiDAR, the collision test and the clearance measurement use.
//!
//! Every test here is analytic in f64: ray–box by the slab method (Kay & Kajiya, "Ray
//! Tracing Complex Scenes", SIGGRAPH 1986), ray–circle by the quadratic, and box–rectangle
//! distance and contact from the walls' exact segment–box distance in the rectangle's frame.

use glam::DVec2;
use serde::{Deserialize, Serialize};

use crate::track::segment_box_distance;

/// The footprint of a parked F1TENTH car, m: length along its yaw, width across (the issue's
/// "parked-car-sized" preset; the vehicle's own 0.58 × 0.31 m).
pub const PARKED_CAR: DVec2 = DVec2::new(0.58, 0.31);

/// The shape of an obstacle, in its own frame (x along its yaw).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Shape {
    /// A rectangle: `length` along the yaw and `width` across, m.
    Box {
        /// Extent along the yaw, m.
        length: f64,
        /// Extent across, m.
        width: f64,
    },
    /// A disc of `radius`, m.
    Circle {
        /// Radius, m.
        radius: f64,
    },
}

/// A static obstacle: a [`Shape`] centred at (`x`, `y`) (m, world frame) with heading `yaw`
/// (rad, counter-clockwise from +x; irrelevant for circles). `id` is its index in the scenario,
/// named in `result.json` when the car hits it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Obstacle {
    /// Index in the episode's scenario.
    pub id: u32,
    /// Centre x, m.
    pub x: f64,
    /// Centre y, m.
    pub y: f64,
    /// Heading, rad.
    pub yaw: f64,
    /// Shape and size.
    pub shape: Shape,
}

impl Obstacle {
    /// The centre, m.
    pub fn center(&self) -> DVec2 {
        DVec2::new(self.x, self.y)
    }

    /// Radius of the smallest circle about the centre that holds the shape, m.
    pub fn bounding_radius(&self) -> f64 {
        match self.shape {
            Shape::Box { length, width } => 0.5 * length.hypot(width),
            Shape::Circle { radius } => radius,
        }
    }

    /// The four corners of a box, counter-clockwise (world frame, m); `None` for a circle.
    pub fn corners(&self) -> Option<[DVec2; 4]> {
        match self.shape {
            Shape::Box { length, width } => Some(self.box_corners(length, width)),
            Shape::Circle { .. } => None,
        }
    }

    /// The corners of a `length` × `width` box at this pose, counter-clockwise.
    fn box_corners(&self, length: f64, width: f64) -> [DVec2; 4] {
        let (f, l) = (
            DVec2::from_angle(self.yaw),
            DVec2::from_angle(self.yaw).perp(),
        );
        let (hx, hy) = (0.5 * length * f, 0.5 * width * l);
        let c = self.center();
        [c - hx - hy, c + hx - hy, c + hx + hy, c - hx + hy]
    }

    /// Points on the outline, m: a box's four corners, or eight points around a circle (for
    /// placing and planning in a path's frame).
    pub fn outline(&self) -> Vec<DVec2> {
        match self.corners() {
            Some(c) => c.to_vec(),
            None => (0..8)
                .map(|k| {
                    self.center()
                        + DVec2::from_angle(k as f64 * std::f64::consts::FRAC_PI_4)
                            * self.bounding_radius()
                })
                .collect(),
        }
    }

    /// Distance `t ≥ 0` (m) along the ray `origin + t·dir` (`dir` a unit vector) to the
    /// shape's boundary; 0 when `origin` is inside; infinity when the ray misses.
    pub fn ray(&self, origin: DVec2, dir: DVec2) -> f64 {
        let rel = origin - self.center();
        match self.shape {
            Shape::Circle { radius } => {
                let b = rel.dot(dir);
                let c = rel.length_squared() - radius * radius;
                if c <= 0.0 {
                    return 0.0;
                }
                let disc = b * b - c;
                if disc < 0.0 || b > 0.0 {
                    return f64::INFINITY;
                }
                -b - disc.sqrt()
            }
            Shape::Box { length, width } => {
                let rot = DVec2::from_angle(-self.yaw);
                ray_box(
                    rot.rotate(rel),
                    rot.rotate(dir),
                    DVec2::new(0.5 * length, 0.5 * width),
                )
            }
        }
    }

    /// Distance (m) between this obstacle and the rectangle centred at `center` (m) with heading
    /// `yaw` (rad) and half extents `half` (m, x along the heading): 0 when they touch or overlap.
    /// Computed in the rectangle's frame: for a box, the least distance of its edges to the
    /// rectangle (0 also when the box holds the rectangle's centre, i.e. wholly contains it).
    pub fn distance_to_rect(&self, center: DVec2, yaw: f64, half: DVec2) -> f64 {
        let rot = DVec2::from_angle(-yaw);
        let local = |p: DVec2| rot.rotate(p - center);
        match self.shape {
            Shape::Box { length, width } => {
                let inside = DVec2::from_angle(-self.yaw).rotate(center - self.center());
                if inside.x.abs() <= 0.5 * length && inside.y.abs() <= 0.5 * width {
                    return 0.0;
                }
                let corners = self.box_corners(length, width);
                (0..4)
                    .map(|k| {
                        segment_box_distance(
                            local(corners[k]),
                            local(corners[(k + 1) % 4]),
                            -half,
                            half,
                        )
                    })
                    .fold(f64::INFINITY, f64::min)
            }
            Shape::Circle { radius } => {
                let outside = (local(self.center()).abs() - half).max(DVec2::ZERO);
                (outside.length() - radius).max(0.0)
            }
        }
    }

    /// Whether the rectangle (as in [`Self::distance_to_rect`]) touches this obstacle.
    pub fn hits_rect(&self, center: DVec2, yaw: f64, half: DVec2) -> bool {
        let reach = self.bounding_radius() + half.length();
        center.distance_squared(self.center()) <= reach * reach
            && self.distance_to_rect(center, yaw, half) <= 0.0
    }
}

/// Slab test of the ray `o + t·d` against the axis-aligned box `[-half, half]`: the entry
/// distance, 0 from inside, infinity on a miss.
fn ray_box(o: DVec2, d: DVec2, half: DVec2) -> f64 {
    let (mut t0, mut t1) = (f64::NEG_INFINITY, f64::INFINITY);
    for (o, d, h) in [(o.x, d.x, half.x), (o.y, d.y, half.y)] {
        if d.abs() < 1e-300 {
            if o.abs() > h {
                return f64::INFINITY;
            }
            continue;
        }
        let (a, b) = ((-h - o) / d, (h - o) / d);
        t0 = t0.max(a.min(b));
        t1 = t1.min(a.max(b));
    }
    if t0 > t1 || t1 < 0.0 {
        f64::INFINITY
    } else {
        t0.max(0.0)
    }
}

/// The nearest obstacle hit along the unit ray `origin + t·dir` by brute force: `(t, id)`, or
/// `None` when every obstacle is missed. The reference of the LiDAR's obstacle pass.
pub fn brute_force_hit(obstacles: &[Obstacle], origin: DVec2, dir: DVec2) -> Option<(f64, u32)> {
    obstacles
        .iter()
        .map(|o| (o.ray(origin, dir), o.id))
        .filter(|(t, _)| t.is_finite())
        .min_by(|a, b| a.0.total_cmp(&b.0))
}

/// The first obstacle (lowest id) that the rectangle touches (`center` m, `yaw` rad, `half`
/// m as in [`Obstacle::distance_to_rect`]).
pub fn first_hit(obstacles: &[Obstacle], center: DVec2, yaw: f64, half: DVec2) -> Option<u32> {
    obstacles
        .iter()
        .find(|o| o.hits_rect(center, yaw, half))
        .map(|o| o.id)
}

/// Least distance from the rectangle to any obstacle, m (0 when touching), at most `max`
/// (obstacles farther than `max` from the centre are skipped).
pub fn clearance(obstacles: &[Obstacle], center: DVec2, yaw: f64, half: DVec2, max: f64) -> f64 {
    let mut best = max;
    for o in obstacles {
        let reach = best + o.bounding_radius() + half.length();
        if center.distance_squared(o.center()) <= reach * reach {
            best = best.min(o.distance_to_rect(center, yaw, half));
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boxed(x: f64, y: f64, yaw: f64, length: f64, width: f64) -> Obstacle {
        Obstacle {
            id: 0,
            x,
            y,
            yaw,
            shape: Shape::Box { length, width },
        }
    }

    fn circle(id: u32, x: f64, y: f64, radius: f64) -> Obstacle {
        Obstacle {
            id,
            x,
            y,
            yaw: 0.0,
            shape: Shape::Circle { radius },
        }
    }

    #[test]
    fn ray_hits_a_rotated_box_at_its_face() {
        // A 2 × 1 box at (5, 0) turned 90°: its near face (along x) is at x = 4.5.
        let o = boxed(5.0, 0.0, std::f64::consts::FRAC_PI_2, 2.0, 1.0);
        assert!((o.ray(DVec2::ZERO, DVec2::X) - 4.5).abs() < 1e-12);
        // 45° box (a diamond) with half-diagonal √2·0.5: the corner at x = 5 − 0.7071.
        let d = boxed(5.0, 0.0, std::f64::consts::FRAC_PI_4, 1.0, 1.0);
        assert!((d.ray(DVec2::ZERO, DVec2::X) - (5.0 - 0.5 * 2f64.sqrt())).abs() < 1e-12);
        // Misses: above it, pointing away, and parallel outside a slab.
        assert_eq!(o.ray(DVec2::new(0.0, 3.0), DVec2::X), f64::INFINITY);
        assert_eq!(o.ray(DVec2::ZERO, -DVec2::X), f64::INFINITY);
        assert_eq!(o.ray(DVec2::new(5.0, 0.2), DVec2::X), 0.0, "inside");
        // Oblique ray: against the 2-D segment test on the box's edges.
        let corners = o.corners().unwrap();
        for k in 0..100 {
            let a = -0.4 + 0.008 * k as f64;
            let dir = DVec2::from_angle(a);
            let mut want = f64::INFINITY;
            for e in 0..4 {
                let (p, q) = (corners[e], corners[(e + 1) % 4]);
                let seg = q - p;
                let den = dir.perp_dot(seg);
                if den.abs() < 1e-15 {
                    continue;
                }
                let (t, u) = (p.perp_dot(seg) / den, p.perp_dot(dir) / den);
                if t >= 0.0 && (0.0..=1.0).contains(&u) {
                    want = want.min(t);
                }
            }
            let got = o.ray(DVec2::ZERO, dir);
            assert!(
                (got - want).abs() < 1e-12 || (got.is_infinite() && want.is_infinite()),
                "angle {a}: {got} vs {want}"
            );
        }
    }

    #[test]
    fn ray_hits_a_circle_on_its_near_side() {
        let c = circle(3, 3.0, 1.0, 0.5);
        let dir = DVec2::new(3.0, 1.0).normalize();
        assert!((c.ray(DVec2::ZERO, dir) - (10f64.sqrt() - 0.5)).abs() < 1e-12);
        // Tangent ray at y = 1.5 touches at x = 3.
        assert!((c.ray(DVec2::new(0.0, 1.5), DVec2::X) - 3.0).abs() < 1e-6);
        assert_eq!(c.ray(DVec2::new(0.0, 1.51), DVec2::X), f64::INFINITY);
        assert_eq!(
            brute_force_hit(&[c], DVec2::ZERO, dir).map(|(_, id)| id),
            Some(3)
        );
    }

    #[test]
    fn rectangle_contact_and_distance_are_exact() {
        let half = DVec2::new(0.29, 0.155);
        let o = boxed(0.0, 0.0, 0.3, 0.58, 0.31);
        assert!(o.hits_rect(DVec2::new(0.5, 0.1), 0.0, half));
        // Side by side, parallel: the gap between the long sides.
        let p = boxed(0.0, 0.0, 0.0, 0.58, 0.31);
        let d = p.distance_to_rect(DVec2::new(0.0, 0.5), 0.0, half);
        assert!((d - (0.5 - 0.31)).abs() < 1e-12, "{d}");
        assert!(!p.hits_rect(DVec2::new(0.0, 0.5), 0.0, half));
        assert!(
            p.hits_rect(DVec2::new(0.0, 0.31), 0.0, half),
            "touching counts"
        );
        // Corner to corner on the diagonal.
        let far = DVec2::new(0.58 + 0.3, 0.31 + 0.4);
        let d = p.distance_to_rect(far, 0.0, half);
        assert!((d - 0.5).abs() < 1e-12, "{d}");
        // A rotated rectangle whose corner pokes into the box: SAT finds the overlap that the
        // bounding circles alone cannot decide.
        let yaw = std::f64::consts::FRAC_PI_4;
        let reach = 0.29 + half.length() * (yaw - half.y.atan2(half.x)).cos() - 0.01;
        assert!(p.hits_rect(DVec2::new(reach, 0.0), yaw, half));
        let circle = circle(1, 1.0, 0.0, 0.2);
        let d = circle.distance_to_rect(DVec2::ZERO, 0.0, half);
        assert!((d - (1.0 - 0.29 - 0.2)).abs() < 1e-12);
        assert_eq!(first_hit(&[circle, p], DVec2::ZERO, 0.0, half), Some(0));
        let c = clearance(&[circle], DVec2::ZERO, 0.0, half, 1.0);
        assert!((c - 0.51).abs() < 1e-12);
        assert_eq!(clearance(&[circle], DVec2::ZERO, 0.0, half, 0.3), 0.3);
    }
}
