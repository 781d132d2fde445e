//! Fuzz harness on the parsers of user input, with proptest as the (stable) engine: track CSVs,
//! the override grammar, the RON areas, `model.json` / `stats.json` and the MCAP reader.
//!
//! Each target mutates real seed inputs (byte flips, token insertions from a dictionary,
//! deletions, duplications) and requires the parser to return, `Ok` or `Err`, without a panic.
//! `RACELOOP_FUZZ_CASES` sets the cases per target: 300 in the test suite, millions from
//! `tests/fuzz.sh`, which prints the executions of every target.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// One edit of an input.
#[derive(Clone, Debug)]
enum Mutation {
    /// XOR the byte at (position modulo length) with a non-zero mask.
    Flip(usize, u8),
    /// Insert a dictionary token at a position.
    Insert(usize, usize),
    /// Delete up to `n` bytes at a position.
    Delete(usize, usize),
    /// Repeat a slice of up to `n` bytes at a position.
    Duplicate(usize, usize),
}

/// Tokens that parsers treat specially.
const DICTIONARY: &[&str] = &[
    ",",
    "\n",
    "#",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    "'",
    "\"",
    "=",
    "+",
    "++",
    "~",
    ".",
    "-",
    "NaN",
    "inf",
    "-inf",
    "1e308",
    "-1e308",
    "0",
    "-0",
    "1e-320",
    "18446744073709551616",
    "range(",
    "choice(",
    "Some(",
    "None",
    "true",
    "null",
    ":",
    "::",
    "\u{0}",
    "\u{feff}",
    "é",
    "  ",
    "\r\n",
    "experiment=",
    "//",
    "/*",
    "*/",
];

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1u8..=255).prop_map(|(p, m)| Mutation::Flip(p, m)),
        (any::<usize>(), 0..DICTIONARY.len()).prop_map(|(p, t)| Mutation::Insert(p, t)),
        (any::<usize>(), 1usize..64).prop_map(|(p, n)| Mutation::Delete(p, n)),
        (any::<usize>(), 1usize..64).prop_map(|(p, n)| Mutation::Duplicate(p, n)),
    ]
}

fn mutate(seed: &[u8], edits: &[Mutation]) -> Vec<u8> {
    let mut b = seed.to_vec();
    for m in edits {
        let at = |p: usize, len: usize| if len == 0 { 0 } else { p % (len + 1) };
        match *m {
            Mutation::Flip(p, mask) if !b.is_empty() => {
                let i = p % b.len();
                b[i] ^= mask;
            }
            Mutation::Flip(..) => {}
            Mutation::Insert(p, t) => {
                let i = at(p, b.len());
                b.splice(i..i, DICTIONARY[t].bytes());
            }
            Mutation::Delete(p, n) => {
                let i = at(p, b.len()).min(b.len());
                let end = (i + n).min(b.len());
                b.drain(i..end);
            }
            Mutation::Duplicate(p, n) => {
                let i = at(p, b.len()).min(b.len());
                let end = (i + n).min(b.len());
                let copy = b[i..end].to_vec();
                b.splice(end..end, copy);
            }
        }
    }
    b
}

/// Cases per target.
fn cases() -> u32 {
    std::env::var("RACELOOP_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300)
}

/// Runs `check` on mutated `seeds` for [`cases`] cases; returns the executions.
fn fuzz(name: &str, seeds: &[Vec<u8>], check: impl Fn(&[u8])) -> u64 {
    let runs = AtomicU64::new(0);
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (0..seeds.len(), prop::collection::vec(mutation(), 0..6));
    let result = runner.run(&strategy, |(seed, edits)| {
        let input = mutate(&seeds[seed], &edits);
        runs.fetch_add(1, Ordering::Relaxed);
        check(&input);
        Ok(())
    });
    if let Err(e) = result {
        panic!("fuzz target {name}: {e}");
    }
    let n = runs.into_inner();
    println!("fuzz {name}: {n} executions, no panic");
    n
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn shipped_track_texts() -> Vec<Vec<u8>> {
    ["IMS", "Montreal"]
        .iter()
        .flat_map(|name| {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tracks");
            [
                std::fs::read(dir.join(format!("{name}_centerline.csv"))).unwrap(),
                std::fs::read(dir.join(format!("{name}_raceline.csv"))).unwrap_or_default(),
            ]
        })
        .map(|b| b.into_iter().take(4000).collect())
        .collect()
}

#[test]
fn fuzz_track_csv() {
    let seeds = shipped_track_texts();
    let p = Path::new("fuzz.csv");
    fuzz("track_csv", &seeds, |b| {
        let t = text(b);
        let _ = raceloop_sim::track::parse_centerline(p, &t);
        let _ = raceloop_sim::track::parse_raceline(p, &t);
    });
}

#[test]
fn fuzz_track_geometry() {
    // Whole tracks from mutated small centerlines (walls, grid): fewer cases, each costs more.
    let seeds = vec![
        b"# x_m, y_m, w_tr_right_m, w_tr_left_m\n0,0,1,1\n10,0,1,1\n10,10,1,1\n0,10,1,1\n".to_vec(),
        b"0,0,2,2\n30,0,1,1\n40,20,1.5,1\n20,40,1,1\n0,30,1,2\n-10,10,1,1\n".to_vec(),
    ];
    fuzz("track_geometry", &seeds, |b| {
        let _ = raceloop_sim::Track::from_csv_text("fuzz", Path::new("fuzz.csv"), &text(b), None);
    });
}

#[test]
fn fuzz_overrides() {
    let resolved =
        crate::config::Resolved::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("configs"), &[])
            .unwrap();
    let tree = serde_json::to_value(&resolved.config).unwrap();
    let seeds: Vec<Vec<u8>> = [
        "training.lr=3e-4",
        "collection.tracks='Austin,Monza'",
        "training.loss=Huber(1.0)",
        "+a.b=[0.9, 0.99]",
        "~training.seed",
        "expert.speed=Fixed(4.0)",
        "collection.seed=range(0,3)",
        "model.architecture=choice(Mlp,TinyLidarNet)",
        "++training.schedule=Cosine(3e-5)",
        "episode.start=(mode: Random, max_offset: 0.5)",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    fuzz("overrides", &seeds, |b| {
        let t = text(b);
        let _ = crate::config::overrides::parse_value(&t);
        let _ = crate::config::expand_sweeps(std::slice::from_ref(&t));
        if let Ok(ov) = crate::config::overrides::parse(&t) {
            let mut tree = tree.clone();
            if crate::config::overrides::apply(&mut tree, &ov).is_ok() {
                let _ = serde_json::from_value::<crate::config::Config>(tree);
            }
        }
    });
}

#[test]
fn fuzz_ron_areas() {
    use raceloop_sim::config::parse_ron;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
    let files = [
        "sim",
        "vehicle",
        "lidar",
        "expert",
        "episode",
        "collection",
        "dataset",
        "model",
        "training",
        "evaluation",
    ];
    let seeds: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(dir.join(format!("{f}.ron"))).unwrap())
        .collect();
    let p = Path::new("fuzz.ron");
    fuzz("ron_areas", &seeds, |b| {
        let t = text(b);
        // Every area's type on every mutated text: the parsers of all ten.
        let _ = parse_ron::<raceloop_sim::config::PhysicsConfig>(p, &t);
        let _ = parse_ron::<raceloop_sim::VehicleParams>(p, &t).map(|v| v.validate());
        let _ = parse_ron::<raceloop_sim::LidarConfig>(p, &t).map(|v| v.validate());
        let _ = parse_ron::<raceloop_sim::ExpertConfig>(p, &t).map(|v| v.validate());
        let _ = parse_ron::<raceloop_sim::EpisodeConfig>(p, &t).map(|v| v.validate());
        let _ = parse_ron::<crate::config::CollectionConfig>(p, &t);
        let _ = parse_ron::<crate::config::DatasetConfig>(p, &t).map(|v| v.validate());
        let _ = parse_ron::<raceloop_learn::ModelConfig>(p, &t).map(|v| v.validate());
        let _ = parse_ron::<raceloop_learn::TrainConfig>(p, &t).map(|v| v.validate());
        let _ = parse_ron::<crate::config::EvaluationConfig>(p, &t);
    });
}

#[test]
fn fuzz_model_json() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/default");
    let seeds = vec![
        std::fs::read(dir.join("model.json")).unwrap(),
        std::fs::read(dir.join("stats.json")).unwrap(),
    ];
    fuzz("model_json", &seeds, |b| {
        if let Ok(m) = serde_json::from_slice::<raceloop_learn::ModelConfig>(b) {
            let _ = m.validate();
        }
        let _ = serde_json::from_slice::<raceloop_learn::Stats>(b);
    });
}

#[test]
fn fuzz_mcap_reader() {
    let path = std::env::temp_dir().join(format!("raceloop-fuzz-{}.mcap", std::process::id()));
    let track = std::sync::Arc::new(raceloop_sim::Track::load("IMS").unwrap());
    let mut config = raceloop_sim::SimConfig::default();
    config.episode.laps = 0.01;
    config.lidar.num_beams = 64;
    let job = crate::episode::runner::EpisodeJob {
        track: track.clone(),
        config: config.clone(),
        seed: 3,
        dir: None,
        detail: raceloop_record::Detail::ALL,
    };
    let start = raceloop_sim::draw_start(&job.track, &job.config, job.seed);
    let mut sim = raceloop_sim::Sim::new(track.clone(), config.clone()).unwrap();
    sim.reset_to(3, start);
    let mut log = raceloop_record::McapLog::create(
        &path,
        &track,
        &config,
        3,
        &start,
        raceloop_record::Detail::ALL,
    )
    .unwrap();
    let mut expert = raceloop_sim::PurePursuit::new(config.expert.clone(), &track, &config.vehicle);
    for step in 1..=20 {
        let action = expert.act(&config.vehicle, &sim.observation().state);
        sim.step(action);
        let obs = sim.observation();
        let ego = raceloop_record::EgoState::of(&obs.state, sim.tracker());
        log.record_step(
            step,
            &obs.state,
            &ego,
            Some(obs.scan),
            0.1,
            Some(action),
            None,
        )
        .unwrap();
    }
    log.finish(20, raceloop_sim::Outcome::Timeout, "fuzz seed")
        .unwrap();
    let seeds = vec![std::fs::read(&path).unwrap()];
    std::fs::remove_file(&path).unwrap();
    let p = Path::new("fuzz.mcap");
    fuzz("mcap_reader", &seeds, |b| {
        if let Ok(log) = raceloop_record::EpisodeLog::from_bytes(b, p) {
            let _ = log.scan_command_pairs(1).count();
        }
    });
}
