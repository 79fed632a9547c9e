//! Pointwise kernels on CUDA tensors: the contiguous entry point when every operand is a
//! contiguous tensor of the output's shape, else the strided one with broadcast strides.

use std::ffi::c_void;

use opdispatch_cuda::codegen::{Binary, Unary};
use opdispatch_cuda::launch::{launch_pointwise, KernelKey};

use super::{cuda_err, geometry, index, on_device, ptr, ty};
use crate::element::dispatch_dtype;
use crate::error::{Result, TensorError};
use crate::ops::{broadcast_strides, meta, BinaryOp, UnaryOp};
use crate::tensor::elem_of_scalar;
use crate::{Element, Scalar, ScalarType, Tensor};

fn binary_op(op: BinaryOp) -> Binary {
    match op {
        BinaryOp::Add => Binary::Add,
        BinaryOp::Sub => Binary::Sub,
        BinaryOp::Mul => Binary::Mul,
        BinaryOp::Div => Binary::Div,
        BinaryOp::Pow => Binary::Pow,
        BinaryOp::Maximum => Binary::Maximum,
        BinaryOp::Minimum => Binary::Minimum,
        BinaryOp::Eq => Binary::Eq,
        BinaryOp::Ne => Binary::Ne,
        BinaryOp::Lt => Binary::Lt,
        BinaryOp::Le => Binary::Le,
        BinaryOp::Gt => Binary::Gt,
        BinaryOp::Ge => Binary::Ge,
    }
}

fn unary_op(op: UnaryOp) -> Unary {
    match op {
        UnaryOp::Neg => Unary::Neg,
        UnaryOp::Abs => Unary::Abs,
        UnaryOp::Exp => Unary::Exp,
        UnaryOp::Log => Unary::Log,
        UnaryOp::Sin => Unary::Sin,
        UnaryOp::Cos => Unary::Cos,
        UnaryOp::Sqrt => Unary::Sqrt,
        UnaryOp::Relu => Unary::Relu,
        UnaryOp::Sigmoid => Unary::Sigmoid,
        UnaryOp::Tanh => Unary::Tanh,
        UnaryOp::Reciprocal => Unary::Reciprocal,
    }
}

fn cuda_name(op: BinaryOp) -> &'static str {
    match op {
        BinaryOp::Add => "add_cuda",
        BinaryOp::Sub => "sub_cuda",
        BinaryOp::Mul => "mul_cuda",
        BinaryOp::Div => "div_cuda",
        BinaryOp::Pow => "pow_cuda",
        BinaryOp::Maximum => "maximum_cuda",
        BinaryOp::Minimum => "minimum_cuda",
        _ => "compare_cuda",
    }
}

/// Whether `t` is contiguous with exactly `shape`.
fn dense(t: &Tensor, shape: &[usize]) -> bool {
    t.is_contiguous() && t.sizes() == shape
}

/// `out = op(a, b)` (add/sub with `alpha`), computing in `compute`: `out` is on the device
/// with the broadcast shape; `a` and `b` are on it too or CPU zero-dim tensors.
fn binary_into(
    op: BinaryOp,
    out: &Tensor,
    a: &Tensor,
    b: &Tensor,
    alpha: Scalar,
    compute: ScalarType,
) -> Result<()> {
    let name = cuda_name(op);
    let d = index(out)?;
    if op == BinaryOp::Pow
        && compute.is_integral(true)
        && b.device().is_cpu()
        && b.load::<i64>()?.iter().any(|&e| e < 0)
    {
        return Err(TensorError::Value(
            "Integers to negative integer powers are not allowed.".into(),
        ));
    }
    let dev = out.device();
    let (a, b) = (on_device(a, dev)?, on_device(b, dev)?);
    let shape = out.sizes();
    let n = out.numel();
    let strided = !(dense(out, shape) && dense(&a, shape) && dense(&b, shape));
    let key = KernelKey::Binary {
        op: binary_op(op),
        a: ty(a.dtype(), name)?,
        b: ty(b.dtype(), name)?,
        c: ty(compute, name)?,
        out: ty(out.dtype(), name)?,
        strided,
    };
    let (mut po, mut pa, mut pb) = (ptr(out)?, ptr(&a)?, ptr(&b)?);
    let mut nn = n as i64;
    let mut al = alpha.to_f64();
    let base: [*mut c_void; 5] = [
        std::ptr::addr_of_mut!(po).cast(),
        std::ptr::addr_of_mut!(pa).cast(),
        std::ptr::addr_of_mut!(pb).cast(),
        std::ptr::addr_of_mut!(nn).cast(),
        std::ptr::addr_of_mut!(al).cast(),
    ];
    if strided {
        let (sa, sb) = (broadcast_strides(&a, shape), broadcast_strides(&b, shape));
        let mut g = geometry::<3>(shape, [out.strides(), &sa, &sb])?;
        let mut args = [
            base[0],
            base[1],
            base[2],
            base[3],
            base[4],
            std::ptr::addr_of_mut!(g).cast(),
        ];
        // SAFETY: the arguments are the strided binary entry's (out, a, b, n, alpha, geometry)
        // over live device storage the geometry stays inside.
        unsafe { launch_pointwise(d, key, n, &mut args) }.map_err(cuda_err)
    } else {
        let mut args = base;
        // SAFETY: the contiguous entry's (out, a, b, n, alpha) over `n` elements each.
        unsafe { launch_pointwise(d, key, n, &mut args) }.map_err(cuda_err)
    }
}

/// `op(a, b)` (add/sub with `alpha`) on CUDA.
pub fn binary(op: BinaryOp, a: &Tensor, b: &Tensor, alpha: Option<Scalar>) -> Result<Tensor> {
    let spec = meta::binary(op, a, b, alpha)?;
    let out = spec.out.empty()?;
    binary_into(
        op,
        &out,
        a,
        b,
        alpha.unwrap_or(Scalar::Int(1)),
        spec.compute,
    )?;
    Ok(out)
}

/// `op(a, s)` with a Python number on the right.
pub fn binary_scalar(op: BinaryOp, a: &Tensor, s: Scalar, alpha: Option<Scalar>) -> Result<Tensor> {
    binary(op, a, &Tensor::wrapped_scalar(s), alpha)
}

/// In-place `a.op_(b)`: computed straight into `a` (each element reads only its own inputs).
pub fn binary_(op: BinaryOp, a: &Tensor, b: &Tensor, alpha: Option<Scalar>) -> Result<()> {
    let spec = meta::binary_inplace(op, a, b, alpha)?;
    binary_into(op, a, a, b, alpha.unwrap_or(Scalar::Int(1)), spec.compute)
}

/// `out = op(x)` computing in `compute` (`Cast` converts).
fn unary_into(op: Unary, out: &Tensor, x: &Tensor, compute: ScalarType, name: &str) -> Result<()> {
    let shape = out.sizes();
    let n = out.numel();
    let strided = !(dense(out, shape) && dense(x, shape));
    let key = KernelKey::Unary {
        op,
        a: ty(x.dtype(), name)?,
        c: ty(compute, name)?,
        out: ty(out.dtype(), name)?,
        strided,
    };
    let (mut po, mut px) = (ptr(out)?, ptr(x)?);
    let mut nn = n as i64;
    let d = index(out)?;
    if strided {
        let sx = broadcast_strides(x, shape);
        let mut g = geometry::<2>(shape, [out.strides(), &sx])?;
        let mut args: [*mut c_void; 4] = [
            std::ptr::addr_of_mut!(po).cast(),
            std::ptr::addr_of_mut!(px).cast(),
            std::ptr::addr_of_mut!(nn).cast(),
            std::ptr::addr_of_mut!(g).cast(),
        ];
        // SAFETY: the strided unary entry's (out, x, n, geometry) over live device storage.
        unsafe { launch_pointwise(d, key, n, &mut args) }.map_err(cuda_err)
    } else {
        let mut args: [*mut c_void; 3] = [
            std::ptr::addr_of_mut!(po).cast(),
            std::ptr::addr_of_mut!(px).cast(),
            std::ptr::addr_of_mut!(nn).cast(),
        ];
        // SAFETY: the contiguous unary entry's (out, x, n).
        unsafe { launch_pointwise(d, key, n, &mut args) }.map_err(cuda_err)
    }
}

/// `op(x)` on CUDA.
pub fn unary(op: UnaryOp, x: &Tensor) -> Result<Tensor> {
    let spec = meta::unary(op, x)?;
    let out = spec.empty()?;
    let name = match op {
        UnaryOp::Relu => "clamp_min_scalar_cuda",
        _ => "unary_cuda",
    };
    unary_into(unary_op(op), &out, x, spec.dtype, name)?;
    Ok(out)
}

/// `dst.copy_(src)` on one device: broadcast, convert, any strides.
pub(crate) fn cast_into(dst: &Tensor, src: &Tensor) -> Result<()> {
    let compute = if src.dtype() == ScalarType::BFloat16 || dst.dtype() == ScalarType::BFloat16 {
        ScalarType::Float32
    } else {
        src.dtype()
    };
    unary_into(Unary::Cast, dst, src, compute, "copy_cuda")
}

/// `t.fill_(value)` on CUDA.
pub fn fill_(t: &Tensor, value: Scalar) -> Result<()> {
    let n = t.numel();
    if n == 0 {
        return Ok(());
    }
    let isz = t.element_size();
    let mut enc = [0u64; 1];
    {
        // SAFETY: viewing the word as its 8 bytes.
        let bytes = unsafe { std::slice::from_raw_parts_mut(enc.as_mut_ptr().cast::<u8>(), 8) };
        dispatch_dtype!(t.dtype(), T => {
            elem_of_scalar::<T>(value).write(&mut bytes[..isz]);
        });
    }
    let strided = !t.is_contiguous();
    let key = KernelKey::Fill {
        t: ty(t.dtype(), "fill_cuda")?,
        strided,
    };
    let mut po = ptr(t)?;
    let mut nn = n as i64;
    let d = index(t)?;
    if strided {
        let mut g = geometry::<1>(t.sizes(), [t.strides()])?;
        let mut args: [*mut c_void; 4] = [
            std::ptr::addr_of_mut!(po).cast(),
            std::ptr::addr_of_mut!(nn).cast(),
            enc.as_mut_ptr().cast(),
            std::ptr::addr_of_mut!(g).cast(),
        ];
        // SAFETY: the strided fill entry's (out, n, value, geometry): the value's bytes are the
        // element's encoding at the start of an 8-byte word.
        unsafe { launch_pointwise(d, key, n, &mut args) }.map_err(cuda_err)
    } else {
        let mut args: [*mut c_void; 3] = [
            std::ptr::addr_of_mut!(po).cast(),
            std::ptr::addr_of_mut!(nn).cast(),
            enc.as_mut_ptr().cast(),
        ];
        // SAFETY: the contiguous fill entry's (out, n, value).
        unsafe { launch_pointwise(d, key, n, &mut args) }.map_err(cuda_err)
    }
}

/// `where(cond, a, b)` on CUDA.
pub fn where_(cond: &Tensor, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let spec = meta::where_(cond, a, b)?;
    let out = spec.empty()?;
    let dev = out.device();
    let cast = |t: &Tensor| -> Result<Tensor> {
        let t = on_device(t, dev)?;
        if t.dtype() == spec.dtype {
            return Ok(t);
        }
        let c = Tensor::empty(t.sizes(), spec.dtype, dev)?;
        cast_into(&c, &t)?;
        Ok(c)
    };
    let (c, a, b) = (on_device(cond, dev)?, cast(a)?, cast(b)?);
    let shape = out.sizes();
    let n = out.numel();
    let key = KernelKey::Where {
        t: ty(spec.dtype, "where_cuda")?,
    };
    let (sc, sa, sb) = (
        broadcast_strides(&c, shape),
        broadcast_strides(&a, shape),
        broadcast_strides(&b, shape),
    );
    let mut g = geometry::<4>(shape, [out.strides(), &sc, &sa, &sb])?;
    let (mut po, mut pc, mut pa, mut pb) = (ptr(&out)?, ptr(&c)?, ptr(&a)?, ptr(&b)?);
    let mut nn = n as i64;
    let mut args: [*mut c_void; 6] = [
        std::ptr::addr_of_mut!(po).cast(),
        std::ptr::addr_of_mut!(pc).cast(),
        std::ptr::addr_of_mut!(pa).cast(),
        std::ptr::addr_of_mut!(pb).cast(),
        std::ptr::addr_of_mut!(nn).cast(),
        std::ptr::addr_of_mut!(g).cast(),
    ];
    // SAFETY: the where entry's (out, cond, a, b, n, geometry) over live device storage.
    unsafe { launch_pointwise(index(&out)?, key, n, &mut args) }.map_err(cuda_err)?;
    Ok(out)
}

/// `where(cond, a, scalar)`.
pub fn where_scalar(cond: &Tensor, a: &Tensor, other: Scalar) -> Result<Tensor> {
    where_(cond, a, &Tensor::wrapped_scalar(other))
}

/// `tanh_backward(grad, output)`: `grad * (1 - output^2)`, with `mul`'s checks.
pub fn tanh_backward(g: &Tensor, out: &Tensor) -> Result<Tensor> {
    meta::tanh_backward(g, out)?;
    let sq = binary(BinaryOp::Mul, out, out, None)?;
    let one_minus = binary(
        BinaryOp::Sub,
        &Tensor::wrapped_scalar(Scalar::Int(1)),
        &sq,
        None,
    )?;
    binary(BinaryOp::Mul, g, &one_minus, None)
}
