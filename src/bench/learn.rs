//! Benchmarks of the learning core (`raceloop-learn`): training throughput and batch-1
//! inference latency of Tiny Lidar Net.

use std::time::Instant;

use anyhow::Result;
use rand::SeedableRng;
use serde::Serialize;

use crate::cli::{BenchInferArgs, BenchTrainArgs};

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
    /// `dataset_train_samples / samples_per_s`: an estimate of the training part of an epoch, s.
    estimated_train_epoch_s: Option<f64>,
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

/// `raceloop bench train`: training samples/s after a warm-up epoch.
///
/// # Errors
/// Bad arguments, configs or dataset.
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
    let mut cfg = crate::config::Resolved::load(std::path::Path::new("configs"), &[])?
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
        Some(d) => Some(raceloop_files::read_json::<Stats>(&d.join("stats.json"))?.train_samples),
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
        estimated_train_epoch_s: dataset_train_samples.map(|n| n as f64 / sps),
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
        if let (Some(n), Some(t)) = (r.dataset_train_samples, r.estimated_train_epoch_s) {
            println!(
                "  one epoch of the dataset ({n} samples): {t:.1} s estimated as samples / \
                 samples-per-second (training only: validation and data preparation are not \
                 included; `raceloop train` prints measured epoch times)"
            );
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

/// `raceloop bench infer`: batch-1 inference latency of a model directory.
///
/// # Errors
/// An unloadable model.
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
