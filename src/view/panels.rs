//! The egui panels: Episode (track, pilot, start, seed, reset, time controls, what to draw), the
//! car's live values (HUD), Replay, Training, Evaluation and Runs.

use std::path::PathBuf;
use std::sync::Arc;

use bevy::prelude::*;
use bevy_egui::{EguiContexts, egui};
use egui_plot::{Legend, Line, Plot};

use super::jobs::Jobs;
use super::replay::Replay;
use super::state::{Pilot, ResetEpisode, ViewConfig, ViewSettings, ViewState};
use crate::episode::plugin::{Body, Car, Control, Episode, RaceTrack};

/// Text fields and choices of the panels.
pub struct Fields {
    replay_path: String,
    dataset: String,
    collect_episodes: usize,
    model_name: String,
    epochs: usize,
    lr: f64,
    batch_size: usize,
    mlp: bool,
    eval_model: String,
    eval_tracks: String,
    eval_episodes: usize,
    runs: Result<Vec<crate::tracking::RunRecord>, String>,
    runs_loaded: bool,
}

impl Default for Fields {
    fn default() -> Self {
        Self {
            replay_path: String::new(),
            dataset: String::new(),
            collect_episodes: 60,
            model_name: "window".into(),
            epochs: 5,
            lr: 1e-3,
            batch_size: 64,
            mlp: false,
            eval_model: "models/default".into(),
            eval_tracks: "all".into(),
            eval_episodes: 2,
            runs: Ok(Vec::new()),
            runs_loaded: false,
        }
    }
}

/// Live values of the car for the HUD.
struct Hud {
    position: glam::DVec2,
    speed: f64,
    steering: f64,
    command: Option<(f64, f64)>,
    laps: u32,
    lap_time: f64,
    best_lap: Option<f64>,
    progress: f64,
    outcome: String,
}

/// Every panel, every frame.
#[allow(clippy::too_many_arguments)]
pub fn ui(
    mut contexts: EguiContexts,
    mut settings: ResMut<ViewSettings>,
    config: Res<ViewConfig>,
    mut track: ResMut<RaceTrack>,
    mut reset: MessageWriter<ResetEpisode>,
    cars: Query<(&Body, &Control, &Episode), With<Car>>,
    mut replay: ResMut<Replay>,
    state: Res<State<ViewState>>,
    mut next: ResMut<NextState<ViewState>>,
    mut jobs: ResMut<Jobs>,
    mut fields: Local<Fields>,
) -> Result {
    let ctx = contexts.ctx_mut()?;
    let driving = *state.get() == ViewState::Drive;

    episode_panel(
        ctx,
        &mut settings,
        &config,
        &mut track,
        &mut reset,
        &mut next,
    );
    let hud = if driving {
        cars.iter()
            .next()
            .map(|(body, control, episode)| Hud::driving(body, control, episode))
    } else {
        Hud::replay(&replay)
    };
    let reference = track
        .0
        .raceline
        .as_ref()
        .map(|r| raceloop_sim::speed_profile::lap_time(&r.path, &r.speed));
    overview_panel(ctx, &track.0, hud.as_ref().map(|h| h.position));
    // One column on the right, each panel a section: an opened one pushes the next down
    // instead of covering it.
    egui::Window::new("raceloop")
        .anchor(egui::Align2::RIGHT_TOP, [-8.0, 8.0])
        .default_width(330.0)
        .show(ctx, |ui| {
            egui::ScrollArea::vertical().show(ui, |ui| {
                car_panel(ui, hud, driving, track.0.centerline.length(), reference);
                replay_panel(ui, &mut fields, &mut replay, driving, &mut next, &mut reset);
                training_panel(
                    ui,
                    &config,
                    &mut jobs,
                    &mut fields,
                    &mut settings,
                    &mut reset,
                );
                evaluation_panel(ui, &config, &mut jobs, &mut fields, &mut replay);
                runs_panel(ui, &mut fields, &jobs.tracking);
            });
        });
    Ok(())
}

/// Track, pilot, start and seed, reset, time controls and what to draw.
fn episode_panel(
    ctx: &egui::Context,
    settings: &mut ViewSettings,
    config: &ViewConfig,
    track: &mut RaceTrack,
    reset: &mut MessageWriter<ResetEpisode>,
    next: &mut NextState<ViewState>,
) {
    egui::Window::new("Episode")
        .default_pos([8.0, 8.0])
        .default_width(250.0)
        .show(ctx, |ui| {
            let mut chosen = track.0.name.clone();
            egui::ComboBox::from_label("track")
                .selected_text(&chosen)
                .show_ui(ui, |ui| {
                    for name in &config.tracks {
                        ui.selectable_value(&mut chosen, name.clone(), name);
                    }
                });
            if chosen != track.0.name {
                match raceloop_sim::Track::load(&chosen) {
                    Ok(t) => {
                        track.0 = Arc::new(t);
                        reset.write(ResetEpisode);
                        next.set(ViewState::Drive);
                    }
                    Err(e) => settings.message = format!("{e:#}"),
                }
            }
            let before = settings.pilot;
            ui.horizontal(|ui| {
                for p in [Pilot::Manual, Pilot::PurePursuit, Pilot::Model] {
                    ui.radio_value(&mut settings.pilot, p, p.label());
                }
            });
            if settings.pilot == Pilot::Model {
                let mut model = settings.model.display().to_string();
                ui.horizontal(|ui| {
                    ui.label("model");
                    if ui.text_edit_singleline(&mut model).lost_focus() {
                        reset.write(ResetEpisode);
                    }
                });
                settings.model = PathBuf::from(model);
            }
            if settings.pilot != before {
                reset.write(ResetEpisode);
            }
            ui.horizontal(|ui| {
                ui.checkbox(&mut settings.random_start, "random start");
                ui.label("seed");
                ui.add(egui::DragValue::new(&mut settings.seed));
            });
            ui.horizontal(|ui| {
                ui.label("obstacles / 100 m");
                ui.add(
                    egui::DragValue::new(&mut settings.obstacle_density)
                        .range(0.0..=10.0)
                        .speed(0.1),
                );
                ui.label("gen. seed");
                ui.add(egui::DragValue::new(&mut settings.obstacle_seed));
                if ui.button("Regenerate").clicked() {
                    reset.write(ResetEpisode);
                    next.set(ViewState::Drive);
                }
            });
            ui.checkbox(
                &mut settings.edit_obstacles,
                "edit obstacles (click: add, drag: move, right-click: remove)",
            );
            ui.horizontal(|ui| {
                if ui.button("Reset (R)").clicked() {
                    reset.write(ResetEpisode);
                    next.set(ViewState::Drive);
                }
                ui.checkbox(&mut settings.auto_reset, "auto reset");
            });
            ui.horizontal(|ui| {
                let label = if settings.paused { "Run" } else { "Pause" };
                if ui.button(label).clicked() {
                    settings.paused = !settings.paused;
                }
                if ui
                    .add_enabled(settings.paused, egui::Button::new("Step"))
                    .clicked()
                {
                    settings.step_requested = true;
                }
            });
            ui.add(
                egui::Slider::new(&mut settings.speed, 0.25..=16.0)
                    .logarithmic(true)
                    .text("× real time"),
            );
            ui.horizontal_wrapped(|ui| {
                ui.checkbox(&mut settings.show_centerline, "centerline");
                ui.checkbox(&mut settings.show_raceline, "raceline");
                ui.checkbox(&mut settings.show_beams, "beams");
                ui.checkbox(&mut settings.show_trail, "trail");
                ui.checkbox(&mut settings.follow, "follow car");
            });
            if settings.pilot == Pilot::Manual {
                ui.small("↑/W faster, ↓/S slower, ←/A ↑ →/D steer; drag to pan, wheel to zoom");
            }
            if !settings.message.is_empty() {
                ui.add(egui::Label::new(egui::RichText::new(&settings.message).small()).wrap());
            }
        });
}

impl Hud {
    /// The simulated car's values.
    fn driving(body: &Body, control: &Control, episode: &Episode) -> Self {
        let st = episode.tracker.stats();
        let done: f64 = st.lap_times.iter().sum();
        Self {
            position: body.0.state().position(),
            speed: body.0.state().v,
            steering: body.0.state().steering,
            command: Some((control.0.steering, control.0.speed)),
            laps: st.laps,
            lap_time: episode.tracker.time() - done,
            best_lap: st.lap_times.iter().copied().reduce(f64::min),
            progress: st.progress,
            outcome: episode
                .tracker
                .outcome()
                .map_or("running".into(), |o| o.as_str().to_string()),
        }
    }

    /// The replayed episode's recorded values at the playback time.
    fn replay(replay: &Replay) -> Option<Self> {
        replay.ego().map(|e| Self {
            position: glam::DVec2::new(e.x, e.y),
            speed: e.speed,
            steering: e.steering,
            command: None,
            laps: 0,
            lap_time: replay.time,
            best_lap: None,
            progress: e.progress,
            outcome: replay
                .events_so_far()
                .last()
                .map_or("replay".into(), |(_, m)| {
                    // "outcome: collision — 1.74 s, ..." → "collision".
                    let m = m.strip_prefix("outcome: ").unwrap_or(m);
                    m.split(" — ").next().unwrap_or(m).to_string()
                }),
        })
    }
}

/// The car's live values (or the replay's recorded ones); `lap_length` in m.
fn car_panel(
    ui: &mut egui::Ui,
    hud: Option<Hud>,
    driving: bool,
    lap_length: f64,
    reference: Option<f64>,
) {
    egui::CollapsingHeader::new("Car")
        .default_open(true)
        .show(ui, |ui| {
            let Some(h) = hud else {
                ui.label("no car");
                return;
            };
            egui::Grid::new("hud").num_columns(2).show(ui, |ui| {
                ui.label("speed");
                ui.monospace(format!("{:6.2} m/s", h.speed));
                ui.end_row();
                ui.label("steering");
                ui.monospace(format!("{:6.1}°", h.steering.to_degrees()));
                ui.end_row();
                if let Some((s, v)) = h.command {
                    ui.label("command");
                    ui.monospace(format!("{:5.1}°, {v:4.2} m/s", s.to_degrees()));
                    ui.end_row();
                }
                ui.label(if driving { "lap" } else { "time" });
                ui.monospace(if driving {
                    format!("{} · {:6.2} s", h.laps + 1, h.lap_time)
                } else {
                    format!("{:6.2} s", h.lap_time)
                });
                ui.end_row();
                ui.label("best lap");
                ui.monospace(h.best_lap.map_or("-".into(), |t| format!("{t:6.2} s")));
                ui.end_row();
                if let Some(r) = reference {
                    ui.label("raceline ref.");
                    ui.monospace(match h.best_lap {
                        Some(t) => format!("{r:6.2} s, gap {:+.2} s", t - r),
                        None => format!("{r:6.2} s"),
                    });
                    ui.end_row();
                }
                ui.label("progress");
                ui.monospace(format!(
                    "{:6.1} m ({:.0} %)",
                    h.progress,
                    100.0 * h.progress / lap_length
                ));
                ui.end_row();
                ui.label("outcome");
                ui.monospace(&h.outcome);
                ui.end_row();
            });
        });
}

/// Open an episode MCAP, play, pause, scrub and change speed.
fn replay_panel(
    ui: &mut egui::Ui,
    fields: &mut Fields,
    replay: &mut Replay,
    driving: bool,
    next: &mut NextState<ViewState>,
    reset: &mut MessageWriter<ResetEpisode>,
) {
    egui::CollapsingHeader::new("Replay")
        .default_open(!driving)
        .show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.label("MCAP");
                ui.text_edit_singleline(&mut fields.replay_path);
            });
            ui.horizontal(|ui| {
                if ui.button("Open").clicked() {
                    replay.request = Some(PathBuf::from(fields.replay_path.trim()));
                }
                if !driving && ui.button("Back to driving").clicked() {
                    next.set(ViewState::Drive);
                    reset.write(ResetEpisode);
                }
            });
            if driving || replay.path.is_none() {
                return;
            }
            ui.horizontal(|ui| {
                let label = if replay.playing { "Pause" } else { "Play" };
                if ui.button(label).clicked() {
                    if !replay.playing && replay.time >= replay.duration() {
                        replay.time = 0.0;
                    }
                    replay.playing = !replay.playing;
                }
                ui.add(
                    egui::Slider::new(&mut replay.speed, 0.25..=16.0)
                        .logarithmic(true)
                        .text("×"),
                );
            });
            let duration = replay.duration();
            ui.add(egui::Slider::new(&mut replay.time, 0.0..=duration).text("s"));
            if let Some(r) = &replay.result {
                ui.small(format!(
                    "{} seed {} · {} · {:.1} m of {:.1} m",
                    r.track,
                    r.seed,
                    r.outcome.as_str(),
                    r.progress_m,
                    r.goal_m
                ));
            }
        });
}

fn datasets() -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir("datasets")
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let p = e.ok()?.path();
            p.join("manifest.json")
                .is_file()
                .then(|| p.display().to_string())
        })
        .collect();
    out.sort();
    out
}

fn training_panel(
    ui: &mut egui::Ui,
    config: &ViewConfig,
    jobs: &mut Jobs,
    f: &mut Fields,
    settings: &mut ViewSettings,
    reset: &mut MessageWriter<ResetEpisode>,
) {
    egui::CollapsingHeader::new("Training")
        .default_open(false)
        .show(ui, |ui| {
            if f.dataset.is_empty() {
                f.dataset = jobs
                    .dataset
                    .as_ref()
                    .map(|d| d.display().to_string())
                    .or_else(|| datasets().pop())
                    .unwrap_or_default();
            }
            egui::ComboBox::from_label("dataset")
                .selected_text(if f.dataset.is_empty() {
                    "none yet"
                } else {
                    &f.dataset
                })
                .show_ui(ui, |ui| {
                    for d in datasets() {
                        ui.selectable_value(&mut f.dataset, d.clone(), d);
                    }
                });
            ui.horizontal(|ui| {
                ui.add(egui::DragValue::new(&mut f.collect_episodes).range(4..=5000));
                if ui.button("collect episodes + extract a dataset").clicked() {
                    jobs.collect(config.resolved.clone(), f.collect_episodes);
                    f.dataset.clear();
                }
            });
            egui::Grid::new("hyper").num_columns(2).show(ui, |ui| {
                ui.label("model name");
                ui.text_edit_singleline(&mut f.model_name);
                ui.end_row();
                ui.label("epochs");
                ui.add(egui::DragValue::new(&mut f.epochs).range(1..=500));
                ui.end_row();
                ui.label("learning rate");
                ui.add(
                    egui::DragValue::new(&mut f.lr)
                        .speed(1e-5)
                        .range(1e-6..=1.0),
                );
                ui.end_row();
                ui.label("batch size");
                ui.add(egui::DragValue::new(&mut f.batch_size).range(1..=4096));
                ui.end_row();
                ui.label("network");
                ui.checkbox(&mut f.mlp, "MLP baseline (else Tiny Lidar Net)");
                ui.end_row();
            });
            ui.horizontal(|ui| {
                let idle = jobs.running.is_none();
                if ui
                    .add_enabled(
                        idle && !f.dataset.is_empty(),
                        egui::Button::new("Start training"),
                    )
                    .clicked()
                {
                    let overrides = vec![
                        format!("training.epochs={}", f.epochs),
                        format!("training.lr={}", f.lr),
                        format!("training.batch_size={}", f.batch_size),
                        format!(
                            "model.architecture={}",
                            if f.mlp { "Mlp" } else { "TinyLidarNet" }
                        ),
                    ];
                    match config.resolved.with_overrides(&overrides) {
                        Ok(r) => jobs.train(r, PathBuf::from(&f.dataset), f.model_name.clone()),
                        Err(e) => jobs.last = format!("{e:#}"),
                    }
                }
                if let Some(job) = &jobs.running
                    && ui.button("Stop").clicked()
                {
                    job.stop.store(true, std::sync::atomic::Ordering::Relaxed);
                    crate::jobs::STOP_JOB.store(true, std::sync::atomic::Ordering::Relaxed);
                }
            });
            let report = match &jobs.running {
                Some(job) => {
                    let r = job.report.lock().expect("not poisoned").clone();
                    ui.label(format!("{}: {}", job.name, status_line(&r)));
                    r
                }
                None => jobs.finished_report.clone(),
            };
            if !jobs.last.is_empty() {
                ui.label(&jobs.last);
            }
            if let Some(model) = jobs.trained.clone()
                && ui.button(format!("Race {}", model.display())).clicked()
            {
                settings.model = model;
                settings.pilot = Pilot::Model;
                reset.write(ResetEpisode);
            }
            Plot::new("loss")
                .height(180.0)
                .legend(Legend::default())
                .x_axis_label("epoch")
                .show(ui, |plot| {
                    plot.line(Line::new("batch loss", report.batch_loss_curve.clone()));
                    plot.line(Line::new("train loss", report.train_loss_curve.clone()));
                    plot.line(Line::new("val loss", report.val_loss_curve.clone()));
                });
        });
}

fn evaluation_panel(
    ui: &mut egui::Ui,
    config: &ViewConfig,
    jobs: &mut Jobs,
    f: &mut Fields,
    replay: &mut Replay,
) {
    egui::CollapsingHeader::new("Evaluation")
        .default_open(false)
        .show(ui, |ui| {
            if let Some(m) = &jobs.trained
                && ui.small_button("use the last trained model").clicked()
            {
                f.eval_model = m.display().to_string();
            }
            egui::Grid::new("eval").num_columns(2).show(ui, |ui| {
                ui.label("model");
                ui.text_edit_singleline(&mut f.eval_model);
                ui.end_row();
                ui.label("tracks");
                ui.text_edit_singleline(&mut f.eval_tracks);
                ui.end_row();
                ui.label("episodes per track");
                ui.add(egui::DragValue::new(&mut f.eval_episodes).range(1..=100));
                ui.end_row();
            });
            if ui
                .add_enabled(jobs.running.is_none(), egui::Button::new("Evaluate"))
                .clicked()
            {
                jobs.evaluate(
                    config.resolved.clone(),
                    PathBuf::from(&f.eval_model),
                    f.eval_tracks.clone(),
                    f.eval_episodes,
                );
            }
            if let Some(job) = &jobs.running {
                let r = job.report.lock().expect("not poisoned").clone();
                ui.label(format!("{}: {}", job.name, status_line(&r)));
            } else if !jobs.last.is_empty() {
                ui.label(&jobs.last);
            }
            let Some(e) = &jobs.evaluation else {
                return;
            };
            let (dir, s) = (&e.dir, &e.summary);
            ui.label(format!(
                "{}: success {:.1} % overall, {} of {} tracks meet the target",
                dir.display(),
                100.0 * s.model_overall.success_rate,
                s.tracks_meeting_target,
                s.model_per_track.len()
            ));
            egui::Grid::new("per_track").striped(true).show(ui, |ui| {
                let pct = |x: Option<f64>| x.map_or("-".into(), |r| format!("{:.0} %", 100.0 * r));
                for header in [
                    "track",
                    "success",
                    "lap time",
                    "vs expert",
                    "vs raceline",
                    "peak a_y",
                    "clearance",
                    "failures (click to replay)",
                ] {
                    ui.strong(header);
                }
                ui.end_row();
                for (name, m) in &s.model_per_track {
                    ui.label(name);
                    ui.label(format!("{:.0} %", 100.0 * m.success_rate));
                    ui.label(
                        m.mean_lap_time_s
                            .map_or("-".into(), |t| format!("{t:.2} s")),
                    );
                    ui.label(pct(m.lap_time_ratio_to_expert));
                    ui.label(pct(m.lap_time_ratio_to_reference));
                    ui.label(format!("{:.1} m/s²", m.peak_lateral_acceleration_mps2));
                    ui.label(format!("{:.2} m", m.min_wall_clearance_m));
                    ui.horizontal(|ui| {
                        for (seed, mcap) in e.failures.get(name).into_iter().flatten() {
                            if ui.small_button(seed.to_string()).clicked() {
                                replay.request = Some(mcap.clone());
                            }
                        }
                    });
                    ui.end_row();
                }
            });
        });
}

fn runs_panel(ui: &mut egui::Ui, f: &mut Fields, tracking: &crate::tracking::TrackingArgs) {
    egui::CollapsingHeader::new("Runs")
        .default_open(false)
        .show(ui, |ui| {
            if ui.button("Refresh").clicked() || !f.runs_loaded {
                f.runs_loaded = true;
                f.runs = crate::stages::runs::recent(tracking).map_err(|e| format!("{e:#}"));
            }
            let runs = match &f.runs {
                Ok(runs) => runs.as_slice(),
                Err(e) => {
                    ui.label(e);
                    return;
                }
            };
            egui::ScrollArea::vertical()
                .max_height(300.0)
                .show(ui, |ui| {
                    egui::Grid::new("runs").striped(true).show(ui, |ui| {
                        for r in runs.iter().take(30) {
                            ui.label(&r.name);
                            ui.label(r.status);
                            let key = crate::stages::runs::KEY_METRICS
                                .iter()
                                .find_map(|k| r.metrics.get(*k).map(|v| format!("{k} {v:.4}")))
                                .unwrap_or_default();
                            ui.label(key);
                            ui.end_row();
                        }
                    });
                });
        });
}

/// A map of the whole circuit (walls and centerline) with the car on it, bottom left.
fn overview_panel(ctx: &egui::Context, track: &raceloop_sim::Track, car: Option<glam::DVec2>) {
    egui::Window::new("Overview")
        .anchor(egui::Align2::LEFT_BOTTOM, [8.0, -8.0])
        .resizable(false)
        .show(ctx, |ui| {
            let size = egui::vec2(220.0, 180.0);
            let (rect, _) = ui.allocate_exact_size(size, egui::Sense::hover());
            let points = track.walls.iter().flatten();
            let (lo, hi) = points.fold(
                (glam::DVec2::splat(f64::MAX), glam::DVec2::splat(f64::MIN)),
                |(lo, hi), p| (lo.min(*p), hi.max(*p)),
            );
            let extent = (hi - lo).max(glam::DVec2::splat(1e-6));
            let scale = (size.x as f64 / extent.x).min(size.y as f64 / extent.y);
            let offset = (glam::DVec2::new(size.x as f64, size.y as f64) - extent * scale) / 2.0;
            // World y is up (REP-103), screen y is down.
            let to_screen = |p: glam::DVec2| {
                let q = (p - lo) * scale + offset;
                egui::pos2(rect.left() + q.x as f32, rect.bottom() - q.y as f32)
            };
            let painter = ui.painter_at(rect);
            for wall in &track.walls {
                let mut line: Vec<egui::Pos2> = wall.iter().map(|&p| to_screen(p)).collect();
                line.extend(line.first().copied());
                painter.add(egui::Shape::line(
                    line,
                    egui::Stroke::new(1.0, egui::Color32::from_gray(200)),
                ));
            }
            if let Some(p) = car {
                painter.circle_filled(to_screen(p), 4.0, egui::Color32::from_rgb(255, 80, 40));
            }
        });
}

/// A job's status line, with the episodes done while it collects or evaluates.
fn status_line(report: &crate::jobs::Report) -> String {
    let mut r = report.clone();
    if matches!(r.stage.as_str(), "collect" | "evaluate") {
        r.read_episodes();
        if r.episodes_total > 0 {
            return format!(
                "{} ({}/{} episodes)",
                r.status, r.episodes_done, r.episodes_total
            );
        }
    }
    r.status
}
