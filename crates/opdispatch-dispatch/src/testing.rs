//! The identity `Tensor -> Tensor` kernels behind PyTorch's test helpers (`def_name_t_t`,
//! `def_schema_t_t`, `impl_t_t`): typed and boxed, with inferred schema `(Tensor _0) -> Tensor _0`.

use crate::ivalue::TensorRef;
use crate::library::CppFunction;

fn identity_t_t(t: TensorRef) -> TensorRef {
    t
}

/// A fresh `CppFunction` for the identity test kernel.
pub fn t_t_kernel() -> CppFunction {
    CppFunction::typed(identity_t_t as fn(TensorRef) -> TensorRef)
}
