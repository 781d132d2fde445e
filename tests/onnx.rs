//! `model.onnx` as a deployment artefact: `raceloop export` writes it, and the Python packages
//! `onnx` (checker) and `onnxruntime` reproduce raceloop's `Policy` (one network or an ensemble,
//! reading the scan alone or the ego speed too) on 200 real scans within 1e-5 at batch 1 and
//! batch 7.

mod common;

use std::path::Path;
use std::process::Command;

use glam::DVec2;
use raceloop_learn::{Architecture, ModelConfig, Policy, Stats, policy};
use raceloop_sim::{Lidar, SimConfig, Track};
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// Largest difference allowed between onnxruntime's and `Policy`'s commands (rad, m/s).
const TOLERANCE: f64 = 1e-5;

/// `n` scans (ranges, m) from random poses on four tracks: `[n, beams]` row-major.
fn real_scans(n: usize) -> Vec<f32> {
    let config = SimConfig::default();
    let lidar = Lidar::new(config.lidar.clone());
    let tracks: Vec<Track> = ["Austin", "Monza", "Spa", "Montreal"]
        .iter()
        .map(|t| Track::load(t).unwrap())
        .collect();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
    let mut ranges = vec![0f32; config.lidar.num_beams];
    let mut out = Vec::new();
    for i in 0..n {
        let track = &tracks[i % tracks.len()];
        let c = &track.centerline;
        let s = rng.random_range(0.0..c.length());
        let (wr, wl) = track.widths_at(s);
        let heading = c.heading_at(s);
        let p = c.point_at(s)
            + DVec2::from_angle(heading).perp() * rng.random_range(-0.7 * wr..0.7 * wl);
        let yaw = heading + rng.random_range(-0.3..0.3);
        lidar.scan_exact(
            &track.grid,
            &[],
            lidar.sensor_position(p, yaw),
            yaw,
            &mut ranges,
        );
        out.extend_from_slice(&ranges);
    }
    out
}

/// `n` ego speeds, m/s, spread over a racing car's range (0–9 m/s).
fn ego_speeds(n: usize) -> Vec<f32> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(4);
    (0..n).map(|_| rng.random_range(0.0..9.0)).collect()
}

/// Copies the shipped model's `stats.json` (its normalisation) into the model directory `dir`.
fn copy_shipped_stats(dir: &Path) {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/default");
    std::fs::copy(
        shipped.join(policy::STATS_FILE),
        dir.join(policy::STATS_FILE),
    )
    .unwrap();
}

fn raceloop(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_raceloop"))
        .args(args)
        .output()
        .unwrap()
}

/// Exports `dir` with the binary, then checks it with Python's onnx and onnxruntime against
/// `Policy` on 200 real scans. Returns the checker's JSON, or `None` without the packages.
fn check_against_policy(dir: &Path) -> Option<serde_json::Value> {
    let out = raceloop(&["export", dir.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("model.onnx"));
    let onnx = dir.join("model.onnx");
    assert!(onnx.is_file());
    let python = std::env::var("RACELOOP_PYTHON").ok();
    let Some(python) = python.filter(|p| {
        Command::new(p)
            .args(["-c", "import onnx, onnxruntime"])
            .status()
            .is_ok_and(|s| s.success())
    }) else {
        eprintln!("skipped: no onnx/onnxruntime in RACELOOP_PYTHON; run tests/run.sh");
        return None;
    };
    let scans = real_scans(200);
    let speeds = ego_speeds(200);
    let mut policy = Policy::load(dir).unwrap();
    let actions: Vec<[f32; 2]> = policy
        .act_batch(&scans, &speeds)
        .into_iter()
        .map(|(steer, speed)| [steer, speed])
        .collect();
    let scans_file = dir.join("scans.f32");
    let bytes: Vec<u8> = scans.iter().flat_map(|r| r.to_le_bytes()).collect();
    std::fs::write(&scans_file, bytes).unwrap();
    let speeds_file = dir.join("speeds.f32");
    let bytes: Vec<u8> = speeds.iter().flat_map(|r| r.to_le_bytes()).collect();
    std::fs::write(&speeds_file, bytes).unwrap();
    let actions_file = dir.join("actions.json");
    std::fs::write(&actions_file, serde_json::to_vec(&actions).unwrap()).unwrap();
    let v = common::python_json(
        &python,
        "check_onnx.py",
        &[
            onnx.as_os_str(),
            scans_file.as_os_str(),
            actions_file.as_os_str(),
            speeds_file.as_os_str(),
        ],
    );
    eprintln!("{dir:?}: {v}");
    assert_eq!(v["input"], "scan");
    if policy.config().speed_input {
        assert_eq!(v["inputs"], serde_json::json!(["scan", "speed"]));
        assert_eq!(v["speed_shape"], serde_json::json!(["batch", 1]));
    } else {
        assert_eq!(v["inputs"], serde_json::json!(["scan"]));
    }
    assert_eq!(v["output"], "action");
    assert_eq!(v["input_shape"], serde_json::json!(["batch", 1080]));
    assert_eq!(v["output_shape"], serde_json::json!(["batch", 2]));
    assert_eq!(v["scans"], 200);
    for key in ["max_abs_diff_batch1", "max_abs_diff_batch7"] {
        let diff = v[key].as_f64().unwrap();
        assert!(diff <= TOLERANCE, "{key}: {diff} > {TOLERANCE}");
    }
    Some(v)
}

#[test]
fn the_shipped_model_exports_and_onnxruntime_gives_policys_commands() {
    let dir = tempdir("shipped");
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/default");
    for f in [policy::WEIGHTS_FILE, policy::MODEL_FILE, policy::STATS_FILE] {
        std::fs::copy(shipped.join(f), dir.join(f)).unwrap();
    }
    check_against_policy(&dir);
}

#[test]
fn a_steering_only_model_exports_its_fixed_speed_in_the_graph() {
    let dir = tempdir("steering");
    let config = ModelConfig {
        architecture: Architecture::TinyLidarNet,
        num_beams: 1080,
        outputs: 1,
        members: 1,
        speed_input: false,
    };
    let model = config.init(&burn::prelude::Device::flex());
    policy::save_weights(&model, &dir).unwrap();
    raceloop_files::write_json(&dir.join(policy::MODEL_FILE), &config).unwrap();
    let stats = Stats {
        num_beams: 1080,
        range_clip: 10.0, // below some ranges, so that the clip is exercised
        scan_mean: 2.4,
        scan_std: 3.3,
        steering_scale: 0.52,
        speed_scale: 20.0,
        steering_mean_std: [0.0, 0.07],
        speed_mean_std: [3.5, 0.0],
        train_samples: 1,
        val_samples: 1,
    };
    raceloop_files::write_json(&dir.join(policy::STATS_FILE), &stats).unwrap();
    assert!(real_scans(200).iter().any(|&r| r > 10.0));
    check_against_policy(&dir);
}

/// An ensemble (`model.members=3`): one graph that takes the median of the three networks'
/// outputs, as `Policy` does.
#[test]
fn an_ensemble_exports_as_one_graph_that_combines_its_members() {
    let dir = tempdir("ensemble");
    let config = ModelConfig {
        architecture: Architecture::TinyLidarNet,
        num_beams: 1080,
        outputs: 2,
        members: 3,
        speed_input: false,
    };
    let members: Vec<_> = (0..3)
        .map(|_| config.init(&burn::prelude::Device::flex()))
        .collect();
    policy::save_members(&members, &dir).unwrap();
    raceloop_files::write_json(&dir.join(policy::MODEL_FILE), &config).unwrap();
    copy_shipped_stats(&dir);
    let scans = real_scans(8);
    let alone: Vec<Vec<(f32, f32)>> = members
        .iter()
        .map(|m| {
            let one = ModelConfig {
                members: 1,
                ..config.clone()
            };
            let stats = Policy::load(&dir).unwrap().stats().clone();
            Policy::new(m.clone(), one, stats, burn::prelude::Device::flex())
                .act_batch(&scans, &ego_speeds(8))
        })
        .collect();
    assert!(
        alone[0] != alone[1] && alone[1] != alone[2],
        "three networks"
    );
    check_against_policy(&dir);
}

/// A model that reads the ego speed (`model.speed_input`): the graph's second input `speed`,
/// for Tiny Lidar Net and the MLP, with the shipped normalisation.
#[test]
fn a_speed_reading_model_exports_a_second_input() {
    for architecture in [Architecture::TinyLidarNet, Architecture::Mlp] {
        let dir = tempdir(&format!("speed-{architecture:?}"));
        let config = ModelConfig {
            architecture,
            num_beams: 1080,
            outputs: 2,
            members: 1,
            speed_input: true,
        };
        let model = config.init(&burn::prelude::Device::flex());
        policy::save_weights(&model, &dir).unwrap();
        raceloop_files::write_json(&dir.join(policy::MODEL_FILE), &config).unwrap();
        copy_shipped_stats(&dir);
        let scans = real_scans(2);
        let mut policy = Policy::load(&dir).unwrap();
        assert_ne!(
            policy.act_batch(&scans, &[2.0, 2.0]),
            policy.act_batch(&scans, &[8.0, 8.0]),
            "the speed changes the command"
        );
        check_against_policy(&dir);
    }
}

#[test]
fn exporting_a_directory_that_is_no_model_names_the_missing_file() {
    let dir = tempdir("empty");
    let out = raceloop(&["export", dir.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("model.json"), "{err}");
    assert!(!dir.join("model.onnx").exists());
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("raceloop-onnx-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
