//! A 2D LiDAR with exact ray–wall geometry.
//!
//! Defaults follow f1tenth_gym (a Hokuyo UST-10LX): 1080 beams over 4.7 rad, 30 m range,
//! Gaussian range noise σ = 0.01 m. Unlike f1tenth_gym, which sphere-traces a distance transform
//! of an occupancy image (beam angles quantised to ~0.18°), beams are intersected with the wall
//! segments themselves.
//!
//! Per scan: the wall segments near the sensor's grid cell are rasterised over the beams they
//! span (one vectorisable loop per segment, back faces culled); a beam whose range is still
//! beyond that list's radius continues with an exact grid traversal ([`WallGrid::cast`]).

use glam::{DVec2, Vec2};
use multiversion::multiversion;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::error::{Result, SimError};
use crate::obstacle::Obstacle;
use crate::track::{Segment, Track, WallGrid};
use crate::vehicle::VehicleState;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

/// LiDAR configuration (`configs/lidar.ron`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LidarConfig {
    /// Number of beams, evenly spread over `fov` (first beam at `-fov/2`, last at `+fov/2`).
    pub num_beams: usize,
    /// Field of view, rad.
    pub fov: f64,
    /// Maximum range, m; a beam that hits nothing returns exactly this.
    pub max_range: f64,
    /// Standard deviation of the additive Gaussian range noise, m.
    pub noise_std: f64,
    /// Mounting offset ahead of the vehicle reference point (centre of gravity) along its heading, m.
    pub mount_offset: f64,
    /// A scan is taken every `period_steps` physics steps (1 = every step).
    pub period_steps: u32,
    /// Range resolution, m: every range is rounded to a multiple of it (0 = none, the default
    /// of config files without the field). The Hokuyo UST-10LX reports whole millimetres; a
    /// power of two such as 2⁻¹⁰ m (0.977 mm) keeps the values exact in binary, so that the
    /// logged `foxglove.LaserScan` ranges (f64) compress about 2.5× better.
    #[serde(default)]
    pub resolution: f64,
}

impl LidarConfig {
    /// Checks ranges of values.
    ///
    /// # Errors
    /// [`SimError::ConfigValue`] naming the field.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &str, message: &str| {
            Err(SimError::ConfigValue {
                field: format!("lidar.{field}"),
                message: message.into(),
            })
        };
        if self.num_beams < 2 {
            return bad("num_beams", "needs at least 2 beams");
        }
        if !(self.fov > 0.0 && self.fov < std::f64::consts::TAU) {
            return bad("fov", "must be in (0, 2π) rad");
        }
        if !(self.max_range > 0.0 && self.max_range.is_finite()) {
            return bad("max_range", "must be a positive number of metres");
        }
        if !(self.noise_std >= 0.0 && self.noise_std.is_finite()) {
            return bad("noise_std", "must be ≥ 0 m");
        }
        if !self.mount_offset.is_finite() {
            return bad("mount_offset", "must be finite");
        }
        if self.period_steps == 0 {
            return bad("period_steps", "must be ≥ 1");
        }
        if !(self.resolution >= 0.0 && self.resolution < self.max_range) {
            return bad("resolution", "must be ≥ 0 m (0 = none) and below max_range");
        }
        Ok(())
    }

    /// Angle of beam `i` in the sensor frame, rad (0 = straight ahead, positive = left).
    pub fn beam_angle(&self, i: usize) -> f64 {
        -0.5 * self.fov + self.fov * i as f64 / (self.num_beams - 1) as f64
    }
}

/// A LiDAR ready to scan: its configuration and the beam directions in the sensor frame.
#[derive(Clone, Debug)]
pub struct Lidar {
    config: LidarConfig,
    cos: Vec<f32>,
    sin: Vec<f32>,
}

impl Lidar {
    /// Precomputes the beam directions.
    pub fn new(config: LidarConfig) -> Self {
        let angles: Vec<f64> = (0..config.num_beams)
            .map(|i| config.beam_angle(i))
            .collect();
        Self {
            cos: angles.iter().map(|a| a.cos() as f32).collect(),
            sin: angles.iter().map(|a| a.sin() as f32).collect(),
            config,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &LidarConfig {
        &self.config
    }

    /// Sensor position for a vehicle at `position` (m) with heading `yaw` (rad).
    pub fn sensor_position(&self, position: DVec2, yaw: f64) -> DVec2 {
        position + DVec2::from_angle(yaw) * self.config.mount_offset
    }

    /// Exact noise-free ranges (m) from a sensor at `sensor` heading `yaw` into `out`
    /// (`[num_beams]`): the nearest of the walls and the `obstacles`. The sensor must be inside
    /// the walls: walls are seen from their drivable side.
    ///
    /// # Panics
    /// If `out.len() != num_beams`.
    pub fn scan_exact(
        &self,
        walls: &WallGrid,
        obstacles: &[Obstacle],
        sensor: DVec2,
        yaw: f64,
        out: &mut [f32],
    ) {
        assert_eq!(out.len(), self.config.num_beams, "scan buffer length");
        out.fill(f32::INFINITY);
        let (near, radius) = walls.near(sensor);
        let angle_min = (-0.5 * self.config.fov) as f32;
        let inv_inc = ((self.config.num_beams - 1) as f64 / self.config.fov) as f32;
        let view = View {
            sensor,
            rot: DVec2::from_angle(-yaw),
            angle_min,
            inv_inc,
        };
        raster_near(&self.cos, &self.sin, out, near, walls.segments(), &view);
        self.raster_obstacles(obstacles, &view, yaw, out);
        let max_range = self.config.max_range;
        let heading = DVec2::from_angle(yaw);
        for (i, r) in out.iter_mut().enumerate() {
            if (*r as f64) > radius {
                let beam = DVec2::new(self.cos[i] as f64, self.sin[i] as f64);
                let t = walls.cast(sensor, heading.rotate(beam).normalize(), radius, max_range);
                *r = r.min(t as f32);
            }
            *r = r.min(max_range as f32);
        }
    }

    /// Lowers `out` to the exact ray–obstacle distances, over the beams that each obstacle's
    /// bounding circle spans (±1 beam of slack), for obstacles within range.
    fn raster_obstacles(&self, obstacles: &[Obstacle], view: &View, yaw: f64, out: &mut [f32]) {
        let last = out.len() as i64 - 1;
        let (angle_min, inv_inc) = (view.angle_min as f64, view.inv_inc as f64);
        let angle_max = angle_min + last as f64 / inv_inc;
        let max_range = self.config.max_range;
        let heading = DVec2::from_angle(yaw);
        for o in obstacles {
            let local = view.rot.rotate(o.center() - view.sensor);
            let (dist, radius) = (local.length(), o.bounding_radius());
            if dist - radius > max_range {
                continue;
            }
            let (mid, half) = if dist <= radius {
                (0.0, std::f64::consts::PI)
            } else {
                (local.y.atan2(local.x), (radius / dist).asin())
            };
            for shift in [-std::f64::consts::TAU, 0.0, std::f64::consts::TAU] {
                let (l, h) = (mid - half + shift, mid + half + shift);
                if h < angle_min || l > angle_max {
                    continue;
                }
                let i0 = (((l - angle_min) * inv_inc).floor() as i64 - 1).clamp(0, last) as usize;
                let i1 = (((h - angle_min) * inv_inc).ceil() as i64 + 1).clamp(0, last) as usize;
                let beams = self.cos[i0..=i1].iter().zip(&self.sin[i0..=i1]);
                for (r, (&c, &s)) in out[i0..=i1].iter_mut().zip(beams) {
                    let beam = DVec2::new(c as f64, s as f64);
                    let t = o.ray(view.sensor, heading.rotate(beam).normalize());
                    *r = r.min(t as f32);
                }
            }
        }
    }

    /// Adds Gaussian noise (σ = `noise_std`) to every range below the maximum, clamped to
    /// `[0, max_range]`. Beams that hit nothing keep exactly `max_range`. The normal deviates come
    /// from [`box_muller`], 64 random bits per pair.
    pub fn add_noise(&self, rng: &mut impl RngCore, ranges: &mut [f32]) {
        let (sigma, max) = (self.config.noise_std as f32, self.config.max_range as f32);
        if sigma == 0.0 {
            return;
        }
        let mut bits = [0u64; NOISE_CHUNK / 2];
        for chunk in ranges.chunks_mut(NOISE_CHUNK) {
            let pairs = chunk.len().div_ceil(2);
            for b in &mut bits[..pairs] {
                *b = rng.next_u64();
            }
            add_deviates(&bits[..pairs], chunk, sigma, max);
        }
    }

    /// Rounds every range (m) to the nearest multiple of `resolution`, at most `max_range`;
    /// nothing when `resolution` is 0.
    pub fn quantize(&self, ranges: &mut [f32]) {
        let q = self.config.resolution as f32;
        if q == 0.0 {
            return;
        }
        let (inv, max) = (1.0 / q, self.config.max_range as f32);
        for r in ranges {
            *r = ((*r * inv).round() * q).min(max);
        }
    }
}

/// Ranges handled per batch of random bits in [`Lidar::add_noise`].
const NOISE_CHUNK: usize = 128;

/// Adds `sigma ·` standard normal deviates to the ranges below `max`: pair `k` of `bits` gives the
/// deviates of `ranges[k]` and `ranges[pairs + k]`.
#[multiversion(targets("x86_64+avx2+fma", "x86_64+sse4.1"))]
fn add_deviates(bits: &[u64], ranges: &mut [f32], sigma: f32, max: f32) {
    let pairs = bits.len();
    let mut z = [0f32; NOISE_CHUNK];
    for k in 0..pairs {
        (z[k], z[pairs + k]) = box_muller(bits[k]);
    }
    for (r, z) in ranges.iter_mut().zip(z) {
        *r = if *r < max {
            (*r + sigma * z).clamp(0.0, max)
        } else {
            *r
        };
    }
}

/// The reference range for tests and benchmarks: the nearest hit of the ray `p + t·dir`
/// (`dir` a unit vector, t ≥ 0, m) on any of `segments`, from either side, by brute force in
/// f64; infinity when none.
pub fn brute_force_range(segments: &[Segment], p: DVec2, dir: DVec2) -> f64 {
    let mut best = f64::INFINITY;
    for seg in segments {
        let e = seg.b - seg.a;
        let den = dir.perp_dot(e);
        if den.abs() < 1e-15 {
            continue;
        }
        let ao = seg.a - p;
        let (t, u) = (ao.perp_dot(e) / den, ao.perp_dot(dir) / den);
        if t >= 0.0 && (0.0..=1.0).contains(&u) {
            best = best.min(t);
        }
    }
    best
}

/// Two independent standard normal deviates from 64 random bits by the Box–Muller transform
/// (Box & Muller, "A Note on the Generation of Random Normal Deviates", 1958): 24 bits give
/// `u1 ∈ (0, 1]`, 23 bits an angle in `[-π/2, π/2)` and one bit its half-plane. Branch-free with
/// polynomial `ln`, `sin` and `cos` (errors below 1e-7), so that it vectorises. The radius is
/// at most `sqrt(2·24·ln 2) ≈ 5.77`: tails beyond 5.77σ (probability 8e-9) are cut.
#[inline(always)]
pub fn box_muller(bits: u64) -> (f32, f32) {
    let u1 = ((bits >> 40) as u32 as f32 + 1.0) * (1.0 / 16_777_216.0);
    let u2 = ((bits >> 17) as u32 & 0x7F_FFFF) as f32 * (1.0 / 8_388_608.0);
    let sign = if bits & 1 == 1 { -1.0 } else { 1.0 };
    let r = sign * (-2.0 * ln_approx(u1)).sqrt();
    let (s, c) = sin_cos_approx(std::f32::consts::PI * (u2 - 0.5));
    (r * c, r * s)
}

/// Natural logarithm of a positive normal `x`: exponent times ln 2 plus `2·atanh((m−1)/(m+1))`
/// for the mantissa `m ∈ [√½, √2)` (series to t⁹; absolute error below 1e-9).
#[inline(always)]
fn ln_approx(x: f32) -> f32 {
    let bits = x.to_bits();
    let mut e = ((bits >> 23) as i32 - 127) as f32;
    let mut m = f32::from_bits((bits & 0x007F_FFFF) | 0x3F80_0000);
    let big = m > std::f32::consts::SQRT_2;
    m = if big { 0.5 * m } else { m };
    e = if big { e + 1.0 } else { e };
    let t = (m - 1.0) / (m + 1.0);
    let t2 = t * t;
    let series =
        2.0 * t * (1.0 + t2 * (1.0 / 3.0 + t2 * (1.0 / 5.0 + t2 * (1.0 / 7.0 + t2 * (1.0 / 9.0)))));
    e * std::f32::consts::LN_2 + series
}

/// `(sin x, cos x)` for `x ∈ [-π/2, π/2]` by Taylor polynomials to x¹¹ and x¹² (errors below 6e-8).
#[inline(always)]
fn sin_cos_approx(x: f32) -> (f32, f32) {
    let x2 = x * x;
    let s = x
        * (1.0
            - x2 / 6.0
                * (1.0 - x2 / 20.0 * (1.0 - x2 / 42.0 * (1.0 - x2 / 72.0 * (1.0 - x2 / 110.0)))));
    let c = 1.0
        - x2 / 2.0
            * (1.0
                - x2 / 12.0
                    * (1.0
                        - x2 / 30.0 * (1.0 - x2 / 56.0 * (1.0 - x2 / 90.0 * (1.0 - x2 / 132.0)))));
    (s, c)
}

/// The sensor pose as the rasteriser needs it.
struct View {
    sensor: DVec2,
    /// Rotation from world to sensor frame (`from_angle(-yaw)`).
    rot: DVec2,
    /// Angle of beam 0, rad.
    angle_min: f32,
    /// Beams per radian.
    inv_inc: f32,
}

/// Rasterises the `near` wall segments over the beams they span, lowering `out` (`[num_beams]`, m).
#[multiversion(targets("x86_64+avx2+fma", "x86_64+sse4.1"))]
fn raster_near(
    cos: &[f32],
    sin: &[f32],
    out: &mut [f32],
    near: &[u32],
    segments: &[Segment],
    view: &View,
) {
    let last = out.len() as i64 - 1;
    let angle_max = view.angle_min + last as f32 / view.inv_inc;
    for &k in near {
        let seg = &segments[k as usize];
        let a = to_f32(view.rot.rotate(seg.a - view.sensor));
        let b = to_f32(view.rot.rotate(seg.b - view.sensor));
        let e = b - a;
        let cross_ae = a.perp_dot(e);
        if cross_ae <= 0.0 {
            continue; // back face: hidden behind the wall it belongs to
        }
        let a0 = atan2_approx(a.y, a.x);
        let a1 = atan2_approx(b.y, b.x);
        let mut da = a1 - a0;
        if da > std::f32::consts::PI {
            da -= std::f32::consts::TAU;
        } else if da < -std::f32::consts::PI {
            da += std::f32::consts::TAU;
        }
        let (lo, hi) = (a0.min(a0 + da), a0.max(a0 + da));
        for shift in [-std::f32::consts::TAU, 0.0, std::f32::consts::TAU] {
            let (l, h) = (lo + shift, hi + shift);
            if h < view.angle_min || l > angle_max {
                continue;
            }
            // ±1 beam of slack covers the error of atan2_approx (< 2.1e-4 rad); truncation
            // instead of floor/ceil only widens the span.
            let i0 = (((l - view.angle_min) * view.inv_inc) as i64 - 1).clamp(0, last) as usize;
            let i1 = (((h - view.angle_min) * view.inv_inc) as i64 + 2).clamp(0, last) as usize;
            raster(
                &cos[i0..=i1],
                &sin[i0..=i1],
                &mut out[i0..=i1],
                a,
                e,
                cross_ae,
            );
        }
    }
}

/// A mounted LiDAR with its noise generator and its latest ranges: what a car carries.
#[derive(Clone, Debug)]
pub struct LidarSensor {
    lidar: Lidar,
    rng: Xoshiro256PlusPlus,
    ranges: Vec<f32>,
    fresh: bool,
}

/// Seed-stream tag of the LiDAR noise, so that it is independent of the start draw.
const NOISE_STREAM: u64 = 0x4e4f_4953_4521;

impl LidarSensor {
    /// A sensor whose noise is drawn from episode `seed`.
    pub fn new(lidar: Lidar, seed: u64) -> Self {
        let n = lidar.config.num_beams;
        Self {
            lidar,
            rng: Xoshiro256PlusPlus::seed_from_u64(seed ^ NOISE_STREAM),
            ranges: vec![0.0; n],
            fresh: false,
        }
    }

    /// Scans `track` and `obstacles` from the car `state` if physics step `step` is a scan
    /// step (every `period_steps`, step 0 included); otherwise keeps the last ranges and marks
    /// them stale.
    pub fn sense(
        &mut self,
        track: &Track,
        obstacles: &[Obstacle],
        state: &VehicleState,
        step: u64,
    ) {
        self.fresh = step.is_multiple_of(self.lidar.config.period_steps as u64);
        if self.fresh {
            let sensor = self.lidar.sensor_position(state.position(), state.yaw);
            self.lidar
                .scan_exact(&track.grid, obstacles, sensor, state.yaw, &mut self.ranges);
            self.lidar.add_noise(&mut self.rng, &mut self.ranges);
            self.lidar.quantize(&mut self.ranges);
        }
    }

    /// Latest ranges, m, `[num_beams]`.
    pub fn ranges(&self) -> &[f32] {
        &self.ranges
    }

    /// Whether the ranges were taken at the last [`Self::sense`] call.
    pub fn fresh(&self) -> bool {
        self.fresh
    }

    /// The LiDAR.
    pub fn lidar(&self) -> &Lidar {
        &self.lidar
    }
}

fn to_f32(v: DVec2) -> Vec2 {
    Vec2::new(v.x as f32, v.y as f32)
}

/// Lowers `ranges[i]` to the distance along beam `(cos[i], sin[i])` to the segment `a + u·e`,
/// `u ∈ [0, 1]`, seen from its front (`cross_ae = a × e > 0`). Written branch-free to vectorise.
#[inline(always)]
fn raster(cos: &[f32], sin: &[f32], ranges: &mut [f32], a: Vec2, e: Vec2, cross_ae: f32) {
    for ((r, &c), &s) in ranges.iter_mut().zip(cos).zip(sin) {
        let den = c * e.y - s * e.x;
        let u = a.x * s - a.y * c;
        let t = cross_ae / den;
        let hit = den > 0.0 && u >= 0.0 && u <= den;
        *r = if hit { r.min(t) } else { *r };
    }
}

/// atan2 with a maximum error below 2.1e-4 rad (odd polynomial of atan on [0, 1]), far below
/// the 4.4e-3 rad beam spacing.
#[inline(always)]
fn atan2_approx(y: f32, x: f32) -> f32 {
    let (ax, ay) = (x.abs(), y.abs());
    let (mx, mn) = (ax.max(ay), ax.min(ay));
    if mx == 0.0 {
        return 0.0;
    }
    let a = mn / mx;
    let s = a * a;
    let mut r = ((-0.046_496_473 * s + 0.159_314_22) * s - 0.327_622_76) * s * a + a;
    if ay > ax {
        r = std::f32::consts::FRAC_PI_2 - r;
    }
    if x < 0.0 {
        r = std::f32::consts::PI - r;
    }
    if y < 0.0 { -r } else { r }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(noise_std: f64) -> LidarConfig {
        LidarConfig {
            num_beams: 1080,
            fov: 4.7,
            max_range: 30.0,
            noise_std,
            mount_offset: 0.0,
            period_steps: 1,
            resolution: 0.0,
        }
    }

    #[test]
    fn quantize_rounds_to_the_resolution_and_keeps_max_range() {
        let q = 1.0 / 1024.0;
        let lidar = Lidar::new(LidarConfig {
            resolution: q,
            ..config(0.0)
        });
        let raw = [0.0f32, 0.000_4, 0.000_6, 1.234_567, 29.999_9, 30.0];
        let mut ranges = raw;
        lidar.quantize(&mut ranges);
        for (r, raw) in ranges.iter().zip(raw) {
            assert!((r - raw).abs() <= 0.5 * q as f32 + 1e-6, "{raw} → {r}");
            assert_eq!(
                (*r as f64 / q).fract(),
                0.0,
                "{r} is not a multiple of 2⁻¹⁰ m"
            );
        }
        assert_eq!(ranges[1], 0.0);
        assert_eq!(ranges[2], q as f32);
        assert_eq!(ranges[5], 30.0);
        let mut same = raw;
        Lidar::new(config(0.0)).quantize(&mut same);
        assert_eq!(same, raw, "resolution 0 leaves the ranges alone");
    }

    /// Distance from `o` along angle `th` to the inside of the box `[0, w] × [0, h]`.
    fn box_range(o: DVec2, th: f64, w: f64, h: f64) -> f64 {
        let d = DVec2::from_angle(th);
        let tx = if d.x > 1e-12 {
            (w - o.x) / d.x
        } else if d.x < -1e-12 {
            -o.x / d.x
        } else {
            f64::INFINITY
        };
        let ty = if d.y > 1e-12 {
            (h - o.y) / d.y
        } else if d.y < -1e-12 {
            -o.y / d.y
        } else {
            f64::INFINITY
        };
        tx.min(ty)
    }

    #[test]
    // Just inside ±π on purpose: atan2 jumps by 2π there.
    #[allow(clippy::approx_constant)]
    fn atan2_approx_is_accurate() {
        for k in 0..10_000 {
            let th = -3.14159 + 6.28318 * k as f64 / 10_000.0;
            let (y, x) = (th.sin() as f32, th.cos() as f32);
            assert!((atan2_approx(y, x) - y.atan2(x)).abs() < 2.1e-4, "at {th}");
        }
    }

    #[test]
    fn ranges_match_analytic_geometry_in_a_rectangle() {
        // 12 × 3 m room (short range) and 60 × 20 m room (beyond max range along x).
        for &(w, h) in &[(12.0, 3.0), (60.0, 20.0)] {
            let ring = vec![
                DVec2::ZERO,
                DVec2::new(w, 0.0),
                DVec2::new(w, h),
                DVec2::new(0.0, h),
            ];
            let grid = WallGrid::new(&[ring], &[(DVec2::new(w / 2.0, h / 2.0), w.max(h))]).unwrap();
            let lidar = Lidar::new(config(0.0));
            let mut out = vec![0.0; 1080];
            for &(o, yaw) in &[
                (DVec2::new(3.0, 1.2), 0.4),
                (DVec2::new(10.5, 2.1), -2.9),
                (DVec2::new(25.0, 1.0), 1.0),
            ] {
                if o.x >= w {
                    continue;
                }
                lidar.scan_exact(&grid, &[], o, yaw, &mut out);
                for (i, &r) in out.iter().enumerate() {
                    let want = box_range(o, yaw + lidar.config().beam_angle(i), w, h).min(30.0);
                    assert!(
                        (r as f64 - want).abs() < 1e-4,
                        "room {w}x{h} pose {o} yaw {yaw} beam {i}: {r} vs {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn noise_has_the_configured_statistics_and_is_seeded() {
        let lidar = Lidar::new(config(0.01));
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(7);
        let mut ranges = vec![5.0f32; 100_000];
        lidar.add_noise(&mut rng, &mut ranges);
        let n = ranges.len() as f64;
        let mean = ranges.iter().map(|&r| r as f64).sum::<f64>() / n;
        let std = (ranges
            .iter()
            .map(|&r| (r as f64 - mean).powi(2))
            .sum::<f64>()
            / n)
            .sqrt();
        assert!((mean - 5.0).abs() < 2e-4, "mean {mean}");
        assert!((std - 0.01).abs() < 2e-4, "std {std}");
        for (k, want) in [(1.0, 0.3173), (2.0, 0.0455), (3.0, 0.0027)] {
            let beyond = ranges
                .iter()
                .filter(|&&r| ((r as f64 - 5.0) / 0.01).abs() > k)
                .count() as f64
                / n;
            assert!(
                (beyond - want).abs() < 0.1 * want + 1e-3,
                "P(|z| > {k}) = {beyond}, want {want}"
            );
        }
        let mut again = vec![5.0f32; 100_000];
        lidar.add_noise(
            &mut rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(7),
            &mut again,
        );
        assert_eq!(ranges, again);
        let mut max = vec![30.0f32; 10];
        lidar.add_noise(&mut rng, &mut max);
        assert!(
            max.iter().all(|&r| r == 30.0),
            "no-hit beams keep max range"
        );
    }
}
