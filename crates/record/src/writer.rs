//! [`McapLog`]: writes one episode's MCAP. Channel and schema ids depend only on the order of
//! first use, so the same episode gives the same file byte for byte.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use foxglove::Encode;
use foxglove::messages::{FrameTransform, LaserScan, Log, Pose, SceneUpdate, Vector3, log};
use raceloop_sim::avoidance::Evasion;
use raceloop_sim::{Action, Obstacle, Outcome, SimConfig, StartPose, Track, VehicleState};
use serde::Serialize;

use crate::error::{RecordError, Result};
use crate::messages::{CONTROL_SCHEMA, EGO_SCHEMA, EgoState, topics};
use crate::scene::{obstacle_scene, plan_scene, track_scene, ts, yaw_quat};

/// How much of an episode a [`McapLog`] keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detail {
    /// Every scan, the track and events; the transforms, ego state and commands every
    /// `state_every` physics steps (1 = every step). With `state_every` dividing the LiDAR's
    /// period, every scan keeps the command issued at its time.
    Full {
        /// Steps between kept transforms, ego states and commands (≥ 1).
        state_every: u32,
    },
    /// A thin log: the track and events, the transforms, ego state and commands every
    /// [`THIN_STATE_PERIOD_NS`] and a scan every [`THIN_SCAN_PERIOD_NS`], marked by a
    /// [`THIN_METADATA`] metadata record (a 2-lap evaluation episode: about 1 MB).
    Thin,
}

impl Detail {
    /// Every message.
    pub const ALL: Self = Self::Full { state_every: 1 };
}

/// Name of the MCAP metadata record that marks a thin log (see [`Detail::Thin`]).
pub const THIN_METADATA: &str = "raceloop.thin";
/// Period of the transforms, ego state and commands in a thin log, ns (10 Hz).
pub const THIN_STATE_PERIOD_NS: u64 = 100_000_000;
/// Period of the scans in a thin log, ns (1 Hz).
pub const THIN_SCAN_PERIOD_NS: u64 = 1_000_000_000;

/// The MCAP writer, on the episode's file.
type Writer = mcap::Writer<BufWriter<File>>;

/// Which messages a log keeps: the track and events always; transforms, ego state and commands
/// on a grid of `state_ns`, scans on a grid of `scan_ns` (1 = every message); per topic the last
/// kept time and the next due time, ns.
struct Sampler {
    state_ns: u64,
    scan_ns: u64,
    kept: BTreeMap<&'static str, (u64, u64)>,
}

impl Sampler {
    fn new(state_ns: u64, scan_ns: u64) -> Self {
        Self {
            state_ns: state_ns.max(1),
            scan_ns: scan_ns.max(1),
            kept: BTreeMap::new(),
        }
    }

    /// Whether the message on `topic` at `ns` is kept (messages sharing a kept time all are).
    fn keeps(&mut self, topic: &'static str, ns: u64) -> bool {
        let period = match topic {
            topics::TRACK | topics::EVENTS | topics::OBSTACLES | topics::PLAN => return true,
            topics::SCAN => self.scan_ns,
            _ => self.state_ns,
        };
        let (last, due) = self.kept.entry(topic).or_insert((u64::MAX, 0));
        if ns == *last {
            return true;
        }
        if ns < *due {
            return false;
        }
        *last = ns;
        *due = (ns / period + 1) * period;
        true
    }
}

/// Writes one episode's MCAP (see the crate docs for the topics).
pub struct McapLog {
    path: PathBuf,
    writer: Writer,
    /// What `writer` keeps.
    sampler: Sampler,
    channels: BTreeMap<&'static str, u16>,
    sequence: u32,
    buf: Vec<u8>,
    dt_ns: u64,
    scan: LaserScan,
}

/// An MCAP writer on `sink` with raceloop's schemas and channels registered (in a fixed order,
/// so that the ids are the same in every file).
fn open_writer(
    sink: BufWriter<File>,
    mcap_err: impl Fn(mcap::McapError) -> RecordError,
) -> Result<(Writer, BTreeMap<&'static str, u16>)> {
    let mut writer = mcap::WriteOptions::new()
        .compression(Some(mcap::Compression::Zstd))
        .compression_level(1)
        // Message indexes are optional (readers fall back to the chunk's records) and were 7 %
        // of a collection log and 13 % of a thin one; the chunk indexes stay.
        .emit_message_indexes(false)
        .profile("")
        .library(format!("raceloop {}", env!("CARGO_PKG_VERSION")))
        .create(sink)
        .map_err(&mcap_err)?;
    let mut channels = BTreeMap::new();
    for (topic, schema) in [
        (topics::TRACK, SceneUpdate::get_schema()),
        (topics::EVENTS, Log::get_schema()),
        (topics::TF, FrameTransform::get_schema()),
        (topics::SCAN, LaserScan::get_schema()),
    ] {
        let schema = schema.expect("foxglove message types have schemas");
        let id = writer
            .add_schema(&schema.name, &schema.encoding, &schema.data)
            .map_err(&mcap_err)?;
        let channel = writer
            .add_channel(id, topic, "protobuf", &BTreeMap::new())
            .map_err(&mcap_err)?;
        channels.insert(topic, channel);
    }
    for (topic, name, schema) in [
        (topics::EGO_STATE, "raceloop.EgoState", EGO_SCHEMA),
        (topics::CONTROL, "raceloop.Control", CONTROL_SCHEMA),
        (topics::EXPERT_CONTROL, "raceloop.Control", CONTROL_SCHEMA),
    ] {
        let id = writer
            .add_schema(name, "jsonschema", schema.as_bytes())
            .map_err(&mcap_err)?;
        let channel = writer
            .add_channel(id, topic, "json", &BTreeMap::new())
            .map_err(&mcap_err)?;
        channels.insert(topic, channel);
    }
    Ok((writer, channels))
}

impl McapLog {
    /// Creates `path` and writes the schemas, channels, the track (`/track`) and the start event;
    /// `detail` says what the finished file keeps.
    ///
    /// # Errors
    /// [`RecordError::Io`] or [`RecordError::Mcap`] naming the file.
    pub fn create(
        path: &Path,
        track: &Track,
        config: &SimConfig,
        seed: u64,
        start: &StartPose,
        detail: Detail,
    ) -> Result<Self> {
        let file = File::create(path).map_err(|error| RecordError::Io {
            path: path.to_path_buf(),
            error,
        })?;
        let mcap_err = |error| RecordError::Mcap {
            path: path.to_path_buf(),
            error,
        };
        let dt_ns = (config.sim.dt * 1e9).round() as u64;
        let sink = BufWriter::with_capacity(1 << 20, file);
        let (mut writer, channels) = open_writer(sink, mcap_err)?;
        let sampler = match detail {
            Detail::Full { state_every } => Sampler::new(state_every as u64 * dt_ns, 1),
            Detail::Thin => {
                let rates = BTreeMap::from([
                    (
                        "state_period_s".to_string(),
                        (THIN_STATE_PERIOD_NS as f64 * 1e-9).to_string(),
                    ),
                    (
                        "scan_period_s".to_string(),
                        (THIN_SCAN_PERIOD_NS as f64 * 1e-9).to_string(),
                    ),
                ]);
                writer
                    .write_metadata(&mcap::records::Metadata {
                        name: THIN_METADATA.into(),
                        metadata: rates,
                    })
                    .map_err(mcap_err)?;
                Sampler::new(THIN_STATE_PERIOD_NS, THIN_SCAN_PERIOD_NS)
            }
        };
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
            path: path.to_path_buf(),
            writer,
            sampler,
            channels,
            sequence: 0,
            buf: Vec::with_capacity(16 << 10),
            dt_ns,
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

    /// Writes the scenario at t = 0: `/obstacles`, and with the expert's `plan` (its followed
    /// path, m, and one evasion per obstacle) `/expert/plan`. Their channels are added here, so
    /// that obstacle-free logs are what they were before obstacles existed.
    ///
    /// # Errors
    /// [`RecordError`] naming the file.
    pub fn record_scenario(
        &mut self,
        obstacles: &[Obstacle],
        plan: Option<(&[glam::DVec2], &[Evasion])>,
    ) -> Result<()> {
        if obstacles.is_empty() {
            return Ok(());
        }
        self.add_scene_channel(topics::OBSTACLES)?;
        self.write_proto(topics::OBSTACLES, 0, &obstacle_scene(obstacles))?;
        if let Some((path, evasions)) = plan {
            self.add_scene_channel(topics::PLAN)?;
            self.write_proto(topics::PLAN, 0, &plan_scene(path, evasions, obstacles))?;
        }
        Ok(())
    }

    /// Adds a `foxglove.SceneUpdate` channel on `topic`.
    fn add_scene_channel(&mut self, topic: &'static str) -> Result<()> {
        let schema = SceneUpdate::get_schema().expect("foxglove message types have schemas");
        let id = self
            .writer
            .add_schema(&schema.name, &schema.encoding, &schema.data)
            .and_then(|schema| {
                self.writer
                    .add_channel(schema, topic, "protobuf", &BTreeMap::new())
            })
            .map_err(|e| self.mcap_err(e))?;
        self.channels.insert(topic, id);
        Ok(())
    }

    fn mcap_err(&self, error: mcap::McapError) -> RecordError {
        RecordError::Mcap {
            path: self.path.clone(),
            error,
        }
    }

    /// Writes the encoded message in `buf`.
    fn write_raw(&mut self, topic: &'static str, ns: u64) -> Result<()> {
        self.sequence += 1;
        let header = mcap::records::MessageHeader {
            channel_id: self.channels[topic],
            sequence: self.sequence,
            log_time: ns,
            publish_time: ns,
        };
        self.writer
            .write_to_known_channel(&header, &self.buf)
            .map_err(|e| self.mcap_err(e))
    }

    fn write_proto(&mut self, topic: &'static str, ns: u64, msg: &impl Encode) -> Result<()> {
        if !self.sampler.keeps(topic, ns) {
            return Ok(());
        }
        self.buf.clear();
        msg.encode(&mut self.buf)
            .map_err(|e| RecordError::Message {
                path: self.path.clone(),
                topic: topic.into(),
                message: e.to_string(),
            })?;
        self.write_raw(topic, ns)
    }

    fn write_json(&mut self, topic: &'static str, ns: u64, msg: &impl Serialize) -> Result<()> {
        if !self.sampler.keeps(topic, ns) {
            return Ok(());
        }
        self.buf.clear();
        serde_json::to_writer(&mut self.buf, msg).map_err(|e| RecordError::Message {
            path: self.path.clone(),
            topic: topic.into(),
            message: e.to_string(),
        })?;
        self.write_raw(topic, ns)
    }

    /// Records step `step` (time `step·dt`): transforms, ego state, the scan if fresh (ranges
    /// in m, `[num_beams]`), and the command `issued` one step earlier (at its own time) with
    /// the expert's clean `label` where noise was injected. `mount_offset` is the LiDAR's
    /// position ahead of the reference point, m.
    ///
    /// # Errors
    /// [`RecordError`] naming the file.
    #[allow(clippy::too_many_arguments)]
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
    /// [`RecordError`] naming the file.
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
        let path = self.path.clone();
        let io = |error| RecordError::Io {
            path: path.clone(),
            error,
        };
        let mcap_err = |error| RecordError::Mcap {
            path: path.clone(),
            error,
        };
        self.writer.finish().map_err(mcap_err)?;
        self.writer.into_inner().flush().map_err(io)
    }
}
