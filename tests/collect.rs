//! The headless collection end to end, through the real binary: determinism across worker
//! counts, resuming after a kill, and the MCAP read back by an independent Python reader.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn raceloop() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_raceloop"));
    // One store shared by the concurrent tests (and processes) of this file.
    cmd.env(
        "MLFLOW_TRACKING_URI",
        std::env::temp_dir().join(format!("raceloop-test-{}-mlruns", std::process::id())),
    );
    cmd
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("raceloop-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The collection command used by these tests: two tracks, seeds from 100, into `out`.
fn collect_command(out: &Path, extra: &[&str]) -> Command {
    let mut cmd = raceloop();
    cmd.args([
        "--headless",
        "--track",
        "Austin,Montreal",
        "--seed",
        "100",
        "--out",
    ])
    .arg(out)
    .args(extra);
    cmd
}

fn collect(out: &Path, extra: &[&str]) {
    assert!(collect_command(out, extra).status().unwrap().success());
}

fn read(path: PathBuf) -> Vec<u8> {
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn same_seeds_give_identical_files_with_one_or_two_workers() {
    let (a, b) = (scratch("w1"), scratch("w2"));
    collect(&a, &["--episodes", "6", "--workers", "1", "--laps", "0.03"]);
    collect(&b, &["--episodes", "6", "--workers", "2", "--laps", "0.03"]);
    for seed in 100..106 {
        for file in ["result.json", "simulation.mcap", "config.ron"] {
            let (x, y) = (
                read(a.join(format!("episodes/{seed}/{file}"))),
                read(b.join(format!("episodes/{seed}/{file}"))),
            );
            assert!(
                x == y,
                "seed {seed}: {file} differs between 1 and 2 workers"
            );
        }
    }
    let summary = String::from_utf8(read(a.join("summary.json"))).unwrap();
    assert!(summary.contains("\"episodes\": 6"), "{summary}");
    assert!(read(a.join("aggregated_results.csv")).starts_with(b"seed,track,success,outcome"));
    std::fs::remove_dir_all(&a).unwrap();
    std::fs::remove_dir_all(&b).unwrap();
}

#[test]
fn a_killed_run_resumes_to_the_same_results() {
    let (full, killed) = (scratch("full"), scratch("killed"));
    let args = ["--episodes", "10", "--workers", "1", "--laps", "0.08"];
    collect(&full, &args);
    let mut child = collect_command(&killed, &args)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let finished = |dir: &Path| {
        (100..110)
            .filter(|s| dir.join(format!("episodes/{s}/result.json")).exists())
            .count()
    };
    let t0 = std::time::Instant::now();
    while finished(&killed) < 3 && t0.elapsed().as_secs() < 120 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let before = finished(&killed);
    assert!(
        (3..10).contains(&before),
        "killed mid-run: {before} episodes finished"
    );
    // Nothing partial lies under a final name: every MCAP there is complete (ends with the magic).
    for seed in 100..110 {
        let mcap = killed.join(format!("episodes/{seed}/simulation.mcap"));
        if mcap.exists() {
            assert!(
                read(mcap).ends_with(b"\x89MCAP0\r\n"),
                "seed {seed}: truncated MCAP under its final name"
            );
        }
    }
    let kept = read(killed.join("episodes/100/simulation.mcap"));
    collect(&killed, &args);
    assert_eq!(
        read(killed.join("episodes/100/simulation.mcap")),
        kept,
        "finished episodes are not redone"
    );
    for seed in 100..110 {
        for file in ["result.json", "simulation.mcap"] {
            assert!(
                read(full.join(format!("episodes/{seed}/{file}")))
                    == read(killed.join(format!("episodes/{seed}/{file}"))),
                "seed {seed} {file}"
            );
        }
    }
    std::fs::remove_dir_all(&full).unwrap();
    std::fs::remove_dir_all(&killed).unwrap();
}

#[test]
fn mcap_is_read_back_by_the_python_mcap_packages() {
    let python = std::env::var("RACELOOP_PYTHON").unwrap_or_else(|_| "python3".into());
    let probe = Command::new(&python)
        .args(["-c", "import mcap, mcap_protobuf"])
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        eprintln!(
            "skipped: {python} lacks the mcap packages; run tests/run.sh, which installs them"
        );
        assert!(
            std::env::var("RACELOOP_PYTHON").is_err(),
            "RACELOOP_PYTHON is set but cannot import mcap"
        );
        return;
    }
    let dir = scratch("py");
    collect(&dir, &["--episodes", "1", "--laps", "0.03"]);
    let episode = dir.join("episodes/100");
    let v = common::python_json(
        &python,
        "read_mcap.py",
        &[episode.join("simulation.mcap").as_os_str()],
    );
    let result: serde_json::Value =
        serde_json::from_slice(&read(episode.join("result.json"))).unwrap();
    let steps = result["steps"].as_u64().unwrap();

    let ch = &v["channels"];
    assert_eq!(
        ch["/scan"],
        serde_json::json!(["foxglove.LaserScan", "protobuf", "protobuf"])
    );
    assert_eq!(ch["/tf"][0], "foxglove.FrameTransform");
    assert_eq!(ch["/track"][0], "foxglove.SceneUpdate");
    assert_eq!(ch["/events"][0], "foxglove.Log");
    assert_eq!(
        ch["/ego/state"],
        serde_json::json!(["raceloop.EgoState", "jsonschema", "json"])
    );
    assert_eq!(ch["/control"][2], "json");

    let counts = &v["counts"];
    // configs/collection.ron: scans every 8 steps, states, transforms and commands every 4.
    assert_eq!(
        counts["/ego/state"].as_u64(),
        Some(steps / 4 + 1),
        "state at t=0 and every 4th step"
    );
    assert_eq!(counts["/control"].as_u64(), Some((steps - 1) / 4 + 1));
    assert_eq!(counts["/tf"].as_u64(), Some(2 * (steps / 4 + 1)));
    assert_eq!(
        counts["/scan"].as_u64(),
        Some(steps / 8 + 1),
        "12.5 Hz scans (period 8) from t=0"
    );
    assert_eq!(counts["/track"].as_u64(), Some(1));
    assert_eq!(counts["/events"].as_u64(), Some(2));

    assert_eq!(v["scan_len"].as_u64(), Some(1080));
    assert_eq!(v["scan_frame"], "laser");
    assert!((v["scan_angles"][1].as_f64().unwrap() - 2.35).abs() < 1e-9);
    assert!(v["log_times_sorted"].as_bool().unwrap());
    assert_eq!(
        v["tf_frames"],
        serde_json::json!(["base_link->laser", "world->base_link"])
    );
    let entities: Vec<String> = serde_json::from_value(v["track_entities"].clone()).unwrap();
    assert!(
        entities.contains(&"centerline".to_string())
            && entities.contains(&"raceline".to_string())
            && entities.iter().any(|e| e.starts_with("wall/"))
    );
    let config = String::from_utf8(read(episode.join("config.ron"))).unwrap();
    let x0 = v["first_ego"]["x"].as_f64().unwrap();
    assert!(
        config.contains(&format!("x: {x0}")),
        "start x {x0} in config.ron"
    );
    // The last state logged is at the last step that is a multiple of 4: at most 3 steps of
    // 0.01 s at the profile's 8 m/s cap before the end.
    let gap = result["progress_m"].as_f64().unwrap() - v["last_ego"]["progress"].as_f64().unwrap();
    assert!(
        (0.0..=3.0 * 0.01 * 8.0).contains(&gap),
        "progress gap {gap} m"
    );
    if steps.is_multiple_of(4) {
        assert!(
            gap.abs() < 1e-9,
            "progress gap {gap} m at a logged last step"
        );
    }
    assert!(
        v["events"][1]
            .as_str()
            .unwrap()
            .starts_with("outcome: goal_reached")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The last value of metric `key` of the run named `name` in the file store `store`.
fn metric(store: &Path, name: &str, key: &str) -> f64 {
    for experiment in std::fs::read_dir(store).unwrap().flatten() {
        for run in std::fs::read_dir(experiment.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let tag = run.path().join("tags/mlflow.runName");
            if std::fs::read_to_string(&tag).is_ok_and(|n| n.trim() == name) {
                let text = std::fs::read_to_string(run.path().join("metrics").join(key)).unwrap();
                let last = text.lines().last().unwrap();
                return last.split_whitespace().nth(1).unwrap().parse().unwrap();
            }
        }
    }
    panic!("no run {name} in {}", store.display());
}

#[test]
fn a_resumed_run_counts_only_what_it_ran_and_other_settings_start_afresh() {
    let out = scratch("rerun");
    let store = scratch("rerun-mlruns");
    let run = |name: &str, extra: &[&str]| {
        let mut cmd = collect_command(&out, &["--episodes", "2", "collection.laps=0.02"]);
        let o = cmd
            .args(extra)
            .args(["--run-name", name])
            .env("MLFLOW_TRACKING_URI", &store)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    run("first", &[]);
    assert_eq!(metric(&store, "first", "episodes_run"), 2.0);
    assert!(metric(&store, "first", "episodes_per_s") > 0.0);
    // Everything finished already: no throughput is claimed for reused episodes.
    run("again", &[]);
    assert_eq!(metric(&store, "again", "episodes_run"), 0.0);
    assert_eq!(metric(&store, "again", "episodes_reused"), 2.0);
    assert_eq!(metric(&store, "again", "episodes_per_s"), 0.0);
    assert_eq!(metric(&store, "again", "steps_per_s"), 0.0);
    // Other settings into the same directory: the old episodes are not mixed in.
    let goal = |seed: &str| -> f64 {
        let r: serde_json::Value =
            serde_json::from_slice(&read(out.join("episodes").join(seed).join("result.json")))
                .unwrap();
        r["goal_m"].as_f64().unwrap()
    };
    let short = goal("100");
    let text = run("longer", &["collection.laps=0.04"]);
    assert!(text.contains("starting afresh"), "{text}");
    assert!((goal("100") - 2.0 * short).abs() < 1e-6);
    assert_eq!(metric(&store, "longer", "episodes_run"), 2.0);
    std::fs::remove_dir_all(&out).unwrap();
    std::fs::remove_dir_all(&store).unwrap();
}

#[test]
fn extraction_checks_every_scan_against_the_runs_lidar() {
    let out = scratch("beams");
    let datasets = scratch("beams-datasets");
    collect(&out, &["--episodes", "1", "collection.laps=0.02"]);
    // The run says its LiDAR had 720 beams; its MCAP holds 1080-range scans.
    let info_path = out.join("run.json");
    let mut info: serde_json::Value = serde_json::from_slice(&read(info_path.clone())).unwrap();
    info["sim"]["lidar"]["num_beams"] = 720.into();
    std::fs::write(&info_path, serde_json::to_string(&info).unwrap()).unwrap();
    let o = raceloop()
        .arg("extract")
        .arg(&out)
        .args(["--rs-train", "1"])
        .arg("--datasets")
        .arg(&datasets)
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{e}");
    assert!(
        e.contains("simulation.mcap")
            && e.contains("has 1080 ranges, but the run's LiDAR has 720 beams"),
        "{e}"
    );
    assert!(!datasets.exists() || std::fs::read_dir(&datasets).unwrap().next().is_none());
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn obstacle_episodes_are_identical_for_any_worker_count_and_log_their_scenario() {
    let (a, b) = (scratch("obs-w1"), scratch("obs-w2"));
    let args = |workers: &'static str| {
        [
            "--episodes",
            "4",
            "--workers",
            workers,
            "--laps",
            "0.15",
            "experiment=obstacles",
        ]
    };
    collect(&a, &args("1"));
    collect(&b, &args("2"));
    for seed in 100..104 {
        for file in ["result.json", "simulation.mcap", "config.ron"] {
            assert!(
                read(a.join(format!("episodes/{seed}/{file}")))
                    == read(b.join(format!("episodes/{seed}/{file}"))),
                "seed {seed}: {file} differs between 1 and 2 workers"
            );
        }
    }
    // config.ron lists every obstacle's pose and size; result.json counts them.
    let episode = a.join("episodes/100");
    let config = String::from_utf8(read(episode.join("config.ron"))).unwrap();
    let setup: ron::Value = ron::from_str(&config).unwrap();
    let ron::Value::Map(map) = setup else {
        panic!("config.ron is not a struct")
    };
    let obstacles = map
        .iter()
        .find(|(k, _)| **k == ron::Value::String("obstacles".into()))
        .map(|(_, v)| v.clone())
        .expect("config.ron lists the obstacles");
    let ron::Value::Seq(obstacles) = obstacles else {
        panic!("obstacles is not a list")
    };
    assert!(
        obstacles.len() >= 5,
        "{} obstacles on Austin",
        obstacles.len()
    );
    let result: serde_json::Value =
        serde_json::from_slice(&read(episode.join("result.json"))).unwrap();
    assert_eq!(
        result["obstacles"]["count"].as_u64(),
        Some(obstacles.len() as u64)
    );
    let csv = String::from_utf8(read(a.join("aggregated_results.csv"))).unwrap();
    assert!(
        csv.lines().next().unwrap().contains("obstacles_passed"),
        "{csv}"
    );

    let python = std::env::var("RACELOOP_PYTHON").unwrap_or_else(|_| "python3".into());
    if Command::new(&python)
        .args(["-c", "import mcap, mcap_protobuf"])
        .status()
        .is_ok_and(|s| s.success())
    {
        let v = common::python_json(
            &python,
            "read_mcap.py",
            &[episode.join("simulation.mcap").as_os_str()],
        );
        assert_eq!(v["channels"]["/obstacles"][0], "foxglove.SceneUpdate");
        assert_eq!(v["channels"]["/expert/plan"][0], "foxglove.SceneUpdate");
        assert_eq!(v["counts"]["/obstacles"].as_u64(), Some(1));
        let logged = v["obstacles"].as_array().unwrap();
        assert_eq!(logged.len(), obstacles.len());
        assert!(
            logged
                .iter()
                .all(|o| o["id"].as_str().unwrap().starts_with("obstacle/"))
        );
        let plan: Vec<String> = serde_json::from_value(v["plan_entities"].clone()).unwrap();
        assert!(plan.contains(&"plan/path".to_string()), "{plan:?}");
        assert!(v["plan_points"].as_u64().unwrap() > 1000);
        let texts: Vec<String> = serde_json::from_value(v["plan_texts"].clone()).unwrap();
        assert_eq!(texts.len(), obstacles.len(), "{texts:?}");
        assert!(
            texts
                .iter()
                .all(|t| t.contains("pass left") || t.contains("pass right"))
        );
    } else {
        assert!(
            std::env::var("RACELOOP_PYTHON").is_err(),
            "RACELOOP_PYTHON is set but cannot import mcap"
        );
    }
    // An obstacle-free log has neither topic.
    let plain = scratch("obs-none");
    collect(&plain, &["--episodes", "1", "--laps", "0.03"]);
    let bytes = read(plain.join("episodes/100/simulation.mcap"));
    assert!(!bytes.windows(10).any(|w| w == b"/obstacles"));
    for dir in [a, b, plain] {
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
