//! Benchmarks of the simulation core (`raceloop-sim`): simulator steps/s with the expert
//! driving, and the LiDAR caster against rapier's ray casts and an f64 brute force.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use glam::DVec2;
use raceloop_sim::{Obstacle, PurePursuit, Sim, SimConfig, StartMode, Track};
use rand::SeedableRng;
use serde::Serialize;

use crate::cli::{BenchLidarArgs, BenchSimArgs};

/// Reference: f1tenth_gym on this machine kind, one car, 1080-beam scan every step.
const GYM_STEPS_PER_S: f64 = 6950.0;
const GYM_SCAN_US: f64 = 92.0;
const TARGET_STEPS_PER_S: f64 = 70_000.0;

#[derive(Debug, Serialize)]
struct SimBench {
    track: String,
    steps: u64,
    steps_per_s: f64,
    us_per_step: f64,
    scan_us: f64,
    ns_per_beam: f64,
    ns_per_beam_noise_free: f64,
    speedup_vs_f1tenth_gym: f64,
    scan_speedup_vs_f1tenth_gym: f64,
    target_steps_per_s: f64,
    fraction_of_target: f64,
    /// With `scenario.obstacles.density` = `--obstacles` (the expert avoiding them).
    obstacles_per_100m: f64,
    obstacle_steps_per_s: f64,
    obstacle_over_free: f64,
    obstacle_beams_checked: usize,
    obstacle_beams_on_obstacles: usize,
    obstacle_max_range_error_m: f64,
}

/// A sensor pose visited while driving: position (m), yaw (rad) and the episode's obstacles.
type Pose = (DVec2, f64, Arc<[Obstacle]>);

/// Steps/s of the expert driving `config` on `track` for `steps` steps (resetting with the step
/// index as the seed when an episode ends), and the sensor poses of every 97th step from the first.
fn drive(track: &Arc<Track>, config: &SimConfig, steps: u64) -> Result<(f64, Vec<Pose>)> {
    let mut expert = PurePursuit::new(config.expert.clone(), track, &config.vehicle);
    let mut sim = Sim::new(track.clone(), config.clone())?;
    sim.reset(0);
    expert.avoid(track, sim.obstacles());
    let mut poses = Vec::new();
    let t0 = Instant::now();
    for i in 0..steps {
        let action = expert.act(&config.vehicle, &sim.observation().state);
        if sim.step(action).is_some() {
            sim.reset(i);
            expert.avoid(track, sim.obstacles());
        }
        if i % 97 == 0 {
            let s = sim.observation().state;
            poses.push((
                sim.lidar().sensor_position(DVec2::new(s.x, s.y), s.yaw),
                s.yaw,
                sim.obstacles().clone(),
            ));
        }
    }
    Ok((t0.elapsed().as_secs_f64() / steps as f64, poses))
}

/// `raceloop bench sim`: simulator steps/s on one core and LiDAR cost per beam.
///
/// # Errors
/// A bad track or config.
pub fn sim(args: &BenchSimArgs) -> Result<()> {
    let mut config = SimConfig::default();
    config.lidar.period_steps = 1;
    config.episode.start.mode = StartMode::Grid;
    config.episode.laps = 1000.0;
    let track = Arc::new(Track::load(&args.track)?);
    let lidar = raceloop_sim::Lidar::new(config.lidar.clone());
    let (step_s, poses) = drive(&track, &config, args.steps)?;
    let poses: Vec<(DVec2, f64)> = poses.into_iter().map(|(p, yaw, _)| (p, yaw)).collect();

    // The same with obstacles, and their scans against an f64 brute force over walls and
    // obstacles.
    let mut with = config.clone();
    with.scenario.obstacles.density = args.obstacles;
    let (obstacle_step_s, obstacle_poses) = drive(&track, &with, args.steps)?;
    let (mut checked, mut on_obstacles, mut worst) = (0usize, 0usize, 0f64);
    let mut ranges = vec![0f32; config.lidar.num_beams];
    for (p, yaw, obstacles) in obstacle_poses.iter().step_by(4) {
        let (p, yaw) = (*p, *yaw);
        lidar.scan_exact(&track.grid, obstacles, p, yaw, &mut ranges);
        for (i, &r) in ranges.iter().enumerate() {
            let dir = DVec2::from_angle(yaw + config.lidar.beam_angle(i));
            let wall = raceloop_sim::lidar::brute_force_range(track.grid.segments(), p, dir);
            let hit = raceloop_sim::obstacle::brute_force_hit(obstacles, p, dir)
                .map_or(f64::INFINITY, |(t, _)| t);
            let exact = wall.min(hit).min(config.lidar.max_range);
            worst = worst.max((r as f64 - exact).abs());
            checked += 1;
            on_obstacles += usize::from(hit < wall && hit < config.lidar.max_range);
        }
    }

    // Scans alone, at poses visited above.
    let mut out = vec![0.0f32; config.lidar.num_beams];
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(1);
    let reps = (20_000 / poses.len().max(1)).max(1);
    let time_scans = |noise: bool, out: &mut [f32], rng: &mut rand_xoshiro::Xoshiro256PlusPlus| {
        let t = Instant::now();
        for _ in 0..reps {
            for &(p, yaw) in &poses {
                lidar.scan_exact(&track.grid, &[], p, yaw, out);
                if noise {
                    lidar.add_noise(rng, out);
                }
            }
        }
        t.elapsed().as_secs_f64() / (reps * poses.len()) as f64
    };
    let scan_exact_s = time_scans(false, &mut out, &mut rng);
    let scan_s = time_scans(true, &mut out, &mut rng);
    let beams = config.lidar.num_beams as f64;
    let r = SimBench {
        track: track.name.clone(),
        steps: args.steps,
        steps_per_s: 1.0 / step_s,
        us_per_step: step_s * 1e6,
        scan_us: scan_s * 1e6,
        ns_per_beam: scan_s * 1e9 / beams,
        ns_per_beam_noise_free: scan_exact_s * 1e9 / beams,
        speedup_vs_f1tenth_gym: 1.0 / step_s / GYM_STEPS_PER_S,
        scan_speedup_vs_f1tenth_gym: GYM_SCAN_US / (scan_s * 1e6),
        target_steps_per_s: TARGET_STEPS_PER_S,
        fraction_of_target: 1.0 / step_s / TARGET_STEPS_PER_S,
        obstacles_per_100m: args.obstacles,
        obstacle_steps_per_s: 1.0 / obstacle_step_s,
        obstacle_over_free: step_s / obstacle_step_s,
        obstacle_beams_checked: checked,
        obstacle_beams_on_obstacles: on_obstacles,
        obstacle_max_range_error_m: worst,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!(
            "bench sim on {} ({} steps, one core, 1080-beam scan every step, expert driving)",
            r.track, r.steps
        );
        println!(
            "  steps/s          {:>10.0}  ({:.1}x f1tenth_gym's {GYM_STEPS_PER_S}; target {TARGET_STEPS_PER_S}: {:.0} %)",
            r.steps_per_s,
            r.speedup_vs_f1tenth_gym,
            100.0 * r.fraction_of_target
        );
        println!("  µs/step          {:>10.2}", r.us_per_step);
        println!(
            "  µs/scan          {:>10.2}  ({:.1}x f1tenth_gym's {GYM_SCAN_US} µs)",
            r.scan_us, r.scan_speedup_vs_f1tenth_gym
        );
        println!(
            "  ns/beam          {:>10.2}  (noise-free: {:.2})",
            r.ns_per_beam, r.ns_per_beam_noise_free
        );
        println!(
            "  with obstacles   {:>10.0}  steps/s at {} per 100 m ({:.1} % of obstacle-free; target ≥ 90 %)",
            r.obstacle_steps_per_s,
            r.obstacles_per_100m,
            100.0 * r.obstacle_over_free
        );
        println!(
            "  scan vs f64      {:>10.2e}  m largest error over {} beams, {} on obstacles (target ≤ 1 mm)",
            r.obstacle_max_range_error_m, r.obstacle_beams_checked, r.obstacle_beams_on_obstacles
        );
    }
    Ok(())
}

/// `count` sensor poses `(position, yaw)` along the expert's drive on `track` from the grid,
/// every 97th step.
fn expert_poses(track: &Arc<Track>, count: usize) -> Result<Vec<(DVec2, f64)>> {
    let mut config = SimConfig::default();
    config.episode.start.mode = StartMode::Grid;
    config.episode.laps = 1000.0;
    config.lidar.period_steps = 1000;
    let (_, poses) = drive(track, &config, 97 * count as u64)?;
    Ok(poses.into_iter().map(|(p, yaw, _)| (p, yaw)).collect())
}

#[derive(Debug, Serialize)]
struct LidarBench {
    track: String,
    scans: usize,
    core_us_per_scan: f64,
    rapier_us_per_scan: f64,
    rapier_over_core: f64,
    core_beams_off_by_over_1mm: usize,
    rapier_beams_off_by_over_1mm: usize,
}

/// `raceloop bench lidar`: the core's caster against rapier's, time per scan and range error.
///
/// # Errors
/// A bad track.
pub fn lidar(args: &BenchLidarArgs) -> Result<()> {
    use bevy_rapier2d::rapier::prelude::*;
    let track = Arc::new(Track::load(&args.track)?);
    let poses = expert_poses(&track, args.poses)?;
    let config = SimConfig::default();
    let lidar = raceloop_sim::Lidar::new(config.lidar.clone());
    let beams = config.lidar.num_beams;

    // The walls as one fixed body with a polyline collider per ring.
    let (mut bodies, mut colliders) = (RigidBodySet::new(), ColliderSet::new());
    let ground = bodies.insert(RigidBodyBuilder::fixed());
    for ring in &track.walls {
        let vertices: Vec<Vector> = ring
            .iter()
            .map(|p| Vector::new(p.x as f32, p.y as f32))
            .collect();
        let n = vertices.len() as u32;
        let indices = (0..n).map(|i| [i, (i + 1) % n]).collect();
        colliders.insert_with_parent(
            ColliderBuilder::polyline(vertices, Some(indices)),
            ground,
            &mut bodies,
        );
    }
    let (mut islands, mut broad, mut narrow) = (
        IslandManager::new(),
        BroadPhaseBvh::new(),
        NarrowPhase::new(),
    );
    let (mut joints, mut multibody, mut ccd) = (
        ImpulseJointSet::new(),
        MultibodyJointSet::new(),
        CCDSolver::new(),
    );
    PhysicsPipeline::new().step(
        Vector::ZERO,
        &IntegrationParameters::default(),
        &mut islands,
        &mut broad,
        &mut narrow,
        &mut bodies,
        &mut colliders,
        &mut joints,
        &mut multibody,
        &mut ccd,
        &(),
        &(),
    );
    let query = broad.as_query_pipeline(
        narrow.query_dispatcher(),
        &bodies,
        &colliders,
        QueryFilter::default(),
    );

    let mut core = vec![0.0f32; beams];
    let mut rapier = vec![0.0f32; beams];
    let (mut core_wrong, mut rapier_wrong) = (0usize, 0usize);
    let max_range = config.lidar.max_range;
    for &(p, yaw) in &poses {
        lidar.scan_exact(&track.grid, &[], p, yaw, &mut core);
        for (i, r) in rapier.iter_mut().enumerate() {
            let dir = DVec2::from_angle(yaw + config.lidar.beam_angle(i));
            let ray = Ray::new(
                Vector::new(p.x as f32, p.y as f32),
                Vector::new(dir.x as f32, dir.y as f32),
            );
            *r = query
                .cast_ray(&ray, max_range as f32, false)
                .map_or(max_range as f32, |(_, t)| t);
            let truth = raceloop_sim::lidar::brute_force_range(track.grid.segments(), p, dir)
                .min(max_range);
            core_wrong += ((core[i] as f64 - truth).abs() > 1e-3) as usize;
            rapier_wrong += ((*r as f64 - truth).abs() > 1e-3) as usize;
        }
    }
    let time = |f: &mut dyn FnMut(DVec2, f64)| {
        let t = Instant::now();
        for &(p, yaw) in &poses {
            f(p, yaw);
        }
        t.elapsed().as_secs_f64() * 1e6 / poses.len() as f64
    };
    let core_us = time(&mut |p, yaw| lidar.scan_exact(&track.grid, &[], p, yaw, &mut core));
    let rapier_us = time(&mut |p, yaw| {
        let origin = Vector::new(p.x as f32, p.y as f32);
        for (i, r) in rapier.iter_mut().enumerate() {
            let dir = DVec2::from_angle(yaw + config.lidar.beam_angle(i));
            let ray = Ray::new(origin, Vector::new(dir.x as f32, dir.y as f32));
            *r = query
                .cast_ray(&ray, config.lidar.max_range as f32, false)
                .map_or(config.lidar.max_range as f32, |(_, t)| t);
        }
    });
    let r = LidarBench {
        track: track.name.clone(),
        scans: poses.len(),
        core_us_per_scan: core_us,
        rapier_us_per_scan: rapier_us,
        rapier_over_core: rapier_us / core_us,
        core_beams_off_by_over_1mm: core_wrong,
        rapier_beams_off_by_over_1mm: rapier_wrong,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!(
            "bench lidar on {} ({} scans of {beams} beams, noise-free)",
            r.track, r.scans
        );
        println!("  core caster   {:>9.2} µs/scan", r.core_us_per_scan);
        println!(
            "  rapier rays   {:>9.2} µs/scan  ({:.1}x slower)",
            r.rapier_us_per_scan, r.rapier_over_core
        );
        println!(
            "  beams more than 1 mm from an f64 brute force over all {} wall segments: core {}, rapier {} (of {})",
            track.grid.segments().len(),
            r.core_beams_off_by_over_1mm,
            r.rapier_beams_off_by_over_1mm,
            r.scans * beams
        );
    }
    Ok(())
}
