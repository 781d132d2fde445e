//! `raceloop`: simulate, collect, train Tiny Lidar Net, evaluate — one binary.
//!
//! The data path reads top-down through the folders: [`config`] (resolved areas, overrides,
//! stage settings) → [`episode`] (the ECS simulation, the headless runner and its recorder,
//! results) → [`stages`] (collect → extract → train → evaluate → pipeline) → [`tracking`]
//! (MLflow runs, provenance, DVC). [`cli`] and [`commands`] turn the command line into stage
//! calls; [`bench`] measures each layer; `view` is the window.

mod bench;
mod cli;
mod commands;
mod config;
mod episode;
#[cfg(test)]
mod fuzz;
mod interrupt;
mod jobs;
mod serve;
mod stages;
mod tracking;
#[cfg(feature = "gui")]
mod view;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    interrupt::install_handler();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .without_time()
        .init();
    match commands::dispatch(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
