//! Recording an episode from the ECS: the [`Recorder`] component and the system in
//! [`SimSystems::Record`] that feeds each step to the MCAP writer of `raceloop-record`.

use bevy::prelude::*;
use raceloop_record::{EgoState, McapLog};

use super::plugin::{Body, Control, Episode, ExpertLabel, RaceConfig, Scan, SimSystems};

/// Records the car's episode to MCAP; the file is finished when the episode ends.
#[derive(Component)]
pub struct Recorder {
    log: Option<McapLog>,
    /// The first error, if writing failed.
    pub error: Option<raceloop_record::RecordError>,
}

impl Recorder {
    /// Records into `log`; the caller has written step 0 with [`record_initial`].
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

/// Writes the initial state (step 0) of a freshly spawned car; `mount_offset` in m.
///
/// # Errors
/// MCAP write errors naming the file.
pub fn record_initial(
    log: &mut McapLog,
    body: &Body,
    scan: &Scan,
    episode: &Episode,
    mount_offset: f64,
) -> raceloop_record::Result<()> {
    let state = body.0.state();
    log.record_step(
        0,
        state,
        &EgoState::of(state, &episode.tracker),
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
    config: Res<RaceConfig>,
    mut cars: Query<(
        &mut Recorder,
        &Body,
        &Scan,
        &Control,
        &ExpertLabel,
        &Episode,
    )>,
) {
    let mount = config.0.lidar.mount_offset;
    for (mut rec, body, scan, control, label, episode) in &mut cars {
        let Some(log) = rec.log.as_mut() else {
            continue;
        };
        let step = episode.tracker.stats().steps;
        let state = body.0.state();
        let mut result = log.record_step(
            step,
            state,
            &EgoState::of(state, &episode.tracker),
            scan.fresh.then_some(&scan.ranges[..]),
            mount,
            Some(control.0),
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
