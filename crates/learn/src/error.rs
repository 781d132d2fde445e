//! Errors of the learning core; each names the file or field at fault.

use std::path::{Path, PathBuf};

/// What can go wrong loading datasets and models or training.
#[derive(Debug, thiserror::Error)]
pub enum LearnError {
    /// A file could not be read or written.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause (in the message; not chained again).
        error: std::io::Error,
    },
    /// A file's content is malformed.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A file could not be written atomically, or a JSON file is malformed.
    #[error(transparent)]
    Files(#[from] raceloop_files::FileError),
    /// Data that cannot be encoded.
    #[error("format: {0}")]
    Format(String),
    /// An invalid setting.
    #[error("invalid `{field}`: {message}")]
    Config {
        /// The field.
        field: String,
        /// Why.
        message: String,
    },
}

impl LearnError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            error: source,
        }
    }
}

/// Result alias of the learning core.
pub type Result<T, E = LearnError> = std::result::Result<T, E>;
