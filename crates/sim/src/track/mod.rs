//! Race tracks: centerline with widths, optional raceline, walls and their spatial index.

mod csv;
mod grid;
mod path;
pub mod synthetic;
mod walls;

use std::path::{Path, PathBuf};

use glam::DVec2;

pub use self::csv::{CenterlineRow, RacelineRow, parse_centerline, parse_raceline};
pub(crate) use self::grid::segment_box_distance;
pub use self::grid::{CELL, NEAR_RADIUS, Segment, WallGrid};
pub use self::path::{ClosedPath, Frenet};
pub use self::walls::{SEPARATING_WALL, corridor_rings, separate_sections, signed_area};
use crate::error::{Result, SimError};

macro_rules! csv {
    ($name:literal, $kind:literal) => {
        include_str!(concat!("../../../../tracks/", $name, "_", $kind, ".csv"))
    };
}

/// The circuits shipped in `tracks/` (f1tenth_racetracks, GPL-3.0), compiled into the binary:
/// `(name, centerline CSV, raceline CSV if any)`.
pub const SHIPPED: &[(&str, &str, Option<&str>)] = &[
    (
        "Austin",
        csv!("Austin", "centerline"),
        Some(csv!("Austin", "raceline")),
    ),
    (
        "BrandsHatch",
        csv!("BrandsHatch", "centerline"),
        Some(csv!("BrandsHatch", "raceline")),
    ),
    (
        "Budapest",
        csv!("Budapest", "centerline"),
        Some(csv!("Budapest", "raceline")),
    ),
    (
        "Catalunya",
        csv!("Catalunya", "centerline"),
        Some(csv!("Catalunya", "raceline")),
    ),
    (
        "Hockenheim",
        csv!("Hockenheim", "centerline"),
        Some(csv!("Hockenheim", "raceline")),
    ),
    (
        "IMS",
        csv!("IMS", "centerline"),
        Some(csv!("IMS", "raceline")),
    ),
    (
        "Melbourne",
        csv!("Melbourne", "centerline"),
        Some(csv!("Melbourne", "raceline")),
    ),
    ("Montreal", csv!("Montreal", "centerline"), None),
    (
        "Monza",
        csv!("Monza", "centerline"),
        Some(csv!("Monza", "raceline")),
    ),
    (
        "MoscowRaceway",
        csv!("MoscowRaceway", "centerline"),
        Some(csv!("MoscowRaceway", "raceline")),
    ),
    (
        "Nuerburgring",
        csv!("Nuerburgring", "centerline"),
        Some(csv!("Nuerburgring", "raceline")),
    ),
    (
        "Sakhir",
        csv!("Sakhir", "centerline"),
        Some(csv!("Sakhir", "raceline")),
    ),
    (
        "SaoPaulo",
        csv!("SaoPaulo", "centerline"),
        Some(csv!("SaoPaulo", "raceline")),
    ),
    (
        "Silverstone",
        csv!("Silverstone", "centerline"),
        Some(csv!("Silverstone", "raceline")),
    ),
    (
        "Spa",
        csv!("Spa", "centerline"),
        Some(csv!("Spa", "raceline")),
    ),
];

/// Names of the shipped tracks, in alphabetical order.
pub fn shipped_names() -> Vec<&'static str> {
    SHIPPED.iter().map(|t| t.0).collect()
}

/// A raceline: the path and its speed profile.
#[derive(Clone, Debug)]
pub struct Raceline {
    /// The closed raceline path.
    pub path: ClosedPath,
    /// Speed at each raceline point, m/s.
    pub speed: Vec<f64>,
}

/// A loaded track.
#[derive(Clone, Debug)]
pub struct Track {
    /// Track name (file stem without `_centerline`).
    pub name: String,
    /// Where the centerline came from (`tracks/NAME_centerline.csv` for shipped tracks).
    pub source: PathBuf,
    /// Centerline.
    pub centerline: ClosedPath,
    /// Distance from the centerline to the right edge at each centerline point, m (the CSV's,
    /// narrowed where two sections overlap: [`separate_sections`]).
    pub w_right: Vec<f64>,
    /// Distance from the centerline to the left edge at each centerline point, m (likewise).
    pub w_left: Vec<f64>,
    /// The CSV line of each centerline point (1-based; repeated points are dropped, so this
    /// is not `index + 2`).
    pub lines: Vec<usize>,
    /// Raceline, if the track has one.
    pub raceline: Option<Raceline>,
    /// Wall rings, drivable side on the left of each edge.
    pub walls: Vec<Vec<DVec2>>,
    /// Spatial index of the walls.
    pub grid: WallGrid,
}

impl Track {
    /// Loads a shipped track by name, a centerline CSV by path (a `NAME_raceline.csv`
    /// beside a `NAME_centerline.csv` is loaded too), or a generated circuit, `synthetic:N` or
    /// `esses:N` (see [`synthetic`]; no raceline).
    ///
    /// # Errors
    /// [`SimError::UnknownTrack`] for a name that is neither shipped nor a file; read and parse
    /// errors naming the file and line; [`SimError::Track`] for a `synthetic:` or `esses:` spec
    /// whose `N` is not an integer.
    pub fn load(spec: &str) -> Result<Self> {
        if let Some((style, n)) = synthetic::Style::split(spec) {
            return Self::synthetic(spec, style, n);
        }
        if let Some((name, center, race)) = SHIPPED.iter().find(|t| t.0.eq_ignore_ascii_case(spec))
        {
            let dir = Path::new("tracks");
            return Self::from_csv_text(
                name,
                &dir.join(format!("{name}_centerline.csv")),
                center,
                race.map(|r| (dir.join(format!("{name}_raceline.csv")), r))
                    .as_ref()
                    .map(|(p, t)| (p.as_path(), *t)),
            );
        }
        let path = Path::new(spec);
        let looks_like_a_file = spec.contains(['/', '\\']) || spec.ends_with(".csv");
        if looks_like_a_file && !path.is_file() {
            return Err(SimError::io(
                path,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
            ));
        }
        if !path.is_file() {
            return Err(SimError::UnknownTrack {
                name: spec.into(),
                known: shipped_names().join(", "),
            });
        }
        let text = std::fs::read_to_string(path).map_err(|e| SimError::io(path, e))?;
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("track");
        let name = stem.strip_suffix("_centerline").unwrap_or(stem);
        let race_path = path.with_file_name(format!("{name}_raceline.csv"));
        let race_text = if race_path.is_file() {
            Some(std::fs::read_to_string(&race_path).map_err(|e| SimError::io(&race_path, e))?)
        } else {
            None
        };
        Self::from_csv_text(
            name,
            path,
            &text,
            race_text.as_deref().map(|t| (race_path.as_path(), t)),
        )
    }

    /// Generated circuit `n` (the text after `style`'s prefix in `spec`), named `spec`.
    fn synthetic(spec: &str, style: synthetic::Style, n: &str) -> Result<Self> {
        let err = |message: String| SimError::Track {
            path: PathBuf::from(spec),
            message,
        };
        let n: u64 = n.trim().parse().map_err(|_| {
            err(format!(
                "expected `{}N` with a whole number N ≥ 0, found `{spec}`",
                style.prefix()
            ))
        })?;
        let points = synthetic::centerline(style, n).map_err(err)?;
        let rows: Vec<CenterlineRow> = points
            .iter()
            .enumerate()
            .map(|(i, p)| CenterlineRow {
                x: p.x,
                y: p.y,
                w_right: synthetic::HALF_WIDTH,
                w_left: synthetic::HALF_WIDTH,
                line: i + 2,
            })
            .collect();
        Self::from_rows(spec, Path::new(spec), &rows, None)
    }

    /// Builds a track from centerline (and raceline) CSV texts; paths only name the sources in errors.
    ///
    /// # Errors
    /// Parse errors naming file and line; [`SimError::Track`] for degenerate geometry.
    pub fn from_csv_text(
        name: &str,
        path: &Path,
        centerline: &str,
        raceline: Option<(&Path, &str)>,
    ) -> Result<Self> {
        let rows = parse_centerline(path, centerline)?;
        Self::from_rows(name, path, &rows, raceline)
    }

    /// Builds a track from parsed centerline rows (and a raceline CSV text); `path` names the
    /// source in errors.
    fn from_rows(
        name: &str,
        path: &Path,
        rows: &[CenterlineRow],
        raceline: Option<(&Path, &str)>,
    ) -> Result<Self> {
        let track_err = |message: String| SimError::Track {
            path: path.to_path_buf(),
            message,
        };
        let mut pts = Vec::with_capacity(rows.len());
        let (mut w_right, mut w_left, mut lines) = (Vec::new(), Vec::new(), Vec::new());
        for r in rows {
            let p = DVec2::new(r.x, r.y);
            if pts.last().is_some_and(|q: &DVec2| q.distance(p) < 1e-9) {
                continue;
            }
            pts.push(p);
            w_right.push(r.w_right);
            w_left.push(r.w_left);
            lines.push(r.line);
        }
        if pts.len() > 1 && pts[0].distance(*pts.last().unwrap()) < 1e-9 {
            pts.pop();
            w_right.pop();
            w_left.pop();
            lines.pop();
        }
        reject_reversals(path, &pts, &lines)?;
        let centerline = ClosedPath::new(pts.iter().copied()).map_err(track_err)?;
        let (w_right, w_left) = separate_sections(&centerline, &w_right, &w_left);
        let raceline = match raceline {
            Some((rpath, text)) => {
                let rows = parse_raceline(rpath, text)?;
                let path = ClosedPath::new(rows.iter().map(|r| DVec2::new(r.x, r.y))).map_err(
                    |message| SimError::Track {
                        path: rpath.to_path_buf(),
                        message,
                    },
                )?;
                if path.len() != rows.len() {
                    return Err(SimError::Track {
                        path: rpath.to_path_buf(),
                        message: "raceline has repeated points".into(),
                    });
                }
                Some(Raceline {
                    path,
                    speed: rows.iter().map(|r| r.vx).collect(),
                })
            }
            None => None,
        };
        let walls = corridor_rings(&pts, &w_right, &w_left);
        if walls.is_empty() {
            return Err(track_err(
                "the corridor around the centerline is empty".into(),
            ));
        }
        let drivable: Vec<(DVec2, f64)> = pts
            .iter()
            .zip(w_right.iter().zip(&w_left))
            .map(|(&p, (&r, &l))| (p, r.max(l) + CELL))
            .collect();
        let grid = WallGrid::new(&walls, &drivable).map_err(track_err)?;
        Ok(Self {
            name: name.into(),
            source: path.to_path_buf(),
            centerline,
            w_right,
            w_left,
            lines,
            raceline,
            walls,
            grid,
        })
    }

    /// Right and left half-widths at arc length `s` of the centerline, interpolated, m.
    pub fn widths_at(&self, s: f64) -> (f64, f64) {
        let (i, u) = self.centerline.locate(s);
        let j = (i + 1) % self.centerline.len();
        (
            self.w_right[i] * (1.0 - u) + self.w_right[j] * u,
            self.w_left[i] * (1.0 - u) + self.w_left[j] * u,
        )
    }

    /// Checks that a car of width `car_width` (m) fits everywhere.
    ///
    /// # Errors
    /// [`SimError::TrackLine`] naming the CSV line of the first point where the total width
    /// `w_tr_right_m + w_tr_left_m` is below the car width.
    pub fn check_fits(&self, car_width: f64) -> Result<()> {
        for (i, (r, l)) in self.w_right.iter().zip(&self.w_left).enumerate() {
            if r + l < car_width {
                return Err(SimError::TrackLine {
                    path: self.source.clone(),
                    line: self.lines[i],
                    message: format!(
                        "track width {:.3} m is below the car width {car_width} m",
                        r + l
                    ),
                });
            }
        }
        Ok(())
    }
}

/// A centerline that turns back on itself at one point (by more than 160°) encloses no
/// corridor; it is an error naming that point's CSV line.
fn reject_reversals(path: &Path, pts: &[DVec2], lines: &[usize]) -> Result<()> {
    let n = pts.len();
    for i in 0..n {
        let incoming = pts[i] - pts[(i + n - 1) % n];
        let outgoing = pts[(i + 1) % n] - pts[i];
        let cos = incoming
            .normalize_or_zero()
            .dot(outgoing.normalize_or_zero());
        if cos < (160f64).to_radians().cos() {
            return Err(SimError::TrackLine {
                path: path.to_path_buf(),
                line: lines[i],
                message: format!(
                    "the centerline turns back on itself here (by {:.0}°)",
                    cos.clamp(-1.0, 1.0).acos().to_degrees()
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_shipped_tracks_load_with_walls() {
        for name in shipped_names() {
            let t = Track::load(name).unwrap();
            assert!(t.walls.len() >= 2, "{name}: outer and inner wall");
            assert_eq!(t.raceline.is_some(), name != "Montreal");
            // The union's area is close to length × width (corners lose or gain a little).
            let area: f64 = t.walls.iter().map(|r| signed_area(r)).sum();
            let nominal = t.centerline.length() * 2.2;
            assert!(
                (area / nominal - 1.0).abs() < 0.02,
                "{name}: area {area} vs {nominal}"
            );
        }
    }

    #[test]
    fn a_wall_separates_montreals_hairpin_legs() {
        let t = Track::load("Montreal").unwrap();
        let c = &t.centerline;
        // s = 185 m: the leg out of the hairpin, 1.91 m from the leg into it.
        let (i, _) = c.locate(185.0);
        let p = c.points()[i];
        let other = (0..c.len())
            .filter(|&j| c.delta_s(c.s_at_point(j), 185.0).abs() > 15.0)
            .min_by(|&a, &b| {
                p.distance(c.points()[a])
                    .total_cmp(&p.distance(c.points()[b]))
            })
            .unwrap();
        let q = c.points()[other];
        assert!((1.85..1.95).contains(&p.distance(q)), "{}", p.distance(q));
        let dir = (q - p).normalize();
        let hit = t.grid.cast(p, dir, 0.0, 10.0);
        let wall = (p.distance(q) - SEPARATING_WALL) / 2.0;
        assert!(
            (hit - wall).abs() < 0.02,
            "hit at {hit} m, wall at {wall} m"
        );
        // From the other leg, the same wall from its other face.
        let back = t.grid.cast(q, -dir, 0.0, 10.0);
        assert!(
            (back - wall).abs() < 0.02,
            "hit at {back} m, wall at {wall} m"
        );
        // Only Montreal has sections this close: every other track keeps its CSV widths.
        for name in shipped_names().into_iter().filter(|n| *n != "Montreal") {
            let t = Track::load(name).unwrap();
            assert!(
                t.w_right.iter().chain(&t.w_left).all(|&w| w == 1.1),
                "{name} was narrowed"
            );
        }
    }

    #[test]
    fn unknown_track_lists_the_shipped_ones() {
        let e = Track::load("Nowhere").unwrap_err().to_string();
        assert!(
            e.contains("unknown track `Nowhere`") && e.contains("Austin"),
            "{e}"
        );
    }

    #[test]
    fn narrow_track_is_rejected_with_its_line() {
        let text = "# x_m, y_m, w_tr_right_m, w_tr_left_m\n0, 0, 1, 1\n10, 0, 0.1, 0.1\n10, 10, 1, 1\n0, 10, 1, 1\n";
        let t = Track::from_csv_text("n", Path::new("n.csv"), text, None).unwrap();
        let e = t.check_fits(0.31).unwrap_err().to_string();
        assert!(e.starts_with("n.csv:3: track width 0.200 m"), "{e}");
        // A repeated point and a blank line before the narrow one: still its own line.
        let text = "# x_m, y_m, w_tr_right_m, w_tr_left_m\n0, 0, 1, 1\n0, 0, 1, 1\n\n10, 0, 0.1, 0.1\n10, 10, 1, 1\n0, 10, 1, 1\n";
        let t = Track::from_csv_text("n", Path::new("n.csv"), text, None).unwrap();
        let e = t.check_fits(0.31).unwrap_err().to_string();
        assert!(e.starts_with("n.csv:5: track width 0.200 m"), "{e}");
    }
}
