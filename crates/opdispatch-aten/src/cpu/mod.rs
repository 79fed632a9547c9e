//! The CPU backend: the runtime's CPU loops (`opdispatch_tensor::ops`), each of which sizes
//! its output through the same meta function the Meta backend uses.

use opdispatch_dispatch::{CppFunction, IValue, Result, TensorRef};
use opdispatch_tensor::ops::{self, BinaryOp};
use opdispatch_tensor::{Scalar, ScalarType, Tensor};

use crate::args::{tensor_of_ref, Args};
use crate::calling::{aten_op, boxed, call1, tv, Kernels};

macro_rules! unary_kernels {
    ($($f:ident),*) => {$(
        fn $f(x: Tensor) -> Result<Tensor> {
            Ok(ops::$f(&x)?)
        }
    )*};
}
unary_kernels!(neg, abs, exp, log, sin, cos, sqrt, relu, sigmoid, tanh, reciprocal);

macro_rules! binary_kernels {
    ($($f:ident => $op:ident),*) => {$(
        fn $f(a: Tensor, b: Tensor) -> Result<Tensor> {
            Ok(ops::binary(BinaryOp::$op, &a, &b, None)?)
        }
    )*};
}
binary_kernels!(mul_t => Mul, div_t => Div, pow_tt => Pow, maximum => Maximum, minimum => Minimum,
    eq_t => Eq, ne_t => Ne, lt_t => Lt, le_t => Le, gt_t => Gt, ge_t => Ge);

macro_rules! binary_scalar_kernels {
    ($($f:ident => $op:ident),*) => {$(
        fn $f(a: Tensor, s: Scalar) -> Result<Tensor> {
            Ok(ops::binary_scalar(BinaryOp::$op, &a, s, None)?)
        }
    )*};
}
binary_scalar_kernels!(mul_s => Mul, div_s => Div, pow_ts => Pow,
    eq_s => Eq, ne_s => Ne, lt_s => Lt, le_s => Le, gt_s => Gt, ge_s => Ge);

/// `pow.Scalar`: the number raised to each element (the number as a wrapped-number operand).
fn pow_st(s: Scalar, e: Tensor) -> Result<Tensor> {
    Ok(ops::binary(
        BinaryOp::Pow,
        &Tensor::wrapped_scalar(s),
        &e,
        None,
    )?)
}

fn add_t(a: Tensor, b: Tensor, alpha: Scalar) -> Result<Tensor> {
    Ok(ops::add(&a, &b, Some(alpha))?)
}
fn sub_t(a: Tensor, b: Tensor, alpha: Scalar) -> Result<Tensor> {
    Ok(ops::sub(&a, &b, Some(alpha))?)
}
/// `other - alpha * self`.
fn rsub_t(a: Tensor, b: Tensor, alpha: Scalar) -> Result<Tensor> {
    Ok(ops::sub(&b, &a, Some(alpha))?)
}
fn add_s(a: Tensor, s: Scalar, alpha: Scalar) -> Result<Tensor> {
    Ok(ops::add_scalar(&a, s, Some(alpha))?)
}
fn sub_s(a: Tensor, s: Scalar, alpha: Scalar) -> Result<Tensor> {
    Ok(ops::sub_scalar(&a, s, Some(alpha))?)
}
fn add_inplace(a: Tensor, b: Tensor, alpha: Scalar) -> Result<Tensor> {
    ops::add_(&a, &b, Some(alpha))?;
    Ok(a)
}
fn sub_inplace(a: Tensor, b: Tensor, alpha: Scalar) -> Result<Tensor> {
    ops::sub_(&a, &b, Some(alpha))?;
    Ok(a)
}
fn mul_inplace(a: Tensor, b: Tensor) -> Result<Tensor> {
    ops::mul_(&a, &b)?;
    Ok(a)
}
fn div_inplace(a: Tensor, b: Tensor) -> Result<Tensor> {
    ops::div_(&a, &b)?;
    Ok(a)
}
fn tanh_backward(g: Tensor, out: Tensor) -> Result<Tensor> {
    Ok(ops::tanh_backward(&g, &out)?)
}
fn where_self(c: Tensor, a: Tensor, b: Tensor) -> Result<Tensor> {
    Ok(ops::where_(&c, &a, &b)?)
}

fn max_all(t: Tensor) -> Result<Tensor> {
    Ok(ops::max(&t)?)
}
fn min_all(t: Tensor) -> Result<Tensor> {
    Ok(ops::min(&t)?)
}
fn max_dim(t: Tensor, dim: i64, keepdim: bool) -> Result<(Tensor, Tensor)> {
    Ok(ops::max_dim(&t, dim, keepdim)?)
}
fn min_dim(t: Tensor, dim: i64, keepdim: bool) -> Result<(Tensor, Tensor)> {
    Ok(ops::min_dim(&t, dim, keepdim)?)
}

fn mm(a: Tensor, b: Tensor) -> Result<Tensor> {
    Ok(ops::mm(&a, &b)?)
}
fn bmm(a: Tensor, b: Tensor) -> Result<Tensor> {
    Ok(ops::bmm(&a, &b)?)
}
fn dot(a: Tensor, b: Tensor) -> Result<Tensor> {
    Ok(ops::dot(&a, &b)?)
}
fn mv(a: Tensor, v: Tensor) -> Result<Tensor> {
    ops::meta::mv(&a, &v)?;
    Ok(ops::matmul(&a, &v)?)
}

fn copy_(dst: Tensor, src: Tensor, _non_blocking: bool) -> Result<Tensor> {
    ops::copy_(&dst, &src)?;
    Ok(dst)
}
fn fill_scalar(t: Tensor, v: Scalar) -> Result<Tensor> {
    ops::fill_(&t, v)?;
    Ok(t)
}
/// `fill_.Tensor`: the value of a 0-dimensional tensor.
fn fill_tensor(t: Tensor, v: Tensor) -> Result<Tensor> {
    check_fill_value(&v)?;
    ops::fill_(&t, v.item()?)?;
    Ok(t)
}
fn zero_(t: Tensor) -> Result<Tensor> {
    ops::zero_(&t)?;
    Ok(t)
}
/// PyTorch's check that `fill_`'s tensor value has no dimensions.
pub(crate) fn check_fill_value(v: &Tensor) -> Result<()> {
    if v.dim() != 0 {
        return Err(opdispatch_tensor::TensorError::other(format!(
            "fill_ only supports 0-dimension value tensor but got tensor with {} dimensions.",
            v.dim()
        ))
        .into());
    }
    Ok(())
}
fn local_scalar_dense(t: Tensor) -> Result<Scalar> {
    Ok(t.item()?)
}

fn tensors(ts: &[TensorRef]) -> Result<Vec<Tensor>> {
    ts.iter().map(tensor_of_ref).collect()
}
fn cat(ts: Vec<TensorRef>, dim: i64) -> Result<Tensor> {
    let ts = tensors(&ts)?;
    let refs: Vec<&Tensor> = ts.iter().collect();
    Ok(ops::cat(&refs, dim)?)
}
fn stack(ts: Vec<TensorRef>, dim: i64) -> Result<Tensor> {
    let ts = tensors(&ts)?;
    let refs: Vec<&Tensor> = ts.iter().collect();
    Ok(ops::stack(&refs, dim)?)
}

/// `sum` / `mean` (with or without dims) through `f`.
type ReduceFn =
    fn(&Tensor, Option<&[i64]>, bool, Option<ScalarType>) -> opdispatch_tensor::Result<Tensor>;

pub(crate) fn sum_like(a: &mut Args, with_dims: bool, f: ReduceFn) -> Result<IValue> {
    let t = a.tensor()?;
    let (dims, keepdim) = if with_dims {
        (a.opt_int_list()?, a.bool()?)
    } else {
        (None, false)
    };
    let dtype = a.opt_dtype()?;
    Ok(tv(f(&t, dims.as_deref(), keepdim, dtype)?))
}

/// `_to_copy`: a fresh tensor of the target dtype on the target device, filled by `copy_`
/// through the dispatcher, so the destination's backend does the copy (a Meta destination
/// gets Meta's `copy_`, which checks and moves nothing).
pub(crate) fn to_copy(a: &mut Args) -> Result<IValue> {
    let t = a.tensor()?;
    let (dtype, device) = a.tensor_options()?;
    let non_blocking = a.bool()?;
    a.memory_format()?;
    let out = ops::meta::to(&t, dtype, device)?.empty()?;
    call1(
        aten_op!("copy_", ""),
        opdispatch_dispatch::stack![tv(out), tv(t), IValue::Bool(non_blocking)],
    )
}

/// Where this block registers (the "registered at" of the dispatch-table dumps).
pub(crate) const REGISTERED_AT: (&str, u32) = (file!(), line!());

/// Every CPU kernel, the device-generic ones included.
pub(crate) fn kernels() -> Kernels {
    let mut k: Kernels = crate::generic::kernels();
    crate::calling::typed_backend_kernels!(k);
    let typed = |k: &mut Kernels, name: &'static str, f: CppFunction| k.push((name, f));

    typed(&mut k, "sum", boxed(|a| sum_like(a, false, ops::sum)));
    typed(
        &mut k,
        "sum.dim_IntList",
        boxed(|a| sum_like(a, true, ops::sum)),
    );
    typed(&mut k, "mean", boxed(|a| sum_like(a, false, ops::mean)));
    typed(&mut k, "mean.dim", boxed(|a| sum_like(a, true, ops::mean)));
    typed(
        &mut k,
        "argmax",
        boxed(|a| {
            let t = a.tensor()?;
            let (dim, keepdim) = (a.opt_int()?, a.bool()?);
            Ok(tv(ops::argmax(&t, dim, keepdim)?))
        }),
    );
    typed(
        &mut k,
        "argmin",
        boxed(|a| {
            let t = a.tensor()?;
            let (dim, keepdim) = (a.opt_int()?, a.bool()?);
            Ok(tv(ops::argmin(&t, dim, keepdim)?))
        }),
    );

    typed(
        &mut k,
        "clone",
        boxed(|a| {
            let t = a.tensor()?;
            a.memory_format()?;
            Ok(tv(ops::clone(&t)?))
        }),
    );
    typed(&mut k, "_to_copy", boxed(to_copy));

    typed(
        &mut k,
        "uniform_",
        boxed(|a| {
            let t = a.tensor()?;
            let (from, to) = (a.float()?, a.float()?);
            a.no_generator()?;
            ops::random::uniform_(&t, from, to)?;
            Ok(tv(t))
        }),
    );
    typed(
        &mut k,
        "normal_",
        boxed(|a| {
            let t = a.tensor()?;
            let (mean, std) = (a.float()?, a.float()?);
            a.no_generator()?;
            ops::random::normal_(&t, mean, std)?;
            Ok(tv(t))
        }),
    );
    typed(
        &mut k,
        "random_.from",
        boxed(|a| {
            let t = a.tensor()?;
            let (from, to) = (a.int()?, a.random_to()?);
            a.no_generator()?;
            ops::random::random_from_to_(&t, from, to)?;
            Ok(tv(t))
        }),
    );
    k
}
