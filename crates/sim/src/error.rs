//! Errors of the simulation core. Every variant names the file, line or field at fault.

use std::path::PathBuf;

/// Everything that can go wrong while loading tracks and configs or starting an episode.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A file could not be read.
    #[error("cannot read {path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error (in the message; not chained again).
        error: std::io::Error,
    },
    /// A track CSV line is malformed (wrong column count, not a number, NaN, negative width, ...).
    #[error("{path}:{line}: {message}")]
    TrackLine {
        /// The CSV file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
    /// A track is well-formed line by line but unusable as a whole (too few points, too narrow, ...).
    #[error("{path}: {message}")]
    Track {
        /// The CSV file (or track name).
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A RON config failed to parse or has an unknown or mistyped field.
    #[error("{path}:{line}:{column}: {message}")]
    Config {
        /// The config file.
        path: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// The parser's message, naming the field.
        message: String,
    },
    /// The minimum-curvature raceline QP has no solution.
    #[error("track {track}: the minimum-curvature raceline QP failed ({status})")]
    Raceline {
        /// The track's name.
        track: String,
        /// The solver's status or error.
        status: String,
    },
    /// A config value is out of its valid range.
    #[error("invalid config value `{field}`: {message}")]
    ConfigValue {
        /// Dotted path of the field, e.g. `lidar.num_beams`.
        field: String,
        /// Why the value is rejected.
        message: String,
    },
    /// A named track is not among the shipped ones and is not a path to a CSV.
    #[error("unknown track `{name}`; shipped tracks: {known}")]
    UnknownTrack {
        /// The name asked for.
        name: String,
        /// Comma-separated list of shipped track names.
        known: String,
    },
}

impl SimError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            error: source,
        }
    }
}

/// Result alias of the simulation core.
pub type Result<T, E = SimError> = std::result::Result<T, E>;
