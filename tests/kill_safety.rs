//! Kill safety of every stage, through the real binary: collect, extract, train and evaluate are
//! each killed (SIGKILL) at 5 random times, 20 kills in all, drawn from a fixed seed over each
//! stage's uninterrupted wall time. After every kill the same command runs again to completion,
//! and its outputs must equal those of an uninterrupted run byte for byte (wall times and run
//! ids aside). A killed training must never leave a model directory that loads unless it is the
//! finished one. Run with `-- --nocapture` to see the kill times.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};

mod common;

const KILLS_PER_STAGE: usize = 5;
const KILL_SEED: u64 = 15_11;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("raceloop-kill-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// One stage's command line, writing under `root` and reading the reference outputs of the
/// stages before it from `reference`.
fn command(stage: &str, root: &Path, reference: &Path, dataset: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_raceloop"));
    cmd.arg(stage);
    let path = |p: PathBuf| p.into_os_string();
    match stage {
        "collect" => cmd
            .args([
                "--track",
                "Austin,Montreal",
                "--episodes",
                "6",
                "--seed",
                "100",
            ])
            .args(["--laps", "0.3", "--workers", "2", "--out"])
            .arg(path(root.join("runs/c"))),
        "extract" => cmd
            .arg(path(reference.join("runs/c")))
            .arg("--datasets")
            .arg(path(root.join("datasets"))),
        "train" => cmd
            .arg("--dataset")
            .arg(path(reference.join("datasets").join(dataset)))
            .args(["--epochs", "3", "--name", "m", "--models"])
            .arg(path(root.join("models"))),
        "evaluate" => cmd
            .arg("--model")
            .arg(path(reference.join("models/m")))
            .args(["--track", "Austin", "--episodes", "2", "--laps", "0.4"])
            .args(["--workers", "2", "--out"])
            .arg(path(root.join("eval"))),
        other => panic!("unknown stage {other}"),
    };
    cmd.arg("--tracking-uri").arg(path(root.join("mlruns")));
    cmd
}

/// Runs `cmd` to completion; panics with its output on failure. Returns its wall time.
fn run(mut cmd: Command) -> Duration {
    let t0 = Instant::now();
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{:?} failed:\n{}\n{}",
        cmd,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    t0.elapsed()
}

/// The outputs of `stage` under `root` that must not depend on being killed: relative path →
/// bytes, with wall times and run ids taken out.
fn outputs(stage: &str, root: &Path) -> BTreeMap<String, Vec<u8>> {
    let dir = match stage {
        "collect" => root.join("runs/c"),
        "extract" => root.join("datasets"),
        "train" => root.join("models/m"),
        _ => root.join("eval"),
    };
    let mut files = BTreeMap::new();
    // Every file, temporary ones that a kill left behind included: they must not outlive the
    // rerun. A stage that wrote nothing has no directory.
    let listed = if dir.exists() {
        raceloop_files::files_under(&dir, &dir).unwrap()
    } else {
        Vec::new()
    };
    for (path, rel) in listed {
        let name = rel.rsplit('/').next().unwrap().to_string();
        let bytes = std::fs::read(&path).unwrap();
        let kept = match name.as_str() {
            // A collection's record of the invocation: wall time, throughput, run id.
            "run.json" | "summary.json" if stage == "collect" && !rel.contains('/') => continue,
            "lineage.json" | "evaluation_summary.json" | "metrics.csv" => without_times(&bytes),
            _ => bytes,
        };
        files.insert(rel, kept);
    }
    files
}

/// JSON without `train_seconds`, `tracking_run` and `wall_time_s`; `metrics.csv` without its
/// `seconds` and `samples_per_s` columns.
fn without_times(bytes: &[u8]) -> Vec<u8> {
    if let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(bytes) {
        for key in ["train_seconds", "tracking_run", "wall_time_s"] {
            v.as_object_mut().unwrap().remove(key);
        }
        return v.to_string().into_bytes();
    }
    String::from_utf8_lossy(bytes)
        .lines()
        .map(|l| l.split(',').take(4).collect::<Vec<_>>().join(","))
        .collect::<Vec<_>>()
        .join("\n")
        .into_bytes()
}

fn differences(a: &BTreeMap<String, Vec<u8>>, b: &BTreeMap<String, Vec<u8>>) -> Vec<String> {
    let mut diff: Vec<String> = a
        .iter()
        .filter(|(k, v)| b.get(*k) != Some(v))
        .map(|(k, _)| k.clone())
        .collect();
    diff.extend(b.keys().filter(|k| !a.contains_key(*k)).cloned());
    diff
}

#[test]
fn every_stage_survives_kills_and_reruns_to_identical_outputs() {
    let reference = scratch("reference");
    let mut wall = BTreeMap::new();
    let stages = ["collect", "extract", "train", "evaluate"];
    let mut dataset = String::new();
    for stage in stages {
        wall.insert(stage, run(command(stage, &reference, &reference, &dataset)));
        if stage == "extract" {
            dataset = common::dataset_version(&reference.join("datasets"));
        }
    }
    let expected: BTreeMap<&str, _> = stages
        .iter()
        .map(|s| (*s, outputs(s, &reference)))
        .collect();
    let weights = std::fs::read(reference.join("models/m/weights.safetensors")).unwrap();

    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(KILL_SEED);
    let mut killed_running = 0;
    for stage in stages {
        for k in 0..KILLS_PER_STAGE {
            let root = scratch(&format!("{stage}-{k}"));
            let at = wall[stage].mul_f64(rng.random_range(0.02..0.98));
            let mut child = command(stage, &root, &reference, &dataset)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let t0 = Instant::now();
            while t0.elapsed() < at && child.try_wait().unwrap().is_none() {
                std::thread::sleep(Duration::from_millis(2));
            }
            let was_running = child.try_wait().unwrap().is_none();
            child.kill().unwrap();
            child.wait().unwrap();
            killed_running += was_running as usize;
            println!(
                "{stage} kill {k}: at {:.3} s of {:.3} s{}",
                at.as_secs_f64(),
                wall[stage].as_secs_f64(),
                if was_running {
                    ""
                } else {
                    " (it had already finished)"
                }
            );
            if stage == "train" {
                let model = root.join("models/m");
                let loadable = ["weights.safetensors", "model.json", "stats.json"]
                    .iter()
                    .all(|f| model.join(f).is_file());
                if loadable {
                    assert!(
                        std::fs::read(model.join("weights.safetensors")).unwrap() == weights
                            && model.join("lineage.json").is_file(),
                        "kill {k} left a model directory that loads but is not the finished one"
                    );
                }
            }
            run(command(stage, &root, &reference, &dataset));
            let got = outputs(stage, &root);
            let diff = differences(&expected[stage], &got);
            assert!(
                diff.is_empty(),
                "{stage} kill {k} at {at:?}: after the rerun these differ from an uninterrupted run: {diff:?}"
            );
            std::fs::remove_dir_all(&root).unwrap();
        }
    }
    println!(
        "{} kills, {killed_running} of them while the stage was running",
        KILLS_PER_STAGE * stages.len()
    );
    assert!(
        killed_running >= KILLS_PER_STAGE * stages.len() * 3 / 4,
        "most kills must land while the stage runs"
    );
    std::fs::remove_dir_all(&reference).unwrap();
}
