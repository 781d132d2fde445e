//! Track walls: the boundary of the union of the corridor around the centerline.
//!
//! The corridor is the union of one quadrilateral per centerline segment (offset by each end's
//! left and right width) and one disc per point (left half of radius `w_left`, right half of
//! radius `w_right`): the Minkowski buffer of the polyline. Building it as a union (with `geo`'s
//! boolean ops, on `i_overlay`) rather than by offsetting the centerline keeps the walls correct
//! where a corner is tighter than the half-width (the naive offset folds there).
//!
//! Where two sections that are not one bend of the track come closer than their widths (the legs
//! of Montreal's hairpin, 1.91 m apart with 2.2 m of width each), [`separate_sections`] first
//! narrows each to its side of the gap, so that a wall runs between them, as in the occupancy
//! maps of f1tenth_racetracks (`Montreal_map.png`) that f1tenth_gym drives on, rather than one
//! merged corridor in which a car can turn into the other leg.

use geo::{Area, Coord, LineString, MultiPolygon, Orient, Polygon, Simplify, orient::Direction};
use glam::DVec2;

use super::ClosedPath;

/// Walls are simplified (Ramer–Douglas–Peucker) within this distance, m: fewer, longer segments
/// for the LiDAR and the footprint test, as exact as the 1 mm disc approximation.
const SIMPLIFY_TOLERANCE: f64 = 1e-3;
/// Rings smaller than this (m²) are numerical debris of the union and are dropped.
const MIN_RING_AREA: f64 = 1e-3;
/// Points of each vertex disc: 5° steps, within 1.1 m × (1 − cos 2.5°) ≈ 1 mm of a true circle.
const DISC_POINTS: usize = 72;

/// Thickness of the wall that [`separate_sections`] leaves between two sections, m (the
/// f1tenth_racetracks maps draw walls 2–3 pixels of 0.071 m thick).
pub const SEPARATING_WALL: f64 = 0.1;

/// The widths `(w_right, w_left)` (m) narrowed where two sections overlap: for each point i and
/// each point j farther along the track than a half turn at the corridor's half-width
/// (`π·max(wᵢ, wⱼ)`, so that a tight bend is not split from itself), the half of the corridor
/// at i that faces j reaches at most to `(|pᵢ − pⱼ| − SEPARATING_WALL) / 2`. Widths of
/// sections that keep their distance are returned unchanged (every shipped track but Montreal).
pub fn separate_sections(
    centerline: &ClosedPath,
    w_right: &[f64],
    w_left: &[f64],
) -> (Vec<f64>, Vec<f64>) {
    let points = centerline.points();
    let n = points.len();
    let (mut right, mut left) = (w_right.to_vec(), w_left.to_vec());
    for i in 0..n {
        let normal = (points[(i + 1) % n] - points[(i + n - 1) % n])
            .normalize_or_zero()
            .perp();
        let wi = w_right[i].max(w_left[i]);
        for j in 0..n {
            let wj = w_right[j].max(w_left[j]);
            let reach = wi + wj;
            let v = points[j] - points[i];
            if v.length_squared() >= reach * reach {
                continue;
            }
            let along = centerline.delta_s(centerline.s_at_point(i), centerline.s_at_point(j));
            if along.abs() <= std::f64::consts::PI * wi.max(wj) {
                continue;
            }
            let half = ((v.length() - SEPARATING_WALL) / 2.0).max(0.0);
            let side = if v.dot(normal) >= 0.0 {
                &mut left
            } else {
                &mut right
            };
            side[i] = side[i].min(half);
        }
    }
    (right, left)
}

/// Closed wall rings (no repeated last point), oriented so that the drivable corridor lies to the
/// **left** of every directed edge: the outer boundary counter-clockwise, islands clockwise.
pub fn corridor_rings(points: &[DVec2], w_right: &[f64], w_left: &[f64]) -> Vec<Vec<DVec2>> {
    let n = points.len();
    let normal = |i: usize| (points[(i + 1) % n] - points[i]).normalize().perp();
    let mut pieces: Vec<Polygon> = Vec::with_capacity(3 * n);
    for i in 0..n {
        let j = (i + 1) % n;
        let nl = normal(i);
        let quad = [
            points[i] - nl * w_right[i],
            points[j] - nl * w_right[j],
            points[j] + nl * w_left[j],
            points[i] + nl * w_left[i],
        ];
        pieces.push(ccw_polygon(&quad));
        let t = (points[j] - points[(i + n - 1) % n]).normalize_or(nl.perp());
        let start = t.y.atan2(t.x);
        let half = DISC_POINTS / 2;
        let disc: Vec<DVec2> = (0..DISC_POINTS)
            .map(|k| {
                let a = start + std::f64::consts::TAU * k as f64 / DISC_POINTS as f64;
                let w = if k <= half { w_left[i] } else { w_right[i] };
                points[i] + DVec2::from_angle(a) * w
            })
            .collect();
        pieces.push(ccw_polygon(&disc));
    }
    let union: MultiPolygon = geo::unary_union(&pieces);
    let mut rings = Vec::new();
    for poly in union.orient(Direction::Default) {
        if poly.unsigned_area() < MIN_RING_AREA {
            continue;
        }
        rings.push(ring_points(poly.exterior()));
        for hole in poly.interiors() {
            if Polygon::new(hole.clone(), vec![]).unsigned_area() >= MIN_RING_AREA {
                rings.push(ring_points(hole));
            }
        }
    }
    rings
}

fn ccw_polygon(pts: &[DVec2]) -> Polygon {
    let ring: LineString = pts.iter().map(|p| Coord { x: p.x, y: p.y }).collect();
    Polygon::new(ring, vec![]).orient(Direction::Default)
}

fn ring_points(ring: &LineString) -> Vec<DVec2> {
    let ring = ring.simplify(SIMPLIFY_TOLERANCE);
    let mut pts: Vec<DVec2> = ring.coords().map(|c| DVec2::new(c.x, c.y)).collect();
    if pts.len() > 1 && pts.first() == pts.last() {
        pts.pop();
    }
    pts
}

/// Signed area of a ring, m² (positive when counter-clockwise).
pub fn signed_area(ring: &[DVec2]) -> f64 {
    let n = ring.len();
    0.5 * (0..n)
        .map(|i| ring[i].perp_dot(ring[(i + 1) % n]))
        .sum::<f64>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn square_loop_gives_outer_and_inner_wall() {
        // A 10 m square loop driven counter-clockwise, 1 m each side.
        let mut pts = Vec::new();
        for t in 0..10 {
            pts.push(DVec2::new(t as f64, 0.0));
        }
        for t in 0..10 {
            pts.push(DVec2::new(10.0, t as f64));
        }
        for t in 0..10 {
            pts.push(DVec2::new(10.0 - t as f64, 10.0));
        }
        for t in 0..10 {
            pts.push(DVec2::new(0.0, 10.0 - t as f64));
        }
        let w = vec![1.0; pts.len()];
        let rings = corridor_rings(&pts, &w, &w);
        assert_eq!(rings.len(), 2, "outer and inner wall");
        let outer = signed_area(&rings[0]);
        let inner = signed_area(&rings[1]);
        assert!(
            outer > 0.0 && inner < 0.0,
            "orientation: outer {outer} inner {inner}"
        );
        // Inner wall is the 8 m square, outer the 12 m square with rounded corners.
        assert!((inner + 64.0).abs() < 1e-6, "inner {inner}");
        let rounded = 144.0 - (4.0 - std::f64::consts::PI);
        assert!((outer - rounded).abs() < 0.01, "outer {outer} vs {rounded}");
    }
}
