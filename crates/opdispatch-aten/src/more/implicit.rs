//! CompositeImplicitAutograd kernels of the second batch: PyTorch's decompositions, each piece
//! a dispatched call (so autograd, modes and user kernels see the pieces).

use opdispatch_dispatch::{IValue, KernelArg, OperatorHandle, Result, Stack, TensorRef};
use opdispatch_tensor::ops::wrap_dim;
use opdispatch_tensor::{Scalar, Tensor, TensorError};

use crate::args::Args;
use crate::calling::{aten_op, boxed, call1, tensor_result, tv, Kernels};

fn d(op: OperatorHandle, stack: Stack) -> Result<Tensor> {
    tensor_result(call1(op, stack)?)
}

fn opt_scalar_iv(s: Option<Scalar>) -> IValue {
    s.map_or(IValue::None, KernelArg::into_ivalue)
}

/// `var`/`std` (`std`: which) as `.correction` with `correction = unbiased ? 1 : 0`.
fn var_std(t: Tensor, dims: IValue, unbiased: bool, keepdim: bool, std: bool) -> Result<IValue> {
    let op = if std {
        aten_op!("std", "correction")
    } else {
        aten_op!("var", "correction")
    };
    call1(
        op,
        opdispatch_dispatch::stack![
            tv(t),
            dims,
            IValue::Int(i64::from(unbiased)),
            IValue::Bool(keepdim)
        ],
    )
}

/// `softmax.int` / `log_softmax.int`: the input converted to `dtype` first (when given), then
/// `_softmax` / `_log_softmax` without half-to-float.
fn softmax(a: &mut Args, log: bool) -> Result<IValue> {
    let t = a.tensor()?;
    let dim = a.int()?;
    let dtype = a.opt_dtype()?;
    let t = match dtype {
        Some(dt) if dt != t.dtype() => d(
            aten_op!("to", "dtype"),
            opdispatch_dispatch::stack![
                tv(t),
                IValue::Int(dt.c10_code()),
                IValue::Bool(false),
                IValue::Bool(false),
                IValue::None
            ],
        )?,
        _ => t,
    };
    let op = if log {
        aten_op!("_log_softmax", "")
    } else {
        aten_op!("_softmax", "")
    };
    call1(
        op,
        opdispatch_dispatch::stack![tv(t), IValue::Int(dim), IValue::Bool(false)],
    )
}

/// `clip`/`clip_` are `clamp`/`clamp_` under another name.
fn clip(a: &mut Args, op: OperatorHandle, tensors: bool) -> Result<IValue> {
    let t = a.tensor()?;
    let (lo, hi) = if tensors {
        (
            a.opt_tensor()?.map_or(IValue::None, tv),
            a.opt_tensor()?.map_or(IValue::None, tv),
        )
    } else {
        (
            opt_scalar_iv(a.opt_scalar()?),
            opt_scalar_iv(a.opt_scalar()?),
        )
    };
    call1(op, opdispatch_dispatch::stack![tv(t), lo, hi])
}

fn narrow(t: &Tensor, dim: i64, start: i64, len: i64) -> Result<Tensor> {
    d(
        aten_op!("narrow", ""),
        opdispatch_dispatch::stack![
            tv(t.clone()),
            IValue::Int(dim),
            IValue::Int(start),
            IValue::Int(len)
        ],
    )
}

fn list(ts: Vec<Tensor>) -> IValue {
    IValue::TensorList(ts.into_iter().map(TensorRef::new).collect())
}

/// `split.Tensor`: pieces of `split_size` along `dim` (the last one shorter), as narrow views.
fn split(t: &Tensor, split_size: i64, dim: i64) -> Result<Vec<Tensor>> {
    if t.dim() == 0 {
        return Err(TensorError::other("split expects at least a 1-dimensional tensor").into());
    }
    if split_size < 0 {
        return Err(TensorError::other(format!(
            "split expects split_size be non-negative, but got split_size={split_size}"
        ))
        .into());
    }
    let w = wrap_dim(dim, t.dim())?;
    let size = t.sizes()[w] as i64;
    if split_size == 0 && size != 0 {
        return Err(TensorError::other(format!(
            "split_size can only be 0 if dimension size is 0, but got dimension size of {size}"
        ))
        .into());
    }
    let n = if split_size == 0 {
        1
    } else {
        ((size + split_size - 1) / split_size).max(1)
    };
    (0..n)
        .map(|i| {
            let start = i * split_size;
            narrow(t, w as i64, start, split_size.min(size - start))
        })
        .collect()
}

/// `split_with_sizes`: pieces of the given sizes, which must add up to the dimension's size.
fn split_with_sizes(t: &Tensor, sizes: &[i64], dim: i64) -> Result<Vec<Tensor>> {
    let w = wrap_dim(dim, t.dim())?;
    let size = t.sizes().get(w).copied().unwrap_or(1) as i64;
    if sizes.iter().sum::<i64>() != size || sizes.iter().any(|&s| s < 0) {
        return Err(TensorError::other(format!(
            "split_with_sizes expects split_sizes to sum exactly to {size} (input tensor's size at dimension {w}), but got split_sizes={sizes:?}"
        ))
        .into());
    }
    let mut start = 0;
    sizes
        .iter()
        .map(|&len| {
            let v = narrow(t, w as i64, start, len);
            start += len;
            v
        })
        .collect()
}

pub(crate) fn kernels() -> Kernels {
    let mut k: Kernels = Vec::new();
    k.push((
        "var",
        boxed(|a| {
            let t = a.tensor()?;
            var_std(t, IValue::None, a.bool()?, false, false)
        }),
    ));
    k.push((
        "std",
        boxed(|a| {
            let t = a.tensor()?;
            var_std(t, IValue::None, a.bool()?, false, true)
        }),
    ));
    for (name, std) in [("var.dim", false), ("std.dim", true)] {
        k.push((
            name,
            boxed(move |a| {
                let t = a.tensor()?;
                let dims = a.opt_int_list()?.map_or(IValue::None, IValue::IntList);
                let (unbiased, keepdim) = (a.bool()?, a.bool()?);
                var_std(t, dims, unbiased, keepdim, std)
            }),
        ));
    }
    k.push(("softmax.int", boxed(|a| softmax(a, false))));
    k.push(("log_softmax.int", boxed(|a| softmax(a, true))));
    k.push((
        "square",
        boxed(|a| {
            let t = a.tensor()?;
            call1(
                aten_op!("pow", "Tensor_Scalar"),
                opdispatch_dispatch::stack![tv(t), IValue::Int(2)],
            )
        }),
    ));
    k.push((
        "isfinite",
        boxed(|a| {
            let t = a.tensor()?;
            let nan = d(
                aten_op!("isnan", ""),
                opdispatch_dispatch::stack![tv(t.clone())],
            )?;
            let inf = d(aten_op!("isinf", ""), opdispatch_dispatch::stack![tv(t)])?;
            let either = d(
                aten_op!("logical_or", ""),
                opdispatch_dispatch::stack![tv(nan), tv(inf)],
            )?;
            call1(
                aten_op!("logical_not", ""),
                opdispatch_dispatch::stack![tv(either)],
            )
        }),
    ));
    k.push(("clip", boxed(|a| clip(a, aten_op!("clamp", ""), false))));
    k.push((
        "clip.Tensor",
        boxed(|a| clip(a, aten_op!("clamp", "Tensor"), true)),
    ));
    k.push(("clip_", boxed(|a| clip(a, aten_op!("clamp_", ""), false))));
    k.push((
        "clip_.Tensor",
        boxed(|a| clip(a, aten_op!("clamp_", "Tensor"), true)),
    ));
    k.push((
        "outer",
        boxed(|a| {
            let (x, v) = (a.tensor()?, a.tensor()?);
            if x.dim() != 1 || v.dim() != 1 {
                return Err(TensorError::other(format!(
                    "outer: Expected 1-D argument self, but got {}-D",
                    if x.dim() != 1 { x.dim() } else { v.dim() }
                ))
                .into());
            }
            let col = d(
                aten_op!("reshape", ""),
                opdispatch_dispatch::stack![tv(x), IValue::IntList(vec![-1, 1])],
            )?;
            call1(
                aten_op!("mul", "Tensor"),
                opdispatch_dispatch::stack![tv(col), tv(v)],
            )
        }),
    ));
    k.push((
        "split.Tensor",
        boxed(|a| {
            let t = a.tensor()?;
            let (size, dim) = (a.int()?, a.int()?);
            Ok(list(split(&t, size, dim)?))
        }),
    ));
    k.push((
        "split_with_sizes",
        boxed(|a| {
            let t = a.tensor()?;
            let (sizes, dim) = (a.int_list()?, a.int()?);
            Ok(list(split_with_sizes(&t, &sizes, dim)?))
        }),
    ));
    k.push((
        "chunk",
        boxed(|a| {
            let t = a.tensor()?;
            let (chunks, dim) = (a.int()?, a.int()?);
            if t.dim() == 0 {
                return Err(
                    TensorError::other("chunk expects at least a 1-dimensional tensor").into(),
                );
            }
            if chunks <= 0 {
                return Err(TensorError::other(format!(
                    "chunk expects `chunks` to be greater than 0, got: {chunks}"
                ))
                .into());
            }
            let w = wrap_dim(dim, t.dim())?;
            let size = t.sizes()[w] as i64;
            let split_size = (size + chunks - 1) / chunks;
            if split_size == 0 && size == 0 {
                let sizes = vec![0; chunks as usize];
                return Ok(list(split_with_sizes(&t, &sizes, dim)?));
            }
            Ok(list(split(&t, split_size, dim)?))
        }),
    ));
    k.push((
        "unbind.int",
        boxed(|a| {
            let t = a.tensor()?;
            let dim = a.int()?;
            if t.dim() == 0 {
                return Err(TensorError::IndexOutOfRange(
                    "Dimension specified as 0 but tensor has no dimensions".into(),
                )
                .into());
            }
            let w = wrap_dim(dim, t.dim())?;
            let parts = (0..t.sizes()[w] as i64)
                .map(|i| {
                    d(
                        aten_op!("select", "int"),
                        opdispatch_dispatch::stack![
                            tv(t.clone()),
                            IValue::Int(w as i64),
                            IValue::Int(i)
                        ],
                    )
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(list(parts))
        }),
    ));
    k
}
