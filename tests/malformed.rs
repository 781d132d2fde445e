//! A corpus of malformed inputs through the real binary: tracks, RON configs, overrides, model
//! directories, datasets, MCAPs and run directories. Each case must fail with exit status 1,
//! an error that names the file, line or field at fault, and no panic.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A scratch directory for this test process.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("raceloop-bad-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn raceloop(cwd: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_raceloop"))
        .current_dir(cwd)
        .args(args)
        .arg("--no-tracking")
        .env_remove("MLFLOW_TRACKING_URI")
        .output()
        .unwrap()
}

/// Runs `args` in `cwd`; it must fail cleanly with every one of `expected` in its error.
fn fails(case: &str, cwd: &Path, args: &[&str], expected: &[&str]) {
    let out = raceloop(cwd, args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{case}: exit status {:?}\n{err}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(!err.contains("panicked"), "{case}: panicked\n{err}");
    for x in expected {
        assert!(err.contains(x), "{case}: `{x}` not in\n{err}");
    }
}

const HEADER: &str = "# x_m, y_m, w_tr_right_m, w_tr_left_m\n";

#[test]
fn malformed_tracks() {
    let dir = scratch("tracks");
    let cases: [(&str, String, &[&str]); 13] = [
        (
            "empty",
            String::new(),
            &["empty.csv", "at least 4 points, found 0"],
        ),
        (
            "header_only",
            HEADER.into(),
            &["header_only.csv", "found 0"],
        ),
        (
            "three_columns",
            format!("{HEADER}0,0,1\n"),
            &["three_columns.csv:2", "expected 4 columns"],
        ),
        (
            "not_a_number",
            format!("{HEADER}0,0,1,1\nx,0,1,1\n"),
            &["not_a_number.csv:3", "column 1 is not a number: `x`"],
        ),
        (
            "nan",
            format!("{HEADER}0,0,1,1\n1,NaN,1,1\n"),
            &["nan.csv:3", "column 2 is not finite"],
        ),
        (
            "infinite",
            format!("{HEADER}0,0,inf,1\n"),
            &["infinite.csv:2", "column 3 is not finite"],
        ),
        (
            "negative_width",
            format!("{HEADER}0,0,1,-1\n"),
            &["negative_width.csv:2", "widths must be positive"],
        ),
        (
            "three_points",
            format!("{HEADER}0,0,1,1\n1,0,1,1\n1,1,1,1\n"),
            &["three_points.csv", "at least 4 points, found 3"],
        ),
        (
            "one_point_repeated",
            format!("{HEADER}{}", "5,5,1,1\n".repeat(5)),
            &["one_point_repeated.csv", "at least 3 distinct points"],
        ),
        (
            "turns_back",
            format!("{HEADER}0,0,1,1\n10,0,1,1\n0,0,1,1\n10,0,1,1\n"),
            &["turns_back.csv:", "turns back on itself"],
        ),
        (
            "narrower_than_the_car",
            format!("{HEADER}0,0,1,1\n\n10,0,0.1,0.1\n10,10,1,1\n0,10,1,1\n"),
            &["narrower_than_the_car.csv:4", "below the car width"],
        ),
        (
            "hundred_km",
            format!("{HEADER}0,0,1,1\n1e5,0,1,1\n1e5,1e5,1,1\n0,1e5,1,1\n"),
            &["hundred_km.csv", "more than the wall grid covers"],
        ),
        (
            "semicolons",
            format!("{HEADER}0;0;1;1\n"),
            &["semicolons.csv:2", "expected 4 columns"],
        ),
    ];
    for (name, text, expected) in cases {
        let path = dir.join(format!("{name}.csv"));
        std::fs::write(&path, text).unwrap();
        fails(
            name,
            &dir,
            &["drive", "--laps", "0.01", "--track", path.to_str().unwrap()],
            expected,
        );
    }
    std::fs::write(dir.join("binary.csv"), b"\xff\xfe\x00\x01garbage").unwrap();
    fails(
        "binary",
        &dir,
        &["drive", "--track", "binary.csv"],
        &["binary.csv", "valid UTF-8"],
    );
    fails(
        "missing",
        &dir,
        &["drive", "--track", "tracks/none.csv"],
        &["tracks/none.csv", "no such file"],
    );
    fails(
        "unknown_name",
        &dir,
        &["drive", "--track", "Nowhere"],
        &["unknown track `Nowhere`", "Austin"],
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn malformed_configs_and_overrides() {
    let dir = scratch("configs");
    let lidar = include_str!("../configs/lidar.ron");
    let cases: [(&str, &str, String, &[&str]); 7] = [
        (
            "unknown_field",
            "lidar.ron",
            lidar.replace("fov:", "extra: 1,\n    fov:"),
            &["lidar.ron:", "`extra`", "expected one of"],
        ),
        (
            "wrong_type",
            "lidar.ron",
            lidar.replace("1080", "\"many\""),
            &["lidar.ron:3:", "field `num_beams`"],
        ),
        (
            "syntax",
            "lidar.ron",
            lidar.replace("fov: 4.7,", "fov: 4.7"),
            &["lidar.ron:", "Expected comma"],
        ),
        (
            "empty",
            "lidar.ron",
            String::new(),
            &["lidar.ron:1:1", "LidarConfig"],
        ),
        (
            "trailing",
            "sim.ron",
            "(dt: 0.01) garbage".into(),
            &["sim.ron:1:", "trailing characters"],
        ),
        (
            "out_of_range",
            "sim.ron",
            "(dt: -1.0)".into(),
            &["sim.dt", "must be in (0, 0.1] s", "in the config from"],
        ),
        (
            "not_a_number",
            "vehicle.ron",
            include_str!("../configs/vehicle.ron").replace("3.74", "NaN"),
            &["vehicle"],
        ),
    ];
    for (name, file, text, expected) in cases {
        let configs = dir.join(name);
        std::fs::create_dir_all(&configs).unwrap();
        std::fs::write(configs.join(file), text).unwrap();
        fails(
            name,
            &dir,
            &[
                "drive",
                "--laps",
                "0.01",
                "--configs",
                configs.to_str().unwrap(),
            ],
            expected,
        );
    }
    fails(
        "no_such_directory",
        &dir,
        &["drive", "--configs", "no/such"],
        &["config directory no/such not found"],
    );
    let overrides: [(&str, &[&str], &[&str]); 11] = [
        (
            "unknown_key",
            &["collection.episodez=3"],
            &["unknown key `collection.episodez`", "valid keys"],
        ),
        (
            "unknown_area",
            &["collections.episodes=3"],
            &["collections"],
        ),
        (
            "wrong_type",
            &["collection.episodes=many"],
            &["`collection.episodes`", "collection.episodes=many"],
        ),
        (
            "negative",
            &["collection.episodes=-3"],
            &["collection.episodes=-3"],
        ),
        (
            "sweep_without_m",
            &["collection.seed=1,2"],
            &["-m/--multirun"],
        ),
        (
            "remove_required",
            &["~collection.seed"],
            &["missing field `seed`"],
        ),
        (
            "unknown_experiment",
            &["experiment=nope"],
            &["no experiment `nope`", "experiments: "],
        ),
        (
            "unbalanced_quote",
            &["collection.tracks='Austin"],
            &["collection.tracks"],
        ),
        ("zero_beams", &["lidar.num_beams=0"], &["beams"]),
        (
            "state_log_not_dividing_scans",
            &["collection.log_state_every=3"],
            &["collection.log_state_every must divide", "(8), found 3"],
        ),
        (
            "negative_resolution",
            &["lidar.resolution=-0.001"],
            &["lidar.resolution", "≥ 0 m"],
        ),
    ];
    for (name, args, expected) in overrides {
        // A flag would win over the override under test, so the episode count is one too.
        let mut all = vec!["collect", "collection.episodes=1"];
        all.extend_from_slice(args);
        fails(name, &dir, &all, expected);
    }
    for (name, sweep, expected) in [
        (
            "range_not_numbers",
            "collection.seed=range(x,5)",
            "expected integers",
        ),
        ("range_empty", "collection.seed=range(5,1)", "is empty"),
        (
            "range_huge",
            "collection.seed=range(0,10000000000)",
            "more than 10000",
        ),
        (
            "choice_empty",
            "collection.seed=choice()",
            "every choice needs a value",
        ),
    ] {
        fails(
            name,
            &dir,
            &["collect", "-m", "collection.episodes=1", sweep],
            &[expected],
        );
    }
    assert!(
        !dir.join("runs").exists(),
        "nothing may run on a bad config"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A damaged model: case name, file, its new bytes (`None`: removed), expected error parts.
type ModelCase = (
    &'static str,
    &'static str,
    Option<Vec<u8>>,
    &'static [&'static str],
);

/// A copy of the shipped model whose `file` is replaced by `text`.
fn model_with(root: &Path, name: &str, file: &str, text: Option<&[u8]>) -> PathBuf {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/default");
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["model.json", "stats.json", "weights.safetensors"] {
        std::fs::copy(shipped.join(f), dir.join(f)).unwrap();
    }
    match text {
        Some(t) => std::fs::write(dir.join(file), t).unwrap(),
        None => std::fs::remove_file(dir.join(file)).unwrap(),
    }
    dir
}

#[test]
fn malformed_models_datasets_mcaps_and_runs() {
    let dir = scratch("artifacts");
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/default");
    let model_json = std::fs::read_to_string(shipped.join("model.json")).unwrap();
    let stats_json = std::fs::read_to_string(shipped.join("stats.json")).unwrap();
    let weights = std::fs::read(shipped.join("weights.safetensors")).unwrap();
    let models: [ModelCase; 7] = [
        (
            "model_json_syntax",
            "model.json",
            Some(b"{\"architecture\": ".to_vec()),
            &["model.json", "EOF"],
        ),
        (
            "model_json_architecture",
            "model.json",
            Some(
                model_json
                    .replace("TinyLidarNet", "Transformer")
                    .into_bytes(),
            ),
            &["model.json", "Transformer"],
        ),
        (
            "stats_beams",
            "stats.json",
            Some(
                stats_json
                    .replacen("\"num_beams\": 1080", "\"num_beams\": 720", 1)
                    .into_bytes(),
            ),
            &["stats.json", "720", "1080"],
        ),
        ("stats_missing", "stats.json", None, &["stats.json"]),
        (
            "weights_missing",
            "weights.safetensors",
            None,
            &["weights.safetensors", "missing"],
        ),
        (
            "weights_truncated",
            "weights.safetensors",
            Some(weights[..weights.len() / 3].to_vec()),
            &["weights.safetensors"],
        ),
        (
            "weights_garbage",
            "weights.safetensors",
            Some(b"not safetensors at all".to_vec()),
            &["weights.safetensors"],
        ),
    ];
    for (name, file, text, expected) in models {
        let model = model_with(&dir, name, file, text.as_deref());
        fails(
            name,
            &dir,
            &[
                "evaluate",
                "--episodes",
                "1",
                "--track",
                "IMS",
                "--model",
                model.to_str().unwrap(),
            ],
            expected,
        );
    }
    fails(
        "model_missing",
        &dir,
        &["evaluate", "--model", "models/none"],
        &["models/none"],
    );

    // A real collection run and dataset to damage.
    let run = dir.join("run");
    let o = raceloop(
        &dir,
        &[
            "collect",
            "--episodes",
            "2",
            "--track",
            "IMS",
            "--out",
            run.to_str().unwrap(),
            "collection.laps=0.02",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = raceloop(
        &dir,
        &[
            "extract",
            run.to_str().unwrap(),
            "--rs-train",
            "1",
            "--datasets",
            "datasets",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let dataset = std::fs::read_dir(dir.join("datasets"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.is_dir())
        .unwrap();
    let damaged_dataset = |name: &str, file: &str, text: &[u8]| -> PathBuf {
        let d = dir.join(name);
        std::fs::create_dir_all(&d).unwrap();
        for f in ["manifest.json", "stats.json", "data.safetensors"] {
            std::fs::copy(dataset.join(f), d.join(f)).unwrap();
        }
        std::fs::write(d.join(file), text).unwrap();
        d
    };
    let datasets: [(&str, PathBuf, &[&str]); 4] = [
        (
            "dataset_missing",
            dir.join("datasets/none"),
            &["datasets/none", "not a dataset version directory"],
        ),
        (
            "manifest_garbage",
            damaged_dataset("manifest_garbage", "manifest.json", b"[1, 2"),
            &["manifest.json"],
        ),
        (
            "data_garbage",
            damaged_dataset("data_garbage", "data.safetensors", b"\x00\x01\x02"),
            &["data.safetensors"],
        ),
        (
            "stats_wrong_type",
            damaged_dataset(
                "stats_wrong_type",
                "stats.json",
                b"{\"num_beams\": \"many\"}",
            ),
            &["stats.json"],
        ),
    ];
    for (name, path, expected) in datasets {
        fails(
            name,
            &dir,
            &[
                "train",
                "--epochs",
                "1",
                "--dataset",
                path.to_str().unwrap(),
            ],
            expected,
        );
    }

    // MCAPs inside a run: truncated, not an MCAP, damaged inside a chunk.
    let mcap = run.join("episodes/0/simulation.mcap");
    let clean = std::fs::read(&mcap).unwrap();
    let damaged: [(&str, Vec<u8>, &[&str]); 3] = [
        (
            "mcap_truncated",
            clean[..clean.len() / 2].to_vec(),
            &["simulation.mcap"],
        ),
        ("mcap_not_mcap", b"hello".to_vec(), &["simulation.mcap"]),
        (
            "mcap_chunk_garbage",
            {
                let mut b = clean.clone();
                let at = b.len() / 3;
                b[at..at + 7].copy_from_slice(b"garbage");
                b
            },
            &["simulation.mcap"],
        ),
    ];
    for (name, bytes, expected) in damaged {
        std::fs::write(&mcap, bytes).unwrap();
        fails(
            name,
            &dir,
            &[
                "extract",
                run.to_str().unwrap(),
                "--rs-train",
                "2",
                "--datasets",
                name,
            ],
            expected,
        );
        assert!(!dir.join(name).exists(), "{name}: a dataset was written");
    }
    std::fs::write(&mcap, &clean).unwrap();

    // Run directories.
    std::fs::write(run.join("episodes/1/result.json"), "{\"success\": tru").unwrap();
    fails(
        "result_json_garbage",
        &dir,
        &["summarize", run.to_str().unwrap()],
        &["episodes/1/result.json"],
    );
    fails(
        "not_a_run",
        &dir,
        &["extract", dir.join("datasets").to_str().unwrap()],
        &["is not a collection run"],
    );
    fails(
        "summarize_not_a_run",
        &dir,
        &["summarize", dir.join("datasets").to_str().unwrap()],
        &["is", "a run directory"],
    );
    fails(
        "lineage_of_not_a_model",
        &dir,
        &["lineage", dir.join("datasets").to_str().unwrap()],
        &["lineage.json"],
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
