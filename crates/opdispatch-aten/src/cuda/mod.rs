//! The CUDA backend: the runtime's CUDA loops (`opdispatch_tensor::cuda`), each sizing its
//! output through the same meta function the CPU and Meta backends use, so the three cannot
//! disagree about shapes, promotion, devices or messages. Views and `*_like` factories are the
//! device-generic kernels (`generic.rs`), registered here too: views need no kernel.

use opdispatch_dispatch::{CppFunction, Result, TensorRef};
use opdispatch_tensor::cuda;
use opdispatch_tensor::ops::{BinaryOp, UnaryOp};
use opdispatch_tensor::{Scalar, Tensor};

use crate::args::tensor_of_ref;
use crate::calling::{boxed, tv, Kernels};
use crate::cpu::{sum_like, to_copy};

macro_rules! unary_kernels {
    ($($f:ident => $op:ident),*) => {$(
        fn $f(x: Tensor) -> Result<Tensor> {
            Ok(cuda::unary(UnaryOp::$op, &x)?)
        }
    )*};
}
unary_kernels!(neg => Neg, abs => Abs, exp => Exp, log => Log, sin => Sin, cos => Cos,
    sqrt => Sqrt, relu => Relu, sigmoid => Sigmoid, tanh => Tanh, reciprocal => Reciprocal);

macro_rules! binary_kernels {
    ($($f:ident => $op:ident),*) => {$(
        fn $f(a: Tensor, b: Tensor) -> Result<Tensor> {
            Ok(cuda::binary(BinaryOp::$op, &a, &b, None)?)
        }
    )*};
}
binary_kernels!(mul_t => Mul, div_t => Div, pow_tt => Pow, maximum => Maximum, minimum => Minimum,
    eq_t => Eq, ne_t => Ne, lt_t => Lt, le_t => Le, gt_t => Gt, ge_t => Ge);

macro_rules! binary_scalar_kernels {
    ($($f:ident => $op:ident),*) => {$(
        fn $f(a: Tensor, s: Scalar) -> Result<Tensor> {
            Ok(cuda::binary_scalar(BinaryOp::$op, &a, s, None)?)
        }
    )*};
}
binary_scalar_kernels!(mul_s => Mul, div_s => Div, pow_ts => Pow,
    eq_s => Eq, ne_s => Ne, lt_s => Lt, le_s => Le, gt_s => Gt, ge_s => Ge);

fn add_t(a: Tensor, b: Tensor, alpha: Scalar) -> Result<Tensor> {
    Ok(cuda::binary(BinaryOp::Add, &a, &b, Some(alpha))?)
}
fn sub_t(a: Tensor, b: Tensor, alpha: Scalar) -> Result<Tensor> {
    Ok(cuda::binary(BinaryOp::Sub, &a, &b, Some(alpha))?)
}
/// `other - alpha * self`.
fn rsub_t(a: Tensor, b: Tensor, alpha: Scalar) -> Result<Tensor> {
    Ok(cuda::binary(BinaryOp::Sub, &b, &a, Some(alpha))?)
}
fn add_s(a: Tensor, s: Scalar, alpha: Scalar) -> Result<Tensor> {
    Ok(cuda::binary_scalar(BinaryOp::Add, &a, s, Some(alpha))?)
}
fn sub_s(a: Tensor, s: Scalar, alpha: Scalar) -> Result<Tensor> {
    Ok(cuda::binary_scalar(BinaryOp::Sub, &a, s, Some(alpha))?)
}
fn add_inplace(a: Tensor, b: Tensor, alpha: Scalar) -> Result<Tensor> {
    cuda::binary_(BinaryOp::Add, &a, &b, Some(alpha))?;
    Ok(a)
}
fn sub_inplace(a: Tensor, b: Tensor, alpha: Scalar) -> Result<Tensor> {
    cuda::binary_(BinaryOp::Sub, &a, &b, Some(alpha))?;
    Ok(a)
}
fn mul_inplace(a: Tensor, b: Tensor) -> Result<Tensor> {
    cuda::binary_(BinaryOp::Mul, &a, &b, None)?;
    Ok(a)
}
fn div_inplace(a: Tensor, b: Tensor) -> Result<Tensor> {
    cuda::binary_(BinaryOp::Div, &a, &b, None)?;
    Ok(a)
}
fn tanh_backward(g: Tensor, out: Tensor) -> Result<Tensor> {
    Ok(cuda::tanh_backward(&g, &out)?)
}
fn where_self(c: Tensor, a: Tensor, b: Tensor) -> Result<Tensor> {
    Ok(cuda::where_(&c, &a, &b)?)
}

fn max_all(t: Tensor) -> Result<Tensor> {
    Ok(cuda::extreme(&t, true)?)
}
fn min_all(t: Tensor) -> Result<Tensor> {
    Ok(cuda::extreme(&t, false)?)
}
fn max_dim(t: Tensor, dim: i64, keepdim: bool) -> Result<(Tensor, Tensor)> {
    Ok(cuda::extreme_dim(&t, dim, keepdim, true)?)
}
fn min_dim(t: Tensor, dim: i64, keepdim: bool) -> Result<(Tensor, Tensor)> {
    Ok(cuda::extreme_dim(&t, dim, keepdim, false)?)
}

fn mm(a: Tensor, b: Tensor) -> Result<Tensor> {
    Ok(cuda::mm(&a, &b)?)
}
fn bmm(a: Tensor, b: Tensor) -> Result<Tensor> {
    Ok(cuda::bmm(&a, &b)?)
}
fn dot(a: Tensor, b: Tensor) -> Result<Tensor> {
    Ok(cuda::dot(&a, &b)?)
}
fn mv(a: Tensor, v: Tensor) -> Result<Tensor> {
    Ok(cuda::mv(&a, &v)?)
}

fn copy_(dst: Tensor, src: Tensor, _non_blocking: bool) -> Result<Tensor> {
    cuda::copy_(&dst, &src)?;
    Ok(dst)
}
fn fill_scalar(t: Tensor, v: Scalar) -> Result<Tensor> {
    cuda::fill_(&t, v)?;
    Ok(t)
}
/// `fill_.Tensor`: the value of a 0-dimensional tensor (read back to the host).
fn fill_tensor(t: Tensor, v: Tensor) -> Result<Tensor> {
    crate::cpu::check_fill_value(&v)?;
    cuda::fill_(&t, v.item()?)?;
    Ok(t)
}
/// `pow.Scalar`: the number raised to each element (a wrapped-number operand).
fn pow_st(s: Scalar, e: Tensor) -> Result<Tensor> {
    Ok(cuda::binary(
        BinaryOp::Pow,
        &Tensor::wrapped_scalar(s),
        &e,
        None,
    )?)
}
fn zero_(t: Tensor) -> Result<Tensor> {
    cuda::fill_(&t, Scalar::Int(0))?;
    Ok(t)
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
    Ok(cuda::cat(&refs, dim)?)
}
fn stack(ts: Vec<TensorRef>, dim: i64) -> Result<Tensor> {
    let ts = tensors(&ts)?;
    let refs: Vec<&Tensor> = ts.iter().collect();
    Ok(cuda::stack(&refs, dim)?)
}

/// Where this block registers (the "registered at" of the dispatch-table dumps).
pub(crate) const REGISTERED_AT: (&str, u32) = (file!(), line!());

/// Every CUDA kernel, the device-generic ones included.
pub(crate) fn kernels() -> Kernels {
    let mut k: Kernels = crate::generic::kernels();
    crate::calling::typed_backend_kernels!(k);
    let typed = |k: &mut Kernels, name: &'static str, f: CppFunction| k.push((name, f));

    typed(&mut k, "sum", boxed(|a| sum_like(a, false, cuda::sum)));
    typed(
        &mut k,
        "sum.dim_IntList",
        boxed(|a| sum_like(a, true, cuda::sum)),
    );
    typed(&mut k, "mean", boxed(|a| sum_like(a, false, cuda::mean)));
    typed(&mut k, "mean.dim", boxed(|a| sum_like(a, true, cuda::mean)));
    typed(
        &mut k,
        "argmax",
        boxed(|a| {
            let t = a.tensor()?;
            let (dim, keepdim) = (a.opt_int()?, a.bool()?);
            Ok(tv(cuda::arg_extreme(&t, dim, keepdim, true)?))
        }),
    );
    typed(
        &mut k,
        "argmin",
        boxed(|a| {
            let t = a.tensor()?;
            let (dim, keepdim) = (a.opt_int()?, a.bool()?);
            Ok(tv(cuda::arg_extreme(&t, dim, keepdim, false)?))
        }),
    );
    typed(
        &mut k,
        "clone",
        boxed(|a| {
            let t = a.tensor()?;
            a.memory_format()?;
            Ok(tv(cuda::clone(&t)?))
        }),
    );
    typed(&mut k, "_to_copy", boxed(to_copy));
    k
}
