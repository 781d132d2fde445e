//! `raceloop`: simulate, collect, train Tiny Lidar Net, evaluate — one binary.

mod atomic_file;
mod bench;
mod cli;
mod collect;
mod commands;
mod configs;
mod drive;
mod dvc;
mod evaluate;
mod extract;
mod files;
mod headless;
mod model_driver;
mod overrides;
mod pipeline;
mod provenance;
mod record;
mod result;
mod runs;
mod sim_plugin;
mod stage_metrics;
mod summary;
mod tracking;
mod train_cmd;
#[cfg(feature = "gui")]
mod view;

use std::sync::atomic::{AtomicBool, Ordering};

use clap::Parser;

/// Set by Ctrl-C: long runs stop cleanly at the next step.
pub static STOP: AtomicBool = AtomicBool::new(false);

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    let _ = ctrlc::set_handler(|| {
        if STOP.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!(
            "\nstopping: finishing nothing new; finished episodes are kept (Ctrl-C again to quit now)"
        );
    });
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .without_time()
        .init();
    match commands::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
