//! Replay of a recorded episode (`simulation.mcap` of a collection or an evaluation): the
//! `/ego/state`, `/scan` and `/events` topics on a timeline that plays, pauses, scrubs and
//! changes speed. The track comes from the episode's `result.json`, the obstacles from its
//! `config.ron`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use bevy::prelude::*;
use raceloop_record::{EgoState, EpisodeLog};
use raceloop_sim::{Track, VehicleState};

use super::state::{Trail, ViewSettings, ViewState};
use crate::episode::plugin::RaceTrack;
use crate::episode::result::EpisodeResult;
use crate::episode::runner::{CONFIG_FILE, EpisodeSetup};

/// A loaded episode and the playback position.
#[derive(Resource)]
pub struct Replay {
    /// An MCAP to open at the next frame (set by the panel or `--replay`).
    pub request: Option<PathBuf>,
    /// The open MCAP.
    pub path: Option<PathBuf>,
    /// `/ego/state` messages: (time s, state).
    pub states: Vec<(f64, EgoState)>,
    /// `/scan` messages: (time s, ranges m).
    pub scans: Vec<(f64, Vec<f32>)>,
    /// `/events` messages: (time s, text).
    pub events: Vec<(f64, String)>,
    /// The episode's result, when `result.json` is beside the MCAP.
    pub result: Option<EpisodeResult>,
    /// A thin log (a successful evaluation episode): states at 10 Hz, a scan per second.
    pub thin: bool,
    /// The episode's obstacles, from `config.ron` beside the MCAP.
    pub obstacles: Vec<raceloop_sim::Obstacle>,
    /// Playback time, s from the first message.
    pub time: f64,
    /// Playing (else paused).
    pub playing: bool,
    /// Playback speed, × real time.
    pub speed: f32,
}

impl Default for Replay {
    fn default() -> Self {
        Self {
            request: None,
            path: None,
            states: Vec::new(),
            scans: Vec::new(),
            events: Vec::new(),
            result: None,
            thin: false,
            obstacles: Vec::new(),
            time: 0.0,
            playing: true,
            speed: 1.0,
        }
    }
}

/// Index of the last item at or before `t`.
fn at<T>(items: &[(f64, T)], t: f64) -> Option<usize> {
    let i = items.partition_point(|(ti, _)| *ti <= t);
    (i > 0).then(|| i - 1).or((!items.is_empty()).then_some(0))
}

impl Replay {
    /// Length of the episode, s.
    pub fn duration(&self) -> f64 {
        self.states.last().map_or(0.0, |(t, _)| *t)
    }

    /// The recorded ego state at the playback time.
    pub fn ego(&self) -> Option<&EgoState> {
        at(&self.states, self.time).map(|i| &self.states[i].1)
    }

    /// The recorded state as a vehicle state (for drawing).
    pub fn state(&self) -> Option<VehicleState> {
        self.ego().map(EgoState::vehicle_state)
    }

    /// The latest recorded scan at the playback time, m; in a thin log only within a state
    /// period (0.1 s) of it, so that a scan is never drawn from a pose it was not taken at.
    pub fn scan(&self) -> Option<&[f32]> {
        let i = at(&self.scans, self.time)?;
        let fresh = !self.thin || self.time - self.scans[i].0 < 0.1;
        fresh.then(|| self.scans[i].1.as_slice())
    }

    /// The events up to the playback time.
    pub fn events_so_far(&self) -> impl Iterator<Item = &(f64, String)> {
        self.events.iter().filter(|(t, _)| *t <= self.time)
    }
}

/// Reads an episode MCAP with `raceloop-record`'s reader; times become s from the first message.
///
/// # Errors
/// Unreadable or malformed files, naming the file.
fn load(path: &Path) -> Result<Replay> {
    let log = EpisodeLog::read(path)?;
    if log.states.is_empty() {
        anyhow::bail!("{} has no /ego/state messages", path.display());
    }
    let t0 = [
        log.states.first().map(|m| m.0),
        log.scans.first().map(|m| m.0),
        log.events.first().map(|m| m.0),
    ]
    .into_iter()
    .flatten()
    .min()
    .unwrap_or(0);
    let secs = |t: u64| (t - t0) as f64 * 1e-9;
    Ok(Replay {
        path: Some(path.to_path_buf()),
        states: log.states.into_iter().map(|(t, s)| (secs(t), s)).collect(),
        scans: log.scans.into_iter().map(|(t, r)| (secs(t), r)).collect(),
        events: log.events.into_iter().map(|(t, e)| (secs(t), e)).collect(),
        thin: log.thin,
        result: path
            .parent()
            .and_then(|d| raceloop_files::read_json(&d.join("result.json")).ok()),
        obstacles: path
            .parent()
            .and_then(|d| std::fs::read_to_string(d.join(CONFIG_FILE)).ok())
            .and_then(|text| ron::from_str::<EpisodeSetup>(&text).ok())
            .map(|setup| setup.obstacles)
            .unwrap_or_default(),
        ..Replay::default()
    })
}

/// Opens a requested MCAP (switching track and entering replay) and advances playback.
pub fn play(
    mut replay: ResMut<Replay>,
    mut settings: ResMut<ViewSettings>,
    mut track: ResMut<RaceTrack>,
    mut next: ResMut<NextState<ViewState>>,
    mut trail: ResMut<Trail>,
    state: Res<State<ViewState>>,
    time: Res<Time<Real>>,
) {
    if let Some(path) = replay.request.take() {
        match load(&path).and_then(|r| {
            let name = r
                .result
                .as_ref()
                .map(|res| res.track.clone())
                .context("result.json beside the MCAP names the track")?;
            Ok((r, Track::load(&name)?))
        }) {
            Ok((loaded, t)) => {
                if t.name != track.0.name {
                    track.0 = Arc::new(t);
                }
                *replay = loaded;
                trail.0.clear();
                settings.message = format!("replaying {}", path.display());
                next.set(ViewState::Replay);
            }
            Err(e) => settings.message = format!("cannot replay: {e:#}"),
        }
    }
    if *state.get() == ViewState::Replay && replay.playing {
        replay.time += time.delta_secs_f64() * f64::from(replay.speed);
        if replay.time >= replay.duration() {
            replay.time = replay.duration();
            replay.playing = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ego(x: f64) -> EgoState {
        EgoState {
            x,
            y: 0.0,
            yaw: 0.0,
            speed: 1.0,
            yaw_rate: 0.0,
            slip: 0.0,
            steering: 0.0,
            s: x,
            d: 0.0,
            progress: x,
        }
    }

    #[test]
    fn playback_shows_the_last_message_at_or_before_the_time() {
        let mut r = Replay {
            states: (0..5)
                .map(|i| (f64::from(i) * 0.01, ego(f64::from(i))))
                .collect(),
            scans: vec![(0.0, vec![1.0]), (0.04, vec![2.0])],
            ..Replay::default()
        };
        assert_eq!(r.duration(), 0.04);
        for (t, x, scan) in [
            (0.0, 0.0, 1.0),
            (0.015, 1.0, 1.0),
            (0.039, 3.0, 1.0),
            (9.0, 4.0, 2.0),
        ] {
            r.time = t;
            assert_eq!(r.state().unwrap().x, x, "t = {t}");
            assert_eq!(r.scan().unwrap()[0], scan, "t = {t}");
        }
        // A thin log's scan (one per second) shows only near the time it was taken.
        r.thin = true;
        r.scans = vec![(0.0, vec![1.0]), (1.0, vec![2.0])];
        for (t, shown) in [
            (0.05, Some(1.0)),
            (0.5, None),
            (1.02, Some(2.0)),
            (1.3, None),
        ] {
            r.time = t;
            assert_eq!(r.scan().map(|s| s[0]), shown, "t = {t}");
        }
    }

    #[test]
    fn a_real_episode_mcap_loads_with_its_track() {
        let dir = std::env::temp_dir().join(format!("raceloop-replay-{}", std::process::id()));
        let track = Arc::new(Track::load("Austin").unwrap());
        let mut config = raceloop_sim::SimConfig::default();
        config.episode.laps = 0.02;
        let job = crate::episode::runner::EpisodeJob {
            track: track.clone(),
            config: config.clone(),
            seed: 3,
            dir: Some(dir.clone()),
            detail: raceloop_record::Detail::Thin,
        };
        let driver = || {
            crate::episode::plugin::Driver::PurePursuit(raceloop_sim::PurePursuit::new(
                config.expert.clone(),
                &track,
                &config.vehicle,
            ))
        };
        let result = crate::episode::runner::run_episode(
            &job,
            &driver,
            "expert",
            &std::sync::atomic::AtomicBool::new(false),
        )
        .unwrap();
        let r = load(&dir.join(crate::episode::runner::MCAP_FILE)).unwrap();
        assert_eq!(r.result.as_ref().unwrap().track, "Austin");
        assert!(r.thin, "a successful episode is logged thin");
        assert!(r.states.len() > 10 && !r.scans.is_empty());
        assert!(
            (r.duration() - result.duration_s).abs() < 0.1,
            "states at 10 Hz"
        );
        assert!(r.events.iter().any(|(_, m)| m.contains("goal_reached")));
        assert!(load(&dir.join("result.json")).is_err(), "not an MCAP");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
