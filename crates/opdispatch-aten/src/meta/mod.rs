//! The Meta backend: tensors with geometry and dtype but no data. Each kernel runs the
//! operator's meta function (`opdispatch_tensor::ops::meta`, the one the CPU loops size
//! their outputs with) and allocates the result on Meta; in-place kernels check and return
//! their argument.

use opdispatch_dispatch::{CppFunction, DispatchError, IValue, Result, TensorRef};
use opdispatch_tensor::ops::{meta, BinaryOp, UnaryOp};
use opdispatch_tensor::{Device, Scalar, Tensor, TensorError};

use crate::args::{tensor_of_ref, Args};
use crate::calling::{boxed, tv, Kernels};

/// A fresh Meta tensor of `spec`'s geometry and dtype.
fn alloc(spec: &meta::OutputSpec) -> Result<Tensor> {
    Ok(Tensor::empty(&spec.sizes, spec.dtype, Device::Meta)?)
}

macro_rules! unary_kernels {
    ($($f:ident => $op:ident),*) => {$(
        fn $f(x: Tensor) -> Result<Tensor> {
            alloc(&meta::unary(UnaryOp::$op, &x)?)
        }
    )*};
}
unary_kernels!(neg => Neg, abs => Abs, exp => Exp, log => Log, sin => Sin, cos => Cos,
    sqrt => Sqrt, relu => Relu, sigmoid => Sigmoid, tanh => Tanh, reciprocal => Reciprocal);

macro_rules! binary_kernels {
    ($($f:ident => $op:ident),*) => {$(
        fn $f(a: Tensor, b: Tensor) -> Result<Tensor> {
            alloc(&meta::binary(BinaryOp::$op, &a, &b, None)?.out)
        }
    )*};
}
binary_kernels!(mul_t => Mul, div_t => Div, pow_tt => Pow, maximum => Maximum, minimum => Minimum,
    eq_t => Eq, ne_t => Ne, lt_t => Lt, le_t => Le, gt_t => Gt, ge_t => Ge);

macro_rules! binary_scalar_kernels {
    ($($f:ident => $op:ident),*) => {$(
        fn $f(a: Tensor, s: Scalar) -> Result<Tensor> {
            alloc(&meta::binary(BinaryOp::$op, &a, &Tensor::wrapped_scalar(s), None)?.out)
        }
    )*};
}
binary_scalar_kernels!(mul_s => Mul, div_s => Div, pow_ts => Pow,
    eq_s => Eq, ne_s => Ne, lt_s => Lt, le_s => Le, gt_s => Gt, ge_s => Ge);

fn pow_st(s: Scalar, e: Tensor) -> Result<Tensor> {
    alloc(&meta::binary(BinaryOp::Pow, &Tensor::wrapped_scalar(s), &e, None)?.out)
}

macro_rules! alpha_kernels {
    ($($f:ident => $op:ident),*) => {$(
        fn $f(a: Tensor, b: Tensor, alpha: Scalar) -> Result<Tensor> {
            alloc(&meta::binary(BinaryOp::$op, &a, &b, Some(alpha))?.out)
        }
    )*};
}
alpha_kernels!(add_t => Add, sub_t => Sub);

fn rsub_t(a: Tensor, b: Tensor, alpha: Scalar) -> Result<Tensor> {
    sub_t(b, a, alpha)
}
fn add_s(a: Tensor, s: Scalar, alpha: Scalar) -> Result<Tensor> {
    add_t(a, Tensor::wrapped_scalar(s), alpha)
}
fn sub_s(a: Tensor, s: Scalar, alpha: Scalar) -> Result<Tensor> {
    sub_t(a, Tensor::wrapped_scalar(s), alpha)
}

macro_rules! inplace_kernels {
    ($($f:ident => $op:ident),*) => {$(
        fn $f(a: Tensor, b: Tensor, alpha: Scalar) -> Result<Tensor> {
            meta::binary_inplace(BinaryOp::$op, &a, &b, Some(alpha))?;
            Ok(a)
        }
    )*};
}
inplace_kernels!(add_inplace => Add, sub_inplace => Sub);
fn mul_inplace(a: Tensor, b: Tensor) -> Result<Tensor> {
    meta::binary_inplace(BinaryOp::Mul, &a, &b, None)?;
    Ok(a)
}
fn div_inplace(a: Tensor, b: Tensor) -> Result<Tensor> {
    meta::binary_inplace(BinaryOp::Div, &a, &b, None)?;
    Ok(a)
}
fn tanh_backward(g: Tensor, out: Tensor) -> Result<Tensor> {
    alloc(&meta::tanh_backward(&g, &out)?.out)
}
fn where_self(c: Tensor, a: Tensor, b: Tensor) -> Result<Tensor> {
    alloc(&meta::where_(&c, &a, &b)?)
}

fn extreme_all(t: &Tensor, name: &str) -> Result<Tensor> {
    alloc(&meta::extreme(t, None, false, name)?.out)
}
fn max_all(t: Tensor) -> Result<Tensor> {
    extreme_all(&t, "max")
}
fn min_all(t: Tensor) -> Result<Tensor> {
    extreme_all(&t, "min")
}
fn extreme_dim(t: &Tensor, dim: i64, keepdim: bool, name: &str) -> Result<(Tensor, Tensor)> {
    let spec = meta::extreme(t, Some(dim), keepdim, name)?.out;
    let idx = meta::OutputSpec {
        dtype: opdispatch_tensor::ScalarType::Int64,
        ..spec.clone()
    };
    Ok((alloc(&spec)?, alloc(&idx)?))
}
fn max_dim(t: Tensor, dim: i64, keepdim: bool) -> Result<(Tensor, Tensor)> {
    extreme_dim(&t, dim, keepdim, "max")
}
fn min_dim(t: Tensor, dim: i64, keepdim: bool) -> Result<(Tensor, Tensor)> {
    extreme_dim(&t, dim, keepdim, "min")
}

fn mm(a: Tensor, b: Tensor) -> Result<Tensor> {
    alloc(&meta::mm(&a, &b)?)
}
fn bmm(a: Tensor, b: Tensor) -> Result<Tensor> {
    alloc(&meta::bmm(&a, &b)?)
}
fn dot(a: Tensor, b: Tensor) -> Result<Tensor> {
    alloc(&meta::dot(&a, &b)?)
}
fn mv(a: Tensor, v: Tensor) -> Result<Tensor> {
    alloc(&meta::mv(&a, &v)?)
}

/// PyTorch's NotImplementedError for reading a Meta tensor's (absent) data.
fn no_data() -> DispatchError {
    DispatchError::NotImplemented("Cannot copy out of meta tensor; no data!".into())
}

/// `copy_` into a Meta tensor checks the shapes and moves nothing; out of a Meta tensor into
/// one with data there is nothing to copy.
fn copy_(dst: Tensor, src: Tensor, _non_blocking: bool) -> Result<Tensor> {
    meta::copy_(&dst, &src)?;
    if dst.device() != Device::Meta {
        return Err(no_data());
    }
    Ok(dst)
}
fn fill_scalar(t: Tensor, _v: Scalar) -> Result<Tensor> {
    Ok(t)
}
fn fill_tensor(t: Tensor, v: Tensor) -> Result<Tensor> {
    crate::cpu::check_fill_value(&v)?;
    Ok(t)
}
fn zero_(t: Tensor) -> Result<Tensor> {
    Ok(t)
}
fn local_scalar_dense(_t: Tensor) -> Result<Scalar> {
    Err(TensorError::other("Tensor.item() cannot be called on meta tensors").into())
}

fn tensors(ts: &[TensorRef]) -> Result<Vec<Tensor>> {
    ts.iter().map(tensor_of_ref).collect()
}
fn cat(ts: Vec<TensorRef>, dim: i64) -> Result<Tensor> {
    let ts = tensors(&ts)?;
    let refs: Vec<&Tensor> = ts.iter().collect();
    alloc(&meta::cat(&refs, dim)?.0)
}
fn stack(ts: Vec<TensorRef>, dim: i64) -> Result<Tensor> {
    let ts = tensors(&ts)?;
    let refs: Vec<&Tensor> = ts.iter().collect();
    let d = meta::stack(&refs, dim)?;
    let unsqueezed: Vec<Tensor> = refs
        .iter()
        .map(|t| opdispatch_tensor::ops::unsqueeze(t, d as i64))
        .collect::<opdispatch_tensor::Result<_>>()?;
    let refs: Vec<&Tensor> = unsqueezed.iter().collect();
    alloc(&meta::cat(&refs, d as i64)?.0)
}

fn reduction(a: &mut Args, with_dims: bool, mean: bool) -> Result<IValue> {
    let t = a.tensor()?;
    let (dims, keepdim) = if with_dims {
        (a.opt_int_list()?, a.bool()?)
    } else {
        (None, false)
    };
    let dtype = a.opt_dtype()?;
    let spec = if mean {
        meta::mean(&t, dims.as_deref(), keepdim, dtype)?
    } else {
        meta::sum(&t, dims.as_deref(), keepdim, dtype)?
    };
    Ok(tv(alloc(&spec.out)?))
}

fn arg_extreme(a: &mut Args, name: &'static str) -> Result<IValue> {
    let t = a.tensor()?;
    let (dim, keepdim) = (a.opt_int()?, a.bool()?);
    Ok(tv(alloc(&meta::arg_extreme(&t, dim, keepdim, name)?)?))
}

/// `_to_copy` from Meta: only to Meta, where it is a fresh tensor with no data.
fn to_copy(a: &mut Args) -> Result<IValue> {
    let t = a.tensor()?;
    let (dtype, device) = a.tensor_options()?;
    let _non_blocking = a.bool()?;
    a.memory_format()?;
    let spec = meta::to(&t, dtype, device)?;
    if spec.device != Device::Meta {
        return Err(no_data());
    }
    Ok(tv(alloc(&spec)?))
}

/// Where this block registers (the "registered at" of the dispatch-table dumps).
pub(crate) const REGISTERED_AT: (&str, u32) = (file!(), line!());

/// Every Meta kernel, the device-generic ones included.
pub(crate) fn kernels() -> Kernels {
    let mut k: Kernels = crate::generic::kernels();
    crate::calling::typed_backend_kernels!(k);
    let mut add = |name: &'static str, f: CppFunction| k.push((name, f));

    add("sum", boxed(|a| reduction(a, false, false)));
    add("sum.dim_IntList", boxed(|a| reduction(a, true, false)));
    add("mean", boxed(|a| reduction(a, false, true)));
    add("mean.dim", boxed(|a| reduction(a, true, true)));
    add("argmax", boxed(|a| arg_extreme(a, "argmax")));
    add("argmin", boxed(|a| arg_extreme(a, "argmin")));

    add(
        "clone",
        boxed(|a| {
            let t = a.tensor()?;
            a.memory_format()?;
            Ok(tv(Tensor::empty(t.sizes(), t.dtype(), Device::Meta)?))
        }),
    );
    add("_to_copy", boxed(to_copy));

    add(
        "uniform_",
        boxed(|a| {
            let t = a.tensor()?;
            let (_from, _to) = (a.float()?, a.float()?);
            a.no_generator()?;
            meta::random_float_fill(&t, "uniform_")?;
            Ok(tv(t))
        }),
    );
    add(
        "normal_",
        boxed(|a| {
            let t = a.tensor()?;
            let (_mean, std) = (a.float()?, a.float()?);
            a.no_generator()?;
            meta::normal_(&t, std)?;
            Ok(tv(t))
        }),
    );
    add(
        "random_.from",
        boxed(|a| {
            let t = a.tensor()?;
            let (from, to) = (a.int()?, a.random_to()?);
            a.no_generator()?;
            meta::random_from_to_(from, to)?;
            Ok(tv(t))
        }),
    );
    k
}
