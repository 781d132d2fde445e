//! Episode logs as MCAP files that Foxglove opens.
//!
//! Topics (log time = simulation time; zstd chunks):
//! - `/scan` `foxglove.LaserScan` in frame `laser`, at every scan;
//! - `/tf` `foxglove.FrameTransform`: `world → base_link` (the car's reference point) and
//!   `base_link → laser`, every step;
//! - `/track` `foxglove.SceneUpdate`: walls, centerline and raceline, once at t = 0;
//! - `/ego/state` (JSON): x, y (m), yaw (rad), speed (m/s), yaw_rate (rad/s), slip, steering
//!   (rad), s, d, progress (m), every step;
//! - `/control` (JSON): the command issued at its log time and applied over the next step:
//!   steering (rad), speed (m/s);
//! - `/expert/control` (JSON): with noise injection, the expert's clean command at the same time
//!   as `/control` (the training label);
//! - `/events` `foxglove.Log`: the start and the outcome.
//!
//! Channel and schema ids depend only on the order of first use, so the same episode gives
//! the same file byte for byte.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use anyhow::{Context, Result};
use bevy::prelude::*;
use foxglove::Encode;
use foxglove::messages::{
    Color, FrameTransform, LaserScan, LinePrimitive, Log, Point3, Pose, Quaternion, SceneEntity,
    SceneUpdate, Timestamp, Vector3, line_primitive, log,
};
use raceloop_sim::{Action, Outcome, SimConfig, StartPose, Track, VehicleState};
use serde::{Deserialize, Serialize};

use crate::sim_plugin::{Body, Command, Episode, Label, Scan, SimSystems};

/// Topic names.
pub mod topics {
    /// LiDAR scans.
    pub const SCAN: &str = "/scan";
    /// Transforms.
    pub const TF: &str = "/tf";
    /// Track geometry.
    pub const TRACK: &str = "/track";
    /// Vehicle state.
    pub const EGO_STATE: &str = "/ego/state";
    /// Applied command.
    pub const CONTROL: &str = "/control";
    /// The expert's command where it differs from the applied one (noise injection): the label.
    pub const EXPERT_CONTROL: &str = "/expert/control";
    /// Start and outcome.
    pub const EVENTS: &str = "/events";
}

/// `/ego/state` message.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EgoState {
    /// x, m.
    pub x: f64,
    /// y, m.
    pub y: f64,
    /// Heading, rad.
    pub yaw: f64,
    /// Longitudinal speed, m/s.
    pub speed: f64,
    /// Yaw rate, rad/s.
    pub yaw_rate: f64,
    /// Slip angle, rad.
    pub slip: f64,
    /// Steering angle, rad.
    pub steering: f64,
    /// Centerline arc length, m.
    pub s: f64,
    /// Lateral offset from the centerline, m (left positive).
    pub d: f64,
    /// Progress since the start, m.
    pub progress: f64,
}

const EGO_SCHEMA: &str = r#"{"title":"raceloop.EgoState","type":"object","properties":{"x":{"type":"number","description":"m"},"y":{"type":"number","description":"m"},"yaw":{"type":"number","description":"rad"},"speed":{"type":"number","description":"m/s"},"yaw_rate":{"type":"number","description":"rad/s"},"slip":{"type":"number","description":"rad"},"steering":{"type":"number","description":"rad"},"s":{"type":"number","description":"centerline arc length, m"},"d":{"type":"number","description":"lateral offset, m, left positive"},"progress":{"type":"number","description":"m since the start"}}}"#;
const CONTROL_SCHEMA: &str = r#"{"title":"raceloop.Control","type":"object","properties":{"steering":{"type":"number","description":"target steering angle, rad"},"speed":{"type":"number","description":"target speed, m/s"}}}"#;

/// Writes one episode's MCAP.
pub struct McapLog {
    writer: mcap::Writer<BufWriter<File>>,
    channels: BTreeMap<&'static str, u16>,
    sequence: u32,
    buf: Vec<u8>,
    dt_ns: u64,
    scan: LaserScan,
}

fn ts(ns: u64) -> Option<Timestamp> {
    Some(Timestamp::new(
        (ns / 1_000_000_000) as u32,
        (ns % 1_000_000_000) as u32,
    ))
}

fn yaw_quat(yaw: f64) -> Option<Quaternion> {
    Some(Quaternion {
        x: 0.0,
        y: 0.0,
        z: (0.5 * yaw).sin(),
        w: (0.5 * yaw).cos(),
    })
}

impl McapLog {
    /// Creates `path` and writes the schemas, channels, the track (`/track`) and the start event.
    ///
    /// # Errors
    /// I/O and MCAP errors, naming the file.
    pub fn create(
        path: &Path,
        track: &Track,
        config: &SimConfig,
        seed: u64,
        start: &StartPose,
    ) -> Result<Self> {
        let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        let mut writer = mcap::WriteOptions::new()
            .compression(Some(mcap::Compression::Zstd))
            .compression_level(1)
            .profile("")
            .library(format!("raceloop {}", env!("CARGO_PKG_VERSION")))
            .create(BufWriter::with_capacity(1 << 20, file))
            .with_context(|| format!("writing {}", path.display()))?;
        let mut channels = BTreeMap::new();
        let protobuf =
            |w: &mut mcap::Writer<_>, topic, schema: Option<foxglove::Schema>| -> Result<u16> {
                let schema = schema.context("foxglove schema")?;
                let id = w.add_schema(&schema.name, &schema.encoding, &schema.data)?;
                Ok(w.add_channel(id, topic, "protobuf", &BTreeMap::new())?)
            };
        channels.insert(
            topics::TRACK,
            protobuf(&mut writer, topics::TRACK, SceneUpdate::get_schema())?,
        );
        channels.insert(
            topics::EVENTS,
            protobuf(&mut writer, topics::EVENTS, Log::get_schema())?,
        );
        channels.insert(
            topics::TF,
            protobuf(&mut writer, topics::TF, FrameTransform::get_schema())?,
        );
        channels.insert(
            topics::SCAN,
            protobuf(&mut writer, topics::SCAN, LaserScan::get_schema())?,
        );
        for (topic, name, schema) in [
            (topics::EGO_STATE, "raceloop.EgoState", EGO_SCHEMA),
            (topics::CONTROL, "raceloop.Control", CONTROL_SCHEMA),
            (topics::EXPERT_CONTROL, "raceloop.Control", CONTROL_SCHEMA),
        ] {
            let id = writer.add_schema(name, "jsonschema", schema.as_bytes())?;
            channels.insert(
                topic,
                writer.add_channel(id, topic, "json", &BTreeMap::new())?,
            );
        }
        let lidar = &config.lidar;
        let scan = LaserScan {
            timestamp: None,
            frame_id: "laser".into(),
            pose: Some(Pose {
                position: Some(Vector3::default()),
                orientation: yaw_quat(0.0),
            }),
            start_angle: -0.5 * lidar.fov,
            end_angle: 0.5 * lidar.fov,
            ranges: Vec::with_capacity(lidar.num_beams),
            intensities: Vec::new(),
        };
        let mut log = Self {
            writer,
            channels,
            sequence: 0,
            buf: Vec::with_capacity(16 << 10),
            dt_ns: (config.sim.dt * 1e9).round() as u64,
            scan,
        };
        log.write_proto(topics::TRACK, 0, &track_scene(track))?;
        let message = format!(
            "start: track {} seed {seed} at s {:.3} m, d {:.3} m, yaw {:.4} rad, speed {:.3} m/s",
            track.name, start.s, start.d, start.yaw, start.speed
        );
        log.write_proto(
            topics::EVENTS,
            0,
            &Log {
                timestamp: ts(0),
                level: log::Level::Info as i32,
                message,
                name: "raceloop".into(),
                file: String::new(),
                line: 0,
            },
        )?;
        Ok(log)
    }

    fn write_raw(&mut self, topic: &'static str, ns: u64) -> Result<()> {
        let channel_id = self.channels[topic];
        self.sequence += 1;
        let header = mcap::records::MessageHeader {
            channel_id,
            sequence: self.sequence,
            log_time: ns,
            publish_time: ns,
        };
        self.writer.write_to_known_channel(&header, &self.buf)?;
        Ok(())
    }

    fn write_proto(&mut self, topic: &'static str, ns: u64, msg: &impl Encode) -> Result<()> {
        self.buf.clear();
        msg.encode(&mut self.buf)
            .map_err(|e| anyhow::anyhow!("encoding {topic}: {e}"))?;
        self.write_raw(topic, ns)
    }

    fn write_json(&mut self, topic: &'static str, ns: u64, msg: &impl Serialize) -> Result<()> {
        self.buf.clear();
        serde_json::to_writer(&mut self.buf, msg)?;
        self.write_raw(topic, ns)
    }

    /// Records step `step` (time `step·dt`): transforms, ego state, the scan if fresh, and the
    /// command issued one step earlier (at its own time).
    pub fn record_step(
        &mut self,
        step: u64,
        state: &VehicleState,
        ego: &EgoState,
        scan: Option<&[f32]>,
        mount_offset: f64,
        issued: Option<Action>,
        label: Option<Action>,
    ) -> Result<()> {
        let ns = step * self.dt_ns;
        for (topic, action) in [(topics::CONTROL, issued), (topics::EXPERT_CONTROL, label)] {
            if let Some(a) = action {
                self.write_json(
                    topic,
                    ns - self.dt_ns,
                    &serde_json::json!({"steering": a.steering, "speed": a.speed}),
                )?;
            }
        }
        let car = FrameTransform {
            timestamp: ts(ns),
            parent_frame_id: "world".into(),
            child_frame_id: "base_link".into(),
            translation: Some(Vector3 {
                x: state.x,
                y: state.y,
                z: 0.0,
            }),
            rotation: yaw_quat(state.yaw),
        };
        self.write_proto(topics::TF, ns, &car)?;
        let laser = FrameTransform {
            timestamp: ts(ns),
            parent_frame_id: "base_link".into(),
            child_frame_id: "laser".into(),
            translation: Some(Vector3 {
                x: mount_offset,
                y: 0.0,
                z: 0.0,
            }),
            rotation: yaw_quat(0.0),
        };
        self.write_proto(topics::TF, ns, &laser)?;
        self.write_json(topics::EGO_STATE, ns, ego)?;
        if let Some(ranges) = scan {
            let mut msg = std::mem::take(&mut self.scan);
            msg.timestamp = ts(ns);
            msg.ranges.clear();
            msg.ranges.extend(ranges.iter().map(|&r| r as f64));
            let written = self.write_proto(topics::SCAN, ns, &msg);
            self.scan = msg;
            written?;
        }
        Ok(())
    }

    /// Writes the outcome event at step `step` and finishes the file.
    ///
    /// # Errors
    /// I/O and MCAP errors.
    pub fn finish(mut self, step: u64, outcome: Outcome, summary: &str) -> Result<()> {
        let ns = step * self.dt_ns;
        let level = if outcome == Outcome::GoalReached {
            log::Level::Info
        } else {
            log::Level::Warning
        };
        let msg = Log {
            timestamp: ts(ns),
            level: level as i32,
            message: format!("outcome: {} — {summary}", outcome.as_str()),
            name: "raceloop".into(),
            file: String::new(),
            line: 0,
        };
        self.write_proto(topics::EVENTS, ns, &msg)?;
        self.writer.finish()?;
        let mut inner = self.writer.into_inner();
        std::io::Write::flush(&mut inner)?;
        Ok(())
    }
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

/// Walls (grey), centerline (white) and raceline (red) as scene entities in frame `world`.
fn track_scene(track: &Track) -> SceneUpdate {
    let mut entities: Vec<SceneEntity> = track
        .walls
        .iter()
        .enumerate()
        .map(|(i, ring)| {
            line_loop(
                &format!("wall/{i}"),
                ring.iter().copied(),
                0.05,
                Color {
                    r: 0.6,
                    g: 0.6,
                    b: 0.6,
                    a: 1.0,
                },
            )
        })
        .collect();
    entities.push(line_loop(
        "centerline",
        track.centerline.points().iter().copied(),
        0.02,
        Color {
            r: 1.0,
            g: 1.0,
            b: 1.0,
            a: 0.6,
        },
    ));
    if let Some(r) = &track.raceline {
        entities.push(line_loop(
            "raceline",
            r.path.points().iter().copied(),
            0.03,
            Color {
                r: 0.9,
                g: 0.2,
                b: 0.2,
                a: 0.8,
            },
        ));
    }
    SceneUpdate {
        deletions: Vec::new(),
        entities,
    }
}

/// Records the car's episode to MCAP; removed (and the file finished) when the episode ends.
#[derive(Component)]
pub struct Recorder {
    log: Option<McapLog>,
    /// The first error, if writing failed.
    pub error: Option<anyhow::Error>,
}

impl Recorder {
    /// Records into `log`; the caller has written step 0 with [`Self::record_initial`].
    pub fn new(log: McapLog) -> Self {
        Self {
            log: Some(log),
            error: None,
        }
    }

    /// Whether the file has been finished (or writing failed).
    pub fn closed(&self) -> bool {
        self.log.is_none()
    }
}

/// The `/ego/state` message for a car.
pub fn ego_state(state: &VehicleState, episode: &Episode) -> EgoState {
    let f = episode.tracker.frenet();
    EgoState {
        x: state.x,
        y: state.y,
        yaw: state.yaw,
        speed: state.v,
        yaw_rate: state.yaw_rate,
        slip: state.slip,
        steering: state.steering,
        s: f.s,
        d: f.d,
        progress: episode.tracker.stats().progress,
    }
}

/// Writes the initial state (step 0) of a freshly spawned car.
pub fn record_initial(
    log: &mut McapLog,
    body: &Body,
    scan: &Scan,
    episode: &Episode,
    mount_offset: f64,
) -> Result<()> {
    let state = body.0.state();
    log.record_step(
        0,
        state,
        &ego_state(state, episode),
        Some(&scan.ranges),
        mount_offset,
        None,
        None,
    )
}

/// Adds the recording system to [`SimSystems::Record`].
pub struct RecordPlugin;

impl Plugin for RecordPlugin {
    fn build(&self, app: &mut App) {
        app.add_systems(FixedUpdate, record.in_set(SimSystems::Record));
    }
}

fn record(
    settings: Res<crate::sim_plugin::SimSettings>,
    mut cars: Query<(&mut Recorder, &Body, &Scan, &Command, &Label, &Episode)>,
) {
    let mount = settings.0.lidar.mount_offset;
    for (mut rec, body, scan, command, label, episode) in &mut cars {
        let Some(log) = rec.log.as_mut() else {
            continue;
        };
        let step = episode.tracker.stats().steps;
        let state = body.0.state();
        let mut result = log.record_step(
            step,
            state,
            &ego_state(state, episode),
            scan.fresh.then_some(&scan.ranges[..]),
            mount,
            Some(command.0),
            label.0,
        );
        if result.is_ok()
            && let Some(outcome) = episode.tracker.outcome()
        {
            let st = episode.tracker.stats();
            let summary = format!(
                "{:.2} s, progress {:.1} of {:.1} m, {} lap(s)",
                episode.tracker.time(),
                st.progress,
                st.goal,
                st.laps
            );
            result = rec
                .log
                .take()
                .expect("open")
                .finish(step, outcome, &summary);
        }
        if let Err(e) = result {
            rec.log = None;
            rec.error = Some(e);
        }
    }
}
