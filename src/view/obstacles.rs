//! Obstacles in the window: drawn from the episode (or the replayed episode's `config.ron`),
//! and edited with the mouse while any pilot drives: a click adds a parked car across the
//! track's heading at the cursor, a right-click removes the nearest one, a drag moves one.
//! Every edit goes to the episode's tracker (contact, clearance, passes), to the LiDAR (which
//! reads the tracker's set) and to the expert's plan.

use std::sync::Arc;

use bevy::prelude::*;
use bevy::window::PrimaryWindow;
use raceloop_sim::obstacle::PARKED_CAR;
use raceloop_sim::{Obstacle, Shape};

use super::replay::Replay;
use super::scene::MainCamera;
use super::state::{ViewSettings, ViewState};
use crate::episode::plugin::{Car, Driver, Episode, RaceTrack};

/// How close to an obstacle's centre a click must be to pick it, m.
const PICK_RADIUS: f64 = 0.6;

/// The obstacle being dragged, by id.
#[derive(Default)]
pub struct Dragging(Option<u32>);

/// The cursor's position in the world, m.
fn cursor_world(
    windows: &Query<&Window, With<PrimaryWindow>>,
    camera: &Query<(&Camera, &GlobalTransform), With<MainCamera>>,
) -> Option<glam::DVec2> {
    let cursor = windows.single().ok()?.cursor_position()?;
    let (camera, at) = camera.single().ok()?;
    let p = camera.viewport_to_world_2d(at, cursor).ok()?;
    Some(glam::DVec2::new(p.x as f64, p.y as f64))
}

/// Adds, moves and removes obstacles with the mouse when [`ViewSettings::edit_obstacles`] is on.
#[allow(clippy::too_many_arguments)] // A Bevy system: one parameter per resource it reads.
pub fn edit(
    buttons: Res<ButtonInput<MouseButton>>,
    wants: Option<Res<bevy_egui::input::EguiWantsInput>>,
    settings: Res<ViewSettings>,
    state: Res<State<ViewState>>,
    track: Res<RaceTrack>,
    windows: Query<&Window, With<PrimaryWindow>>,
    camera: Query<(&Camera, &GlobalTransform), With<MainCamera>>,
    mut cars: Query<(&mut Episode, &mut Driver), With<Car>>,
    mut dragging: Local<Dragging>,
) {
    if !settings.edit_obstacles
        || *state.get() != ViewState::Drive
        || wants.is_some_and(|w| w.wants_any_pointer_input())
    {
        dragging.0 = None;
        return;
    }
    let (Some(at), Ok((mut episode, mut driver))) =
        (cursor_world(&windows, &camera), cars.single_mut())
    else {
        return;
    };
    let mut obstacles: Vec<Obstacle> = episode.tracker.obstacles().to_vec();
    let nearest = obstacles
        .iter()
        .map(|o| (o.center().distance(at), o.id))
        .filter(|(d, _)| *d <= PICK_RADIUS)
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, id)| id);
    let mut changed = false;
    if buttons.just_pressed(MouseButton::Left) {
        match nearest {
            Some(id) => dragging.0 = Some(id),
            None => {
                let c = &track.0.centerline;
                let yaw = c.heading_at(c.project(at).s);
                obstacles.push(Obstacle {
                    id: obstacles.iter().map(|o| o.id + 1).max().unwrap_or(0),
                    x: at.x,
                    y: at.y,
                    yaw,
                    shape: Shape::Box {
                        length: PARKED_CAR.x,
                        width: PARKED_CAR.y,
                    },
                });
                changed = true;
            }
        }
    } else if buttons.pressed(MouseButton::Left)
        && let Some(id) = dragging.0
        && let Some(o) = obstacles.iter_mut().find(|o| o.id == id)
        && o.center().distance(at) > 1e-3
    {
        (o.x, o.y) = (at.x, at.y);
        changed = true;
    } else if buttons.just_released(MouseButton::Left) {
        dragging.0 = None;
    }
    if buttons.just_pressed(MouseButton::Right)
        && let Some(id) = nearest
    {
        obstacles.retain(|o| o.id != id);
        changed = true;
    }
    if changed {
        let obstacles: Arc<[Obstacle]> = Arc::from(obstacles);
        episode.tracker.set_obstacles(&track.0, obstacles.clone());
        if let Driver::PurePursuit(pp) | Driver::NoisyExpert(pp, _) | Driver::Dagger(pp, _) =
            &mut *driver
        {
            pp.avoid(&track.0, &obstacles);
        }
    }
}

/// Draws the obstacles (orange outlines, the one hit in red) and, for the expert, its plan.
pub fn draw(
    mut gizmos: Gizmos,
    state: Res<State<ViewState>>,
    replay: Res<Replay>,
    cars: Query<(&Episode, &Driver), With<Car>>,
) {
    let (obstacles, hit, plan): (Vec<Obstacle>, Option<u32>, Option<Vec<Vec2>>) = match *state.get()
    {
        ViewState::Drive => match cars.iter().next() {
            Some((episode, driver)) => {
                let hit = match episode.tracker.stats().contact {
                    Some(raceloop_sim::Contact::Obstacle(id)) => Some(id),
                    _ => None,
                };
                let plan = match driver {
                    Driver::PurePursuit(pp)
                    | Driver::NoisyExpert(pp, _)
                    | Driver::Dagger(pp, _)
                        if !pp.plan().is_empty() =>
                    {
                        let p = pp.path().points();
                        Some(
                            p.iter()
                                .chain(p.first())
                                .map(|q| Vec2::new(q.x as f32, q.y as f32))
                                .collect(),
                        )
                    }
                    _ => None,
                };
                (episode.tracker.obstacles().to_vec(), hit, plan)
            }
            None => (Vec::new(), None, None),
        },
        ViewState::Replay => (
            replay.obstacles.clone(),
            replay
                .result
                .as_ref()
                .and_then(|r| r.obstacles.as_ref())
                .and_then(|o| o.collided_id),
            None,
        ),
    };
    if let Some(points) = plan {
        gizmos.linestrip_2d(points, Color::srgba(0.2, 0.9, 0.3, 0.7));
    }
    for o in &obstacles {
        let color = if Some(o.id) == hit {
            Color::srgb(1.0, 0.1, 0.1)
        } else {
            Color::srgb(1.0, 0.55, 0.1)
        };
        let v = |p: glam::DVec2| Vec2::new(p.x as f32, p.y as f32);
        match (o.corners(), o.shape) {
            (Some(c), _) => {
                gizmos.linestrip_2d([c[0], c[1], c[2], c[3], c[0]].map(v), color);
                gizmos.line_2d(v(c[0]), v(c[2]), color);
                gizmos.line_2d(v(c[1]), v(c[3]), color);
            }
            (None, Shape::Circle { radius }) => {
                gizmos.circle_2d(v(o.center()), radius as f32, color);
            }
            (None, _) => {}
        }
    }
}
