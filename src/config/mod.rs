//! The resolved configuration: every area's RON file from `configs/` (the shipped files are
//! compiled in as defaults), then an experiment file, then command-line overrides in Hydra's
//! grammar ([`overrides`]). Every run saves the result as `config.ron` with the
//! overrides it was given (`overrides.ron`).

pub mod overrides;
pub mod stages;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use raceloop_learn::{ModelConfig, TrainConfig};
use raceloop_sim::config::{PhysicsConfig, SimConfig, parse_ron, shipped};
use raceloop_sim::{EpisodeConfig, ExpertConfig, LidarConfig, ScenarioConfig, VehicleParams};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

pub use overrides::expand_sweeps;
pub use stages::{CollectionConfig, DaggerConfig, DatasetConfig, EvaluationConfig};

/// Every area of the configuration; the field names are the override keys' first segment
/// (`training.lr=3e-4`) and the file names (`configs/training.ron`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Physics (`sim.ron`).
    pub sim: PhysicsConfig,
    /// Vehicle parameters, f1tenth_gym names and SI units (`vehicle.ron`).
    pub vehicle: VehicleParams,
    /// LiDAR (`lidar.ron`).
    pub lidar: LidarConfig,
    /// Pure Pursuit expert (`expert.ron`).
    pub expert: ExpertConfig,
    /// Episode rules and starts (`episode.ron`).
    pub episode: EpisodeConfig,
    /// Obstacles (`scenario.ron`); left out of `config.ron` and the config hash while it is the
    /// shipped obstacle-free default, so that those configs are what they were before it existed.
    #[serde(default, skip_serializing_if = "ScenarioConfig::is_default")]
    pub scenario: ScenarioConfig,
    /// Collection (`collection.ron`).
    pub collection: CollectionConfig,
    /// DAgger rounds of `raceloop pipeline` (`dagger.ron`); left out of `config.ron` and the
    /// config hash while off with the shipped settings.
    #[serde(default, skip_serializing_if = "DaggerConfig::is_off")]
    pub dagger: DaggerConfig,
    /// Dataset extraction (`dataset.ron`).
    pub dataset: DatasetConfig,
    /// Network (`model.ron`).
    pub model: ModelConfig,
    /// Training (`training.ron`).
    pub training: TrainConfig,
    /// Closed-loop evaluation (`evaluation.ron`).
    pub evaluation: EvaluationConfig,
}

/// Parses one area file as its type (for file, line and field errors) into a JSON tree.
type AreaParser = fn(&Path, &str) -> Result<Value>;

fn typed<T: DeserializeOwned + Serialize>(path: &Path, text: &str) -> Result<Value> {
    Ok(serde_json::to_value(parse_ron::<T>(path, text)?)?)
}

/// The expert area with its `avoidance` settings, which saved configs leave out while they are
/// the defaults but which overrides (`expert.avoidance.clearance=…`) must find.
fn expert_area(path: &Path, text: &str) -> Result<Value> {
    let expert = parse_ron::<ExpertConfig>(path, text)?;
    let mut tree = serde_json::to_value(&expert)?;
    tree["avoidance"] = serde_json::to_value(&expert.avoidance)?;
    Ok(tree)
}

/// The model area with its `members` and `speed_input`, which saved configs leave out at their
/// defaults (1, false) but which overrides (`model.members=3`, `model.speed_input=true`) must
/// find.
fn model_area(path: &Path, text: &str) -> Result<Value> {
    let model = parse_ron::<ModelConfig>(path, text)?;
    let mut tree = serde_json::to_value(&model)?;
    tree["members"] = model.members.into();
    tree["speed_input"] = model.speed_input.into();
    Ok(tree)
}

/// The one area table: `(area, shipped text, parser)`, in [`Config`]'s field order. The
/// simulation's areas are the core's compiled-in texts; the stages' are compiled in here.
const AREAS: [(&str, &str, AreaParser); 12] = [
    ("sim", shipped::SIM, typed::<PhysicsConfig>),
    ("vehicle", shipped::VEHICLE, typed::<VehicleParams>),
    ("lidar", shipped::LIDAR, typed::<LidarConfig>),
    ("expert", shipped::EXPERT, expert_area),
    ("episode", shipped::EPISODE, typed::<EpisodeConfig>),
    ("scenario", shipped::SCENARIO, typed::<ScenarioConfig>),
    (
        "collection",
        include_str!("../../configs/collection.ron"),
        typed::<CollectionConfig>,
    ),
    (
        "dagger",
        include_str!("../../configs/dagger.ron"),
        typed::<DaggerConfig>,
    ),
    (
        "dataset",
        include_str!("../../configs/dataset.ron"),
        typed::<DatasetConfig>,
    ),
    ("model", include_str!("../../configs/model.ron"), model_area),
    (
        "training",
        include_str!("../../configs/training.ron"),
        typed::<TrainConfig>,
    ),
    (
        "evaluation",
        include_str!("../../configs/evaluation.ron"),
        typed::<EvaluationConfig>,
    ),
];

/// Shipped experiment files (`configs/experiment/NAME.ron`), used where the directory has none.
const EXPERIMENTS: [(&str, &str); 5] = [
    (
        "data_collection_parallel",
        include_str!("../../configs/experiment/data_collection_parallel.ron"),
    ),
    ("quick", include_str!("../../configs/experiment/quick.ron")),
    (
        "steering_only",
        include_str!("../../configs/experiment/steering_only.ron"),
    ),
    (
        "cross_track",
        include_str!("../../configs/experiment/cross_track.ron"),
    ),
    (
        "obstacles",
        include_str!("../../configs/experiment/obstacles.ron"),
    ),
];

/// An experiment file: a named set of overrides applied before the command line's.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Experiment {
    /// What the experiment is for.
    #[allow(dead_code)]
    description: String,
    /// Overrides in the command-line grammar.
    overrides: Vec<String>,
}

/// A configuration with the overrides that produced it.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    /// The typed, validated configuration.
    pub config: Config,
    /// The overrides, experiment first, as given.
    pub overrides: Vec<String>,
    /// The config directory it was read from.
    pub dir: PathBuf,
}

impl Resolved {
    /// Reads `dir/<area>.ron` for every area (the shipped default where a file is absent), then
    /// applies `experiment=NAME` (from `dir/experiment/NAME.ron` or the shipped experiments) and
    /// the other overrides in order. The default `configs` directory may be absent (running
    /// outside the repository); any other missing directory is an error.
    ///
    /// # Errors
    /// Read and parse errors naming file, line, column and field; override errors naming the
    /// override; type and range errors after the overrides, naming the field and the override.
    pub fn load(dir: &Path, overrides: &[String]) -> Result<Self> {
        if !dir.is_dir() && dir != Path::new("configs") {
            bail!("config directory {} not found", dir.display());
        }
        let mut tree = serde_json::Map::new();
        for (area, shipped, parse) in AREAS {
            let file = format!("{area}.ron");
            let path = dir.join(&file);
            let value = if path.is_file() {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?;
                parse(&path, &text)?
            } else {
                parse(&Path::new("configs").join(&file), shipped)?
            };
            tree.insert(area.to_string(), value);
        }
        let mut tree = Value::Object(tree);
        let (experiments, rest): (Vec<&String>, Vec<&String>) = overrides
            .iter()
            .partition(|o| o.strip_prefix('+').unwrap_or(o).starts_with("experiment="));
        let mut applied = Vec::new();
        for e in experiments {
            let name = e.split_once('=').expect("has =").1;
            applied.push(e.clone());
            for text in experiment(dir, name)? {
                apply(&mut tree, &text).with_context(|| format!("in experiment `{name}`"))?;
            }
        }
        for text in rest {
            apply(&mut tree, text)?;
            applied.push(text.clone());
        }
        let config: Config = serde_path_to_error::deserialize(&tree).map_err(|e| {
            let field = e.path().to_string();
            // The last override that touched the field set its value.
            let culprit = applied
                .iter()
                .rev()
                .find(|o| {
                    let key = o
                        .trim_start_matches(['+', '~'])
                        .split('=')
                        .next()
                        .unwrap_or("");
                    field.starts_with(key) || key.starts_with(&field)
                })
                .map(|o| format!(" (from override `{o}`)"))
                .unwrap_or_default();
            anyhow!("config field `{field}`: {}{culprit}", e.into_inner())
        })?;
        let resolved = Self {
            config,
            overrides: applied,
            dir: dir.to_path_buf(),
        };
        let source = if resolved.overrides.is_empty() {
            format!("in the config from {}", dir.display())
        } else {
            format!("in the config from {} with the overrides", dir.display())
        };
        resolved.sim().validate().context(source)?;
        resolved.config.dataset.validate()?;
        resolved.config.dagger.validate()?;
        Ok(resolved)
    }

    /// The same directory and overrides, then `extra`.
    ///
    /// # Errors
    /// As [`Self::load`].
    pub fn with_overrides(&self, extra: &[String]) -> Result<Self> {
        Self::load(&self.dir, &[self.overrides.as_slice(), extra].concat())
    }

    /// The simulation core's part of the config.
    pub fn sim(&self) -> SimConfig {
        let c = &self.config;
        SimConfig {
            sim: c.sim.clone(),
            vehicle: c.vehicle.clone(),
            lidar: c.lidar.clone(),
            expert: c.expert.clone(),
            episode: c.episode.clone(),
            scenario: c.scenario.clone(),
        }
    }

    /// The config as pretty RON (what `config.ron` holds).
    pub fn to_ron(&self) -> String {
        ron::ser::to_string_pretty(&self.config, ron::ser::PrettyConfig::default())
            .expect("configs serialise")
    }

    /// A short hash of the resolved config.
    pub fn hash(&self) -> String {
        digest(&self.to_ron())
    }

    /// The config flattened to `(dotted key, value)` pairs, in key order: MLflow params.
    pub fn params(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        flatten(
            "",
            &serde_json::to_value(&self.config).expect("configs serialise"),
            &mut out,
        );
        out
    }

    /// Writes `config.ron` and `overrides.ron` into `dir`.
    ///
    /// # Errors
    /// I/O errors.
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        raceloop_files::write(&dir.join("config.ron"), self.to_ron())?;
        raceloop_files::write(
            &dir.join("overrides.ron"),
            ron::ser::to_string_pretty(&self.overrides, ron::ser::PrettyConfig::default())?,
        )?;
        Ok(())
    }
}

/// A short hex digest (12 hex digits of SHA-256) of `text`: config hashes and run-directory keys.
pub fn digest(text: &str) -> String {
    hex(&Sha256::digest(text.as_bytes())[..6])
}

/// `bytes` as lower-case hex digits.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn apply(tree: &mut Value, text: &str) -> Result<()> {
    overrides::apply(tree, &overrides::parse(text)?)
}

/// The overrides of experiment `name`.
fn experiment(dir: &Path, name: &str) -> Result<Vec<String>> {
    let path: PathBuf = dir.join("experiment").join(format!("{name}.ron"));
    let shipped = EXPERIMENTS.iter().find(|(n, _)| *n == name);
    let text = if path.is_file() {
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?
    } else if let Some((_, text)) = shipped {
        text.to_string()
    } else {
        let mut names: Vec<String> = EXPERIMENTS.iter().map(|(n, _)| n.to_string()).collect();
        if let Ok(entries) = std::fs::read_dir(dir.join("experiment")) {
            names.extend(entries.filter_map(|e| {
                let p = e.ok()?.path();
                if p.extension()? == "ron" {
                    Some(p.file_stem()?.to_string_lossy().into_owned())
                } else {
                    None
                }
            }));
        }
        names.sort();
        names.dedup();
        bail!(
            "no experiment `{name}` ({} not found); experiments: {}",
            path.display(),
            names.join(", ")
        );
    };
    Ok(parse_ron::<Experiment>(&path, &text)?.overrides)
}

fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        Value::String(s) => out.push((prefix.to_string(), s.clone())),
        other => out.push((prefix.to_string(), other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(overrides: &[&str]) -> Result<Resolved> {
        let o: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        Resolved::load(
            &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("configs"),
            &o,
        )
    }

    #[test]
    fn shipped_configs_resolve_and_round_trip() {
        let r = load(&[]).unwrap();
        let again: Config = parse_ron(Path::new("config.ron"), &r.to_ron()).unwrap();
        assert_eq!(again, r.config);
        let params = r.params();
        assert!(
            params.contains(&("training.lr".into(), "0.001".into())),
            "{params:?}"
        );
        assert!(
            params.contains(&("expert.speed.Friction.mu_fraction".into(), "0.75".into())),
            "{params:?}"
        );
        assert!(params.contains(&("training.loss".into(), "Mse".into())));
        let steering_only = load(&["experiment=steering_only"]).unwrap();
        assert!(
            steering_only
                .params()
                .contains(&("expert.speed.Fixed".into(), "3.5".into()))
        );
        assert_eq!(steering_only.config.model.outputs, 1);
    }

    #[test]
    fn overrides_change_typed_fields() {
        let r = load(&[
            "training.lr=3e-4",
            "training.schedule=Constant",
            "expert.speed=Fixed(4.0)",
            "collection.tracks='Austin,Monza'",
            "model.architecture=Mlp",
        ])
        .unwrap();
        assert_eq!(r.config.training.lr, 3e-4);
        assert_eq!(r.config.collection.tracks, "Austin,Monza");
        assert_eq!(
            r.config.model.architecture,
            raceloop_learn::Architecture::Mlp
        );
        assert_ne!(r.hash(), load(&[]).unwrap().hash());
    }

    #[test]
    fn bad_overrides_fail_with_the_field_and_the_override() {
        let e = load(&["training.epochs=many"]).unwrap_err().to_string();
        assert!(
            e.contains("`training.epochs`") && e.contains("training.epochs=many"),
            "{e}"
        );
        let e = format!("{:#}", load(&["training.lrr=1"]).unwrap_err());
        assert!(
            e.contains("valid keys at `training`:") && e.contains("batch_size"),
            "{e}"
        );
        let e = load(&["~training.lr"]).unwrap_err().to_string();
        assert!(e.contains("missing field `lr`"), "{e}");
        let e = format!("{:#}", load(&["+training.extra=1"]).unwrap_err());
        assert!(e.contains("unknown field `extra`"), "{e}");
        let e = format!("{:#}", load(&["lidar.num_beams=0"]).unwrap_err());
        assert!(e.contains("beams"), "{e}");
    }

    #[test]
    fn bad_files_name_file_line_and_field() {
        let dir = std::env::temp_dir().join(format!("raceloop-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let lidar = AREAS[2].1;
        for (text, expected) in [
            (
                lidar.replace("num_beams", "num_beamz"),
                ["lidar.ron:", "num_beamz"],
            ),
            (
                lidar.replace("1080", "\"many\""),
                ["lidar.ron:3:", "field `num_beams`"],
            ),
            (
                lidar.replace("30.0", "-1.0"),
                ["lidar.max_range", "lidar.max_range"],
            ),
        ] {
            std::fs::write(dir.join("lidar.ron"), text).unwrap();
            let e = format!("{:#}", Resolved::load(&dir, &[]).unwrap_err());
            assert!(expected.iter().all(|x| e.contains(x)), "{e}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn with_overrides_adds_to_the_same_source() {
        let r = load(&["experiment=data_collection_parallel"]).unwrap();
        let more = r.with_overrides(&["collection.seed=7".into()]).unwrap();
        assert_eq!(more.config.collection.seed, 7);
        assert_eq!(more.config.collection.episodes, 2000);
        assert_eq!(more.dir, r.dir);
    }

    #[test]
    fn experiments_apply_before_the_command_line() {
        let r = load(&[
            "collection.episodes=7",
            "experiment=data_collection_parallel",
        ])
        .unwrap();
        assert_eq!(r.config.collection.episodes, 7);
        assert_eq!(r.overrides[0], "experiment=data_collection_parallel");
        let e = format!("{:#}", load(&["experiment=nope"]).unwrap_err());
        assert!(
            e.contains(
                "experiments: cross_track, data_collection_parallel, obstacles, quick, steering_only"
            ),
            "{e}"
        );
    }

    /// Sections that saved configs leave out while default (`expert.avoidance`, `dagger`) can
    /// still be overridden, and appear in the hash only once they differ.
    #[test]
    fn sections_left_out_while_default_take_overrides() {
        let plain = load(&[]).unwrap();
        let r = load(&["expert.avoidance.clearance=0.4", "dagger.iterations=2"]).unwrap();
        assert_eq!(r.config.expert.avoidance.clearance, 0.4);
        assert_eq!(r.config.dagger.iterations, 2);
        assert_ne!(r.hash(), plain.hash());
        let same = load(&["expert.avoidance.clearance=0.25", "dagger.iterations=0"]).unwrap();
        assert_eq!(same.hash(), plain.hash());
        let e = format!(
            "{:#}",
            load(&["dagger.episodes=0", "dagger.iterations=1"]).unwrap_err()
        );
        assert!(e.contains("dagger.episodes"), "{e}");
    }
}
