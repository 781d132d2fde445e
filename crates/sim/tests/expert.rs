//! The Pure Pursuit expert with default settings completes 2 laps on every shipped track, from the
//! grid and from random starts; episodes are deterministic per seed.

use std::sync::Arc;

use raceloop_sim::track::shipped_names;
use raceloop_sim::{Outcome, PurePursuit, Sim, SimConfig, StartMode, Track};

fn drive(track: &Arc<Track>, config: &SimConfig, seed: u64) -> (Outcome, Sim) {
    let mut expert = PurePursuit::new(config.expert.clone(), track, &config.vehicle);
    let mut sim = Sim::new(track.clone(), config.clone()).unwrap();
    sim.reset(seed);
    loop {
        let action = expert.act(&config.vehicle, &sim.observation().state);
        if let Some(outcome) = sim.step(action) {
            return (outcome, sim);
        }
    }
}

#[test]
fn expert_completes_two_laps_on_every_track_from_the_grid() {
    let mut config = SimConfig::default();
    config.episode.start.mode = StartMode::Grid;
    config.lidar.period_steps = 10; // the expert does not use the scan; keep the test quick
    for name in shipped_names() {
        let track = Arc::new(Track::load(name).unwrap());
        let (outcome, sim) = drive(&track, &config, 1);
        let st = sim.stats();
        assert_eq!(
            outcome,
            Outcome::GoalReached,
            "{name}: {outcome:?} after {:.1} m of {:.1}",
            st.progress,
            st.goal
        );
        assert_eq!(st.laps, 2, "{name}");
        assert_eq!(st.lap_times.len(), 2);
        assert!(
            st.max_abs_deviation < 1.1,
            "{name}: max |d| {}",
            st.max_abs_deviation
        );
        eprintln!(
            "{name}: laps {:?} s, mean |d| {:.3} m",
            st.lap_times, st.mean_abs_deviation
        );
    }
}

#[test]
fn expert_recovers_from_random_starts() {
    let mut config = SimConfig::default();
    config.episode.laps = 0.5;
    config.lidar.period_steps = 10;
    for name in shipped_names() {
        let track = Arc::new(Track::load(name).unwrap());
        for seed in 0..4 {
            let (outcome, sim) = drive(&track, &config, 1000 + seed);
            assert_eq!(
                outcome,
                Outcome::GoalReached,
                "{name} seed {}: {outcome:?} at progress {:.1} m, start {:?}",
                1000 + seed,
                sim.stats().progress,
                sim.start()
            );
        }
    }
}

#[test]
fn random_starts_leave_room_to_react() {
    // Without `clear_ahead`, Hockenheim's seed 1,000,174 starts 10 cm from the left wall,
    // heading 0.25 rad into it at 1.8 m/s: a collision 0.29 s later, whoever drives.
    let track = Arc::new(Track::load("Hockenheim").unwrap());
    let mut config = SimConfig::default();
    config.episode.laps = 0.05;
    config.lidar.period_steps = 10;
    config.expert.speed = raceloop_sim::expert::ExpertSpeed::Fixed(3.5);
    let mut unchecked = config.clone();
    unchecked.episode.start.clear_ahead = 0.0;
    let (outcome, crashed) = drive(&track, &unchecked, 1_000_174);
    assert_eq!(outcome, Outcome::Collision);
    // A footprint corner touches the wall: the centre is at most the half-diagonal away.
    let clearance = crashed.stats().min_wall_clearance;
    assert!(
        (-0.16..0.17).contains(&clearance),
        "clearance {clearance} m at a collision"
    );
    assert!(config.episode.start.clear_ahead > 0.0);
    for seed in 1_000_160..1_000_200 {
        let (outcome, sim) = drive(&track, &config, seed);
        assert_eq!(
            outcome,
            Outcome::GoalReached,
            "seed {seed}: start {:?}",
            sim.start()
        );
    }
}

#[test]
fn same_seed_same_trajectory_and_scans_bit_for_bit() {
    let mut config = SimConfig::default();
    config.episode.laps = 0.1;
    let track = Arc::new(Track::load("Montreal").unwrap());
    let run = |seed: u64| {
        let mut expert = PurePursuit::new(config.expert.clone(), &track, &config.vehicle);
        let mut sim = Sim::new(track.clone(), config.clone()).unwrap();
        sim.reset(seed);
        let mut trace: Vec<u64> = Vec::new();
        loop {
            let obs = sim.observation();
            trace.extend([obs.state.x, obs.state.y, obs.state.yaw, obs.state.v].map(f64::to_bits));
            trace.extend(obs.scan.iter().map(|r| r.to_bits() as u64));
            let action = expert.act(&config.vehicle, &obs.state);
            if sim.step(action).is_some() {
                break trace;
            }
        }
    };
    let a = run(7);
    assert!(a.len() > 100_000);
    assert_eq!(a, run(7), "same seed");
    assert_ne!(a, run(8), "another seed");
}

/// The friction-limited expert (`Friction`, μ_eff = 0.75 μ) completes 2 laps on every shipped
/// track from the grid, each lap at least 1.6× faster than at the fixed 3.5 m/s, and slower
/// than its own point-mass profile (which ignores the merge from the grid and the tire).
#[test]
fn the_friction_limited_expert_races_two_laps_on_every_track() {
    use raceloop_sim::expert::ExpertSpeed;
    use raceloop_sim::speed_profile::lap_time;
    let mut fixed = SimConfig::default();
    fixed.episode.start.mode = StartMode::Grid;
    fixed.lidar.period_steps = 10;
    fixed.expert.speed = ExpertSpeed::Fixed(3.5);
    let mut racing = fixed.clone();
    racing.expert.speed = ExpertSpeed::Friction {
        mu_fraction: 0.75,
        max: 8.0,
        brake: 9.51,
    };
    racing.validate().unwrap();
    for name in shipped_names() {
        let track = Arc::new(Track::load(name).unwrap());
        let (outcome, sim) = drive(&track, &racing, 1);
        assert_eq!(outcome, Outcome::GoalReached, "{name}");
        let (_, slow) = drive(&track, &fixed, 1);
        let (race_lap, fixed_lap) = (sim.stats().lap_times[1], slow.stats().lap_times[1]);
        let expert = PurePursuit::new(racing.expert.clone(), &track, &racing.vehicle);
        let bound = lap_time(expert.path(), expert.speed_profile().unwrap());
        println!(
            "{name}: {race_lap:.2} s racing, {fixed_lap:.2} s at 3.5 m/s, profile {bound:.2} s"
        );
        assert!(
            race_lap * 1.6 < fixed_lap,
            "{name}: {race_lap} s vs {fixed_lap} s"
        );
        assert!(
            race_lap > bound,
            "{name}: {race_lap} s beats the profile's {bound} s"
        );
        // It uses about the grip it is allowed (0.75·μ·g = 7.7 m/s²) without touching a wall.
        let mu_g = racing.vehicle.mu * 9.81;
        let (a_y, clearance) = (
            sim.stats().peak_lateral_acceleration,
            sim.stats().min_wall_clearance,
        );
        println!("{name}: peak a_y {a_y:.2} m/s², clearance {clearance:.3} m");
        // Issue #13's expert target: a lap within 115 % of the shipped raceline's reference.
        if let Some(r) = &track.raceline {
            let reference = lap_time(&r.path, &r.speed);
            println!(
                "{name}: {:.3} of the reference {reference:.2} s",
                race_lap / reference
            );
            assert!(
                race_lap <= 1.15 * reference,
                "{name}: {race_lap} s vs {reference} s"
            );
        }
        // Measured 5.4 (IMS) to 13.9 m/s² (SaoPaulo): f1tenth_gym's linear tire lets the
        // transients of the steering corrections pass μ·g.
        assert!(
            (0.4 * mu_g..1.5 * mu_g).contains(&a_y),
            "{name}: peak a_y {a_y}"
        );
        assert!(
            (0.2..0.5).contains(&clearance),
            "{name}: clearance {clearance}"
        );
    }
    racing.expert.speed = ExpertSpeed::Friction {
        mu_fraction: 1.5,
        max: 8.0,
        brake: 9.51,
    };
    let e = racing.validate().unwrap_err().to_string();
    assert!(
        e.contains("expert.speed") && e.contains("mu_fraction"),
        "{e}"
    );
}

/// `with_lookahead_error_gain`: on the path the command is unchanged; 0.6 m beside it at 8 m/s the
/// plain expert steers back beyond the tire limit (a_y = v²·tan δ / L > μ·g), the one with the
/// gain within the 0.75·μ·g that the speed profile plans with, in the same direction.
#[test]
fn lookahead_error_gain_steers_back_gently_and_changes_nothing_on_the_path() {
    let track = Track::load("Monza").unwrap();
    let config = SimConfig::default();
    let p = &config.vehicle;
    let plain = PurePursuit::new(config.expert.clone(), &track, p);
    let path = plain.path().clone();
    let s = 40.0;
    let at = |d: f64| {
        let h = path.heading_at(s);
        let q = path.point_at(s) + glam::DVec2::from_angle(h).perp() * d;
        raceloop_sim::vehicle::VehicleState {
            x: q.x + h.cos() * p.lr,
            y: q.y + h.sin() * p.lr,
            yaw: h,
            v: 8.0,
            ..Default::default()
        }
    };
    let act = |gain: f64, d: f64| {
        PurePursuit::new(config.expert.clone(), &track, p)
            .with_lookahead_error_gain(gain)
            .act(p, &at(d))
    };
    let on = (act(0.0, 0.0), act(3.0, 0.0));
    assert!((on.0.steering - on.1.steering).abs() < 1e-3, "{on:?}");
    let off = (act(0.0, 0.6), act(3.0, 0.6));
    let a_y = |steering: f64| 64.0 * steering.tan().abs() / p.wheelbase();
    assert!(a_y(off.0.steering) > p.mu * 9.81, "{off:?}");
    assert!(a_y(off.1.steering) < 0.75 * p.mu * 9.81, "{off:?}");
    assert!(
        off.0.steering < 0.0 && off.1.steering < 0.0,
        "both steer right, back to the path"
    );
}
