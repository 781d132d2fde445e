//! Foxglove scenes in frame `world`: the track (`/track`: walls, centerline and raceline), the
//! obstacles (`/obstacles`) and the expert's avoidance plan (`/expert/plan`).

use foxglove::messages::{
    Color, CubePrimitive, CylinderPrimitive, KeyValuePair, LinePrimitive, Point3, Pose, Quaternion,
    SceneEntity, SceneUpdate, TextPrimitive, Timestamp, Vector3, line_primitive,
};
use raceloop_sim::avoidance::{Evasion, Side};
use raceloop_sim::{Obstacle, Shape, Track};

/// A Foxglove timestamp of `ns` nanoseconds.
pub(crate) fn ts(ns: u64) -> Option<Timestamp> {
    Some(Timestamp::new(
        (ns / 1_000_000_000) as u32,
        (ns % 1_000_000_000) as u32,
    ))
}

/// The rotation by `yaw` (rad, counter-clockwise) about z.
pub(crate) fn yaw_quat(yaw: f64) -> Option<Quaternion> {
    Some(Quaternion {
        x: 0.0,
        y: 0.0,
        z: (0.5 * yaw).sin(),
        w: (0.5 * yaw).cos(),
    })
}

fn line_loop(
    id: &str,
    points: impl Iterator<Item = glam::DVec2>,
    thickness: f64,
    color: Color,
) -> SceneEntity {
    SceneEntity {
        timestamp: ts(0),
        frame_id: "world".into(),
        id: id.into(),
        lines: vec![LinePrimitive {
            r#type: line_primitive::Type::LineLoop as i32,
            pose: Some(Pose {
                position: Some(Vector3::default()),
                orientation: yaw_quat(0.0),
            }),
            thickness,
            scale_invariant: false,
            points: points
                .map(|p| Point3 {
                    x: p.x,
                    y: p.y,
                    z: 0.0,
                })
                .collect(),
            color: Some(color),
            colors: Vec::new(),
            indices: Vec::new(),
        }],
        ..Default::default()
    }
}

/// Walls (grey, 5 cm), centerline (white, 2 cm) and raceline (red, 3 cm) as scene entities in
/// frame `world`, coordinates in m.
pub fn track_scene(track: &Track) -> SceneUpdate {
    let color = |r, g, b, a| Color { r, g, b, a };
    let mut entities: Vec<SceneEntity> = track
        .walls
        .iter()
        .enumerate()
        .map(|(i, ring)| {
            line_loop(
                &format!("wall/{i}"),
                ring.iter().copied(),
                0.05,
                color(0.6, 0.6, 0.6, 1.0),
            )
        })
        .collect();
    entities.push(line_loop(
        "centerline",
        track.centerline.points().iter().copied(),
        0.02,
        color(1.0, 1.0, 1.0, 0.6),
    ));
    if let Some(r) = &track.raceline {
        entities.push(line_loop(
            "raceline",
            r.path.points().iter().copied(),
            0.03,
            color(0.9, 0.2, 0.2, 0.8),
        ));
    }
    SceneUpdate {
        deletions: Vec::new(),
        entities,
    }
}

/// Height at which obstacles are drawn, m (they are 2-D in the simulation).
const OBSTACLE_HEIGHT: f64 = 0.2;

fn pose_at(x: f64, y: f64, z: f64, yaw: f64) -> Option<Pose> {
    Some(Pose {
        position: Some(Vector3 { x, y, z }),
        orientation: yaw_quat(yaw),
    })
}

/// The obstacles as scene entities `obstacle/<id>`: boxes as cubes, circles as cylinders
/// (orange, 0.2 m high), with their id, shape and size in the entity metadata.
pub fn obstacle_scene(obstacles: &[Obstacle]) -> SceneUpdate {
    let color = Some(Color {
        r: 1.0,
        g: 0.55,
        b: 0.1,
        a: 0.9,
    });
    let entities = obstacles
        .iter()
        .map(|o| {
            let pose = pose_at(o.x, o.y, 0.5 * OBSTACLE_HEIGHT, o.yaw);
            let (cubes, cylinders, size) = match o.shape {
                Shape::Box { length, width } => (
                    vec![CubePrimitive {
                        pose,
                        size: Some(Vector3 {
                            x: length,
                            y: width,
                            z: OBSTACLE_HEIGHT,
                        }),
                        color,
                    }],
                    Vec::new(),
                    format!("box {length:.3} x {width:.3} m"),
                ),
                Shape::Circle { radius } => (
                    Vec::new(),
                    vec![CylinderPrimitive {
                        pose,
                        size: Some(Vector3 {
                            x: 2.0 * radius,
                            y: 2.0 * radius,
                            z: OBSTACLE_HEIGHT,
                        }),
                        bottom_scale: 1.0,
                        top_scale: 1.0,
                        color,
                    }],
                    format!("circle r {radius:.3} m"),
                ),
            };
            SceneEntity {
                timestamp: ts(0),
                frame_id: "world".into(),
                id: format!("obstacle/{}", o.id),
                metadata: vec![
                    KeyValuePair {
                        key: "id".into(),
                        value: o.id.to_string(),
                    },
                    KeyValuePair {
                        key: "shape".into(),
                        value: size,
                    },
                ],
                cubes,
                cylinders,
                ..Default::default()
            }
        })
        .collect();
    SceneUpdate {
        deletions: Vec::new(),
        entities,
    }
}

/// The expert's plan: the path it follows (green, 3 cm) and, beside each obstacle, why it
/// turned (side, target offset d and shift from its base path).
pub fn plan_scene(
    path: &[glam::DVec2],
    evasions: &[Evasion],
    obstacles: &[Obstacle],
) -> SceneUpdate {
    let mut entities = vec![line_loop(
        "plan/path",
        path.iter().copied(),
        0.03,
        Color {
            r: 0.2,
            g: 0.9,
            b: 0.3,
            a: 0.9,
        },
    )];
    for e in evasions {
        let Some(o) = obstacles.iter().find(|o| o.id == e.obstacle) else {
            continue;
        };
        let side = match e.side {
            Side::Left => "left",
            Side::Right => "right",
        };
        let text = format!(
            "obstacle {}: pass {side}, d {:+.2} m, shift {:.2} m{}",
            e.obstacle,
            e.target_d,
            e.shift,
            if e.full_clearance {
                ""
            } else {
                " (narrow gap)"
            }
        );
        entities.push(SceneEntity {
            timestamp: ts(0),
            frame_id: "world".into(),
            id: format!("plan/evasion/{}", e.obstacle),
            texts: vec![TextPrimitive {
                pose: pose_at(o.x, o.y, 2.0 * OBSTACLE_HEIGHT, 0.0),
                billboard: true,
                font_size: 14.0,
                scale_invariant: true,
                color: Some(Color {
                    r: 1.0,
                    g: 1.0,
                    b: 1.0,
                    a: 1.0,
                }),
                text,
            }],
            ..Default::default()
        });
    }
    SceneUpdate {
        deletions: Vec::new(),
        entities,
    }
}
