//! `raceloop serve` driven by real clients: Python `requests` and `websockets`
//! (tests/serve_client.py: every route, errors, progress, stop, experiments), `curl`, and a
//! restart after the service was killed with a job running.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `raceloop serve` in `dir` on a free port with `extra` options; returns it once it
/// listens.
fn serve(dir: &Path, extra: &[&str]) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_raceloop"))
        .args(["serve", "--port", "0", "--tracking-uri", "mlruns"])
        .args(extra)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = loop {
        let line = lines
            .next()
            .expect("the service printed its address")
            .unwrap();
        eprintln!("serve: {line}");
        if let Some(rest) = line.split("listening on ").nth(1) {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    // Keep reading, so that the jobs' output never fills the pipe.
    std::thread::spawn(move || lines.for_each(drop));
    Server { child, url }
}

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("raceloop-serve-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn get(url: &str, token: Option<&str>) -> (u16, serde_json::Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut request = agent.get(url);
    if let Some(t) = token {
        request = request.header("Authorization", &format!("Bearer {t}"));
    }
    let mut response = request.call().unwrap();
    let status = response.status().as_u16();
    (status, response.body_mut().read_json().unwrap())
}

fn post(url: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut response = agent.post(url).send_json(body).unwrap();
    let status = response.status().as_u16();
    (status, response.body_mut().read_json().unwrap())
}

#[test]
fn python_clients_drive_every_route() {
    let Some(python) = std::env::var("RACELOOP_PYTHON").ok().filter(|p| {
        Command::new(p)
            .args(["-c", "import requests, websockets"])
            .status()
            .is_ok_and(|s| s.success())
    }) else {
        eprintln!("skipped: no requests/websockets in RACELOOP_PYTHON; run tests/run.sh");
        return;
    };
    let dir = tempdir("python");
    let server = serve(&dir, &[]);
    let out = Command::new(&python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/serve_client.py"))
        .arg(&server.url)
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "serve_client.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    eprintln!("{seen:#}");
    assert!(seen["training"]["messages"].as_u64().unwrap() >= 3);
    // curl, as the README shows it.
    if Command::new("curl").arg("--version").output().is_ok() {
        let out = Command::new("curl")
            .args(["-s", "-f", &format!("{}/experiments", server.url)])
            .output()
            .unwrap();
        assert!(out.status.success());
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(v["experiments"].as_array().unwrap().len() >= 2);
    }
}

#[test]
fn a_restart_marks_the_jobs_that_were_running_as_failed() {
    let dir = tempdir("restart");
    let mut server = serve(&dir, &[]);
    let (status, started) = post(
        &format!("{}/collection/start", server.url),
        &serde_json::json!({"episodes": 400, "tracks": "all"}),
    );
    assert_eq!(status, 200, "{started}");
    let id = started["id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, s) = get(&format!("{}/collection/status/{id}", server.url), None);
        if s["state"] == "running" && s["episodes_done"].as_u64().unwrap() > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the job never ran: {s}");
        std::thread::sleep(Duration::from_millis(100));
    }
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let server = serve(&dir, &[]);
    let (status, s) = get(&format!("{}/collection/status/{id}", server.url), None);
    assert_eq!(status, 200, "{s}");
    assert_eq!(s["state"], "failed", "{s}");
    assert!(
        s["error"].as_str().unwrap().contains("service stopped"),
        "{s}"
    );
    let (_, experiments) = get(&format!("{}/experiments", server.url), None);
    let raceloop = experiments["experiments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "raceloop")
        .unwrap()
        .clone();
    let (_, runs) = get(
        &format!(
            "{}/experiments/{}",
            server.url,
            raceloop["experiment_id"].as_str().unwrap()
        ),
        None,
    );
    let run = runs["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id.as_str())
        .expect("the lost job is still listed")
        .clone();
    assert_eq!(run["status"], "FAILED", "{run}");
}

#[test]
fn a_token_guards_every_route_and_other_hosts_need_one() {
    let dir = tempdir("token");
    let server = serve(&dir, &["--host", "0.0.0.0", "--token", "s3cret"]);
    let url = format!("{}/experiments", server.url);
    let (status, body) = get(&url, None);
    assert_eq!(status, 401, "{body}");
    assert_eq!(get(&url, Some("wrong")).0, 401);
    assert_eq!(get(&url, Some("s3cret")).0, 200);
    let out = Command::new(env!("CARGO_BIN_EXE_raceloop"))
        .args(["serve", "--host", "0.0.0.0", "--port", "0"])
        .current_dir(&dir)
        .env_remove("RACELOOP_TOKEN")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--token"));
}
