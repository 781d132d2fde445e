//! Track walls: the boundary of the union of the corridor around the centerline.
//!
//! The corridor is the union of one quadrilateral per centerline segment (offset by each end's
//! left and right width) and one disc per point (left half of radius `w_left`, right half of
//! radius `w_right`): the Minkowski buffer of the polyline. Building it as a union (with `geo`'s
//! boolean ops, on `i_overlay`) rather than by offsetting the centerline keeps the walls correct
//! where a corner is tighter than the half-width (the naive offset folds there) and where two
//! sections overlap (the Montreal hairpin, which leaves a small island between its legs).

use geo::{Area, Coord, LineString, MultiPolygon, Orient, Polygon, Simplify, orient::Direction};
use glam::DVec2;

/// Walls are simplified (Ramer–Douglas–Peucker) within this distance, m: fewer, longer segments
/// for the LiDAR and the footprint test, as exact as the 1 mm disc approximation.
const SIMPLIFY_TOLERANCE: f64 = 1e-3;
/// Rings smaller than this (m²) are numerical debris of the union and are dropped.
const MIN_RING_AREA: f64 = 1e-3;
/// Points of each vertex disc: 5° steps, within 1.1 m × (1 − cos 2.5°) ≈ 1 mm of a true circle.
const DISC_POINTS: usize = 72;

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
