//! `raceloop drive`: the expert drives laps on one track, headless, and the lap times are printed.

use std::sync::Arc;

use anyhow::Result;
use raceloop_sim::speed_profile::lap_time;
use raceloop_sim::{PurePursuit, Sim, SimConfig, StartMode, Track};

/// The expert drives `laps` laps on `track` (a shipped name or a CSV path) from a `start` drawn
/// from `seed`, with the simulation config `config`; prints each lap time (s) and the outcome.
///
/// # Errors
/// A bad track or config.
pub fn drive(
    track: &str,
    mut config: SimConfig,
    laps: f64,
    start: StartMode,
    seed: u64,
) -> Result<()> {
    config.episode.laps = laps;
    config.episode.start.mode = start;
    config.validate()?;
    let track = Arc::new(Track::load(track)?);
    let mut expert = PurePursuit::new(config.expert.clone(), &track, &config.vehicle);
    let mut sim = Sim::new(track.clone(), config.clone())?;
    sim.reset(seed);
    println!(
        "{}: {:.1} m lap, expert ({:?}) driving {} lap(s) from a {:?} start",
        track.name,
        track.centerline.length(),
        config.expert.speed,
        laps,
        config.episode.start.mode
    );
    if let Some(r) = &track.raceline {
        println!(
            "reference: the shipped raceline's speed profile laps in {:.2} s",
            lap_time(&r.path, &r.speed)
        );
    }
    if let (raceloop_sim::expert::ExpertSpeed::Friction { .. }, Some(v)) =
        (config.expert.speed, expert.speed_profile())
    {
        println!(
            "the expert's friction-limited profile over its path laps in {:.2} s (point mass)",
            lap_time(expert.path(), v)
        );
    }
    let wall = std::time::Instant::now();
    let mut laps_seen = 0;
    let outcome = loop {
        let action = expert.act(&config.vehicle, &sim.observation().state);
        let outcome = sim.step(action);
        let stats = sim.stats();
        if stats.laps > laps_seen {
            laps_seen = stats.laps;
            println!(
                "lap {laps_seen}: {:.3} s",
                stats.lap_times[laps_seen as usize - 1]
            );
        }
        if let Some(o) = outcome {
            break o;
        }
    };
    let stats = sim.stats();
    let best = stats
        .lap_times
        .iter()
        .cloned()
        .fold(f64::INFINITY, f64::min);
    println!(
        "outcome: {} after {:.2} s simulated ({} steps in {:.2} s wall); progress {:.1} m; best lap {}; mean |d| {:.3} m",
        outcome.as_str(),
        sim.time(),
        stats.steps,
        wall.elapsed().as_secs_f64(),
        stats.progress,
        if best.is_finite() {
            format!("{best:.3} s")
        } else {
            "none".into()
        },
        stats.mean_abs_deviation
    );
    Ok(())
}
