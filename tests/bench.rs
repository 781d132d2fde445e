//! `raceloop bench train` labels its one derived figure, the time of an epoch of a dataset, as
//! an estimate (samples / samples-per-second, training only), in its text and its JSON.

use std::path::Path;
use std::process::Command;

mod common;

fn raceloop(root: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_raceloop"))
        .args(args)
        .env("MLFLOW_TRACKING_URI", root.join("mlruns"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{args:?}: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[test]
fn the_epoch_time_of_a_dataset_is_labelled_an_estimate() {
    let root = std::env::temp_dir().join(format!("raceloop-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let at = |p: &str| root.join(p).to_string_lossy().into_owned();
    let (run, datasets) = (at("runs/c"), at("datasets"));
    raceloop(
        &root,
        &[
            "collect",
            "--track",
            "IMS",
            "--episodes",
            "2",
            "--laps",
            "0.05",
            "--out",
            &run,
        ],
    );
    raceloop(&root, &["extract", &run, "--datasets", &datasets]);
    let dataset = format!(
        "{datasets}/{}",
        common::dataset_version(Path::new(&datasets))
    );
    let args = [
        "bench",
        "train",
        "--dataset",
        &dataset,
        "--samples",
        "256",
        "--epochs",
        "2",
    ];
    let text = raceloop(&root, &args);
    assert!(
        text.contains("estimated as samples / samples-per-second")
            && text.contains("validation and data preparation are not included"),
        "{text}"
    );
    let mut json_args = args.to_vec();
    json_args.push("--json");
    let v: serde_json::Value = serde_json::from_str(&raceloop(&root, &json_args)).unwrap();
    let n = v["dataset_train_samples"].as_f64().unwrap();
    let estimate = v["estimated_train_epoch_s"].as_f64().unwrap();
    let sps = v["samples_per_s"].as_f64().unwrap();
    assert!((estimate - n / sps).abs() < 1e-9 * estimate.max(1.0), "{v}");
    assert!(
        v.get("epoch_s").is_none(),
        "no field may present the estimate as measured: {v}"
    );
    std::fs::remove_dir_all(&root).unwrap();
}

/// `raceloop bench infer` times every path that the CPU has, says which `Policy` takes, and
/// `RACELOOP_KERNEL` forces one (an unknown or unsupported value is named and ignored).
#[test]
fn bench_infer_lists_every_path_and_the_override_forces_one() {
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/default");
    let run = |kernel: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_raceloop"));
        command.args([
            "bench",
            "infer",
            "--calls",
            "50",
            "--json",
            "--model",
            model.to_str().unwrap(),
        ]);
        match kernel {
            Some(k) => command.env("RACELOOP_KERNEL", k),
            None => command.env_remove("RACELOOP_KERNEL"),
        };
        let out = command.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (v, String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (v, _) = run(None);
    let paths: Vec<&str> = v["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kernel"].as_str().unwrap())
        .collect();
    eprintln!("paths on this CPU: {paths:?}, Policy takes {}", v["chosen"]);
    assert!(paths.ends_with(&["burn", "portable"]), "{paths:?}");
    assert_eq!(v["chosen"], paths[0]);
    for p in v["paths"].as_array().unwrap() {
        assert!(p["max_abs_diff_to_burn"].as_f64().unwrap() < 1e-4, "{p}");
        assert!(p["median_us"].as_f64().unwrap() > 0.0);
    }
    let flop = v["flop_per_scan"].as_u64().unwrap();
    assert!((3_000_000..3_300_000).contains(&flop), "{flop}");
    for forced in ["portable", "burn"] {
        assert_eq!(run(Some(forced)).0["chosen"], forced);
    }
    let (v, stderr) = run(Some("sse9"));
    assert_eq!(v["chosen"], paths[0]);
    assert!(stderr.contains("RACELOOP_KERNEL"), "{stderr}");
}

/// `--pytorch PYTHON` runs benches/pytorch_reference.py in the same run. A Python without
/// torch is an error that names the interpreter and the missing module. With
/// `RACELOOP_TORCH_PYTHON` (an interpreter with torch) the same-run figures and their ratio are
/// printed and in the JSON; without it that half is skipped, saying so.
#[test]
fn the_pytorch_reference_runs_in_the_same_bench() {
    let root = std::env::temp_dir().join(format!("raceloop-bench-torch-{}", std::process::id()));
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/default");
    let model = model.to_str().unwrap();
    if let Ok(python) = std::env::var("RACELOOP_PYTHON") {
        let out = Command::new(env!("CARGO_BIN_EXE_raceloop"))
            .args(["bench", "infer", "--no-tracking", "--calls", "10"])
            .args(["--model", model, "--pytorch", &python])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(
            err.contains(&python) && err.contains("No module named 'torch'"),
            "{err}"
        );
    }
    let Ok(torch) = std::env::var("RACELOOP_TORCH_PYTHON") else {
        println!("skipped: the same-run PyTorch figures (set RACELOOP_TORCH_PYTHON)");
        return;
    };
    let text = raceloop(
        &root,
        &[
            "bench",
            "infer",
            "--no-tracking",
            "--calls",
            "200",
            "--model",
            model,
            "--pytorch",
            &torch,
        ],
    );
    assert!(
        text.contains("this run:") && text.contains("x faster"),
        "{text}"
    );
    let json: serde_json::Value = serde_json::from_str(&raceloop(
        &root,
        &[
            "bench",
            "train",
            "--no-tracking",
            "--samples",
            "1280",
            "--epochs",
            "2",
            "--json",
            "--pytorch",
            &torch,
        ],
    ))
    .unwrap();
    let torch_run = &json["pytorch_same_run"];
    assert!(torch_run["train"]["samples_per_s"].as_f64().unwrap() > 0.0);
    // Tiny Lidar Net with bench train's one output: 220,686 − 11 parameters.
    assert_eq!(torch_run["train"]["parameters"], 220675, "the same network");
}
