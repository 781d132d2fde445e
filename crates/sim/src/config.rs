//! The simulation configuration, one RON file per area in `configs/`.
//!
//! The shipped files are compiled in as the defaults ([`SimConfig::default`]), so the binary
//! works from any directory; the app reads a config directory with overrides on top.

use std::path::Path;

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::episode::EpisodeConfig;
use crate::error::{Result, SimError};
use crate::expert::ExpertConfig;
use crate::lidar::LidarConfig;
use crate::scenario::ScenarioConfig;
use crate::vehicle::VehicleParams;

/// Physics settings (`configs/sim.ron`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhysicsConfig {
    /// Physics time step, s (f1tenth_gym: 0.01).
    pub dt: f64,
}

/// Everything the simulation core needs besides the track.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimConfig {
    /// Physics settings.
    pub sim: PhysicsConfig,
    /// Vehicle parameters.
    pub vehicle: VehicleParams,
    /// LiDAR.
    pub lidar: LidarConfig,
    /// Pure Pursuit expert.
    pub expert: ExpertConfig,
    /// Episode rules and starts.
    pub episode: EpisodeConfig,
    /// Obstacles beside the track; left out of the text when it is the shipped (obstacle-free)
    /// default, so configs from before scenarios parse and hash as they did.
    #[serde(default, skip_serializing_if = "ScenarioConfig::is_default")]
    pub scenario: ScenarioConfig,
}

/// The shipped `configs/<area>.ron` texts of the simulation's areas, compiled in. The app's
/// one area table refers to these rather than including the files a second time.
pub mod shipped {
    /// `configs/sim.ron`.
    pub const SIM: &str = include_str!("../../../configs/sim.ron");
    /// `configs/vehicle.ron`.
    pub const VEHICLE: &str = include_str!("../../../configs/vehicle.ron");
    /// `configs/lidar.ron`.
    pub const LIDAR: &str = include_str!("../../../configs/lidar.ron");
    /// `configs/expert.ron`.
    pub const EXPERT: &str = include_str!("../../../configs/expert.ron");
    /// `configs/episode.ron`.
    pub const EPISODE: &str = include_str!("../../../configs/episode.ron");
    /// `configs/scenario.ron`.
    pub const SCENARIO: &str = include_str!("../../../configs/scenario.ron");
}

/// Parses RON text; errors name `path`, line, column and the dotted path of the offending field.
///
/// # Errors
/// [`SimError::Config`].
pub fn parse_ron<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T> {
    let to_err = |e: ron::error::SpannedError, field: String| SimError::Config {
        path: path.to_path_buf(),
        line: e.span.start.line,
        column: e.span.start.col,
        message: if field.is_empty() || field == "." || field == "?" {
            e.code.to_string()
        } else {
            format!("field `{field}`: {}", e.code)
        },
    };
    let mut de = ron::Deserializer::from_str(text).map_err(|e| to_err(e, String::new()))?;
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = e.path().to_string();
        to_err(de.span_error(e.into_inner()), field)
    })?;
    de.end()
        .map_err(|e| to_err(de.span_error(e), String::new()))?;
    Ok(value)
}

impl Default for ScenarioConfig {
    /// The shipped `configs/scenario.ron`: no obstacles (density 0).
    fn default() -> Self {
        parse_shipped("scenario.ron", shipped::SCENARIO)
            .expect("the shipped scenario config parses")
    }
}

/// Parses the shipped text of `configs/<file>`.
fn parse_shipped<T: DeserializeOwned>(file: &str, text: &str) -> Result<T> {
    parse_ron(&Path::new("configs").join(file), text)
}

impl SimConfig {
    /// Parses a complete config (as saved in an episode's `config.ron`) and validates it.
    ///
    /// # Errors
    /// Parse errors ([`SimError::Config`] with file, line and field) and range errors.
    pub fn from_ron(path: &Path, text: &str) -> Result<Self> {
        let cfg: Self = parse_ron(path, text)?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn compose() -> Result<Self> {
        let cfg = Self {
            sim: parse_shipped("sim.ron", shipped::SIM)?,
            vehicle: parse_shipped("vehicle.ron", shipped::VEHICLE)?,
            lidar: parse_shipped("lidar.ron", shipped::LIDAR)?,
            expert: parse_shipped("expert.ron", shipped::EXPERT)?,
            episode: parse_shipped("episode.ron", shipped::EPISODE)?,
            scenario: parse_shipped("scenario.ron", shipped::SCENARIO)?,
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks every area's value ranges.
    ///
    /// # Errors
    /// [`SimError::ConfigValue`] naming the field.
    pub fn validate(&self) -> Result<()> {
        if !(self.sim.dt > 0.0 && self.sim.dt <= 0.1) {
            return Err(SimError::ConfigValue {
                field: "sim.dt".into(),
                message: format!("must be in (0, 0.1] s, found {}", self.sim.dt),
            });
        }
        self.vehicle.validate()?;
        self.lidar.validate()?;
        self.expert.validate()?;
        self.episode.validate()?;
        self.scenario.validate()
    }

    /// The config as pretty RON text.
    pub fn to_ron(&self) -> String {
        ron::ser::to_string_pretty(self, ron::ser::PrettyConfig::default())
            .expect("config serialises")
    }
}

impl Default for SimConfig {
    /// The shipped `configs/*.ron`.
    fn default() -> Self {
        Self::compose().expect("shipped configs are valid")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_defaults_parse_and_round_trip() {
        let cfg = SimConfig::default();
        assert_eq!(cfg.lidar.num_beams, 1080);
        assert_eq!(cfg.vehicle.C_Sf, 4.718);
        let again = SimConfig::from_ron(Path::new("x.ron"), &cfg.to_ron()).unwrap();
        assert_eq!(cfg, again);
    }
}
