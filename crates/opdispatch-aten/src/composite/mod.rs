//! Kernels registered at the composite alias keys, which fill every backend's slot.
//!
//! - [`implicit`]: CompositeImplicitAutograd, decompositions into other aten operators
//!   called through the dispatcher (autograd differentiates the pieces); [`matmul`] is its
//!   `matmul`, PyTorch's `_matmul_impl`.
//! - [`explicit`]: CompositeExplicitAutograd, factories without tensor arguments (they
//!   dispatch on Undefined and take the device from their `device` argument) and kernels
//!   that build on other dispatched operators.

pub(crate) mod explicit;
pub(crate) mod implicit;
pub(crate) mod matmul;
