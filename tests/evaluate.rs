//! `raceloop evaluate` through the real binary: an evaluation directory is reused only for the
//! same weights, settings and tracks, and a LiDAR that does not fit the model is refused before
//! any episode runs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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
