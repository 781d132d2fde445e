//! Tiny Lidar Net and the MLP baseline, in Burn.
//!
//! Tiny Lidar Net (Zarrar et al., "TinyLidarNet: 2D LiDAR-based End-to-End Deep Learning Model
//! for F1TENTH Autonomous Racing", arXiv:2410.07447): five valid-padding Conv1d layers (24, 36,
//! 48, 64, 64 channels; kernels 10, 8, 4, 3, 3; strides 4, 4, 2, 1, 1) with ReLU, then dense
//! layers of 100, 50 and 10 units with ReLU and a tanh head. For a 1080-beam scan the conv stack
//! gives 64 × 28 = 1792 features and the model has 220,686 parameters with 2 outputs (the same as
//! the paper's 1081-beam count, since the first conv floors both to 268 positions).
//!
//! With [`ModelConfig::speed_input`] either network also reads the ego's measured speed, which
//! joins the flattened conv features (the MLP's scan) at the first dense layer: 100 more
//! parameters for Tiny Lidar Net. The paper's network reads the scan only.

use burn::nn::conv::{Conv1d, Conv1dConfig};
use burn::nn::{Linear, LinearConfig, Relu};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

/// Burn draws initial weights from one process-wide generator per device. Whoever seeds it and
/// initialises a model holds this lock meanwhile, so that trainings (and tests) running at the
/// same time each get the weights of their own seed.
pub(crate) static BURN_RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Which network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Architecture {
    /// Tiny Lidar Net (the 1D CNN of the paper).
    TinyLidarNet,
    /// The paper's baseline: flatten → 256 → 256 → head, ReLU.
    Mlp,
}

/// Model configuration (`configs/model.ron`, saved as `model.json` beside the weights).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Network.
    pub architecture: Architecture,
    /// Scan length (beams).
    pub num_beams: usize,
    /// Outputs: 1 = steering (speed fixed), 2 = steering and speed.
    pub outputs: usize,
    /// Networks in the ensemble (1 = one network, the paper's). Each member is the same network
    /// trained alone from its own seed (`training.seed` + member index) on the same data (a deep
    /// ensemble, Lakshminarayanan et al. 2017); the policy takes the trimmed mean of their
    /// normalised outputs (see [`forward_ensemble`]). Left out of
    /// `model.json` when 1, so single-network model directories keep their bytes and hashes.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub members: usize,
    /// Whether the network also reads the ego's measured speed: the input is then
    /// `[batch, 1, num_beams + 1]`, the scan followed by the normalised speed
    /// ([`crate::Stats::normalize_speed_input`]), which joins the flattened conv features (the
    /// MLP's scan) at the first dense layer. The paper's network reads the scan only (`false`);
    /// a scan alone does not tell the network how fast it is going into a corner. Left out of
    /// `model.json` when false, so older model directories keep their bytes and hashes.
    #[serde(default, skip_serializing_if = "is_false")]
    pub speed_input: bool,
}

/// Most networks in an ensemble.
pub const MAX_MEMBERS: usize = 16;

fn one() -> usize {
    1
}

fn is_one(n: &usize) -> bool {
    *n == 1
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl ModelConfig {
    /// Checks that the outputs are 1 or 2, the members 1..=[`MAX_MEMBERS`], and that the scan is
    /// long enough for the conv stack.
    ///
    /// # Errors
    /// [`LearnError::Config`] naming the field.
    pub fn validate(&self) -> crate::error::Result<()> {
        let bad = |field: &str, message: String| {
            Err(crate::error::LearnError::Config {
                field: format!("model.{field}"),
                message,
            })
        };
        if !(1..=2).contains(&self.outputs) {
            return bad(
                "outputs",
                format!(
                    "must be 1 (steering) or 2 (steering, speed), found {}",
                    self.outputs
                ),
            );
        }
        if !(1..=MAX_MEMBERS).contains(&self.members) {
            return bad(
                "members",
                format!(
                    "must be 1 (one network) to {MAX_MEMBERS}, found {}",
                    self.members
                ),
            );
        }
        let min = TLN_CONVS
            .iter()
            .rev()
            .fold(1, |len, &(_, k, s)| (len - 1) * s + k);
        if self.num_beams < min {
            return bad(
                "num_beams",
                format!(
                    "Tiny Lidar Net's conv stack needs at least {min} beams, found {}",
                    self.num_beams
                ),
            );
        }
        Ok(())
    }

    /// Inputs after the scan: 1 (the ego speed) with [`Self::speed_input`], else 0.
    pub fn extras(&self) -> usize {
        usize::from(self.speed_input)
    }

    /// Input length per sample: `num_beams` + [`Self::extras`].
    pub fn inputs(&self) -> usize {
        self.num_beams + self.extras()
    }

    /// Builds one network (one member) with freshly initialised weights on `device`.
    pub fn init(&self, device: &Device) -> Model {
        let extras = self.extras();
        match self.architecture {
            Architecture::TinyLidarNet => Model::TinyLidarNet(TinyLidarNet::new(
                self.num_beams,
                extras,
                self.outputs,
                device,
            )),
            Architecture::Mlp => Model::Mlp(Mlp::new(self.num_beams, extras, self.outputs, device)),
        }
    }
}

/// Output length of a valid-padding convolution.
pub fn conv_out(len: usize, kernel: usize, stride: usize) -> usize {
    (len - kernel) / stride + 1
}

/// (channels, kernel, stride) of Tiny Lidar Net's conv layers.
pub const TLN_CONVS: [(usize, usize, usize); 5] =
    [(24, 10, 4), (36, 8, 4), (48, 4, 2), (64, 3, 1), (64, 3, 1)];
/// Units of Tiny Lidar Net's hidden dense layers.
pub const TLN_DENSE: [usize; 3] = [100, 50, 10];

/// Tiny Lidar Net: `[batch, 1, num_beams + extras]` → `[batch, outputs]` in (-1, 1).
#[derive(Module, Debug)]
pub struct TinyLidarNet {
    convs: Vec<Conv1d>,
    dense: Vec<Linear>,
    head: Linear,
    relu: Relu,
    /// Inputs after the scan that bypass the convs and join the flattened features (0 or 1).
    extras: usize,
}

impl TinyLidarNet {
    /// A freshly initialised network for `num_beams`-beam scans followed by `extras` inputs
    /// that join the flattened conv features (0, or 1 for the ego speed), with `outputs`
    /// outputs.
    pub fn new(num_beams: usize, extras: usize, outputs: usize, device: &Device) -> Self {
        let mut convs = Vec::new();
        let (mut channels, mut len) = (1, num_beams);
        for (out, kernel, stride) in TLN_CONVS {
            convs.push(
                Conv1dConfig::new(channels, out, kernel)
                    .with_stride(stride)
                    .init(device),
            );
            channels = out;
            len = conv_out(len, kernel, stride);
        }
        let mut dense = Vec::new();
        let mut width = channels * len + extras;
        for units in TLN_DENSE {
            dense.push(LinearConfig::new(width, units).init(device));
            width = units;
        }
        Self {
            convs,
            dense,
            head: LinearConfig::new(width, outputs).init(device),
            relu: Relu::new(),
            extras,
        }
    }

    /// The conv layers, input side first.
    pub fn convs(&self) -> &[Conv1d] {
        &self.convs
    }

    /// The hidden dense layers (ReLU) and the tanh head.
    pub fn dense(&self) -> (&[Linear], &Linear) {
        (&self.dense, &self.head)
    }

    /// `[batch, 1, num_beams + extras]` normalised inputs → `[batch, outputs]`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<2> {
        let (scan, extra) = split_inputs(x, self.extras);
        self.forward_parts(scan, extra)
    }

    /// [`Self::forward`] with the scan `[batch, 1, num_beams]` and the extras `[batch, extras]`
    /// apart.
    pub fn forward_parts(&self, scan: Tensor<3>, extra: Option<Tensor<2>>) -> Tensor<2> {
        let mut h = scan;
        for conv in &self.convs {
            h = self.relu.forward(conv.forward(h));
        }
        let mut x = join(h.flatten(1, 2), extra);
        for layer in &self.dense {
            x = self.relu.forward(layer.forward(x));
        }
        self.head.forward(x).tanh()
    }
}

/// The MLP baseline: `[batch, 1, inputs]` → `[batch, outputs]` in (-1, 1), where `inputs` is
/// the scan's beams plus the extras (the ego speed) of [`ModelConfig::extras`].
#[derive(Module, Debug)]
pub struct Mlp {
    hidden: Vec<Linear>,
    head: Linear,
    relu: Relu,
    /// Inputs after the scan (0, or 1 for the ego speed).
    extras: usize,
}

impl Mlp {
    /// A freshly initialised baseline for `num_beams`-beam scans followed by `extras` inputs
    /// (0, or 1 for the ego speed).
    pub fn new(num_beams: usize, extras: usize, outputs: usize, device: &Device) -> Self {
        Self {
            hidden: vec![
                LinearConfig::new(num_beams + extras, 256).init(device),
                LinearConfig::new(256, 256).init(device),
            ],
            head: LinearConfig::new(256, outputs).init(device),
            relu: Relu::new(),
            extras,
        }
    }

    /// The hidden dense layers (ReLU) and the tanh head.
    pub fn dense(&self) -> (&[Linear], &Linear) {
        (&self.hidden, &self.head)
    }

    /// `[batch, 1, inputs]` normalised inputs → `[batch, outputs]`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<2> {
        let (scan, extra) = split_inputs(x, self.extras);
        self.forward_parts(scan, extra)
    }

    /// [`Self::forward`] with the scan `[batch, 1, num_beams]` and the extras `[batch, extras]`
    /// apart.
    pub fn forward_parts(&self, scan: Tensor<3>, extra: Option<Tensor<2>>) -> Tensor<2> {
        let mut x = join(scan.flatten(1, 2), extra);
        for layer in &self.hidden {
            x = self.relu.forward(layer.forward(x));
        }
        self.head.forward(x).tanh()
    }
}

/// `[batch, 1, num_beams + extras]` → the scans `[batch, 1, num_beams]` and, with extras, the
/// extras `[batch, extras]`.
fn split_inputs(x: Tensor<3>, extras: usize) -> (Tensor<3>, Option<Tensor<2>>) {
    if extras == 0 {
        return (x, None);
    }
    let beams = x.dims()[2] - extras;
    let extra = x.clone().narrow(2, beams, extras).flatten(1, 2);
    (x.narrow(2, 0, beams), Some(extra))
}

/// `[batch, features]` features followed by the extras `[batch, extras]`, if any.
fn join(features: Tensor<2>, extra: Option<Tensor<2>>) -> Tensor<2> {
    match extra {
        Some(extra) => Tensor::cat(vec![features, extra], 1),
        None => features,
    }
}

/// Either network.
#[derive(Module, Debug)]
pub enum Model {
    /// Tiny Lidar Net.
    TinyLidarNet(TinyLidarNet),
    /// MLP baseline.
    Mlp(Mlp),
}

impl Model {
    /// `[batch, 1, inputs]` normalised inputs (the scan, then the extras of
    /// [`ModelConfig::extras`]) → `[batch, outputs]` in (-1, 1).
    pub fn forward(&self, x: Tensor<3>) -> Tensor<2> {
        match self {
            Self::TinyLidarNet(m) => m.forward(x),
            Self::Mlp(m) => m.forward(x),
        }
    }

    /// [`Self::forward`] with the normalised scans `[batch, 1, num_beams]` and the extras
    /// `[batch, extras]` (`None` without) apart: the form that the ONNX export captures, whose
    /// batch axis a slice of the joined input would fix.
    pub fn forward_parts(&self, scan: Tensor<3>, extra: Option<Tensor<2>>) -> Tensor<2> {
        match self {
            Self::TinyLidarNet(m) => m.forward_parts(scan, extra),
            Self::Mlp(m) => m.forward_parts(scan, extra),
        }
    }

    /// Inputs after the scan (0, or 1 for the ego speed; see [`ModelConfig::speed_input`]).
    pub fn extras(&self) -> usize {
        match self {
            Self::TinyLidarNet(m) => m.extras,
            Self::Mlp(m) => m.extras,
        }
    }
}

/// The members of an ensemble ([`ModelConfig::members`] > 1) as one module: what
/// `weights.safetensors` holds for an ensemble (tensors `members.J.…`; a single network keeps
/// its own names).
#[derive(Module, Debug)]
pub struct Ensemble {
    /// The members, in seed order.
    pub members: Vec<Model>,
}

impl Ensemble {
    /// `[batch, 1, num_beams]` normalised scans → `[batch, outputs]`: see [`forward_ensemble`].
    pub fn forward(&self, x: Tensor<3>) -> Tensor<2> {
        forward_ensemble(&self.members, x)
    }
}

/// How [`forward_ensemble`] combines the members, for keys of results that depend on it.
pub const ENSEMBLE_RULE: &str = "trimmed mean: (sum - max - min) / (k - 2) for k >= 3, else mean";

/// `[batch, 1, num_beams]` normalised scans → `[batch, outputs]`: each output is the trimmed
/// mean of the members' outputs, the mean without the largest and the smallest one (for 3
/// members their median), so that one member that loses a corner is outvoted; with 1 or 2
/// members the plain mean. Computed as `(Σ − max − min) / (k − 2)` (Σ summed in member order),
/// as [`crate::Policy`] does.
///
/// # Panics
/// With no members.
pub fn forward_ensemble(members: &[Model], x: Tensor<3>) -> Tensor<2> {
    combine(members.iter().map(|m| m.forward(x.clone())).collect())
}

/// [`forward_ensemble`] with the scans `[batch, 1, num_beams]` and the extras `[batch, extras]`
/// apart (see [`Model::forward_parts`]).
///
/// # Panics
/// With no members.
pub fn forward_ensemble_parts(
    members: &[Model],
    scan: Tensor<3>,
    extra: Option<Tensor<2>>,
) -> Tensor<2> {
    combine(
        members
            .iter()
            .map(|m| m.forward_parts(scan.clone(), extra.clone()))
            .collect(),
    )
}

/// The members' outputs `[batch, outputs]` combined as [`forward_ensemble`] documents.
fn combine(outs: Vec<Tensor<2>>) -> Tensor<2> {
    let k = outs.len();
    assert!(k > 0, "an ensemble needs a member");
    if k == 1 {
        return outs.into_iter().next().expect("one member");
    }
    let stacked: Tensor<3> = Tensor::stack(outs, 0);
    let sum = stacked.clone().sum_dim(0);
    let combined = if k < 3 {
        sum / k as f32
    } else {
        let (max, _) = stacked.clone().max_dim_with_indices(0);
        let (min, _) = stacked.min_dim_with_indices(0);
        (sum - max - min) / (k - 2) as f32
    };
    combined.squeeze_dim(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device() -> Device {
        Device::flex()
    }

    #[test]
    fn tiny_lidar_net_shapes_and_parameter_count() {
        let _turn = crate::model::BURN_RNG.lock();
        let d = device();
        let cfg = ModelConfig {
            architecture: Architecture::TinyLidarNet,
            num_beams: 1080,
            outputs: 2,
            members: 1,
            speed_input: false,
        };
        let m = cfg.init(&d);
        let y = m.forward(Tensor::zeros([3, 1, 1080], &d));
        assert_eq!(y.dims(), [3, 2]);
        assert_eq!(
            m.num_params(),
            220_686,
            "paper: 220,686 for a 1081-beam input with 2 outputs"
        );
        let m1 = ModelConfig {
            outputs: 1,
            ..cfg.clone()
        }
        .init(&d);
        assert_eq!(m1.num_params(), 220_675);
        let m1081 = ModelConfig {
            num_beams: 1081,
            ..cfg.clone()
        }
        .init(&d);
        assert_eq!(m1081.num_params(), 220_686);
        let speed = ModelConfig {
            speed_input: true,
            ..cfg.clone()
        }
        .init(&d);
        assert_eq!(
            speed.forward(Tensor::zeros([3, 1, 1081], &d)).dims(),
            [3, 2]
        );
        assert_eq!(
            speed.num_params(),
            220_686 + 100,
            "the speed adds one input to the first dense layer's 100 units"
        );
        assert_eq!(
            conv_out(
                conv_out(conv_out(conv_out(conv_out(1080, 10, 4), 8, 4), 4, 2), 3, 1),
                3,
                1
            ),
            28
        );
    }

    #[test]
    fn mlp_shapes() {
        let _turn = crate::model::BURN_RNG.lock();
        let d = device();
        let m = ModelConfig {
            architecture: Architecture::Mlp,
            num_beams: 1080,
            outputs: 1,
            members: 1,
            speed_input: false,
        }
        .init(&d);
        assert_eq!(m.forward(Tensor::zeros([2, 1, 1080], &d)).dims(), [2, 1]);
        assert_eq!(m.num_params(), 1080 * 256 + 256 + 256 * 256 + 256 + 256 + 1);
    }
}
