//! Pointwise ops: binary arithmetic with broadcasting and type promotion,
//! comparisons, unary math, and `where`.

use std::mem::MaybeUninit;

use super::cascade::SendPtr;
use super::{broadcast_strides, meta};
use crate::element::{cast_slice, cast_slice_mut, C64};
use crate::error::{Result, TensorError};
use crate::parallel::{parallel_for, GRAIN_SIZE};
use crate::tensor::{tensor_from_domain, Domain};
use crate::{Scalar, ScalarType, Tensor};

/// Binary pointwise operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Maximum,
    Minimum,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl BinaryOp {
    pub(crate) fn is_comparison(self) -> bool {
        matches!(
            self,
            BinaryOp::Eq | BinaryOp::Ne | BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge
        )
    }
    pub(crate) fn kernel_name(self) -> &'static str {
        match self {
            BinaryOp::Add => "add_cpu",
            BinaryOp::Sub => "sub_cpu",
            BinaryOp::Mul => "mul_cpu",
            BinaryOp::Div => "div_cpu",
            BinaryOp::Pow => "pow_cpu",
            BinaryOp::Maximum => "maximum_cpu",
            BinaryOp::Minimum => "minimum_cpu",
            BinaryOp::Eq => "eq_cpu",
            BinaryOp::Ne => "ne_cpu",
            BinaryOp::Lt => "lt_cpu",
            BinaryOp::Le => "le_cpu",
            BinaryOp::Gt => "gt_cpu",
            BinaryOp::Ge => "ge_cpu",
        }
    }
}

fn int_pow(mut base: i64, mut exp: i64) -> i64 {
    let mut acc: i64 = 1;
    while exp > 0 {
        if exp & 1 == 1 {
            acc = acc.wrapping_mul(base);
        }
        base = base.wrapping_mul(base);
        exp >>= 1;
    }
    acc
}

fn apply_f64(op: BinaryOp, alpha: f64) -> impl Fn(f64, f64) -> f64 {
    move |a, b| match op {
        BinaryOp::Add => a + alpha * b,
        BinaryOp::Sub => a - alpha * b,
        BinaryOp::Mul => a * b,
        BinaryOp::Div => a / b,
        BinaryOp::Pow => a.powf(b),
        BinaryOp::Maximum => {
            if a.is_nan() || b.is_nan() {
                f64::NAN
            } else {
                a.max(b)
            }
        }
        BinaryOp::Minimum => {
            if a.is_nan() || b.is_nan() {
                f64::NAN
            } else {
                a.min(b)
            }
        }
        _ => unreachable!("comparison in arithmetic kernel"),
    }
}

fn apply_i64(op: BinaryOp, alpha: i64) -> impl Fn(i64, i64) -> i64 {
    move |a, b| match op {
        BinaryOp::Add => a.wrapping_add(alpha.wrapping_mul(b)),
        BinaryOp::Sub => a.wrapping_sub(alpha.wrapping_mul(b)),
        BinaryOp::Mul => a.wrapping_mul(b),
        BinaryOp::Pow => int_pow(a, b),
        BinaryOp::Maximum => a.max(b),
        BinaryOp::Minimum => a.min(b),
        _ => unreachable!("integer kernel for {op:?}"),
    }
}

fn apply_c64(op: BinaryOp, alpha: C64) -> impl Fn(C64, C64) -> C64 {
    move |a, b| match op {
        BinaryOp::Add => a + alpha * b,
        BinaryOp::Sub => a - alpha * b,
        BinaryOp::Mul => a * b,
        BinaryOp::Div => a / b,
        BinaryOp::Pow => {
            if b == C64::new(0.0, 0.0) {
                C64::new(1.0, 0.0)
            } else {
                a.powc(b)
            }
        }
        _ => unreachable!("complex kernel for {op:?}"),
    }
}

fn compare<D: PartialOrd>(op: BinaryOp) -> impl Fn(D, D) -> bool {
    move |a, b| match op {
        BinaryOp::Eq => a == b,
        BinaryOp::Ne => a != b,
        BinaryOp::Lt => a < b,
        BinaryOp::Le => a <= b,
        BinaryOp::Gt => a > b,
        BinaryOp::Ge => a >= b,
        _ => unreachable!(),
    }
}

fn load_pair<D: Domain>(a: &Tensor, b: &Tensor, shape: &[usize]) -> Result<(Vec<D>, Vec<D>)> {
    Ok((
        a.load_strided::<D>(shape, &broadcast_strides(a, shape))?,
        b.load_strided::<D>(shape, &broadcast_strides(b, shape))?,
    ))
}

/// Round `v` to the precision of floating dtype `dt`, as converting an input
/// to the common dtype does before a PyTorch kernel runs.
fn round_to(dt: ScalarType, v: f64) -> f64 {
    match dt {
        ScalarType::Float32 => v as f32 as f64,
        ScalarType::Float16 => half::f16::from_f64(v).to_f64(),
        ScalarType::BFloat16 => half::bf16::from_f64(v).to_f64(),
        _ => v,
    }
}

/// Load both operands as f64, each first converted to `compute`'s precision.
fn load_pair_f64(
    a: &Tensor,
    b: &Tensor,
    shape: &[usize],
    compute: ScalarType,
) -> Result<(Vec<f64>, Vec<f64>)> {
    let (mut x, mut y) = load_pair::<f64>(a, b, shape)?;
    for (t, v) in [(a, &mut x), (b, &mut y)] {
        if t.dtype() != compute {
            v.iter_mut().for_each(|e| *e = round_to(compute, *e));
        }
    }
    Ok((x, y))
}

fn zip_map<D: Copy, O>(x: &[D], y: &[D], f: impl Fn(D, D) -> O) -> Vec<O> {
    x.iter().zip(y).map(|(&p, &q)| f(p, q)).collect()
}

/// Allocate a contiguous f32 output of `n` elements, fill it with `f`, wrap it. The buffer is
/// not zeroed first (as PyTorch's `empty`): `f` must write every element, and it only gets
/// `MaybeUninit` slots, so it cannot read them.
pub(super) fn new_f32(
    sizes: &[usize],
    n: usize,
    f: impl FnOnce(&mut [MaybeUninit<f32>]),
) -> Result<Tensor> {
    let mut buf = crate::storage::WordBuf::uninit(n * 4)?;
    let p = buf.data();
    // SAFETY: at least `n * 4` writable bytes from the 8-aligned `p`, viewed as MaybeUninit
    // slots (which asserts nothing about their contents).
    let out = unsafe { std::slice::from_raw_parts_mut(p.cast::<MaybeUninit<f32>>(), n) };
    f(out);
    // SAFETY: `f` wrote all n f32 slots (callers zip over exactly n inputs).
    unsafe { buf.assume_init(n * 4) };
    let st = buf.into_storage(n * 4);
    // A fresh contiguous buffer of exactly n elements: the geometry needs no bounds check.
    Ok(Tensor::from_parts_unchecked(
        st,
        sizes,
        crate::contiguous_strides_dims(sizes),
        0,
        ScalarType::Float32,
        false,
    ))
}

/// Contiguous f32 fast path for arithmetic (`None` when it does not apply).
fn fast_f32(
    op: BinaryOp,
    a: &Tensor,
    b: &Tensor,
    alpha: f64,
    shape: &[usize],
) -> Option<Result<Tensor>> {
    let applicable = a.dtype() == ScalarType::Float32
        && a.is_contiguous()
        && a.sizes() == shape
        && matches!(
            op,
            BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div
        );
    if !applicable {
        return None;
    }
    let n = a.numel();
    // `a + alpha * b` is evaluated in f64 and rounded once, exactly like the generic path.
    let al = alpha as f32 as f64;
    // Scalar right operand (a wrapped number or any one-element tensor).
    let scalar_b = b.numel() == 1 && (b.dtype() == ScalarType::Float32 || b.is_wrapped_number());
    let full_b = b.dtype() == ScalarType::Float32 && b.is_contiguous() && b.sizes() == shape;
    if scalar_b {
        let s = match b.load::<f64>() {
            Ok(v) => v[0] as f32 as f64,
            Err(e) => return Some(Err(e)),
        };
        let sa = a.storage_ref();
        let r = match sa.read() {
            Ok(r) => r,
            Err(e) => return Some(Err(e)),
        };
        let x =
            &cast_slice::<f32>(&r).expect("aligned")[a.storage_offset()..a.storage_offset() + n];
        return Some(new_f32(shape, n, |o| {
            let op_ = SendPtr(o.as_mut_ptr());
            parallel_for(n, GRAIN_SIZE, |r| {
                // SAFETY: the chunks of one loop own disjoint ranges of the output.
                let o = unsafe { std::slice::from_raw_parts_mut(op_.get().add(r.start), r.len()) };
                scalar_f32(op, al, s, o, &x[r]);
            });
        }));
    }
    if !full_b {
        return None;
    }
    let (sa, sb) = (a.storage_ref(), b.storage_ref());
    let ra = match sa.read() {
        Ok(r) => r,
        Err(e) => return Some(Err(e)),
    };
    // Never take the same lock twice.
    let rb_guard;
    let rb: &[u8] = if sa.ptr_eq(sb) {
        &ra
    } else {
        rb_guard = match sb.read() {
            Ok(r) => r,
            Err(e) => return Some(Err(e)),
        };
        &rb_guard
    };
    let x = &cast_slice::<f32>(&ra).expect("aligned")[a.storage_offset()..a.storage_offset() + n];
    let y = &cast_slice::<f32>(rb).expect("aligned")[b.storage_offset()..b.storage_offset() + n];
    Some(new_f32(shape, n, |o| {
        let op_ = SendPtr(o.as_mut_ptr());
        parallel_for(n, GRAIN_SIZE, |r| {
            // SAFETY: the chunks of one loop own disjoint ranges of the output.
            let o = unsafe { std::slice::from_raw_parts_mut(op_.get().add(r.start), r.len()) };
            binary_f32(op, al, o, &x[r.clone()], &y[r]);
        });
    }))
}

/// In-place `a op= b` over contiguous f32 straight into `a`'s buffer (`None` when it does not
/// apply: then the result is computed out of place and copied back). Rounds as [`fast_f32`].
fn inplace_f32(op: BinaryOp, a: &Tensor, b: &Tensor, alpha: f64) -> Option<Result<()>> {
    let applicable = a.dtype() == ScalarType::Float32
        && a.is_contiguous()
        && matches!(
            op,
            BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div
        );
    let scalar_b = b.numel() == 1
        && b.dim() <= a.dim()
        && (b.dtype() == ScalarType::Float32 || b.is_wrapped_number());
    let full_b = b.dtype() == ScalarType::Float32 && b.is_contiguous() && b.sizes() == a.sizes();
    if !applicable || !(scalar_b || full_b) {
        return None;
    }
    let n = a.numel();
    let al = alpha as f32 as f64;
    let (sa, sb) = (a.storage_ref(), b.storage_ref());
    let (ao, bo) = (a.storage_offset(), b.storage_offset());
    if scalar_b {
        let s = match b.load::<f64>() {
            Ok(v) => v[0] as f32 as f64,
            Err(e) => return Some(Err(e)),
        };
        let mut w = match sa.write() {
            Ok(w) => w,
            Err(e) => return Some(Err(e)),
        };
        let x = &mut cast_slice_mut::<f32>(&mut w).expect("aligned")[ao..ao + n];
        let xp = SendPtr(x.as_mut_ptr());
        parallel_for(n, GRAIN_SIZE, |r| {
            // SAFETY: the chunks of one loop own disjoint ranges of `x`.
            let x = unsafe { std::slice::from_raw_parts_mut(xp.get().add(r.start), r.len()) };
            scalar_inplace_f32(op, al, s, x);
        });
        return Some(Ok(()));
    }
    if sa.ptr_eq(sb) {
        if ao != bo {
            return None; // Partly overlapping operands: the generic path reads `b` out first.
        }
        let mut w = match sa.write() {
            Ok(w) => w,
            Err(e) => return Some(Err(e)),
        };
        let x = &mut cast_slice_mut::<f32>(&mut w).expect("aligned")[ao..ao + n];
        x.iter_mut()
            .for_each(|v| *v = apply_one_f32(op, al, *v, *v));
        return Some(Ok(()));
    }
    let rb = match sb.read() {
        Ok(r) => r,
        Err(e) => return Some(Err(e)),
    };
    // Waiting for `a`'s lock while holding `b`'s could deadlock against `b.add_(a)`.
    let mut w = sa.try_write()?;
    let y = &cast_slice::<f32>(&rb).expect("aligned")[bo..bo + n];
    let x = &mut cast_slice_mut::<f32>(&mut w).expect("aligned")[ao..ao + n];
    let xp = SendPtr(x.as_mut_ptr());
    parallel_for(n, GRAIN_SIZE, |r| {
        // SAFETY: the chunks of one loop own disjoint ranges of `x`.
        let x = unsafe { std::slice::from_raw_parts_mut(xp.get().add(r.start), r.len()) };
        binary_inplace_f32(op, al, x, &y[r]);
    });
    Some(Ok(()))
}

/// One element of [`binary_f32_loop`]'s arithmetic.
#[inline(always)]
fn apply_one_f32(op: BinaryOp, al: f64, x: f32, y: f32) -> f32 {
    match op {
        BinaryOp::Add if al == 1.0 => x + y,
        BinaryOp::Add => (x as f64 + al * y as f64) as f32,
        BinaryOp::Sub if al == 1.0 => x - y,
        BinaryOp::Sub => (x as f64 - al * y as f64) as f32,
        BinaryOp::Mul => x * y,
        _ => x / y,
    }
}

/// `x = x op y` over equal-length slices, vectorized as [`binary_f32`].
fn binary_inplace_f32(op: BinaryOp, al: f64, x: &mut [f32], y: &[f32]) {
    #[inline(always)]
    fn body(op: BinaryOp, al: f64, x: &mut [f32], y: &[f32]) {
        let it = x.iter_mut().zip(y);
        match op {
            BinaryOp::Add if al == 1.0 => it.for_each(|(x, &y)| *x += y),
            BinaryOp::Sub if al == 1.0 => it.for_each(|(x, &y)| *x -= y),
            BinaryOp::Mul => it.for_each(|(x, &y)| *x *= y),
            BinaryOp::Div => it.for_each(|(x, &y)| *x /= y),
            _ => it.for_each(|(x, &y)| *x = apply_one_f32(op, al, *x, y)),
        }
    }
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2")]
        unsafe fn avx2(op: BinaryOp, al: f64, x: &mut [f32], y: &[f32]) {
            body(op, al, x, y);
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: AVX2 is available (checked just above).
            unsafe { avx2(op, al, x, y) };
            return;
        }
    }
    body(op, al, x, y);
}

/// `x = x op s` with a scalar right operand, rounded as the out-of-place scalar path.
fn scalar_inplace_f32(op: BinaryOp, al: f64, s: f64, x: &mut [f32]) {
    #[inline(always)]
    fn body(op: BinaryOp, al: f64, s: f64, x: &mut [f32]) {
        // `s` is a float32 value: float32 arithmetic rounds as the f64 form then (one rounding
        // of the exact result either way), only `alpha * s` needs the wider type.
        let f = s as f32;
        match op {
            BinaryOp::Add if al == 1.0 => x.iter_mut().for_each(|x| *x += f),
            BinaryOp::Sub if al == 1.0 => x.iter_mut().for_each(|x| *x -= f),
            BinaryOp::Add => x.iter_mut().for_each(|x| *x = (*x as f64 + al * s) as f32),
            BinaryOp::Sub => x.iter_mut().for_each(|x| *x = (*x as f64 - al * s) as f32),
            BinaryOp::Mul => x.iter_mut().for_each(|x| *x *= f),
            _ => x.iter_mut().for_each(|x| *x /= f),
        }
    }
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2")]
        unsafe fn avx2(op: BinaryOp, al: f64, s: f64, x: &mut [f32]) {
            body(op, al, s, x);
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: AVX2 is available (checked just above).
            unsafe { avx2(op, al, s, x) };
            return;
        }
    }
    body(op, al, s, x);
}

/// `o = x op s` with a scalar right operand, rounded as [`scalar_inplace_f32`].
fn scalar_f32(op: BinaryOp, al: f64, s: f64, o: &mut [MaybeUninit<f32>], x: &[f32]) {
    #[inline(always)]
    fn body(op: BinaryOp, al: f64, s: f64, o: &mut [MaybeUninit<f32>], x: &[f32]) {
        let f = s as f32;
        let it = o.iter_mut().zip(x);
        match op {
            BinaryOp::Add if al == 1.0 => it.for_each(|(o, &x)| {
                o.write(x + f);
            }),
            BinaryOp::Sub if al == 1.0 => it.for_each(|(o, &x)| {
                o.write(x - f);
            }),
            BinaryOp::Add => it.for_each(|(o, &x)| {
                o.write((x as f64 + al * s) as f32);
            }),
            BinaryOp::Sub => it.for_each(|(o, &x)| {
                o.write((x as f64 - al * s) as f32);
            }),
            BinaryOp::Mul => it.for_each(|(o, &x)| {
                o.write(x * f);
            }),
            _ => it.for_each(|(o, &x)| {
                o.write(x / f);
            }),
        }
    }
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2")]
        unsafe fn avx2(op: BinaryOp, al: f64, s: f64, o: &mut [MaybeUninit<f32>], x: &[f32]) {
            body(op, al, s, o, x);
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: AVX2 is available (checked just above).
            unsafe { avx2(op, al, s, o, x) };
            return;
        }
    }
    body(op, al, s, o, x);
}

/// `o = x op y` elementwise over equal-length contiguous f32 slices, with the widest vectors
/// this CPU has (checked at run time; the build targets baseline x86-64).
fn binary_f32(op: BinaryOp, al: f64, o: &mut [MaybeUninit<f32>], x: &[f32], y: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: AVX2 is available (checked just above).
            unsafe { binary_f32_avx2(op, al, o, x, y) };
            return;
        }
    }
    binary_f32_loop(op, al, o, x, y);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn binary_f32_avx2(op: BinaryOp, al: f64, o: &mut [MaybeUninit<f32>], x: &[f32], y: &[f32]) {
    binary_f32_loop(op, al, o, x, y);
}

#[inline(always)]
fn binary_f32_loop(op: BinaryOp, al: f64, o: &mut [MaybeUninit<f32>], x: &[f32], y: &[f32]) {
    let it = o.iter_mut().zip(x.iter().zip(y));
    match op {
        BinaryOp::Add if al == 1.0 => it.for_each(|(o, (&x, &y))| {
            o.write(x + y);
        }),
        BinaryOp::Add => it.for_each(|(o, (&x, &y))| {
            o.write((x as f64 + al * y as f64) as f32);
        }),
        BinaryOp::Sub if al == 1.0 => it.for_each(|(o, (&x, &y))| {
            o.write(x - y);
        }),
        BinaryOp::Sub => it.for_each(|(o, (&x, &y))| {
            o.write((x as f64 - al * y as f64) as f32);
        }),
        BinaryOp::Mul => it.for_each(|(o, (&x, &y))| {
            o.write(x * y);
        }),
        _ => it.for_each(|(o, (&x, &y))| {
            o.write(x / y);
        }),
    }
}

/// `o = op(v)` over contiguous f32, vectorized where the operation allows.
fn unary_f32(op: UnaryOp, o: &mut [MaybeUninit<f32>], v: &[f32]) {
    #[inline(always)]
    fn body(op: UnaryOp, o: &mut [MaybeUninit<f32>], v: &[f32]) {
        let it = o.iter_mut().zip(v);
        match op {
            UnaryOp::Neg => it.for_each(|(o, &v)| {
                o.write(-v);
            }),
            UnaryOp::Abs => it.for_each(|(o, &v)| {
                o.write(v.abs());
            }),
            UnaryOp::Relu => it.for_each(|(o, &v)| {
                o.write(if v > 0.0 || v.is_nan() { v } else { 0.0 });
            }),
            UnaryOp::Sqrt => it.for_each(|(o, &v)| {
                o.write(v.sqrt());
            }),
            // Transcendentals go through f64 so every path agrees bit for bit.
            _ => {
                let f = op.f64_fn();
                it.for_each(|(o, &v)| {
                    o.write(f(v as f64) as f32);
                });
            }
        }
    }
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2")]
        unsafe fn avx2(op: UnaryOp, o: &mut [MaybeUninit<f32>], v: &[f32]) {
            body(op, o, v);
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: AVX2 is available (checked just above).
            unsafe { avx2(op, o, v) };
            return;
        }
    }
    body(op, o, v);
}

/// The generic binary kernel behind every binary op.
pub fn binary(op: BinaryOp, a: &Tensor, b: &Tensor, alpha: Option<Scalar>) -> Result<Tensor> {
    crate::release::released(super::work(&[a, b]), || binary_body(op, a, b, alpha))
}

fn binary_body(op: BinaryOp, a: &Tensor, b: &Tensor, alpha: Option<Scalar>) -> Result<Tensor> {
    let spec = meta::binary(op, a, b, alpha)?;
    let (shape, out_dtype, compute) = (spec.out.sizes, spec.out.dtype, spec.compute);
    let alpha = alpha.unwrap_or(Scalar::Int(1));
    if compute == ScalarType::Float32 && out_dtype == ScalarType::Float32 {
        if let Some(r) = fast_f32(op, a, b, alpha.to_f64(), &shape) {
            return r;
        }
    }
    if op == BinaryOp::Pow && compute.is_integral(true) {
        // Negative integer exponents have no integer result.
        if b.load::<i64>()?.iter().any(|&e| e < 0) {
            return Err(TensorError::Value(
                "Integers to negative integer powers are not allowed.".into(),
            ));
        }
    }
    if op.is_comparison() {
        if compute == ScalarType::Float32 {
            if let Some(r) = super::select_f32::compare(op, a, b, &shape) {
                return r;
            }
        }
        let out: Vec<bool> = if compute.is_complex() {
            let (x, y) = load_pair::<C64>(a, b, &shape)?;
            zip_map(&x, &y, |p, q| match op {
                BinaryOp::Eq => p == q,
                _ => p != q,
            })
        } else if compute.is_integral(true) {
            let (x, y) = load_pair::<i64>(a, b, &shape)?;
            zip_map(&x, &y, compare(op))
        } else {
            let (x, y) = load_pair_f64(a, b, &shape, compute)?;
            zip_map(&x, &y, compare(op))
        };
        return Ok(tensor_from_domain(&out, &shape, ScalarType::Bool));
    }
    Ok(if compute.is_complex() {
        let (x, y) = load_pair::<C64>(a, b, &shape)?;
        tensor_from_domain(
            &zip_map(&x, &y, apply_c64(op, alpha.to_c64())),
            &shape,
            out_dtype,
        )
    } else if compute.is_integral(true) {
        let (x, y) = load_pair::<i64>(a, b, &shape)?;
        tensor_from_domain(
            &zip_map(&x, &y, apply_i64(op, alpha.to_i64())),
            &shape,
            out_dtype,
        )
    } else {
        let (x, y) = load_pair_f64(a, b, &shape, compute)?;
        let alpha = round_to(compute, alpha.to_f64());
        tensor_from_domain(&zip_map(&x, &y, apply_f64(op, alpha)), &shape, out_dtype)
    })
}

/// `torch.add(a, b, alpha=alpha)`: `a + alpha * b`.
pub fn add(a: &Tensor, b: &Tensor, alpha: Option<Scalar>) -> Result<Tensor> {
    binary(BinaryOp::Add, a, b, alpha)
}
/// `torch.sub(a, b, alpha=alpha)`: `a - alpha * b`.
pub fn sub(a: &Tensor, b: &Tensor, alpha: Option<Scalar>) -> Result<Tensor> {
    binary(BinaryOp::Sub, a, b, alpha)
}
pub fn mul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary(BinaryOp::Mul, a, b, None)
}
/// True division (integers give the default float dtype).
pub fn div(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary(BinaryOp::Div, a, b, None)
}
pub fn pow(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary(BinaryOp::Pow, a, b, None)
}
pub fn maximum(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary(BinaryOp::Maximum, a, b, None)
}
pub fn minimum(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary(BinaryOp::Minimum, a, b, None)
}
pub fn eq(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary(BinaryOp::Eq, a, b, None)
}
pub fn ne(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary(BinaryOp::Ne, a, b, None)
}
pub fn lt(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary(BinaryOp::Lt, a, b, None)
}
pub fn le(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary(BinaryOp::Le, a, b, None)
}
pub fn gt(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary(BinaryOp::Gt, a, b, None)
}
pub fn ge(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary(BinaryOp::Ge, a, b, None)
}

/// `op(a, s)` with a Python number on the right (a wrapped number for promotion).
pub fn binary_scalar(op: BinaryOp, a: &Tensor, s: Scalar, alpha: Option<Scalar>) -> Result<Tensor> {
    crate::release::released(super::work(&[a]), || binary_scalar_body(op, a, s, alpha))
}

fn binary_scalar_body(
    op: BinaryOp,
    a: &Tensor,
    s: Scalar,
    alpha: Option<Scalar>,
) -> Result<Tensor> {
    binary(op, a, &Tensor::wrapped_scalar(s), alpha)
}
pub fn add_scalar(a: &Tensor, s: Scalar, alpha: Option<Scalar>) -> Result<Tensor> {
    binary_scalar(BinaryOp::Add, a, s, alpha)
}
pub fn sub_scalar(a: &Tensor, s: Scalar, alpha: Option<Scalar>) -> Result<Tensor> {
    binary_scalar(BinaryOp::Sub, a, s, alpha)
}
pub fn mul_scalar(a: &Tensor, s: Scalar) -> Result<Tensor> {
    binary_scalar(BinaryOp::Mul, a, s, None)
}
pub fn div_scalar(a: &Tensor, s: Scalar) -> Result<Tensor> {
    binary_scalar(BinaryOp::Div, a, s, None)
}
pub fn pow_scalar(a: &Tensor, s: Scalar) -> Result<Tensor> {
    binary_scalar(BinaryOp::Pow, a, s, None)
}

/// In-place `a.op_(b)`: the result must keep `a`'s shape and be castable to its dtype.
pub fn binary_(op: BinaryOp, a: &Tensor, b: &Tensor, alpha: Option<Scalar>) -> Result<()> {
    crate::release::released(super::work(&[a, b]), || {
        binary_inplace_body(op, a, b, alpha)
    })
}

fn binary_inplace_body(op: BinaryOp, a: &Tensor, b: &Tensor, alpha: Option<Scalar>) -> Result<()> {
    let spec = meta::binary_inplace(op, a, b, alpha)?;
    if (spec.out.dtype, spec.compute) == (ScalarType::Float32, ScalarType::Float32) {
        let al = alpha.unwrap_or(Scalar::Int(1)).to_f64();
        if let Some(r) = inplace_f32(op, a, b, al) {
            return r;
        }
    }
    super::copy_(a, &binary(op, a, b, alpha)?)
}
pub fn add_(a: &Tensor, b: &Tensor, alpha: Option<Scalar>) -> Result<()> {
    binary_(BinaryOp::Add, a, b, alpha)
}
pub fn sub_(a: &Tensor, b: &Tensor, alpha: Option<Scalar>) -> Result<()> {
    binary_(BinaryOp::Sub, a, b, alpha)
}
pub fn mul_(a: &Tensor, b: &Tensor) -> Result<()> {
    binary_(BinaryOp::Mul, a, b, None)
}
pub fn div_(a: &Tensor, b: &Tensor) -> Result<()> {
    binary_(BinaryOp::Div, a, b, None)
}

/// Unary pointwise operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaryOp {
    Neg,
    Abs,
    Exp,
    Log,
    Sin,
    Cos,
    Sqrt,
    Relu,
    Sigmoid,
    Tanh,
    Reciprocal,
}

impl UnaryOp {
    /// Ops whose integer inputs produce the default float dtype.
    pub(crate) fn is_float_valued(self) -> bool {
        !matches!(self, UnaryOp::Neg | UnaryOp::Abs | UnaryOp::Relu)
    }
    pub fn name(self) -> &'static str {
        match self {
            UnaryOp::Neg => "neg",
            UnaryOp::Abs => "abs",
            UnaryOp::Exp => "exp",
            UnaryOp::Log => "log",
            UnaryOp::Sin => "sin",
            UnaryOp::Cos => "cos",
            UnaryOp::Sqrt => "sqrt",
            UnaryOp::Relu => "relu",
            UnaryOp::Sigmoid => "sigmoid",
            UnaryOp::Tanh => "tanh",
            UnaryOp::Reciprocal => "reciprocal",
        }
    }
    fn f64_fn(self) -> fn(f64) -> f64 {
        match self {
            UnaryOp::Neg => |x| -x,
            UnaryOp::Abs => f64::abs,
            UnaryOp::Exp => f64::exp,
            UnaryOp::Log => f64::ln,
            UnaryOp::Sin => f64::sin,
            UnaryOp::Cos => f64::cos,
            UnaryOp::Sqrt => f64::sqrt,
            UnaryOp::Relu => |x| if x > 0.0 || x.is_nan() { x } else { 0.0 },
            UnaryOp::Sigmoid => |x| 1.0 / (1.0 + (-x).exp()),
            UnaryOp::Tanh => f64::tanh,
            UnaryOp::Reciprocal => |x| 1.0 / x,
        }
    }
}

/// The generic unary kernel.
pub fn unary(op: UnaryOp, x: &Tensor) -> Result<Tensor> {
    crate::release::released(super::work(&[x]), || unary_body(op, x))
}

fn unary_body(op: UnaryOp, x: &Tensor) -> Result<Tensor> {
    let dt = x.dtype();
    let out_dtype = meta::unary(op, x)?.dtype;
    let shape = x.sizes();
    if dt == ScalarType::Float32 && x.is_contiguous() {
        let n = x.numel();
        let st = x.storage_ref();
        let r = st.read()?;
        let v =
            &cast_slice::<f32>(&r).expect("aligned")[x.storage_offset()..x.storage_offset() + n];
        return new_f32(shape, n, |o| {
            let op_ = SendPtr(o.as_mut_ptr());
            parallel_for(n, GRAIN_SIZE, |r| {
                // SAFETY: the chunks of one loop own disjoint ranges of the output.
                let o = unsafe { std::slice::from_raw_parts_mut(op_.get().add(r.start), r.len()) };
                unary_f32(op, o, &v[r]);
            });
        });
    }
    Ok(if dt.is_complex() {
        let v = x.load::<C64>()?;
        if op == UnaryOp::Abs {
            let out: Vec<f64> = v.iter().map(|c| c.norm()).collect();
            tensor_from_domain(&out, shape, out_dtype)
        } else {
            let f = |c: C64| match op {
                UnaryOp::Neg => -c,
                UnaryOp::Exp => c.exp(),
                UnaryOp::Log => c.ln(),
                UnaryOp::Sin => c.sin(),
                UnaryOp::Cos => c.cos(),
                UnaryOp::Sqrt => c.sqrt(),
                UnaryOp::Sigmoid => C64::new(1.0, 0.0) / (C64::new(1.0, 0.0) + (-c).exp()),
                UnaryOp::Tanh => c.tanh(),
                UnaryOp::Reciprocal => C64::new(1.0, 0.0) / c,
                UnaryOp::Abs | UnaryOp::Relu => unreachable!(),
            };
            tensor_from_domain(&v.into_iter().map(f).collect::<Vec<_>>(), shape, out_dtype)
        }
    } else if !op.is_float_valued() && dt.is_integral(true) {
        let v = x.load::<i64>()?;
        let f = |i: i64| match op {
            UnaryOp::Neg => i.wrapping_neg(),
            UnaryOp::Abs => i.wrapping_abs(),
            _ => i.max(0),
        };
        tensor_from_domain(&v.into_iter().map(f).collect::<Vec<_>>(), shape, out_dtype)
    } else {
        let f = op.f64_fn();
        let v = x.load::<f64>()?;
        tensor_from_domain(&v.into_iter().map(f).collect::<Vec<_>>(), shape, out_dtype)
    })
}

macro_rules! unary_fns {
    ($($name:ident => $op:ident),* $(,)?) => {$(
        #[doc = concat!("`torch.", stringify!($name), "(x)`.")]
        pub fn $name(x: &Tensor) -> Result<Tensor> {
            unary(UnaryOp::$op, x)
        }
    )*};
}
unary_fns!(neg => Neg, abs => Abs, exp => Exp, log => Log, sin => Sin, cos => Cos, sqrt => Sqrt,
    relu => Relu, sigmoid => Sigmoid, tanh => Tanh, reciprocal => Reciprocal);

/// `torch.where(cond, a, b)`.
pub fn where_(cond: &Tensor, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    crate::release::released(super::work(&[cond, a, b]), || where_self_body(cond, a, b))
}

fn where_self_body(cond: &Tensor, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let spec = meta::where_(cond, a, b)?;
    let (shape, dtype) = (spec.sizes, spec.dtype);
    if dtype == ScalarType::Float32 {
        if let Some(r) = super::select_f32::where_(cond, a, b, &shape) {
            return r;
        }
    }
    let c = cond.load_strided::<bool>(&shape, &broadcast_strides(cond, &shape))?;
    fn pick<D: Domain>(
        c: &[bool],
        a: &Tensor,
        b: &Tensor,
        shape: &[usize],
        dtype: ScalarType,
    ) -> Result<Tensor> {
        let (x, y) = load_pair::<D>(a, b, shape)?;
        let out: Vec<D> = c
            .iter()
            .zip(x.iter().zip(&y))
            .map(|(&c, (&x, &y))| if c { x } else { y })
            .collect();
        Ok(tensor_from_domain(&out, shape, dtype))
    }
    if dtype.is_complex() {
        pick::<C64>(&c, a, b, &shape, dtype)
    } else if dtype.is_integral(true) {
        pick::<i64>(&c, a, b, &shape, dtype)
    } else {
        pick::<f64>(&c, a, b, &shape, dtype)
    }
}

/// `torch.where(cond, a, scalar)` / `(cond, scalar, b)` style helper.
pub fn where_scalar(cond: &Tensor, a: &Tensor, other: Scalar) -> Result<Tensor> {
    crate::release::released(super::work(&[cond, a]), || {
        where_scalar_body(cond, a, other)
    })
}

fn where_scalar_body(cond: &Tensor, a: &Tensor, other: Scalar) -> Result<Tensor> {
    where_(cond, a, &Tensor::wrapped_scalar(other))
}

/// `tanh_backward(grad_output, output)`: `grad_output * (1 - output^2)`, one pass for
/// contiguous float32 operands of one shape (the shape, dtype and device checks are `mul`'s).
pub fn tanh_backward(g: &Tensor, out: &Tensor) -> Result<Tensor> {
    crate::release::released(super::work(&[g, out]), || tanh_backward_body(g, out))
}

fn tanh_backward_body(g: &Tensor, out: &Tensor) -> Result<Tensor> {
    let spec = meta::tanh_backward(g, out)?;
    let fast = spec.out.dtype == ScalarType::Float32
        && [g, out].iter().all(|t| {
            t.dtype() == ScalarType::Float32
                && t.is_contiguous()
                && t.sizes() == &spec.out.sizes[..]
        });
    if !fast {
        let one_minus_sq = sub(
            &Tensor::wrapped_scalar(Scalar::Int(1)),
            &mul(out, out)?,
            None,
        )?;
        return mul(g, &one_minus_sq);
    }
    super::select_f32::with_slices(&[(g, true), (out, true)], |s| {
        let (x, y) = (s[0].expect("full"), s[1].expect("full"));
        new_f32(&spec.out.sizes, x.len(), |o| {
            for ((o, &gv), &yv) in o.iter_mut().zip(x).zip(y) {
                // As torch's CPU kernel: grad * (1 - y * y), in float32.
                o.write(gv * (1.0 - yv * yv));
            }
        })
    })?
}
