//! A car that drives the circuit backwards ends as `wrong_way` once its progress has fallen
//! `episode.wrong_way_distance` below its best, and not before; 0 turns the rule off; a bad
//! distance is an error that names the field.

use std::sync::Arc;

use raceloop_sim::{Action, Outcome, Sim, SimConfig, StartMode, Track};

/// Reverses at 2 m/s, straight, from the grid (Monza's start is on a long straight): the
/// outcome, the progress (m) and the time (s) when the episode ended.
fn reverse(wrong_way_distance: f64) -> (Outcome, f64, f64) {
    let mut config = SimConfig::default();
    config.episode.start.mode = StartMode::Grid;
    config.episode.wrong_way_distance = wrong_way_distance;
    config.lidar.period_steps = 10;
    let track = Arc::new(Track::load("Monza").unwrap());
    let mut sim = Sim::new(track, config).unwrap();
    sim.reset(0);
    let back = Action {
        steering: 0.0,
        speed: -2.0,
    };
    loop {
        if let Some(outcome) = sim.step(back) {
            return (outcome, sim.stats().progress, sim.time());
        }
    }
}

#[test]
fn reversing_ends_as_wrong_way_after_the_distance() {
    let (outcome, progress, time) = reverse(10.0);
    assert_eq!(outcome, Outcome::WrongWay);
    assert!(
        (-10.05..-10.0).contains(&progress),
        "ended at {progress} m of progress"
    );
    // From rest to 2 m/s backwards, then 10 m: a little over 5 s.
    assert!((5.0..7.0).contains(&time), "ended after {time} s");
}

#[test]
fn zero_turns_the_rule_off() {
    let (outcome, progress, _) = reverse(0.0);
    assert_ne!(outcome, Outcome::WrongWay);
    assert!(progress < -10.0, "ended at {progress} m of progress");
}

#[test]
fn a_negative_or_infinite_distance_is_an_error_that_names_the_field() {
    for bad in [-1.0, f64::INFINITY, f64::NAN] {
        let mut config = SimConfig::default();
        config.episode.wrong_way_distance = bad;
        let error = config.episode.validate().unwrap_err().to_string();
        assert!(error.contains("episode.wrong_way_distance"), "{error}");
    }
}
