//! ONNX export of a model directory: `model.onnx`, a self-contained graph from raw ranges (m) to
//! the driving command, so that a consumer needs nothing but the file.
//!
//! The graph is `scan` `[batch, num_beams]` (ranges, m; any batch size) → `action`
//! `[batch, 2]` (steering, rad, positive left; speed, m/s); a model that reads the ego speed
//! ([`ModelConfig::speed_input`]) has a second input, `speed` `[batch, 1]` (m/s, the measured
//! longitudinal speed). ONNX opset 18, written by
//! `burn-onnx`'s `OnnxExporter` from a capture of Burn's forward pass. The pre- and
//! post-processing of [`Policy`](crate::Policy) are part of it:
//! `x = (min(scan, range_clip) − scan_mean) / scan_std` (and the speed normalised as
//! [`Stats::normalize_speed_input`]), the network, then
//! `action = y · W + b` with `W`, `b` from `stats.json` (for an ensemble, `y` is the trimmed
//! mean of the members' outputs, [`forward_ensemble`]): steering = `y₀ · steering_scale`,
//! speed = `y₁ · speed_scale`, or the training mean speed for a steering-only (1-output) model.
//! The model's `model.json` and `stats.json` are also stored in the file's `metadata_props`
//! (`raceloop.model`, `raceloop.stats`).

use std::path::Path;

use burn::module::Param;
use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::TensorData;
use burn::tensor::activation::relu;
use burn_onnx::export::{AxisSpec, InputSpec, OnnxExporter};
use onnx_ir::ModelProto;
use protobuf::Message;

use crate::dataset::Stats;
use crate::error::{LearnError, Result};
use crate::model::{Model, ModelConfig, forward_ensemble, forward_ensemble_parts};
use crate::policy::load_dir;

/// The ONNX file in a model directory.
pub const ONNX_FILE: &str = "model.onnx";
/// Name of the graph's input: raw ranges `[batch, num_beams]`, m.
pub const INPUT_NAME: &str = "scan";
/// Name of the graph's second input, for a model that reads the ego speed: `[batch, 1]`, m/s.
pub const SPEED_INPUT_NAME: &str = "speed";
/// Name of the graph's output: `[batch, 2]`, steering (rad) and speed (m/s).
pub const OUTPUT_NAME: &str = "action";
/// Name of the graph's dynamic batch axis.
pub const BATCH_AXIS: &str = "batch";

/// The deployed function: raw ranges → command, everything [`crate::Policy`] does.
#[derive(Module, Debug)]
struct Deployed {
    /// One network, or an ensemble's members.
    members: Vec<Model>,
    /// `[outputs] → [steering rad, speed m/s]`: weight `[outputs, 2]`, bias `[2]`.
    action: Linear,
    range_clip: f32,
    scan_mean: f32,
    inv_scan_std: f32,
    speed_mean: f32,
    inv_speed_std: f32,
}

impl Deployed {
    fn new(members: Vec<Model>, config: &ModelConfig, stats: &Stats, device: &Device) -> Self {
        let (weight, bias) = if config.outputs == 1 {
            (
                vec![stats.steering_scale, 0.0],
                [0.0, stats.speed_mean_std[0]],
            )
        } else {
            (
                vec![stats.steering_scale, 0.0, 0.0, stats.speed_scale],
                [0.0, 0.0],
            )
        };
        let weight = Tensor::<2>::from_data(TensorData::new(weight, [config.outputs, 2]), device);
        let bias = Tensor::<1>::from_data(TensorData::new(bias.to_vec(), [2]), device);
        Self {
            members,
            action: Linear {
                weight: Param::from_tensor(weight),
                bias: Some(Param::from_tensor(bias)),
            },
            range_clip: stats.range_clip,
            scan_mean: stats.scan_mean,
            // The same f32 reciprocals that `Stats::normalize_scan` and
            // `Stats::normalize_speed_input` multiply by.
            inv_scan_std: 1.0 / stats.scan_std,
            speed_mean: stats.speed_mean_std[0],
            inv_speed_std: stats.inv_speed_input_std(),
        }
    }

    fn normalized(&self, scan: Tensor<2>) -> Tensor<2> {
        // min(scan, clip) as scan − relu(scan − clip): exact below the clip, and made of
        // operations that the exporter lowers (it has no Clip/Min).
        let over = relu(scan.clone().sub_scalar(self.range_clip));
        (scan - over)
            .sub_scalar(self.scan_mean)
            .mul_scalar(self.inv_scan_std)
    }

    fn forward(&self, scan: Tensor<2>) -> Tensor<2> {
        let x = self.normalized(scan);
        self.action
            .forward(forward_ensemble(&self.members, x.unsqueeze_dim(1)))
    }

    /// The scan followed by the speed, `[batch, num_beams + 1]`, split with Gather (a slice of
    /// the captured graph would fix its batch axis).
    fn forward_joined(&self, joined: Tensor<2>) -> Tensor<2> {
        let beams = joined.dims()[1] - 1;
        let device = joined.device();
        let index = |range: std::ops::Range<usize>| {
            let values: Vec<i64> = range.map(|i| i as i64).collect();
            let n = values.len();
            Tensor::<1, Int>::from_data(TensorData::new(values, [n]), &device)
        };
        let scan = joined.clone().select(1, index(0..beams));
        let speed = joined
            .select(1, index(beams..beams + 1))
            .sub_scalar(self.speed_mean)
            .mul_scalar(self.inv_speed_std);
        let x = self.normalized(scan).unsqueeze_dim(1);
        self.action
            .forward(forward_ensemble_parts(&self.members, x, Some(speed)))
    }
}

/// What [`export`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Exported {
    /// Size of `model.onnx`, bytes.
    pub bytes: usize,
    /// Wall time of the export (capture, lowering, writing), s.
    pub seconds: f64,
}

/// Writes `dir/model.onnx` for the model directory `dir` (weights, `model.json`, `stats.json`),
/// through a temporary file, so that a failed export leaves no partial file.
///
/// # Errors
/// A missing or malformed model directory (named), or an export the exporter refuses.
pub fn export(dir: &Path) -> Result<Exported> {
    let t0 = std::time::Instant::now();
    let (members, config, stats) = load_dir(dir)?;
    let bytes = to_onnx(members, &config, &stats)?;
    raceloop_files::write(&dir.join(ONNX_FILE), &bytes)?;
    Ok(Exported {
        bytes: bytes.len(),
        seconds: t0.elapsed().as_secs_f64(),
    })
}

/// The ONNX protobuf of one network, or of an ensemble's `members` (in seed order), with
/// `stats`' normalisation (see the module docs).
///
/// # Errors
/// [`LearnError::Format`] when the exporter refuses the graph or the protobuf does not parse.
///
/// # Panics
/// With no members.
pub fn to_onnx(members: Vec<Model>, config: &ModelConfig, stats: &Stats) -> Result<Vec<u8>> {
    let device = Device::flex();
    let members = members.into_iter().map(|m| m.valid()).collect();
    let deployed = Deployed::new(members, config, stats, &device);
    let sample = |batch: usize| Tensor::<2>::ones([batch, config.inputs()], &device);
    let spec = InputSpec::new([AxisSpec::dynamic(BATCH_AXIS), AxisSpec::Static]);
    // The exporter tells a graph's batch axis apart only with one dynamic input, so a model
    // that reads the speed is captured with the scan and the speed joined, and the graph then
    // gets the two inputs and a Concat in front (`split_speed_input`).
    let onnx = OnnxExporter::new()
        .export_dynamic(&deployed, sample(2), sample(3), &[spec], |m, x| {
            if config.speed_input {
                m.forward_joined(x)
            } else {
                m.forward(x)
            }
        })
        .map_err(|e| LearnError::Format(format!("ONNX export: {e}")))?;
    let mut proto = ModelProto::parse_from_bytes(onnx.as_bytes())
        .map_err(|e| LearnError::Format(format!("ONNX export: re-reading the graph: {e}")))?;
    name_boundaries(&mut proto)?;
    if config.speed_input {
        split_speed_input(&mut proto, config.num_beams)?;
    }
    proto.producer_name = "raceloop".into();
    proto.producer_version = env!("CARGO_PKG_VERSION").into();
    proto.doc_string = format!(
        "{:?}{}: {INPUT_NAME} [batch, {}] ranges (m){} -> {OUTPUT_NAME} [batch, 2] \
         (steering rad, speed m/s); normalisation included",
        config.architecture,
        if config.members > 1 {
            format!(" ensemble of {}", config.members)
        } else {
            String::new()
        },
        config.num_beams,
        if config.speed_input {
            format!(", {SPEED_INPUT_NAME} [batch, 1] ego speed (m/s)")
        } else {
            String::new()
        }
    );
    for (key, value) in [
        ("raceloop.model", serde_json::to_string(config)),
        ("raceloop.stats", serde_json::to_string(stats)),
    ] {
        proto.metadata_props.push(Default::default());
        let entry = proto.metadata_props.last_mut().expect("just pushed");
        entry.key = key.into();
        entry.value = value.map_err(|e| LearnError::Format(format!("{key}: {e}")))?;
    }
    proto
        .write_to_bytes()
        .map_err(|e| LearnError::Format(format!("ONNX export: writing the graph: {e}")))
}

/// Renames the graph's one input to [`INPUT_NAME`] and one output to [`OUTPUT_NAME`], in every
/// node that uses them too, and names the output's batch axis like the input's.
fn name_boundaries(proto: &mut ModelProto) -> Result<()> {
    let graph = proto
        .graph
        .as_mut()
        .ok_or_else(|| LearnError::Format("ONNX export: the exporter wrote no graph".into()))?;
    if graph.input.len() != 1 || graph.output.len() != 1 {
        return Err(LearnError::Format(format!(
            "ONNX export: expected one input and one output, found {} and {}",
            graph.input.len(),
            graph.output.len()
        )));
    }
    let old_in = std::mem::replace(&mut graph.input[0].name, INPUT_NAME.into());
    let old_out = std::mem::replace(&mut graph.output[0].name, OUTPUT_NAME.into());
    for node in &mut graph.node {
        for name in node.input.iter_mut().chain(node.output.iter_mut()) {
            if *name == old_in {
                *name = INPUT_NAME.into();
            } else if *name == old_out {
                *name = OUTPUT_NAME.into();
            }
        }
    }
    if let Some(dims) = graph.output[0]
        .type_
        .as_mut()
        .and_then(|t| t.mut_tensor_type().shape.as_mut())
        .map(|s| &mut s.dim)
        && let Some(first) = dims.first_mut()
    {
        first.set_dim_param(BATCH_AXIS.into());
    }
    Ok(())
}

/// Turns the graph's joined input [`INPUT_NAME`] `[batch, num_beams + 1]` into the inputs
/// [`INPUT_NAME`] `[batch, num_beams]` and [`SPEED_INPUT_NAME`] `[batch, 1]`, joined by a
/// Concat node in front of the graph.
fn split_speed_input(proto: &mut ModelProto, num_beams: usize) -> Result<()> {
    let graph = proto
        .graph
        .as_mut()
        .ok_or_else(|| LearnError::Format("ONNX export: the exporter wrote no graph".into()))?;
    const JOINED: &str = "scan_and_speed";
    for node in &mut graph.node {
        for name in &mut node.input {
            if name == INPUT_NAME {
                *name = JOINED.into();
            }
        }
    }
    let mut scan = graph.input[0].clone();
    let mut speed = scan.clone();
    speed.name = SPEED_INPUT_NAME.into();
    for (value, width) in [(&mut scan, num_beams), (&mut speed, 1)] {
        let dims = &mut value
            .type_
            .mut_or_insert_default()
            .mut_tensor_type()
            .shape
            .mut_or_insert_default()
            .dim;
        if dims.len() != 2 {
            return Err(LearnError::Format(format!(
                "ONNX export: the joined input has {} axes, not 2",
                dims.len()
            )));
        }
        dims[1].set_dim_value(width as i64);
    }
    graph.input.clear();
    graph.input.push(scan);
    graph.input.push(speed);
    let mut concat = onnx_ir::NodeProto::new();
    concat.name = "join_scan_and_speed".into();
    concat.op_type = "Concat".into();
    concat.input = vec![INPUT_NAME.into(), SPEED_INPUT_NAME.into()];
    concat.output = vec![JOINED.into()];
    let mut axis = onnx_ir::AttributeProto::new();
    axis.name = "axis".into();
    axis.type_ = onnx_ir::AttributeType::INT.into();
    axis.i = 1;
    concat.attribute.push(axis);
    graph.node.insert(0, concat);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Architecture;

    fn stats() -> Stats {
        Stats {
            num_beams: 1080,
            range_clip: 30.0,
            scan_mean: 2.4,
            scan_std: 3.3,
            steering_scale: 0.52,
            speed_scale: 20.0,
            steering_mean_std: [0.0, 0.07],
            speed_mean_std: [3.5, 0.0],
            train_samples: 1,
            val_samples: 1,
        }
    }

    #[test]
    fn graph_has_named_boundaries_a_batch_axis_and_metadata() {
        let _turn = crate::model::BURN_RNG.lock();
        for (outputs, members, speed_input) in
            [(1, 1, false), (2, 1, false), (2, 3, false), (2, 1, true)]
        {
            let config = ModelConfig {
                architecture: Architecture::TinyLidarNet,
                num_beams: 1080,
                outputs,
                members,
                speed_input,
            };
            let models = (0..members).map(|_| config.init(&Device::flex())).collect();
            let bytes = to_onnx(models, &config, &stats()).expect("exports");
            let proto = ModelProto::parse_from_bytes(&bytes).expect("parses");
            let graph = proto.graph.as_ref().expect("graph");
            assert_eq!(graph.input[0].name, INPUT_NAME);

            assert_eq!(graph.output[0].name, OUTPUT_NAME);
            let produced: Vec<&String> = graph.node.iter().flat_map(|n| &n.output).collect();
            assert!(produced.contains(&&OUTPUT_NAME.to_string()));
            let dims = |v: &onnx_ir::ValueInfoProto| {
                v.type_
                    .tensor_type()
                    .shape
                    .dim
                    .iter()
                    .map(|d| {
                        if d.has_dim_param() {
                            d.dim_param().to_string()
                        } else {
                            d.dim_value().to_string()
                        }
                    })
                    .collect::<Vec<_>>()
            };
            assert_eq!(dims(&graph.input[0]), ["batch", "1080"]);
            assert_eq!(dims(&graph.output[0]), ["batch", "2"]);
            assert_eq!(graph.input.len(), 1 + usize::from(speed_input));
            if speed_input {
                assert_eq!(graph.input[1].name, SPEED_INPUT_NAME);
                assert_eq!(dims(&graph.input[1]), ["batch", "1"]);
            }
            let keys: Vec<&str> = proto
                .metadata_props
                .iter()
                .map(|e| e.key.as_str())
                .collect();
            assert_eq!(keys, ["raceloop.model", "raceloop.stats"]);
        }
    }
}
