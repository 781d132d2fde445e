//! AdamW (Loshchilov & Hutter, arXiv:1711.05101) over flat parameter slices, for the CPU training
//! path (the hand-written backward pass, whose packed parameters it updates).
//!
//! Burn's AdamW runs about a dozen tensor operations per parameter tensor and step, each a pass
//! over memory (most allocating), and the packed path also had to copy the parameters out of the
//! model and the gradients into tensors for it every batch. This one updates the packed
//! parameters in place in one pass. It does the same f32 operations in the same order as
//! `burn_optim::AdamW` 0.22 (without AMSGrad or cautious decay), so the parameters it produces
//! are bit-identical to Burn's; the tests check that over several steps.

use rayon::prelude::*;

/// Elements per parallel work item.
const SPAN: usize = 8192;

/// AdamW state: the first and second moment estimates of every parameter slice, in the order
/// that [`AdamW::step`] receives them.
#[derive(Clone, Debug)]
pub struct AdamW {
    beta_1: f32,
    beta_2: f32,
    epsilon: f32,
    weight_decay: f32,
    /// Steps taken.
    time: i32,
    /// `(m, v)` per parameter slice.
    moments: Vec<(Vec<f32>, Vec<f32>)>,
}

impl AdamW {
    /// An optimizer with no steps taken: `betas` (β1, β2), `epsilon` (ε) and the decoupled
    /// `weight_decay` (λ, the parameters shrink by `lr · λ` per step), as `AdamWConfig`'s.
    pub fn new(betas: [f32; 2], epsilon: f32, weight_decay: f32) -> Self {
        Self {
            beta_1: betas[0],
            beta_2: betas[1],
            epsilon,
            weight_decay,
            time: 0,
            moments: Vec::new(),
        }
    }

    /// One step with learning rate `lr` over `params`, pairs of a parameter slice and its
    /// gradient of the same length, in the same order and sizes at every step:
    ///
    /// `m ← β1·m + (1−β1)·g`, `v ← β2·v + (1−β2)·g²`,
    /// `p ← p·(1 − lr·λ) − lr · (m / (1−β1ᵗ)) / (√(v / (1−β2ᵗ)) + ε)`.
    ///
    /// # Panics
    /// If a parameter and its gradient differ in length, or the slices change between steps.
    pub fn step<'a>(
        &mut self,
        lr: f64,
        params: impl IntoIterator<Item = (&'a mut [f32], &'a [f32])>,
    ) {
        self.time += 1;
        let first = self.time == 1;
        let decay_rate = lr * f64::from(self.weight_decay);
        let k = Coefficients {
            b1: self.beta_1,
            b2: self.beta_2,
            f1: 1.0 - self.beta_1,
            f2: 1.0 - self.beta_2,
            c1: 1f32 - self.beta_1.powi(self.time),
            c2: 1f32 - self.beta_2.powi(self.time),
            eps: self.epsilon,
            decay: (1.0 - decay_rate) as f32,
            lr: lr as f32,
        };
        let update = match (first, decay_rate != 0.0) {
            (true, true) => update::<true, true>,
            (true, false) => update::<true, false>,
            (false, true) => update::<false, true>,
            (false, false) => update::<false, false>,
        };
        let mut slot = 0;
        for (p, g) in params {
            assert_eq!(p.len(), g.len(), "a parameter and its gradient");
            if first {
                self.moments.push((vec![0.0; p.len()], vec![0.0; p.len()]));
            }
            let (m, v) = &mut self.moments[slot];
            assert_eq!(m.len(), p.len(), "the same parameters at every step");
            slot += 1;
            p.par_chunks_mut(SPAN)
                .zip(g.par_chunks(SPAN))
                .zip(m.par_chunks_mut(SPAN))
                .zip(v.par_chunks_mut(SPAN))
                .for_each(|(((p, g), m), v)| update(p, g, m, v, k));
        }
        assert_eq!(
            slot,
            self.moments.len(),
            "the same parameters at every step"
        );
    }
}

/// The scalars of one step.
#[derive(Clone, Copy)]
struct Coefficients {
    b1: f32,
    b2: f32,
    /// `1 − β1`, `1 − β2`.
    f1: f32,
    f2: f32,
    /// Bias corrections `1 − β1ᵗ`, `1 − β2ᵗ`.
    c1: f32,
    c2: f32,
    eps: f32,
    /// `1 − lr·λ`.
    decay: f32,
    lr: f32,
}

/// One step over a span; `FIRST` and `DECAY` are compile-time so that the loop has no branch
/// and vectorises.
fn update<const FIRST: bool, const DECAY: bool>(
    p: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    k: Coefficients,
) {
    for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m).zip(v) {
        if FIRST {
            *m = g * k.f1;
            *v = (g * g) * k.f2;
        } else {
            *m = *m * k.b1 + g * k.f1;
            *v = *v * k.b2 + (g * g) * k.f2;
        }
        let delta = (*m / k.c1) / ((*v / k.c2).sqrt() + k.eps);
        if DECAY {
            *p *= k.decay;
        }
        *p -= delta * k.lr;
    }
}
