//! A closed polyline with arc length: the centerline or the raceline of a track.

use glam::DVec2;

/// Frenet coordinates of a point relative to a [`ClosedPath`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Frenet {
    /// Arc length of the closest path point, m, in `[0, length)`.
    pub s: f64,
    /// Signed lateral offset, m: positive to the left of the driving direction (REP-103).
    pub d: f64,
    /// Index of the closest segment (from point `segment` to point `segment + 1`).
    pub segment: usize,
}

/// A closed polyline (the last point connects back to the first) with cumulative arc length.
#[derive(Clone, Debug)]
pub struct ClosedPath {
    points: Vec<DVec2>,
    /// `s[i]` is the arc length at point `i`; `s[n]` is the total length.
    s: Vec<f64>,
    /// Unit direction of segment `i`.
    tangent: Vec<DVec2>,
    seg_len: Vec<f64>,
    /// Signed curvature at each point (1/m, positive = left turn), from the circle through its neighbours.
    curvature: Vec<f64>,
}

impl ClosedPath {
    /// Builds a path from at least 3 points. Consecutive duplicate points are dropped.
    ///
    /// # Errors
    /// A message if fewer than 3 distinct points remain.
    pub fn new(points: impl IntoIterator<Item = DVec2>) -> Result<Self, String> {
        let mut pts: Vec<DVec2> = Vec::new();
        for p in points {
            if pts.last().is_none_or(|q: &DVec2| q.distance(p) > 1e-9) {
                pts.push(p);
            }
        }
        while pts.len() > 1 && pts[0].distance(*pts.last().unwrap()) <= 1e-9 {
            pts.pop();
        }
        let n = pts.len();
        if n < 3 {
            return Err(format!(
                "a closed path needs at least 3 distinct points, found {n}"
            ));
        }
        let mut s = Vec::with_capacity(n + 1);
        let mut tangent = Vec::with_capacity(n);
        let mut seg_len = Vec::with_capacity(n);
        s.push(0.0);
        for i in 0..n {
            let e = pts[(i + 1) % n] - pts[i];
            let l = e.length();
            seg_len.push(l);
            tangent.push(e / l);
            s.push(s[i] + l);
        }
        let curvature = (0..n)
            .map(|i| menger_curvature(pts[(i + n - 1) % n], pts[i], pts[(i + 1) % n]))
            .collect();
        Ok(Self {
            points: pts,
            s,
            tangent,
            seg_len,
            curvature,
        })
    }

    /// The points, without the closing repeat.
    pub fn points(&self) -> &[DVec2] {
        &self.points
    }

    /// Number of points (= number of segments).
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// Always false: a path has at least 3 points.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// Total length of the loop, m.
    pub fn length(&self) -> f64 {
        self.s[self.points.len()]
    }

    /// Arc length at point `i`, m.
    pub fn s_at_point(&self, i: usize) -> f64 {
        self.s[i]
    }

    /// Unit direction of segment `i`.
    pub fn segment_tangent(&self, i: usize) -> DVec2 {
        self.tangent[i]
    }

    /// Wraps an arc length into `[0, length)`.
    pub fn wrap_s(&self, s: f64) -> f64 {
        s.rem_euclid(self.length())
    }

    /// Signed arc-length difference `to - from`, wrapped into `[-length/2, length/2)`, m.
    pub fn delta_s(&self, from: f64, to: f64) -> f64 {
        let l = self.length();
        (to - from + 0.5 * l).rem_euclid(l) - 0.5 * l
    }

    /// The segment that contains arc length `s` (wrapped) and the fraction along it in `[0, 1)`.
    pub fn locate(&self, s: f64) -> (usize, f64) {
        let s = self.wrap_s(s);
        let n = self.points.len();
        let i = self.s[..n].partition_point(|&si| si <= s).saturating_sub(1);
        (i, ((s - self.s[i]) / self.seg_len[i]).clamp(0.0, 1.0))
    }

    /// Position at arc length `s`, m.
    pub fn point_at(&self, s: f64) -> DVec2 {
        let (i, u) = self.locate(s);
        self.points[i] + self.tangent[i] * (u * self.seg_len[i])
    }

    /// Heading at arc length `s`, rad in `(-pi, pi]`, counter-clockwise from +x.
    /// Blends the directions of neighbouring segments so that it is continuous in `s`.
    pub fn heading_at(&self, s: f64) -> f64 {
        let (i, u) = self.locate(s);
        let n = self.points.len();
        let at_vertex = |k: usize| {
            (self.tangent[(k + n - 1) % n] + self.tangent[k]).normalize_or(self.tangent[k])
        };
        let t = at_vertex(i).lerp(at_vertex((i + 1) % n), u);
        t.y.atan2(t.x)
    }

    /// Signed curvature at arc length `s`, 1/m (positive = left turn), interpolated between points.
    pub fn curvature_at(&self, s: f64) -> f64 {
        let (i, u) = self.locate(s);
        let n = self.points.len();
        self.curvature[i] * (1.0 - u) + self.curvature[(i + 1) % n] * u
    }

    fn project_segment(&self, i: usize, p: DVec2) -> (f64, Frenet) {
        let a = self.points[i];
        let t = self.tangent[i];
        let along = (p - a).dot(t).clamp(0.0, self.seg_len[i]);
        let q = a + t * along;
        let dist2 = p.distance_squared(q);
        let side = t.perp_dot(p - a);
        let d = dist2.sqrt().copysign(if side == 0.0 { 1.0 } else { side });
        (
            dist2,
            Frenet {
                s: self.s[i] + along,
                d,
                segment: i,
            },
        )
    }

    /// Closest point of the whole path (exhaustive search, O(n)).
    pub fn project(&self, p: DVec2) -> Frenet {
        (0..self.points.len())
            .map(|i| self.project_segment(i, p))
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, f)| f)
            .expect("a path has segments")
    }

    /// Closest point among the segments within `window` segments of `hint`, for tracking a moving car:
    /// it stays on the same leg where two legs of the track come close (Montreal's hairpin).
    /// Falls back to [`Self::project`] if the best candidate lies on the window's edge.
    pub fn project_near(&self, p: DVec2, hint: usize, window: usize) -> Frenet {
        let n = self.points.len();
        if 2 * window + 1 >= n {
            return self.project(p);
        }
        let mut best = (f64::INFINITY, None, 0);
        for k in 0..=2 * window {
            let i = (hint + n - window + k) % n;
            let (d2, f) = self.project_segment(i, p);
            if d2 < best.0 {
                best = (d2, Some(f), k);
            }
        }
        match best {
            (_, Some(f), k) if k != 0 && k != 2 * window => f,
            _ => self.project(p),
        }
    }
}

/// Signed curvature of the circle through `a`, `b`, `c` (1/m, positive for a left turn).
fn menger_curvature(a: DVec2, b: DVec2, c: DVec2) -> f64 {
    let cross = (b - a).perp_dot(c - b);
    let denom = a.distance(b) * b.distance(c) * a.distance(c);
    if denom == 0.0 {
        0.0
    } else {
        2.0 * cross / denom
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::{PI, TAU};

    fn circle(r: f64, n: usize) -> ClosedPath {
        ClosedPath::new((0..n).map(|i| {
            let a = TAU * i as f64 / n as f64;
            DVec2::new(r * a.cos(), r * a.sin())
        }))
        .unwrap()
    }

    #[test]
    fn arc_length_heading_and_curvature_of_a_circle() {
        let c = circle(5.0, 2000);
        assert!((c.length() - TAU * 5.0).abs() < 1e-3);
        assert!((c.curvature_at(3.0) - 0.2).abs() < 1e-4);
        // Counter-clockwise circle: at angle 0 the heading is +pi/2.
        assert!((c.heading_at(0.0) - PI / 2.0).abs() < 1e-2);
    }

    #[test]
    fn frenet_round_trip() {
        // On a fine circle: exact outwards; inwards within the polyline's chord effect.
        let c = circle(5.0, 720);
        for &(s, d) in &[
            (0.3, -0.5),
            (10.0, -0.8),
            (25.0, 1.0),
            (31.0, 0.0),
            (12.0, 0.6),
        ] {
            let (i, _) = c.locate(s);
            let p = c.point_at(s) + c.segment_tangent(i).perp() * d;
            let f = c.project(p);
            let tol = if d > 0.0 { 1e-2 } else { 1e-9 };
            assert!(c.delta_s(s, f.s).abs() < tol, "s {s} -> {}", f.s);
            assert!((f.d - d).abs() < tol * 0.1, "d {d} -> {}", f.d);
            assert_eq!(f, c.project_near(p, (i + 3) % c.len(), 10));
        }
    }

    #[test]
    fn duplicates_are_dropped_and_delta_s_wraps() {
        let p = ClosedPath::new([
            DVec2::ZERO,
            DVec2::ZERO,
            DVec2::X,
            DVec2::ONE,
            DVec2::Y,
            DVec2::ZERO,
        ])
        .unwrap();
        assert_eq!(p.len(), 4);
        assert_eq!(p.length(), 4.0);
        assert!((p.delta_s(3.9, 0.1) - 0.2).abs() < 1e-12);
        assert!((p.delta_s(0.1, 3.9) + 0.2).abs() < 1e-12);
        assert!(ClosedPath::new([DVec2::ZERO, DVec2::X]).is_err());
    }
}
