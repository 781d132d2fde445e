//! What every route handler of the service shares.

use std::path::PathBuf;
use std::sync::Arc;

use super::queue::Queue;
use crate::tracking::Tracker;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub(super) queue: Queue,
    pub(super) tracker: Tracker,
    pub(super) configs: PathBuf,
    pub(super) token: Option<Arc<str>>,
}
