//! Procedurally generated circuits (`synthetic:N`), for data diversity in collection: tracks
//! that no evaluation holds out, with corners the shipped ones have few of (tight hairpins whose
//! legs share a wall, as Montreal's does).
//!
//! A circuit is a loop of straights and circular arcs (turtle graphics), closed exactly by
//! adjusting the straights' lengths: with the corners' headings fixed, the closing condition
//! `Σ Lᵢ·uᵢ + Σ chordᵢ = 0` is linear in the lengths `Lᵢ`, and the least change to the drawn
//! lengths is `L = L⁰ − Uᵀ(UUᵀ)⁻¹(U·L⁰ + c)` (a minimum-norm correction). Drafts that close with a
//! straight shorter than [`MIN_STRAIGHT`], fall outside [`LENGTH`], or come too close to
//! themselves are redrawn; the accepted draft depends on `N` alone.

use std::f64::consts::{PI, TAU};

use glam::DVec2;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::seed::splitmix;

/// Prefix of a synthetic track's spec: `synthetic:N` is circuit `N`; `synthetic:A..B` (in a
/// track list) is circuits `A` to `B − 1`.
pub const PREFIX: &str = "synthetic:";
/// Half-width of a synthetic track on either side of the centerline, m (the shipped tracks'
/// 2.2 m total width).
pub const HALF_WIDTH: f64 = 1.1;
/// Spacing of the generated centerline points, m (the shipped centerlines have about 0.33 m).
pub const SPACING: f64 = 0.3;
/// Allowed lap length, m (the shipped tracks run 285–554 m).
pub const LENGTH: (f64, f64) = (250.0, 560.0);
/// Shortest straight between two corners, m.
pub const MIN_STRAIGHT: f64 = 2.0;
/// Radius range of hairpins (turns of 160–185°), m; Montreal's centerline hairpin has 0.84 m,
/// the car's full-lock radius is 0.74 m. Below the half-width (1.1 m) the hairpin's legs
/// share one corridor.
pub const HAIRPIN_RADIUS: (f64, f64) = (0.9, 2.0);
/// Radius range of other corners (20–120°), m, drawn log-uniformly.
pub const CORNER_RADIUS: (f64, f64) = (2.0, 25.0);
/// Least distance between centerline points more than [`NEAR_S`] apart along the track, m.
/// Closer than the track width (a hairpin's legs), the track's walls leave a thin wall between
/// the two sections (see `separate_sections`).
pub const MIN_GAP_NEAR: f64 = 1.8;
/// Least distance between centerline points more than [`FAR_S`] apart along the track, m (a
/// wall between them, with room on both sides): only a hairpin's legs may run closer.
pub const MIN_GAP_FAR: f64 = 3.5;
/// Arc-length separations (m) beyond which [`MIN_GAP_NEAR`] and [`MIN_GAP_FAR`] apply.
pub const NEAR_S: f64 = 4.0;
/// See [`NEAR_S`].
pub const FAR_S: f64 = 60.0;
/// Drafts tried before giving up.
const ATTEMPTS: u64 = 10_000;

/// One corner of a draft: a straight of `straight` m, then an arc of `radius` m turning by
/// `angle` rad (positive = left).
#[derive(Clone, Copy, Debug)]
struct Corner {
    straight: f64,
    radius: f64,
    angle: f64,
}

/// The centerline of synthetic circuit `n`: points every [`SPACING`] m, closed implicitly,
/// counter-clockwise or clockwise; the track is [`HALF_WIDTH`] wide on both sides.
///
/// # Errors
/// A message if no draft is accepted within the attempt budget (not seen for any `n` tried,
/// 0–23 included).
pub fn centerline(n: u64) -> Result<Vec<DVec2>, String> {
    for attempt in 0..ATTEMPTS {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(
            splitmix(splitmix(n) ^ attempt).wrapping_add(0x5eed_7ac5),
        );
        if let Some(points) = draft(&mut rng).and_then(|c| accepted(&c)) {
            return Ok(points);
        }
    }
    Err(format!(
        "no synthetic circuit {n} was accepted in {ATTEMPTS} drafts"
    ))
}

/// Draws the corners of a closed loop, or `None` when its straights cannot close it.
fn draft(rng: &mut Xoshiro256PlusPlus) -> Option<Vec<Corner>> {
    let count = rng.random_range(8..=14);
    let mut corners: Vec<Corner> = (0..count)
        .map(|_| {
            let hairpin = rng.random_bool(0.3);
            let (angle, radius) = if hairpin {
                (
                    rng.random_range(160f64..185.0).to_radians(),
                    rng.random_range(HAIRPIN_RADIUS.0..HAIRPIN_RADIUS.1),
                )
            } else {
                let (lo, hi) = (CORNER_RADIUS.0.ln(), CORNER_RADIUS.1.ln());
                (
                    rng.random_range(20f64..120.0).to_radians(),
                    rng.random_range(lo..hi).exp(),
                )
            };
            let sign = if rng.random_bool(0.7) { 1.0 } else { -1.0 };
            Corner {
                straight: rng.random_range(4.0..40.0),
                radius,
                angle: sign * angle,
            }
        })
        .collect();
    let total: f64 = corners.iter().map(|c| c.angle).sum();
    let scale = TAU / total;
    if !(0.7..=1.4).contains(&scale) {
        return None;
    }
    for c in &mut corners {
        c.angle *= scale;
        if c.angle.abs() > 190f64.to_radians() {
            return None;
        }
    }
    if !close(&mut corners) {
        return None;
    }
    if rng.random_bool(0.5) {
        for c in &mut corners {
            c.angle = -c.angle;
        }
    }
    Some(corners)
}

/// Adjusts the straights so that the loop ends where it starts (see the module docs); false if
/// that leaves one shorter than [`MIN_STRAIGHT`].
fn close(corners: &mut [Corner]) -> bool {
    let mut heading = 0.0;
    let mut units = Vec::with_capacity(corners.len());
    let mut chords = DVec2::ZERO;
    for c in corners.iter() {
        units.push(DVec2::from_angle(heading));
        chords += arc_end(heading, c.radius, c.angle);
        heading += c.angle;
    }
    let (mut uu, mut gap) = ([[0.0; 2]; 2], chords);
    for (u, c) in units.iter().zip(corners.iter()) {
        uu[0][0] += u.x * u.x;
        uu[0][1] += u.x * u.y;
        uu[1][1] += u.y * u.y;
        gap += *u * c.straight;
    }
    let det = uu[0][0] * uu[1][1] - uu[0][1] * uu[0][1];
    if det.abs() < 1e-9 {
        return false;
    }
    let lambda = DVec2::new(
        (uu[1][1] * gap.x - uu[0][1] * gap.y) / det,
        (uu[0][0] * gap.y - uu[0][1] * gap.x) / det,
    );
    for (u, c) in units.iter().zip(corners.iter_mut()) {
        c.straight -= u.dot(lambda);
        if c.straight < MIN_STRAIGHT {
            return false;
        }
    }
    true
}

/// Displacement over an arc of `radius` turning by `angle` from `heading` (rad).
fn arc_end(heading: f64, radius: f64, angle: f64) -> DVec2 {
    let side = radius * angle.signum();
    let left = DVec2::from_angle(heading + PI / 2.0);
    left * side - DVec2::from_angle(heading + angle + PI / 2.0) * side
}

/// Samples a closed draft every [`SPACING`] m, or `None` when it breaks the length or gap rules.
fn accepted(corners: &[Corner]) -> Option<Vec<DVec2>> {
    let length: f64 = corners
        .iter()
        .map(|c| c.straight + c.radius * c.angle.abs())
        .sum();
    if !(LENGTH.0..=LENGTH.1).contains(&length) {
        return None;
    }
    let count = (length / SPACING).round() as usize;
    let step = length / count as f64;
    let mut points = Vec::with_capacity(count);
    let (mut start, mut heading, mut s_start) = (DVec2::ZERO, 0.0, 0.0);
    let mut k = 0;
    for c in corners {
        let arc = c.radius * c.angle.abs();
        let end = s_start + c.straight + arc;
        while k < count && (k as f64) * step < end {
            let u = k as f64 * step - s_start;
            points.push(if u <= c.straight {
                start + DVec2::from_angle(heading) * u
            } else {
                let a = (u - c.straight) / c.radius * c.angle.signum();
                start + DVec2::from_angle(heading) * c.straight + arc_end(heading, c.radius, a)
            });
            k += 1;
        }
        start += DVec2::from_angle(heading) * c.straight + arc_end(heading, c.radius, c.angle);
        heading += c.angle;
        s_start = end;
    }
    keeps_its_gaps(&points, step).then_some(points)
}

/// Whether points more than [`NEAR_S`] apart along the loop keep [`MIN_GAP_NEAR`], and those
/// more than [`FAR_S`] apart keep [`MIN_GAP_FAR`].
fn keeps_its_gaps(points: &[DVec2], step: f64) -> bool {
    let n = points.len();
    for i in 0..n {
        for j in i + 1..n {
            let along = ((j - i).min(n + i - j)) as f64 * step;
            if along <= NEAR_S {
                continue;
            }
            let need = if along > FAR_S {
                MIN_GAP_FAR
            } else {
                MIN_GAP_NEAR
            };
            if points[i].distance_squared(points[j]) < need * need {
                return false;
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::track::Track;

    #[test]
    fn circuits_are_closed_keep_their_gaps_and_depend_on_n_alone() {
        let mut hairpins = 0;
        for n in 0..12 {
            let points = centerline(n).unwrap();
            assert_eq!(
                points,
                centerline(n).unwrap(),
                "circuit {n} is not deterministic"
            );
            let steps: Vec<f64> = (0..points.len())
                .map(|i| points[i].distance(points[(i + 1) % points.len()]))
                .collect();
            let length: f64 = steps.iter().sum();
            // The chords of the arcs are a little shorter than the arcs.
            assert!(
                (0.99 * LENGTH.0..=LENGTH.1).contains(&length),
                "circuit {n}: {length} m"
            );
            for (i, d) in steps.iter().enumerate() {
                assert!(
                    (0.99 * SPACING..=1.01 * SPACING).contains(d),
                    "circuit {n}, step {i}: {d} m"
                );
            }
            assert!(keeps_its_gaps(&points, length / points.len() as f64));
            let track = Track::load(&format!("synthetic:{n}")).unwrap();
            track.check_fits(0.31).unwrap();
            assert_eq!(track.name, format!("synthetic:{n}"));
            let tightest = (0..points.len())
                .map(|i| {
                    track
                        .centerline
                        .curvature_at(track.centerline.s_at_point(i))
                        .abs()
                })
                .fold(0.0, f64::max);
            assert!(
                tightest < 1.0 / HAIRPIN_RADIUS.0 * 1.05,
                "circuit {n}: κ {tightest}"
            );
            hairpins += usize::from(tightest > 1.0 / HAIRPIN_RADIUS.1);
        }
        assert!(
            hairpins >= 3,
            "only {hairpins} of 12 circuits have a hairpin"
        );
        assert_ne!(centerline(0).unwrap(), centerline(1).unwrap());
    }

    #[test]
    fn a_malformed_spec_is_an_error_naming_it() {
        let e = Track::load("synthetic:x1").unwrap_err().to_string();
        assert!(
            e.contains("synthetic:x1") && e.contains("whole number"),
            "{e}"
        );
    }

    #[test]
    fn the_straights_close_the_loop() {
        let mut corners = vec![
            Corner {
                straight: 10.0,
                radius: 5.0,
                angle: PI / 2.0,
            },
            Corner {
                straight: 30.0,
                radius: 5.0,
                angle: PI / 2.0,
            },
            Corner {
                straight: 20.0,
                radius: 5.0,
                angle: PI / 2.0,
            },
            Corner {
                straight: 5.0,
                radius: 5.0,
                angle: PI / 2.0,
            },
        ];
        assert!(close(&mut corners));
        let mut at = DVec2::ZERO;
        let mut heading = 0.0;
        for c in &corners {
            at += DVec2::from_angle(heading) * c.straight + arc_end(heading, c.radius, c.angle);
            heading += c.angle;
        }
        assert!(at.length() < 1e-9, "{at}");
        // A rectangle: opposite straights end up equal, at the mean of the drawn lengths.
        assert!(
            (corners[0].straight - 15.0).abs() < 1e-9 && (corners[2].straight - 15.0).abs() < 1e-9
        );
        assert!(
            (corners[1].straight - 17.5).abs() < 1e-9 && (corners[3].straight - 17.5).abs() < 1e-9
        );
    }
}
