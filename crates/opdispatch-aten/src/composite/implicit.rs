//! CompositeImplicitAutograd: the operators PyTorch decomposes, decomposed the same way through
//! the dispatcher, so modes, subclasses and kernels registered for the pieces see the calls.

use opdispatch_dispatch::{CppFunction, IValue, Result};
use opdispatch_tensor::ops;
use opdispatch_tensor::{Scalar, Tensor, TensorError};

use crate::calling::{aten_op, boxed, call1, tensor_result, tv, Fn1, Fn2, FnTl, FnTts, Kernels};

/// `where.ScalarOther` is `where.self` with a wrapped number, as in PyTorch.
fn where_scalar_other(c: Tensor, a: Tensor, s: Scalar) -> Result<Tensor> {
    let w = aten_op!("where", "self");
    tensor_result(call1(
        w,
        opdispatch_dispatch::stack![tv(c), tv(a), tv(Tensor::wrapped_scalar(s))],
    )?)
}

/// `where.ScalarSelf`: `where.self` with the number as a wrapped-number tensor.
fn where_scalar_self(c: Tensor, s: Scalar, b: Tensor) -> Result<Tensor> {
    let w = aten_op!("where", "self");
    tensor_result(call1(
        w,
        opdispatch_dispatch::stack![tv(c), tv(Tensor::wrapped_scalar(s)), tv(b)],
    )?)
}

/// `where.Scalar`: both numbers wrapped (the result dtype follows them, as in PyTorch).
fn where_scalar(c: Tensor, s: Scalar, o: Scalar) -> Result<Tensor> {
    let w = aten_op!("where", "self");
    tensor_result(call1(
        w,
        opdispatch_dispatch::stack![
            tv(c),
            tv(Tensor::wrapped_scalar(s)),
            tv(Tensor::wrapped_scalar(o))
        ],
    )?)
}

/// A dispatched call of another aten operator that returns one tensor.
pub(crate) fn d(
    op: opdispatch_dispatch::OperatorHandle,
    stack: opdispatch_dispatch::Stack,
) -> Result<Tensor> {
    tensor_result(call1(op, stack)?)
}

pub(crate) fn ints(v: &[usize]) -> IValue {
    IValue::IntList(v.iter().map(|&x| x as i64).collect())
}

pub(crate) fn unsqueeze(t: &Tensor, dim: i64) -> Result<Tensor> {
    d(
        aten_op!("unsqueeze", ""),
        opdispatch_dispatch::stack![tv(t.clone()), IValue::Int(dim)],
    )
}

pub(crate) fn squeeze_dim(t: &Tensor, dim: i64) -> Result<Tensor> {
    d(
        aten_op!("squeeze", "dim"),
        opdispatch_dispatch::stack![tv(t.clone()), IValue::Int(dim)],
    )
}

pub(crate) fn transpose(t: &Tensor, d0: i64, d1: i64) -> Result<Tensor> {
    d(
        aten_op!("transpose", "int"),
        opdispatch_dispatch::stack![tv(t.clone()), IValue::Int(d0), IValue::Int(d1)],
    )
}

pub(crate) fn product2(
    op: opdispatch_dispatch::OperatorHandle,
    a: &Tensor,
    b: &Tensor,
) -> Result<Tensor> {
    d(
        op,
        opdispatch_dispatch::stack![tv(a.clone()), tv(b.clone())],
    )
}

pub(crate) fn reshape_to(t: &Tensor, sizes: &[usize]) -> Result<Tensor> {
    d(
        aten_op!("reshape", ""),
        opdispatch_dispatch::stack![tv(t.clone()), ints(sizes)],
    )
}

pub(crate) fn unsafe_view(t: &Tensor, sizes: &[usize]) -> Result<Tensor> {
    d(
        aten_op!("_unsafe_view", ""),
        opdispatch_dispatch::stack![tv(t.clone()), ints(sizes)],
    )
}

pub(crate) fn expand(t: &Tensor, sizes: &[usize]) -> Result<Tensor> {
    d(
        aten_op!("expand", ""),
        opdispatch_dispatch::stack![tv(t.clone()), ints(sizes), IValue::Bool(false)],
    )
}

/// `reshape` as PyTorch decomposes it: `view` of a contiguous tensor, `_reshape_alias` with
/// the computed strides when the geometry allows a view (`view` for a Python subclass), else
/// `_unsafe_view` of a contiguous clone.
fn reshape(t: Tensor, shape: Vec<i64>) -> Result<Tensor> {
    if t.is_contiguous() {
        return d(
            aten_op!("view", ""),
            opdispatch_dispatch::stack![tv(t), IValue::IntList(shape)],
        );
    }
    let sizes = ops::infer_size(&shape, t.numel())?;
    if let Some(strides) = ops::compute_view_strides(t.sizes(), t.strides(), &sizes) {
        if t.is_python_dispatch() {
            return d(
                aten_op!("view", ""),
                opdispatch_dispatch::stack![tv(t), IValue::IntList(shape)],
            );
        }
        return d(
            aten_op!("_reshape_alias", ""),
            opdispatch_dispatch::stack![
                tv(t),
                ints(&sizes),
                IValue::IntList(strides.iter().map(|&s| s as i64).collect())
            ],
        );
    }
    let copy = d(
        aten_op!("clone", ""),
        opdispatch_dispatch::stack![tv(t), IValue::Int(0)],
    )?;
    unsafe_view(&copy, &sizes)
}

/// `narrow`: PyTorch's checks, then `slice` (so autograd records `SliceBackward0`).
fn narrow(t: Tensor, dim: i64, start: i64, length: i64) -> Result<Tensor> {
    if t.dim() == 0 {
        return Err(TensorError::other("narrow() cannot be applied to a 0-dim tensor.").into());
    }
    if length < 0 {
        return Err(TensorError::other("narrow(): length must be non-negative.").into());
    }
    let cur = t.sizes()[ops::wrap_dim(dim, t.dim())?] as i64;
    if !(-cur <= start && start <= cur) {
        return Err(TensorError::IndexOutOfRange(format!(
            "start out of range (expected to be in range of [{}, {cur}], but got {start})",
            -cur
        ))
        .into());
    }
    let start = if start < 0 { start + cur } else { start };
    if start > cur - length {
        return Err(TensorError::other(format!(
            "start ({start}) + length ({length}) exceeds dimension size ({cur})."
        ))
        .into());
    }
    d(
        aten_op!("slice", "Tensor"),
        opdispatch_dispatch::stack![
            tv(t),
            IValue::Int(dim),
            IValue::Int(start),
            IValue::Int(start + length),
            IValue::Int(1)
        ],
    )
}

/// `view_as`: `view` to the other tensor's sizes.
fn view_as(t: Tensor, other: Tensor) -> Result<Tensor> {
    d(
        aten_op!("view", ""),
        opdispatch_dispatch::stack![tv(t), ints(other.sizes())],
    )
}

/// `t.T`: the dimensions reversed by `permute` (PyTorch warns, once, outside two dimensions;
/// the Python property issues that warning).
fn numpy_t(t: Tensor) -> Result<Tensor> {
    let dims: Vec<i64> = (0..t.dim() as i64).rev().collect();
    d(
        aten_op!("permute", ""),
        opdispatch_dispatch::stack![tv(t), IValue::IntList(dims)],
    )
}

/// `t.mT`: the last two dimensions swapped.
fn m_t(t: Tensor) -> Result<Tensor> {
    if t.dim() < 2 {
        return Err(TensorError::other(format!(
            "tensor.mT is only supported on matrices or batches of matrices. Got {}-D tensor.",
            t.dim()
        ))
        .into());
    }
    transpose(&t, -2, -1)
}

/// `flatten.using_ints`: PyTorch's decomposition (the tensor itself when `start == end`, else
/// a `reshape`, which is a `view` for viewable input).
fn flatten(t: Tensor, start: i64, end: i64) -> Result<Tensor> {
    let (s, e) = (ops::wrap_dim(start, t.dim())?, ops::wrap_dim(end, t.dim())?);
    if s > e {
        return Err(TensorError::other(
            "flatten() has invalid args: start_dim cannot come after end_dim",
        )
        .into());
    }
    if t.dim() == 0 {
        return reshape(t, vec![1]);
    }
    if s == e {
        return Ok(t);
    }
    let sizes = t.sizes();
    let mut shape: Vec<i64> = sizes[..s].iter().map(|&x| x as i64).collect();
    shape.push(sizes[s..=e].iter().product::<usize>() as i64);
    shape.extend(sizes[e + 1..].iter().map(|&x| x as i64));
    reshape(t, shape)
}

/// `item` is `_local_scalar_dense`, as in PyTorch.
fn item(t: Tensor) -> Result<Scalar> {
    let v = call1(
        aten_op!("_local_scalar_dense", ""),
        opdispatch_dispatch::stack![tv(t)],
    )?;
    opdispatch_dispatch::KernelArg::from_ivalue(v)
}

/// Where this block registers (the "registered at" of the dispatch-table dumps).
pub(crate) const REGISTERED_AT: (&str, u32) = (file!(), line!());

pub(crate) fn kernels() -> Kernels {
    vec![
        (
            "where.ScalarOther",
            CppFunction::typed(where_scalar_other as FnTts),
        ),
        (
            "where.ScalarSelf",
            CppFunction::typed(where_scalar_self as fn(Tensor, Scalar, Tensor) -> Result<Tensor>),
        ),
        (
            "where.Scalar",
            CppFunction::typed(where_scalar as fn(Tensor, Scalar, Scalar) -> Result<Tensor>),
        ),
        ("matmul", CppFunction::typed(super::matmul::matmul as Fn2)),
        ("reshape", CppFunction::typed(reshape as FnTl)),
        ("view_as", CppFunction::typed(view_as as Fn2)),
        (
            "narrow",
            CppFunction::typed(narrow as fn(Tensor, i64, i64, i64) -> Result<Tensor>),
        ),
        ("numpy_T", CppFunction::typed(numpy_t as Fn1)),
        ("mT", CppFunction::typed(m_t as Fn1)),
        (
            "flatten.using_ints",
            CppFunction::typed(flatten as fn(Tensor, i64, i64) -> Result<Tensor>),
        ),
        (
            "contiguous",
            boxed(|a| {
                let t = a.tensor()?;
                a.memory_format()?;
                if t.is_contiguous() {
                    Ok(tv(t))
                } else {
                    call1(
                        aten_op!("clone", ""),
                        opdispatch_dispatch::stack![tv(t), IValue::None],
                    )
                }
            }),
        ),
        (
            "to.dtype",
            boxed(|a| {
                let t = a.tensor()?;
                let dtype = a.dtype()?;
                let non_blocking = a.bool()?;
                let copy = a.bool()?;
                a.memory_format()?;
                if dtype == t.dtype() && !copy {
                    return Ok(tv(t));
                }
                call1(
                    aten_op!("_to_copy", ""),
                    opdispatch_dispatch::stack![
                        tv(t),
                        IValue::Int(dtype.c10_code()),
                        IValue::None,
                        IValue::None,
                        IValue::None,
                        IValue::Bool(non_blocking),
                        IValue::None,
                    ],
                )
            }),
        ),
        (
            "item",
            CppFunction::typed(item as fn(Tensor) -> Result<Scalar>),
        ),
    ]
}
