//! [`EpisodeLog`]: the one reader of an episode's MCAP, used by dataset extraction and by the
//! window's replay.

use std::collections::HashMap;
use std::path::Path;

use foxglove::Decode;
use foxglove::messages::{LaserScan, Log};
use mcap::records::Record;
use mcap::sans_io::linear_reader::{LinearReadEvent, LinearReader, LinearReaderOptions};
use raceloop_sim::Action;

use crate::error::{RecordError, Result};
use crate::messages::{EgoState, topics};

/// The longest record (or uncompressed chunk) the reader accepts. raceloop writes chunks of
/// under 1 MiB; the limit keeps a damaged length field from making the reader allocate it.
const MAX_RECORD_BYTES: usize = 256 << 20;

/// The decoded topics of one episode's MCAP; times are log times in ns (simulation time).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EpisodeLog {
    /// `/scan`: (time ns, ranges m `[num_beams]`), in time order.
    pub scans: Vec<(u64, Vec<f32>)>,
    /// `/control`: (time ns, the command issued then: steering rad, speed m/s).
    pub controls: Vec<(u64, Action)>,
    /// `/expert/control`: (time ns, the expert's clean command), with noise injection only.
    pub labels: Vec<(u64, Action)>,
    /// `/ego/state`: (time ns, state).
    pub states: Vec<(u64, EgoState)>,
    /// `/events`: (time ns, text).
    pub events: Vec<(u64, String)>,
    /// Whether this is a thin log (it has a `raceloop.thin` metadata record): states at 10 Hz
    /// and a scan per second, so not a source of training pairs.
    pub thin: bool,
}

impl EpisodeLog {
    /// Reads `path`.
    ///
    /// # Errors
    /// [`RecordError`] naming the file: unreadable, not an MCAP, or a message on a known topic
    /// that does not decode.
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|error| RecordError::Io {
            path: path.to_path_buf(),
            error,
        })?;
        Self::from_bytes(&bytes, path)
    }

    /// Decodes the MCAP `bytes` of the file `path` (named in errors).
    ///
    /// # Errors
    /// As [`Self::read`].
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self> {
        let mcap_err = |error| RecordError::Mcap {
            path: path.to_path_buf(),
            error,
        };
        let bad = |topic: &str, message: String| RecordError::Message {
            path: path.to_path_buf(),
            topic: topic.into(),
            message,
        };
        let mut log = Self::default();
        let mut topics_by_channel: HashMap<u16, String> = HashMap::new();
        let mut last_time = None;
        let mut reader = LinearReader::new_with_options(
            LinearReaderOptions::default()
                .with_prevalidate_chunk_crcs(true)
                .with_record_length_limit(MAX_RECORD_BYTES),
        );
        let mut fed = 0;
        while let Some(event) = reader.next_event() {
            let (opcode, data) = match event {
                Ok(LinearReadEvent::ReadRequest(need)) => {
                    let n = need.min(bytes.len() - fed);
                    if n == 0 {
                        return Err(RecordError::Malformed {
                            path: path.to_path_buf(),
                            message: format!("ends early, after {fed} bytes"),
                        });
                    }
                    reader.insert(n).copy_from_slice(&bytes[fed..fed + n]);
                    reader.notify_read(n);
                    fed += n;
                    continue;
                }
                Ok(LinearReadEvent::Record { opcode, data }) => (opcode, data),
                Err(
                    error @ (mcap::McapError::BadChunkCrc { .. }
                    | mcap::McapError::DecompressionError(_)),
                ) => {
                    return Err(RecordError::Corrupt {
                        path: path.to_path_buf(),
                        offset: failing_chunk(bytes, last_time),
                        error,
                    });
                }
                Err(error) => return Err(mcap_err(error)),
            };
            let (header, data) = match mcap::parse_record(opcode, data).map_err(mcap_err)? {
                Record::Channel(c) => {
                    topics_by_channel.insert(c.id, c.topic);
                    continue;
                }
                Record::Message { header, data } => (header, data),
                Record::Metadata(m) => {
                    log.thin |= m.name == crate::writer::THIN_METADATA;
                    continue;
                }
                _ => continue,
            };
            let t = header.log_time;
            last_time = Some(t);
            let Some(topic) = topics_by_channel.get(&header.channel_id) else {
                return Err(RecordError::Malformed {
                    path: path.to_path_buf(),
                    message: format!("a message on unknown channel {}", header.channel_id),
                });
            };
            let topic = topic.as_str();
            match topic {
                topics::SCAN => {
                    let scan =
                        LaserScan::decode(&data[..]).map_err(|e| bad(topic, e.to_string()))?;
                    log.scans
                        .push((t, scan.ranges.iter().map(|&r| r as f32).collect()));
                }
                topics::CONTROL | topics::EXPERT_CONTROL => {
                    let c: serde_json::Value =
                        serde_json::from_slice(&data).map_err(|e| bad(topic, e.to_string()))?;
                    let (Some(steering), Some(speed)) =
                        (c["steering"].as_f64(), c["speed"].as_f64())
                    else {
                        return Err(bad(topic, "lacks steering or speed".into()));
                    };
                    let list = if topic == topics::CONTROL {
                        &mut log.controls
                    } else {
                        &mut log.labels
                    };
                    list.push((t, Action { steering, speed }));
                }
                topics::EGO_STATE => log.states.push((
                    t,
                    serde_json::from_slice(&data).map_err(|e| bad(topic, e.to_string()))?,
                )),
                topics::EVENTS => {
                    let event = Log::decode(&data[..]).map_err(|e| bad(topic, e.to_string()))?;
                    log.events.push((t, event.message));
                }
                _ => {}
            }
        }
        log.scans.sort_by_key(|s| s.0);
        log.states.sort_by_key(|s| s.0);
        Ok(log)
    }

    /// The training pairs of the episode, every `sample_every`-th scan: each scan (ranges, m)
    /// with the ego's longitudinal speed (m/s) in the latest `/ego/state` at or before its time
    /// (collection logs a state with every scan) and the command logged at that time, the
    /// expert's clean label where the episode has one, else the applied command. Scans without
    /// a command (the last one) or an earlier state are dropped.
    pub fn scan_command_pairs(
        &self,
        sample_every: usize,
    ) -> impl Iterator<Item = (&[f32], f64, Action)> + '_ {
        let labels: std::collections::HashMap<u64, Action> = self.labels.iter().copied().collect();
        let controls: std::collections::HashMap<u64, Action> =
            self.controls.iter().copied().collect();
        self.scans
            .iter()
            .step_by(sample_every.max(1))
            .filter_map(move |(t, ranges)| {
                let label = labels.get(t).or_else(|| controls.get(t))?;
                let latest = self
                    .states
                    .partition_point(|(ts, _)| ts <= t)
                    .checked_sub(1)?;
                Some((ranges.as_slice(), self.states[latest].1.speed, *label))
            })
    }
}

/// The byte offset of the chunk that follows the last message read (at `last_time`, ns), from
/// the file's chunk index: where a stream that stopped on a bad chunk CRC stopped. `None` when
/// the summary is unreadable.
fn failing_chunk(bytes: &[u8], last_time: Option<u64>) -> Option<u64> {
    let summary = mcap::Summary::read(bytes).ok()??;
    let mut chunks = summary.chunk_indexes;
    chunks.sort_by_key(|c| c.chunk_start_offset);
    chunks
        .iter()
        .find(|c| last_time.is_none_or(|t| c.message_end_time > t))
        .or(chunks.first())
        .map(|c| c.chunk_start_offset)
}
