//! Kernels that touch no element data, so one function serves every backend: views (new
//! geometry over the same storage) and the `*_like` factories (an allocation through the
//! runtime's per-device storage). Each backend module registers this list for its own key,
//! as PyTorch lists `CPU, CUDA, Meta: view` for one function.

use opdispatch_dispatch::{CppFunction, Result};
use opdispatch_tensor::ops;
use opdispatch_tensor::{Device, ScalarType, Tensor, TensorError};

use crate::args::Args;
use crate::calling::{boxed, tv, Fn1, FnTi, FnTii, FnTl, Kernels};

fn view(t: Tensor, size: Vec<i64>) -> Result<Tensor> {
    Ok(ops::view(&t, &size)?)
}
/// `_unsafe_view`: `view`'s geometry, returned as a tensor of its own (no alias annotation, so
/// autograd records no view relation).
fn unsafe_view(t: Tensor, size: Vec<i64>) -> Result<Tensor> {
    Ok(ops::view(&t, &size)?)
}
fn transpose(t: Tensor, d0: i64, d1: i64) -> Result<Tensor> {
    Ok(ops::transpose(&t, d0, d1)?)
}
fn t_(t: Tensor) -> Result<Tensor> {
    Ok(ops::t(&t)?)
}
fn permute(t: Tensor, dims: Vec<i64>) -> Result<Tensor> {
    Ok(ops::permute(&t, &dims)?)
}
fn squeeze(t: Tensor) -> Result<Tensor> {
    Ok(ops::squeeze(&t, None)?)
}
fn squeeze_dim(t: Tensor, dim: i64) -> Result<Tensor> {
    Ok(ops::squeeze(&t, Some(dim))?)
}
fn unsqueeze(t: Tensor, dim: i64) -> Result<Tensor> {
    Ok(ops::unsqueeze(&t, dim)?)
}
fn expand(t: Tensor, size: Vec<i64>, _implicit: bool) -> Result<Tensor> {
    Ok(ops::expand(&t, &size)?)
}
fn select(t: Tensor, dim: i64, index: i64) -> Result<Tensor> {
    Ok(ops::select(&t, dim, index)?)
}
/// `_reshape_alias`: the given sizes and strides over the same storage and offset.
fn reshape_alias(t: Tensor, size: Vec<i64>, stride: Vec<i64>) -> Result<Tensor> {
    let sizes = ops::infer_size(&size, t.numel())?;
    let strides: Vec<usize> = stride.iter().map(|&s| s.max(0) as usize).collect();
    Ok(ops::as_strided(&t, &sizes, &strides, None)?)
}
/// A new tensor over the same storage and geometry (`alias` / `detach`).
fn alias(t: Tensor) -> Result<Tensor> {
    Ok(ops::alias(&t))
}

/// A `*_like` factory's dtype and device: the arguments', else the input's.
pub(crate) fn like_options(a: &mut Args, t: &Tensor) -> Result<(ScalarType, Device)> {
    let (dtype, device) = a.tensor_options()?;
    a.memory_format()?;
    Ok((dtype.unwrap_or(t.dtype()), device.unwrap_or(t.device())))
}

/// `new_empty_strided`: uninitialized memory with the given geometry (storage sized for the
/// furthest element), `self`'s dtype and device unless given.
fn new_empty_strided(a: &mut Args) -> Result<Tensor> {
    let t = a.tensor()?;
    let (size, stride) = (a.int_list()?, a.int_list()?);
    let (dtype, device) = a.tensor_options()?;
    let (dtype, device) = (dtype.unwrap_or(t.dtype()), device.unwrap_or(t.device()));
    let sizes = size
        .iter()
        .map(|&n| usize::try_from(n))
        .collect::<std::result::Result<Vec<usize>, _>>()
        .map_err(|_| {
            TensorError::other(format!(
                "Trying to create tensor with negative dimension {}: {size:?}",
                size.iter().find(|&&n| n < 0).copied().unwrap_or(-1)
            ))
        })?;
    let strides = stride
        .iter()
        .map(|&n| usize::try_from(n))
        .collect::<std::result::Result<Vec<usize>, _>>()
        .map_err(|_| {
            TensorError::other(format!(
                "as_strided: Negative strides are not supported at the moment, got strides: {stride:?}"
            ))
        })?;
    if sizes.len() != strides.len() {
        return Err(TensorError::other(format!(
            "mismatch in length of strides and shape: {} and {}",
            strides.len(),
            sizes.len()
        ))
        .into());
    }
    let span = if sizes.contains(&0) {
        0
    } else {
        1 + sizes
            .iter()
            .zip(&strides)
            .map(|(n, s)| (n - 1) * s)
            .sum::<usize>()
    };
    let storage = opdispatch_tensor::Storage::new(span * dtype.itemsize(), device, true)?;
    Ok(Tensor::from_parts(storage, sizes, strides, 0, dtype)?)
}

/// The kernels every backend registers.
pub(crate) fn kernels() -> Kernels {
    vec![
        ("view", CppFunction::typed(view as FnTl)),
        ("_unsafe_view", CppFunction::typed(unsafe_view as FnTl)),
        (
            "_reshape_alias",
            CppFunction::typed(reshape_alias as fn(Tensor, Vec<i64>, Vec<i64>) -> Result<Tensor>),
        ),
        ("transpose.int", CppFunction::typed(transpose as FnTii)),
        ("t", CppFunction::typed(t_ as Fn1)),
        ("permute", CppFunction::typed(permute as FnTl)),
        ("squeeze", CppFunction::typed(squeeze as Fn1)),
        ("squeeze.dim", CppFunction::typed(squeeze_dim as FnTi)),
        ("unsqueeze", CppFunction::typed(unsqueeze as FnTi)),
        (
            "expand",
            CppFunction::typed(expand as fn(Tensor, Vec<i64>, bool) -> Result<Tensor>),
        ),
        ("select.int", CppFunction::typed(select as FnTii)),
        (
            "slice.Tensor",
            boxed(|a| {
                let t = a.tensor()?;
                let dim = a.int()?;
                let (start, end) = (a.opt_int()?, a.opt_int()?);
                let step = a.int()?;
                Ok(tv(ops::slice(&t, dim, start, end, step)?))
            }),
        ),
        ("alias", CppFunction::typed(alias as Fn1)),
        ("detach", CppFunction::typed(alias as Fn1)),
        (
            "new_empty_strided",
            boxed(|a| Ok(tv(new_empty_strided(a)?))),
        ),
        (
            "empty_like",
            boxed(|a| {
                let t = a.tensor()?;
                let (dtype, device) = like_options(a, &t)?;
                Ok(tv(Tensor::empty(t.sizes(), dtype, device)?))
            }),
        ),
        (
            "zeros_like",
            boxed(|a| {
                let t = a.tensor()?;
                let (dtype, device) = like_options(a, &t)?;
                Ok(tv(Tensor::zeros(t.sizes(), dtype, device)?))
            }),
        ),
        (
            "ones_like",
            boxed(|a| {
                let t = a.tensor()?;
                let (dtype, device) = like_options(a, &t)?;
                Ok(tv(Tensor::ones(t.sizes(), dtype, device)?))
            }),
        ),
        (
            "full_like",
            boxed(|a| {
                let t = a.tensor()?;
                let v = a.scalar()?;
                let (dtype, device) = like_options(a, &t)?;
                Ok(tv(Tensor::full(t.sizes(), v, dtype, device)?))
            }),
        ),
    ]
}
