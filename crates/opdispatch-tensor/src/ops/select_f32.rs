//! Contiguous float32 fast paths for comparisons and `where` (relu's backward is `where(x > 0,
//! grad, 0)`: on 256x256 the generic strided path, which converts every element to f64 and
//! back, took 60x as long as a `mul` of the same shape).

use crate::element::cast_slice;
use crate::error::Result;
use crate::{ScalarType, Storage, Tensor};

/// A fresh contiguous `dtype` tensor of `shape` whose `nbytes` bytes `fill` writes (zeroed
/// first, so nothing uninitialised is ever exposed).
fn output(
    shape: &[usize],
    nbytes: usize,
    dtype: ScalarType,
    fill: impl FnOnce(&mut [u8]),
) -> Result<Tensor> {
    let mut words = crate::storage::zeroed_words(nbytes.div_ceil(8))?;
    // SAFETY: reinterpreting initialized u64s as bytes is always valid.
    let bytes = unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), nbytes) };
    fill(bytes);
    Ok(Tensor::from_storage_contiguous(
        Storage::from_words(words, nbytes),
        shape,
        dtype,
    ))
}

use super::BinaryOp;

/// A float32 operand of a fast path: the whole contiguous tensor of `shape`, or one value
/// (a one-element tensor or a wrapped number) broadcast over it.
enum Operand {
    Full,
    Scalar(f32),
}

fn operand(t: &Tensor, shape: &[usize]) -> Result<Option<Operand>> {
    if t.dtype() == ScalarType::Float32 && t.is_contiguous() && t.sizes() == shape {
        return Ok(Some(Operand::Full));
    }
    if t.numel() == 1 && (t.dtype() == ScalarType::Float32 || t.is_wrapped_number()) {
        // As the generic path: the value converted to the computation type (float32).
        return Ok(Some(Operand::Scalar(t.load::<f64>()?[0] as f32)));
    }
    Ok(None)
}

/// Calls `f` with the float32 elements of the contiguous tensors `ts` (`None` for those that
/// are scalars), taking each storage's read lock once (tensors may share a storage).
pub(super) fn with_slices<R>(
    ts: &[(&Tensor, bool)],
    f: impl FnOnce(&[Option<&[f32]>]) -> R,
) -> Result<R> {
    let mut guards = Vec::with_capacity(ts.len());
    let mut owner = Vec::with_capacity(ts.len());
    for (i, (t, full)) in ts.iter().enumerate() {
        if !full {
            owner.push(None);
            continue;
        }
        match ts[..i]
            .iter()
            .position(|(u, uf)| *uf && u.storage_ref().ptr_eq(t.storage_ref()))
        {
            Some(j) => owner.push(owner[j]),
            None => {
                guards.push(t.storage_ref().read()?);
                owner.push(Some(guards.len() - 1));
            }
        }
    }
    let slices: Vec<Option<&[f32]>> = ts
        .iter()
        .zip(&owner)
        .map(|((t, _), o)| {
            o.map(|g| {
                let all = cast_slice::<f32>(&guards[g]).expect("aligned");
                &all[t.storage_offset()..t.storage_offset() + t.numel()]
            })
        })
        .collect();
    Ok(f(&slices))
}

/// `o[i] = f(x[i], y(i))`, monomorphized per comparison so the loop vectorizes.
fn fill_cmp(o: &mut [u8], x: &[f32], y: Option<&[f32]>, s: f32, f: impl Fn(f32, f32) -> bool) {
    match y {
        Some(y) => {
            for ((o, &p), &q) in o.iter_mut().zip(x).zip(y) {
                *o = u8::from(f(p, q));
            }
        }
        None => {
            for (o, &p) in o.iter_mut().zip(x) {
                *o = u8::from(f(p, s));
            }
        }
    }
}

fn cmp_into(op: BinaryOp, o: &mut [u8], x: &[f32], y: Option<&[f32]>, s: f32) {
    match op {
        BinaryOp::Eq => fill_cmp(o, x, y, s, |p, q| p == q),
        BinaryOp::Ne => fill_cmp(o, x, y, s, |p, q| p != q),
        BinaryOp::Lt => fill_cmp(o, x, y, s, |p, q| p < q),
        BinaryOp::Le => fill_cmp(o, x, y, s, |p, q| p <= q),
        BinaryOp::Gt => fill_cmp(o, x, y, s, |p, q| p > q),
        _ => fill_cmp(o, x, y, s, |p, q| p >= q),
    }
}

/// `op(a, b)` for a comparison computed in float32 (`None` when the operands do not fit).
pub(super) fn compare(
    op: BinaryOp,
    a: &Tensor,
    b: &Tensor,
    shape: &[usize],
) -> Option<Result<Tensor>> {
    let run = || -> Result<Option<Tensor>> {
        let (Some(oa @ Operand::Full), Some(ob)) = (operand(a, shape)?, operand(b, shape)?) else {
            return Ok(None);
        };
        let _ = oa;
        let full_b = matches!(ob, Operand::Full);
        let scalar = match ob {
            Operand::Scalar(v) => v,
            Operand::Full => 0.0,
        };
        with_slices(&[(a, true), (b, full_b)], |s| {
            let x = s[0].expect("full");
            output(shape, x.len(), ScalarType::Bool, |o| {
                cmp_into(op, o, x, s[1], scalar);
            })
        })?
        .map(Some)
    };
    run().transpose()
}

/// `where(cond, a, b)` for a contiguous bool `cond` and float32 values (`None` when the
/// operands do not fit).
pub(super) fn where_(
    cond: &Tensor,
    a: &Tensor,
    b: &Tensor,
    shape: &[usize],
) -> Option<Result<Tensor>> {
    if cond.dtype() != ScalarType::Bool || !cond.is_contiguous() || cond.sizes() != shape {
        return None;
    }
    let run = || -> Result<Option<Tensor>> {
        let (Some(oa), Some(ob)) = (operand(a, shape)?, operand(b, shape)?) else {
            return Ok(None);
        };
        let g = cond.storage_ref().read()?;
        let off = cond.storage_offset();
        let c = &g[off..off + cond.numel()];
        let (fa, fb) = (matches!(oa, Operand::Full), matches!(ob, Operand::Full));
        with_slices(&[(a, fa), (b, fb)], |s| {
            // Uninitialised (no page-zeroing of a large buffer); every slot is written below.
            super::elementwise::new_f32(shape, c.len(), |o| {
                // One branch-free select loop per operand kind (a mask, not a jump, per element).
                // Bools are stored as 0/1, so `-m` is an all-ones or all-zeros mask.
                let sel = |m: u8, p: f32, q: f32| {
                    let k = u32::from(m != 0).wrapping_neg();
                    f32::from_bits((p.to_bits() & k) | (q.to_bits() & !k))
                };
                match (&oa, &ob, s[0], s[1]) {
                    (Operand::Full, Operand::Full, Some(x), Some(y)) => {
                        for (((o, &m), &p), &q) in o.iter_mut().zip(c).zip(x).zip(y) {
                            o.write(sel(m, p, q));
                        }
                    }
                    (Operand::Full, Operand::Scalar(q), Some(x), _) => {
                        for ((o, &m), &p) in o.iter_mut().zip(c).zip(x) {
                            o.write(sel(m, p, *q));
                        }
                    }
                    (Operand::Scalar(p), Operand::Full, _, Some(y)) => {
                        for ((o, &m), &q) in o.iter_mut().zip(c).zip(y) {
                            o.write(sel(m, *p, q));
                        }
                    }
                    (Operand::Scalar(p), Operand::Scalar(q), _, _) => {
                        for (o, &m) in o.iter_mut().zip(c) {
                            o.write(sel(m, *p, *q));
                        }
                    }
                    _ => unreachable!("a full operand has a slice"),
                }
            })
        })?
        .map(Some)
    };
    run().transpose()
}
