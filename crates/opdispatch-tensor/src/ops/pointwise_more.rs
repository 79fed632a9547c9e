//! The second batch of pointwise operators: rounding (`floor`, `ceil`, `round`, `trunc`,
//! `frac`), `sign`, the transcendental functions beyond `elementwise.rs`'s (`rsqrt`, `log1p`,
//! `expm1`, `log2`, `log10`, `exp2`, `tan`, `asin`, `acos`, `atan`, `sinh`, `cosh`, `erf`),
//! the float predicates and `logical_not`, `nan_to_num`, and the binary `atan2`, `remainder`,
//! `fmod`, `floor_divide`, `logical_and/or/xor`, plus `clamp`, `lerp` and `masked_fill`.
//!
//! Contiguous float32 inputs run the same kind of loop as `elementwise.rs` (a fresh
//! uninitialised output, parallel chunks, an AVX2 build of the loop body chosen at run time);
//! the operator is matched once per chunk, never per element. Other layouts and dtypes load
//! into a computation domain (`f64`, `i64`, `C64`) and convert back.

use std::mem::MaybeUninit;

use super::cascade::SendPtr;
use super::elementwise::new_f32;
use super::meta_more::MathKind;
use super::{broadcast_strides, meta};
use crate::element::{cast_slice, C64};
use crate::error::{Result, TensorError};
use crate::parallel::{parallel_for, GRAIN_SIZE};
use crate::tensor::{tensor_from_domain, Domain};
use crate::{Scalar, ScalarType, Tensor};

/// Unary operators of this module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MathOp {
    Floor,
    Ceil,
    Round,
    Trunc,
    Frac,
    Sign,
    Rsqrt,
    Log1p,
    Expm1,
    Log2,
    Log10,
    Exp2,
    Tan,
    Asin,
    Acos,
    Atan,
    Sinh,
    Cosh,
    Erf,
    IsNan,
    IsInf,
    IsFinite,
    LogicalNot,
}

impl MathOp {
    pub fn name(self) -> &'static str {
        match self {
            MathOp::Floor => "floor",
            MathOp::Ceil => "ceil",
            MathOp::Round => "round",
            MathOp::Trunc => "trunc",
            MathOp::Frac => "frac",
            MathOp::Sign => "sign",
            MathOp::Rsqrt => "rsqrt",
            MathOp::Log1p => "log1p",
            MathOp::Expm1 => "expm1",
            MathOp::Log2 => "log2",
            MathOp::Log10 => "log10",
            MathOp::Exp2 => "exp2",
            MathOp::Tan => "tan",
            MathOp::Asin => "asin",
            MathOp::Acos => "acos",
            MathOp::Atan => "atan",
            MathOp::Sinh => "sinh",
            MathOp::Cosh => "cosh",
            MathOp::Erf => "erf",
            MathOp::IsNan => "isnan",
            MathOp::IsInf => "isinf",
            MathOp::IsFinite => "isfinite",
            MathOp::LogicalNot => "logical_not",
        }
    }
    /// The CPU kernel's name in PyTorch's "not implemented for" errors.
    pub(crate) fn kernel_name(self) -> &'static str {
        match self {
            MathOp::Floor => "floor_vml_cpu",
            MathOp::Ceil => "ceil_vml_cpu",
            MathOp::Round => "round_vml_cpu",
            MathOp::Trunc => "trunc_vml_cpu",
            MathOp::Frac => "frac_cpu",
            MathOp::Erf => "erf_vml_cpu",
            _ => self.name(),
        }
    }
    pub(crate) fn kind(self) -> MathKind {
        match self {
            MathOp::Floor | MathOp::Ceil | MathOp::Round | MathOp::Trunc => MathKind::Rounding,
            MathOp::Frac => MathKind::FloatOnly,
            MathOp::Sign => MathKind::SameReal,
            MathOp::IsNan | MathOp::IsInf | MathOp::IsFinite | MathOp::LogicalNot => {
                MathKind::Predicate
            }
            _ => MathKind::FloatValued,
        }
    }
    pub(crate) fn supports_complex(self) -> bool {
        self != MathOp::Erf
    }
    /// The real function, in f64.
    fn f64_fn(self) -> fn(f64) -> f64 {
        match self {
            MathOp::Floor => f64::floor,
            MathOp::Ceil => f64::ceil,
            MathOp::Round => f64::round_ties_even,
            MathOp::Trunc => f64::trunc,
            MathOp::Frac => |x| x - x.trunc(),
            MathOp::Sign => |x| f64::from(u8::from(x > 0.0)) - f64::from(u8::from(x < 0.0)),
            MathOp::Rsqrt => |x| 1.0 / x.sqrt(),
            MathOp::Log1p => f64::ln_1p,
            MathOp::Expm1 => f64::exp_m1,
            MathOp::Log2 => f64::log2,
            MathOp::Log10 => f64::log10,
            MathOp::Exp2 => f64::exp2,
            MathOp::Tan => f64::tan,
            MathOp::Asin => f64::asin,
            MathOp::Acos => f64::acos,
            MathOp::Atan => f64::atan,
            MathOp::Sinh => f64::sinh,
            MathOp::Cosh => f64::cosh,
            MathOp::Erf => libm::erf,
            // Predicates go through `pred_fn`.
            MathOp::IsNan | MathOp::IsInf | MathOp::IsFinite | MathOp::LogicalNot => |x| x,
        }
    }
    fn pred_fn(self) -> fn(f64) -> bool {
        match self {
            MathOp::IsNan => f64::is_nan,
            MathOp::IsInf => f64::is_infinite,
            MathOp::IsFinite => f64::is_finite,
            _ => |x| x == 0.0,
        }
    }
    fn c64_fn(self) -> fn(C64) -> C64 {
        match self {
            MathOp::Rsqrt => |z| C64::new(1.0, 0.0) / z.sqrt(),
            MathOp::Log1p => |z| (z + 1.0).ln(),
            MathOp::Expm1 => |z| z.exp() - 1.0,
            MathOp::Log2 => |z| z.ln() / std::f64::consts::LN_2,
            MathOp::Log10 => |z| z.ln() / std::f64::consts::LN_10,
            MathOp::Tan => |z| z.tan(),
            MathOp::Asin => |z| z.asin(),
            MathOp::Acos => |z| z.acos(),
            MathOp::Atan => |z| z.atan(),
            MathOp::Sinh => |z| z.sinh(),
            MathOp::Cosh => |z| z.cosh(),
            MathOp::Exp2 => |z| (z * std::f64::consts::LN_2).exp(),
            _ => |z| z,
        }
    }
}

/// `o = op(v)` over contiguous f32: exact operations stay in f32, transcendentals go through
/// f64 (as `elementwise.rs` does, so every path agrees bit for bit).
fn math_f32(op: MathOp, o: &mut [MaybeUninit<f32>], v: &[f32]) {
    #[inline(always)]
    fn body(op: MathOp, o: &mut [MaybeUninit<f32>], v: &[f32]) {
        let it = o.iter_mut().zip(v);
        match op {
            MathOp::Floor => it.for_each(|(o, &v)| {
                o.write(v.floor());
            }),
            MathOp::Ceil => it.for_each(|(o, &v)| {
                o.write(v.ceil());
            }),
            MathOp::Round => it.for_each(|(o, &v)| {
                o.write(v.round_ties_even());
            }),
            MathOp::Trunc => it.for_each(|(o, &v)| {
                o.write(v.trunc());
            }),
            MathOp::Frac => it.for_each(|(o, &v)| {
                o.write(v - v.trunc());
            }),
            MathOp::Sign => it.for_each(|(o, &v)| {
                o.write(f32::from(u8::from(v > 0.0)) - f32::from(u8::from(v < 0.0)));
            }),
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
        unsafe fn avx2(op: MathOp, o: &mut [MaybeUninit<f32>], v: &[f32]) {
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

/// A fresh contiguous float32 tensor of `f` applied to contiguous float32 `x`, in parallel
/// chunks.
fn map_f32_contiguous(
    x: &Tensor,
    f: impl Fn(&mut [MaybeUninit<f32>], &[f32]) + Sync,
) -> Result<Tensor> {
    let n = x.numel();
    let st = x.storage_ref();
    let r = st.read()?;
    let v = &cast_slice::<f32>(&r).expect("aligned")[x.storage_offset()..x.storage_offset() + n];
    new_f32(x.sizes(), n, |o| {
        let op_ = SendPtr(o.as_mut_ptr());
        parallel_for(n, GRAIN_SIZE, |r| {
            // SAFETY: the chunks of one loop own disjoint ranges of the output.
            let o = unsafe { std::slice::from_raw_parts_mut(op_.get().add(r.start), r.len()) };
            f(o, &v[r]);
        });
    })
}

/// `op(x)` for the operators of [`MathOp`].
pub fn math_unary(op: MathOp, x: &Tensor) -> Result<Tensor> {
    crate::release::released(super::work(&[x]), || math_unary_body(op, x))
}

fn math_unary_body(op: MathOp, x: &Tensor) -> Result<Tensor> {
    let spec = meta::math_unary(op, x)?;
    let (dt, out) = (x.dtype(), spec.dtype);
    let shape = x.sizes();
    if op.kind() == MathKind::Predicate {
        let v: Vec<bool> = if op == MathOp::LogicalNot {
            x.load::<bool>()?.into_iter().map(|b| !b).collect()
        } else if dt.is_complex() {
            let f = op.pred_fn();
            x.load::<C64>()?
                .into_iter()
                .map(|z| match op {
                    MathOp::IsNan => z.re.is_nan() || z.im.is_nan(),
                    MathOp::IsInf => z.re.is_infinite() || z.im.is_infinite(),
                    _ => f(z.re) && f(z.im),
                })
                .collect()
        } else if dt.is_integral(true) {
            // Integers are never NaN nor infinite.
            vec![op == MathOp::IsFinite; x.numel()]
        } else {
            let f = op.pred_fn();
            x.load::<f64>()?.into_iter().map(f).collect()
        };
        return Ok(tensor_from_domain(&v, shape, ScalarType::Bool));
    }
    if op.kind() == MathKind::Rounding && dt.is_integral(false) {
        return super::clone(x);
    }
    if dt == ScalarType::Float32 && out == ScalarType::Float32 && x.is_contiguous() {
        return map_f32_contiguous(x, |o, v| math_f32(op, o, v));
    }
    Ok(if dt.is_complex() {
        let f = op.c64_fn();
        let v: Vec<C64> = x.load::<C64>()?.into_iter().map(f).collect();
        tensor_from_domain(&v, shape, out)
    } else if out.is_integral(true) {
        // `sign` of integers and bool.
        let v: Vec<i64> = x.load::<i64>()?.into_iter().map(i64::signum).collect();
        tensor_from_domain(&v, shape, out)
    } else {
        let f = op.f64_fn();
        let v: Vec<f64> = x.load::<f64>()?.into_iter().map(f).collect();
        tensor_from_domain(&v, shape, out)
    })
}

/// `nan_to_num(x, nan, posinf, neginf)`: NaN to `nan` (0), infinities to the given values or
/// the dtype's largest and lowest finite values. Integers come back as a copy.
pub fn nan_to_num(
    x: &Tensor,
    nan: Option<f64>,
    posinf: Option<f64>,
    neginf: Option<f64>,
) -> Result<Tensor> {
    crate::release::released(super::work(&[x]), || {
        let spec = meta::nan_to_num(x)?;
        if !spec.dtype.is_floating_point() {
            return super::clone(x);
        }
        let (lo, hi) = match spec.dtype {
            ScalarType::Float16 => (-65504.0, 65504.0),
            ScalarType::BFloat16 => (-3.3895313892515355e38, 3.3895313892515355e38),
            ScalarType::Float32 => (f32::MIN as f64, f32::MAX as f64),
            _ => (f64::MIN, f64::MAX),
        };
        let (n, p, m) = (
            nan.unwrap_or(0.0),
            posinf.unwrap_or(hi),
            neginf.unwrap_or(lo),
        );
        let f = move |v: f64| {
            if v.is_nan() {
                n
            } else if v == f64::INFINITY {
                p
            } else if v == f64::NEG_INFINITY {
                m
            } else {
                v
            }
        };
        if spec.dtype == ScalarType::Float32 && x.is_contiguous() {
            let (n, p, m) = (n as f32, p as f32, m as f32);
            return map_f32_contiguous(x, move |o, v| {
                for (o, &v) in o.iter_mut().zip(v) {
                    o.write(if v.is_nan() {
                        n
                    } else if v == f32::INFINITY {
                        p
                    } else if v == f32::NEG_INFINITY {
                        m
                    } else {
                        v
                    });
                }
            });
        }
        let v: Vec<f64> = x.load::<f64>()?.into_iter().map(f).collect();
        Ok(tensor_from_domain(&v, x.sizes(), spec.dtype))
    })
}

/// Binary operators of this module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryMore {
    Atan2,
    Remainder,
    Fmod,
    FloorDivide,
    LogicalAnd,
    LogicalOr,
    LogicalXor,
}

impl BinaryMore {
    pub(crate) fn kernel_name(self) -> &'static str {
        match self {
            BinaryMore::Atan2 => "atan2_cpu",
            BinaryMore::Remainder => "remainder_cpu",
            BinaryMore::Fmod => "fmod_cpu",
            BinaryMore::FloorDivide => "div_floor_cpu",
            BinaryMore::LogicalAnd => "logical_and_cpu",
            BinaryMore::LogicalOr => "logical_or_cpu",
            BinaryMore::LogicalXor => "logical_xor_cpu",
        }
    }
}

fn load2<D: Domain>(a: &Tensor, b: &Tensor, shape: &[usize]) -> Result<(Vec<D>, Vec<D>)> {
    Ok((
        a.load_strided::<D>(shape, &broadcast_strides(a, shape))?,
        b.load_strided::<D>(shape, &broadcast_strides(b, shape))?,
    ))
}

fn zip2<D: Copy, O>(x: &[D], y: &[D], f: impl Fn(D, D) -> O) -> Vec<O> {
    x.iter().zip(y).map(|(&p, &q)| f(p, q)).collect()
}

/// Python's modulus (the sign of the divisor), as `torch.remainder`.
fn remainder_f64(a: f64, b: f64) -> f64 {
    let m = a % b;
    if m != 0.0 && ((b < 0.0) != (m < 0.0)) {
        m + b
    } else {
        m
    }
}

/// `floor(a / b)` computed as PyTorch's `div_floor_floating` (exact for representable
/// quotients, the sign of zero kept).
fn floor_divide_f64(a: f64, b: f64) -> f64 {
    if b == 0.0 {
        return a / b;
    }
    let m = a % b;
    let mut div = (a - m) / b;
    if m != 0.0 && ((b < 0.0) != (m < 0.0)) {
        div -= 1.0;
    }
    if div != 0.0 {
        let mut f = div.floor();
        if div - f > 0.5 {
            f += 1.0;
        }
        f
    } else {
        0.0f64.copysign(a / b)
    }
}

fn zero_division() -> TensorError {
    TensorError::other("ZeroDivisionError")
}

/// `op(a, b)` for the operators of [`BinaryMore`] (broadcasting, PyTorch's promotion).
pub fn binary_more(op: BinaryMore, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    crate::release::released(super::work(&[a, b]), || binary_more_body(op, a, b))
}

fn binary_more_body(op: BinaryMore, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let spec = meta::binary_more(op, a, b)?;
    let (shape, out, compute) = (&spec.out.sizes[..], spec.out.dtype, spec.compute);
    match op {
        BinaryMore::LogicalAnd | BinaryMore::LogicalOr | BinaryMore::LogicalXor => {
            let (x, y) = if compute.is_complex() {
                let (x, y) = load2::<C64>(a, b, shape)?;
                let nz = |v: &[C64]| -> Vec<bool> {
                    v.iter().map(|z| z.re != 0.0 || z.im != 0.0).collect()
                };
                (nz(&x), nz(&y))
            } else {
                load2::<bool>(a, b, shape)?
            };
            let v: Vec<bool> = match op {
                BinaryMore::LogicalAnd => zip2(&x, &y, |p, q| p && q),
                BinaryMore::LogicalOr => zip2(&x, &y, |p, q| p || q),
                _ => zip2(&x, &y, |p, q| p != q),
            };
            return Ok(tensor_from_domain(&v, shape, ScalarType::Bool));
        }
        _ => {}
    }
    if compute.is_integral(true) {
        let (x, y) = load2::<i64>(a, b, shape)?;
        if y.contains(&0) {
            return Err(zero_division());
        }
        let v: Vec<i64> = match op {
            BinaryMore::Remainder => zip2(&x, &y, |p, q| {
                let r = p.wrapping_rem(q);
                if r != 0 && ((r < 0) != (q < 0)) {
                    r + q
                } else {
                    r
                }
            }),
            BinaryMore::Fmod => zip2(&x, &y, i64::wrapping_rem),
            _ => zip2(&x, &y, |p, q| {
                let d = p.wrapping_div(q);
                if p.wrapping_rem(q) != 0 && ((p < 0) != (q < 0)) {
                    d - 1
                } else {
                    d
                }
            }),
        };
        return Ok(tensor_from_domain(&v, shape, out));
    }
    let (mut x, mut y) = load2::<f64>(a, b, shape)?;
    // Each operand is first converted to the computation dtype, as PyTorch's TensorIterator.
    if compute == ScalarType::Float32 {
        x.iter_mut().for_each(|v| *v = *v as f32 as f64);
        y.iter_mut().for_each(|v| *v = *v as f32 as f64);
    }
    let v: Vec<f64> = match op {
        BinaryMore::Atan2 => zip2(&x, &y, f64::atan2),
        BinaryMore::Remainder => zip2(&x, &y, remainder_f64),
        BinaryMore::Fmod => zip2(&x, &y, |p, q| p % q),
        _ => zip2(&x, &y, floor_divide_f64),
    };
    Ok(tensor_from_domain(&v, shape, out))
}

/// `op(a, s)` with a Python number on the right (a wrapped number for promotion).
pub fn binary_more_scalar(op: BinaryMore, a: &Tensor, s: Scalar) -> Result<Tensor> {
    binary_more(op, a, &Tensor::wrapped_scalar(s))
}

/// `clamp(x, min, max)`: `minimum(maximum(x, min), max)` over the promoted dtype (a NaN input
/// stays NaN). Bounds are tensors (scalar bounds come as wrapped numbers).
pub fn clamp(x: &Tensor, min: Option<&Tensor>, max: Option<&Tensor>) -> Result<Tensor> {
    let spec = meta::clamp(x, min, max)?;
    let shape = &spec.sizes[..];
    let load = |t: &Tensor| -> Result<Vec<f64>> {
        t.load_strided::<f64>(shape, &broadcast_strides(t, shape))
    };
    if spec.dtype.is_integral(true) {
        let ld = |t: &Tensor| t.load_strided::<i64>(shape, &broadcast_strides(t, shape));
        let mut v = ld(x)?;
        if let Some(lo) = min {
            v.iter_mut()
                .zip(ld(lo)?)
                .for_each(|(v, l)| *v = (*v).max(l));
        }
        if let Some(hi) = max {
            v.iter_mut()
                .zip(ld(hi)?)
                .for_each(|(v, h)| *v = (*v).min(h));
        }
        return Ok(tensor_from_domain(&v, shape, spec.dtype));
    }
    let round = |v: &mut Vec<f64>| {
        if spec.dtype == ScalarType::Float32 {
            v.iter_mut().for_each(|e| *e = *e as f32 as f64);
        }
    };
    let mut v = load(x)?;
    round(&mut v);
    // PyTorch: `min(max(x, lo), hi)` with NaN propagation from any operand.
    if let Some(lo) = min {
        let mut l = load(lo)?;
        round(&mut l);
        v.iter_mut().zip(l).for_each(|(v, l)| {
            *v = if v.is_nan() || l.is_nan() {
                f64::NAN
            } else {
                v.max(l)
            }
        });
    }
    if let Some(hi) = max {
        let mut h = load(hi)?;
        round(&mut h);
        v.iter_mut().zip(h).for_each(|(v, h)| {
            *v = if v.is_nan() || h.is_nan() {
                f64::NAN
            } else {
                v.min(h)
            }
        });
    }
    Ok(tensor_from_domain(&v, shape, spec.dtype))
}

/// `lerp(a, end, weight)`: `a + weight * (end - a)`, computed as PyTorch does (from the nearer
/// end for |weight| >= 0.5).
pub fn lerp(a: &Tensor, end: &Tensor, weight: &Tensor) -> Result<Tensor> {
    let spec = meta::lerp(
        a,
        end,
        if weight.is_wrapped_number() {
            None
        } else {
            Some(weight)
        },
    )?;
    let shape = &spec.sizes[..];
    if spec.dtype.is_complex() {
        let ld = |t: &Tensor| t.load_strided::<C64>(shape, &broadcast_strides(t, shape));
        let (x, e, w) = (ld(a)?, ld(end)?, ld(weight)?);
        let v: Vec<C64> = x
            .iter()
            .zip(&e)
            .zip(&w)
            .map(|((&x, &e), &w)| x + w * (e - x))
            .collect();
        return Ok(tensor_from_domain(&v, shape, spec.dtype));
    }
    let ld = |t: &Tensor| t.load_strided::<f64>(shape, &broadcast_strides(t, shape));
    let (x, e, w) = (ld(a)?, ld(end)?, ld(weight)?);
    let v: Vec<f64> = x
        .iter()
        .zip(&e)
        .zip(&w)
        .map(|((&x, &e), &w)| {
            if w.abs() < 0.5 {
                x + w * (e - x)
            } else {
                e - (e - x) * (1.0 - w)
            }
        })
        .collect();
    Ok(tensor_from_domain(&v, shape, spec.dtype))
}

/// `masked_fill(x, mask, value)`: `value` where `mask` is true.
pub fn masked_fill(x: &Tensor, mask: &Tensor, value: Scalar) -> Result<Tensor> {
    let spec = meta::masked_fill(x, mask, None)?;
    if spec.sizes[..] != *x.sizes() {
        return Err(TensorError::other(format!(
            "output with shape {:?} doesn't match the broadcast shape {:?}",
            x.sizes(),
            &spec.sizes[..]
        )));
    }
    // The value converted to `x`'s dtype (as `fill_`), as a 0-dim operand of that dtype, so
    // `where` keeps `x`'s dtype.
    super::where_(
        mask,
        &Tensor::scalar_tensor(value, x.dtype(), x.device())?,
        x,
    )
}
