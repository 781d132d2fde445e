//! A friction-limited speed profile along a closed path, by the forward–backward method of
//! point-mass lap-time simulation (as in TUM's global_racetrajectory_optimization,
//! `calc_vel_profile`, Heilmeier et al. 2019, without its combined g-g-v coupling):
//!
//! 1. a cap from curvature, `v ≤ √(μ_eff·g / |κ|)`, and `v ≤ v_max`;
//! 2. a forward pass with the vehicle's acceleration limit, f1tenth_gym's `accl_constraints`
//!    (`a_max`, falling as `a_max·v_switch/v` above `v_switch`): `v_{i+1}² ≤ v_i² + 2·a(v_i)·Δs`;
//! 3. a backward pass with a braking limit `b`: `v_i² ≤ v_{i+1}² + 2·b·Δs`.
//!
//! On a closed path both passes start at the point of lowest cap, whose speed neither pass can
//! lower, so one lap of each is exact.

use crate::track::ClosedPath;
use crate::vehicle::VehicleParams;

/// Standard gravity, m/s².
pub const G: f64 = 9.81;

/// The speed (m/s) at each point of `path` (`[path.len()]`): lateral acceleration at most
/// `mu_eff·g` (m/s²), at most `v_max` (m/s, and the vehicle's `v_max`), accelerating within
/// `params`' limits and braking at most `brake` m/s².
pub fn speed_profile(
    path: &ClosedPath,
    params: &VehicleParams,
    mu_eff: f64,
    v_max: f64,
    brake: f64,
) -> Vec<f64> {
    speed_profile_capped(path, params, mu_eff, v_max, brake, &|_| f64::INFINITY)
}

/// [`speed_profile`] with a further cap `cap(i)` (m/s) at point i, which the forward and
/// backward passes respect like the curvature's (the car brakes before a capped stretch).
pub fn speed_profile_capped(
    path: &ClosedPath,
    params: &VehicleParams,
    mu_eff: f64,
    v_max: f64,
    brake: f64,
    cap: &dyn Fn(usize) -> f64,
) -> Vec<f64> {
    let n = path.len();
    let top = v_max.min(params.v_max);
    let mut v: Vec<f64> = (0..n)
        .map(|i| {
            let k = path.curvature_at(path.s_at_point(i)).abs();
            let limit = if k > 1e-9 {
                (mu_eff * G / k).sqrt().min(top)
            } else {
                top
            };
            limit.min(cap(i))
        })
        .collect();
    let ds = |i: usize| path.delta_s(path.s_at_point(i), path.s_at_point((i + 1) % n));
    let start = (0..n).min_by(|&a, &b| v[a].total_cmp(&v[b])).unwrap_or(0);
    for k in 0..n {
        let (i, j) = ((start + k) % n, (start + k + 1) % n);
        let accel = if v[i] > params.v_switch {
            params.a_max * params.v_switch / v[i]
        } else {
            params.a_max
        };
        v[j] = v[j].min((v[i] * v[i] + 2.0 * accel * ds(i)).sqrt());
    }
    for k in 0..n {
        let j = (start + n - k) % n;
        let i = (j + n - 1) % n;
        v[i] = v[i].min((v[j] * v[j] + 2.0 * brake * ds(i)).sqrt());
    }
    v
}

/// The time to drive one lap of `path` at the speeds `v` (m/s, one per point), s: each segment
/// at the mean of its ends' speeds.
pub fn lap_time(path: &ClosedPath, v: &[f64]) -> f64 {
    let n = path.len();
    (0..n)
        .map(|i| {
            let ds = path.delta_s(path.s_at_point(i), path.s_at_point((i + 1) % n));
            ds / (0.5 * (v[i] + v[(i + 1) % n])).max(1e-6)
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use glam::DVec2;

    fn params() -> VehicleParams {
        crate::SimConfig::default().vehicle
    }

    fn circle(r: f64, n: usize) -> ClosedPath {
        ClosedPath::new((0..n).map(|i| {
            let a = std::f64::consts::TAU * i as f64 / n as f64;
            DVec2::new(r * a.cos(), r * a.sin())
        }))
        .unwrap()
    }

    #[test]
    fn a_circle_is_driven_at_the_friction_limit() {
        let p = params();
        let v = speed_profile(&circle(5.0, 400), &p, 0.8, 20.0, 9.51);
        let expected = (0.8 * G * 5.0f64).sqrt();
        for s in &v {
            assert!((s - expected).abs() < 0.01 * expected, "{s} vs {expected}");
        }
    }

    #[test]
    fn a_stadium_accelerates_and_brakes_within_the_limits() {
        // Two 40 m straights joined by 3 m-radius half circles.
        let mut pts = Vec::new();
        for i in 0..=80 {
            pts.push(DVec2::new(i as f64 * 0.5, 0.0));
        }
        for i in 1..60 {
            let a = -std::f64::consts::FRAC_PI_2 + std::f64::consts::PI * i as f64 / 60.0;
            pts.push(DVec2::new(40.0 + 3.0 * a.cos(), 3.0 + 3.0 * a.sin()));
        }
        for i in 0..=80 {
            pts.push(DVec2::new(40.0 - i as f64 * 0.5, 6.0));
        }
        for i in 1..60 {
            let a = std::f64::consts::FRAC_PI_2 + std::f64::consts::PI * i as f64 / 60.0;
            pts.push(DVec2::new(3.0 * a.cos(), 3.0 + 3.0 * a.sin()));
        }
        let path = ClosedPath::new(pts).unwrap();
        let p = params();
        let (brake, v_max) = (6.0, 12.0);
        let v = speed_profile(&path, &p, 0.9, v_max, brake);
        let corner = (0.9 * G * 3.0f64).sqrt();
        let (lo, hi) = v
            .iter()
            .fold((f64::MAX, 0f64), |(a, b), &x| (a.min(x), b.max(x)));
        assert!(
            (lo - corner).abs() < 0.05 * corner,
            "corner speed {lo} vs {corner}"
        );
        assert!(hi > corner + 3.0 && hi <= v_max, "straight speed {hi}");
        let n = path.len();
        for i in 0..n {
            let j = (i + 1) % n;
            let ds = path.delta_s(path.s_at_point(i), path.s_at_point(j));
            let dv2 = v[j] * v[j] - v[i] * v[i];
            assert!(
                dv2 <= 2.0 * p.a_max * ds + 1e-9,
                "accelerates too hard at {i}"
            );
            assert!(-dv2 <= 2.0 * brake * ds + 1e-9, "brakes too hard at {i}");
        }
        let t = lap_time(&path, &v);
        assert!(t > path.length() / v_max && t < path.length() / lo, "{t}");
    }

    #[test]
    fn a_cap_holds_over_its_stretch_and_is_braked_for() {
        let path = circle(20.0, 800);
        let p = params();
        let brake = 6.0;
        let capped = |i: usize| {
            if (300..400).contains(&i) {
                3.0
            } else {
                f64::INFINITY
            }
        };
        let v = speed_profile_capped(&path, &p, 0.9, 8.0, brake, &capped);
        let free = speed_profile(&path, &p, 0.9, 8.0, brake);
        assert!((300..400).all(|i| v[i] <= 3.0 + 1e-12));
        assert!(free[350] > 7.9, "uncapped {}", free[350]);
        assert!(v[299] < free[299], "braking starts before the cap");
        for i in 0..path.len() {
            assert!(v[i] <= free[i] + 1e-12);
            let j = (i + 1) % path.len();
            let ds = path.delta_s(path.s_at_point(i), path.s_at_point(j));
            assert!(
                v[i] * v[i] - v[j] * v[j] <= 2.0 * brake * ds + 1e-9,
                "brakes too hard at {i}"
            );
        }
        assert_eq!(
            speed_profile_capped(&path, &p, 0.9, 8.0, brake, &|_| f64::INFINITY),
            free
        );
    }
}
