//! `raceloop bench ...`: benchmarks that print figures.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use glam::DVec2;
use raceloop_sim::{PurePursuit, Sim, SimConfig, StartMode, Track};
use rand::SeedableRng;
use serde::Serialize;

use crate::cli::BenchSimArgs;

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
}

pub fn sim(args: &BenchSimArgs) -> Result<()> {
    let mut config = SimConfig::default();
    config.lidar.period_steps = 1;
    config.episode.start.mode = StartMode::Grid;
    config.episode.laps = 1000.0;
    let track = Arc::new(Track::load(&args.track)?);
    let mut expert = PurePursuit::new(config.expert.clone(), &track);
    let mut sim = Sim::new(track.clone(), config.clone())?;
    sim.reset(0);

    // Whole steps: expert + dynamics + scan + judge.
    let mut poses = Vec::new();
    let t0 = Instant::now();
    for i in 0..args.steps {
        let action = expert.act(&config.vehicle, &sim.observation().state);
        if sim.step(action).is_some() {
            expert.reset();
            sim.reset(i);
        }
        if i % 97 == 0 {
            let s = sim.observation().state;
            poses.push((
                sim.lidar().sensor_position(DVec2::new(s.x, s.y), s.yaw),
                s.yaw,
            ));
        }
    }
    let step_s = t0.elapsed().as_secs_f64() / args.steps as f64;

    // Scans alone, at poses visited above.
    let lidar = sim.lidar().clone();
    let mut out = vec![0.0f32; config.lidar.num_beams];
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(1);
    let reps = (20_000 / poses.len().max(1)).max(1);
    let time_scans = |noise: bool, out: &mut [f32], rng: &mut rand_xoshiro::Xoshiro256PlusPlus| {
        let t = Instant::now();
        for _ in 0..reps {
            for &(p, yaw) in &poses {
                lidar.scan_exact(&track.grid, p, yaw, out);
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
    }
    Ok(())
}
