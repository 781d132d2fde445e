//! A minimum-curvature raceline for any track, from its centerline and widths alone.
//!
//! The quadratic program of Heilmeier et al., "Minimum curvature trajectory planning and control
//! for an autonomous race car", Vehicle System Dynamics 58(10), 2020 (TUM's
//! `global_racetrajectory_optimization`), in its discrete form: the path points are
//! `p_i = r_i + α_i·n_i` (centerline point `r_i` at uniform arc-length spacing, left normal
//! `n_i`, lateral offset `α_i`, m), and the objective is the sum of squared second differences
//! `‖p_(i−1) − 2·p_i + p_(i+1)‖²`, which is `κ_i²·Δs⁴` at uniform spacing. It is quadratic in
//! `α`, so one QP gives the optimum (TUM linearises the curvature of a spline and iterates
//! instead). Each offset keeps `margin` (m) from both edges: `−(w_right − margin) ≤ α_i ≤
//! w_left − margin`. The QP is solved with Clarabel (Goulart & Chen, 2024), an interior-point
//! solver. Solutions are kept per track geometry and settings for the life of the process.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use clarabel::algebra::CscMatrix;
use clarabel::solver::{
    DefaultSettingsBuilder, DefaultSolver, IPSolver, NonnegativeConeT, SolverStatus,
};
use glam::DVec2;

use crate::error::{Result, SimError};
use crate::track::{ClosedPath, Track};

/// Spacing of the optimised points along the centerline, m.
pub const STEP: f64 = 0.5;

type Key = (String, u64, u64);

static CACHE: LazyLock<Mutex<HashMap<Key, Arc<ClosedPath>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// The minimum-curvature raceline of `track` keeping `margin` (m, from the path to each edge;
/// where the track is narrower than two margins, its centre), as a closed path of points
/// [`STEP`] apart along the centerline. Computed once per track geometry and margin in a process.
///
/// # Errors
/// [`SimError::Raceline`] when the solver finds no solution (naming the track and the status).
pub fn min_curvature_raceline(track: &Track, margin: f64) -> Result<Arc<ClosedPath>> {
    let key = (track.name.clone(), geometry_digest(track), margin.to_bits());
    if let Some(path) = CACHE.lock().expect("raceline cache").get(&key) {
        return Ok(path.clone());
    }
    let path = Arc::new(solve(track, margin)?);
    CACHE
        .lock()
        .expect("raceline cache")
        .insert(key, path.clone());
    Ok(path)
}

/// FNV-1a over the centerline points and widths: two tracks that share a name but not a shape
/// never share a raceline.
fn geometry_digest(track: &Track) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let values = track
        .centerline
        .points()
        .iter()
        .flat_map(|p| [p.x, p.y])
        .chain(track.w_right.iter().copied())
        .chain(track.w_left.iter().copied());
    for v in values {
        for b in v.to_bits().to_le_bytes() {
            h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

fn solve(track: &Track, margin: f64) -> Result<ClosedPath> {
    let center = &track.centerline;
    let n = ((center.length() / STEP).round() as usize).max(8);
    let ds = center.length() / n as f64;
    let mut r = Vec::with_capacity(n);
    let mut normal = Vec::with_capacity(n);
    let mut bounds = Vec::with_capacity(n);
    for i in 0..n {
        let s = i as f64 * ds;
        r.push(center.point_at(s));
        normal.push(DVec2::from_angle(center.heading_at(s)).perp());
        let (wr, wl) = track.widths_at(s);
        let (lo, hi) = (-(wr - margin), wl - margin);
        bounds.push(if lo <= hi {
            (lo, hi)
        } else {
            let mid = 0.5 * (wl - wr);
            (mid, mid)
        });
    }
    // Second difference e_i = p_(i−1) − 2·p_i + p_(i+1) = c_i + Σ_j a_ij·α_j with a_ij ∈
    // {n_(i−1), −2·n_i, n_(i+1)}; the objective Σ‖e_i‖² = αᵀ(AᵀA)α + 2(Aᵀc)ᵀα + const.
    let (mut rows, mut cols, mut vals) = (Vec::new(), Vec::new(), Vec::new());
    let mut q = vec![0.0; n];
    for i in 0..n {
        let terms = [((i + n - 1) % n, 1.0), (i, -2.0), ((i + 1) % n, 1.0)];
        let c = terms.iter().map(|&(j, w)| w * r[j]).sum::<DVec2>();
        for &(j, wj) in &terms {
            q[j] += 2.0 * wj * normal[j].dot(c);
            for &(k, wk) in &terms {
                if j <= k {
                    rows.push(j);
                    cols.push(k);
                    vals.push(2.0 * wj * wk * normal[j].dot(normal[k]));
                }
            }
        }
    }
    let p = CscMatrix::new_from_triplets(n, n, rows, cols, vals);
    // α_i ≤ hi_i and −α_i ≤ −lo_i.
    let a = CscMatrix::new_from_triplets(
        2 * n,
        n,
        (0..2 * n).collect(),
        (0..n).chain(0..n).collect(),
        (0..2 * n).map(|k| if k < n { 1.0 } else { -1.0 }).collect(),
    );
    let b: Vec<f64> = bounds
        .iter()
        .map(|b| b.1)
        .chain(bounds.iter().map(|b| -b.0))
        .collect();
    let settings = DefaultSettingsBuilder::default()
        .verbose(false)
        .build()
        .expect("valid Clarabel settings");
    let failed = |status: String| SimError::Raceline {
        track: track.name.clone(),
        status,
    };
    let mut solver = DefaultSolver::new(&p, &q, &a, &b, &[NonnegativeConeT(2 * n)], settings)
        .map_err(|e| failed(e.to_string()))?;
    solver.solve();
    match solver.solution.status {
        SolverStatus::Solved | SolverStatus::AlmostSolved => {}
        status => return Err(failed(format!("{status:?}"))),
    }
    let points = (0..n).map(|i| {
        let alpha = solver.solution.x[i].clamp(bounds[i].0, bounds[i].1);
        r[i] + normal[i] * alpha
    });
    ClosedPath::new(points).map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_raceline_keeps_the_margin_and_cuts_curvature() {
        let track = Track::load("Spa").unwrap();
        let margin = 0.7;
        let path = min_curvature_raceline(&track, margin).unwrap();
        for &p in path.points() {
            let f = track.centerline.project(p);
            let (wr, wl) = track.widths_at(f.s);
            assert!(
                f.d <= wl - margin + 0.05 && f.d >= -(wr - margin) - 0.05,
                "offset {} outside [{}, {}]",
                f.d,
                -(wr - margin),
                wl - margin
            );
        }
        let params = crate::SimConfig::default().vehicle;
        let lap = |p: &ClosedPath| {
            let v = crate::speed_profile::speed_profile(p, &params, 0.75 * params.mu, 8.0, 9.51);
            crate::speed_profile::lap_time(p, &v)
        };
        let (race, center) = (lap(&path), lap(&track.centerline));
        assert!(
            race < 0.98 * center,
            "profile lap {race} s vs the centerline's {center} s"
        );
        assert!(Arc::ptr_eq(
            &path,
            &min_curvature_raceline(&track, margin).unwrap()
        ));
    }
}
