//! Matrix products on CUDA tensors through cuBLAS (float32, float64, bfloat16).

use opdispatch_cuda::blas::{self, Operand};
use opdispatch_cuda::codegen::Ty;

use super::{cuda_err, index, ptr, ty};
use crate::error::{Result, TensorError};
use crate::ops::{self, meta};
use crate::Tensor;

/// The cuBLAS operand of the `[.., rows, cols]` tensor `t` (batch dimension 0 when 3-D): its
/// own memory when row- or column-major, else a contiguous copy (kept alive in the result).
fn operand(t: &Tensor) -> Result<(Operand, Tensor)> {
    let nd = t.dim();
    let (rows, cols) = (t.sizes()[nd - 2], t.sizes()[nd - 1]);
    let (s0, s1) = (t.strides()[nd - 2], t.strides()[nd - 1]);
    let batch_stride = if nd == 3 { t.strides()[0] as i64 } else { 0 };
    if (s1 == 1 || cols == 1) && s0 >= cols.max(1) {
        let op = Operand {
            ptr: ptr(t)?,
            ld: s0 as i64,
            batch_stride,
            trans: false,
        };
        return Ok((op, t.clone()));
    }
    if (s0 == 1 || rows == 1) && s1 >= rows.max(1) {
        let op = Operand {
            ptr: ptr(t)?,
            ld: s1 as i64,
            batch_stride,
            trans: true,
        };
        return Ok((op, t.clone()));
    }
    let c = super::clone(t)?;
    let op = Operand {
        ptr: ptr(&c)?,
        ld: cols.max(1) as i64,
        batch_stride: if nd == 3 { (rows * cols) as i64 } else { 0 },
        trans: false,
    };
    Ok((op, c))
}

fn gemm_type(t: &Tensor, name: &str) -> Result<Ty> {
    let k = ty(t.dtype(), name)?;
    match k {
        Ty::F32 | Ty::F64 | Ty::BF16 => Ok(k),
        _ => Err(TensorError::unsupported(name, t.dtype())),
    }
}

/// `out[i] = a[i] @ b[i]` for 3-D `a`, `b` and a fresh contiguous `out`.
fn batched(a: &Tensor, b: &Tensor, out: &Tensor, name: &str) -> Result<()> {
    let t = gemm_type(a, name)?;
    let (bs, m, k, n) = (a.sizes()[0], a.sizes()[1], a.sizes()[2], b.sizes()[2]);
    if k == 0 {
        return super::fill_(out, crate::Scalar::Int(0));
    }
    let (oa, _keep_a) = operand(a)?;
    let (ob, _keep_b) = operand(b)?;
    // SAFETY: the operands describe live device storage of their tensors (or of the copies
    // kept alive above); `out` is contiguous `[bs, m, n]`.
    unsafe { blas::gemm(index(out)?, t, m, n, k, oa, ob, ptr(out)?, bs) }.map_err(cuda_err)
}

/// `mm(a, b)` on CUDA.
pub fn mm(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let spec = meta::mm(a, b)?;
    let out = spec.empty()?;
    batched(
        &ops::unsqueeze(a, 0)?,
        &ops::unsqueeze(b, 0)?,
        &ops::unsqueeze(&out, 0)?,
        "addmm_cuda",
    )?;
    Ok(out)
}

/// `bmm(a, b)` on CUDA.
pub fn bmm(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let spec = meta::bmm(a, b)?;
    let out = spec.empty()?;
    batched(a, b, &out, "bmm_cuda")?;
    Ok(out)
}

/// `dot(a, b)` on CUDA: a `[1, k] x [k, 1]` product.
pub fn dot(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    meta::dot(a, b)?;
    let r = mm(&ops::unsqueeze(a, 0)?, &ops::unsqueeze(b, 1)?)?;
    ops::reshape(&r, &[])
}

/// `mv(a, v)` on CUDA.
pub fn mv(a: &Tensor, v: &Tensor) -> Result<Tensor> {
    meta::mv(a, v)?;
    ops::squeeze(&mm(a, &ops::unsqueeze(v, 1)?)?, Some(-1))
}

/// `t` as a contiguous `[batch, rows, cols]` (broadcast over `batch` first).
fn as_batched(t: &Tensor, batch: &[usize], rows: usize, cols: usize) -> Result<Tensor> {
    let mut full: Vec<i64> = batch.iter().map(|&s| s as i64).collect();
    full.extend([rows as i64, cols as i64]);
    let e = ops::expand(t, &full)?;
    let bn: usize = batch.iter().product();
    let target = [bn as i64, rows as i64, cols as i64];
    match ops::compute_view_strides(e.sizes(), e.strides(), &[bn, rows, cols]) {
        Some(_) => ops::view(&e, &target),
        None => ops::view(&super::clone(&e)?, &target),
    }
}

/// `matmul(a, b)` on CUDA for the shapes with batch dimensions (NumPy semantics: 1-D operands
/// become a row or a column, batch dimensions broadcast); the 1-D/2-D shapes go to
/// [`mm`]/[`mv`]/[`dot`] through the dispatcher.
pub fn matmul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let spec = meta::matmul_geometry(a, b)?;
    let a2 = if a.dim() == 1 {
        ops::unsqueeze(a, 0)?
    } else {
        a.clone()
    };
    let b2 = if b.dim() == 1 {
        ops::unsqueeze(b, 1)?
    } else {
        b.clone()
    };
    let a3 = as_batched(&a2, &spec.batch, spec.m, spec.k)?;
    let b3 = as_batched(&b2, &spec.batch, spec.k, spec.n)?;
    let r = bmm(&a3, &b3)?;
    let sizes: Vec<i64> = spec.out.sizes.iter().map(|&s| s as i64).collect();
    ops::view(&r, &sizes)
}
