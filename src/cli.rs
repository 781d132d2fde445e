//! Command-line interface: the clap types and, in one place, how their flags become config
//! overrides (`--episodes 5` is `collection.episodes=5`).

use std::fmt::Display;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use raceloop_sim::StartMode;

/// raceloop: learning-based autonomous racing in one binary.
///
/// Simulates an F1TENTH car with a 1080-beam LiDAR on real race tracks, drives it with a Pure
/// Pursuit expert, and measures lap times. Tracks: the 15 shipped circuits (`tracks/`) by name,
/// any centerline CSV in the f1tenth_racetracks format by path, or a generated circuit
/// (`synthetic:N` with hairpins, `esses:N` with linked corners).
#[derive(Debug, Parser)]
#[command(
    name = "raceloop",
    version,
    about,
    long_about,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// Collect episodes without a window (same as `raceloop collect`).
    #[arg(long)]
    pub headless: bool,
    #[command(flatten)]
    pub collect: CollectArgs,
    #[command(flatten)]
    pub tracking: crate::tracking::TrackingArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Config files and Hydra-style overrides; shared by the commands that use configs.
#[derive(Debug, Args, Clone, Default)]
pub struct ConfigArgs {
    /// Directory of RON config files, one per area (sim, vehicle, lidar, expert, episode,
    /// collection, dataset, model, training, evaluation); a missing file takes the shipped default.
    #[arg(long, default_value = "configs")]
    pub configs: PathBuf,
    /// Run one job per combination of the sweeps in the overrides (`a=1,2`,
    /// `a=range(100,105)`, `a=choice(x,y)`); each job is a child run of one tracked sweep run.
    #[arg(short = 'm', long)]
    pub multirun: bool,
    /// Config overrides (Hydra's grammar): `training.lr=3e-4` sets an existing key, `+a.b=v` adds
    /// one, `++a.b=v` adds or sets, `~a.b` removes one, `experiment=NAME` applies
    /// `configs/experiment/NAME.ron` first.
    #[arg(value_name = "OVERRIDE")]
    pub overrides: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Collects expert episodes headless on all cores: MCAP logs, config and result per episode.
    Collect(CollectArgs),
    /// Builds a behavioral-cloning dataset from collection runs (successful episodes only).
    Extract(ExtractArgs),
    /// Trains Tiny Lidar Net (or the MLP baseline) on a dataset version.
    Train(TrainArgs),
    /// Evaluates a trained model closed loop on the shipped tracks, with the expert as reference.
    Evaluate(EvaluateArgs),
    /// Collect → extract → train → evaluate in one directory, every stage cached.
    Pipeline(PipelineArgs),
    /// Opens the window (the default without arguments): watch, drive, replay, train, evaluate.
    #[cfg(feature = "gui")]
    View(crate::view::ViewArgs),
    /// Serves a REST and WebSocket API (127.0.0.1:8000 by default) that starts, watches and
    /// stops training, evaluation and collection jobs and lists the tracked experiments; the
    /// routes are described at /openapi.json.
    Serve(crate::serve::ServeArgs),
    /// Lists recent tracked runs (from the MLflow file store) with their key metrics.
    Runs(RunsArgs),
    /// Prints where a model came from: training run, dataset version, collection runs, seeds,
    /// configs and commits.
    Lineage {
        /// Model directory.
        #[arg(default_value = "models/default")]
        model: PathBuf,
    },
    /// Writes `model.onnx` into a model directory again (training writes it too): input `scan`
    /// [batch, beams] ranges in m (and `speed` [batch, 1] in m/s for a model that reads the ego
    /// speed), output `action` [batch, 2] steering (rad) and speed (m/s), normalisation included.
    Export {
        /// Model directory.
        #[arg(default_value = "models/default")]
        model: PathBuf,
    },
    /// Recomputes a collection run's summary (the latest run under runs/ by default).
    Summarize {
        /// Run directory.
        run: Option<PathBuf>,
    },
    /// The expert drives laps headless on one track and prints its lap times.
    Drive(DriveArgs),
    /// Benchmarks that print figures (use --json for machine-readable output).
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Lists the shipped tracks with their length.
    Tracks,
}

/// Where configs come from and how a start is chosen; shared by commands that simulate.
#[derive(Debug, Args)]
pub struct SimArgs {
    /// Track: a shipped name (e.g. Austin), a path to a `*_centerline.csv`, or a generated
    /// circuit, `synthetic:N` (hairpins) or `esses:N` (linked corners).
    #[arg(long, default_value = "Austin")]
    pub track: String,
    /// Directory of RON config files (sim.ron, vehicle.ron, lidar.ron, expert.ron, episode.ron);
    /// a missing file takes the shipped default.
    #[arg(long, default_value = "configs")]
    pub configs: PathBuf,
}

#[derive(Debug, Args)]
pub struct ExtractArgs {
    // The collection run directories for training (and validation, without --val) are the
    // positional arguments without `=`, given among the overrides.
    /// Collection runs for validation.
    #[arg(long = "val")]
    pub val: Vec<PathBuf>,
    /// Successful random-start episodes for training [default: all, or 80 % without --val].
    #[arg(long)]
    pub rs_train: Option<usize>,
    /// Successful random-start episodes for validation [default: all, or the rest].
    #[arg(long)]
    pub rs_val: Option<usize>,
    /// Where dataset versions live.
    #[arg(long, default_value = "datasets")]
    pub datasets: PathBuf,
    #[command(flatten)]
    pub config: ConfigArgs,
}

#[derive(Debug, Args)]
pub struct RunsArgs {
    /// How many runs to list, newest first.
    #[arg(long, short = 'n', default_value_t = 20)]
    pub limit: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ArchArg {
    /// Tiny Lidar Net (1D CNN).
    TinyLidarNet,
    /// The MLP baseline.
    Mlp,
}

impl From<ArchArg> for raceloop_learn::Architecture {
    fn from(a: ArchArg) -> Self {
        match a {
            ArchArg::TinyLidarNet => Self::TinyLidarNet,
            ArchArg::Mlp => Self::Mlp,
        }
    }
}

impl ArchArg {
    /// The config value (`model.architecture=…`).
    fn config_name(self) -> &'static str {
        match self {
            Self::TinyLidarNet => "TinyLidarNet",
            Self::Mlp => "Mlp",
        }
    }
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Dataset version directory (from `raceloop extract`).
    #[arg(long)]
    pub dataset: PathBuf,
    /// Epochs [default: configs/training.ron, 5].
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Model name: writes models/NAME [default: ARCH-DATASET_VERSION].
    #[arg(long)]
    pub name: Option<String>,
    /// Network [default: configs/model.ron, tiny-lidar-net].
    #[arg(long, value_enum)]
    pub arch: Option<ArchArg>,
    /// Outputs: 1 = steering (fixed speed), 2 = steering and speed [default: configs/model.ron, 1].
    #[arg(long)]
    pub outputs: Option<usize>,
    /// Compute device: cpu (Burn flex) or wgpu (needs the `wgpu` feature).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Where model directories live.
    #[arg(long, default_value = "models")]
    pub models: PathBuf,
    #[command(flatten)]
    pub config: ConfigArgs,
}

#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// Model directory.
    #[arg(long, default_value = "models/default")]
    pub model: PathBuf,
    /// Tracks: all, a name, a CSV path, generated circuits (`synthetic:N`, `synthetic:A..B`,
    /// `esses:N`, `esses:A..B`), or several separated by commas [default: all].
    #[arg(long)]
    pub track: Option<String>,
    /// Episodes per track [default: 10].
    #[arg(long)]
    pub episodes: Option<usize>,
    /// Seed of the first evaluation episode [default: 1000000, disjoint from collection seeds].
    #[arg(long, value_name = "BASE")]
    pub seed: Option<u64>,
    /// Laps per episode [default: 2].
    #[arg(long)]
    pub laps: Option<f64>,
    /// Parallel episodes [default: all cores].
    #[arg(long)]
    pub workers: Option<usize>,
    /// Output directory [default: runs/eval-<model name>].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Skip the expert reference row.
    #[arg(long)]
    pub no_expert: bool,
    #[command(flatten)]
    pub config: ConfigArgs,
}

#[derive(Debug, Args)]
pub struct PipelineArgs {
    /// Name of this pipeline version: runs/pipeline/NAME and models/NAME.
    #[arg(long, default_value = "default")]
    pub version: String,
    /// Random-start training episodes to collect.
    #[arg(long, default_value_t = 200)]
    pub rs_train: usize,
    /// Random-start validation episodes to collect (seeds after the training ones).
    #[arg(long, default_value_t = 50)]
    pub rs_val: usize,
    /// Training epochs [default: configs/training.ron, 5].
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Network [default: configs/model.ron].
    #[arg(long, value_enum)]
    pub arch: Option<ArchArg>,
    /// Tracks for collection and evaluation [default: configs/collection.ron's
    /// `all,Montreal,synthetic:0..24` (Montreal twice as often, and 24 generated circuits) for
    /// collection, all shipped tracks for evaluation].
    #[arg(long)]
    pub track: Option<String>,
    /// Evaluation episodes per track [default: 10].
    #[arg(long)]
    pub eval_episodes: Option<usize>,
    /// Compute device for training: cpu or wgpu.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Where pipeline directories live.
    #[arg(long, default_value = "runs/pipeline")]
    pub out: PathBuf,
    /// Where dataset versions live.
    #[arg(long, default_value = "datasets")]
    pub datasets: PathBuf,
    /// Where model directories live.
    #[arg(long, default_value = "models")]
    pub models: PathBuf,
    #[command(flatten)]
    pub config: ConfigArgs,
}

/// Options of a collection (defaults from `configs/collection.ron`).
#[derive(Debug, Args, Clone)]
pub struct CollectArgs {
    /// Number of episodes [default: 200].
    #[arg(long)]
    pub episodes: Option<usize>,
    /// Tracks: `all`, a shipped name, a centerline CSV path, generated circuits (`synthetic:N`,
    /// `synthetic:A..B` for A to B−1, `esses:N`, `esses:A..B`), or several separated by commas;
    /// episodes are spread over them round-robin, and a track named twice gets twice the
    /// episodes [default: configs/collection.ron, `all,Montreal,synthetic:0..24`].
    #[arg(long)]
    pub track: Option<String>,
    /// Seed of episode 0; episode i uses BASE+i, so disjoint ranges never repeat a scenario [default: 0].
    #[arg(long, value_name = "BASE")]
    pub seed: Option<u64>,
    /// Parallel episodes [default: all cores].
    #[arg(long)]
    pub workers: Option<usize>,
    /// Run directory [default: runs/collect-<hash of the settings>, so the same command resumes].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Start mode [default: random].
    #[arg(long, value_enum)]
    pub start: Option<StartArg>,
    /// Episode goal in laps [default: configs/collection.ron, 0.5].
    #[arg(long)]
    pub laps: Option<f64>,
    #[command(flatten)]
    pub config: ConfigArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StartArg {
    /// On the centerline at s = 0, at rest.
    Grid,
    /// Random arc length, lateral offset, heading and speed from the seed.
    Random,
}

impl From<StartArg> for StartMode {
    fn from(s: StartArg) -> Self {
        match s {
            StartArg::Grid => Self::Grid,
            StartArg::Random => Self::Random,
        }
    }
}

/// Flags given on the command line, as overrides in the config grammar.
#[derive(Default)]
struct Flags(Vec<String>);

impl Flags {
    /// `key=value` when the flag was given.
    fn set(mut self, key: &str, value: Option<impl Display>) -> Self {
        if let Some(v) = value {
            self.0.push(format!("{key}={v}"));
        }
        self
    }

    /// `key='value'`: a string that may hold commas.
    fn quoted(self, key: &str, value: Option<&String>) -> Self {
        self.set(key, value.map(|v| format!("'{v}'")))
    }
}

impl CollectArgs {
    /// The flags as `collection.*` overrides.
    pub fn overrides(&self) -> Vec<String> {
        let start = self.start.map(|s| match s {
            StartArg::Grid => "Grid",
            StartArg::Random => "Random",
        });
        Flags::default()
            .set("collection.episodes", self.episodes)
            .set("collection.seed", self.seed)
            .quoted("collection.tracks", self.track.as_ref())
            .set("collection.workers", self.workers)
            .set("collection.laps", self.laps)
            .set("collection.start", start)
            .0
    }
}

impl TrainArgs {
    /// The flags as `training.*` and `model.*` overrides.
    pub fn overrides(&self) -> Vec<String> {
        Flags::default()
            .set("training.epochs", self.epochs)
            .set("model.architecture", self.arch.map(ArchArg::config_name))
            .set("model.outputs", self.outputs)
            .0
    }
}

impl EvaluateArgs {
    /// The flags as `evaluation.*` overrides.
    pub fn overrides(&self) -> Vec<String> {
        Flags::default()
            .quoted("evaluation.tracks", self.track.as_ref())
            .set("evaluation.episodes_per_track", self.episodes)
            .set("evaluation.seed", self.seed)
            .set("evaluation.laps", self.laps)
            .set("evaluation.workers", self.workers)
            .set(
                "evaluation.expert_reference",
                self.no_expert.then_some(false),
            )
            .0
    }
}

impl PipelineArgs {
    /// The flags as overrides (`--track` sets both the collection's and the evaluation's).
    pub fn overrides(&self) -> Vec<String> {
        Flags::default()
            .set("training.epochs", self.epochs)
            .set("model.architecture", self.arch.map(ArchArg::config_name))
            .quoted("collection.tracks", self.track.as_ref())
            .quoted("evaluation.tracks", self.track.as_ref())
            .set("evaluation.episodes_per_track", self.eval_episodes)
            .0
    }

    /// The options that are not config keys.
    pub fn plan(&self) -> crate::stages::pipeline::PipelinePlan {
        crate::stages::pipeline::PipelinePlan {
            rs_train: self.rs_train,
            rs_val: self.rs_val,
            device: self.device.clone(),
            out: self.out.clone(),
            datasets: self.datasets.clone(),
            models: self.models.clone(),
        }
    }
}

#[derive(Debug, Args)]
pub struct DriveArgs {
    #[command(flatten)]
    pub sim: SimArgs,
    /// Laps to drive.
    #[arg(long, default_value_t = 2.0)]
    pub laps: f64,
    /// Start mode.
    #[arg(long, value_enum, default_value_t = StartArg::Grid)]
    pub start: StartArg,
    /// Episode seed (start draw and LiDAR noise).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Simulator speed: steps/s on one core (1 car, 1080-beam scan every 0.01 s step, expert
    /// driving) and LiDAR cost per beam. Reference, measured on another machine (AMD EPYC):
    /// f1tenth_gym ≈ 6,950 steps/s per core, 92 µs/scan.
    Sim(BenchSimArgs),
    /// Collection speed: the default collection with 1 and with 2 workers (wall time,
    /// episodes/s, steps/s, MB written, speed-up). Targets: 200 episodes ≤ 20 s, ≥ 1.85× on 2 cores.
    Collect(BenchCollectArgs),
    /// LiDAR casters compared: rapier's query pipeline (bevy_rapier2d 0.36 / rapier 0.35) versus
    /// the simulation core's caster, on the same poses of an expert lap; time per scan and the
    /// largest range difference.
    Lidar(BenchLidarArgs),
    /// Training throughput (samples/s, batch 64, AdamW, all cores) and time per epoch of a dataset.
    /// Reference, measured on another machine (AMD EPYC): PyTorch CPU ≈ 8,600 samples/s with 2
    /// threads (12,800 with its fused AdamW); `--pytorch` measures it in the same run.
    Train(BenchTrainArgs),
    /// Batch-1 inference latency of a model directory on every code path this CPU has.
    Infer(BenchInferArgs),
}

#[derive(Debug, Args)]
pub struct BenchTrainArgs {
    /// Dataset version whose epoch time to estimate [default: synthetic scans].
    #[arg(long)]
    pub dataset: Option<PathBuf>,
    /// Samples to train on (synthetic data).
    #[arg(long, default_value_t = 32_000)]
    pub samples: usize,
    /// Epochs; the first is a warm-up and the median of the others is reported.
    #[arg(long, default_value_t = 4)]
    pub epochs: usize,
    /// Also time Burn's autodiff backward pass (the baseline) on the same data.
    #[arg(long)]
    pub compare_burn: bool,
    /// Time every code path that this CPU has (avx512, avx2, neon, burn, portable) side by side.
    #[arg(long)]
    pub all_paths: bool,
    /// Network.
    #[arg(long, value_enum, default_value_t = ArchArg::TinyLidarNet)]
    pub arch: ArchArg,
    /// Batch size.
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// A Python interpreter with torch: also trains the same network with PyTorch
    /// (benches/pytorch_reference.py, on as many threads, same samples, epochs and batch) in
    /// this run, and prints the ratio.
    #[arg(long, value_name = "PYTHON")]
    pub pytorch: Option<PathBuf>,
    /// Measurement rounds, interleaved: each round times raceloop (and PyTorch with
    /// `--pytorch`) again; the per-round ratios and their median are printed. On a noisy
    /// machine, compare within a round.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub rounds: u32,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BenchInferArgs {
    /// Model directory.
    #[arg(long, default_value = "models/default")]
    pub model: PathBuf,
    /// Timed calls.
    #[arg(long, default_value_t = 5000)]
    pub calls: usize,
    /// A Python interpreter with torch: also times the same network's batch-1 forward pass in
    /// PyTorch (benches/pytorch_reference.py, one thread) in this run, and prints the ratio.
    #[arg(long, value_name = "PYTHON")]
    pub pytorch: Option<PathBuf>,
    /// Measurement rounds, interleaved: each round times every path (and PyTorch with
    /// `--pytorch`) again; the per-round ratios and their median are printed.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub rounds: u32,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BenchLidarArgs {
    /// Track.
    #[arg(long, default_value = "Austin")]
    pub track: String,
    /// Poses (scans) to time.
    #[arg(long, default_value_t = 500)]
    pub poses: usize,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BenchCollectArgs {
    /// Episodes per measurement.
    #[arg(long, default_value_t = 200)]
    pub episodes: usize,
    /// Scratch directory for the runs (removed afterwards).
    #[arg(long, default_value = "runs/bench-collect")]
    pub out: PathBuf,
    /// Directory of RON config files.
    #[arg(long, default_value = "configs")]
    pub configs: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BenchSimArgs {
    /// Track to drive on.
    #[arg(long, default_value = "Austin")]
    pub track: String,
    /// Physics steps to time.
    #[arg(long, default_value_t = 200_000)]
    pub steps: u64,
    /// Obstacles per 100 m for the second run (the expert avoiding them; `experiment=obstacles`
    /// uses 2).
    #[arg(long, default_value_t = 2.0)]
    pub obstacles: f64,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}
