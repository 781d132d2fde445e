//! Obstacle episodes in the core: a car driven into a parked car collides with it (and the
//! outcome names its id), the avoidance expert passes it, and generated scenarios are what the
//! seeds say.

use std::sync::Arc;

use glam::DVec2;
use raceloop_sim::{
    Contact, Obstacle, Outcome, PurePursuit, Shape, Sim, SimConfig, StartMode, StartPose, Track,
};

/// A parked car on the expert's path, `ahead` m along the centerline from the grid.
fn parked_car_on_the_path(track: &Track, expert: &PurePursuit, ahead: f64, id: u32) -> Obstacle {
    let c = &track.centerline;
    let on_path = expert
        .path()
        .point_at(expert.path().project(c.point_at(ahead)).s);
    Obstacle {
        id,
        x: on_path.x,
        y: on_path.y,
        yaw: c.heading_at(ahead),
        shape: Shape::Box {
            length: 0.58,
            width: 0.31,
        },
    }
}

fn run(sim: &mut Sim, expert: &mut PurePursuit, config: &SimConfig) -> Outcome {
    loop {
        let action = expert.act(&config.vehicle, &sim.observation().state);
        if let Some(outcome) = sim.step(action) {
            return outcome;
        }
    }
}

#[test]
fn driving_into_a_parked_car_is_a_collision_with_its_id_and_the_avoidance_expert_passes_it() {
    let track = Arc::new(Track::load("Spa").unwrap());
    let mut config = SimConfig::default();
    config.episode.start.mode = StartMode::Grid;
    config.episode.laps = 0.15;
    config.lidar.period_steps = 4;
    let mut expert = PurePursuit::new(config.expert.clone(), &track, &config.vehicle);
    let obstacles: Arc<[Obstacle]> = Arc::from(vec![
        parked_car_on_the_path(&track, &expert, 15.0, 0),
        parked_car_on_the_path(&track, &expert, 35.0, 1),
    ]);
    let start = StartPose::at(&track, 0.0, 0.0, 0.0, 0.0);
    let mut sim = Sim::new(track.clone(), config.clone()).unwrap();

    // The plain expert ignores the obstacles and hits the first one.
    sim.reset_with(1, start, obstacles.clone());
    assert_eq!(run(&mut sim, &mut expert, &config), Outcome::Collision);
    assert_eq!(sim.stats().contact, Some(Contact::Obstacle(0)));
    assert_eq!(sim.stats().min_obstacle_clearance, 0.0);
    assert_eq!(sim.stats().obstacles_passed, 0);
    let hit_at = sim.stats().progress;
    assert!((12.0..15.5).contains(&hit_at), "hit at {hit_at} m");

    // Planning around them, it passes both with at least its clearance, less the corner
    // cutting of Pure Pursuit.
    expert.avoid(&track, &obstacles);
    assert_eq!(expert.plan().len(), 2);
    sim.reset_with(1, start, obstacles.clone());
    let outcome = run(&mut sim, &mut expert, &config);
    let st = sim.stats();
    assert_eq!(outcome, Outcome::GoalReached, "{st:?}");
    assert_eq!(st.contact, None);
    assert_eq!(st.obstacles_passed, 2);
    assert!(
        st.min_obstacle_clearance > 0.1,
        "clearance {}",
        st.min_obstacle_clearance
    );

    // The scan sees the parked car: at the start, the beam straight at it stops at its rear.
    sim.reset_with(
        1,
        StartPose::at(&track, 12.0, 0.0, 0.0, 0.0),
        obstacles.clone(),
    );
    let state = sim.observation().state;
    let sensor = sim
        .lidar()
        .sensor_position(DVec2::new(state.x, state.y), state.yaw);
    let o = obstacles[0];
    let to = o.center() - sensor;
    let beam_angle = to.y.atan2(to.x) - state.yaw;
    let lidar = sim.lidar().config().clone();
    let beam = ((beam_angle + 0.5 * lidar.fov) * (lidar.num_beams - 1) as f64 / lidar.fov).round()
        as usize;
    let r = sim.observation().scan[beam] as f64;
    let exact = o.ray(
        sensor,
        DVec2::from_angle(state.yaw + lidar.beam_angle(beam)),
    );
    assert!(
        (r - exact).abs() < 0.05,
        "beam {beam}: {r} m, the car's outline at {exact} m (noise σ = 0.01 m)"
    );
    assert!(exact < to.length());
}

#[test]
fn episode_obstacles_come_from_the_generation_seed_and_the_episode_seed() {
    let track = Arc::new(Track::load("Austin").unwrap());
    let mut config = SimConfig::default();
    config.scenario.obstacles.density = 2.0;
    let mut sim = Sim::new(track.clone(), config.clone()).unwrap();
    sim.reset(5);
    let first = sim.obstacles().clone();
    assert!(!first.is_empty());
    sim.reset(6);
    assert_ne!(*first, **sim.obstacles());
    sim.reset(5);
    assert_eq!(*first, **sim.obstacles());
    config.scenario.obstacles.generation.seed += 1;
    let mut other = Sim::new(track, config).unwrap();
    other.reset(5);
    assert_ne!(*first, **other.obstacles());
    // No obstacle within the start clearance ahead of the start.
    let c = &sim.track().centerline;
    for o in first.iter() {
        let ahead = c.delta_s(sim.start().s, c.project(o.center()).s);
        assert!(
            !(0.0..7.5).contains(&ahead),
            "obstacle {} at {ahead} m",
            o.id
        );
    }
}

/// A car that another driver put on the other side of an obstacle than planned (DAgger): the
/// expert's `commit` replans that obstacle on the car's side, once, and from there the expert
/// passes it instead of steering across it.
#[test]
fn commit_keeps_the_side_the_car_has_taken() {
    let track = Arc::new(Track::load("Spa").unwrap());
    let mut config = SimConfig::default();
    config.episode.laps = 0.1;
    let mut expert = PurePursuit::new(config.expert.clone(), &track, &config.vehicle);
    let car = parked_car_on_the_path(&track, &expert, 20.0, 0);
    let obstacles: Arc<[Obstacle]> = Arc::from(vec![car]);
    expert.avoid(&track, &obstacles);
    let planned = expert.plan()[0].side;
    let c = &track.centerline;
    let car_d = c.project(DVec2::new(car.x, car.y)).d;
    // 2 m before the obstacle, 0.45 m to the side that was not planned.
    let other_d = match planned {
        raceloop_sim::avoidance::Side::Left => car_d - 0.45,
        raceloop_sim::avoidance::Side::Right => car_d + 0.45,
    };
    let s = c.project(DVec2::new(car.x, car.y)).s - 2.0;
    let start = StartPose::at(&track, s, other_d, 0.0, 4.0);
    let state = raceloop_sim::start_state(&start);

    // Far before the obstacle, nothing is committed.
    let far = raceloop_sim::start_state(&StartPose::at(&track, s - 12.0, other_d, 0.0, 4.0));
    assert!(!expert.commit(&track, &far));
    assert_eq!(expert.plan()[0].side, planned);

    assert!(expert.commit(&track, &state));
    assert_ne!(expert.plan()[0].side, planned);
    assert!(!expert.commit(&track, &state), "committed once");

    let mut sim = Sim::new(track.clone(), config.clone()).unwrap();
    sim.reset_with(3, start, obstacles.clone());
    let outcome = run(&mut sim, &mut expert, &config);
    assert_eq!(outcome, Outcome::GoalReached, "{:?}", sim.stats());
    assert_eq!(sim.stats().obstacles_passed, 1);

    // Without the commit, the plan sends the car across the obstacle.
    expert.avoid(&track, &obstacles);
    sim.reset_with(3, start, obstacles.clone());
    assert_eq!(run(&mut sim, &mut expert, &config), Outcome::Collision);
}

/// `expert.avoidance.speed_cap`: the profile stays under the cap wherever the path is moved for
/// an obstacle, and the episode still passes it.
#[test]
fn the_speed_cap_holds_where_the_expert_evades() {
    let track = Arc::new(Track::load("Spa").unwrap());
    let mut config = SimConfig::default();
    config.episode.start.mode = StartMode::Grid;
    config.episode.laps = 0.15;
    config.expert.avoidance.speed_cap = 4.0;
    let mut expert = PurePursuit::new(config.expert.clone(), &track, &config.vehicle);
    let car = parked_car_on_the_path(&track, &expert, 40.0, 0);
    let obstacles: Arc<[Obstacle]> = Arc::from(vec![car]);
    expert.avoid(&track, &obstacles);
    let e = &expert.plan()[0];
    assert!(e.shift > 0.0);
    let path = expert.path();
    let speed = expert.speed_profile().unwrap();
    let c = &track.centerline;
    let mut capped = 0;
    for (i, v) in speed.iter().enumerate() {
        let s = c.project(path.point_at(path.s_at_point(i))).s;
        if c.delta_s(e.s_range.0, s) >= -e.blend && c.delta_s(e.s_range.1, s) <= 0.0 {
            assert!(*v <= 4.0 + 1e-9, "{v} m/s at {s} m");
            capped += 1;
        }
    }
    assert!(capped > 10);
    assert!(speed.iter().any(|v| *v > 6.0), "the cap is local");
    let mut sim = Sim::new(track.clone(), config.clone()).unwrap();
    sim.reset_with(1, StartPose::at(&track, 0.0, 0.0, 0.0, 0.0), obstacles);
    assert_eq!(run(&mut sim, &mut expert, &config), Outcome::GoalReached);
}
