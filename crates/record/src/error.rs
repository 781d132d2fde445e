//! Errors of the episode logs; each names the file (and the topic) at fault.

use std::path::PathBuf;

/// What can go wrong writing or reading an episode's MCAP.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The file could not be created, read or flushed.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        error: std::io::Error,
    },
    /// The MCAP container is malformed or could not be written.
    #[error("{path}: {error}")]
    Mcap {
        /// The file.
        path: PathBuf,
        /// The cause.
        error: mcap::McapError,
    },
    /// A chunk does not decompress, or its CRC does not match its content: the file was
    /// damaged after it was written.
    #[error("{path}: corrupt chunk{}: {error}", offset.map(|o| format!(" at byte {o}")).unwrap_or_default())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Where the chunk starts, when the chunk index says.
        offset: Option<u64>,
        /// The CRC mismatch or the decompression error.
        error: mcap::McapError,
    },
    /// A message on a known topic does not decode.
    #[error("{path}: bad {topic} message: {message}")]
    Message {
        /// The file.
        path: PathBuf,
        /// The topic.
        topic: String,
        /// What is wrong.
        message: String,
    },
    /// The file is an MCAP, but a record in it cannot be right.
    #[error("{path}: {message}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// Result alias of the episode logs.
pub type Result<T, E = RecordError> = std::result::Result<T, E>;
