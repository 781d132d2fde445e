//! Readers of the f1tenth_racetracks CSV formats (see `tracks/README.md`).
//!
//! - Centerline: a `#` header, rows `x_m, y_m, w_tr_right_m, w_tr_left_m` separated by `", "`,
//!   closed implicitly (the last row is not a repeat of the first).
//! - Raceline: three `#` lines ending in CRLF, rows `s_m;x_m;y_m;psi_rad;kappa_radpm;vx_mps;ax_mps2`
//!   separated by `;`, closed explicitly (the last row repeats the first point).

use std::path::Path;

use crate::error::{Result, SimError};

/// One centerline row: position (m) and the distance to the right and left track edge (m).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CenterlineRow {
    /// x in the track frame, m.
    pub x: f64,
    /// y in the track frame, m.
    pub y: f64,
    /// Distance from the centerline to the right edge (w.r.t. the driving direction), m.
    pub w_right: f64,
    /// Distance from the centerline to the left edge, m.
    pub w_left: f64,
    /// 1-based line of the row in its CSV file.
    pub line: usize,
}

/// One raceline row. The closing row (a repeat of the first point) is dropped by [`parse_raceline`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RacelineRow {
    /// Arc length along the raceline, m.
    pub s: f64,
    /// x, m.
    pub x: f64,
    /// y, m.
    pub y: f64,
    /// Heading, rad, counter-clockwise from +x.
    pub psi: f64,
    /// Curvature, 1/m, positive for a left turn.
    pub kappa: f64,
    /// Speed profile, m/s.
    pub vx: f64,
}

fn numbers<const N: usize>(
    path: &Path,
    lineno: usize,
    line: &str,
    sep: char,
    what: &str,
) -> Result<[f64; N]> {
    let err = |message: String| SimError::TrackLine {
        path: path.to_path_buf(),
        line: lineno,
        message,
    };
    let fields: Vec<&str> = line.split(sep).map(str::trim).collect();
    if fields.len() != N {
        return Err(err(format!(
            "expected {N} columns ({what}), found {}",
            fields.len()
        )));
    }
    let mut out = [0.0; N];
    for (i, f) in fields.iter().enumerate() {
        let v: f64 = f
            .parse()
            .map_err(|_| err(format!("column {} is not a number: `{f}`", i + 1)))?;
        if !v.is_finite() {
            return Err(err(format!("column {} is not finite: `{f}`", i + 1)));
        }
        out[i] = v;
    }
    Ok(out)
}

/// Data lines of a CSV with `#` comments: (1-based line number, text without CR).
fn data_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r')))
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
}

/// Parses a centerline CSV text. `path` only names the source in errors.
///
/// # Errors
/// [`SimError::TrackLine`] for a row with other than 4 columns, a non-number or non-finite value,
/// or a negative width; [`SimError::Track`] for fewer than 4 points.
pub fn parse_centerline(path: &Path, text: &str) -> Result<Vec<CenterlineRow>> {
    let mut rows = Vec::new();
    for (lineno, line) in data_lines(text) {
        let [x, y, w_right, w_left] = numbers::<4>(
            path,
            lineno,
            line,
            ',',
            "x_m, y_m, w_tr_right_m, w_tr_left_m",
        )?;
        if w_right <= 0.0 || w_left <= 0.0 {
            return Err(SimError::TrackLine {
                path: path.to_path_buf(),
                line: lineno,
                message: format!(
                    "track widths must be positive, found right {w_right} m, left {w_left} m"
                ),
            });
        }
        rows.push(CenterlineRow {
            x,
            y,
            w_right,
            w_left,
            line: lineno,
        });
    }
    if rows.len() < 4 {
        return Err(SimError::Track {
            path: path.to_path_buf(),
            message: format!("a centerline needs at least 4 points, found {}", rows.len()),
        });
    }
    Ok(rows)
}

/// Parses a raceline CSV text and drops its explicit closing row.
///
/// # Errors
/// [`SimError::TrackLine`] for a row with other than 7 columns or a bad number;
/// [`SimError::Track`] for fewer than 4 distinct points.
pub fn parse_raceline(path: &Path, text: &str) -> Result<Vec<RacelineRow>> {
    let mut rows = Vec::new();
    for (lineno, line) in data_lines(text) {
        let [s, x, y, psi, kappa, vx, _ax] = numbers::<7>(
            path,
            lineno,
            line,
            ';',
            "s_m; x_m; y_m; psi_rad; kappa_radpm; vx_mps; ax_mps2",
        )?;
        rows.push(RacelineRow {
            s,
            x,
            y,
            psi,
            kappa,
            vx,
        });
    }
    if let (Some(first), Some(last)) = (rows.first(), rows.last())
        && rows.len() > 1
        && (first.x - last.x).hypot(first.y - last.y) < 1e-6
    {
        rows.pop();
    }
    if rows.len() < 4 {
        return Err(SimError::Track {
            path: path.to_path_buf(),
            message: format!("a raceline needs at least 4 points, found {}", rows.len()),
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "t.csv";

    #[test]
    fn centerline_reads_rows_and_skips_header() {
        let rows = parse_centerline(P.as_ref(), "# x_m, y_m, w_tr_right_m, w_tr_left_m\n0, 0, 1.1, 1.1\n1, 0, 1.1, 1.0\n1, 1, 1, 1\n0, 1, 1, 1\n").unwrap();
        assert_eq!(rows.len(), 4);
        assert_eq!(
            rows[1],
            CenterlineRow {
                x: 1.0,
                y: 0.0,
                w_right: 1.1,
                w_left: 1.0,
                line: 3
            }
        );
    }

    #[test]
    fn centerline_errors_name_the_line() {
        let e = parse_centerline(P.as_ref(), "# h\n0, 0, 1, 1\n1, 0, 1\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("t.csv:3: expected 4 columns"), "{e}");
        let e = parse_centerline(P.as_ref(), "0, 0, 1, 1\n1, NaN, 1, 1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("t.csv:2: column 2 is not finite"), "{e}");
        let e = parse_centerline(P.as_ref(), "0, 0, 1, 1\n1, x, 1, 1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("t.csv:2: column 2 is not a number: `x`"), "{e}");
        let e = parse_centerline(P.as_ref(), "0, 0, 1, 1\n1, 0, 1, 1\n2, 0, 1, 1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("at least 4 points, found 3"), "{e}");
        let e = parse_centerline(P.as_ref(), "0, 0, 1, -1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("t.csv:1: track widths must be positive"), "{e}");
    }

    #[test]
    fn raceline_handles_crlf_header_and_drops_closing_row() {
        let text = "# id\r\n# hash\r\n# s_m; x_m; y_m; psi_rad; kappa_radpm; vx_mps; ax_mps2\r\n\
            0;0;0;0;0;5;0\n1;1;0;1.57;0;5;0\n2;1;1;3.14;0;5;0\n3;0;1;4.71;0;5;0\n4;0;0;0;0;5;0\n";
        let rows = parse_raceline(P.as_ref(), text).unwrap();
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[3].y, 1.0);
    }
}
