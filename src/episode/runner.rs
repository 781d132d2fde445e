//! Headless episodes: each episode is its own Bevy `App` (`MinimalPlugins` + [`SimPlugin`]),
//! stepped manually at the fixed timestep with a single-threaded executor, so that many run in
//! parallel on rayon workers and the results do not depend on how many.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, bail};
use bevy::ecs::schedule::SingleThreadedExecutor;
use bevy::prelude::*;
use bevy::time::TimeUpdateStrategy;
use raceloop_sim::{Obstacle, SimConfig, StartPose, Track, draw_obstacles, draw_start};
use serde::{Deserialize, Serialize};

use raceloop_record::{Detail, McapLog};

use super::plugin::{
    Body, Driver, Episode, RaceConfig, RaceTrack, Scan, SimPlugin, car_bundle, outcome_of,
};
use super::recorder::{RecordPlugin, Recorder, record_initial};
use super::result::EpisodeResult;

/// Fixed steps per `App::update` (0.25 s at dt = 0.01 s, within `Time<Virtual>`'s 250 ms clamp).
const STEPS_PER_UPDATE: u32 = 25;

/// File names inside an episode directory.
pub const MCAP_FILE: &str = "simulation.mcap";
/// The fully resolved configuration of the episode.
pub const CONFIG_FILE: &str = "config.ron";
/// The result; written last, so its presence marks a finished episode.
pub const RESULT_FILE: &str = "result.json";

/// `config.ron` of an episode: everything needed to run it again.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpisodeSetup {
    /// Track name.
    pub track: String,
    /// Centerline file the track came from.
    pub track_source: PathBuf,
    /// Episode seed (start draw and LiDAR noise).
    pub seed: u64,
    /// The start pose actually drawn.
    pub start: StartPose,
    /// Who drove: `expert` or a model directory.
    pub driver: String,
    /// The scenario's obstacles, as placed (their pose and size; absent when there are none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub obstacles: Vec<Obstacle>,
    /// The simulation configuration.
    pub config: SimConfig,
}

/// One episode to run.
#[derive(Clone)]
pub struct EpisodeJob {
    /// The track.
    pub track: Arc<Track>,
    /// The configuration.
    pub config: SimConfig,
    /// Episode seed.
    pub seed: u64,
    /// Where to write `simulation.mcap`, `config.ron` and `result.json`; `None` records nothing.
    pub dir: Option<PathBuf>,
    /// What the MCAP keeps. With [`Detail::Thin`], an episode that does not reach its goal runs
    /// again with every message recorded ([`Detail::ALL`]), so that a failure keeps its full log
    /// to replay: episodes are deterministic per seed, and the rerun must give the same result.
    /// (Keeping every episode's full log in memory until its outcome was known took a fifth of
    /// an evaluation's time, mostly compressing logs that were then dropped.)
    pub detail: Detail,
}

/// The episode was stopped by Ctrl-C before it finished; nothing was left under a final name.
#[derive(Debug, thiserror::Error)]
#[error("interrupted")]
pub struct Interrupted;

/// Builds the App of one episode, ready to step.
pub fn episode_app(track: Arc<Track>, config: SimConfig) -> App {
    let mut app = App::new();
    app.add_plugins(MinimalPlugins)
        .insert_resource(Time::<Fixed>::from_seconds(config.sim.dt))
        .insert_resource(TimeUpdateStrategy::FixedTimesteps(STEPS_PER_UPDATE))
        .insert_resource(RaceTrack(track))
        .insert_resource(RaceConfig(config))
        .add_plugins((SimPlugin, RecordPlugin));
    app.finish();
    app.cleanup();
    for (_, schedule) in app.world_mut().resource_mut::<Schedules>().iter_mut() {
        schedule.set_executor(SingleThreadedExecutor::new());
    }
    app
}

/// Runs one episode to its end with a driver from `driver`, recording it if `job.dir` is set
/// (twice for a failure with [`Detail::Thin`]: see [`EpisodeJob::detail`]). Stops early
/// (removing its temporary files) when `stop` becomes true.
///
/// # Errors
/// [`Interrupted`], I/O and MCAP errors naming the file, or a rerun whose result differs.
pub fn run_episode(
    job: &EpisodeJob,
    driver: &dyn Fn() -> Driver,
    driver_name: &str,
    stop: &AtomicBool,
) -> Result<EpisodeResult> {
    let (result, files) = simulate(job, driver(), driver_name, stop)?;
    let files = match files {
        Some(thin) if job.detail == Detail::Thin && !result.success => {
            thin.discard();
            let full = EpisodeJob {
                detail: Detail::ALL,
                ..job.clone()
            };
            let (again, files) = simulate(&full, driver(), driver_name, stop)?;
            // Compared as `result.json` holds them, where a NaN equals itself.
            let json = |r: &EpisodeResult| serde_json::to_string(r).unwrap_or_default();
            if json(&again) != json(&result) {
                if let Some(f) = files {
                    f.discard();
                }
                bail!(
                    "episode {} on {} ended differently when run again to log it in full \
                     ({} after {} steps, then {} after {}): the simulation is not deterministic",
                    job.seed,
                    job.track.name,
                    result.outcome.as_str(),
                    result.steps,
                    again.outcome.as_str(),
                    again.steps
                );
            }
            files
        }
        files => files,
    };
    if let Some(f) = files {
        f.commit(&result)?;
    }
    Ok(result)
}

/// An episode's files, written but not yet under their final names.
struct Written {
    dir: PathBuf,
    tmp_mcap: PathBuf,
    setup: EpisodeSetup,
}

impl Written {
    /// Moves the MCAP to its name and writes `config.ron`, then `result.json`.
    fn commit(self, result: &EpisodeResult) -> Result<()> {
        raceloop_files::commit(&self.tmp_mcap, &self.dir.join(MCAP_FILE))?;
        let ron = ron::ser::to_string_pretty(&self.setup, ron::ser::PrettyConfig::default())?;
        raceloop_files::write(&self.dir.join(CONFIG_FILE), ron)?;
        raceloop_files::write_json(&self.dir.join(RESULT_FILE), result)?;
        Ok(())
    }

    fn discard(self) {
        let _ = std::fs::remove_file(&self.tmp_mcap);
    }
}

/// Runs one episode with `driver`; its MCAP, if `job.dir` is set, is left under a temporary
/// name.
fn simulate(
    job: &EpisodeJob,
    driver: Driver,
    driver_name: &str,
    stop: &AtomicBool,
) -> Result<(EpisodeResult, Option<Written>)> {
    let start = draw_start(&job.track, &job.config, job.seed);
    let obstacles = draw_obstacles(&job.track, &job.config, job.seed, &start);
    let mut app = episode_app(job.track.clone(), job.config.clone());
    let car = app
        .world_mut()
        .spawn(car_bundle(
            &job.track,
            &job.config,
            job.seed,
            start,
            obstacles.clone(),
            driver,
        ))
        .id();
    let tmp_mcap = job
        .dir
        .as_ref()
        .map(|d| raceloop_files::temp_path(&d.join(MCAP_FILE)));
    if let (Some(dir), Some(tmp)) = (&job.dir, &tmp_mcap) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut log = McapLog::create(tmp, &job.track, &job.config, job.seed, &start, job.detail)?;
        let e = app.world().entity(car);
        let (body, scan, episode) = (
            e.get::<Body>().unwrap(),
            e.get::<Scan>().unwrap(),
            e.get::<Episode>().unwrap(),
        );
        let plan = match e.get::<Driver>() {
            Some(Driver::PurePursuit(pp) | Driver::NoisyExpert(pp, _) | Driver::Dagger(pp, _)) => {
                Some((pp.path().points(), pp.plan()))
            }
            _ => None,
        };
        log.record_scenario(&obstacles, plan)?;
        record_initial(&mut log, body, scan, episode, job.config.lidar.mount_offset)?;
        if let Some(outcome) = episode.tracker.outcome() {
            log.finish(0, outcome, "ended at the start")?;
        } else {
            app.world_mut().entity_mut(car).insert(Recorder::new(log));
        }
    }
    let result = loop {
        let world = app.world();
        let recording = world.get::<Recorder>(car).is_some_and(|r| !r.closed());
        if let (Some(outcome), false) = (outcome_of(world, car), recording) {
            let episode = world.get::<Episode>(car).expect("car");
            break EpisodeResult::from_tracker(
                &episode.tracker,
                outcome,
                job.seed,
                &job.track.name,
            );
        }
        if stop.load(Ordering::Relaxed) {
            drop(app);
            if let Some(tmp) = &tmp_mcap {
                let _ = std::fs::remove_file(tmp);
            }
            return Err(Interrupted.into());
        }
        app.update();
    };
    if let Some(error) = app
        .world_mut()
        .get_mut::<Recorder>(car)
        .and_then(|mut r| r.error.take())
    {
        return Err(anyhow::Error::new(error).context(format!("recording episode {}", job.seed)));
    }
    let files = job
        .dir
        .clone()
        .zip(tmp_mcap)
        .map(|(dir, tmp_mcap)| Written {
            dir,
            tmp_mcap,
            setup: EpisodeSetup {
                track: job.track.name.clone(),
                track_source: job.track.source.clone(),
                seed: job.seed,
                start,
                driver: driver_name.into(),
                obstacles: obstacles.to_vec(),
                config: job.config.clone(),
            },
        });
    Ok((result, files))
}

/// The result of an already finished episode in `dir`, if its files are complete: `result.json`
/// parses and `simulation.mcap` ends with the MCAP magic.
pub fn finished_result(dir: &Path) -> Option<EpisodeResult> {
    use std::io::{Read, Seek, SeekFrom};
    let result: EpisodeResult = raceloop_files::read_json(&dir.join(RESULT_FILE)).ok()?;
    let mut file = std::fs::File::open(dir.join(MCAP_FILE)).ok()?;
    let mut tail = [0u8; 8];
    file.seek(SeekFrom::End(-8)).ok()?;
    file.read_exact(&mut tail).ok()?;
    (&tail == b"\x89MCAP0\r\n" && dir.join(CONFIG_FILE).is_file()).then_some(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use raceloop_sim::{PurePursuit, Sim, StartMode};

    /// The ECS systems and the plain `Sim` API run the same core code in the same order: the
    /// same episode gives bit-identical results.
    #[test]
    fn ecs_episode_equals_core_sim_bit_for_bit() {
        let track = Arc::new(Track::load("Montreal").unwrap());
        let mut config = SimConfig::default();
        config.episode.laps = 0.1;
        config.episode.start.mode = StartMode::Random;
        config.lidar.period_steps = 3;
        let job = EpisodeJob {
            track: track.clone(),
            config: config.clone(),
            seed: 11,
            dir: None,
            detail: Detail::ALL,
        };
        let stop = AtomicBool::new(false);
        let expert = || {
            Driver::PurePursuit(PurePursuit::new(
                config.expert.clone(),
                &track,
                &config.vehicle,
            ))
        };
        let ecs = run_episode(&job, &expert, "expert", &stop).unwrap();

        let mut expert = PurePursuit::new(config.expert.clone(), &track, &config.vehicle);
        let mut sim = Sim::new(track.clone(), config.clone()).unwrap();
        sim.reset(11);
        let outcome = loop {
            let action = expert.act(&config.vehicle, &sim.observation().state);
            if let Some(o) = sim.step(action) {
                break o;
            }
        };
        let core = EpisodeResult::from_tracker(sim.tracker(), outcome, 11, &track.name);
        assert_eq!(ecs, core);
        assert!(ecs.steps > 100);
    }

    /// With `Detail::Thin`, a success runs once and keeps a thin log; a failure runs again and
    /// keeps the full log, byte for byte the one that `Detail::ALL` writes.
    #[test]
    fn a_thin_job_logs_a_success_thin_and_a_failure_in_full() {
        use std::sync::atomic::AtomicUsize;
        let track = Arc::new(Track::load("Montreal").unwrap());
        let base = std::env::temp_dir().join(format!("raceloop-thin-{}", std::process::id()));
        let stop = AtomicBool::new(false);
        let run = |name: &str, detail: Detail, min_average_speed: f64| {
            let mut config = SimConfig::default();
            config.episode.laps = 0.05;
            config.episode.min_average_speed = min_average_speed;
            let job = EpisodeJob {
                track: track.clone(),
                config: config.clone(),
                seed: 5,
                dir: Some(base.join(name)),
                detail,
            };
            let runs = AtomicUsize::new(0);
            let expert = || {
                runs.fetch_add(1, Ordering::Relaxed);
                Driver::PurePursuit(PurePursuit::new(
                    config.expert.clone(),
                    &track,
                    &config.vehicle,
                ))
            };
            let result = run_episode(&job, &expert, "expert", &stop).unwrap();
            let log = raceloop_record::EpisodeLog::read(&base.join(name).join(MCAP_FILE)).unwrap();
            assert_eq!(finished_result(&base.join(name)).as_ref(), Some(&result));
            (result, runs.into_inner(), log.thin)
        };
        let (success, runs, thin) = run("success", Detail::Thin, 0.5);
        assert!(
            success.success && runs == 1 && thin,
            "{success:?}, {runs} runs"
        );
        // Slower than 40 m/s on average times out.
        let (failure, runs, thin) = run("failure", Detail::Thin, 40.0);
        assert!(
            !failure.success && runs == 2 && !thin,
            "{failure:?}, {runs} runs"
        );
        let (all, _, _) = run("all", Detail::ALL, 40.0);
        assert_eq!(all, failure);
        let bytes = |name: &str| std::fs::read(base.join(name).join(MCAP_FILE)).unwrap();
        assert!(
            bytes("failure") == bytes("all"),
            "the full log, as Detail::ALL writes it"
        );
        std::fs::remove_dir_all(&base).unwrap();
    }
}
