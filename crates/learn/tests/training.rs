//! Training can fit data, and a saved model loads back to identical outputs.

use burn::prelude::*;
use raceloop_learn::loss::LossKind;
use raceloop_learn::policy::{self, MODEL_FILE, STATS_FILE, save_weights};
use raceloop_learn::train::Schedule;
use raceloop_learn::{Architecture, Dataset, ModelConfig, Policy, Split, Stats, TrainConfig};

fn tiny_dataset(n: usize, beams: usize) -> Dataset {
    // Scans whose left-right asymmetry determines the steering label.
    let mut train = Split::default();
    for i in 0..n {
        let k = i as f32 / (n - 1) as f32;
        train.scans.extend((0..beams).map(|b| {
            if b < beams / 2 {
                1.0 + 3.0 * k
            } else {
                4.0 - 3.0 * k
            }
        }));
        train.labels.extend([0.3 * (2.0 * k - 1.0), 3.5]);
    }
    let val = Split {
        scans: train.scans[..beams].to_vec(),
        labels: train.labels[..2].to_vec(),
        speeds: Vec::new(),
    };
    let stats = Stats::compute(&train, &val, beams, 30.0, 0.4189, 20.0);
    Dataset { train, val, stats }
}

/// An ego speed (4 m/s) for each 1080-beam scan of `scans`.
fn speeds(scans: &[f32]) -> Vec<f32> {
    vec![4.0; scans.len() / 1080]
}

/// Trains `model` on `ds` with `cfg` on the CPU, without progress reports or a stop.
fn train_cpu(
    ds: &Dataset,
    model: &ModelConfig,
    cfg: &TrainConfig,
) -> raceloop_learn::Result<raceloop_learn::train::Trained> {
    raceloop_learn::train(ds, model, cfg, &Device::flex(), &mut |_| {}, &|| false)
}

fn config(epochs: usize) -> TrainConfig {
    TrainConfig {
        epochs,
        batch_size: 8,
        lr: 1e-3,
        weight_decay: 0.0,
        epsilon: 1e-8,
        betas: [0.9, 0.999],
        loss: LossKind::Mse,
        schedule: Schedule::Constant,
        seed: 1,
        early_stopping_patience: 0,
        scan_noise_std: 0.0,
        mirror: false,
        speed_noise_std: 0.0,
    }
}

#[test]
fn training_overfits_a_small_batch() {
    let ds = tiny_dataset(16, 1080);
    let model = ModelConfig {
        architecture: Architecture::TinyLidarNet,
        num_beams: 1080,
        outputs: 1,
        members: 1,
        speed_input: false,
    };
    let trained = train_cpu(&ds, &model, &config(150)).unwrap();
    let first = trained.metrics.first().unwrap().train_loss;
    let last = trained.metrics.last().unwrap().train_loss;
    assert!(
        last < 1e-3 && last < first / 50.0,
        "train loss {first} → {last}"
    );
}

#[test]
fn save_then_load_gives_identical_outputs() {
    let ds = tiny_dataset(16, 1080);
    let model_cfg = ModelConfig {
        architecture: Architecture::TinyLidarNet,
        num_beams: 1080,
        outputs: 2,
        members: 1,
        speed_input: false,
    };
    let trained = train_cpu(&ds, &model_cfg, &config(2)).unwrap();
    let dir = std::env::temp_dir().join(format!("raceloop-model-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    save_weights(&trained.model, &dir).unwrap();
    let first = std::fs::read(dir.join(policy::WEIGHTS_FILE)).unwrap();
    for _ in 0..4 {
        save_weights(&trained.model, &dir).unwrap();
        assert!(
            std::fs::read(dir.join(policy::WEIGHTS_FILE)).unwrap() == first,
            "the same weights must give the same file, byte for byte"
        );
    }
    std::fs::write(
        dir.join(MODEL_FILE),
        serde_json::to_string(&model_cfg).unwrap(),
    )
    .unwrap();
    std::fs::write(
        dir.join(STATS_FILE),
        serde_json::to_string(&ds.stats).unwrap(),
    )
    .unwrap();
    let mut in_memory = Policy::new(
        trained.model,
        model_cfg.clone(),
        ds.stats.clone(),
        Device::flex(),
    );
    let mut loaded = Policy::load(&dir).unwrap();
    let batch = &ds.train.scans[..4 * 1080];
    assert_eq!(
        in_memory.act_batch(batch, &speeds(batch)),
        loaded.act_batch(batch, &speeds(batch))
    );

    // A model file that does not fit the configured network is a clear error naming the file.
    std::fs::write(
        dir.join(MODEL_FILE),
        serde_json::to_string(&ModelConfig {
            architecture: Architecture::Mlp,
            ..model_cfg
        })
        .unwrap(),
    )
    .unwrap();
    let e = Policy::load(&dir).unwrap_err().to_string();
    assert!(e.contains("weights.safetensors"), "{e}");
    std::fs::write(dir.join(MODEL_FILE), "{ not json").unwrap();
    let e = Policy::load(&dir).unwrap_err().to_string();
    assert!(e.contains("model.json"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Every scan has the far wall on its right and every label steers left. With mirroring, half
/// of each epoch's samples are the mirrored scan (far wall on the left) steering right, so the
/// model learns both; without it, it never sees a mirrored scan.
#[test]
fn mirroring_teaches_the_mirrored_track() {
    let beams = 1080;
    let mut train = Split::default();
    for i in 0..32 {
        let k = i as f32 / 31.0;
        train
            .scans
            .extend((0..beams).map(|b| if b < beams / 2 { 1.0 + k } else { 5.0 + k }));
        train.labels.extend([0.2, 3.5]);
    }
    let val = Split {
        scans: train.scans[..beams].to_vec(),
        labels: train.labels[..2].to_vec(),
        speeds: Vec::new(),
    };
    let stats = Stats::compute(&train, &val, beams, 30.0, 0.4189, 20.0);
    let ds = Dataset { train, val, stats };
    let mirrored_scans: Vec<f32> = ds
        .train
        .scans
        .chunks_exact(beams)
        .flat_map(|s| s.iter().rev().copied())
        .collect();
    let model = ModelConfig {
        architecture: Architecture::TinyLidarNet,
        num_beams: beams,
        outputs: 1,
        members: 1,
        speed_input: false,
    };
    let mean_steering = |mirror: bool| {
        let cfg = TrainConfig {
            mirror,
            ..config(60)
        };
        let trained = train_cpu(&ds, &model, &cfg).unwrap();
        let mut policy = Policy::new(
            trained.model,
            model.clone(),
            ds.stats.clone(),
            Device::flex(),
        );
        let mut mean = |scans: &[f32]| {
            let a = policy.act_batch(scans, &speeds(scans));
            a.iter().map(|a| a.0 as f64).sum::<f64>() / a.len() as f64
        };
        (mean(&ds.train.scans), mean(&mirrored_scans))
    };
    let (plain, mirrored) = (mean_steering(false), mean_steering(true));
    println!("without mirroring {plain:?}, with {mirrored:?}");
    assert!((plain.0 - 0.2).abs() < 0.03, "without mirroring {plain:?}");
    assert!(plain.1 > -0.1, "without mirroring {plain:?}");
    assert!(
        (mirrored.0 - 0.2).abs() < 0.03,
        "with mirroring {mirrored:?}"
    );
    assert!(
        (mirrored.1 + 0.2).abs() < 0.03,
        "with mirroring {mirrored:?}"
    );
}

/// An ensemble (`model.members`): with two members its policy's command is their mean, with
/// three their median (the trimmed mean), on the packed kernel and Burn's forward pass alike;
/// `save_members` writes one file that loads back to the same commands; a file of another
/// member count, or a member count outside 1..=16, is an error that names the file or the field.
#[test]
fn an_ensemble_combines_its_members_and_loads_back() {
    let ds = tiny_dataset(16, 1080);
    let one = ModelConfig {
        architecture: Architecture::TinyLidarNet,
        num_beams: 1080,
        outputs: 2,
        members: 1,
        speed_input: false,
    };
    let members: Vec<raceloop_learn::Model> = [1, 2, 3]
        .iter()
        .map(|&seed| {
            let cfg = TrainConfig { seed, ..config(2) };
            train_cpu(&ds, &one, &cfg).unwrap().model
        })
        .collect();
    let scans = &ds.train.scans[..6 * 1080];
    let alone: Vec<Vec<(f32, f32)>> = members
        .iter()
        .map(|m| {
            Policy::new(m.clone(), one.clone(), ds.stats.clone(), Device::flex())
                .act_batch(scans, &speeds(scans))
        })
        .collect();
    assert!(
        alone[0] != alone[1] && alone[1] != alone[2],
        "three seeds must give three networks"
    );
    let median = |v: [f32; 3]| {
        let mut v = v;
        v.sort_by(f32::total_cmp);
        v[1]
    };
    for k in [2, 3] {
        let cfg = ModelConfig {
            members: k,
            ..one.clone()
        };
        let mut ensemble = Policy::from_members(
            members[..k].to_vec(),
            cfg.clone(),
            ds.stats.clone(),
            Device::flex(),
        );
        assert_eq!(ensemble.members(), k);
        let burn = ensemble
            .clone()
            .with_kernel(raceloop_learn::kernel::Kernel::Burn)
            .act_batch(scans, &speeds(scans));
        let combined = ensemble.act_batch(scans, &speeds(scans));
        for (i, ((s, v), (bs, bv))) in combined.iter().zip(&burn).enumerate() {
            let (es, ev) = if k == 2 {
                (
                    0.5 * (alone[0][i].0 + alone[1][i].0),
                    0.5 * (alone[0][i].1 + alone[1][i].1),
                )
            } else {
                (
                    median([alone[0][i].0, alone[1][i].0, alone[2][i].0]),
                    median([alone[0][i].1, alone[1][i].1, alone[2][i].1]),
                )
            };
            assert!(
                (s - es).abs() < 1e-5 && (v - ev).abs() < 1e-4,
                "{k} members, scan {i}: {s} {v} vs {es} {ev}"
            );
            assert!(
                (s - bs).abs() < 1e-5 && (v - bv).abs() < 1e-4,
                "{k} members, scan {i}: packed {s} {v}, burn {bs} {bv}"
            );
        }

        let dir =
            std::env::temp_dir().join(format!("raceloop-ensemble-{k}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        policy::save_members(&members[..k], &dir).unwrap();
        std::fs::write(dir.join(MODEL_FILE), serde_json::to_string(&cfg).unwrap()).unwrap();
        std::fs::write(
            dir.join(STATS_FILE),
            serde_json::to_string(&ds.stats).unwrap(),
        )
        .unwrap();
        assert_eq!(
            Policy::load(&dir).unwrap().act_batch(scans, &speeds(scans)),
            combined
        );
        for wrong in [1, k + 1] {
            let wrong_cfg = ModelConfig {
                members: wrong,
                ..one.clone()
            };
            std::fs::write(
                dir.join(MODEL_FILE),
                serde_json::to_string(&wrong_cfg).unwrap(),
            )
            .unwrap();
            let e = Policy::load(&dir).unwrap_err().to_string();
            assert!(
                e.contains("weights.safetensors"),
                "{wrong} of {k} members: {e}"
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
    for members in [0, 17] {
        let bad = ModelConfig {
            members,
            ..one.clone()
        };
        let e = bad.validate().unwrap_err().to_string();
        assert!(e.contains("model.members"), "{members}: {e}");
    }
    // A single network's model.json has no `members`, so older directories load unchanged.
    assert!(!serde_json::to_string(&one).unwrap().contains("members"));
}

/// A network that reads the ego speed (`model.speed_input`) learns a command that depends on
/// the speed alone (every scan the same), through the packed backward pass; one that reads
/// only the scan cannot tell the samples apart. A dataset without speeds is refused by name.
#[test]
fn a_speed_reading_network_learns_from_the_ego_speed() {
    let beams = 1080;
    let n = 32;
    let mut train = Split::default();
    for i in 0..n {
        let speed = 1.0 + 6.0 * i as f32 / (n - 1) as f32;
        train
            .scans
            .extend((0..beams).map(|b| 2.0 + (b % 7) as f32 * 0.3));
        train.speeds.push(speed);
        // Slower into the corner the faster the car already is.
        train.labels.extend([0.1, 8.0 - 0.8 * speed]);
    }
    let val = Split {
        scans: train.scans[..beams].to_vec(),
        labels: train.labels[..2].to_vec(),
        speeds: train.speeds[..1].to_vec(),
    };
    let stats = Stats::compute(&train, &val, beams, 30.0, 0.4189, 20.0);
    let ds = Dataset { train, val, stats };
    let scan = ds.train.scans[..beams].to_vec();
    let mut commanded = Vec::new();
    for speed_input in [true, false] {
        let model = ModelConfig {
            architecture: Architecture::TinyLidarNet,
            num_beams: beams,
            outputs: 2,
            members: 1,
            speed_input,
        };
        let trained = train_cpu(&ds, &model, &config(150)).unwrap();
        let mut policy = Policy::new(trained.model, model, ds.stats.clone(), Device::flex());
        let (_, slow) = policy.act(&scan, 1.5);
        let (_, fast) = policy.act(&scan, 6.5);
        commanded.push((slow, fast));
    }
    let (slow, fast) = commanded[0];
    assert!(
        (slow - 6.8).abs() < 0.3 && (fast - 2.8).abs() < 0.3,
        "with the speed: {slow} and {fast} m/s, labels 6.8 and 2.8"
    );
    let (slow, fast) = commanded[1];
    assert_eq!(
        slow, fast,
        "without it, the same scan gives the same command"
    );
    let old = Dataset {
        train: Split {
            speeds: Vec::new(),
            ..ds.train.clone()
        },
        ..ds.clone()
    };
    let speed_model = ModelConfig {
        architecture: Architecture::TinyLidarNet,
        num_beams: beams,
        outputs: 2,
        members: 1,
        speed_input: true,
    };
    let e = train_cpu(&old, &speed_model, &config(1))
        .err()
        .expect("a dataset without speeds")
        .to_string();
    assert!(e.contains("model.speed_input"), "{e}");
}

/// `training.speed_noise_std` perturbs the speed inputs from the training seed: the same seed
/// gives the same network, the noise changes it, and a negative value is refused by name.
#[test]
fn speed_noise_is_seeded_and_checked() {
    let mut ds = tiny_dataset(16, 1080);
    ds.train.speeds = (0..16).map(|i| 2.0 + 0.3 * i as f32).collect();
    ds.val.speeds = vec![2.0];
    let model = ModelConfig {
        architecture: Architecture::TinyLidarNet,
        num_beams: 1080,
        outputs: 2,
        members: 1,
        speed_input: true,
    };
    let scans = &ds.train.scans[..4 * 1080];
    let speeds = [2.0, 3.0, 4.0, 5.0];
    let run = |speed_noise_std: f32| {
        let cfg = TrainConfig {
            speed_noise_std,
            ..config(2)
        };
        train_cpu(&ds, &model, &cfg).map(|t| {
            Policy::new(t.model, model.clone(), ds.stats.clone(), Device::flex())
                .act_batch(scans, &speeds)
        })
    };
    let noisy = run(1.0).unwrap();
    assert_eq!(noisy, run(1.0).unwrap(), "the same seed, the same network");
    assert_ne!(noisy, run(0.0).unwrap(), "the noise changes the training");
    let e = run(-1.0).unwrap_err().to_string();
    assert!(e.contains("training.speed_noise_std"), "{e}");
}
