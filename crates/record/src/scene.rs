//! The track as a Foxglove scene (`/track`): walls, centerline and raceline in frame `world`.

use foxglove::messages::{
    Color, LinePrimitive, Point3, Pose, Quaternion, SceneEntity, SceneUpdate, Timestamp, Vector3,
    line_primitive,
};
use raceloop_sim::Track;

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
