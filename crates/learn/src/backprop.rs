//! Hand-written backpropagation through a [`PackedNet`], the CPU training path.
//!
//! Burn's autodiff on the `flex` backend trains Tiny Lidar Net at about 3,000–4,000 samples/s
//! here, mostly in per-operation overhead and generic 3-D (transposed) convolutions. This module
//! computes the same loss and parameter gradients directly, with the channels-last matrix
//! products of [`crate::packed`]: for a layer `Y = act(X_win · W + b)` with `dZ = dY ⊙ act'(Y)`,
//!
//! - `db = Σ_rows dZ`,
//! - `dW = X_winᵀ · dZ` (the input read with its window strides, no im2col copy),
//! - `dX_win = dZ · Wᵀ`, scatter-added into `dX` where windows overlap (col2im).
//!
//! Training keeps the parameters packed between batches and updates them with [`crate::adamw`]
//! ([`Backprop::train_step`]), which matches Burn's AdamW bit for bit; [`Backprop::write_to`] puts
//! them back into the Burn model. [`Backprop::loss_and_gradients`] hands the gradients to Burn as
//! [`GradientsParams`] instead (the tests use it against Burn's autodiff). A batch is split into
//! fixed chunks of [`CHUNK`] samples that run in parallel and are summed in chunk order, so
//! results do not depend on the thread count. The tests check loss and gradients against Burn's autodiff.

use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::TensorData;
use rayon::prelude::*;

use crate::adamw::AdamW;
use crate::kernel::Kernel;
use crate::loss::{LossKind, element_loss_and_grad};
use crate::model::Model;
use crate::packed::{Activation, Gemm, Init, Layer, Origin, PackedNet, Parameter, gemm, widened};

/// Samples per parallel work item.
pub const CHUNK: usize = 32;

/// Gradients of one layer in its packed layout.
#[derive(Clone, Debug)]
struct LayerGrads {
    /// `[depth, padded]`.
    weights: Vec<f32>,
    /// `[padded]`.
    bias: Vec<f32>,
}

/// Per-worker buffers for a chunk of up to [`CHUNK`] samples.
struct Scratch {
    /// Conv layer outputs per sample: `[CHUNK][convs][rows · width]`.
    conv: Vec<Vec<Vec<f32>>>,
    /// Dense layer inputs and outputs for the whole chunk: `[dense + 1][CHUNK · width]`; the
    /// first is the flattened conv features (or the scans for the MLP).
    dense: Vec<Vec<f32>>,
    /// Gradient of the loss with respect to the conv stack's output, `[CHUNK · features]`.
    features: Vec<f32>,
    dz: Vec<f32>,
    dy: Vec<f32>,
    /// `dz` of a dense layer transposed, `[width, 32]`.
    dz_t: Vec<f32>,
    window: Vec<f32>,
}

impl Scratch {
    fn new(net: &PackedNet) -> Self {
        let convs = net.convs();
        let largest = |f: &dyn Fn(&Layer) -> usize| {
            net.layers
                .iter()
                .enumerate()
                .map(|(l, layer)| f(layer) * if l < convs { 1 } else { CHUNK })
                .max()
                .unwrap_or(0)
        };
        let first_dense = &net.layers[convs];
        Self {
            conv: vec![
                net.layers[..convs]
                    .iter()
                    .map(|l| vec![0.0; l.rows * l.width])
                    .collect();
                CHUNK
            ],
            dense: std::iter::once(first_dense.depth)
                .chain(net.layers[convs..].iter().map(|l| l.width))
                .map(|width| vec![0.0; CHUNK * width])
                .collect(),
            features: vec![0.0; CHUNK * first_dense.depth],
            dz: vec![0.0; largest(&|l| l.rows * l.padded)],
            dy: vec![0.0; largest(&|l| l.rows * l.width).max(CHUNK * first_dense.depth)],
            dz_t: vec![0.0; largest(&|l| l.width)],
            window: vec![0.0; largest(&|l| l.rows * l.depth.next_multiple_of(16))],
        }
    }
}

/// Writes the packed weights of each conv layer transposed into `out`: `[width, depth rounded up
/// to 16]` per layer (the dense layers' input gradients read the packed weights). Blocks of 8
/// output rows of all layers run in one parallel pass; each reads 8 adjacent weights of a packed
/// row at a time rather than one weight per cache line.
fn transpose(net: &PackedNet, out: &mut Vec<Vec<f32>>) {
    const BLOCK: usize = 8;
    out.resize(net.convs(), Vec::new());
    let mut blocks = Vec::new();
    for (l, t) in net.layers.iter().zip(out.iter_mut()) {
        let depth = l.depth.next_multiple_of(16);
        t.resize(l.width * depth, 0.0);
        blocks.extend(
            t.chunks_mut(BLOCK * depth)
                .enumerate()
                .map(|(b, rows)| (l, depth, b * BLOCK, rows)),
        );
    }
    blocks.into_par_iter().for_each(|(l, depth, first, rows)| {
        for (j, packed) in l.weights.chunks_exact(l.padded).enumerate() {
            let packed = &packed[first..first + rows.len() / depth];
            for (c, &w) in packed.iter().enumerate() {
                rows[c * depth + j] = w;
            }
        }
    });
}

/// `dz[rows, padded] = dy[rows, width] ⊙ (y > 0)`, the gradient through a ReLU.
#[inline(always)]
fn relu_backward(layer: &Layer, rows: usize, dy: &[f32], y: &[f32], dz: &mut [f32]) {
    debug_assert_eq!(layer.activation, Activation::Relu);
    let dz = &mut dz[..rows * layer.padded];
    dz.fill(0.0);
    for ((dz, dy), y) in dz
        .chunks_exact_mut(layer.padded)
        .zip(dy.chunks_exact(layer.width))
        .zip(y.chunks_exact(layer.width))
    {
        for ((z, &d), &y) in dz.iter_mut().zip(dy).zip(y) {
            *z = if y > 0.0 { d } else { 0.0 };
        }
    }
}

/// Adds the bias and weight gradients of `layer` for `rows` rows of `dz` (`[rows, padded]`) given
/// its `input` into `g`.
#[inline(always)]
fn parameter_gradients(
    layer: &Layer,
    rows: usize,
    input: &[f32],
    dz: &[f32],
    g: &mut LayerGrads,
    kernel: Kernel,
) {
    let dz = &dz[..rows * layer.padded];
    for row in dz.chunks_exact(layer.padded) {
        for (b, d) in g.bias.iter_mut().zip(row) {
            *b += d;
        }
    }
    gemm(
        &Gemm {
            a: input,
            a_row: 1,
            a_col: layer.step,
            b: dz,
            b_row: layer.padded,
            m: layer.depth,
            k: rows,
            n: layer.padded,
            // The padding columns' gradients are 0 (so are `dz`'s): they are left as they are.
            live: layer.width,
            c_row: layer.padded,
            init: Init::Add,
        },
        &mut g.weights,
        kernel,
    );
}

/// The input gradient of a conv layer for `dz` (`[rows, padded]`): `dx[(rows − 1) · step +
/// depth]`, the windows' gradients `dz · Wᵀ` summed where they overlap. `transposed` holds the
/// layer's weights as `[width, depth rounded up to 16]`.
#[inline(always)]
fn conv_input_gradient(
    layer: &Layer,
    transposed: &[f32],
    dz: &[f32],
    dx: &mut [f32],
    window: &mut [f32],
    kernel: Kernel,
) {
    let (rows, depth) = (layer.rows, layer.depth.next_multiple_of(16));
    gemm(
        &Gemm {
            a: dz,
            a_row: layer.padded,
            a_col: 1,
            b: transposed,
            b_row: depth,
            m: rows,
            k: layer.width,
            n: depth,
            live: layer.depth,
            c_row: depth,
            init: Init::Zero,
        },
        window,
        kernel,
    );
    let dx = &mut dx[..(rows - 1) * layer.step + layer.depth];
    dx.fill(0.0);
    for r in 0..rows {
        let from = &window[r * depth..r * depth + layer.depth];
        for (d, w) in dx[r * layer.step..r * layer.step + layer.depth]
            .iter_mut()
            .zip(from)
        {
            *d += w;
        }
    }
}

/// The input gradient of a dense layer for `rows` rows of `dz` (`[rows, padded]`):
/// `dx[rows, depth] = dz · Wᵀ`, computed as `dxᵀ = W · dzᵀ` so that the packed weights are read
/// row after row. Through transposed weights, each step of the 1,792-deep layer's product read
/// 7 KiB further on, and it took about 1.5 times as long. Each value gets the same multiply-adds
/// in the same order as `dz · Wᵀ`. `dz_t` and `window` are scratch of at least `width · 32` and
/// `depth · 32` values.
#[inline(always)]
fn dense_input_gradient(
    layer: &Layer,
    rows: usize,
    dz: &[f32],
    dx: &mut [f32],
    (dz_t, window): (&mut [f32], &mut [f32]),
    kernel: Kernel,
) {
    let n = rows.next_multiple_of(16);
    let dz_t = &mut dz_t[..layer.width * n];
    for (c, column) in dz_t.chunks_exact_mut(n).enumerate() {
        for (r, v) in column[..rows].iter_mut().enumerate() {
            *v = dz[r * layer.padded + c];
        }
    }
    gemm(
        &Gemm {
            a: &layer.weights,
            a_row: layer.padded,
            a_col: 1,
            b: dz_t,
            b_row: n,
            m: layer.depth,
            k: layer.width,
            n,
            live: rows,
            c_row: n,
            init: Init::Zero,
        },
        window,
        kernel,
    );
    for (r, dx) in dx[..rows * layer.depth]
        .chunks_exact_mut(layer.depth)
        .enumerate()
    {
        for (d, v) in dx.iter_mut().enumerate() {
            *v = window[d * n + r];
        }
    }
}

/// Adds the loss gradients of the samples `rows` of normalised `x` (`[n, beams + extras]`) and targets `y`
/// (`[n, outputs]`) into `grads` and returns their summed loss. Conv layers run per sample; the
/// dense layers run on the whole chunk at once, so their weights are read once per chunk.
/// `scale` multiplies the loss derivative.
#[inline(always)]
fn chunk_gradients(
    net: &PackedNet,
    transposed: &[Vec<f32>],
    (x, y): (&[f32], &[f32]),
    rows: &[usize],
    (kind, scale): (LossKind, f32),
    s: &mut Scratch,
    grads: &mut [LayerGrads],
) -> f64 {
    let kernel = net.kernel;
    let layers = &net.layers;
    let convs = net.convs();
    let inputs = net.inputs();
    let beams = net.beams();
    let n = rows.len();
    let features = layers[convs].depth;
    for (k, &i) in rows.iter().enumerate() {
        let scan = &x[i * inputs..(i + 1) * inputs];
        let out = &mut s.conv[k];
        for (l, layer) in layers[..convs].iter().enumerate() {
            let (done, rest) = out.split_at_mut(l);
            let input: &[f32] = if l == 0 { scan } else { &done[l - 1] };
            layer.run(input, &mut rest[0], kernel);
        }
        let row = &mut s.dense[0][k * features..(k + 1) * features];
        match out.last() {
            Some(flat) => {
                let (conv, extras) = row.split_at_mut(flat.len());
                conv.copy_from_slice(flat);
                extras.copy_from_slice(&scan[beams..]);
            }
            None => row.copy_from_slice(scan),
        }
    }
    for (d, layer) in layers[convs..].iter().enumerate() {
        let (done, rest) = s.dense.split_at_mut(d + 1);
        layer.run_rows(&done[d], &mut rest[0], n, kernel);
    }
    let head = &layers[layers.len() - 1];
    debug_assert_eq!(head.activation, Activation::Tanh);
    let outputs = head.width;
    let mut loss = 0.0;
    s.dz[..n * head.padded].fill(0.0);
    for (k, &i) in rows.iter().enumerate() {
        let predicted = &s.dense[layers.len() - convs][k * outputs..(k + 1) * outputs];
        for (c, (&p, &t)) in predicted
            .iter()
            .zip(&y[i * outputs..(i + 1) * outputs])
            .enumerate()
        {
            let (value, grad) = element_loss_and_grad(kind, p, t);
            loss += f64::from(value);
            s.dz[k * head.padded + c] = grad * scale * (1.0 - p * p);
        }
    }
    for l in (convs..layers.len()).rev() {
        let d = l - convs;
        let dx = if l > convs {
            Some(&mut s.dy[..])
        } else if convs > 0 {
            Some(&mut s.features[..])
        } else {
            None
        };
        parameter_gradients(&layers[l], n, &s.dense[d], &s.dz, &mut grads[l], kernel);
        if let Some(dx) = dx {
            let scratch = (&mut s.dz_t[..], &mut s.window[..]);
            dense_input_gradient(&layers[l], n, &s.dz, dx, scratch, kernel);
            if l > convs {
                relu_backward(&layers[l - 1], n, &s.dy, &s.dense[d], &mut s.dz);
            }
        }
    }
    if convs == 0 {
        return loss;
    }
    let flat = layers[convs - 1].rows * layers[convs - 1].width;
    for k in 0..n {
        let scan = &x[rows[k] * inputs..(rows[k] + 1) * inputs];
        let out = &s.conv[k];
        relu_backward(
            &layers[convs - 1],
            layers[convs - 1].rows,
            &s.features[k * features..k * features + flat],
            &out[convs - 1],
            &mut s.dz,
        );
        for l in (0..convs).rev() {
            let layer = &layers[l];
            let input: &[f32] = if l == 0 { scan } else { &out[l - 1] };
            parameter_gradients(layer, layer.rows, input, &s.dz, &mut grads[l], kernel);
            if l > 0 {
                conv_input_gradient(
                    layer,
                    &transposed[l],
                    &s.dz,
                    &mut s.dy,
                    &mut s.window,
                    kernel,
                );
                let below = &layers[l - 1];
                relu_backward(below, below.rows, &s.dy, &out[l - 1], &mut s.dz);
            }
        }
    }
    loss
}

/// One parallel work item's buffers and gradient sums.
struct Worker {
    scratch: Scratch,
    grads: Vec<LayerGrads>,
    loss: f64,
}

fn zero_grads(net: &PackedNet) -> Vec<LayerGrads> {
    net.layers
        .iter()
        .map(|l| LayerGrads {
            weights: vec![0.0; l.depth * l.padded],
            bias: vec![0.0; l.padded],
        })
        .collect()
}

/// The CPU backward pass of one network, with buffers kept between batches.
pub struct Backprop {
    net: PackedNet,
    transposed: Vec<Vec<f32>>,
    workers: Vec<Worker>,
}

impl Backprop {
    /// Buffers for `model` with `beams`-beam scans.
    pub fn new(model: &Model, beams: usize) -> Self {
        let net = PackedNet::new(model, beams);
        Self {
            transposed: Vec::new(),
            net,
            workers: Vec::new(),
        }
    }

    /// Uses `kernel`'s micro-kernel (tests, benchmarks); see [`PackedNet::with_kernel`].
    pub fn with_kernel(mut self, kernel: Kernel) -> Self {
        self.net = self.net.with_kernel(kernel);
        self
    }

    /// The micro-kernel in use.
    pub fn kernel(&self) -> Kernel {
        self.net.kernel()
    }

    /// Mean loss over the batch `rows` of normalised inputs `x` (`[n, beams + extras]`) and targets `y`
    /// (`[n, outputs]`) with the packed parameters; the gradients (of the mean, as Burn's
    /// `Reduction::Mean`) of each chunk of [`CHUNK`] rows end up in packed layout in the first
    /// `rows.len().div_ceil(CHUNK)` workers, to be summed in chunk order.
    fn batch(&mut self, x: &[f32], y: &[f32], rows: &[usize], kind: LossKind) -> f64 {
        transpose(&self.net, &mut self.transposed);
        let net = &self.net;
        let outputs = net.layers.last().map_or(0, |l| l.width);
        let count = (rows.len() * outputs) as f32;
        let chunks = rows.len().div_ceil(CHUNK);
        while self.workers.len() < chunks {
            self.workers.push(Worker {
                scratch: Scratch::new(net),
                grads: zero_grads(net),
                loss: 0.0,
            });
        }
        let t = &self.transposed;
        self.workers[..chunks]
            .par_iter_mut()
            .zip(rows.par_chunks(CHUNK))
            .for_each(|(w, chunk)| {
                for g in &mut w.grads {
                    g.weights.fill(0.0);
                    g.bias.fill(0.0);
                }
                w.loss = widened(
                    net.kernel,
                    #[inline(always)]
                    || {
                        chunk_gradients(
                            net,
                            t,
                            (x, y),
                            chunk,
                            (kind, 1.0 / count),
                            &mut w.scratch,
                            &mut w.grads,
                        )
                    },
                );
            });
        let loss = self.workers[..chunks].iter().map(|w| w.loss).sum::<f64>();
        loss / f64::from(count)
    }

    /// Sums the gradients of the first `chunks` workers into the first, in chunk order.
    fn sum_gradients(&mut self, chunks: usize) {
        let (first, rest) = self.workers.split_at_mut(1);
        for w in &rest[..chunks - 1] {
            for (sum, g) in first[0].grads.iter_mut().zip(&w.grads) {
                sum.weights
                    .iter_mut()
                    .zip(&g.weights)
                    .for_each(|(a, b)| *a += b);
                sum.bias.iter_mut().zip(&g.bias).for_each(|(a, b)| *a += b);
            }
        }
    }

    /// Mean loss of `model` on the batch `rows` of normalised `x` (`[n, beams + extras]`) and `y`
    /// (`[n, outputs]`), and its gradients as Burn [`GradientsParams`] on `device` (the plain,
    /// non-autodiff device) for an optimizer step of `model`.
    ///
    /// # Panics
    /// If `rows` is empty or `model` is not the network this was built for.
    pub fn loss_and_gradients(
        &mut self,
        model: &Model,
        (x, y): (&[f32], &[f32]),
        rows: &[usize],
        kind: LossKind,
        device: &Device,
    ) -> (f64, GradientsParams) {
        assert!(!rows.is_empty(), "an empty batch");
        self.net.reload(model);
        let loss = self.batch(x, y, rows, kind);
        self.sum_gradients(rows.len().div_ceil(CHUNK));
        let mut params = GradientsParams::new();
        let grads = &self.workers[0].grads;
        for ((layer, g), parameter) in self.net.layers.iter().zip(grads).zip(Parameter::of(model)) {
            let (weight_id, bias_id) = parameter.ids();
            let weights = layer.unpack(&g.weights);
            match layer.origin {
                Origin::Conv {
                    kernel,
                    channels_in,
                } => params.register::<3>(
                    weight_id,
                    Tensor::from_data(
                        TensorData::new(weights, [layer.width, channels_in, kernel]),
                        device,
                    ),
                ),
                Origin::Dense { .. } => params.register::<2>(
                    weight_id,
                    Tensor::from_data(TensorData::new(weights, [layer.depth, layer.width]), device),
                ),
            }
            if let Some(id) = bias_id {
                let bias = g.bias[..layer.width].to_vec();
                params.register::<1>(
                    id,
                    Tensor::from_data(TensorData::new(bias, [layer.width]), device),
                );
            }
        }
        (loss, params)
    }

    /// One training step on the packed parameters: the mean loss of the batch `rows` of
    /// normalised `x` (`[n, beams + extras]`) and `y` (`[n, outputs]`) before the step, then one `optim`
    /// step with learning rate `lr` along its gradients. The parameters start as those given to
    /// [`Backprop::new`]; [`Backprop::write_to`] reads them out.
    ///
    /// # Panics
    /// If `rows` is empty.
    pub fn train_step(
        &mut self,
        (x, y): (&[f32], &[f32]),
        rows: &[usize],
        kind: LossKind,
        lr: f64,
        optim: &mut AdamW,
    ) -> f64 {
        assert!(!rows.is_empty(), "an empty batch");
        let loss = self.batch(x, y, rows, kind);
        let workers = &self.workers[..rows.len().div_ceil(CHUNK)];
        optim.step(
            lr,
            self.net.kernel,
            self.net.layers.iter_mut().enumerate().flat_map(|(i, l)| {
                [
                    (
                        &mut l.weights[..],
                        workers.iter().map(|w| &w.grads[i].weights[..]).collect(),
                    ),
                    (
                        &mut l.bias[..],
                        workers.iter().map(|w| &w.grads[i].bias[..]).collect(),
                    ),
                ]
            }),
        );
        loss
    }

    /// `model` (the network this was built for) with the packed parameters, each on the device
    /// and with the gradient tracking that it had.
    pub fn write_to(&self, model: Model) -> Model {
        let mut values = std::collections::HashMap::new();
        for (layer, parameter) in self.net.layers.iter().zip(Parameter::of(&model)) {
            let (weight_id, bias_id) = parameter.ids();
            values.insert(weight_id, layer.unpack(&layer.weights));
            if let Some(id) = bias_id {
                values.insert(id, layer.bias[..layer.width].to_vec());
            }
        }
        model.map(&mut Replace(values))
    }
}

/// Replaces each float parameter whose id it holds with those values (same shape).
struct Replace(std::collections::HashMap<burn::module::ParamId, Vec<f32>>);

impl burn::module::ModuleMapper for Replace {
    fn map_float<const D: usize>(
        &mut self,
        param: burn::module::Param<Tensor<D>>,
    ) -> burn::module::Param<Tensor<D>> {
        let (id, tensor, mapper) = param.consume();
        let tensor = match self.0.remove(&id) {
            Some(values) => {
                let shape = tensor.shape();
                let new = Tensor::from_data(TensorData::new(values, shape), &tensor.device());
                if tensor.is_require_grad() {
                    new.require_grad()
                } else {
                    new
                }
            }
            None => tensor,
        };
        burn::module::Param::from_mapped_value(id, tensor, mapper)
    }
}

/// Mean loss of `model` for `beams`-beam scans over all of normalised `x` (`[n, beams +
/// extras]`) and `y` (validation), in parallel.
pub fn mean_loss(model: &Model, beams: usize, (x, y): (&[f32], &[f32]), kind: LossKind) -> f64 {
    let net = PackedNet::new(model, beams);
    let outputs = net.layers.last().map_or(0, |l| l.width);
    let beams = net.inputs();
    let n = x.len() / beams;
    if n == 0 {
        return f64::NAN;
    }
    let total: f64 = x
        .par_chunks(beams * 256)
        .zip(y.par_chunks(outputs * 256))
        .map(|(x, y)| {
            let mut net = net.clone();
            let mut out = vec![0.0; outputs];
            let mut sum = 0.0;
            for (scan, target) in x.chunks_exact(beams).zip(y.chunks_exact(outputs)) {
                net.forward(scan, &mut out);
                for (&o, &t) in out.iter().zip(target) {
                    sum += f64::from(element_loss_and_grad(kind, o, t).0);
                }
            }
            sum
        })
        .collect::<Vec<f64>>()
        .into_iter()
        .sum();
    total / (n * outputs) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loss::loss_tensor;
    use crate::model::Architecture;
    use crate::packed::tests::seeded;
    use burn::module::ParamId;

    fn take(grads: &mut GradientsParams, id: ParamId, rank: usize) -> Vec<f32> {
        let data = match rank {
            1 => grads.remove::<1>(id).map(|t| t.into_data()),
            2 => grads.remove::<2>(id).map(|t| t.into_data()),
            _ => grads.remove::<3>(id).map(|t| t.into_data()),
        };
        data.expect("a gradient").try_into_vec_as().unwrap()
    }

    fn check(
        architecture: Architecture,
        (outputs, speed_input): (usize, bool),
        kind: LossKind,
        kernel: Kernel,
    ) {
        if !kernel.supported() {
            println!(
                "{architecture:?} {kind:?}: the {kernel} path did not run (this CPU lacks it)"
            );
            return;
        }
        let device = Device::flex();
        let ad = device.clone().autodiff();
        let n = 2 * CHUNK + 5;
        let (model, x, y) = seeded(architecture, (outputs, speed_input), n, &ad);
        let inputs = 1080 + usize::from(speed_input);
        let rows: Vec<usize> = (0..n).rev().collect();
        let gather = |v: &[f32], w: usize| -> Vec<f32> {
            rows.iter()
                .flat_map(|&i| v[i * w..(i + 1) * w].to_vec())
                .collect()
        };
        let loss = loss_tensor(
            kind,
            model.forward(Tensor::from_data(
                TensorData::new(gather(&x, inputs), [n, 1, inputs]),
                &ad,
            )),
            Tensor::from_data(TensorData::new(gather(&y, outputs), [n, outputs]), &ad),
        );
        let reference_loss = f64::from(loss.clone().into_scalar::<f32>());
        let mut reference = GradientsParams::from_grads(loss.backward(), &model);
        let mut backprop = Backprop::new(&model, 1080).with_kernel(kernel);
        let path = backprop.kernel();
        assert_eq!(path, kernel);
        let (ours_loss, mut ours) =
            backprop.loss_and_gradients(&model, (&x, &y), &rows, kind, &device);
        assert!(
            (ours_loss - reference_loss).abs() < 1e-5 * reference_loss.abs().max(1e-3),
            "loss {ours_loss} vs Burn {reference_loss}"
        );
        for (layer, parameter) in backprop.net.layers.iter().zip(Parameter::of(&model)) {
            let (w, b) = parameter.ids();
            let rank = if matches!(layer.origin, Origin::Conv { .. }) {
                3
            } else {
                2
            };
            let mut pairs = vec![(take(&mut reference, w, rank), take(&mut ours, w, rank))];
            if let Some(b) = b {
                pairs.push((take(&mut reference, b, 1), take(&mut ours, b, 1)));
            }
            for (want, got) in pairs {
                assert_eq!(want.len(), got.len());
                let norm = want.iter().map(|v| v * v).sum::<f32>().sqrt();
                let error = want
                    .iter()
                    .zip(&got)
                    .map(|(a, b)| (a - b) * (a - b))
                    .sum::<f32>()
                    .sqrt();
                assert!(norm > 0.0, "{architecture:?}: a zero reference gradient");
                assert!(
                    error <= 1e-4 * norm,
                    "{architecture:?} {:?} path {path}: gradient error {error} vs norm {norm}",
                    layer.origin
                );
            }
        }
        assert!(
            ours.is_empty() && reference.is_empty(),
            "every parameter has a gradient"
        );
        println!(
            "{architecture:?} {outputs} output(s) {kind:?}, speed input {speed_input}: gradients \
             of the {path} path match Burn's autodiff"
        );
    }

    /// Every parameter of `model` as raw bits, in [`Parameter::of`] order.
    fn bits(model: &Model) -> Vec<Vec<u32>> {
        Parameter::of(model)
            .into_iter()
            .flat_map(|p| {
                let (w, b) = p.values();
                std::iter::once(w).chain(b)
            })
            .map(|v| v.iter().map(|x| x.to_bits()).collect())
            .collect()
    }

    #[test]
    fn packed_adamw_steps_are_burns_bit_for_bit() {
        use burn::optim::AdamWConfig;
        for architecture in [Architecture::TinyLidarNet, Architecture::Mlp] {
            let device = Device::flex();
            let ad = device.clone().autodiff();
            let n = 3 * CHUNK;
            let (model, x, y) = seeded(architecture, (2, false), n, &ad);
            let (betas, eps, decay) = ([0.9, 0.999], 1e-8, 0.01);
            let mut burn = AdamWConfig::new()
                .with_beta_1(betas[0])
                .with_beta_2(betas[1])
                .with_epsilon(eps)
                .with_weight_decay(decay)
                .init();
            let mut ours = AdamW::new(betas, eps, decay);
            let mut reference = Backprop::new(&model, 1080);
            let mut packed = Backprop::new(&model, 1080);
            let kernel = packed.kernel();
            let mut burn_model = model.clone();
            for step in 0..4 {
                let rows: Vec<usize> = (0..n).filter(|i| (i + step) % 3 != 0).collect();
                let lr = 1e-3 / (1.0 + step as f64);
                let (want_loss, grads) = reference.loss_and_gradients(
                    &burn_model,
                    (&x, &y),
                    &rows,
                    LossKind::Mse,
                    &device,
                );
                burn_model = burn.step(lr, burn_model, grads);
                let loss = packed.train_step((&x, &y), &rows, LossKind::Mse, lr, &mut ours);
                assert_eq!(loss.to_bits(), want_loss.to_bits(), "step {step}: the loss");
                assert_eq!(
                    bits(&packed.write_to(model.clone())),
                    bits(&burn_model),
                    "{architecture:?} step {step}: the parameters after AdamW"
                );
            }
            assert_ne!(
                bits(&burn_model),
                bits(&model),
                "the steps moved the parameters"
            );
            let written = packed.write_to(model.clone());
            assert!(Parameter::of(&written).iter().all(|p| {
                let (w, _) = p.ids();
                match p {
                    Parameter::Conv(c) => c.weight.val().is_require_grad() && c.weight.id == w,
                    Parameter::Dense(l) => l.weight.val().is_require_grad() && l.weight.id == w,
                }
            }));
            for layer in &packed.net.layers {
                for row in layer.weights.chunks_exact(layer.padded) {
                    assert!(
                        row[layer.width..].iter().all(|&p| p == 0.0),
                        "padding stays 0"
                    );
                }
            }
            println!(
                "{architecture:?}: 4 packed AdamW steps ({kernel} path) equal Burn's AdamW bit for bit"
            );
        }
    }

    #[test]
    fn tiny_lidar_net_gradients_match_burn_autodiff() {
        for kernel in Kernel::PREFERENCE
            .into_iter()
            .filter(|k| *k != Kernel::Burn)
        {
            check(
                Architecture::TinyLidarNet,
                (2, false),
                LossKind::Mse,
                kernel,
            );
            check(
                Architecture::TinyLidarNet,
                (1, false),
                LossKind::Huber(0.1),
                kernel,
            );
            check(Architecture::TinyLidarNet, (2, true), LossKind::Mse, kernel);
        }
    }

    #[test]
    fn mlp_gradients_match_burn_autodiff() {
        for kernel in Kernel::PREFERENCE
            .into_iter()
            .filter(|k| *k != Kernel::Burn)
        {
            check(Architecture::Mlp, (1, false), LossKind::Mse, kernel);
            check(Architecture::Mlp, (2, true), LossKind::Huber(0.5), kernel);
        }
    }
}
