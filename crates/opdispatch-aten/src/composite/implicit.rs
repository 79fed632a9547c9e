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
fn d(op: opdispatch_dispatch::OperatorHandle, stack: opdispatch_dispatch::Stack) -> Result<Tensor> {
    tensor_result(call1(op, stack)?)
}

fn ints(v: &[usize]) -> IValue {
    IValue::IntList(v.iter().map(|&x| x as i64).collect())
}

fn unsqueeze(t: &Tensor, dim: i64) -> Result<Tensor> {
    d(
        aten_op!("unsqueeze", ""),
        opdispatch_dispatch::stack![tv(t.clone()), IValue::Int(dim)],
    )
}

fn squeeze_dim(t: &Tensor, dim: i64) -> Result<Tensor> {
    d(
        aten_op!("squeeze", "dim"),
        opdispatch_dispatch::stack![tv(t.clone()), IValue::Int(dim)],
    )
}

fn transpose(t: &Tensor, d0: i64, d1: i64) -> Result<Tensor> {
    d(
        aten_op!("transpose", "int"),
        opdispatch_dispatch::stack![tv(t.clone()), IValue::Int(d0), IValue::Int(d1)],
    )
}

fn product2(op: opdispatch_dispatch::OperatorHandle, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    d(op, opdispatch_dispatch::stack![tv(a.clone()), tv(b.clone())])
}

fn reshape_to(t: &Tensor, sizes: &[usize]) -> Result<Tensor> {
    d(
        aten_op!("reshape", ""),
        opdispatch_dispatch::stack![tv(t.clone()), ints(sizes)],
    )
}

fn unsafe_view(t: &Tensor, sizes: &[usize]) -> Result<Tensor> {
    d(
        aten_op!("_unsafe_view", ""),
        opdispatch_dispatch::stack![tv(t.clone()), ints(sizes)],
    )
}

fn expand(t: &Tensor, sizes: &[usize]) -> Result<Tensor> {
    d(
        aten_op!("expand", ""),
        opdispatch_dispatch::stack![tv(t.clone()), ints(sizes), IValue::Bool(false)],
    )
}

/// PyTorch's `isTensorSubclassLike` for our tensors: a Python subclass with
/// `__torch_dispatch__` (it carries the Python key).
fn subclass_like(t: &Tensor) -> bool {
    t.is_python_dispatch()
}

/// `matmul` decomposed as PyTorch's `_matmul_impl`: `dot`, `mv`, `mm` for the 1-D and 2-D
/// cases, the larger operand folded into a matrix when `should_fold` says so, else a
/// broadcast `bmm`; every step is a dispatched call, so autograd records PyTorch's nodes.
fn matmul(a: Tensor, b: Tensor) -> Result<Tensor> {
    let (d1, d2) = (a.dim(), b.dim());
    if d1 == 0 || d2 == 0 {
        return Err(TensorError::other(format!(
            "both arguments to matmul need to be at least 1D, but they are {d1}D and {d2}D"
        ))
        .into());
    }
    match (d1, d2) {
        (1, 1) => product2(aten_op!("dot", ""), &a, &b),
        (2, 1) => product2(aten_op!("mv", ""), &a, &b),
        // PyTorch squeezes the product in place (`squeeze_`); our tensors' geometry is
        // immutable, so the squeeze is the out-of-place view.
        (1, 2) => squeeze_dim(&product2(aten_op!("mm", ""), &unsqueeze(&a, 0)?, &b)?, 0),
        (2, 2) => product2(aten_op!("mm", ""), &a, &b),
        _ if should_fold(&a, &b) => matmul_folded(&a, &b),
        _ => matmul_batched(a, b),
    }
}

/// Whether one operand has at least 3 dimensions and the other at most 2, and folding the
/// larger into a matrix is free (or saves the smaller one's gradient a batch-sized buffer).
fn should_fold(a: &Tensor, b: &Tensor) -> bool {
    let larger_first = a.dim() >= b.dim();
    let (big, small_dim) = if larger_first {
        (a, b.dim())
    } else {
        (b, a.dim())
    };
    if !(big.dim() >= 3 && small_dim <= 2) {
        return false;
    }
    let small_requires_grad = if larger_first {
        b.requires_grad()
    } else {
        a.requires_grad()
    };
    if small_requires_grad {
        return true;
    }
    if a.dim() == 2 {
        return false;
    }
    if big.numel() == 0 {
        return true;
    }
    // The larger operand as matmul sees it (`b.mT()` when it is the right one).
    let (mut sizes, mut strides) = (big.sizes().to_vec(), big.strides().to_vec());
    if !larger_first {
        let n = sizes.len();
        sizes.swap(n - 2, n - 1);
        strides.swap(n - 2, n - 1);
    }
    (0..sizes.len() - 2).all(|i| strides[i] == strides[i + 1] * sizes[i + 1])
}

fn matmul_folded(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let transposed = b.dim() > a.dim();
    let (t1, t2) = if transposed {
        let t2 = if a.dim() == 2 {
            d(aten_op!("t", ""), opdispatch_dispatch::stack![tv(a.clone())])?
        } else {
            a.clone()
        };
        (transpose(b, -2, -1)?, t2)
    } else {
        (a.clone(), b.clone())
    };
    let s1 = t1.sizes().to_vec();
    let (lead, last) = s1.split_at(s1.len() - 1);
    let mut out_shape = lead.to_vec();
    let folded: usize = lead.iter().product();
    let t2_matrix = t2.dim() == 2;
    if t2_matrix {
        out_shape.push(t2.sizes()[1]);
    }
    let t1_folded = reshape_to(&t1, &[folded, last[0]])?;
    if t2_matrix {
        let out = unsafe_view(&product2(aten_op!("mm", ""), &t1_folded, &t2)?, &out_shape)?;
        if transposed {
            let mt = transpose(&out, -2, -1)?;
            return d(
                aten_op!("contiguous", ""),
                opdispatch_dispatch::stack![tv(mt), IValue::Int(0)],
            );
        }
        Ok(out)
    } else {
        unsafe_view(&product2(aten_op!("mv", ""), &t1_folded, &t2)?, &out_shape)
    }
}

fn matmul_batched(a: Tensor, b: Tensor) -> Result<Tensor> {
    let (d1, d2) = (a.dim(), b.dim());
    let (sa, sb) = (a.sizes().to_vec(), b.sizes().to_vec());
    let n = if d1 > 1 { sa[d1 - 2] } else { 1 };
    let m1 = sa[d1 - 1];
    let batch1 = &sa[..d1.saturating_sub(2)];
    let m2 = if d2 > 1 { sb[d2 - 2] } else { sb[0] };
    let p = if d2 > 1 { sb[d2 - 1] } else { 1 };
    let batch2 = &sb[..d2.saturating_sub(2)];
    // A broadcast batch of one goes through the folding path when it needs a gradient.
    if d1 == 3 && d2 == 3 && batch1[0] != batch2[0] {
        if batch1[0] == 1 && (a.requires_grad() || subclass_like(&a)) {
            return matmul(squeeze_dim(&a, 0)?, b);
        }
        if batch2[0] == 1 && (b.requires_grad() || subclass_like(&b)) {
            return matmul(a, squeeze_dim(&b, 0)?);
        }
    }
    let mut out_shape = ops::broadcast_shapes(batch1, batch2)?.to_vec();
    let batch: usize = out_shape.iter().product();
    let mut size1 = out_shape.clone();
    size1.extend([n, m1]);
    let a3 = reshape_to(&expand(&a, &size1)?, &[batch, n, m1])?;
    let vector_rhs = d2 == 1;
    let mut size2 = out_shape.clone();
    if vector_rhs {
        size2.push(m2);
    } else {
        size2.extend([m2, p]);
    }
    let b_expanded = expand(&b, &size2)?;
    let b3 = if vector_rhs {
        unsqueeze(&reshape_to(&b_expanded, &[batch, m2])?, 2)?
    } else {
        reshape_to(&b_expanded, &[batch, m2, p])?
    };
    if d1 > 1 {
        out_shape.push(n);
    }
    if d2 > 1 {
        out_shape.push(p);
    }
    let prod = product2(aten_op!("bmm", ""), &a3, &b3)?;
    let prod = if vector_rhs {
        squeeze_dim(&prod, -1)?
    } else {
        prod
    };
    unsafe_view(&prod, &out_shape)
}

/// `reshape`: `view` when the strides allow it, else `_unsafe_view` of a contiguous clone,
/// as PyTorch decomposes it.
fn reshape(t: Tensor, shape: Vec<i64>) -> Result<Tensor> {
    let sizes = ops::infer_size(&shape, t.numel())?;
    if ops::compute_view_strides(t.sizes(), t.strides(), &sizes).is_some() {
        return d(
            aten_op!("view", ""),
            opdispatch_dispatch::stack![tv(t), IValue::IntList(shape)],
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
        ("matmul", CppFunction::typed(matmul as Fn2)),
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
