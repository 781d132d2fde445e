//! Many episodes in parallel: track lists ([`load_tracks`]) and the rayon job runner
//! ([`run_jobs`]) that collection and evaluation share. Results come back in job order and do
//! not depend on the number of workers.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use anyhow::{Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use raceloop_sim::Track;
use raceloop_sim::track::synthetic::Style;
use rayon::prelude::*;

use super::plugin::Driver;
use super::result::EpisodeResult;
use super::runner::{EpisodeJob, Interrupted, finished_result, run_episode};
use crate::interrupt::STOP;

/// Set to stop the running job's episodes before their start (episodes under way finish);
/// [`run_jobs`] checks it. Cleared when a job starts.
pub static STOP_JOB: AtomicBool = AtomicBool::new(false);
/// Episodes that the running job has finished (collection or evaluation).
pub static EPISODES_DONE: AtomicUsize = AtomicUsize::new(0);
/// Episodes that the running job's current stage will run.
pub static EPISODES_TOTAL: AtomicUsize = AtomicUsize::new(0);

/// Loads the tracks named by a `--track` value: comma-separated shipped names, centerline CSV
/// paths, `all` (every shipped track) or generated circuits (`synthetic:N`, `synthetic:A..B`,
/// `esses:N`, `esses:A..B`).
/// A track named twice (`all,Montreal`) gets twice the share of round-robin episodes (each
/// track is loaded once).
///
/// # Errors
/// Unknown names or bad files.
pub fn load_tracks(spec: &str) -> Result<Vec<Arc<Track>>> {
    let names = track_names(spec)?;
    if names.is_empty() {
        bail!("no track given");
    }
    let mut distinct = names.clone();
    distinct.sort();
    distinct.dedup();
    let loaded: HashMap<&String, Arc<Track>> = distinct
        .par_iter()
        .map(|n| Ok((n, Arc::new(Track::load(n)?))))
        .collect::<Result<_>>()?;
    Ok(names.iter().map(|n| loaded[n].clone()).collect())
}

/// The names or paths of a `--track` value, in order, repeats kept: `all` expands to every
/// shipped track, and `synthetic:A..B` to the generated circuits `synthetic:A` to
/// `synthetic:B-1` (`esses:A..B` likewise; see [`raceloop_sim::track::synthetic`]).
///
/// # Errors
/// A `synthetic:A..B` or `esses:A..B` whose bounds are not whole numbers with A < B.
fn track_names(spec: &str) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for s in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if s.eq_ignore_ascii_case("all") {
            names.extend(
                raceloop_sim::track::shipped_names()
                    .into_iter()
                    .map(String::from),
            );
        } else if let Some((prefix, (a, b))) =
            Style::split(s).and_then(|(style, r)| Some((style.prefix(), r.split_once("..")?)))
        {
            let (Ok(a), Ok(b)) = (a.trim().parse::<u64>(), b.trim().parse::<u64>()) else {
                bail!("track `{s}`: expected `{prefix}A..B` with whole numbers A < B");
            };
            if a >= b {
                bail!("track `{s}`: the range {a}..{b} is empty");
            }
            names.extend((a..b).map(|n| format!("{prefix}{n}")));
        } else {
            names.push(s.to_string());
        }
    }
    Ok(names)
}

/// What [`run_jobs`] returns: every job's result, and how much of it this call simulated (the
/// rest were finished episodes found in their directories).
#[derive(Debug, Clone, Default)]
pub struct JobResults {
    /// Every job's result, in job order.
    pub results: Vec<EpisodeResult>,
    /// Episodes simulated by this call.
    pub ran: usize,
    /// Physics steps of those episodes.
    pub ran_steps: u64,
}

/// Runs `jobs` on `workers` rayon threads (0 = all cores) with a progress bar labelled `label`,
/// skipping episodes already finished in their directory; `driver` builds each episode's
/// driver, recorded as `driver_name`. Results come back in job order.
///
/// The running background job's counters ([`EPISODES_DONE`]) follow it, and its stop flag ends it
/// before the next episode.
///
/// # Errors
/// The first failing episode's error, or [`Interrupted`] after Ctrl-C or a job's stop.
pub fn run_jobs(
    jobs: &[EpisodeJob],
    workers: usize,
    label: &str,
    driver: impl Fn(&EpisodeJob) -> Driver + Sync,
    driver_name: &str,
) -> Result<JobResults> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(workers)
        .build()?;
    let bar = ProgressBar::new(jobs.len() as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix} [{bar:30}] {pos}/{len} episodes, {per_sec}, {msg}, ETA {eta}",
        )
        .expect("template")
        .progress_chars("=> "),
    );
    bar.set_prefix(label.to_string());
    let successes = AtomicUsize::new(0);
    EPISODES_DONE.store(0, Ordering::Relaxed);
    EPISODES_TOTAL.store(jobs.len(), Ordering::Relaxed);
    let results: Vec<(Result<EpisodeResult>, bool)> = pool.install(|| {
        jobs.par_iter()
            .map(|job| {
                let (result, ran) = match job.dir.as_deref().and_then(finished_result) {
                    Some(done) => (Ok(done), false),
                    None if STOP_JOB.load(Ordering::Relaxed) => (Err(Interrupted.into()), false),
                    None => (run_episode(job, &|| driver(job), driver_name, &STOP), true),
                };
                EPISODES_DONE.fetch_add(1, Ordering::Relaxed);
                if let Ok(r) = &result {
                    let ok = successes.fetch_add(r.success as usize, Ordering::Relaxed)
                        + r.success as usize;
                    bar.inc(1);
                    bar.set_message(format!(
                        "success {:.0} %",
                        100.0 * ok as f64 / bar.position().max(1) as f64
                    ));
                }
                (result, ran)
            })
            .collect()
    });
    bar.finish_and_clear();
    let mut out = JobResults::default();
    for (r, ran) in results {
        match r {
            Ok(r) => {
                if ran {
                    out.ran += 1;
                    out.ran_steps += r.steps;
                }
                out.results.push(r);
            }
            Err(e) if e.is::<Interrupted>() => {
                bail!(
                    "{} after {} finished episodes; run the same command again to resume",
                    if STOP_JOB.load(Ordering::Relaxed) {
                        "stopped"
                    } else {
                        "interrupted"
                    },
                    bar.position()
                )
            }
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn track_lists_expand_all_and_keep_repeats() {
        let shipped = raceloop_sim::track::shipped_names();
        assert_eq!(track_names("all").unwrap(), shipped);
        let weighted = track_names("all, Montreal").unwrap();
        assert_eq!(weighted.len(), shipped.len() + 1);
        assert_eq!(weighted.iter().filter(|n| *n == "Montreal").count(), 2);
        assert_eq!(
            track_names("Austin,,tracks/x.csv").unwrap(),
            ["Austin", "tracks/x.csv"]
        );
        assert!(track_names(" , ").unwrap().is_empty());
    }

    #[test]
    fn synthetic_ranges_expand_and_bad_ones_are_errors() {
        assert_eq!(
            track_names("Spa,synthetic:3..5,synthetic:9,esses:0..2").unwrap(),
            [
                "Spa",
                "synthetic:3",
                "synthetic:4",
                "synthetic:9",
                "esses:0",
                "esses:1"
            ]
        );
        for bad in [
            "synthetic:5..5",
            "synthetic:a..4",
            "synthetic:1..-2",
            "esses:2..1",
        ] {
            let e = track_names(bad).unwrap_err().to_string();
            assert!(e.contains(bad), "{e}");
        }
    }
}
