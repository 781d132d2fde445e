//! `--device wgpu`: a short training of Tiny Lidar Net on Burn's wgpu backend gives the CPU's
//! losses. Built only with the `wgpu` feature; in CI it runs on Mesa's software Vulkan
//! (lavapipe, `mesa-vulkan-drivers`), where only the numbers, not the speed, mean anything.
//! Without a Vulkan driver it is skipped with a message, unless `RACELOOP_REQUIRE_WINDOW_TEST`
//! (set by `.ci/run`) makes that a failure.
#![cfg(feature = "wgpu")]

use burn::prelude::*;
use raceloop_learn::kernel::Kernel;
use raceloop_learn::loss::LossKind;
use raceloop_learn::train::{Backward, Progress, Schedule, train_with};
use raceloop_learn::{Architecture, Dataset, ModelConfig, Split, Stats, TrainConfig};

/// Relative agreement required of every batch and epoch loss: the same initial weights and
/// batches, f32 sums in another order over 18 AdamW steps (measured on lavapipe: 1.9e-6).
const TOLERANCE: f64 = 1e-4;

/// 96 scans of 1080 beams whose left-right asymmetry sets the steering label.
fn dataset() -> Dataset {
    let (n, beams) = (96, 1080);
    let mut train = Split::default();
    for i in 0..n {
        let k = i as f32 / (n - 1) as f32;
        train.scans.extend((0..beams).map(|b| {
            let wave = 0.2 * ((b * (i % 7 + 1)) as f32 * 0.01).sin();
            if b < beams / 2 {
                1.0 + 3.0 * k + wave
            } else {
                4.0 - 3.0 * k + wave
            }
        }));
        train.labels.extend([0.3 * (2.0 * k - 1.0), 2.0 + k]);
    }
    let val = Split {
        scans: train.scans[..8 * beams].to_vec(),
        labels: train.labels[..16].to_vec(),
        speeds: Vec::new(),
    };
    let stats = Stats::compute(&train, &val, beams, 30.0, 0.4189, 20.0);
    Dataset { train, val, stats }
}

/// Per-batch losses and per-epoch (train, val) losses of 3 epochs on `device`.
fn losses(device: &Device, backward: Backward) -> (Vec<f64>, Vec<(f64, f64)>) {
    let model = ModelConfig {
        architecture: Architecture::TinyLidarNet,
        num_beams: 1080,
        outputs: 2,
        members: 1,
        speed_input: false,
    };
    let cfg = TrainConfig {
        epochs: 3,
        batch_size: 16,
        lr: 1e-3,
        weight_decay: 1e-4,
        epsilon: 1e-8,
        betas: [0.9, 0.999],
        loss: LossKind::Mse,
        schedule: Schedule::Constant,
        seed: 3,
        early_stopping_patience: 0,
        scan_noise_std: 0.0,
        mirror: false,
        speed_noise_std: 0.0,
    };
    let mut batches = Vec::new();
    let trained = train_with(
        &dataset(),
        &model,
        &cfg,
        device,
        backward,
        &mut |p| {
            if let Progress::Batch { loss, .. } = p {
                batches.push(loss);
            }
        },
        &|| false,
    )
    .unwrap_or_else(|e| panic!("training on {device:?}: {e}"));
    let epochs = trained
        .metrics
        .iter()
        .map(|m| (m.train_loss, m.val_loss))
        .collect();
    (batches, epochs)
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / a.abs().max(b.abs()).max(1e-12)
}

/// Whether a Vulkan driver's manifest (ICD) is installed where the Vulkan loader looks.
fn vulkan_driver_installed() -> bool {
    ["/usr/share/vulkan/icd.d", "/etc/vulkan/icd.d"]
        .iter()
        .filter_map(|dir| std::fs::read_dir(dir).ok())
        .flatten()
        .flatten()
        .any(|e| e.path().extension().is_some_and(|x| x == "json"))
}

#[test]
fn wgpu_training_matches_the_cpu_losses() {
    if !vulkan_driver_installed() {
        assert!(
            std::env::var_os("RACELOOP_REQUIRE_WINDOW_TEST").is_none(),
            "no Vulkan driver is installed but RACELOOP_REQUIRE_WINDOW_TEST is set"
        );
        eprintln!("skipped: no Vulkan driver (apt-get install mesa-vulkan-drivers)");
        return;
    }
    let gpu = Device::wgpu(Default::default());
    let t0 = std::time::Instant::now();
    let (gpu_batches, gpu_epochs) = losses(&gpu, Backward::BurnAutodiff);
    let gpu_s = t0.elapsed().as_secs_f64();
    let (cpu_batches, cpu_epochs) = losses(&Device::flex(), Backward::BurnAutodiff);
    let (packed_batches, _) = losses(&Device::flex(), Backward::Packed(Kernel::choose()));
    println!("wgpu device {gpu:?}: 3 epochs in {gpu_s:.1} s");
    assert_eq!(gpu_batches.len(), cpu_batches.len());
    let mut worst = 0f64;
    for (i, ((g, c), p)) in gpu_batches
        .iter()
        .zip(&cpu_batches)
        .zip(&packed_batches)
        .enumerate()
    {
        worst = worst.max(rel(*g, *c)).max(rel(*g, *p));
        assert!(
            rel(*g, *c) < TOLERANCE && rel(*g, *p) < TOLERANCE,
            "batch {i}: wgpu {g} vs CPU autodiff {c} vs CPU packed {p}"
        );
    }
    for (e, (g, c)) in gpu_epochs.iter().zip(&cpu_epochs).enumerate() {
        println!(
            "epoch {}: train loss wgpu {:.7} CPU {:.7}; val loss wgpu {:.7} CPU {:.7}",
            e + 1,
            g.0,
            c.0,
            g.1,
            c.1
        );
        worst = worst.max(rel(g.0, c.0)).max(rel(g.1, c.1));
        assert!(rel(g.0, c.0) < TOLERANCE && rel(g.1, c.1) < TOLERANCE);
    }
    println!(
        "{} batch losses and {} epochs agree: largest relative difference {worst:.2e} (tolerance {TOLERANCE:.0e})",
        gpu_batches.len(),
        gpu_epochs.len()
    );
    assert!(
        gpu_epochs.last().unwrap().0 < 0.5 * gpu_batches[0],
        "the loss falls on wgpu"
    );
}
