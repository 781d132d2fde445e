//! Tracking, configuration and data versions through the real binary, read back by the real
//! `mlflow` and `dvc` Python packages (installed by tests/run.sh): every command is an MLflow
//! run with params, metric histories, tags and artifacts; sweeps are child runs; overrides fail
//! with clear messages; `dvc status` accepts a dataset version.

mod common;

use std::ffi::OsStr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("raceloop-track-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs raceloop in `cwd` with the file store `cwd/mlruns`.
fn raceloop(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_raceloop"))
        .current_dir(cwd)
        .env_remove("MLFLOW_TRACKING_URI")
        .env_remove("MLFLOW_EXPERIMENT_NAME")
        .args(args)
        .output()
        .unwrap()
}

fn ok(cwd: &Path, args: &[&str]) -> String {
    let out = raceloop(cwd, args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "raceloop {args:?}\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn failure(cwd: &Path, args: &[&str]) -> String {
    let out = raceloop(cwd, args);
    assert!(!out.status.success(), "raceloop {args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The Python interpreter with mlflow and dvc, or `None` (test skipped) outside tests/run.sh.
fn python() -> Option<String> {
    let python = std::env::var("RACELOOP_PYTHON").unwrap_or_else(|_| "python3".into());
    let probe = Command::new(&python)
        .args(["-c", "import mlflow, dvc"])
        .status();
    if probe.is_ok_and(|s| s.success()) {
        return Some(python);
    }
    assert!(
        std::env::var("RACELOOP_PYTHON").is_err(),
        "RACELOOP_PYTHON is set but cannot import mlflow and dvc"
    );
    eprintln!("skipped: {python} lacks mlflow/dvc; run tests/run.sh, which installs them");
    None
}

/// Every run of experiment `raceloop` in the store at `uri`, as read by mlflow.
fn mlflow_runs(python: &str, uri: &str) -> Vec<Value> {
    let v = common::python_json(python, "read_mlflow.py", &[OsStr::new(uri)]);
    v["runs"].as_array().unwrap().clone()
}

fn run_named<'a>(runs: &'a [Value], prefix: &str) -> &'a Value {
    runs.iter()
        .find(|r| r["name"].as_str().unwrap().starts_with(prefix))
        .unwrap_or_else(|| panic!("no run named {prefix}*"))
}

fn has_artifact(run: &Value, path: &str) -> bool {
    run["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a == path)
}

fn dvc(python: &str, cwd: &Path, args: &[&str]) -> String {
    let out = Command::new(python)
        .current_dir(cwd)
        .args(["-m", "dvc"])
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "dvc {args:?}: {text}");
    text
}

#[test]
fn every_command_is_an_mlflow_run_and_datasets_pass_dvc_status() {
    let Some(python) = python() else { return };
    let dir = scratch("loop");
    ok(
        &dir,
        &[
            "collect",
            "--episodes",
            "6",
            "--track",
            "Austin,Monza",
            "--laps",
            "0.1",
            "--out",
            "runs/c",
            "--note",
            "smoke test of tracking",
        ],
    );
    let extract = ok(&dir, &["extract", "runs/c", "dataset.sample_every=3"]);
    let version = extract
        .lines()
        .find_map(|l| l.strip_prefix("dataset: datasets/"))
        .expect("dataset line")
        .to_string();
    ok(
        &dir,
        &[
            "train",
            "--dataset",
            &format!("datasets/{version}"),
            "--name",
            "m",
            "training.epochs=2",
        ],
    );
    ok(
        &dir,
        &[
            "evaluate",
            "--model",
            "models/m",
            "--track",
            "Austin",
            "--episodes",
            "1",
            "--laps",
            "0.1",
            "--out",
            "runs/e",
        ],
    );
    let runs = mlflow_runs(&python, dir.join("mlruns").to_str().unwrap());
    assert_eq!(runs.len(), 4, "{runs:#?}");
    for r in &runs {
        assert_eq!(r["status"], "FINISHED");
        assert_eq!(r["params"]["training.lr"], "0.001");
        assert!(r["params"].as_object().unwrap().len() > 50);
        assert_eq!(
            r["tags"]["mlflow.source.git.commit"]
                .as_str()
                .unwrap()
                .len(),
            40
        );
        for tag in [
            "raceloop.config_hash",
            "raceloop.rustc",
            "raceloop.crates",
            "raceloop.cpu",
        ] {
            assert!(r["tags"][tag].is_string(), "{tag}");
        }
        assert!(has_artifact(r, "config.ron") && has_artifact(r, "overrides.ron"));
    }
    let collect = run_named(&runs, "collect");
    assert_eq!(
        collect["tags"]["mlflow.note.content"],
        "smoke test of tracking"
    );
    assert_eq!(collect["metrics"]["success_rate"][0][1], 1.0);
    assert!(collect["metrics"]["Monza/success_rate"].is_array());
    let extract = run_named(&runs, "extract");
    assert_eq!(extract["params"]["dataset.sample_every"], "3");
    assert_eq!(
        extract["tags"]["raceloop.dataset_version"],
        version.as_str()
    );
    let train = run_named(&runs, "train");
    assert_eq!(train["tags"]["raceloop.dataset_version"], version.as_str());
    let val: Vec<i64> = train["metrics"]["val_loss"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m[0].as_i64().unwrap())
        .collect();
    assert_eq!(val, [1, 2], "one val_loss per epoch");
    assert!(has_artifact(train, "model/weights.safetensors"));
    let evaluation = run_named(&runs, "evaluate");
    assert!(has_artifact(evaluation, "evaluation_summary.json"));
    assert!(has_artifact(evaluation, "per_track.csv"));
    assert!(evaluation["metrics"]["Austin/success_rate"].is_array());
    let lineage = ok(&dir, &["lineage", "models/m"]);
    assert!(
        lineage.contains(&version) && lineage.contains("seeds 0..="),
        "{lineage}"
    );
    assert!(lineage.contains(train["id"].as_str().unwrap()), "{lineage}");
    let list = ok(&dir, &["runs"]);
    assert!(list.contains("4 of 4 runs"), "{list}");

    // DVC: the pointer matches the data (only the cache is missing), then commit and checkout.
    let pointer = format!("datasets/{version}.dvc");
    dvc(&python, &dir, &["init", "--no-scm", "-q"]);
    let status = dvc(&python, &dir, &["status", &pointer]);
    assert!(
        status.contains("not in cache") && !status.contains("modified"),
        "{status}"
    );
    dvc(&python, &dir, &["commit", "-q", &pointer]);
    let status = dvc(&python, &dir, &["status", &pointer]);
    assert!(status.contains("up to date"), "{status}");
    std::fs::remove_dir_all(dir.join("datasets").join(&version)).unwrap();
    dvc(&python, &dir, &["checkout", "-q", &pointer]);
    assert!(dvc(&python, &dir, &["status", &pointer]).contains("up to date"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_sweep_is_a_parent_run_with_one_child_per_combination() {
    let dir = scratch("sweep");
    let stdout = ok(
        &dir,
        &[
            "collect",
            "-m",
            "--episodes",
            "1",
            "--track",
            "Austin",
            "--laps",
            "0.03",
            "--out",
            "runs/s",
            "collection.seed=range(10,12)",
            "collection.steering_noise=0,0.05",
        ],
    );
    assert_eq!(stdout.matches("[collect job").count(), 4, "{stdout}");
    for (i, (seed, noise)) in [(10, "0"), (10, "0.05"), (11, "0"), (11, "0.05")]
        .iter()
        .enumerate()
    {
        let run = dir.join(format!("runs/s-{i}"));
        assert!(run.join("episodes").join(seed.to_string()).is_dir());
        let overrides = std::fs::read_to_string(run.join("overrides.ron")).unwrap();
        assert!(
            overrides.contains(&format!("collection.seed={seed}"))
                && overrides.contains(&format!("collection.steering_noise={noise}")),
            "{overrides}"
        );
        let config = std::fs::read_to_string(run.join("config.ron")).unwrap();
        assert!(config.contains(&format!("seed: {seed},")), "{config}");
    }
    let Some(python) = python() else { return };
    let runs = mlflow_runs(&python, dir.join("mlruns").to_str().unwrap());
    assert_eq!(runs.len(), 5);
    let parent = runs
        .iter()
        .find(|r| r["tags"]["mlflow.parentRunId"].is_null())
        .unwrap();
    let children = runs
        .iter()
        .filter(|r| r["tags"]["mlflow.parentRunId"] == parent["id"])
        .count();
    assert_eq!(children, 4);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_overrides_fail_before_anything_runs() {
    let dir = scratch("bad");
    let e = failure(&dir, &["collect", "collection.episodez=3"]);
    assert!(
        e.contains("unknown key `collection.episodez`")
            && e.contains("valid keys at `collection`: "),
        "{e}"
    );
    let e = failure(&dir, &["collect", "collection.seed=1,2"]);
    assert!(e.contains("-m/--multirun"), "{e}");
    let e = failure(&dir, &["collect", "collection.episodes=-3"]);
    assert!(
        e.contains("`collection.episodes`") && e.contains("collection.episodes=-3"),
        "{e}"
    );
    let e = failure(&dir, &["collect", "experiment=nope"]);
    assert!(
        e.contains(
            "experiments: cross_track, data_collection_parallel, obstacles, quick, steering_only"
        ),
        "{e}"
    );
    let e = failure(&dir, &["collect", "--configs", "no/such/dir"]);
    assert!(e.contains("config directory no/such/dir not found"), "{e}");
    // A tracking URI that can never work is refused when parsed, not after the work.
    let e = failure(
        &dir,
        &[
            "collect",
            "--episodes",
            "1",
            "--tracking-uri",
            "https://mlflow.example",
        ],
    );
    assert!(
        e.contains("--tracking-uri") && e.contains("https is not supported"),
        "{e}"
    );
    assert!(!dir.join("mlruns").exists() && !dir.join("runs").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Needs `mlflow server` (pip mlflow) and a free port; run with
/// `RACELOOP_PYTHON=.venv/bin/python cargo test --test tracking -- --ignored`.
/// `raceloop serve --tracking-uri URI` lists the server's experiments and the `runs` runs of
/// the `raceloop` experiment through `/experiments` and `/experiments/{id}`.
fn served_experiments(dir: &Path, uri: &str, runs: usize) {
    use std::io::BufRead;
    let mut serve = Command::new(env!("CARGO_BIN_EXE_raceloop"))
        .args(["serve", "--port", "0", "--tracking-uri", uri])
        .current_dir(dir)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let line = std::io::BufReader::new(serve.stdout.take().unwrap())
        .lines()
        .map(Result::unwrap)
        .find(|l| l.contains("listening on "))
        .expect("the service printed its address");
    let base = line.split("listening on ").nth(1).unwrap();
    let base = base.split_whitespace().next().unwrap().to_string();
    let get = |path: &str| -> Value {
        ureq::get(&format!("{base}{path}"))
            .call()
            .unwrap()
            .body_mut()
            .read_json()
            .unwrap()
    };
    let experiments = get("/experiments");
    let raceloop = experiments["experiments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "raceloop")
        .expect("the raceloop experiment")
        .clone();
    let listed = get(&format!(
        "/experiments/{}",
        raceloop["experiment_id"].as_str().unwrap()
    ));
    let _ = serve.kill();
    let _ = serve.wait();
    let listed = listed["runs"].as_array().unwrap();
    assert_eq!(listed.len(), runs, "{listed:?}");
    assert!(
        listed.iter().all(|r| r["status"] == "FINISHED"),
        "{listed:?}"
    );
    assert!(
        listed
            .iter()
            .any(|r| r["metrics"]["episodes_per_s"].is_number())
    );
}

#[test]
#[ignore = "starts an MLflow server (about 10 s); tests/run.sh runs it"]
fn runs_reach_an_mlflow_server_through_rest() {
    let Some(python) = python() else { return };
    let dir = scratch("rest");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Command::new(&python)
        .current_dir(&dir)
        .args(["-m", "mlflow", "server", "--host", "127.0.0.1", "--port"])
        .arg(port.to_string())
        .args([
            "--backend-store-uri",
            "sqlite:///mlflow.db",
            "--workers",
            "1",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Its own process group, so that its uvicorn and job-queue (huey) workers are stopped
        // with it: killing the `mlflow server` process alone left them running.
        .process_group(0)
        .spawn()
        .unwrap();
    let uri = format!("http://127.0.0.1:{port}");
    let t0 = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(t0.elapsed().as_secs() < 120, "mlflow server did not start");
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    std::thread::sleep(std::time::Duration::from_secs(2));
    let result = std::panic::catch_unwind(|| {
        ok(
            &dir,
            &[
                "collect",
                "-m",
                "--episodes",
                "2",
                "--track",
                "Austin",
                "--laps",
                "0.03",
                "--out",
                "runs/r",
                "--tracking-uri",
                &uri,
                "collection.seed=0,5",
            ],
        );
        let runs = mlflow_runs(&python, &uri);
        assert_eq!(runs.len(), 3);
        let child = run_named(&runs, "collect-sweep-20");
        let child = runs
            .iter()
            .find(|r| !r["tags"]["mlflow.parentRunId"].is_null())
            .unwrap_or(child);
        assert_eq!(child["status"], "FINISHED");
        assert!(child["params"].as_object().unwrap().len() > 50);
        assert!(child["metrics"]["episodes_per_s"].is_array());
        assert!(has_artifact(child, "config.ron") && has_artifact(child, "summary.json"));
        served_experiments(&dir, &uri, runs.len());
    });
    let group = format!("-{}", server.id());
    let kill = |signal: &str| {
        let args = [signal, "--", &group];
        let _ = Command::new("kill")
            .args(args)
            .stderr(Stdio::null())
            .status();
    };
    kill("-TERM");
    let t0 = std::time::Instant::now();
    while server.try_wait().ok().flatten().is_none() && t0.elapsed().as_secs() < 10 {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    kill("-KILL");
    let _ = server.wait();
    result.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
