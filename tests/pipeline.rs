//! The whole loop on a small configuration, through the real binary: collect → extract → train →
//! evaluate; every artifact exists and parses, seeds are disjoint, the expert succeeds, and a
//! second run reuses every stage.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn json(path: PathBuf) -> serde_json::Value {
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs `raceloop pipeline ARGS` with every output under `root`; returns its stdout.
fn pipeline(root: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_raceloop"))
        .arg("pipeline")
        .args(args)
        .arg("--out")
        .arg(root.join("runs"))
        .arg("--datasets")
        .arg(root.join("datasets"))
        .arg("--models")
        .arg(root.join("models"))
        .arg("--tracking-uri")
        .arg(root.join("mlruns"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

const E2E: [&str; 12] = [
    "--version",
    "e2e",
    "--rs-train",
    "4",
    "--rs-val",
    "2",
    "--epochs",
    "1",
    "--eval-episodes",
    "2",
    "--track",
    "Montreal,IMS",
];

#[test]
fn small_pipeline_end_to_end() {
    let root = std::env::temp_dir().join(format!("raceloop-e2e-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let first = pipeline(&root, &E2E);
    let dir = root.join("runs/e2e");

    // Collection runs.
    let mut collection_seeds = Vec::new();
    for run in ["collect-train", "collect-val"] {
        let info = json(dir.join(run).join("run.json"));
        assert_eq!(info["complete"], true);
        let summary = json(dir.join(run).join("summary.json"));
        assert!(summary["episodes"].as_u64().unwrap() > 0);
        let [a, b] = [
            info["seeds"][0].as_u64().unwrap(),
            info["seeds"][1].as_u64().unwrap(),
        ];
        collection_seeds.extend(a..=b);
    }
    assert_eq!(
        collection_seeds,
        (0..6).collect::<Vec<_>>(),
        "train then val seeds, disjoint"
    );
    for (run, episodes, seed) in [("collect-train", 4, 0), ("collect-val", 2, 4)] {
        let config = std::fs::read_to_string(dir.join(run).join("config.ron")).unwrap();
        assert!(
            config.contains(&format!("episodes: {episodes},"))
                && config.contains(&format!("seed: {seed},")),
            "{run}: {config}"
        );
    }

    // Dataset.
    let pj = json(dir.join("pipeline.json"));
    let dataset = PathBuf::from(pj["dataset"].as_str().unwrap());
    let manifest = json(dataset.join("manifest.json"));
    let stats = json(dataset.join("stats.json"));
    assert_eq!(stats["num_beams"], 1080);
    assert!(dataset.join("data.safetensors").is_file());
    let train: Vec<u64> = manifest["train"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seed"].as_u64().unwrap())
        .collect();
    let val: Vec<u64> = manifest["val"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seed"].as_u64().unwrap())
        .collect();
    assert!(
        train.iter().all(|s| !val.contains(s)),
        "no episode in both splits"
    );

    // Model.
    let model = PathBuf::from(pj["model"].as_str().unwrap());
    for f in [
        "weights.safetensors",
        "model.json",
        "training.json",
        "stats.json",
        "metrics.csv",
    ] {
        assert!(model.join(f).is_file(), "{f}");
    }
    let lineage = json(model.join("lineage.json"));
    assert_eq!(lineage["dataset_version"], manifest["version"]);
    assert_eq!(
        std::fs::read_to_string(model.join("metrics.csv"))
            .unwrap()
            .lines()
            .count(),
        2
    );

    // Evaluation.
    let eval = dir.join("evaluation");
    let summary = json(eval.join("evaluation_summary.json"));
    assert_eq!(
        summary["expert_overall"]["success_rate"], 1.0,
        "the expert completes every evaluation episode"
    );
    assert_eq!(summary["model_per_track"].as_object().unwrap().len(), 2);
    assert!(
        std::fs::read_to_string(eval.join("per_track.csv"))
            .unwrap()
            .starts_with("track,driver,episodes,success_rate")
    );
    let eval_seeds: Vec<u64> = std::fs::read_dir(eval.join("model/episodes"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().parse().unwrap())
        .collect();
    assert_eq!(eval_seeds.len(), 4);
    assert!(
        eval_seeds.iter().all(|s| !collection_seeds.contains(s)),
        "evaluation seeds {eval_seeds:?} are disjoint from collection seeds"
    );
    for s in &eval_seeds {
        assert!(
            eval.join(format!("model/episodes/{s}/simulation.mcap"))
                .is_file()
        );
        assert!(
            !eval.join(format!("expert/episodes/{s}")).exists(),
            "expert episodes are not recorded by default"
        );
    }
    assert!(first.contains("overall"), "{first}");

    let model_summary = std::fs::read(model.join("evaluation_summary.json")).unwrap();

    // Everything is cached the second time, and the model's own evaluation record is kept.
    let second = pipeline(&root, &E2E);
    assert_eq!(
        std::fs::read(model.join("evaluation_summary.json")).unwrap(),
        model_summary
    );
    assert!(
        second.contains("is up to date") && second.contains("evaluate: cached"),
        "{second}"
    );

    // Tracking: each pipeline is a run whose five stages are its child runs (read by mlflow).
    if let Ok(python) = std::env::var("RACELOOP_PYTHON") {
        let v = common::python_json(
            &python,
            "read_mlflow.py",
            &[root.join("mlruns").as_os_str()],
        );
        let runs = v["runs"].as_array().unwrap();
        let parents: Vec<&serde_json::Value> = runs
            .iter()
            .filter(|r| r["tags"]["mlflow.parentRunId"].is_null())
            .collect();
        assert_eq!(parents.len(), 2, "two pipeline runs");
        for p in parents {
            let mut stages: Vec<&str> = runs
                .iter()
                .filter(|r| r["tags"]["mlflow.parentRunId"] == p["id"])
                .map(|r| r["tags"]["mlflow.source.name"].as_str().unwrap())
                .collect();
            stages.sort();
            assert_eq!(
                stages,
                [
                    "raceloop collect",
                    "raceloop collect",
                    "raceloop evaluate",
                    "raceloop extract",
                    "raceloop train"
                ]
            );
            assert_eq!(p["status"], "FINISHED");
        }
    }

    // An ensemble of two on the same dataset: member 0 trains exactly as the pipeline model's first
    // network did (the same seed, data and epochs), member 1 from the next seed; one weights file
    // and one ONNX graph hold both.
    let out = Command::new(env!("CARGO_BIN_EXE_raceloop"))
        .args([
            "train",
            "--epochs",
            "1",
            "--name",
            "ensemble",
            "--no-tracking",
            "--dataset",
        ])
        .arg(&dataset)
        .arg("--models")
        .arg(root.join("models"))
        .arg("model.members=2")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("ensemble of 2"), "{stdout}");
    let ensemble = root.join("models/ensemble");
    assert_eq!(json(ensemble.join("model.json"))["members"], 2);
    assert_eq!(
        json(ensemble.join("lineage.json"))["member_val_losses"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let rows = |dir: &Path| -> Vec<Vec<String>> {
        std::fs::read_to_string(dir.join("metrics.csv"))
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| l.split(',').map(String::from).collect())
            .collect()
    };
    let (single, members) = (rows(&model), rows(&ensemble));
    assert_eq!(members.len(), 2);
    assert_eq!(
        members[0][..4],
        single[0][..4],
        "member 0 trains as the pipeline's first network"
    );
    assert_ne!(members[1][1], members[0][1], "member 1 has its own seed");
    assert_eq!((members[0][6].as_str(), members[1][6].as_str()), ("0", "1"));
    assert!(ensemble.join("model.onnx").is_file());
    std::fs::remove_dir_all(&root).unwrap();
}

/// DAgger (`dagger.iterations=1`): a first model is trained on the expert's episodes, drives a
/// round of episodes in which the expert labels every state it visits, and the final model is
/// trained on both. The round's runs name the model that drove; the labels are the expert's, not
/// the applied commands; a model episode that ended in a collision is kept only up to the
/// failure margin.
#[test]
fn dagger_round_adds_model_driven_expert_labelled_episodes() {
    let root = std::env::temp_dir().join(format!("raceloop-dagger-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let stdout = pipeline(
        &root,
        &[
            "--version",
            "dg",
            "--rs-train",
            "2",
            "--rs-val",
            "1",
            "--epochs",
            "1",
            "--eval-episodes",
            "1",
            "--track",
            "IMS",
            "evaluation.expert_reference=false",
            "dagger.iterations=1",
            "dagger.episodes=3",
            "dagger.val_episodes=1",
            "dagger.failure_margin_s=0.5",
        ],
    );
    let dir = root.join("runs/dg");
    let learner = dir.join("dagger/round0");
    assert!(learner.join("weights.safetensors").is_file());
    assert!(stdout.contains("driven by"), "{stdout}");

    // The round's runs: seeds after the expert's, driven by round 0's model.
    let mut results = Vec::new();
    for (run, seeds) in [
        ("collect-dagger0-train", [3, 5]),
        ("collect-dagger0-val", [6, 6]),
    ] {
        let info = json(dir.join(run).join("run.json"));
        assert_eq!(info["seeds"], serde_json::json!(seeds), "{run}");
        let policy = info["policy"].as_str().unwrap();
        assert!(
            policy.starts_with(&learner.display().to_string()),
            "{policy}"
        );
        for seed in seeds[0]..=seeds[1] {
            let episode = dir.join(run).join("episodes").join(seed.to_string());
            let config = std::fs::read_to_string(episode.join("config.ron")).unwrap();
            assert!(config.contains("driver: \"dagger\""), "{config}");
            let bytes = std::fs::read(episode.join("simulation.mcap")).unwrap();
            let log = raceloop_record::EpisodeLog::from_bytes(&bytes, &episode).unwrap();
            assert!(!log.labels.is_empty(), "the expert labels every step");
            let controls: std::collections::HashMap<u64, _> =
                log.controls.iter().copied().collect();
            let paired: Vec<bool> = log
                .labels
                .iter()
                .filter_map(|(t, label)| controls.get(t).map(|c| c != label))
                .collect();
            let differ = paired.iter().filter(|d| **d).count();
            assert!(
                paired.len() > 10 && differ > paired.len() / 2,
                "the model drives, the expert labels: {differ} of {} commands differ",
                paired.len()
            );
            results.push((json(episode.join("result.json")), log.scans.len(), seed));
        }
    }

    // The final dataset holds the expert's and the round's episodes; model-driven collisions
    // only up to 0.5 s before they ended.
    let pj = json(dir.join("pipeline.json"));
    let dataset = PathBuf::from(pj["dataset"].as_str().unwrap());
    let manifest = json(dataset.join("manifest.json"));
    assert_eq!(manifest["source_runs"].as_array().unwrap().len(), 4);
    let episodes: Vec<&serde_json::Value> = manifest["train"]
        .as_array()
        .unwrap()
        .iter()
        .chain(manifest["val"].as_array().unwrap())
        .collect();
    let mut cut = 0;
    for (result, scans, seed) in &results {
        let kept = episodes.iter().find(|e| e["seed"] == *seed);
        if result["outcome"] != "goal_reached" && result["outcome"] != "collision" {
            assert!(kept.is_none(), "a {} is dropped", result["outcome"]);
            continue;
        }
        let kept = kept.unwrap();
        if result["success"] == true {
            assert!(kept["until_s"].is_null());
        } else {
            cut += 1;
            let until = kept["until_s"].as_f64().unwrap();
            let duration = result["duration_s"].as_f64().unwrap();
            assert!(
                (duration - 0.5 - until).abs() < 1e-9,
                "{until} vs {duration}"
            );
            assert!(kept["samples"].as_u64().unwrap() < *scans as u64 - 3);
        }
    }
    assert!(
        cut > 0,
        "a one-epoch model on three episodes fails somewhere: {results:?}"
    );
    let model = PathBuf::from(pj["model"].as_str().unwrap());
    let lineage = json(model.join("lineage.json"));
    assert_eq!(lineage["dataset_version"], manifest["version"]);
    std::fs::remove_dir_all(&root).unwrap();
}
