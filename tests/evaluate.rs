//! `raceloop evaluate` through the real binary: an evaluation directory is reused only for the
//! same weights, settings and tracks, a LiDAR that does not fit the model is refused before
//! any episode runs, and a successful episode is logged thin while a failed one is kept in full.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;

fn evaluate(out: &Path, extra: &[&str]) -> Output {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    Command::new(env!("CARGO_BIN_EXE_raceloop"))
        .args([
            "evaluate",
            "--episodes",
            "1",
            "--no-expert",
            "--workers",
            "1",
        ])
        .arg("--model")
        .arg(root.join("models/default"))
        .arg("--out")
        .arg(out)
        .arg("--no-tracking")
        .args(extra)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The goal (m) of every model episode recorded in `out`.
fn goals(out: &Path) -> Vec<f64> {
    let mut goals = Vec::new();
    for e in std::fs::read_dir(out.join("model/episodes")).unwrap() {
        let r: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(e.unwrap().path().join("result.json")).unwrap(),
        )
        .unwrap();
        goals.push(r["goal_m"].as_f64().unwrap());
    }
    goals
}

#[test]
fn evaluations_are_keyed_on_what_produced_them() {
    let out: PathBuf =
        std::env::temp_dir().join(format!("raceloop-eval-key-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let first = evaluate(&out, &["--track", "IMS", "--laps", "0.02"]);
    assert!(first.status.success(), "{}", text(&first));
    let short = goals(&out);
    assert_eq!(short.len(), 1);

    let again = evaluate(&out, &["--track", "IMS", "--laps", "0.02"]);
    assert!(
        text(&again).contains("evaluate: cached"),
        "{}",
        text(&again)
    );

    // Other settings: the old episodes go, the new ones are really run.
    let longer = evaluate(&out, &["--track", "IMS", "--laps", "0.04"]);
    assert!(longer.status.success(), "{}", text(&longer));
    assert!(
        text(&longer).contains("starting afresh"),
        "{}",
        text(&longer)
    );
    let long = goals(&out);
    assert_eq!(long.len(), 1);
    assert!(
        (long[0] - 2.0 * short[0]).abs() < 1e-6,
        "{long:?} vs {short:?}"
    );

    // Another track with the same seeds: no episode of IMS is reported for Montreal.
    let other = evaluate(&out, &["--track", "Montreal", "--laps", "0.04"]);
    assert!(other.status.success(), "{}", text(&other));
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("evaluation_summary.json")).unwrap(),
    )
    .unwrap();
    let tracks: Vec<&String> = summary["model_per_track"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(tracks, ["Montreal"]);
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn a_lidar_that_does_not_fit_the_model_is_refused_before_any_episode() {
    let out = std::env::temp_dir().join(format!("raceloop-eval-beams-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    for beams in ["720", "2160"] {
        let o = evaluate(
            &out,
            &["--track", "IMS", &format!("lidar.num_beams={beams}")],
        );
        assert!(!o.status.success(), "{}", text(&o));
        let t = text(&o);
        assert!(
            t.contains(&format!("LiDAR has {beams} beams")) && t.contains("reads 1080"),
            "{t}"
        );
        assert!(!t.contains("panicked"), "{t}");
        assert!(!out.join("model").exists());
    }
}

/// Message counts per topic of an MCAP, read by the independent Python `mcap` reader; `None`
/// where `RACELOOP_PYTHON` is not set.
fn counts(mcap: &Path) -> Option<serde_json::Value> {
    let python = std::env::var("RACELOOP_PYTHON").ok()?;
    let v = common::python_json(&python, "read_mcap.py", &[mcap.as_os_str()]);
    Some(v["counts"].clone())
}

#[test]
fn a_successful_episode_is_logged_thin_and_a_failed_one_in_full() {
    let (ok, failed) = (
        std::env::temp_dir().join(format!("raceloop-eval-thin-{}", std::process::id())),
        std::env::temp_dir().join(format!("raceloop-eval-full-{}", std::process::id())),
    );
    for (out, extra) in [
        (&ok, vec![]),
        // No car averages 50 m/s: the episode times out, a failure.
        (&failed, vec!["evaluation.min_average_speed=50"]),
    ] {
        let _ = std::fs::remove_dir_all(out);
        let mut args = vec!["--track", "IMS", "--laps", "0.1"];
        args.extend(extra);
        let o = evaluate(out, &args);
        assert!(o.status.success(), "{}", text(&o));
    }
    let episode = |out: &Path| {
        let dir = std::fs::read_dir(out.join("model/episodes"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let result: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("result.json")).unwrap())
                .unwrap();
        let log = raceloop_record::EpisodeLog::read(&dir.join("simulation.mcap")).unwrap();
        (dir, result, log)
    };
    let (ok_dir, ok_result, ok_log) = episode(&ok);
    let (failed_dir, failed_result, failed_log) = episode(&failed);
    assert_eq!(ok_result["success"], true);
    assert_eq!(failed_result["outcome"], "timeout");
    let steps = |r: &serde_json::Value| r["steps"].as_u64().unwrap();
    // Thin: states at 10 Hz (every 10th step), a scan per second.
    assert!(ok_log.thin);
    assert_eq!(ok_log.states.len() as u64, steps(&ok_result) / 10 + 1);
    let seconds = steps(&ok_result) / 100;
    assert_eq!(ok_log.scans.len() as u64, seconds + 1);
    // Full: every step's state, every scan (25 Hz in evaluation).
    assert!(!failed_log.thin);
    assert_eq!(failed_log.states.len() as u64, steps(&failed_result) + 1);
    assert_eq!(failed_log.scans.len() as u64, steps(&failed_result) / 4 + 1);
    if let (Some(thin), Some(full)) = (
        counts(&ok_dir.join("simulation.mcap")),
        counts(&failed_dir.join("simulation.mcap")),
    ) {
        assert_eq!(
            thin["/ego/state"].as_u64(),
            Some(ok_log.states.len() as u64)
        );
        assert_eq!(full["/scan"].as_u64(), Some(failed_log.scans.len() as u64));
    }
    for out in [ok, failed] {
        std::fs::remove_dir_all(out).unwrap();
    }
}
