//! Command-line interface.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Parser, Subcommand, ValueEnum};

/// raceloop: learning-based autonomous racing in one binary.
///
/// Simulates an F1TENTH car with a 1080-beam LiDAR on real race tracks, drives it with a Pure
/// Pursuit expert, and measures lap times. Tracks: the 15 shipped circuits (`tracks/`) by name,
/// or any centerline CSV in the f1tenth_racetracks format by path.
#[derive(Debug, Parser)]
#[command(name = "raceloop", version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The expert drives laps headless on one track and prints its lap times.
    Drive(DriveArgs),
    /// Benchmarks that print figures (use --json for machine-readable output).
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Lists the shipped tracks with their length.
    Tracks,
}

/// Where configs come from and how a start is chosen; shared by commands that simulate.
#[derive(Debug, Args)]
pub struct SimArgs {
    /// Track: a shipped name (e.g. Austin) or a path to a `*_centerline.csv`.
    #[arg(long, default_value = "Austin")]
    pub track: String,
    /// Directory of RON config files (sim.ron, vehicle.ron, lidar.ron, expert.ron, episode.ron);
    /// a missing file takes the shipped default.
    #[arg(long, default_value = "configs")]
    pub configs: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StartArg {
    /// On the centerline at s = 0, at rest.
    Grid,
    /// Random arc length, lateral offset, heading and speed from the seed.
    Random,
}

#[derive(Debug, Args)]
pub struct DriveArgs {
    #[command(flatten)]
    pub sim: SimArgs,
    /// Laps to drive.
    #[arg(long, default_value_t = 2.0)]
    pub laps: f64,
    /// Start mode.
    #[arg(long, value_enum, default_value_t = StartArg::Grid)]
    pub start: StartArg,
    /// Episode seed (start draw and LiDAR noise).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Simulator speed: steps/s on one core (1 car, 1080-beam scan every 0.01 s step, expert
    /// driving) and LiDAR cost per beam. Reference: f1tenth_gym ≈ 6,950 steps/s per core, 92 µs/scan.
    Sim(BenchSimArgs),
}

#[derive(Debug, Args)]
pub struct BenchSimArgs {
    /// Track to drive on.
    #[arg(long, default_value = "Austin")]
    pub track: String,
    /// Physics steps to time.
    #[arg(long, default_value_t = 200_000)]
    pub steps: u64,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Drive(args) => crate::drive::run(&args),
        Command::Bench(BenchCommand::Sim(args)) => crate::bench::sim(&args),
        Command::Tracks => {
            for name in raceloop_sim::track::shipped_names() {
                let t = raceloop_sim::Track::load(name)?;
                println!(
                    "{name:14} {:7.1} m{}",
                    t.centerline.length(),
                    if t.raceline.is_some() {
                        ""
                    } else {
                        "  (no raceline)"
                    }
                );
            }
            Ok(())
        }
    }
}
