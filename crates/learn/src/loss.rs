//! The regression loss of behavioral cloning, in one place: as a Burn tensor op (autodiff and
//! validation) and per element with its derivative (the hand-written backward pass of
//! `backprop`). Both reduce by the mean over `[batch, outputs]`.

use burn::nn::loss::{HuberLossConfig, MseLoss, Reduction};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

/// Regression loss on normalised labels.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum LossKind {
    /// Mean squared error.
    Mse,
    /// Huber loss with this threshold (the paper's choice; PyTorch's `HuberLoss(delta)`).
    Huber(f32),
}

/// The mean loss of `pred` against `target`, both `[batch, outputs]`: a scalar tensor `[1]`.
pub fn loss_tensor(kind: LossKind, pred: Tensor<2>, target: Tensor<2>) -> Tensor<1> {
    match kind {
        LossKind::Mse => MseLoss::new().forward(pred, target, Reduction::Mean),
        LossKind::Huber(delta) => {
            HuberLossConfig::new(delta)
                .init()
                .forward(pred, target, Reduction::Mean)
        }
    }
}

/// The loss of one prediction `y` against `t` (normalised units) and its derivative `dL/dy`,
/// before the mean's `1 / (batch · outputs)`.
pub fn element_loss_and_grad(kind: LossKind, y: f32, t: f32) -> (f32, f32) {
    let e = y - t;
    match kind {
        LossKind::Mse => (e * e, 2.0 * e),
        LossKind::Huber(delta) if e.abs() <= delta => (0.5 * e * e, e),
        LossKind::Huber(delta) => (delta * (e.abs() - 0.5 * delta), delta * e.signum()),
    }
}
