//! CompositeImplicitAutograd: the operators PyTorch decomposes, decomposed the same way through
//! the dispatcher, so modes, subclasses and kernels registered for the pieces see the calls.

use opdispatch_dispatch::{CppFunction, IValue, Result};
use opdispatch_tensor::ops;
use opdispatch_tensor::{Scalar, Tensor};

use crate::calling::{aten_op, boxed, call1, tensor_result, tv, Fn2, FnTl, FnTts, Kernels};

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

/// `matmul`: where the decomposition is one operator (2-D @ 2-D is `mm`, 2-D @ 1-D `mv`,
/// 1-D @ 1-D `dot`) it goes through the dispatcher; the other shapes run the runtime's
/// broadcasting product directly.
fn matmul(a: Tensor, b: Tensor) -> Result<Tensor> {
    let op = match (a.dim(), b.dim()) {
        (2, 2) => aten_op!("mm", ""),
        (1, 1) => aten_op!("dot", ""),
        (2, 1) => aten_op!("mv", ""),
        // Meta operands: the output only. CUDA operands run the CUDA loops' broadcasting
        // product (bmm through cuBLAS).
        _ if a.is_meta() || b.is_meta() => return Ok(ops::meta::matmul(&a, &b)?.empty()?),
        _ if a.device().index().is_some() || b.device().index().is_some() => {
            return Ok(opdispatch_tensor::cuda::matmul(&a, &b)?)
        }
        _ => return Ok(ops::matmul(&a, &b)?),
    };
    tensor_result(call1(op, opdispatch_dispatch::stack![tv(a), tv(b)])?)
}

/// `reshape`: `view` when the strides allow it, else `clone` then `view` (PyTorch decomposes
/// into `view` / `_unsafe_view` of a clone).
fn reshape(t: Tensor, shape: Vec<i64>) -> Result<Tensor> {
    let sizes = ops::infer_size(&shape, t.numel())?;
    let src = if ops::compute_view_strides(t.sizes(), t.strides(), &sizes).is_some() {
        t
    } else {
        tensor_result(call1(
            aten_op!("clone", ""),
            opdispatch_dispatch::stack![tv(t), IValue::None],
        )?)?
    };
    tensor_result(call1(
        aten_op!("view", ""),
        opdispatch_dispatch::stack![tv(src), IValue::IntList(shape)],
    )?)
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
        ("matmul", CppFunction::typed(matmul as Fn2)),
        ("reshape", CppFunction::typed(reshape as FnTl)),
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
