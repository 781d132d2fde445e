//! A trained network's weights packed for fast inference on the CPU, and the matrix-product
//! kernel that it and the CPU backward pass (`backprop`) share.
//!
//! Burn's `flex` backend spends most of a batch-1 forward pass (about 90–130 µs for Tiny Lidar
//! Net here) on per-operation overhead: allocations, layout copies and dispatch. Driving needs
//! one scan at a time, so [`PackedNet`] runs the same network as [`crate::Model::forward`]
//! directly:
//!
//! - Activations are channels-last (`[len, channels]`), so the receptive field of a conv output
//!   position is `kernel × channels_in` contiguous values at offset `position × stride ×
//!   channels_in`. Every conv layer is then one matrix product `[len_out, kernel · channels_in] ×
//!   [kernel · channels_in, channels_out]` without an im2col copy, and a dense layer is the same
//!   product with one row.
//! - Weights are packed once as `[kernel · channels_in, channels_out]` with the output columns
//!   padded to a multiple of 16; the first dense layer after the conv stack has its rows
//!   permuted so that it reads channels-last features in the paper's channel-major flatten order.
//! - On x86-64 CPUs with AVX-512 a register-blocked micro-kernel keeps up to 24 vectors of 16
//!   outputs in registers (6 rows × 64 channels) while it streams the packed weights; with AVX2
//!   and FMA a second one keeps 6 rows × 16 channels, and on aarch64 a NEON one the same;
//!   elsewhere a portable loop does the same arithmetic. [`Kernel`] chooses (`RACELOOP_KERNEL`
//!   forces one).
//!
//! Outputs agree with Burn's forward pass to float rounding (≈1e-6; the summation order
//! differs), which the tests check for both architectures and every code path that the CPU has.

use burn::nn::Linear;
use burn::nn::conv::Conv1d;
use burn::prelude::*;
#[cfg(test)]
use burn::tensor::TensorData;

use crate::kernel::Kernel;
use crate::model::{Model, conv_out};

/// Output columns are padded to a multiple of this (one AVX-512 vector of f32).
const LANES: usize = 16;

/// Activation after a layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Activation {
    Relu,
    Tanh,
}

/// The Burn module behind a packed layer.
#[derive(Clone, Copy)]
pub(crate) enum Parameter<'a> {
    Conv(&'a Conv1d),
    Dense(&'a Linear),
}

impl<'a> Parameter<'a> {
    /// The layers of `model` in [`PackedNet`] order.
    pub(crate) fn of(model: &'a Model) -> Vec<Self> {
        let (convs, hidden, head) = match model {
            Model::TinyLidarNet(net) => {
                let (hidden, head) = net.dense();
                (net.convs(), hidden, head)
            }
            Model::Mlp(net) => {
                let (hidden, head) = net.dense();
                (&[][..], hidden, head)
            }
        };
        convs
            .iter()
            .map(Self::Conv)
            .chain(hidden.iter().map(Self::Dense))
            .chain([Self::Dense(head)])
            .collect()
    }

    /// Weight and bias values in Burn's layout.
    pub(crate) fn values(self) -> (Vec<f32>, Option<Vec<f32>>) {
        match self {
            Self::Conv(c) => (
                values(c.weight.val()),
                c.bias.as_ref().map(|b| values(b.val())),
            ),
            Self::Dense(l) => (
                values(l.weight.val()),
                l.bias.as_ref().map(|b| values(b.val())),
            ),
        }
    }

    /// Weight and bias parameter ids.
    pub(crate) fn ids(self) -> (burn::module::ParamId, Option<burn::module::ParamId>) {
        match self {
            Self::Conv(c) => (c.weight.id, c.bias.as_ref().map(|b| b.id)),
            Self::Dense(l) => (l.weight.id, l.bias.as_ref().map(|b| b.id)),
        }
    }
}

/// How a packed layer's weight rows map to the Burn parameter it came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    /// `Conv1d` weight `[width, channels_in, kernel]`; packed row `k · channels_in + i`.
    Conv { kernel: usize, channels_in: usize },
    /// `Linear` weight `[depth, width]`; with `Some((len, channels))` the packed row
    /// `t · channels + c` holds Burn's row `c · len + t`, and the rows past `len · channels`
    /// (the extras, such as the ego speed) keep their index.
    Dense {
        channels_last: Option<(usize, usize)>,
    },
}

/// One layer as a matrix product: `rows` output positions, each reading `depth` contiguous
/// inputs starting `step` inputs after the previous row's.
#[derive(Clone, Debug)]
pub(crate) struct Layer {
    /// Output positions (1 for a dense layer).
    pub rows: usize,
    /// Input offset between consecutive rows (`stride × channels_in`; `depth` for a dense layer,
    /// whose rows are separate inputs).
    pub step: usize,
    /// Inputs per row (`kernel × channels_in`, or the dense layer's input width).
    pub depth: usize,
    /// Outputs per row (channels or units).
    pub width: usize,
    /// `width` rounded up to a multiple of [`LANES`].
    pub padded: usize,
    /// Packed weights `[depth, padded]`, zero in the padding columns.
    pub weights: Vec<f32>,
    /// Bias `[padded]`.
    pub bias: Vec<f32>,
    pub activation: Activation,
    pub origin: Origin,
}

fn values<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor
        .into_data()
        .try_into_vec_as::<f32>()
        .expect("f32 parameters")
}

impl Origin {
    /// Where packed row `row` of a `[depth, width]` layer lives in the Burn parameter: Burn's
    /// index of element (`row`, `column`) is `base + column × stride`; returns (base, stride).
    pub(crate) fn burn_row(self, row: usize, width: usize) -> (usize, usize) {
        match self {
            Self::Conv {
                kernel,
                channels_in,
            } => {
                let (k, i) = (row / channels_in, row % channels_in);
                (i * kernel + k, channels_in * kernel)
            }
            Self::Dense { channels_last } => {
                let row = match channels_last {
                    Some((len, channels)) if row < len * channels => {
                        (row % channels) * len + row / channels
                    }
                    _ => row,
                };
                (row * width, 1)
            }
        }
    }
}

impl Layer {
    fn new(
        weight: &[f32],
        bias: Option<Vec<f32>>,
        (rows, step, depth, width): (usize, usize, usize, usize),
        activation: Activation,
        origin: Origin,
    ) -> Self {
        let padded = width.next_multiple_of(LANES);
        let mut layer = Self {
            rows,
            step,
            depth,
            width,
            padded,
            weights: vec![0.0; depth * padded],
            bias: vec![0.0; padded],
            activation,
            origin,
        };
        layer.load(weight, bias.as_deref());
        layer
    }

    /// Packs Burn's `weight` (`[width, channels_in, kernel]` or `[depth, width]`) and `bias`.
    pub(crate) fn load(&mut self, weight: &[f32], bias: Option<&[f32]>) {
        assert_eq!(weight.len(), self.depth * self.width, "weight size");
        for (row, packed) in self.weights.chunks_exact_mut(self.padded).enumerate() {
            let (base, stride) = self.origin.burn_row(row, self.width);
            for (column, w) in packed[..self.width].iter_mut().enumerate() {
                *w = weight[base + column * stride];
            }
        }
        if let Some(bias) = bias {
            self.bias[..self.width].copy_from_slice(bias);
        }
    }

    /// The inverse of [`Layer::load`] for a packed `[depth, padded]` array (a gradient): Burn's
    /// layout `[depth · width]`.
    pub(crate) fn unpack(&self, packed: &[f32]) -> Vec<f32> {
        let mut out = vec![0.0; self.depth * self.width];
        for (row, packed) in packed.chunks_exact(self.padded).enumerate() {
            let (base, stride) = self.origin.burn_row(row, self.width);
            for (column, &w) in packed[..self.width].iter().enumerate() {
                out[base + column * stride] = w;
            }
        }
        out
    }

    fn conv(conv: &Conv1d, len_in: usize) -> Self {
        let [width, channels_in, kernel] = conv.weight.dims();
        let shape = (
            conv_out(len_in, kernel, conv.stride),
            conv.stride * channels_in,
            kernel * channels_in,
            width,
        );
        let (weight, bias) = Parameter::Conv(conv).values();
        Self::new(
            &weight,
            bias,
            shape,
            Activation::Relu,
            Origin::Conv {
                kernel,
                channels_in,
            },
        )
    }

    fn dense(
        linear: &Linear,
        channels_last: Option<(usize, usize)>,
        activation: Activation,
    ) -> Self {
        let [depth, width] = linear.weight.dims();
        let (weight, bias) = Parameter::Dense(linear).values();
        Self::new(
            &weight,
            bias,
            (1, depth, depth, width),
            activation,
            Origin::Dense { channels_last },
        )
    }

    /// `output[rows, width] = activation(input · weights + bias)`.
    #[inline(always)]
    pub(crate) fn run(&self, input: &[f32], output: &mut [f32], kernel: Kernel) {
        self.run_rows(input, output, self.rows, kernel);
    }

    /// [`Layer::run`] for `rows` rows: a dense layer applied to `rows` inputs at once.
    #[inline(always)]
    pub(crate) fn run_rows(&self, input: &[f32], output: &mut [f32], rows: usize, kernel: Kernel) {
        gemm(
            &Gemm {
                a: input,
                a_row: self.step,
                a_col: 1,
                b: &self.weights,
                b_row: self.padded,
                m: rows,
                k: self.depth,
                n: self.padded,
                live: self.width,
                c_row: self.width,
                init: Init::Bias(&self.bias),
            },
            output,
            kernel,
        );
        let out = &mut output[..rows * self.width];
        match self.activation {
            Activation::Relu => out.iter_mut().for_each(|v| *v = v.max(0.0)),
            Activation::Tanh => out.iter_mut().for_each(|v| *v = v.tanh()),
        }
    }
}

/// What a matrix product starts from.
#[derive(Clone, Copy)]
pub(crate) enum Init<'a> {
    /// Each row starts at this `[n]` bias.
    Bias(&'a [f32]),
    /// Rows start at zero.
    Zero,
    /// Rows start at the output's current values (accumulate).
    Add,
}

/// `C[m, live] (=|+=) A[m, k] · B[k, n]` with `A(i, j) = a[i · a_row + j · a_col]`,
/// `B(j, :) = b[j · b_row ..][..n]` (`n` a multiple of 16, columns past `live` ignored) and
/// `C(i, :) = c[i · c_row ..][..live]`.
pub(crate) struct Gemm<'a> {
    pub a: &'a [f32],
    pub a_row: usize,
    pub a_col: usize,
    pub b: &'a [f32],
    pub b_row: usize,
    pub m: usize,
    pub k: usize,
    pub n: usize,
    pub live: usize,
    pub c_row: usize,
    pub init: Init<'a>,
}

/// Runs `g` into `c` with `kernel`'s micro-kernel (the AVX and NEON ones only where the CPU has
/// them, else the portable loops; [`Kernel::Burn`] runs the portable loops too).
///
/// # Panics
/// If a slice is too short for the shapes and strides.
pub(crate) fn gemm(g: &Gemm, c: &mut [f32], kernel: Kernel) {
    if g.m == 0 || g.k == 0 {
        return;
    }
    assert!(g.n.is_multiple_of(LANES) && g.live <= g.n);
    assert!(g.a.len() > (g.m - 1) * g.a_row + (g.k - 1) * g.a_col);
    assert!(g.b.len() >= (g.k - 1) * g.b_row + g.n);
    assert!(c.len() >= (g.m - 1) * g.c_row + g.live);
    if let Init::Bias(bias) = g.init {
        assert!(bias.len() >= g.n);
    }
    #[cfg(target_arch = "x86_64")]
    match kernel {
        Kernel::Avx512 if kernel.supported() => {
            // SAFETY: the CPU reports AVX-512F, and the bounds of every access are asserted
            // above.
            unsafe { avx512::gemm(g, c) };
            return;
        }
        Kernel::Avx2 if kernel.supported() => {
            // SAFETY: the CPU reports AVX2 and FMA, and the bounds are asserted above.
            unsafe { avx2::gemm(g, c) };
            return;
        }
        _ => {}
    }
    #[cfg(target_arch = "aarch64")]
    if kernel == Kernel::Neon && kernel.supported() {
        // SAFETY: the CPU reports NEON, and the bounds are asserted above.
        unsafe { neon::gemm(g, c) };
        return;
    }
    let _ = kernel;
    let mut acc = vec![0.0f32; g.n];
    for i in 0..g.m {
        let out = &mut c[i * g.c_row..i * g.c_row + g.live];
        match g.init {
            Init::Bias(bias) => acc.copy_from_slice(&bias[..g.n]),
            Init::Zero => acc.fill(0.0),
            Init::Add => {
                acc.fill(0.0);
                acc[..g.live].copy_from_slice(out);
            }
        }
        for j in 0..g.k {
            let a = g.a[i * g.a_row + j * g.a_col];
            for (s, &w) in acc.iter_mut().zip(&g.b[j * g.b_row..j * g.b_row + g.n]) {
                *s += a * w;
            }
        }
        out.copy_from_slice(&acc[..g.live]);
    }
}

/// Runs `f` compiled for AVX2 where `kernel` is an AVX one (and the CPU has AVX2), else as it
/// is. The element-wise loops that `f` inlines then run on 8 lanes; the operations and their
/// order stay the same, and so do the results.
pub(crate) fn widened<R>(kernel: Kernel, f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    if matches!(kernel, Kernel::Avx512 | Kernel::Avx2) && Kernel::Avx2.supported() {
        #[target_feature(enable = "avx2")]
        fn avx2<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        // SAFETY: the CPU supports AVX2.
        return unsafe { avx2(f) };
    }
    f()
}

/// A Tiny Lidar Net or MLP packed for single-scan CPU inference; see the module documentation.
#[derive(Clone, Debug)]
pub struct PackedNet {
    pub(crate) layers: Vec<Layer>,
    beams: usize,
    extras: usize,
    buffers: [Vec<f32>; 2],
    pub(crate) kernel: Kernel,
}

impl PackedNet {
    /// Packs `model` (Tiny Lidar Net or MLP) for `num_beams`-beam scans (followed by the
    /// model's extras, [`Model::extras`]).
    pub fn new(model: &Model, num_beams: usize) -> Self {
        let parameters = Parameter::of(model);
        let last = parameters.len() - 1;
        let mut layers: Vec<Layer> = Vec::with_capacity(parameters.len());
        for (i, parameter) in parameters.into_iter().enumerate() {
            let layer = match parameter {
                Parameter::Conv(conv) => {
                    Layer::conv(conv, layers.last().map_or(num_beams, |l| l.rows))
                }
                Parameter::Dense(linear) => {
                    let channels_last = layers
                        .last()
                        .filter(|l| matches!(l.origin, Origin::Conv { .. }))
                        .map(|l| (l.rows, l.width));
                    let activation = if i == last {
                        Activation::Tanh
                    } else {
                        Activation::Relu
                    };
                    Layer::dense(linear, channels_last, activation)
                }
            };
            layers.push(layer);
        }
        let largest = layers
            .iter()
            .map(|l| l.rows * l.width)
            .chain(layers.iter().map(|l| l.depth))
            .max()
            .unwrap_or(0);
        Self {
            layers,
            beams: num_beams,
            extras: model.extras(),
            buffers: [vec![0.0; largest], vec![0.0; largest]],
            kernel: match Kernel::choose() {
                Kernel::Burn => Kernel::Portable,
                k => k,
            },
        }
    }

    /// Packs the current parameters of `model`, the network this was built from (same
    /// architecture and sizes), without allocating new layers.
    ///
    /// # Panics
    /// If `model` has other layer sizes.
    pub fn reload(&mut self, model: &Model) {
        let parameters = Parameter::of(model);
        assert_eq!(parameters.len(), self.layers.len(), "same network");
        for (layer, parameter) in self.layers.iter_mut().zip(parameters) {
            let (weight, bias) = parameter.values();
            layer.load(&weight, bias.as_deref());
        }
    }

    /// Uses `kernel` (for tests and comparisons); a path that this CPU lacks, or
    /// [`Kernel::Burn`], runs the portable loops.
    pub fn with_kernel(mut self, kernel: Kernel) -> Self {
        self.kernel = if kernel.supported() && kernel != Kernel::Burn {
            kernel
        } else {
            Kernel::Portable
        };
        self
    }

    /// Uses the portable loops even where an AVX kernel is available.
    pub fn portable(self) -> Self {
        self.with_kernel(Kernel::Portable)
    }

    /// The micro-kernel in use.
    pub fn kernel(&self) -> Kernel {
        self.kernel
    }

    /// Number of leading conv layers (0 for the MLP).
    pub(crate) fn convs(&self) -> usize {
        self.layers
            .iter()
            .take_while(|l| matches!(l.origin, Origin::Conv { .. }))
            .count()
    }

    /// Arithmetic of one forward pass: 2 × the multiply-adds of every layer (padding left out).
    pub fn flop(&self) -> u64 {
        self.layers
            .iter()
            .map(|l| 2 * (l.rows * l.depth * l.width) as u64)
            .sum()
    }

    /// Input length per sample: the scan's beams plus the extras.
    pub fn inputs(&self) -> usize {
        self.beams + self.extras
    }

    /// Scan length (beams).
    pub fn beams(&self) -> usize {
        self.beams
    }

    /// Network outputs in (-1, 1) for one normalised input `[num_beams + extras]` (the scan,
    /// then the normalised ego speed where the model reads it), written to `out` (`[outputs]`).
    ///
    /// # Panics
    /// If `input` is not `[num_beams + extras]` or `out` is not `[outputs]`.
    pub fn forward(&mut self, input: &[f32], out: &mut [f32]) {
        let n = self.inputs();
        assert_eq!(input.len(), n, "input must be [{n}]");
        let convs = self.convs();
        let [a, b] = &mut self.buffers;
        let (mut src, mut dst) = (a, b);
        let last = self.layers.len() - 1;
        for (i, layer) in self.layers.iter().enumerate() {
            if i == convs && i > 0 && self.extras > 0 {
                let features = layer.depth - self.extras;
                src[features..layer.depth].copy_from_slice(&input[self.beams..]);
            }
            let input: &[f32] = if i == 0 { input } else { src };
            if i == last {
                assert_eq!(out.len(), layer.width, "out must be [{}]", layer.width);
                layer.run(input, out, self.kernel);
            } else {
                layer.run(input, dst, self.kernel);
                std::mem::swap(&mut src, &mut dst);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{Gemm, Init, LANES};

    /// [`super::gemm`] in register-blocked tiles of `R` rows × `V` vectors of 16 columns.
    ///
    /// # Safety
    /// The CPU must support AVX-512F, and the slices must hold the shapes (asserted by the
    /// caller).
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn gemm(g: &Gemm, c: &mut [f32]) {
        let mut col = 0;
        while col < g.n {
            let vectors = ((g.n - col) / LANES).min(4);
            // SAFETY: as for this function.
            unsafe {
                match vectors {
                    4 => panel::<4, 6>(g, c, col),
                    3 => panel::<3, 8>(g, c, col),
                    2 => panel::<2, 12>(g, c, col),
                    _ => panel::<1, 12>(g, c, col),
                }
            }
            col += vectors * LANES;
        }
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn panel<const V: usize, const R: usize>(g: &Gemm, c: &mut [f32], col: usize) {
        let mut row = 0;
        while row + R <= g.m {
            unsafe { tile::<V, R>(g, c, col, row) };
            row += R;
        }
        // The last rows in tiles of 4, 2 and 1 rather than one by one, so that each weight
        // vector loaded serves several rows.
        while row + 4 <= g.m {
            unsafe { tile::<V, 4>(g, c, col, row) };
            row += 4;
        }
        if row + 2 <= g.m {
            unsafe { tile::<V, 2>(g, c, col, row) };
            row += 2;
        }
        if row < g.m {
            unsafe { tile::<V, 1>(g, c, col, row) };
        }
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn tile<const V: usize, const R: usize>(
        g: &Gemm,
        c: &mut [f32],
        col: usize,
        row: usize,
    ) {
        let mask = |v: usize| -> __mmask16 {
            let live = g.live.saturating_sub(col + v * LANES).min(LANES);
            ((1u32 << live) - 1) as u16
        };
        unsafe {
            let b = g.b.as_ptr().add(col);
            let a = g.a.as_ptr().add(row * g.a_row);
            let out = c.as_mut_ptr().add(row * g.c_row + col);
            let mut acc = [[_mm512_setzero_ps(); V]; R];
            match g.init {
                Init::Bias(bias) => {
                    for (v, a) in acc[0].iter_mut().enumerate() {
                        *a = _mm512_loadu_ps(bias.as_ptr().add(col + v * LANES));
                    }
                    for r in 1..R {
                        acc[r] = acc[0];
                    }
                }
                Init::Zero => {}
                Init::Add => {
                    for (r, acc) in acc.iter_mut().enumerate() {
                        for (v, acc) in acc.iter_mut().enumerate() {
                            *acc = _mm512_maskz_loadu_ps(mask(v), out.add(r * g.c_row + v * LANES));
                        }
                    }
                }
            }
            for j in 0..g.k {
                let bj = b.add(j * g.b_row);
                let mut bv = [_mm512_setzero_ps(); V];
                for (v, bv) in bv.iter_mut().enumerate() {
                    *bv = _mm512_loadu_ps(bj.add(v * LANES));
                }
                let aj = a.add(j * g.a_col);
                for (r, acc) in acc.iter_mut().enumerate() {
                    let x = _mm512_set1_ps(*aj.add(r * g.a_row));
                    for v in 0..V {
                        acc[v] = _mm512_fmadd_ps(x, bv[v], acc[v]);
                    }
                }
            }
            for (r, acc) in acc.iter().enumerate() {
                for (v, acc) in acc.iter().enumerate() {
                    let m = mask(v);
                    if m != 0 {
                        _mm512_mask_storeu_ps(out.add(r * g.c_row + v * LANES), m, *acc);
                    }
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{Gemm, Init, LANES};

    /// Rows per register tile: 6 rows × 2 vectors of 8 columns keep 12 accumulators, 2 weight
    /// vectors and a broadcast in the 16 YMM registers.
    const ROWS: usize = 6;

    /// [`super::gemm`] in register-blocked tiles of up to [`ROWS`] rows × 16 columns, with the
    /// same fused multiply-adds in the same order as the AVX-512 kernel (bit-identical output).
    /// A 16-column block whose second half lies wholly past `live` (the padding of a 24-, 36- or
    /// 100-wide layer) runs as 8 columns. A one-row product runs in wider tiles
    /// ([`single_row`]).
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA, and the slices must hold the shapes (asserted by the
    /// caller).
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn gemm(g: &Gemm, c: &mut [f32]) {
        if g.m == 1 {
            // SAFETY: as for this function.
            unsafe { single_row(g, c) };
            return;
        }
        let mut col = 0;
        while col < g.n {
            // SAFETY (each): as for this function.
            unsafe {
                if g.live > col + 8 {
                    block::<2>(g, c, col);
                } else {
                    block::<1>(g, c, col);
                }
            }
            col += LANES;
        }
    }

    /// A one-row product (batch-1 dense layers) in tiles of up to 8 halves of 8 columns: 8
    /// independent chains of multiply-adds rather than 2 keep both FMA units busy despite their
    /// latency. Each column's multiply-adds and their order are those of [`block`].
    #[target_feature(enable = "avx2,fma")]
    unsafe fn single_row(g: &Gemm, c: &mut [f32]) {
        let mut col = 0;
        while col < g.live {
            // SAFETY (each): as for `gemm`; the halves end before `n`, since `live ≤ n` and `n`
            // is a multiple of 16.
            unsafe {
                match (g.live - col).div_ceil(8).min(8) {
                    8 => tile::<1, 8>(g, c, col, 0),
                    7 => tile::<1, 7>(g, c, col, 0),
                    6 => tile::<1, 6>(g, c, col, 0),
                    5 => tile::<1, 5>(g, c, col, 0),
                    4 => tile::<1, 4>(g, c, col, 0),
                    3 => tile::<1, 3>(g, c, col, 0),
                    2 => tile::<1, 2>(g, c, col, 0),
                    _ => tile::<1, 1>(g, c, col, 0),
                }
            }
            col += 64;
        }
    }

    /// The 16-column block at `col`, its first `H` halves of 8 columns, down all rows.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn block<const H: usize>(g: &Gemm, c: &mut [f32], col: usize) {
        let mut row = 0;
        while row + ROWS <= g.m {
            // SAFETY: as for `gemm`.
            unsafe { tile::<ROWS, H>(g, c, col, row) };
            row += ROWS;
        }
        // SAFETY (each): as for `gemm`.
        unsafe {
            match g.m - row {
                5 => tile::<5, H>(g, c, col, row),
                4 => tile::<4, H>(g, c, col, row),
                3 => tile::<3, H>(g, c, col, row),
                2 => tile::<2, H>(g, c, col, row),
                1 => tile::<1, H>(g, c, col, row),
                _ => {}
            }
        }
    }

    /// Lanes of the 8-column half `h` of the block at `col` that lie before `live`, as a
    /// mask for `maskload`/`maskstore`, and whether any does.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn mask(g: &Gemm, col: usize, h: usize) -> (__m256i, bool) {
        let live = g.live.saturating_sub(col + h * 8).min(8) as i32;
        let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        (_mm256_cmpgt_epi32(_mm256_set1_epi32(live), lanes), live > 0)
    }

    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn tile<const R: usize, const H: usize>(
        g: &Gemm,
        c: &mut [f32],
        col: usize,
        row: usize,
    ) {
        let masks: [(__m256i, bool); H] = std::array::from_fn(|h| mask(g, col, h));
        unsafe {
            let b = g.b.as_ptr().add(col);
            let a = g.a.as_ptr().add(row * g.a_row);
            let out = c.as_mut_ptr().add(row * g.c_row + col);
            let mut acc = [[_mm256_setzero_ps(); H]; R];
            match g.init {
                Init::Bias(bias) => {
                    for (h, a) in acc[0].iter_mut().enumerate() {
                        *a = _mm256_loadu_ps(bias.as_ptr().add(col + h * 8));
                    }
                    for r in 1..R {
                        acc[r] = acc[0];
                    }
                }
                Init::Zero => {}
                Init::Add => {
                    for (r, acc) in acc.iter_mut().enumerate() {
                        for (h, acc) in acc.iter_mut().enumerate() {
                            if masks[h].1 {
                                *acc = _mm256_maskload_ps(out.add(r * g.c_row + h * 8), masks[h].0);
                            }
                        }
                    }
                }
            }
            for j in 0..g.k {
                let bj = b.add(j * g.b_row);
                let bv: [__m256; H] = std::array::from_fn(|h| _mm256_loadu_ps(bj.add(h * 8)));
                let aj = a.add(j * g.a_col);
                for (r, acc) in acc.iter_mut().enumerate() {
                    let x = _mm256_set1_ps(*aj.add(r * g.a_row));
                    for h in 0..H {
                        acc[h] = _mm256_fmadd_ps(x, bv[h], acc[h]);
                    }
                }
            }
            for (r, acc) in acc.iter().enumerate() {
                for (h, acc) in acc.iter().enumerate() {
                    if masks[h].1 {
                        _mm256_maskstore_ps(out.add(r * g.c_row + h * 8), masks[h].0, *acc);
                    }
                }
            }
        }
    }
}

#[cfg(target_arch = "aarch64")]
mod neon {
    use std::arch::aarch64::*;

    use super::{Gemm, Init, LANES};

    /// Rows per register tile: 6 rows × 4 vectors of 4 columns keep 24 accumulators, 4 weight
    /// vectors and a broadcast in the 32 vector registers.
    const ROWS: usize = 6;

    /// [`super::gemm`] in register-blocked tiles of up to [`ROWS`] rows × 16 columns, with the
    /// same fused multiply-adds (`FMLA`) in the same order as the AVX kernels, so the outputs
    /// are bit-identical to theirs. The columns of a block past `live` are computed (`b` and a
    /// bias are padded to `n`) but neither read from nor written to `c`.
    ///
    /// # Safety
    /// The CPU must support NEON, and the slices must hold the shapes (asserted by the caller).
    #[target_feature(enable = "neon")]
    pub(super) unsafe fn gemm(g: &Gemm, c: &mut [f32]) {
        let mut col = 0;
        while col < g.live {
            let mut row = 0;
            while row + ROWS <= g.m {
                // SAFETY: as for this function.
                unsafe { tile::<ROWS>(g, c, col, row) };
                row += ROWS;
            }
            // SAFETY (each): as for this function.
            unsafe {
                match g.m - row {
                    5 => tile::<5>(g, c, col, row),
                    4 => tile::<4>(g, c, col, row),
                    3 => tile::<3>(g, c, col, row),
                    2 => tile::<2>(g, c, col, row),
                    1 => tile::<1>(g, c, col, row),
                    _ => {}
                }
            }
            col += LANES;
        }
    }

    #[target_feature(enable = "neon")]
    #[inline]
    unsafe fn tile<const R: usize>(g: &Gemm, c: &mut [f32], col: usize, row: usize) {
        let live = (g.live - col).min(LANES);
        let mut staged = [0.0f32; LANES];
        unsafe {
            let b = g.b.as_ptr().add(col);
            let a = g.a.as_ptr().add(row * g.a_row);
            let out = c.as_mut_ptr().add(row * g.c_row + col);
            let mut acc = [[vdupq_n_f32(0.0); 4]; R];
            match g.init {
                Init::Bias(bias) => {
                    for (v, a) in acc[0].iter_mut().enumerate() {
                        *a = vld1q_f32(bias.as_ptr().add(col + 4 * v));
                    }
                    for r in 1..R {
                        acc[r] = acc[0];
                    }
                }
                Init::Zero => {}
                Init::Add => {
                    for (r, acc) in acc.iter_mut().enumerate() {
                        std::ptr::copy_nonoverlapping(
                            out.add(r * g.c_row),
                            staged.as_mut_ptr(),
                            live,
                        );
                        for (v, acc) in acc.iter_mut().enumerate() {
                            *acc = vld1q_f32(staged.as_ptr().add(4 * v));
                        }
                    }
                }
            }
            for j in 0..g.k {
                let bj = b.add(j * g.b_row);
                let bv: [float32x4_t; 4] = std::array::from_fn(|v| vld1q_f32(bj.add(4 * v)));
                let aj = a.add(j * g.a_col);
                for (r, acc) in acc.iter_mut().enumerate() {
                    let x = vdupq_n_f32(*aj.add(r * g.a_row));
                    for v in 0..4 {
                        acc[v] = vfmaq_f32(acc[v], bv[v], x);
                    }
                }
            }
            for (r, acc) in acc.iter().enumerate() {
                let row_out = out.add(r * g.c_row);
                if live == LANES {
                    for (v, acc) in acc.iter().enumerate() {
                        vst1q_f32(row_out.add(4 * v), *acc);
                    }
                } else {
                    for (v, acc) in acc.iter().enumerate() {
                        vst1q_f32(staged.as_mut_ptr().add(4 * v), *acc);
                    }
                    std::ptr::copy_nonoverlapping(staged.as_ptr(), row_out, live);
                }
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::BURN_RNG;
    use crate::model::{Architecture, ModelConfig};
    use rand::{Rng, SeedableRng};

    /// A freshly initialised network on `device` (seeded), `n` standard-normal normalised
    /// inputs `[n, 1080 + extras]` (scans, and a speed with `speed_input`) and targets in
    /// (-0.9, 0.9) `[n, outputs]`.
    pub(crate) fn seeded(
        architecture: Architecture,
        (outputs, speed_input): (usize, bool),
        n: usize,
        device: &Device,
    ) -> (Model, Vec<f32>, Vec<f32>) {
        let model = {
            let _turn = BURN_RNG.lock().unwrap_or_else(|e| e.into_inner());
            device.seed(11);
            let model = ModelConfig {
                architecture,
                num_beams: 1080,
                outputs,
                members: 1,
                speed_input,
            }
            .init(device);
            // Parameters initialise lazily, on first use: draw them while holding the turn.
            PackedNet::new(&model, 1080);
            model
        };
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(5);
        let normal = rand_distr::StandardNormal;
        let x = (0..n * (1080 + usize::from(speed_input)))
            .map(|_| rng.sample::<f32, _>(normal))
            .collect();
        let y = (0..n * outputs)
            .map(|_| rng.random_range(-0.9..0.9))
            .collect();
        (model, x, y)
    }

    fn compare(architecture: Architecture, outputs: usize, speed_input: bool) {
        let device = Device::flex();
        let (model, x, _) = seeded(architecture, (outputs, speed_input), 4, &device);
        let inputs = 1080 + usize::from(speed_input);
        let scans = Tensor::<3>::from_data(TensorData::new(x.clone(), [4, 1, inputs]), &device);
        let reference = values(model.forward(scans));
        let (lo, hi) = reference
            .iter()
            .fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        assert!(
            hi - lo > 1e-4,
            "outputs should differ between scans: {reference:?}"
        );
        let packed = PackedNet::new(&model, 1080);
        let kernels: Vec<Kernel> = Kernel::available()
            .into_iter()
            .filter(|k| *k != Kernel::Burn)
            .collect();
        for k in Kernel::PREFERENCE {
            if k != Kernel::Burn && !kernels.contains(&k) {
                println!("{architecture:?}: the {k} path did not run (this CPU lacks it)");
            }
        }
        let mut first_fma: Option<Vec<f32>> = None;
        for kernel in kernels {
            let mut net = packed.clone().with_kernel(kernel);
            let path = net.kernel();
            assert_eq!(path, kernel);
            let mut all = Vec::new();
            let mut out = vec![0.0; outputs];
            for (scan, want) in x.chunks(inputs).zip(reference.chunks(outputs)) {
                net.forward(scan, &mut out);
                all.extend_from_slice(&out);
                for (a, b) in out.iter().zip(want) {
                    assert!(
                        (a - b).abs() < 1e-5,
                        "{architecture:?} path {path}: {a} vs Burn {b}"
                    );
                }
            }
            println!(
                "{architecture:?} {outputs} output(s), speed input {speed_input}: the {path} \
                 forward pass matches Burn within 1e-5"
            );
            if path != Kernel::Portable {
                match &first_fma {
                    Some(other) => assert_eq!(other, &all, "FMA kernels are bit-identical"),
                    None => first_fma = Some(all),
                }
            }
        }
    }

    /// [`gemm_every_tile_remainder`]'s hash of the AVX-512 and AVX2 kernels' outputs.
    const FMA_GEMM_HASH: u64 = 10_057_103_649_689_113_148;

    /// Every row count from 1 to 26 (each remainder of the 6- and 12-row tiles), 1 to 9 vectors
    /// of columns with a ragged live width, each `Init`: every path against an f64 product, and
    /// the FMA paths (AVX-512, AVX2, NEON) bit for bit against each other and, through a hash of
    /// their outputs, against the values that the AVX kernels give on x86-64 (so that NEON on
    /// aarch64 is checked against them too).
    #[test]
    fn gemm_every_tile_remainder() {
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(7);
        let mut draw =
            |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-1.0..1.0)).collect() };
        let kernels: Vec<Kernel> = Kernel::available()
            .into_iter()
            .filter(|k| *k != Kernel::Burn)
            .collect();
        // FNV-1a over the FMA kernels' outputs.
        let mut hash = 0xcbf2_9ce4_8422_2325u64;
        for m in 1..=26 {
            for vectors in 1..=9 {
                let (k, n) = (7, vectors * LANES);
                let (a, b, bias, start) = (draw(m * k), draw(k * n), draw(n), draw(m * n));
                // The last block full but for 3 columns, half full, and 3 columns wide.
                for (live, init) in [n - 3, n - 8, n - 13]
                    .into_iter()
                    .flat_map(|live| (0..3).map(move |init| (live, init)))
                {
                    let g = Gemm {
                        a: &a,
                        a_row: k,
                        a_col: 1,
                        b: &b,
                        b_row: n,
                        m,
                        k,
                        n,
                        live,
                        c_row: n,
                        init: match init {
                            0 => Init::Bias(&bias),
                            1 => Init::Zero,
                            _ => Init::Add,
                        },
                    };
                    let mut first: Option<Vec<f32>> = None;
                    for &kernel in &kernels {
                        let mut c = start.clone();
                        gemm(&g, &mut c, kernel);
                        for i in 0..m {
                            for j in 0..n {
                                let got = c[i * n + j];
                                if j >= live {
                                    assert_eq!(got, start[i * n + j], "{kernel}: beyond live");
                                    continue;
                                }
                                let mut want = match init {
                                    0 => f64::from(bias[j]),
                                    1 => 0.0,
                                    _ => f64::from(start[i * n + j]),
                                };
                                for t in 0..k {
                                    want += f64::from(a[i * k + t]) * f64::from(b[t * n + j]);
                                }
                                assert!(
                                    (f64::from(got) - want).abs() < 1e-5,
                                    "{kernel} m {m} n {n} live {live} init {init} ({i}, {j}): {got} vs {want}"
                                );
                            }
                        }
                        if kernel != Kernel::Portable {
                            match &first {
                                Some(other) => assert_eq!(
                                    other, &c,
                                    "FMA kernels are bit-identical (m {m}, n {n}, live {live})"
                                ),
                                None => {
                                    for v in &c {
                                        hash = (hash ^ u64::from(v.to_bits()))
                                            .wrapping_mul(0x0000_0100_0000_01b3);
                                    }
                                    first = Some(c);
                                }
                            }
                        }
                    }
                }
            }
        }
        if kernels.iter().any(|k| k.numerics() == "fma") {
            assert_eq!(
                hash, FMA_GEMM_HASH,
                "the FMA kernels' outputs are those of x86-64's"
            );
        }
        println!("gemm: paths {kernels:?} agree for 1 to 26 rows and 1 to 9 column vectors");
    }

    #[test]
    fn packed_tiny_lidar_net_matches_burn() {
        compare(Architecture::TinyLidarNet, 2, false);
        compare(Architecture::TinyLidarNet, 1, false);
        compare(Architecture::TinyLidarNet, 2, true);
    }

    #[test]
    fn packed_mlp_matches_burn() {
        compare(Architecture::Mlp, 1, false);
        compare(Architecture::Mlp, 2, true);
    }
}
