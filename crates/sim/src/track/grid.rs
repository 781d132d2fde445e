//! A uniform grid over the wall segments: exact ray casts, footprint tests and the per-cell
//! "near lists" that let the LiDAR rasterise its closest walls in one sweep.

use glam::DVec2;

/// Side of a grid cell, m.
pub const CELL: f64 = 0.5;
/// Radius of a cell's near list, m: every wall segment within this distance of the cell.
pub const NEAR_RADIUS: f64 = 14.0;
/// The most cells a grid may have: 4 million cells of [`CELL`] cover about 1 km × 1 km, five
/// times the largest shipped circuit's extent, in a few hundred MB at most.
pub const MAX_CELLS: usize = 4_000_000;

/// A wall segment from `a` to `b`; the drivable side is on its left.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Segment {
    /// Start, m.
    pub a: DVec2,
    /// End, m.
    pub b: DVec2,
}

/// Compressed per-cell lists of segment indices.
#[derive(Clone, Debug, Default)]
struct Csr {
    start: Vec<u32>,
    items: Vec<u32>,
}

impl Csr {
    fn from_lists(lists: Vec<Vec<u32>>) -> Self {
        let mut start = Vec::with_capacity(lists.len() + 1);
        let mut items = Vec::new();
        start.push(0);
        for l in lists {
            items.extend(l);
            start.push(items.len() as u32);
        }
        Self { start, items }
    }

    fn get(&self, c: usize) -> &[u32] {
        &self.items[self.start[c] as usize..self.start[c + 1] as usize]
    }
}

/// Wall segments indexed by a uniform grid of [`CELL`]-sized cells.
#[derive(Clone, Debug)]
pub struct WallGrid {
    segments: Vec<Segment>,
    origin: DVec2,
    nx: usize,
    ny: usize,
    cells: Csr,
    near: Csr,
    near_ok: Vec<bool>,
}

impl WallGrid {
    /// Indexes the edges of `rings` (closed, drivable side on the left). Near lists are built for
    /// the cells that the discs `(centre, radius)` of `drivable` touch: where the sensor can be.
    ///
    /// # Errors
    /// A message when the walls span more than [`MAX_CELLS`] cells (or are not finite).
    pub fn new(rings: &[Vec<DVec2>], drivable: &[(DVec2, f64)]) -> Result<Self, String> {
        let segments: Vec<Segment> = rings
            .iter()
            .flat_map(|r| {
                (0..r.len()).map(move |i| Segment {
                    a: r[i],
                    b: r[(i + 1) % r.len()],
                })
            })
            .collect();
        let (mut lo, mut hi) = (DVec2::splat(f64::INFINITY), DVec2::splat(f64::NEG_INFINITY));
        for s in &segments {
            lo = lo.min(s.a.min(s.b));
            hi = hi.max(s.a.max(s.b));
        }
        for &(c, r) in drivable {
            lo = lo.min(c - r);
            hi = hi.max(c + r);
        }
        let origin = lo - DVec2::splat(CELL);
        let (fx, fy) = (
            ((hi.x - origin.x) / CELL).ceil() + 1.0,
            ((hi.y - origin.y) / CELL).ceil() + 1.0,
        );
        if !(fx * fy <= MAX_CELLS as f64) {
            return Err(format!(
                "the track spans {:.0} m × {:.0} m, more than the wall grid covers ({MAX_CELLS} \
                 cells of {CELL} m, about 1 km × 1 km); are the CSV's coordinates in metres?",
                hi.x - lo.x,
                hi.y - lo.y
            ));
        }
        let (nx, ny) = (fx as usize, fy as usize);
        let mut grid = Self {
            segments,
            origin,
            nx,
            ny,
            cells: Csr::default(),
            near: Csr::default(),
            near_ok: vec![false; nx * ny],
        };

        let mut cells = vec![Vec::new(); nx * ny];
        for (k, s) in grid.segments.iter().enumerate() {
            grid.for_cells_in(s.a.min(s.b), s.a.max(s.b), |c, cmin, cmax| {
                if segment_hits_box(s.a, s.b, cmin, cmax) {
                    cells[c].push(k as u32);
                }
            });
        }
        grid.cells = Csr::from_lists(cells);

        let mut near_ok = vec![false; nx * ny];
        for &(c, r) in drivable {
            grid.for_cells_in(c - r, c + r, |cell, _, _| near_ok[cell] = true);
        }
        let mut near = vec![Vec::new(); nx * ny];
        for (k, s) in grid.segments.iter().enumerate() {
            let pad = DVec2::splat(NEAR_RADIUS);
            grid.for_cells_in(s.a.min(s.b) - pad, s.a.max(s.b) + pad, |c, cmin, cmax| {
                if near_ok[c] && segment_box_distance(s.a, s.b, cmin, cmax) <= NEAR_RADIUS {
                    near[c].push(k as u32);
                }
            });
        }
        grid.near = Csr::from_lists(near);
        grid.near_ok = near_ok;
        Ok(grid)
    }

    /// All wall segments.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Index of the cell holding `p`, if inside the grid.
    pub fn cell_of(&self, p: DVec2) -> Option<usize> {
        let q = (p - self.origin) / CELL;
        (q.x >= 0.0 && q.y >= 0.0 && (q.x as usize) < self.nx && (q.y as usize) < self.ny)
            .then(|| q.y as usize * self.nx + q.x as usize)
    }

    /// The segments within [`NEAR_RADIUS`] of the cell holding `p` and that radius, or an empty
    /// list and radius 0 where no near list was built (far off the track).
    pub fn near(&self, p: DVec2) -> (&[u32], f64) {
        match self.cell_of(p) {
            Some(c) if self.near_ok[c] => (self.near.get(c), NEAR_RADIUS),
            _ => (&[], 0.0),
        }
    }

    /// Calls `f(cell, cell_min, cell_max)` for each cell overlapping the box `[lo, hi]`.
    fn for_cells_in(&self, lo: DVec2, hi: DVec2, mut f: impl FnMut(usize, DVec2, DVec2)) {
        let clamp = |v: f64, n: usize| (v.max(0.0) as usize).min(n - 1);
        let (x0, y0) = (
            clamp((lo.x - self.origin.x) / CELL, self.nx),
            clamp((lo.y - self.origin.y) / CELL, self.ny),
        );
        let (x1, y1) = (
            clamp((hi.x - self.origin.x) / CELL, self.nx),
            clamp((hi.y - self.origin.y) / CELL, self.ny),
        );
        for iy in y0..=y1 {
            for ix in x0..=x1 {
                let cmin = self.origin + DVec2::new(ix as f64, iy as f64) * CELL;
                f(iy * self.nx + ix, cmin, cmin + DVec2::splat(CELL));
            }
        }
    }

    /// Distance along the unit direction `dir` from `origin` to the first wall hit from its drivable
    /// side, searching `t` in `[t0, t_max]`; `f64::INFINITY` if none. Exact (Amanatides–Woo traversal).
    pub fn cast(&self, origin: DVec2, dir: DVec2, t0: f64, t_max: f64) -> f64 {
        let grid_max = self.origin + DVec2::new(self.nx as f64, self.ny as f64) * CELL;
        // Clip the ray to the grid box.
        let (mut t_in, mut t_out) = (t0, t_max);
        for axis in 0..2 {
            let (o, d, lo, hi) = (origin[axis], dir[axis], self.origin[axis], grid_max[axis]);
            if d.abs() < 1e-300 {
                if o < lo || o > hi {
                    return f64::INFINITY;
                }
            } else {
                let (a, b) = ((lo - o) / d, (hi - o) / d);
                t_in = t_in.max(a.min(b));
                t_out = t_out.min(a.max(b));
            }
        }
        if t_in > t_out {
            return f64::INFINITY;
        }
        let p = (origin + dir * t_in - self.origin) / CELL;
        let (mut ix, mut iy) = (
            (p.x as isize).clamp(0, self.nx as isize - 1),
            (p.y as isize).clamp(0, self.ny as isize - 1),
        );
        let step = |d: f64| if d > 0.0 { 1 } else { -1 };
        let (sx, sy) = (step(dir.x), step(dir.y));
        let next = |i: isize, s: isize, o: f64, d: f64, base: f64| {
            if d == 0.0 {
                f64::INFINITY
            } else {
                (base + (i + (s > 0) as isize) as f64 * CELL - o) / d
            }
        };
        let mut tx = next(ix, sx, origin.x, dir.x, self.origin.x);
        let mut ty = next(iy, sy, origin.y, dir.y, self.origin.y);
        let (dx, dy) = (CELL / dir.x.abs(), CELL / dir.y.abs());
        let mut best = f64::INFINITY;
        loop {
            for &k in self.cells.get(iy as usize * self.nx + ix as usize) {
                let s = &self.segments[k as usize];
                if let Some(t) = ray_segment(origin, dir, s.a, s.b)
                    && t >= 0.0
                    && t < best
                {
                    best = t;
                }
            }
            let t_exit = tx.min(ty);
            if best <= t_exit || t_exit > t_out {
                break;
            }
            if tx < ty {
                ix += sx;
                tx += dx;
            } else {
                iy += sy;
                ty += dy;
            }
            if ix < 0 || iy < 0 || ix >= self.nx as isize || iy >= self.ny as isize {
                break;
            }
        }
        if best <= t_max { best } else { f64::INFINITY }
    }

    /// Whether a rectangle touches any wall: centre `center` (m), heading `yaw` (rad),
    /// half extents `half` (m, x along the heading, y to the left).
    pub fn rect_hits_wall(&self, center: DVec2, yaw: f64, half: DVec2) -> bool {
        let (fwd, left) = (DVec2::from_angle(yaw), DVec2::from_angle(yaw).perp());
        let ext = DVec2::new(
            fwd.x.abs() * half.x + left.x.abs() * half.y,
            fwd.y.abs() * half.x + left.y.abs() * half.y,
        );
        let mut hit = false;
        self.for_cells_in(center - ext, center + ext, |c, _, _| {
            if hit {
                return;
            }
            for &k in self.cells.get(c) {
                let s = &self.segments[k as usize];
                let local = |p: DVec2| DVec2::new((p - center).dot(fwd), (p - center).dot(left));
                if segment_hits_box(local(s.a), local(s.b), -half, half) {
                    hit = true;
                    return;
                }
            }
        });
        hit
    }

    /// Distance from `p` to the nearest wall segment, m, or `max` when none is closer (searches
    /// the cells within `max` of `p`).
    pub fn wall_distance(&self, p: DVec2, max: f64) -> f64 {
        let mut best = max;
        self.for_cells_in(p - DVec2::splat(max), p + DVec2::splat(max), |c, _, _| {
            for &k in self.cells.get(c) {
                let s = &self.segments[k as usize];
                best = best.min(point_segment_distance(p, s.a, s.b));
            }
        });
        best
    }

    /// Whether `p` lies inside the walls (even–odd rule over all segments, O(n)).
    pub fn contains(&self, p: DVec2) -> bool {
        let mut inside = false;
        for s in &self.segments {
            if (s.a.y > p.y) != (s.b.y > p.y) {
                let x = s.a.x + (p.y - s.a.y) / (s.b.y - s.a.y) * (s.b.x - s.a.x);
                if x > p.x {
                    inside = !inside;
                }
            }
        }
        inside
    }
}

/// Distance `t` along the unit ray `o + t·d` to segment `[a, b]`, hit from its left (drivable) side.
fn ray_segment(o: DVec2, d: DVec2, a: DVec2, b: DVec2) -> Option<f64> {
    let e = b - a;
    let den = d.perp_dot(e);
    if den <= 0.0 {
        return None;
    }
    let ao = a - o;
    let u = ao.perp_dot(d);
    (u >= 0.0 && u <= den).then(|| ao.perp_dot(e) / den)
}

/// Separating-axis test of segment `[a, b]` against the axis-aligned box `[lo, hi]` (touching counts).
pub(crate) fn segment_hits_box(a: DVec2, b: DVec2, lo: DVec2, hi: DVec2) -> bool {
    if a.max(b).cmplt(lo).any() || a.min(b).cmpgt(hi).any() {
        return false;
    }
    let n = (b - a).perp();
    let corners = [lo, DVec2::new(hi.x, lo.y), hi, DVec2::new(lo.x, hi.y)];
    let side = corners.map(|c| n.dot(c - a));
    side.iter().any(|&v| v >= 0.0) && side.iter().any(|&v| v <= 0.0)
}

fn point_box_distance(p: DVec2, lo: DVec2, hi: DVec2) -> f64 {
    (p - p.clamp(lo, hi)).length()
}

fn point_segment_distance(p: DVec2, a: DVec2, b: DVec2) -> f64 {
    let e = b - a;
    let u = ((p - a).dot(e) / e.length_squared()).clamp(0.0, 1.0);
    p.distance(a + e * u)
}

/// Exact distance between segment `[a, b]` and the box `[lo, hi]` (0 when they touch).
pub(crate) fn segment_box_distance(a: DVec2, b: DVec2, lo: DVec2, hi: DVec2) -> f64 {
    if segment_hits_box(a, b, lo, hi) {
        return 0.0;
    }
    let corners = [lo, DVec2::new(hi.x, lo.y), hi, DVec2::new(lo.x, hi.y)];
    let from_ends = point_box_distance(a, lo, hi).min(point_box_distance(b, lo, hi));
    corners
        .iter()
        .map(|&c| point_segment_distance(c, a, b))
        .fold(from_ends, f64::min)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 4 × 2 m box room, walls oriented with the inside on the left (counter-clockwise).
    fn room() -> WallGrid {
        let ring = vec![
            DVec2::new(0.0, 0.0),
            DVec2::new(4.0, 0.0),
            DVec2::new(4.0, 2.0),
            DVec2::new(0.0, 2.0),
        ];
        WallGrid::new(&[ring], &[(DVec2::new(2.0, 1.0), 2.5)]).unwrap()
    }

    #[test]
    fn cast_hits_the_first_wall_exactly() {
        let g = room();
        let o = DVec2::new(1.0, 0.5);
        assert!((g.cast(o, DVec2::X, 0.0, 30.0) - 3.0).abs() < 1e-12);
        assert!((g.cast(o, -DVec2::Y, 0.0, 30.0) - 0.5).abs() < 1e-12);
        let diag = DVec2::new(1.0, 1.0).normalize();
        assert!((g.cast(o, diag, 0.0, 30.0) - 1.5 * 2f64.sqrt()).abs() < 1e-12);
        assert_eq!(g.cast(o, DVec2::X, 0.0, 2.0), f64::INFINITY, "beyond t_max");
    }

    #[test]
    fn footprint_and_containment() {
        let g = room();
        let half = DVec2::new(0.29, 0.155);
        assert!(!g.rect_hits_wall(DVec2::new(2.0, 1.0), 0.3, half));
        assert!(g.rect_hits_wall(DVec2::new(3.8, 1.0), 0.0, half));
        assert!(g.rect_hits_wall(DVec2::new(2.0, 0.2), 1.57, half));
        assert!(g.contains(DVec2::new(3.9, 1.9)));
        assert!(!g.contains(DVec2::new(4.1, 1.0)));
    }

    #[test]
    fn near_lists_hold_every_close_segment() {
        let g = room();
        let (near, r) = g.near(DVec2::new(1.0, 1.0));
        assert_eq!(r, NEAR_RADIUS);
        assert_eq!(near.len(), 4);
        assert_eq!(
            segment_box_distance(
                DVec2::new(3.0, 0.0),
                DVec2::new(3.0, 5.0),
                DVec2::ZERO,
                DVec2::ONE
            ),
            2.0
        );
    }
}
