//! The window (`gui` feature): watch the expert or a model race, take the wheel, replay an
//! episode's MCAP, and start training and evaluation from egui panels.
//!
//! The same [`SimPlugin`] as headless runs steps the car in `FixedUpdate` at the config's `dt`;
//! the window gates it with [`ViewState`] and changes the simulation speed through
//! `Time<Virtual>`. Drawing sits beside the logic ([`scene`]), never inside it.

mod jobs;
mod panels;
mod pilot;
mod replay;
mod scene;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use bevy::prelude::*;
use bevy_egui::{EguiPlugin, EguiPrimaryContextPass};
use raceloop_sim::{SimConfig, Track};

use crate::sim_plugin::{RaceTrack, SimPlugin, SimSettings, SimSystems};
pub use pilot::Pilot;

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
        }
    }
}

/// The simulation config and the track list of the window.
#[derive(Resource, Clone)]
pub struct ViewConfig {
    /// Base simulation config (the LiDAR at the evaluation's scan period).
    pub sim: SimConfig,
    /// The resolved config (for training and evaluation jobs).
    pub resolved: crate::configs::Resolved,
    /// Shipped track names.
    pub tracks: Vec<String>,
}

/// Events that restart the episode.
#[derive(Message, Debug, Clone, Copy)]
pub struct ResetEpisode;

/// Frame-time figures for `--exit-after`.
#[derive(Resource, Default)]
struct FrameStats {
    frames: u32,
    started: Option<std::time::Instant>,
    sim: Duration,
    draw: Duration,
    steps: u64,
}

/// Opens the window and runs until it is closed; jobs started from its panels are tracked as
/// `tracking` (the command line's global options) says.
///
/// # Errors
/// A bad track, config or model at start.
pub fn run(args: &ViewArgs, tracking: &crate::tracking::TrackingArgs) -> Result<()> {
    let resolved = crate::configs::Resolved::load(&args.configs, &[])?;
    let mut sim = resolved.sim();
    sim.lidar.period_steps = resolved.config.evaluation.lidar_period_steps;
    sim.episode.laps = 1000.0;
    sim.episode.min_average_speed = 0.01;
    sim.validate()?;
    let track = Arc::new(Track::load(&args.track)?);
    let settings = ViewSettings::new(args);
    let mut app = App::new();

    // `main` has installed the tracing subscriber already.
    app.add_plugins(
        DefaultPlugins
            .set(WindowPlugin {
                primary_window: Some(Window {
                    title: "raceloop".into(),
                    resolution: (1280, 800).into(),
                    ..default()
                }),
                ..default()
            })
            .disable::<bevy::log::LogPlugin>(),
    )
    .add_plugins(EguiPlugin::default())
    .insert_resource(Time::<Fixed>::from_seconds(sim.sim.dt))
    .insert_resource(ClearColor(Color::srgb(0.16, 0.30, 0.16)))
    .insert_resource(RaceTrack(track))
    .insert_resource(SimSettings(sim.clone()))
    .insert_resource(ViewConfig {
        sim,
        resolved,
        tracks: raceloop_sim::track::shipped_names()
            .into_iter()
            .map(String::from)
            .collect(),
    })
    .insert_resource(settings)
    .insert_resource(FrameStats::default())
    .insert_resource(replay::Replay::default())
    .insert_resource(jobs::Jobs::new(tracking))
    .init_state::<ViewState>()
    .add_message::<ResetEpisode>()
    .add_plugins(SimPlugin)
    .configure_sets(
        FixedUpdate,
        SimSystems::Input.run_if(in_state(ViewState::Drive)),
    )
    .configure_sets(
        FixedUpdate,
        (
            SimSystems::Step,
            SimSystems::Sense,
            SimSystems::Judge,
            SimSystems::Record,
        )
            .run_if(in_state(ViewState::Drive)),
    )
    .add_systems(Startup, (scene::setup, pilot::first_episode).chain())
    .add_systems(
        FixedUpdate,
        (
            pilot::manual_input.in_set(SimSystems::Input),
            count_step.in_set(SimSystems::Record),
        ),
    )
    .add_systems(
        Update,
        (
            apply_time,
            single_step,
            pilot::reset_on_request,
            pilot::auto_reset,
            scene::rebuild_track,
            scene::follow_camera,
            scene::pan_zoom,
            scene::draw,
            scene::sync_car,
            replay::play,
            jobs::poll,
        )
            .chain(),
    )
    .add_systems(EguiPrimaryContextPass, panels::ui);
    if let Some(path) = &args.replay {
        app.world_mut().resource_mut::<replay::Replay>().request = Some(path.clone());
    }
    if let Some(seconds) = args.exit_after {
        app.insert_resource(Scripted {
            seconds,
            screenshot: args.screenshot.clone(),
            captured_at: None,
        })
        .add_systems(Last, scripted_exit);
    }
    app.insert_resource(StepTimer(None))
        .add_systems(FixedFirst, start_step_timer)
        .add_systems(FixedLast, stop_step_timer);
    app.run();
    Ok(())
}

/// One physics step on request while paused (the panel's Step button).
fn single_step(world: &mut World) {
    let mut settings = world.resource_mut::<ViewSettings>();
    if std::mem::take(&mut settings.step_requested) {
        world.run_schedule(FixedUpdate);
    }
}

/// Applies pause and speed to `Time<Virtual>`.
fn apply_time(settings: Res<ViewSettings>, mut time: ResMut<Time<Virtual>>) {
    time.set_relative_speed(settings.speed);
    // At ×16 a slow frame may carry more than the default 250 ms of simulated time.
    time.set_max_delta(Duration::from_secs(2));
    if settings.paused && !time.is_paused() {
        time.pause();
    } else if !settings.paused && time.is_paused() {
        time.unpause();
    }
}

/// `--exit-after` / `--screenshot`.
#[derive(Resource)]
struct Scripted {
    seconds: f32,
    screenshot: Option<PathBuf>,
    /// Frame count when the screenshot was requested.
    captured_at: Option<u32>,
}

/// Counts frames; after `seconds`, requests the screenshot, waits a few frames for it to be
/// written, prints the frame-time figures and quits.
fn scripted_exit(
    mut stats: ResMut<FrameStats>,
    mut script: ResMut<Scripted>,
    mut commands: Commands,
    mut exit: MessageWriter<AppExit>,
) {
    use bevy::render::view::screenshot::{Screenshot, save_to_disk};
    let started = *stats.started.get_or_insert_with(std::time::Instant::now);
    stats.frames += 1;
    let elapsed = started.elapsed().as_secs_f32();
    if elapsed < script.seconds || stats.frames < 3 {
        return;
    }
    if let Some(path) = script.screenshot.clone() {
        match script.captured_at {
            None => {
                commands
                    .spawn(Screenshot::primary_window())
                    .observe(save_to_disk(path));
                script.captured_at = Some(stats.frames);
                return;
            }
            Some(at) if stats.frames < at + 10 => return,
            Some(_) => {}
        }
    }
    let n = f64::from(stats.frames);
    println!(
        "frames: {n} in {elapsed:.1} s = {:.1} fps; per frame: simulation {:.3} ms ({} steps in all), drawing (gizmos) {:.3} ms",
        n / f64::from(elapsed),
        stats.sim.as_secs_f64() * 1e3 / n,
        stats.steps,
        stats.draw.as_secs_f64() * 1e3 / n
    );
    exit.write(AppExit::Success);
}

/// When the current fixed step started.
#[derive(Resource)]
struct StepTimer(Option<std::time::Instant>);

fn start_step_timer(mut timer: ResMut<StepTimer>) {
    timer.0 = Some(std::time::Instant::now());
}

fn stop_step_timer(mut timer: ResMut<StepTimer>, mut stats: ResMut<FrameStats>) {
    if let Some(t) = timer.0.take() {
        stats.sim += t.elapsed();
    }
}

fn count_step(mut stats: ResMut<FrameStats>) {
    stats.steps += 1;
}
