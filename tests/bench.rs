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
