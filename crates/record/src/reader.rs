//! [`EpisodeLog`]: the one reader of an episode's MCAP, used by dataset extraction and by the
//! window's replay.

use std::path::Path;

use foxglove::Decode;
use foxglove::messages::{LaserScan, Log};
use raceloop_sim::Action;

use crate::error::{RecordError, Result};
use crate::messages::{EgoState, topics};

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
        for message in mcap::MessageStream::new(bytes).map_err(mcap_err)? {
            let m = message.map_err(mcap_err)?;
            let (t, topic) = (m.log_time, m.channel.topic.as_str());
            match topic {
                topics::SCAN => {
                    let scan =
                        LaserScan::decode(&m.data[..]).map_err(|e| bad(topic, e.to_string()))?;
                    log.scans
                        .push((t, scan.ranges.iter().map(|&r| r as f32).collect()));
                }
                topics::CONTROL | topics::EXPERT_CONTROL => {
                    let c: serde_json::Value =
                        serde_json::from_slice(&m.data).map_err(|e| bad(topic, e.to_string()))?;
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
                    serde_json::from_slice(&m.data).map_err(|e| bad(topic, e.to_string()))?,
                )),
                topics::EVENTS => {
                    let event = Log::decode(&m.data[..]).map_err(|e| bad(topic, e.to_string()))?;
                    log.events.push((t, event.message));
                }
                _ => {}
            }
        }
        log.scans.sort_by_key(|s| s.0);
        Ok(log)
    }

    /// The training pairs of the episode, every `sample_every`-th scan: each scan with the
    /// command logged at the same time, the expert's clean label where the episode has one,
    /// else the applied command. Scans without a command (the last one) are dropped.
    pub fn scan_command_pairs(
        &self,
        sample_every: usize,
    ) -> impl Iterator<Item = (&[f32], Action)> + '_ {
        let labels: std::collections::HashMap<u64, Action> = self.labels.iter().copied().collect();
        let controls: std::collections::HashMap<u64, Action> =
            self.controls.iter().copied().collect();
        self.scans
            .iter()
            .step_by(sample_every.max(1))
            .filter_map(move |(t, ranges)| {
                let label = labels.get(t).or_else(|| controls.get(t))?;
                Some((ranges.as_slice(), *label))
            })
    }
}
