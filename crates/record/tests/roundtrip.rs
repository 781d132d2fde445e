//! An episode written by `McapLog` reads back through `EpisodeLog` with the same scans,
//! commands, labels, states and events; a damaged file is an error that names it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use raceloop_record::{Detail, EgoState, EpisodeLog, McapLog, RecordError};
use raceloop_sim::{Action, Outcome, PurePursuit, Sim, SimConfig, StartMode, Track};

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("raceloop-record-{}-{name}", std::process::id()))
}

/// Drives 60 steps of Pure Pursuit on Montreal, logging a label every step; returns the
/// file, the scans logged, and the commands issued.
fn write_episode(path: &Path) -> (Vec<Vec<f32>>, Vec<Action>) {
    write_with(path, Detail::ALL, 60, Outcome::Timeout)
}

/// As [`write_episode`], for `steps` steps, with `detail`, ending with `outcome`.
fn write_with(
    path: &Path,
    detail: Detail,
    steps: u64,
    outcome: Outcome,
) -> (Vec<Vec<f32>>, Vec<Action>) {
    let track = Arc::new(Track::load("Montreal").unwrap());
    let mut config = SimConfig::default();
    config.episode.start.mode = StartMode::Random;
    config.lidar.period_steps = 2;
    let mut expert = PurePursuit::new(config.expert.clone(), &track, &config.vehicle);
    let mut sim = Sim::new(track.clone(), config.clone()).unwrap();
    sim.reset(7);
    let mut log = McapLog::create(path, &track, &config, 7, sim.start(), detail).unwrap();
    let obs = sim.observation();
    let ego = EgoState::of(&obs.state, sim.tracker());
    let mut scans = vec![obs.scan.to_vec()];
    log.record_step(0, &obs.state, &ego, Some(obs.scan), 0.27, None, None)
        .unwrap();
    let mut issued = Vec::new();
    for step in 1..=steps {
        let action = expert.act(&config.vehicle, &sim.observation().state);
        let label = Action {
            steering: action.steering * 0.5,
            speed: action.speed,
        };
        sim.step(action);
        let obs = sim.observation();
        let scan = obs.scan_fresh.then_some(obs.scan);
        if let Some(s) = scan {
            scans.push(s.to_vec());
        }
        let ego = EgoState::of(&obs.state, sim.tracker());
        log.record_step(
            step,
            &obs.state,
            &ego,
            scan,
            0.27,
            Some(action),
            Some(label),
        )
        .unwrap();
        issued.push(action);
    }
    log.finish(steps, outcome, "test").unwrap();
    (scans, issued)
}

#[test]
fn what_is_written_reads_back() {
    let path = temp("roundtrip.mcap");
    let (scans, issued) = write_episode(&path);
    let log = EpisodeLog::read(&path).unwrap();
    assert_eq!(log.scans.len(), scans.len());
    for ((_, read), written) in log.scans.iter().zip(&scans) {
        assert_eq!(read, written);
    }
    assert_eq!(log.states.len(), 61);
    assert_eq!(log.controls.len(), 60);
    assert_eq!(log.labels.len(), 60);
    // JSON text keeps f64 to within an ulp or two (serde_json's default float parsing).
    for ((_, read), written) in log.controls.iter().zip(&issued) {
        assert!(
            (read.steering - written.steering).abs() < 1e-12,
            "{read:?} vs {written:?}"
        );
        assert!((read.speed - written.speed).abs() < 1e-12);
    }
    assert!(log.events[0].1.starts_with("start: track Montreal seed 7"));
    assert!(log.events[1].1.starts_with("outcome: timeout"));
    // Pairs take the label (half the steering here), every scan but the last, at its time.
    let pairs: Vec<(Vec<f32>, Action)> = log
        .scan_command_pairs(1)
        .map(|(s, _, a)| (s.to_vec(), a))
        .collect();
    // Each pair's speed is the ego state's at the scan's time.
    for ((t, _), (_, speed, _)) in log.scans.iter().zip(log.scan_command_pairs(1)) {
        let state = log
            .states
            .iter()
            .find(|(ts, _)| ts == t)
            .expect("a state per scan");
        assert_eq!(speed, state.1.speed);
    }
    assert_eq!(pairs.len(), scans.len() - 1);
    assert_eq!(pairs[0].0, scans[0]);
    assert!((pairs[0].1.steering - 0.5 * issued[0].steering).abs() < 1e-12);
    let every_third = (0..scans.len()).step_by(3).filter(|&i| i + 1 < scans.len());
    assert_eq!(log.scan_command_pairs(3).count(), every_third.count());
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn damaged_files_are_errors_that_name_the_file() {
    let path = temp("damaged.mcap");
    write_episode(&path);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let e = EpisodeLog::read(&path).unwrap_err();
    assert!(
        matches!(e, RecordError::Malformed { ref message, .. } if message.starts_with("ends early")),
        "{e:?}"
    );
    assert!(e.to_string().contains("damaged.mcap"), "{e}");
    std::fs::write(&path, b"not an mcap").unwrap();
    let e = EpisodeLog::read(&path).unwrap_err().to_string();
    assert!(e.contains("damaged.mcap"), "{e}");
    std::fs::remove_file(&path).unwrap();
    let e = EpisodeLog::read(&path).unwrap_err().to_string();
    assert!(e.contains("damaged.mcap"), "{e}");
}

#[test]
fn a_chunk_damaged_after_writing_fails_its_crc_with_the_offset() {
    let path = temp("crc.mcap");
    write_episode(&path);
    let clean = std::fs::read(&path).unwrap();
    let summary = mcap::Summary::read(&clean).unwrap().unwrap();
    let chunk = summary
        .chunk_indexes
        .iter()
        .max_by_key(|c| c.chunk_length)
        .unwrap()
        .clone();
    // 7 bytes of garbage in the middle of the largest chunk's compressed data.
    let mut bytes = clean.clone();
    let at = (chunk.chunk_start_offset + chunk.chunk_length / 2) as usize;
    bytes[at..at + 7].copy_from_slice(b"garbage");
    std::fs::write(&path, &bytes).unwrap();
    let e = EpisodeLog::read(&path).unwrap_err();
    let text = e.to_string();
    println!("{text}");
    assert!(matches!(e, RecordError::Corrupt { .. }), "{e:?}");
    assert!(text.contains("crc.mcap"), "{text}");
    if let RecordError::Corrupt { offset, .. } = e {
        assert_eq!(offset, Some(chunk.chunk_start_offset), "{text}");
    }
    std::fs::remove_file(&path).unwrap();
}

/// Found by the fuzz harness: a damaged chunk header claiming 503 PB uncompressed aborted the
/// process (mcap's message stream allocated it). Now it is an error.
#[test]
fn a_chunk_claiming_an_absurd_size_is_an_error_not_an_abort() {
    let path = temp("huge.mcap");
    write_episode(&path);
    let mut bytes = std::fs::read(&path).unwrap();
    let summary = mcap::Summary::read(&bytes).unwrap().unwrap();
    // Chunk record: opcode (1), length (8), start and end time (16), then the uncompressed size.
    let at = summary.chunk_indexes[0].chunk_start_offset as usize + 25;
    bytes[at..at + 8].copy_from_slice(&503_168_148_758_401_587u64.to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    let e = EpisodeLog::read(&path).unwrap_err();
    assert!(
        matches!(
            e,
            RecordError::Mcap {
                error: mcap::McapError::ChunkTooLarge(_),
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("huge.mcap"), "{e}");
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn a_thin_log_keeps_states_at_10_hz_and_a_scan_per_second() {
    let (full, thin) = (temp("full.mcap"), temp("thin.mcap"));
    // 250 steps = 2.5 s at dt = 0.01 s, scans every 2nd step.
    let (scans, _) = write_with(&full, Detail::ALL, 250, Outcome::GoalReached);
    write_with(&thin, Detail::Thin, 250, Outcome::GoalReached);
    let (f, t) = (
        EpisodeLog::read(&full).unwrap(),
        EpisodeLog::read(&thin).unwrap(),
    );
    assert!(!f.thin && t.thin);
    assert_eq!(f.scans.len(), scans.len());
    let times = |v: &[(u64, EgoState)]| v.iter().map(|s| s.0).collect::<Vec<_>>();
    let tenths: Vec<u64> = (0..=25).map(|k| k * 100_000_000).collect();
    assert_eq!(times(&t.states), tenths, "ego state at 10 Hz");
    let scan_times: Vec<u64> = t.scans.iter().map(|s| s.0).collect();
    assert_eq!(
        scan_times,
        [0, 1_000_000_000, 2_000_000_000],
        "a scan per second"
    );
    for (time, ranges) in &t.scans {
        let same = f.scans.iter().find(|s| s.0 == *time).unwrap();
        assert_eq!(&same.1, ranges, "thin scans are the full log's");
    }
    assert_eq!(t.events, f.events, "start and outcome events are kept");
    assert_eq!(
        t.controls.len(),
        25,
        "commands at 10 Hz (the first is issued at 0 s)"
    );
    let (fs, ts) = (
        std::fs::metadata(&full).unwrap().len(),
        std::fs::metadata(&thin).unwrap().len(),
    );
    println!("full {fs} B, thin {ts} B");
    assert!(ts * 4 < fs, "thin {ts} B vs full {fs} B");
    for p in [full, thin] {
        std::fs::remove_file(p).unwrap();
    }
}

#[test]
fn a_decimated_log_keeps_every_scan_with_its_command() {
    let (all, every2) = (temp("all.mcap"), temp("every2.mcap"));
    let (scans, _) = write_with(&all, Detail::ALL, 60, Outcome::Timeout);
    write_with(
        &every2,
        Detail::Full { state_every: 2 },
        60,
        Outcome::Timeout,
    );
    let (a, d) = (
        EpisodeLog::read(&all).unwrap(),
        EpisodeLog::read(&every2).unwrap(),
    );
    assert_eq!(d.scans, a.scans, "every scan is kept");
    assert_eq!(d.scans.len(), scans.len());
    assert_eq!(d.states.len(), 31, "states at steps 0, 2, …, 60");
    assert!(d.states.iter().all(|(t, _)| t % 20_000_000 == 0));
    let pairs = |l: &EpisodeLog| -> Vec<(Vec<f32>, Action)> {
        l.scan_command_pairs(1)
            .map(|(s, _, c)| (s.to_vec(), c))
            .collect()
    };
    assert_eq!(
        pairs(&d),
        pairs(&a),
        "each scan keeps the command issued at its time"
    );
    for p in [all, every2] {
        std::fs::remove_file(p).unwrap();
    }
}
