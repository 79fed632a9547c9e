//! Reverse-mode automatic differentiation on the Autograd dispatch keys (PyTorch's
//! `torch/csrc/autograd`), in Rust, with no Python:
//!
//! - [`grad_mode`]: the thread-local grad mode (`no_grad`, `enable_grad`).
//! - [`meta`]: the per-tensor state (`requires_grad`, `grad`, `grad_fn`, view base), stored on
//!   the `TensorImpl` through the tensor crate's `AutogradMetaInterface`.
//! - [`node`]: graph nodes, edges, input metadata and `AccumulateGrad`.
//! - [`saved`]: `SavedVariable` (version checks, outputs saved without a reference cycle,
//!   freeing after backward).
//! - [`engine`]: the backward pass (`backward`, `grad`).
//! - [`kernels`] and [`formulas`]: the Autograd kernel every differentiable aten operator gets,
//!   and the derivative formulas of `tools/autograd/derivatives.yaml` it records; in-place
//!   operators also get an ADInplaceOrView kernel that bumps version counters.
//!
//! Front ends implement [`node::Node`] for their own nodes (the Python crate's
//! `autograd.Function` node) and call [`register`] once after `aten::register()`.

mod calls;
mod calls_more;
mod copy_slices;
pub mod engine;
mod formulas;
mod formulas_more;
pub mod grad_mode;
pub mod hooks;
pub mod kernels;
pub mod meta;
pub mod node;
pub mod saved;

pub use engine::{backward, grad};
pub use grad_mode::{is_grad_enabled, set_grad_enabled, AutoGradMode};
pub use meta::AutogradMeta;
pub use node::{Edge, Node, TensorMeta};

use opdispatch_dispatch::{DispatchError, Result};

/// A RuntimeError with PyTorch's text.
pub(crate) fn runtime(msg: impl Into<String>) -> DispatchError {
    DispatchError::Runtime(msg.into())
}

/// Registers the Autograd and ADInplaceOrView kernels of the aten operators (once per
/// process; `opdispatch_aten::register()` must have run).
pub fn register() -> Result<()> {
    kernels::register()
}
