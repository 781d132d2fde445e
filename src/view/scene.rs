//! Drawing: the track surface (a mesh), walls, centerline, raceline, LiDAR beams and trail
//! (gizmos), the car (a sprite with the vehicle's footprint), and the camera. World units are
//! metres, x forward / y left (REP-103), so the track appears as in its CSV.

use bevy::asset::RenderAssetUsages;
use bevy::image::{CompressedImageFormats, ImageSampler, ImageType};
use bevy::input::mouse::{AccumulatedMouseMotion, AccumulatedMouseScroll};
use bevy::mesh::{Indices, PrimitiveTopology};
use bevy::prelude::*;
use std::sync::Arc;

use raceloop_sim::{PurePursuit, Track, VehicleState};

use super::replay::Replay;
use super::state::{FrameStats, Trail, ViewSettings, ViewState};
use crate::episode::plugin::{Body, Car, RaceConfig, RaceTrack, Scan};

/// The car sprite (`assets/car.png`, pointing +x), compiled in so the binary runs anywhere.
const CAR_PNG: &[u8] = include_bytes!("../../assets/car.png");

/// Marks the track surface mesh.
#[derive(Component)]
pub struct Surface;

/// Marks the car sprite.
#[derive(Component)]
pub struct CarSprite;

/// Marks the camera.
#[derive(Component)]
pub struct MainCamera;

/// Camera, car sprite and the first track surface.
pub fn setup(
    mut commands: Commands,
    mut images: ResMut<Assets<Image>>,
    settings: Res<RaceConfig>,
    view: Res<ViewSettings>,
) {
    commands.insert_resource(Trail::default());
    commands.spawn((
        Camera2d,
        MainCamera,
        Projection::Orthographic(OrthographicProjection {
            scale: view.zoom,
            ..OrthographicProjection::default_2d()
        }),
    ));
    let image = Image::from_buffer(
        CAR_PNG,
        ImageType::Extension("png"),
        CompressedImageFormats::NONE,
        true,
        ImageSampler::linear(),
        RenderAssetUsages::default(),
    )
    .expect("the shipped car sprite is a PNG");
    let p = &settings.0.vehicle;
    commands.spawn((
        CarSprite,
        Sprite {
            image: images.add(image),
            custom_size: Some(Vec2::new(p.length as f32, p.width as f32)),
            ..default()
        },
        Transform::from_xyz(0.0, 0.0, 2.0),
    ));
}

/// The track surface: the exact drivable area, i.e. the outer wall with the other walls as holes
/// (the corridor union that the LiDAR and the collision test use), triangulated by ear clipping.
fn surface_mesh(track: &raceloop_sim::Track) -> Mesh {
    use geo::TriangulateEarcut;
    let ring = |w: &Vec<glam::DVec2>| {
        geo::LineString::from(w.iter().map(|p| (p.x, p.y)).collect::<Vec<_>>())
    };
    let area = |w: &Vec<glam::DVec2>| {
        let n = w.len();
        (0..n)
            .map(|i| w[i].perp_dot(w[(i + 1) % n]))
            .sum::<f64>()
            .abs()
    };
    let outer = (0..track.walls.len())
        .max_by(|&a, &b| area(&track.walls[a]).total_cmp(&area(&track.walls[b])))
        .unwrap_or(0);
    let holes = track
        .walls
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != outer)
        .map(|(_, w)| ring(w))
        .collect();
    let raw = geo::Polygon::new(ring(&track.walls[outer]), holes).earcut_triangles_raw();
    let positions: Vec<[f32; 3]> = raw
        .vertices
        .iter()
        .map(|[x, y]| [*x as f32, *y as f32, 0.0])
        .collect();
    let indices = raw.triangle_indices.iter().map(|&i| i as u32).collect();
    Mesh::new(
        PrimitiveTopology::TriangleList,
        RenderAssetUsages::default(),
    )
    .with_inserted_attribute(Mesh::ATTRIBUTE_POSITION, positions)
    .with_inserted_indices(Indices::U32(indices))
}

/// (Re)builds the surface mesh when the track changes.
pub fn rebuild_track(
    mut commands: Commands,
    track: Res<RaceTrack>,
    surfaces: Query<Entity, With<Surface>>,
    mut meshes: ResMut<Assets<Mesh>>,
    mut materials: ResMut<Assets<ColorMaterial>>,
) {
    if !track.is_changed() {
        return;
    }
    for e in &surfaces {
        commands.entity(e).despawn();
    }
    commands.spawn((
        Surface,
        Mesh2d(meshes.add(surface_mesh(&track.0))),
        MeshMaterial2d(materials.add(ColorMaterial::from(Color::srgb(0.33, 0.33, 0.36)))),
        Transform::default(),
    ));
}

/// The pose shown: the simulated car, or the replay's recorded state.
fn shown_state(state: ViewState, body: Option<&Body>, replay: &Replay) -> Option<VehicleState> {
    match state {
        ViewState::Drive => body.map(|b| *b.0.state()),
        ViewState::Replay => replay.state(),
    }
}

/// Places the car sprite.
pub fn sync_car(
    state: Res<State<ViewState>>,
    replay: Res<Replay>,
    cars: Query<&Body, With<Car>>,
    mut sprite: Query<(&mut Transform, &mut Visibility), With<CarSprite>>,
) {
    let Ok((mut transform, mut visible)) = sprite.single_mut() else {
        return;
    };
    match shown_state(*state.get(), cars.iter().next(), &replay) {
        Some(s) => {
            *transform = Transform::from_xyz(s.x as f32, s.y as f32, 2.0)
                .with_rotation(Quat::from_rotation_z(s.yaw as f32));
            *visible = Visibility::Visible;
        }
        None => *visible = Visibility::Hidden,
    }
}

/// Walls, centerline, raceline, beams and trail.
#[allow(clippy::too_many_arguments)] // A Bevy system: one parameter per resource it reads.
pub fn draw(
    mut gizmos: Gizmos,
    track: Res<RaceTrack>,
    sim: Res<RaceConfig>,
    settings: Res<ViewSettings>,
    state: Res<State<ViewState>>,
    replay: Res<Replay>,
    cars: Query<(&Body, &Scan), With<Car>>,
    mut trail: ResMut<Trail>,
    mut stats: ResMut<FrameStats>,
    mut expert_path: Local<Option<(Arc<Track>, Vec<Vec2>)>>,
) {
    let t0 = std::time::Instant::now();
    let v = |p: &glam::DVec2| Vec2::new(p.x as f32, p.y as f32);
    let closed = |points: &[glam::DVec2]| {
        points
            .iter()
            .chain(points.first())
            .map(v)
            .collect::<Vec<_>>()
    };
    for wall in &track.0.walls {
        gizmos.linestrip_2d(closed(wall), Color::srgb(0.95, 0.95, 0.95));
    }
    if settings.show_centerline {
        gizmos.linestrip_2d(
            closed(track.0.centerline.points()),
            Color::srgba(1.0, 1.0, 1.0, 0.35),
        );
    }
    if settings.show_raceline {
        if let Some(r) = &track.0.raceline {
            gizmos.linestrip_2d(closed(r.path.points()), Color::srgba(1.0, 0.8, 0.1, 0.35));
        }
        // The path the expert follows (the minimum-curvature raceline where the shipped one
        // comes too close to an edge), computed once per track.
        if expert_path
            .as_ref()
            .is_none_or(|(t, _)| !Arc::ptr_eq(t, &track.0))
        {
            let expert = PurePursuit::new(sim.0.expert.clone(), &track.0, &sim.0.vehicle);
            *expert_path = Some((track.0.clone(), closed(expert.path().points())));
        }
        if let Some((_, points)) = expert_path.as_ref() {
            gizmos.linestrip_2d(points.iter().copied(), Color::srgba(1.0, 0.55, 0.1, 0.9));
        }
    }
    let (car, scan) = match cars.iter().next() {
        Some((b, s)) => (Some(b), Some(s.ranges.as_slice())),
        None => (None, None),
    };
    let shown = shown_state(*state.get(), car, &replay);
    let scan = match *state.get() {
        ViewState::Drive => scan,
        ViewState::Replay => replay.scan(),
    };
    if let Some(s) = shown {
        let p = Vec2::new(s.x as f32, s.y as f32);
        if settings.show_trail {
            if trail.0.last().is_none_or(|q| q.0.distance(p) > 0.05) {
                trail.0.push((p, s.v as f32));
            }
            if trail.0.len() > 2000 {
                trail.0.drain(..500);
            }
            gizmos
                .linestrip_gradient_2d(trail.0.iter().map(|&(q, speed)| (q, speed_colour(speed))));
        }
        if settings.show_beams
            && let Some(ranges) = scan
        {
            let l = &sim.0.lidar;
            let yaw = s.yaw;
            let origin = glam::DVec2::new(s.x, s.y)
                + l.mount_offset * glam::DVec2::new(yaw.cos(), yaw.sin());
            let n = ranges.len().max(2);
            for (i, &r) in ranges.iter().enumerate() {
                let a = yaw - 0.5 * l.fov + l.fov * i as f64 / (n - 1) as f64;
                let dir = glam::DVec2::new(a.cos(), a.sin());
                let hit = origin + f64::from(r) * dir;
                // Faint beams (1,080 of them overlap near the car) and bright hit marks.
                gizmos.line_2d(v(&origin), v(&hit), Color::srgba(1.0, 0.25, 0.25, 0.025));
                if f64::from(r) < l.max_range - 1e-3 {
                    gizmos.line_2d(
                        v(&(hit - 0.06 * dir)),
                        v(&hit),
                        Color::srgb(1.0, 0.15, 0.15),
                    );
                }
            }
        }
    }
    stats.draw += t0.elapsed();
}

/// Keeps the car in the middle of the view when following.
pub fn follow_camera(
    settings: Res<ViewSettings>,
    state: Res<State<ViewState>>,
    replay: Res<Replay>,
    cars: Query<&Body, With<Car>>,
    mut camera: Query<&mut Transform, With<MainCamera>>,
) {
    if !settings.follow {
        return;
    }
    let (Ok(mut t), Some(s)) = (
        camera.single_mut(),
        shown_state(*state.get(), cars.iter().next(), &replay),
    ) else {
        return;
    };
    t.translation.x = s.x as f32;
    t.translation.y = s.y as f32;
}

/// Mouse: drag with the left button to pan (which stops following), wheel to zoom.
pub fn pan_zoom(
    buttons: Res<ButtonInput<MouseButton>>,
    motion: Res<AccumulatedMouseMotion>,
    scroll: Res<AccumulatedMouseScroll>,
    wants: Option<Res<bevy_egui::input::EguiWantsInput>>,
    mut settings: ResMut<ViewSettings>,
    mut camera: Query<(&mut Transform, &mut Projection), With<MainCamera>>,
) {
    if wants.is_some_and(|w| w.wants_any_pointer_input()) {
        return;
    }
    let Ok((mut t, mut projection)) = camera.single_mut() else {
        return;
    };
    let Projection::Orthographic(ortho) = &mut *projection else {
        return;
    };
    if scroll.delta.y != 0.0 {
        ortho.scale = (ortho.scale * 0.85f32.powf(scroll.delta.y)).clamp(0.002, 0.5);
    }
    if buttons.pressed(MouseButton::Left) && motion.delta != Vec2::ZERO && !settings.edit_obstacles
    {
        settings.follow = false;
        t.translation.x -= motion.delta.x * ortho.scale;
        t.translation.y += motion.delta.y * ortho.scale;
    }
}

/// The trail's colour at `speed` (m/s): blue at rest through green to red at 8 m/s and above.
fn speed_colour(speed: f32) -> Color {
    let t = (speed / 8.0).clamp(0.0, 1.0);
    Color::hsl(240.0 * (1.0 - t), 0.9, 0.55)
}
