//! The second batch of aten operators (rounding and transcendental unary ops and their
//! in-place forms, predicates, clamp, the remainder family, logical ops, lerp, masked_fill,
//! more reductions and scans, softmax, indexing, triangular and diagonal ops, `new_*` and the
//! `eye`/`linspace` factories), one file per dispatch key as the first batch:
//!
//! ```text
//! cpu.rs       CPU: the runtime's loops (opdispatch_tensor::ops, *_more.rs)
//! meta.rs      Meta: the same meta functions plus a Meta allocation
//! implicit.rs  CompositeImplicitAutograd: PyTorch's decompositions, through the dispatcher
//! explicit.rs  CompositeExplicitAutograd: factories and kernels built on other operators
//! ```
//!
//! [`with_more`] appends each key's kernels to that key's IMPL block.

mod cpu;
mod explicit;
mod implicit;
mod meta;

use opdispatch_dispatch::DispatchKey;

use crate::calling::Kernels;

/// `kernels` (one IMPL block's) with this batch's kernels for `key` appended.
pub(crate) fn with_more(key: DispatchKey, mut kernels: Kernels) -> Kernels {
    match key {
        DispatchKey::CPU => kernels.extend(cpu::kernels()),
        DispatchKey::Meta => kernels.extend(meta::kernels()),
        DispatchKey::CompositeImplicitAutograd => kernels.extend(implicit::kernels()),
        DispatchKey::CompositeExplicitAutograd => kernels.extend(explicit::kernels()),
        _ => {}
    }
    kernels
}

/// Every unary operator of [`opdispatch_tensor::ops::MathOp`]: the operator's name, its
/// in-place overload's name (where PyTorch has one) and the op.
pub(crate) const UNARY: &[(&str, Option<&str>, opdispatch_tensor::ops::MathOp)] = {
    use opdispatch_tensor::ops::MathOp as M;
    &[
        ("floor", Some("floor_"), M::Floor),
        ("ceil", Some("ceil_"), M::Ceil),
        ("round", Some("round_"), M::Round),
        ("trunc", Some("trunc_"), M::Trunc),
        ("frac", Some("frac_"), M::Frac),
        ("sign", Some("sign_"), M::Sign),
        ("rsqrt", Some("rsqrt_"), M::Rsqrt),
        ("log1p", Some("log1p_"), M::Log1p),
        ("expm1", Some("expm1_"), M::Expm1),
        ("log2", Some("log2_"), M::Log2),
        ("log10", Some("log10_"), M::Log10),
        ("exp2", Some("exp2_"), M::Exp2),
        ("tan", Some("tan_"), M::Tan),
        ("asin", Some("asin_"), M::Asin),
        ("acos", Some("acos_"), M::Acos),
        ("atan", Some("atan_"), M::Atan),
        ("sinh", Some("sinh_"), M::Sinh),
        ("cosh", Some("cosh_"), M::Cosh),
        ("erf", Some("erf_"), M::Erf),
        ("isnan", None, M::IsNan),
        ("isinf", None, M::IsInf),
        ("logical_not", Some("logical_not_"), M::LogicalNot),
    ]
};

/// The binary operators of [`opdispatch_tensor::ops::BinaryMore`] with a Tensor-Tensor
/// overload: the overload name, the in-place overload name, the op.
pub(crate) const BINARY: &[(&str, &str, opdispatch_tensor::ops::BinaryMore)] = {
    use opdispatch_tensor::ops::BinaryMore as B;
    &[
        ("atan2", "atan2_", B::Atan2),
        ("remainder.Tensor", "remainder_.Tensor", B::Remainder),
        ("fmod.Tensor", "fmod_.Tensor", B::Fmod),
        ("floor_divide", "floor_divide_.Tensor", B::FloorDivide),
        ("logical_and", "logical_and_", B::LogicalAnd),
        ("logical_or", "logical_or_", B::LogicalOr),
        ("logical_xor", "logical_xor_", B::LogicalXor),
    ]
};

/// PyTorch's checks before an in-place op writes a result of `sizes` and `dtype` into `x`.
pub(crate) fn check_inplace(
    x: &opdispatch_tensor::Tensor,
    sizes: &[usize],
    dtype: opdispatch_tensor::ScalarType,
) -> opdispatch_dispatch::Result<()> {
    use opdispatch_tensor::TensorError;
    if sizes != x.sizes() {
        return Err(TensorError::other(format!(
            "output with shape {:?} doesn't match the broadcast shape {:?}",
            x.sizes(),
            sizes
        ))
        .into());
    }
    if !opdispatch_tensor::dtype::can_cast(dtype, x.dtype()) {
        return Err(TensorError::dtype(format!(
            "result type {} can't be cast to the desired output type {}",
            dtype.cpp_name(),
            x.dtype().cpp_name()
        ))
        .into());
    }
    Ok(())
}
