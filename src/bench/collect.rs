//! Benchmark of the episode runtime: headless parallel collection (Bevy apps on rayon
//! workers, MCAP recording) with 1 and 2 workers.

use std::time::Instant;

use anyhow::Result;
use serde::Serialize;

use crate::cli::BenchCollectArgs;
use crate::config::{CollectionConfig, Resolved};
use crate::episode::jobs::load_tracks;
use crate::stages::collect::collect as collect_run;

#[derive(Debug, Serialize)]
struct CollectRun {
    workers: usize,
    wall_s: f64,
    episodes_per_s: f64,
    steps_per_s: f64,
    mb_written: f64,
    success_rate: f64,
}

#[derive(Debug, Serialize)]
struct CollectBench {
    episodes: usize,
    tracks: String,
    laps: f64,
    track_loading_s: f64,
    runs: Vec<CollectRun>,
    speedup_2_over_1: f64,
    target_wall_s: f64,
    target_speedup: f64,
}

fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|it| {
            it.flatten()
                .map(|e| {
                    if e.path().is_dir() {
                        dir_bytes(&e.path())
                    } else {
                        e.metadata().map(|m| m.len()).unwrap_or(0)
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

/// `raceloop bench collect`: the default collection with 1 and with 2 workers.
///
/// # Errors
/// Bad configs or I/O errors.
pub fn collect(args: &BenchCollectArgs) -> Result<()> {
    let base = Resolved::load(
        &args.configs,
        &[format!("collection.episodes={}", args.episodes)],
    )?;
    let c = base.config.collection.clone();
    let sim = c.episode_sim(&base.sim())?;
    let t = Instant::now();
    let tracks = load_tracks(&c.tracks)?;
    let track_loading_s = t.elapsed().as_secs_f64();
    let mut runs = Vec::new();
    for workers in [1, 2] {
        let dir = args.out.join(format!("workers-{workers}"));
        let _ = std::fs::remove_dir_all(&dir);
        let c = CollectionConfig {
            workers,
            ..c.clone()
        };
        let t = Instant::now();
        let collected = collect_run(&dir, &c, &sim, &tracks)?;
        let summary = collected.summary;
        let wall_s = t.elapsed().as_secs_f64();
        runs.push(CollectRun {
            workers,
            wall_s,
            episodes_per_s: args.episodes as f64 / wall_s,
            steps_per_s: summary.overall.steps as f64 / wall_s,
            mb_written: dir_bytes(&dir) as f64 / 1e6,
            success_rate: summary.overall.success_rate,
        });
        std::fs::remove_dir_all(&dir)?;
    }
    let r = CollectBench {
        episodes: args.episodes,
        tracks: c.tracks.clone(),
        laps: c.laps,
        track_loading_s,
        speedup_2_over_1: runs[0].wall_s / runs[1].wall_s,
        runs,
        target_wall_s: 20.0,
        target_speedup: 1.85,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!(
            "bench collect: {} episodes of {} lap over tracks \"{}\" (track loading {:.2} s, not \
             included)",
            r.episodes, r.laps, r.tracks, r.track_loading_s
        );
        for run in &r.runs {
            println!(
                "  {} worker(s): {:6.2} s  {:6.1} episodes/s  {:8.0} steps/s  {:7.1} MB  success {:.1} %",
                run.workers,
                run.wall_s,
                run.episodes_per_s,
                run.steps_per_s,
                run.mb_written,
                100.0 * run.success_rate
            );
        }
        println!(
            "  speed-up 2 workers over 1: {:.2}x (target {:.2}x); 2 workers vs the 20 s target: {:.0} %",
            r.speedup_2_over_1,
            r.target_speedup,
            100.0 * r.runs[1].wall_s / 20.0
        );
    }
    Ok(())
}
