//! Procedurally generated circuits, for data diversity in collection: tracks that no evaluation
//! holds out, with corners the shipped ones have few of. Two styles (see [`Style`]):
//! `synthetic:N` has tight hairpins whose legs share a wall, as Montreal's does; `esses:N` has
//! complexes of corners linked without a straight between them (esses, and a sweeper that
//! tightens into a hairpin), such as SaoPaulo's right hairpin straight into a left one at
//! s ≈ 182 m.
//!
//! A circuit is a loop of straights and circular arcs (turtle graphics), closed exactly by
//! adjusting the straights' lengths: with the corners' headings fixed, the closing condition
//! `Σ Lᵢ·uᵢ + Σ chordᵢ = 0` is linear in the lengths `Lᵢ`, and the least change to the drawn
//! lengths is `L = L⁰ − Uᵀ(UUᵀ)⁻¹(U·L⁰ + c)` (a minimum-norm correction; a linked corner's zero
//! straight stays zero). Drafts that close with a straight shorter than [`MIN_STRAIGHT`], fall
//! outside [`LENGTH`], or come too close to themselves are redrawn; the accepted draft depends
//! on the style and `N` alone.

use std::f64::consts::{PI, TAU};

use glam::DVec2;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::seed::splitmix;

/// Prefix of a generated track's spec in the [`Style::Mixed`] style: `synthetic:N` is circuit
/// `N`; `synthetic:A..B` (in a track list) is circuits `A` to `B − 1`.
pub const PREFIX: &str = "synthetic:";
/// Prefix of a generated track's spec in the [`Style::Esses`] style: `esses:N`, `esses:A..B`.
pub const ESSES_PREFIX: &str = "esses:";

/// How a generated circuit's corners are drawn; the spec's prefix names it. The angles below
/// are as drawn: [`centerline`] then scales every turn by one factor in 0.7–1.4 so that the
/// turns add up to one lap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// `synthetic:N`: 8–14 corners, each after a straight of at least [`MIN_STRAIGHT`]; 30 % are
    /// hairpins (160–185° at radius [`HAIRPIN_RADIUS`]), the others 20–120° at
    /// [`CORNER_RADIUS`].
    Mixed,
    /// `esses:N`: 5–8 complexes of 2–3 corners (40–170° each, radius [`LINKED_RADIUS`]) linked
    /// without a straight, 70 % of them turning the other way from the one before (esses); the
    /// complexes are separated by straights.
    Esses,
}

impl Style {
    /// Every style.
    pub const ALL: [Style; 2] = [Style::Mixed, Style::Esses];

    /// The spec prefix of this style (`synthetic:` or `esses:`).
    pub fn prefix(self) -> &'static str {
        match self {
            Style::Mixed => PREFIX,
            Style::Esses => ESSES_PREFIX,
        }
    }

    /// The style of a generated-circuit spec and the text after its prefix (`esses:7` →
    /// `(Esses, "7")`), or `None` for any other spec.
    pub fn split(spec: &str) -> Option<(Style, &str)> {
        Self::ALL
            .into_iter()
            .find_map(|style| spec.strip_prefix(style.prefix()).map(|rest| (style, rest)))
    }
}

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
/// Radius range of the linked corners of [`Style::Esses`], m, drawn log-uniformly.
pub const LINKED_RADIUS: (f64, f64) = (0.9, 12.0);
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
/// `angle` rad (positive = left). A `linked` corner follows the one before it without a
/// straight (`straight` = 0, which closing the loop keeps).
#[derive(Clone, Copy, Debug)]
struct Corner {
    straight: f64,
    radius: f64,
    angle: f64,
    linked: bool,
}

/// The centerline of generated circuit `n` in `style`: points every [`SPACING`] m, closed
/// implicitly, counter-clockwise or clockwise; the track is [`HALF_WIDTH`] wide on both sides.
///
/// # Errors
/// A message if no draft is accepted within the attempt budget (not seen for any `n` tried:
/// 0–23 of both styles included).
pub fn centerline(style: Style, n: u64) -> Result<Vec<DVec2>, String> {
    let stream = match style {
        Style::Mixed => 0,
        Style::Esses => 0xe55e_5000,
    };
    for attempt in 0..ATTEMPTS {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(
            splitmix(splitmix(n ^ stream) ^ attempt).wrapping_add(0x5eed_7ac5),
        );
        let corners = match style {
            Style::Mixed => draft(&mut rng),
            Style::Esses => draft_esses(&mut rng),
        };
        if let Some(points) = corners.and_then(|c| accepted(&c)) {
            return Ok(points);
        }
    }
    Err(format!(
        "no generated circuit {}{n} was accepted in {ATTEMPTS} drafts",
        style.prefix()
    ))
}

/// Draws the corners of a closed [`Style::Mixed`] loop, or `None` when its straights cannot
/// close it.
fn draft(rng: &mut Xoshiro256PlusPlus) -> Option<Vec<Corner>> {
    let count = rng.random_range(8..=14);
    let corners: Vec<Corner> = (0..count)
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
                linked: false,
            }
        })
        .collect();
    finish(rng, corners)
}

/// Draws the corners of a closed [`Style::Esses`] loop, or `None` when its straights cannot
/// close it.
fn draft_esses(rng: &mut Xoshiro256PlusPlus) -> Option<Vec<Corner>> {
    let (lo, hi) = (LINKED_RADIUS.0.ln(), LINKED_RADIUS.1.ln());
    let mut corners = Vec::new();
    for _ in 0..rng.random_range(5..=8) {
        let mut sign: f64 = if rng.random_bool(0.7) { 1.0 } else { -1.0 };
        for j in 0..rng.random_range(2..=3) {
            if j > 0 && rng.random_bool(0.7) {
                sign = -sign;
            }
            corners.push(Corner {
                straight: if j == 0 {
                    rng.random_range(4.0..40.0)
                } else {
                    0.0
                },
                radius: rng.random_range(lo..hi).exp(),
                angle: sign * rng.random_range(40f64..170.0).to_radians(),
                linked: j > 0,
            });
        }
    }
    finish(rng, corners)
}

/// Scales a draft's turns to one lap (2π, or `None` when that changes them by more than a
/// factor 0.7–1.4 or makes one over 190°), closes it (see [`close`]) and mirrors it with
/// probability ½.
fn finish(rng: &mut Xoshiro256PlusPlus, mut corners: Vec<Corner>) -> Option<Vec<Corner>> {
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
    for (u, c) in units.iter().zip(corners.iter()).filter(|(_, c)| !c.linked) {
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
    for (u, c) in units
        .iter()
        .zip(corners.iter_mut())
        .filter(|(_, c)| !c.linked)
    {
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

    /// Arc lengths (m) where the centerline turns one way and, `within` m further on, the
    /// other way, both at a radius under 12 m: corners linked without a straight.
    fn direction_changes(track: &Track, within: f64) -> usize {
        let c = &track.centerline;
        let (mut count, mut s) = (0, 0.0);
        while s < c.length() {
            let (a, b) = (c.curvature_at(s), c.curvature_at(s + within));
            if a * b < 0.0 && a.abs().min(b.abs()) > 1.0 / 12.0 {
                count += 1;
                s += 10.0;
            } else {
                s += 0.1;
            }
        }
        count
    }

    #[test]
    fn circuits_are_closed_keep_their_gaps_and_depend_on_n_alone() {
        for style in Style::ALL {
            let (mut hairpins, mut linked) = (0, 0);
            for n in 0..12 {
                let spec = format!("{}{n}", style.prefix());
                let points = centerline(style, n).unwrap();
                assert_eq!(
                    points,
                    centerline(style, n).unwrap(),
                    "circuit {spec} is not deterministic"
                );
                let steps: Vec<f64> = (0..points.len())
                    .map(|i| points[i].distance(points[(i + 1) % points.len()]))
                    .collect();
                let length: f64 = steps.iter().sum();
                // The chords of the arcs are a little shorter than the arcs.
                assert!(
                    (0.99 * LENGTH.0..=LENGTH.1).contains(&length),
                    "circuit {spec}: {length} m"
                );
                for (i, d) in steps.iter().enumerate() {
                    assert!(
                        (0.99 * SPACING..=1.01 * SPACING).contains(d),
                        "circuit {spec}, step {i}: {d} m"
                    );
                }
                assert!(keeps_its_gaps(&points, length / points.len() as f64));
                let track = Track::load(&spec).unwrap();
                track.check_fits(0.31).unwrap();
                assert_eq!(track.name, spec);
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
                    "circuit {spec}: κ {tightest}"
                );
                hairpins += usize::from(tightest > 1.0 / HAIRPIN_RADIUS.1);
                linked += usize::from(direction_changes(&track, 1.0) > 0);
            }
            assert_ne!(centerline(style, 0).unwrap(), centerline(style, 1).unwrap());
            match style {
                Style::Mixed => {
                    assert!(
                        hairpins >= 3,
                        "only {hairpins} of 12 circuits have a hairpin"
                    );
                    assert_eq!(linked, 0, "{linked} circuits link corners");
                }
                Style::Esses => assert!(
                    linked >= 10,
                    "only {linked} of 12 esses circuits link corners"
                ),
            }
        }
        assert_ne!(
            centerline(Style::Mixed, 0).unwrap(),
            centerline(Style::Esses, 0).unwrap()
        );
    }

    #[test]
    fn a_malformed_spec_is_an_error_naming_it() {
        for spec in ["synthetic:x1", "esses:-3"] {
            let e = Track::load(spec).unwrap_err().to_string();
            assert!(e.contains(spec) && e.contains("whole number"), "{e}");
        }
    }

    #[test]
    fn the_straights_close_the_loop() {
        let mut corners = vec![
            Corner {
                straight: 10.0,
                radius: 5.0,
                angle: PI / 2.0,
                linked: false,
            },
            Corner {
                straight: 30.0,
                radius: 5.0,
                angle: PI / 2.0,
                linked: false,
            },
            Corner {
                straight: 20.0,
                radius: 5.0,
                angle: PI / 2.0,
                linked: false,
            },
            Corner {
                straight: 5.0,
                radius: 5.0,
                angle: PI / 2.0,
                linked: false,
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
