//! Benchmarks of the learning core (`raceloop-learn`): training throughput and batch-1
//! inference latency of Tiny Lidar Net.

use std::time::Instant;

use anyhow::{Context, Result};
use rand::SeedableRng;
use serde::Serialize;

use crate::cli::{BenchInferArgs, BenchTrainArgs};

#[derive(Debug, Serialize)]
struct TrainBench {
    architecture: String,
    batch_size: usize,
    threads: usize,
    samples: usize,
    /// Timed epochs per round (each round also has a warm-up epoch).
    timed_epochs: usize,
    /// The median over the rounds of each round's median epoch, samples/s.
    samples_per_s: f64,
    /// The slowest and fastest timed epoch of all rounds.
    samples_per_s_min: f64,
    samples_per_s_max: f64,
    /// The default path on this CPU (`RACELOOP_KERNEL` forces one).
    path: String,
    cpu_features: Vec<(&'static str, bool)>,
    /// Measured on another machine (AMD EPYC with AVX-512), not in this run.
    pytorch_cpu_samples_per_s_other_machine: f64,
    burn_autodiff_samples_per_s: Option<f64>,
    speedup_over_burn_autodiff: Option<f64>,
    /// With `--all-paths`: the median samples/s of every path that this CPU has.
    paths: Vec<(String, f64)>,
    dataset_train_samples: Option<usize>,
    /// `dataset_train_samples / samples_per_s`: an estimate of the training part of an epoch, s.
    estimated_train_epoch_s: Option<f64>,
    /// PyTorch on the same network and data sizes in this run (`--pytorch`), its last round.
    pytorch_same_run: Option<PytorchRun>,
    /// Each interleaved round (`--rounds`).
    rounds: Vec<TrainRound>,
    /// The median over the rounds of raceloop's samples/s ÷ PyTorch's, default (foreach) and
    /// fused AdamW.
    speedup_over_pytorch: Option<f64>,
    speedup_over_pytorch_fused: Option<f64>,
}

/// One round of `bench train`: raceloop's epochs, then PyTorch's.
#[derive(Debug, Serialize)]
struct TrainRound {
    /// raceloop's median samples/s over the round's timed epochs.
    samples_per_s: f64,
    /// PyTorch's samples/s with its default (foreach) AdamW and with the fused one.
    pytorch_samples_per_s: Option<f64>,
    pytorch_fused_samples_per_s: Option<f64>,
}

impl TrainRound {
    fn ratios(&self) -> Option<(f64, f64)> {
        Some((
            self.samples_per_s / self.pytorch_samples_per_s?,
            self.samples_per_s / self.pytorch_fused_samples_per_s?,
        ))
    }
}

/// The median of `values` (sorted here), NaN when empty.
fn median_of(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    median(&values)
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

/// The PyTorch reference (`benches/pytorch_reference.py`): the same Tiny Lidar Net in PyTorch.
/// The ego speed passed with each scan in `bench infer`, m/s (read only by a model with
/// `model.speed_input`).
const BENCH_SPEED: f32 = 5.0;

const PYTORCH_SCRIPT: &str = include_str!("../../benches/pytorch_reference.py");

/// PyTorch's figures from the same run.
#[derive(Debug, Serialize, serde::Deserialize)]
struct PytorchRun {
    /// torch's version.
    torch: String,
    /// The kernels it dispatched to (`AVX512`, `AVX2`; `ATEN_CPU_CAPABILITY` forces one).
    cpu_capability: String,
    threads: usize,
    #[serde(default)]
    infer: Option<serde_json::Value>,
    #[serde(default)]
    train: Option<serde_json::Value>,
    #[serde(default)]
    train_fused: Option<serde_json::Value>,
}

/// Runs the PyTorch reference with `python` and `args`; its JSON output.
///
/// # Errors
/// A Python that does not start, fails (its stderr's end is quoted) or prints no JSON.
fn pytorch_reference(python: &std::path::Path, args: &[String]) -> Result<PytorchRun> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(python)
        .arg("-")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", python.display()))?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(PYTORCH_SCRIPT.as_bytes())?;
    let out = child.wait_with_output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    let tail = lines[lines.len().saturating_sub(3)..].join(" | ");
    anyhow::ensure!(
        out.status.success(),
        "the PyTorch reference failed under {}: {tail}",
        python.display()
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or_default()).with_context(|| {
        format!(
            "the PyTorch reference under {} printed no JSON: {tail}",
            python.display()
        )
    })
}

/// A number in the reference's JSON, or NaN.
fn field(v: &Option<serde_json::Value>, key: &str) -> f64 {
    v.as_ref()
        .and_then(|v| v.get(key))
        .and_then(serde_json::Value::as_f64)
        .unwrap_or(f64::NAN)
}

/// The median of `sorted` (the mean of the middle two for an even count), NaN when empty.
fn median(sorted: &[f64]) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
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
    let train = Split {
        scans,
        labels,
        speeds: Vec::new(),
    };
    let val = Split::default();
    let stats = Stats::compute(&train, &val, beams, 30.0, 0.4189, 20.0);
    let ds = Dataset { train, val, stats };
    let model = ModelConfig {
        architecture: args.arch.into(),
        num_beams: beams,
        outputs: 1,
        members: 1,
        speed_input: false,
    };
    let mut cfg = crate::config::Resolved::load(std::path::Path::new("configs"), &[])?
        .config
        .training;
    cfg.epochs = args.epochs;
    cfg.batch_size = args.batch_size;
    let backward = Backward::default_for(&model, &burn::prelude::Device::flex());
    let name = |b: Backward| match b {
        Backward::Packed(k) => format!("packed backward pass, {k} kernel, packed AdamW"),
        Backward::BurnAutodiff => "Burn's autodiff and AdamW".to_string(),
    };
    anyhow::ensure!(
        args.pytorch.is_none() || model.architecture == raceloop_learn::Architecture::TinyLidarNet,
        "--pytorch builds Tiny Lidar Net only; drop it or --arch mlp"
    );
    let mut rounds = Vec::new();
    let mut timed = Vec::new();
    let mut pytorch = None;
    for _ in 0..args.rounds {
        let epochs = epoch_throughputs(&ds, &model, &cfg, backward)?;
        let samples_per_s = median(&epochs);
        timed.extend(epochs);
        let run = match &args.pytorch {
            Some(python) => Some(pytorch_reference(
                python,
                &[
                    "train".into(),
                    format!("--samples={}", args.samples),
                    format!("--epochs={}", args.epochs),
                    format!("--threads={}", rayon::current_num_threads()),
                    format!("--outputs={}", model.outputs),
                ],
            )?),
            None => None,
        };
        rounds.push(TrainRound {
            samples_per_s,
            pytorch_samples_per_s: run.as_ref().map(|t| field(&t.train, "samples_per_s")),
            pytorch_fused_samples_per_s: run
                .as_ref()
                .map(|t| field(&t.train_fused, "samples_per_s")),
        });
        if run.is_some() {
            pytorch = run;
        }
    }
    timed.sort_by(f64::total_cmp);
    let sps = median_of(rounds.iter().map(|r| r.samples_per_s).collect());
    let ratios: Vec<(f64, f64)> = rounds.iter().filter_map(TrainRound::ratios).collect();
    let (speedup_over_pytorch, speedup_over_pytorch_fused) = if ratios.is_empty() {
        (None, None)
    } else {
        (
            Some(median_of(ratios.iter().map(|r| r.0).collect())),
            Some(median_of(ratios.iter().map(|r| r.1).collect())),
        )
    };
    let mut paths = Vec::new();
    if args.all_paths {
        use raceloop_learn::kernel::Kernel;
        for kernel in Kernel::available() {
            let b = match kernel {
                Kernel::Burn => Backward::BurnAutodiff,
                k => Backward::Packed(k),
            };
            let rate = if b == backward {
                sps
            } else {
                median(&epoch_throughputs(&ds, &model, &cfg, b)?)
            };
            paths.push((kernel.name().to_string(), rate));
        }
    }
    let burn = paths.iter().find(|(k, _)| k == "burn").map(|(_, r)| *r).or(
        if backward == Backward::BurnAutodiff {
            Some(sps)
        } else {
            None
        },
    );
    let burn = if args.compare_burn && burn.is_none() {
        Some(median(&epoch_throughputs(
            &ds,
            &model,
            &cfg,
            Backward::BurnAutodiff,
        )?))
    } else {
        burn
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
        timed_epochs: timed.len() / rounds.len(),
        samples_per_s: sps,
        samples_per_s_min: timed.first().copied().unwrap_or(f64::NAN),
        samples_per_s_max: timed.last().copied().unwrap_or(f64::NAN),
        path: name(backward),
        cpu_features: raceloop_learn::kernel::Kernel::cpu_features(),
        pytorch_cpu_samples_per_s_other_machine: 8600.0,
        burn_autodiff_samples_per_s: burn,
        speedup_over_burn_autodiff: burn.map(|b| sps / b),
        paths,
        estimated_train_epoch_s: dataset_train_samples.map(|n| n as f64 / sps),
        dataset_train_samples,
        pytorch_same_run: pytorch,
        rounds,
        speedup_over_pytorch,
        speedup_over_pytorch_fused,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!(
            "bench train: {} batch {} on {} threads, {} synthetic samples, median of {} epochs \
             after a warm-up epoch{} ({})",
            r.architecture,
            r.batch_size,
            r.threads,
            r.samples,
            r.timed_epochs,
            match r.rounds.len() {
                1 => String::new(),
                n => format!(", median of {n} rounds"),
            },
            r.path
        );
        let features: Vec<String> = r
            .cpu_features
            .iter()
            .map(|(f, on)| format!("{f} {}", if *on { "yes" } else { "no" }))
            .collect();
        println!("  CPU: {}", features.join(", "));
        println!(
            "  {:.0} samples/s (range {:.0}–{:.0}); PyTorch CPU did 8,600 (12,800 with fused \
             AdamW) on another machine (AMD EPYC with AVX-512), not in this run",
            r.samples_per_s, r.samples_per_s_min, r.samples_per_s_max,
        );
        for (path, rate) in &r.paths {
            println!("  path {path:<9} {rate:>8.0} samples/s");
        }
        if let (Some(t), Some(x), Some(fused)) = (
            &r.pytorch_same_run,
            r.speedup_over_pytorch,
            r.speedup_over_pytorch_fused,
        ) {
            println!(
                "  PyTorch {} ({}, {} threads) in this run, interleaved with raceloop:",
                t.torch, t.cpu_capability, t.threads
            );
            for (i, round) in r.rounds.iter().enumerate() {
                let (plain, fused) = round.ratios().unwrap_or((f64::NAN, f64::NAN));
                println!(
                    "    round {}: raceloop {:.0} samples/s, PyTorch {:.0} ({:.0} with fused \
                     AdamW): raceloop {plain:.2}x ({fused:.2}x)",
                    i + 1,
                    round.samples_per_s,
                    round.pytorch_samples_per_s.unwrap_or(f64::NAN),
                    round.pytorch_fused_samples_per_s.unwrap_or(f64::NAN),
                );
            }
            println!(
                "    median over {} round(s): raceloop {x:.2}x PyTorch ({fused:.2}x with fused \
                 AdamW)",
                r.rounds.len()
            );
        } else if r.rounds.len() > 1 {
            let each: Vec<String> = r
                .rounds
                .iter()
                .map(|round| format!("{:.0}", round.samples_per_s))
                .collect();
            println!("  rounds: {} samples/s", each.join(", "));
        }
        if let (Some(b), Some(x)) = (r.burn_autodiff_samples_per_s, r.speedup_over_burn_autodiff)
            && r.paths.is_empty()
        {
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
struct InferPath {
    kernel: String,
    median_us: f64,
    mean_us: f64,
    p99_us: f64,
    /// Network arithmetic per second at the median, GFLOP/s.
    gflop_per_s: f64,
    /// Largest difference to Burn's forward pass over 64 scans (rad or m/s).
    max_abs_diff_to_burn: f64,
}

#[derive(Debug, Serialize)]
struct InferBench {
    model: String,
    calls: usize,
    cpu_features: Vec<(&'static str, bool)>,
    /// The path that `Policy` takes on this CPU (or `RACELOOP_KERNEL`).
    chosen: String,
    /// Multiply-adds × 2 of one scan through the network.
    flop_per_scan: u64,
    paths: Vec<InferPath>,
    /// Reference figures measured on another machine (AMD EPYC with AVX-512), not in this run.
    pytorch_us_other_machine: f64,
    /// PyTorch on the same network in this run (`--pytorch`), its last round.
    pytorch_same_run: Option<PytorchRun>,
    tflite_xnnpack_us_other_machine: f64,
    /// Each interleaved round (`--rounds`).
    rounds: Vec<InferRound>,
}

/// One round of `bench infer`: every path, then PyTorch.
#[derive(Debug, Serialize)]
struct InferRound {
    /// Each path's median latency, µs.
    median_us: Vec<(String, f64)>,
    #[serde(skip)]
    mean_us: Vec<f64>,
    #[serde(skip)]
    p99_us: Vec<f64>,
    /// PyTorch's median latency, µs.
    pytorch_median_us: Option<f64>,
}

impl InferRound {
    fn median(&self, kernel: &str) -> f64 {
        self.median_us
            .iter()
            .find(|(k, _)| k == kernel)
            .map_or(f64::NAN, |(_, us)| *us)
    }
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

/// `raceloop bench infer`: batch-1 inference latency of a model directory on every code path
/// that this CPU has, side by side.
///
/// # Errors
/// An unloadable model.
pub fn infer(args: &BenchInferArgs) -> Result<()> {
    use raceloop_learn::kernel::Kernel;
    let policy = raceloop_learn::Policy::load(&args.model)?;
    let beams = policy.config().num_beams;
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(5);
    let scans: Vec<Vec<f32>> = (0..64)
        .map(|_| {
            (0..beams)
                .map(|_| rand::Rng::random_range(&mut rng, 0.2..30.0))
                .collect()
        })
        .collect();
    let flop_per_scan = policy.flop();
    let mut reference = policy.clone().with_kernel(Kernel::Burn);
    let mut candidates = Vec::new();
    for kernel in Kernel::available() {
        let mut p = policy.clone().with_kernel(kernel);
        let max_abs_diff_to_burn = scans
            .iter()
            .map(|scan| {
                let (a, b) = (p.act(scan, BENCH_SPEED), reference.act(scan, BENCH_SPEED));
                f64::from((a.0 - b.0).abs().max((a.1 - b.1).abs()))
            })
            .fold(0.0, f64::max);
        candidates.push((kernel, p, max_abs_diff_to_burn));
    }
    anyhow::ensure!(
        args.pytorch.is_none()
            || policy.config().architecture == raceloop_learn::Architecture::TinyLidarNet,
        "--pytorch builds Tiny Lidar Net only, and {} is another network",
        args.model.display()
    );
    let mut rounds: Vec<InferRound> = Vec::new();
    let mut pytorch = None;
    for _ in 0..args.rounds {
        let mut times = Vec::new();
        for (kernel, p, _) in &mut candidates {
            let calls = if *kernel == Kernel::Burn || *kernel == Kernel::Portable {
                args.calls.min(2000)
            } else {
                args.calls
            };
            let scan = &scans[0];
            times.push(time_calls(calls, || {
                std::hint::black_box(p.act(std::hint::black_box(scan), BENCH_SPEED));
            }));
        }
        let run = match &args.pytorch {
            Some(python) => Some(pytorch_reference(
                python,
                &[
                    "infer".into(),
                    format!("--calls={}", args.calls),
                    "--threads=1".into(),
                    format!("--outputs={}", policy.config().outputs),
                ],
            )?),
            None => None,
        };
        rounds.push(InferRound {
            median_us: candidates
                .iter()
                .zip(&times)
                .map(|((k, _, _), t)| (k.name().to_string(), t.0))
                .collect(),
            mean_us: times.iter().map(|t| t.1).collect(),
            p99_us: times.iter().map(|t| t.2).collect(),
            pytorch_median_us: run.as_ref().map(|t| field(&t.infer, "median_us")),
        });
        if run.is_some() {
            pytorch = run;
        }
    }
    let paths: Vec<InferPath> = candidates
        .iter()
        .enumerate()
        .map(|(i, (kernel, _, diff))| {
            let median_us = median_of(rounds.iter().map(|r| r.median_us[i].1).collect());
            InferPath {
                kernel: kernel.name().into(),
                median_us,
                mean_us: rounds.iter().map(|r| r.mean_us[i]).sum::<f64>() / rounds.len() as f64,
                p99_us: rounds.iter().map(|r| r.p99_us[i]).fold(0.0, f64::max),
                gflop_per_s: flop_per_scan as f64 / median_us / 1e3,
                max_abs_diff_to_burn: *diff,
            }
        })
        .collect();
    let r = InferBench {
        pytorch_same_run: pytorch,
        model: args.model.display().to_string(),
        calls: args.calls,
        cpu_features: Kernel::cpu_features(),
        chosen: policy.kernel().name().into(),
        flop_per_scan,
        paths,
        pytorch_us_other_machine: 117.0,
        tflite_xnnpack_us_other_machine: 30.0,
        rounds,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    let features: Vec<String> = r
        .cpu_features
        .iter()
        .map(|(f, on)| format!("{f} {}", if *on { "yes" } else { "no" }))
        .collect();
    println!(
        "bench infer: {} batch-1 on one thread (normalisation included; {:.2} MFLOP per scan)",
        r.model,
        r.flop_per_scan as f64 / 1e6
    );
    println!(
        "  CPU: {}; Policy uses `{}` (RACELOOP_KERNEL forces a path)",
        features.join(", "),
        r.chosen
    );
    let burn = r
        .paths
        .iter()
        .find(|p| p.kernel == "burn")
        .map_or(f64::NAN, |p| p.median_us);
    println!(
        "  {:<9} {:>10} {:>10} {:>10} {:>9} {:>10} {:>12}",
        "path", "median µs", "mean µs", "p99 µs", "GFLOP/s", "vs Burn", "diff to Burn"
    );
    for p in &r.paths {
        println!(
            "  {:<9} {:>10.1} {:>10.1} {:>10.1} {:>9.1} {:>9.2}x {:>12.1e}",
            p.kernel,
            p.median_us,
            p.mean_us,
            p.p99_us,
            p.gflop_per_s,
            burn / p.median_us,
            p.max_abs_diff_to_burn
        );
    }
    if let Some(t) = &r.pytorch_same_run {
        println!(
            "  PyTorch {} ({}, 1 thread) in this run, interleaved with raceloop:",
            t.torch, t.cpu_capability
        );
    }
    if r.pytorch_same_run.is_some() || r.rounds.len() > 1 {
        let (mut vs_burn, mut vs_pytorch) = (Vec::new(), Vec::new());
        for (i, round) in r.rounds.iter().enumerate() {
            let (chosen, burn) = (round.median(&r.chosen), round.median("burn"));
            vs_burn.push(burn / chosen);
            let pytorch = match round.pytorch_median_us {
                Some(us) => {
                    vs_pytorch.push(us / chosen);
                    format!(", PyTorch {us:.1} µs: {:.2}x", us / chosen)
                }
                None => String::new(),
            };
            println!(
                "    round {}: `{}` {chosen:.1} µs, Burn {burn:.1} µs: {:.2}x{pytorch}",
                i + 1,
                r.chosen,
                burn / chosen
            );
        }
        let pytorch = if vs_pytorch.is_empty() {
            String::new()
        } else {
            format!(", {:.2}x PyTorch", median_of(vs_pytorch))
        };
        println!(
            "    median over {} round(s): `{}` {:.2}x Burn{pytorch}",
            r.rounds.len(),
            r.chosen,
            median_of(vs_burn)
        );
    }
    println!(
        "  references measured on another machine (AMD EPYC with AVX-512), not in this run: \
         PyTorch 117 µs, TFLite/XNNPACK 30 µs"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(&[1.0, 2.0, 9.0]), 2.0);
        assert_eq!(median(&[1.0, 2.0, 4.0, 9.0]), 3.0);
        assert!(median(&[]).is_nan());
        assert_eq!(median_of(vec![3.0, 1.0]), 2.0);
    }
}
