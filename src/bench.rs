//! `raceloop bench ...`: benchmarks that print figures.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use glam::DVec2;
use raceloop_sim::{PurePursuit, Sim, SimConfig, StartMode, Track};
use rand::SeedableRng;
use serde::Serialize;

use crate::cli::{BenchCollectArgs, BenchInferArgs, BenchLidarArgs, BenchSimArgs, BenchTrainArgs};

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

#[derive(Debug, Serialize)]
struct CollectRun {
    workers: usize,
    wall_s: f64,
    episodes_per_s: f64,
    steps_per_s: f64,
    mb_written: f64,
    success_rate: f64,
}

#[derive(Debug, Serialize)]
struct CollectBench {
    episodes: usize,
    tracks: String,
    laps: f64,
    track_loading_s: f64,
    runs: Vec<CollectRun>,
    speedup_2_over_1: f64,
    target_wall_s: f64,
    target_speedup: f64,
}

fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|it| {
            it.flatten()
                .map(|e| {
                    if e.path().is_dir() {
                        dir_bytes(&e.path())
                    } else {
                        e.metadata().map(|m| m.len()).unwrap_or(0)
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

pub fn collect(args: &BenchCollectArgs) -> Result<()> {
    let base = crate::configs::Resolved::load(
        &args.configs,
        &[format!("collection.episodes={}", args.episodes)],
    )?;
    let (c, sim) = crate::collect::resolve(&base)?;
    let t = Instant::now();
    let tracks = crate::collect::load_tracks(&c.tracks)?;
    let track_loading_s = t.elapsed().as_secs_f64();
    let mut runs = Vec::new();
    for workers in [1, 2] {
        let dir = args.out.join(format!("workers-{workers}"));
        let _ = std::fs::remove_dir_all(&dir);
        let c = crate::collect::CollectionConfig {
            workers,
            ..c.clone()
        };
        let t = Instant::now();
        let (_, summary) = crate::collect::collect(&dir, &c, &sim, &tracks)?;
        let wall_s = t.elapsed().as_secs_f64();
        runs.push(CollectRun {
            workers,
            wall_s,
            episodes_per_s: args.episodes as f64 / wall_s,
            steps_per_s: summary.steps as f64 / wall_s,
            mb_written: dir_bytes(&dir) as f64 / 1e6,
            success_rate: summary.success_rate,
        });
        std::fs::remove_dir_all(&dir)?;
    }
    let r = CollectBench {
        episodes: args.episodes,
        tracks: c.tracks.clone(),
        laps: c.laps,
        track_loading_s,
        speedup_2_over_1: runs[0].wall_s / runs[1].wall_s,
        runs,
        target_wall_s: 20.0,
        target_speedup: 1.85,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!(
            "bench collect: {} episodes of {} lap over tracks \"{}\" (track loading {:.2} s, not \
             included)",
            r.episodes, r.laps, r.tracks, r.track_loading_s
        );
        for run in &r.runs {
            println!(
                "  {} worker(s): {:6.2} s  {:6.1} episodes/s  {:8.0} steps/s  {:7.1} MB  success {:.1} %",
                run.workers,
                run.wall_s,
                run.episodes_per_s,
                run.steps_per_s,
                run.mb_written,
                100.0 * run.success_rate
            );
        }
        println!(
            "  speed-up 2 workers over 1: {:.2}x (target {:.2}x); 2 workers vs the 20 s target: {:.0} %",
            r.speedup_2_over_1,
            r.target_speedup,
            100.0 * r.runs[1].wall_s / 20.0
        );
    }
    Ok(())
}

/// Sensor poses `(position, yaw)` along the expert's drive on `track`, every 97th step.
fn expert_poses(track: &Arc<Track>, count: usize) -> Result<Vec<(DVec2, f64)>> {
    let mut config = SimConfig::default();
    config.episode.start.mode = StartMode::Grid;
    config.episode.laps = 1000.0;
    config.lidar.period_steps = 1000;
    let mut expert = PurePursuit::new(config.expert.clone(), track);
    let mut sim = Sim::new(track.clone(), config.clone())?;
    sim.reset(0);
    let mut poses = Vec::with_capacity(count);
    while poses.len() < count {
        for _ in 0..97 {
            let action = expert.act(&config.vehicle, &sim.observation().state);
            sim.step(action);
        }
        let s = sim.observation().state;
        poses.push((
            sim.lidar().sensor_position(DVec2::new(s.x, s.y), s.yaw),
            s.yaw,
        ));
    }
    Ok(poses)
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
        lidar.scan_exact(&track.grid, p, yaw, &mut core);
        for (i, r) in rapier.iter_mut().enumerate() {
            let dir = DVec2::from_angle(yaw + config.lidar.beam_angle(i));
            let ray = Ray::new(
                Vector::new(p.x as f32, p.y as f32),
                Vector::new(dir.x as f32, dir.y as f32),
            );
            *r = query
                .cast_ray(&ray, max_range as f32, false)
                .map_or(max_range as f32, |(_, t)| t);
            let truth = brute_force_range(track.grid.segments(), p, dir).min(max_range);
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
    let core_us = time(&mut |p, yaw| lidar.scan_exact(&track.grid, p, yaw, &mut core));
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

/// Nearest intersection of the ray `p + t·dir` with any wall segment (either side), in f64, m.
fn brute_force_range(segments: &[raceloop_sim::track::Segment], p: DVec2, dir: DVec2) -> f64 {
    let mut best = f64::INFINITY;
    for seg in segments {
        let e = seg.b - seg.a;
        let den = dir.perp_dot(e);
        if den.abs() < 1e-15 {
            continue;
        }
        let ao = seg.a - p;
        let (t, u) = (ao.perp_dot(e) / den, ao.perp_dot(dir) / den);
        if t >= 0.0 && (0.0..=1.0).contains(&u) {
            best = best.min(t);
        }
    }
    best
}

#[derive(Debug, Serialize)]
struct TrainBench {
    architecture: String,
    batch_size: usize,
    threads: usize,
    samples: usize,
    timed_epochs: usize,
    samples_per_s: f64,
    samples_per_s_min: f64,
    samples_per_s_max: f64,
    pytorch_cpu_samples_per_s: f64,
    ratio_to_pytorch: f64,
    burn_autodiff_samples_per_s: Option<f64>,
    speedup_over_burn_autodiff: Option<f64>,
    dataset_train_samples: Option<usize>,
    epoch_s: Option<f64>,
}

/// Training samples/s of each epoch after the first (warm-up), sorted.
fn epoch_throughputs(
    ds: &raceloop_learn::Dataset,
    model: &raceloop_learn::ModelConfig,
    cfg: &raceloop_learn::TrainConfig,
    backward: raceloop_learn::Backward,
) -> Result<Vec<f64>> {
    let mut epochs = Vec::new();
    raceloop_learn::train_with(
        ds,
        model,
        cfg,
        &burn::prelude::Device::flex(),
        backward,
        &mut |p| {
            if let raceloop_learn::Progress::Epoch(m) = p {
                epochs.push(m.samples_per_s)
            }
        },
        &|| false,
    )?;
    let mut timed = epochs.split_off(1.min(epochs.len()));
    timed.sort_by(f64::total_cmp);
    Ok(timed)
}

fn median(sorted: &[f64]) -> f64 {
    sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN)
}

pub fn train(args: &BenchTrainArgs) -> Result<()> {
    use raceloop_learn::{Backward, Dataset, ModelConfig, Split, Stats};
    anyhow::ensure!(
        args.epochs >= 2,
        "--epochs must be ≥ 2 (the first is a warm-up)"
    );
    let beams = 1080;
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(3);
    let scans: Vec<f32> = (0..args.samples * beams)
        .map(|_| rand::Rng::random_range(&mut rng, 0.2..30.0))
        .collect();
    let labels: Vec<f32> = (0..args.samples)
        .flat_map(|_| [rand::Rng::random_range(&mut rng, -0.4..0.4), 3.5])
        .collect();
    let train = Split { scans, labels };
    let val = Split::default();
    let stats = Stats::compute(&train, &val, beams, 30.0, 0.4189, 20.0);
    let ds = Dataset { train, val, stats };
    let model = ModelConfig {
        architecture: args.arch.into(),
        num_beams: beams,
        outputs: 1,
    };
    let mut cfg = crate::configs::Resolved::load(std::path::Path::new("configs"), &[])?
        .config
        .training;
    cfg.epochs = args.epochs;
    cfg.batch_size = args.batch_size;
    let backward = Backward::default_for(&model, &burn::prelude::Device::flex());
    let timed = epoch_throughputs(&ds, &model, &cfg, backward)?;
    let sps = median(&timed);
    let burn = if args.compare_burn {
        Some(median(&epoch_throughputs(
            &ds,
            &model,
            &cfg,
            Backward::BurnAutodiff,
        )?))
    } else {
        None
    };
    let dataset_train_samples = match &args.dataset {
        Some(d) => {
            Some(raceloop_learn::io::read_json::<Stats>(&d.join("stats.json"))?.train_samples)
        }
        None => None,
    };
    let r = TrainBench {
        architecture: format!("{:?}", model.architecture),
        batch_size: args.batch_size,
        threads: rayon::current_num_threads(),
        samples: args.samples,
        timed_epochs: timed.len(),
        samples_per_s: sps,
        samples_per_s_min: timed.first().copied().unwrap_or(f64::NAN),
        samples_per_s_max: timed.last().copied().unwrap_or(f64::NAN),
        pytorch_cpu_samples_per_s: 8600.0,
        ratio_to_pytorch: sps / 8600.0,
        burn_autodiff_samples_per_s: burn,
        speedup_over_burn_autodiff: burn.map(|b| sps / b),
        epoch_s: dataset_train_samples.map(|n| n as f64 / sps),
        dataset_train_samples,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!(
            "bench train: {} batch {} on {} threads, {} synthetic samples, median of {} epochs \
             after a warm-up epoch ({}, Burn's AdamW)",
            r.architecture,
            r.batch_size,
            r.threads,
            r.samples,
            r.timed_epochs,
            match backward {
                Backward::Packed => "hand-written backward pass",
                Backward::BurnAutodiff => "Burn's autodiff",
            }
        );
        println!(
            "  {:.0} samples/s (range {:.0}–{:.0}) = {:.2}x PyTorch CPU's 8,600 ({:.2}x its \
             fused-AdamW 12,800)",
            r.samples_per_s,
            r.samples_per_s_min,
            r.samples_per_s_max,
            r.ratio_to_pytorch,
            r.samples_per_s / 12800.0
        );
        if let (Some(b), Some(x)) = (r.burn_autodiff_samples_per_s, r.speedup_over_burn_autodiff) {
            println!("  Burn autodiff on flex: {b:.0} samples/s ({x:.2}x slower)");
        }
        if let (Some(n), Some(t)) = (r.dataset_train_samples, r.epoch_s) {
            println!("  one epoch of the dataset ({n} samples): {t:.1} s");
        }
    }
    Ok(())
}

#[derive(Debug, Serialize)]
struct InferBench {
    model: String,
    calls: usize,
    avx512: bool,
    median_us: f64,
    mean_us: f64,
    p99_us: f64,
    burn_flex_median_us: f64,
    speedup_over_burn: f64,
    max_abs_diff_to_burn: f64,
    pytorch_us: f64,
    tflite_xnnpack_us: f64,
}

/// Median, mean and 99th percentile of `calls` timed calls of `f`, µs.
fn time_calls(calls: usize, mut f: impl FnMut()) -> (f64, f64, f64) {
    for _ in 0..200 {
        f();
    }
    let mut times: Vec<f64> = (0..calls)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    times.sort_by(f64::total_cmp);
    (
        times[times.len() / 2],
        times.iter().sum::<f64>() / times.len() as f64,
        times[times.len() * 99 / 100],
    )
}

pub fn infer(args: &BenchInferArgs) -> Result<()> {
    let mut policy = raceloop_learn::Policy::load(&args.model)?;
    let beams = policy.config().num_beams;
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(5);
    let scans: Vec<Vec<f32>> = (0..64)
        .map(|_| {
            (0..beams)
                .map(|_| rand::Rng::random_range(&mut rng, 0.2..30.0))
                .collect()
        })
        .collect();
    let max_abs_diff_to_burn = scans
        .iter()
        .map(|scan| {
            let (a, b) = (policy.act(scan), policy.act_batch_burn(scan)[0]);
            f64::from((a.0 - b.0).abs().max((a.1 - b.1).abs()))
        })
        .fold(0.0, f64::max);
    let scan = &scans[0];
    let (median_us, mean_us, p99_us) = time_calls(args.calls, || {
        std::hint::black_box(policy.act(std::hint::black_box(scan)));
    });
    let (burn_median, _, _) = time_calls(args.calls.min(2000), || {
        std::hint::black_box(policy.act_batch_burn(std::hint::black_box(scan)));
    });
    let r = InferBench {
        model: args.model.display().to_string(),
        calls: args.calls,
        avx512: policy.uses_avx512(),
        median_us,
        mean_us,
        p99_us,
        burn_flex_median_us: burn_median,
        speedup_over_burn: burn_median / median_us,
        max_abs_diff_to_burn,
        pytorch_us: 117.0,
        tflite_xnnpack_us: 30.0,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!(
            "bench infer: {} batch-1 on one thread ({} calls, normalisation included; packed \
             network, AVX-512 {})",
            r.model,
            r.calls,
            if r.avx512 { "on" } else { "off" }
        );
        println!(
            "  median {:.1} µs, mean {:.1} µs, p99 {:.1} µs: {:.2}x PyTorch's 117 µs, {:.2}x the \
             30 µs TFLite/XNNPACK target",
            r.median_us,
            r.mean_us,
            r.p99_us,
            117.0 / r.median_us,
            30.0 / r.median_us
        );
        println!(
            "  Burn flex forward: median {:.1} µs ({:.1}x slower); largest output difference \
             {:.1e} (rad or m/s)",
            r.burn_flex_median_us, r.speedup_over_burn, r.max_abs_diff_to_burn
        );
    }
    Ok(())
}
