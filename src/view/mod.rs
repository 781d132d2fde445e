//! The window (`gui` feature): watch the expert or a model race, take the wheel, replay an
//! episode's MCAP, and start training and evaluation from egui panels.
//!
//! The same [`SimPlugin`] as headless runs steps the car in `FixedUpdate` at the config's `dt`;
//! the window gates it with [`ViewState`] and changes the simulation speed through
//! `Time<Virtual>`. Drawing sits beside the logic ([`scene`]), never inside it.

mod jobs;
mod obstacles;
mod panels;
mod pilot;
mod replay;
mod scene;
mod state;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use bevy::prelude::*;
use bevy_egui::{EguiPlugin, EguiPrimaryContextPass};
use raceloop_sim::Track;

use crate::episode::plugin::{RaceConfig, RaceTrack, SimPlugin, SimSystems};
pub use state::ViewArgs;
use state::{FrameStats, ResetEpisode, ViewConfig, ViewSettings, ViewState};

/// Opens the window and runs until it is closed; jobs started from its panels are tracked as
/// `tracking` (the command line's global options) says.
///
/// # Errors
/// A bad track, config or model at start.
pub fn open_window(args: &ViewArgs, tracking: &crate::tracking::TrackingArgs) -> Result<()> {
    let resolved = crate::config::Resolved::load(&args.configs, &[])?;
    let mut sim = resolved.sim();
    sim.lidar.period_steps = resolved.config.evaluation.lidar_period_steps;
    sim.episode.laps = 1000.0;
    sim.episode.min_average_speed = 0.01;
    sim.episode.wrong_way_distance = 0.0;
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
    .insert_resource(RaceConfig(sim.clone()))
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
            obstacles::edit,
            scene::pan_zoom,
            scene::draw,
            obstacles::draw,
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
