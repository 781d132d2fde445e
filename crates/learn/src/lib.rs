//! raceloop's learning core: behavioral cloning of the Pure Pursuit expert with Tiny Lidar Net.
//!
//! - [`dataset`]: (scan, command) pairs, normalisation statistics, `data.safetensors`.
//! - [`model`]: Tiny Lidar Net (arXiv:2410.07447) and the MLP baseline, `[B, 1, 1080]` → `[B, k]`.
//! - [`loss`]: the regression loss and its gradient.
//! - [`backprop`]: the hand-written backward pass used for training on the CPU.
//! - [`adamw`]: AdamW over the packed parameters of that CPU path, bit for bit Burn's.
//! - [`train`]: the training loop (AdamW, mini-batches, validation, best checkpoint).
//! - [`packed`]: a trained network packed for fast single-scan CPU inference.
//! - [`policy`]: a model directory as a driving policy.
//!
//! The CPU backend is Burn's pure-Rust `flex`; `wgpu` (feature `wgpu`) runs on GPUs.

pub mod adamw;
pub mod backprop;
pub mod dataset;
pub mod error;
pub mod kernel;
pub mod loss;
pub mod model;
pub mod onnx;
// The one module with `unsafe`: AVX-512, AVX2 and NEON intrinsics, detected at run time.
#[allow(unsafe_code)]
pub mod packed;
pub mod policy;
pub mod train;

pub use dataset::{Dataset, Split, Stats};
pub use error::{LearnError, Result};
pub use loss::LossKind;
pub use model::{Architecture, Model, ModelConfig};
pub use policy::Policy;
pub use train::{
    Backward, EpochMetrics, Progress, Schedule, TrainConfig, Trained, train, train_with,
};
