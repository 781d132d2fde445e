//! The window's shared state: its options ([`ViewArgs`]), who drives ([`Pilot`]), drive or
//! replay ([`ViewState`]), what it shows ([`ViewSettings`]), its config, and the resources that
//! the systems of the other view modules share.

use std::path::PathBuf;
use std::time::Duration;

use bevy::prelude::*;
use raceloop_sim::SimConfig;

/// Who drives the car in the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Pilot {
    /// A person: arrow keys or WASD (up/W faster, down/S slower or reverse, left/right steer).
    Manual,
    /// The Pure Pursuit expert.
    PurePursuit,
    /// A trained model (`--model`, `models/default` by default).
    Model,
}

impl Pilot {
    /// Label in the panels.
    pub fn label(self) -> &'static str {
        match self {
            Self::Manual => "Manual (keys)",
            Self::PurePursuit => "Pure Pursuit",
            Self::Model => "Model",
        }
    }
}

/// Options of the window (`raceloop view`, or `raceloop` with no arguments).
#[derive(Debug, Clone, clap::Args)]
pub struct ViewArgs {
    /// Track to open: a shipped name or a centerline CSV path.
    #[arg(long, default_value = "Austin")]
    pub track: String,
    /// Who drives at start.
    #[arg(long, value_enum, default_value_t = Pilot::PurePursuit)]
    pub pilot: Pilot,
    /// Model directory for the Model pilot.
    #[arg(long, default_value = "models/default")]
    pub model: PathBuf,
    /// Simulation speed (0.25 to 16 × real time).
    #[arg(long, default_value_t = 1.0)]
    pub speed: f32,
    /// Initial zoom, m per pixel (the mouse wheel changes it).
    #[arg(long, default_value_t = 0.015)]
    pub zoom: f32,
    /// Open this episode `simulation.mcap` in replay.
    #[arg(long)]
    pub replay: Option<PathBuf>,
    /// Save a screenshot of the window to this PNG after `--exit-after` seconds, then quit
    /// (scripted runs under Xvfb).
    #[arg(long)]
    pub screenshot: Option<PathBuf>,
    /// Quit after this many seconds of wall time, printing frame-time figures.
    #[arg(long)]
    pub exit_after: Option<f32>,
    /// Directory of RON config files.
    #[arg(long, default_value = "configs")]
    pub configs: PathBuf,
    /// Obstacles per 100 m of centerline (0 = none; `experiment=obstacles` uses 2), from
    /// generation seed `--obstacle-seed`; the Episode panel changes both.
    #[arg(long, default_value_t = 0.0)]
    pub obstacles: f64,
    /// Obstacle generation seed.
    #[arg(long, default_value_t = 100)]
    pub obstacle_seed: u64,
}

impl Default for ViewArgs {
    fn default() -> Self {
        Self {
            track: "Austin".into(),
            pilot: Pilot::PurePursuit,
            model: PathBuf::from("models/default"),
            speed: 1.0,
            zoom: 0.015,
            replay: None,
            screenshot: None,
            exit_after: None,
            configs: PathBuf::from("configs"),
            obstacles: 0.0,
            obstacle_seed: 100,
        }
    }
}

/// Whether the simulation runs (drive) or a recorded episode plays (replay).
#[derive(States, Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ViewState {
    /// The simulation steps the car.
    #[default]
    Drive,
    /// A recorded episode plays; the simulation is idle.
    Replay,
}

/// What the window shows and how the simulation runs (edited by the egui panels).
#[derive(Resource, Debug, Clone)]
pub struct ViewSettings {
    /// Current pilot.
    pub pilot: Pilot,
    /// Model directory for [`Pilot::Model`].
    pub model: PathBuf,
    /// Random start (else the grid: s = 0 on the centerline, at rest).
    pub random_start: bool,
    /// Seed of the next episode.
    pub seed: u64,
    /// Start a new episode shortly after one ends.
    pub auto_reset: bool,
    /// Simulation speed, × real time.
    pub speed: f32,
    /// Paused.
    pub paused: bool,
    /// Run one physics step while paused.
    pub step_requested: bool,
    /// Draw the centerline / raceline / LiDAR beams / trail.
    pub show_centerline: bool,
    /// See `show_centerline`.
    pub show_raceline: bool,
    /// See `show_centerline`.
    pub show_beams: bool,
    /// See `show_centerline`.
    pub show_trail: bool,
    /// The camera follows the car (else free pan and zoom).
    pub follow: bool,
    /// Zoom at start, m per pixel.
    pub zoom: f32,
    /// Status line (errors loading a model, a track, a replay...).
    pub message: String,
    /// Obstacles per 100 m of centerline in the next episode (0 = none).
    pub obstacle_density: f64,
    /// Obstacle generation seed of the next episode.
    pub obstacle_seed: u64,
    /// The mouse edits obstacles: click adds a parked car, right-click removes the nearest,
    /// dragging moves one (instead of panning).
    pub edit_obstacles: bool,
}

impl ViewSettings {
    /// The settings at start: the pilot, model and speed of `args`, grid start, everything drawn.
    pub fn new(args: &ViewArgs) -> Self {
        Self {
            pilot: args.pilot,
            model: args.model.clone(),
            random_start: false,
            seed: 0,
            auto_reset: true,
            speed: args.speed.clamp(0.25, 16.0),
            paused: false,
            step_requested: false,
            show_centerline: true,
            show_raceline: true,
            show_beams: true,
            show_trail: true,
            follow: true,
            zoom: args.zoom.clamp(0.002, 0.5),
            message: String::new(),
            obstacle_density: args.obstacles.clamp(0.0, 50.0),
            obstacle_seed: args.obstacle_seed,
            edit_obstacles: false,
        }
    }
}

/// The simulation config and the track list of the window.
#[derive(Resource, Clone)]
pub struct ViewConfig {
    /// Base simulation config (the LiDAR at the evaluation's scan period).
    pub sim: SimConfig,
    /// The resolved config (for training and evaluation jobs).
    pub resolved: crate::config::Resolved,
    /// Shipped track names.
    pub tracks: Vec<String>,
}

/// Events that restart the episode.
#[derive(Message, Debug, Clone, Copy)]
pub struct ResetEpisode;

/// Frame-time figures for `--exit-after`.
#[derive(Resource, Default)]
pub struct FrameStats {
    /// Frames drawn.
    pub frames: u32,
    /// When the first frame was counted.
    pub started: Option<std::time::Instant>,
    /// Time spent in simulation steps.
    pub sim: Duration,
    /// Time spent drawing (gizmos).
    pub draw: Duration,
    /// Physics steps run.
    pub steps: u64,
}

/// The car's recent positions (m) and speeds (m/s), drawn as the trail coloured by speed.
#[derive(Resource, Default)]
pub struct Trail(pub Vec<(Vec2, f32)>);
