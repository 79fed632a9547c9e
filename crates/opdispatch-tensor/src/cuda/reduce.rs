//! Reductions on CUDA tensors: the input is laid out as a contiguous `[outer, r]` (kept
//! dimensions first, in order, then the reduced ones; a copy only when the tensor is not
//! already so), and one block per output row folds its `r` elements.

use std::ffi::c_void;

use opdispatch_cuda::codegen::{Reduce, Ty};
use opdispatch_cuda::launch::{launch_reduce, KernelKey};

use super::{cuda_err, index, ptr, ty};
use crate::error::Result;
use crate::ops::{self, meta};
use crate::{ScalarType, Tensor};

/// The accumulation type for values of type `t`.
fn acc_of(t: Ty) -> Ty {
    match t {
        Ty::BF16 | Ty::F32 => Ty::F32,
        Ty::F64 => Ty::F64,
        _ => Ty::I64,
    }
}

/// Folds the dimensions flagged in `reduced` of `t` with `op` into `values` and/or `indices`
/// (contiguous tensors of one element per output row), scaling sums by `scale`.
fn fold(
    t: &Tensor,
    reduced: &[bool],
    op: Reduce,
    values: Option<&Tensor>,
    indices: Option<&Tensor>,
    scale: f64,
    name: &str,
) -> Result<()> {
    let nd = t.dim();
    let mut perm: Vec<i64> = (0..nd).filter(|&d| !reduced[d]).map(|d| d as i64).collect();
    perm.extend((0..nd).filter(|&d| reduced[d]).map(|d| d as i64));
    let laid = super::contiguous(&ops::permute(t, &perm)?)?;
    let outer: usize = (0..nd)
        .filter(|&d| !reduced[d])
        .map(|d| t.sizes()[d])
        .product();
    let r: usize = (0..nd)
        .filter(|&d| reduced[d])
        .map(|d| t.sizes()[d])
        .product();
    let a = ty(t.dtype(), name)?;
    let out_ty = match values {
        Some(v) => ty(v.dtype(), name)?,
        None => a,
    };
    let acc = match op {
        Reduce::Sum => acc_of(out_ty),
        Reduce::Max | Reduce::Min => acc_of(a),
    };
    let key = KernelKey::Reduce {
        op,
        a,
        acc,
        out: out_ty,
    };
    let mut po = values.map(ptr).transpose()?.unwrap_or(0);
    let mut pi = indices.map(ptr).transpose()?.unwrap_or(0);
    let mut pin = ptr(&laid)?;
    let (mut outer_i, mut r_i, mut sc) = (outer as i64, r as i64, scale);
    let mut args: [*mut c_void; 6] = [
        std::ptr::addr_of_mut!(po).cast(),
        std::ptr::addr_of_mut!(pi).cast(),
        std::ptr::addr_of_mut!(pin).cast(),
        std::ptr::addr_of_mut!(outer_i).cast(),
        std::ptr::addr_of_mut!(r_i).cast(),
        std::ptr::addr_of_mut!(sc).cast(),
    ];
    // SAFETY: the reduction entry's (values, indices, in, outer, r, scale): `laid` holds
    // `outer * r` contiguous elements, the outputs `outer` each (or are null).
    unsafe { launch_reduce(index(t)?, key, outer, &mut args) }.map_err(cuda_err)
}

/// `sum(t, dims, keepdim, dtype=)` on CUDA.
pub fn sum(
    t: &Tensor,
    dims: Option<&[i64]>,
    keepdim: bool,
    dtype: Option<ScalarType>,
) -> Result<Tensor> {
    let spec = meta::sum(t, dims, keepdim, dtype)?;
    let out = spec.out.empty()?;
    fold(
        t,
        &spec.reduced,
        Reduce::Sum,
        Some(&out),
        None,
        1.0,
        "sum_cuda",
    )?;
    Ok(out)
}

/// `mean(t, dims, keepdim, dtype=)` on CUDA (an empty group gives NaN, as in PyTorch).
pub fn mean(
    t: &Tensor,
    dims: Option<&[i64]>,
    keepdim: bool,
    dtype: Option<ScalarType>,
) -> Result<Tensor> {
    let spec = meta::mean(t, dims, keepdim, dtype)?;
    let out = spec.out.empty()?;
    let scale = 1.0 / spec.group as f64;
    fold(
        t,
        &spec.reduced,
        Reduce::Sum,
        Some(&out),
        None,
        scale,
        "mean_cuda",
    )?;
    Ok(out)
}

fn extreme_op(want_max: bool) -> (Reduce, &'static str) {
    if want_max {
        (Reduce::Max, "max")
    } else {
        (Reduce::Min, "min")
    }
}

/// `max(t)` / `min(t)`: the extreme element as a 0-dim tensor (NaN propagates).
pub fn extreme(t: &Tensor, want_max: bool) -> Result<Tensor> {
    let (op, name) = extreme_op(want_max);
    let spec = meta::extreme(t, None, false, name)?;
    let out = spec.out.empty()?;
    fold(t, &spec.reduced, op, Some(&out), None, 1.0, name)?;
    Ok(out)
}

/// `max(t, dim, keepdim)` / `min(...)`: (values, int64 indices).
pub fn extreme_dim(
    t: &Tensor,
    dim: i64,
    keepdim: bool,
    want_max: bool,
) -> Result<(Tensor, Tensor)> {
    let (op, name) = extreme_op(want_max);
    let spec = meta::extreme(t, Some(dim), keepdim, name)?;
    let values = spec.out.empty()?;
    let indices = Tensor::empty(&spec.out.sizes, ScalarType::Int64, t.device())?;
    fold(
        t,
        &spec.reduced,
        op,
        Some(&values),
        Some(&indices),
        1.0,
        name,
    )?;
    Ok((values, indices))
}

/// `argmax(t, dim=None, keepdim)` / `argmin`: without `dim`, the flat index.
pub fn arg_extreme(t: &Tensor, dim: Option<i64>, keepdim: bool, want_max: bool) -> Result<Tensor> {
    let (op, _) = extreme_op(want_max);
    let name = if want_max { "argmax" } else { "argmin" };
    let spec = meta::arg_extreme(t, dim, keepdim, name)?;
    let reduced = meta::extreme(t, dim, keepdim, name)?.reduced;
    let out = spec.empty()?;
    fold(t, &reduced, op, None, Some(&out), 1.0, name)?;
    Ok(out)
}
