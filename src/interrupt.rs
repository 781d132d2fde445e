//! Ctrl-C: the first press asks long runs to stop cleanly at their next step (finished episodes
//! and the best epoch so far are kept); the second quits at once.

use std::sync::atomic::{AtomicBool, Ordering};

/// Set by Ctrl-C.
pub static STOP: AtomicBool = AtomicBool::new(false);

/// Whether Ctrl-C was pressed.
pub fn requested() -> bool {
    STOP.load(Ordering::Relaxed)
}

/// Installs the process's Ctrl-C handler (once, in `main`).
pub fn install_handler() {
    let _ = ctrlc::set_handler(|| {
        if STOP.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!(
            "\nstopping: finishing nothing new; finished episodes are kept (Ctrl-C again to quit now)"
        );
    });
}
