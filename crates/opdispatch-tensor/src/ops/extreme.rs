//! Contiguous max/min kernels with their indices: lane-wise running extremes that vectorize,
//! NaN propagating and the first occurrence winning (as ATen's `max`/`argmax`).

use super::cascade::{Float, SendPtr};
use crate::parallel::{parallel_for, parallel_reduce, GRAIN_SIZE};

const W: usize = 16;

#[inline(always)]
fn better<T: Float, const MAX: bool>(v: T, b: T) -> bool {
    if MAX {
        v > b
    } else {
        v < b
    }
}

/// Index and value of the first extreme of a non-empty row; NaN wins (its first occurrence).
#[inline(always)]
fn row_extreme<T: Float, const MAX: bool>(x: &[T]) -> (usize, T) {
    let mut m = [x[0]; W];
    let mut nan = [false; W];
    let chunks = x.chunks_exact(W);
    let tail = chunks.remainder();
    for c in chunks {
        for l in 0..W {
            let v = c[l];
            #[allow(clippy::eq_op)]
            let is_nan = v != v;
            nan[l] |= is_nan;
            m[l] = if better::<T, MAX>(v, m[l]) { v } else { m[l] };
        }
    }
    let mut best = m[0];
    for &v in m[1..].iter().chain(tail) {
        if better::<T, MAX>(v, best) {
            best = v;
        }
    }
    #[allow(clippy::eq_op)]
    let any_nan = nan.iter().any(|&b| b) || tail.iter().any(|&v| v != v);
    #[allow(clippy::eq_op)]
    let i = if any_nan {
        x.iter().position(|&v| v != v)
    } else {
        // Equal values (signed zeros included) resolve to the first one, as a running scan does.
        x.iter().position(|&v| v == best)
    }
    .expect("the extreme occurs in its row");
    (i, x[i])
}

fn row_dispatch<T: Float, const MAX: bool>(x: &[T]) -> (usize, T) {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2")]
        unsafe fn avx2<T: Float, const MAX: bool>(x: &[T]) -> (usize, T) {
            row_extreme::<T, MAX>(x)
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (detected just above).
            return unsafe { avx2::<T, MAX>(x) };
        }
    }
    row_extreme::<T, MAX>(x)
}

/// Index and value of the extreme of all of non-empty `x`, by chunks on the pool when large.
pub(crate) fn extreme_all<T: Float, const MAX: bool>(x: &[T]) -> (usize, T) {
    parallel_reduce(
        x.len(),
        GRAIN_SIZE,
        |r| {
            let (i, v) = row_dispatch::<T, MAX>(&x[r.clone()]);
            (i + r.start, v)
        },
        |a, b| {
            #[allow(clippy::eq_op)]
            let (an, bn) = (a.1 != a.1, b.1 != b.1);
            if !an && (bn || better::<T, MAX>(b.1, a.1)) {
                b
            } else {
                a
            }
        },
    )
}

/// Extremes of `x` viewed as contiguous `[outer, rows, cols]` over `rows` (non-zero), into
/// `vals`/`idx` (`[outer, cols]`).
pub(crate) fn extreme_dim<T: Float, const MAX: bool>(
    x: &[T],
    outer: usize,
    rows: usize,
    cols: usize,
    vals: &mut [T],
    idx: &mut [i64],
) {
    assert!(rows > 0 && x.len() == outer * rows * cols);
    assert!(vals.len() == outer * cols && idx.len() == outer * cols);
    let (vp, ip) = (SendPtr(vals.as_mut_ptr()), SendPtr(idx.as_mut_ptr()));
    let per = rows * cols;
    parallel_for(outer, (GRAIN_SIZE / per).max(1), |r| {
        for o in r {
            let block = &x[o * per..(o + 1) * per];
            // SAFETY: chunks own disjoint output ranges `o * cols..(o + 1) * cols`.
            let (v, ix) = unsafe {
                (
                    std::slice::from_raw_parts_mut(vp.get().add(o * cols), cols),
                    std::slice::from_raw_parts_mut(ip.get().add(o * cols), cols),
                )
            };
            if cols == 1 {
                let (i, e) = row_dispatch::<T, MAX>(block);
                (v[0], ix[0]) = (e, i as i64);
                continue;
            }
            v.copy_from_slice(&block[..cols]);
            ix.fill(0);
            for (ri, row) in block.chunks_exact(cols).enumerate().skip(1) {
                for ((b, i), &e) in v.iter_mut().zip(ix.iter_mut()).zip(row) {
                    #[allow(clippy::eq_op)]
                    let take = better::<T, MAX>(e, *b) || (e != e && *b == *b);
                    if take {
                        *b = e;
                        *i = ri as i64;
                    }
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_extreme_and_nan() {
        let mut x: Vec<f32> = (0..100).map(|i| ((i * 37) % 50) as f32).collect();
        // 37 * i = 49 (mod 50) first at i = 27.
        assert_eq!(extreme_all::<f32, true>(&x), (27, 49.0));
        assert_eq!(extreme_all::<f32, false>(&x), (0, 0.0));
        x[70] = f32::NAN;
        x[90] = f32::NAN;
        let (i, v) = extreme_all::<f32, true>(&x);
        assert!(i == 70 && v.is_nan());
        let z = [0.0f64, -0.0, 0.0];
        assert_eq!(extreme_all::<f64, false>(&z).0, 0);
        let mut v = [0.0f32; 3];
        let mut ix = [0i64; 3];
        // [2, 3] over dim 0 of [[1, 5, nan], [4, 2, 0]].
        extreme_dim::<f32, true>(
            &[1.0, 5.0, f32::NAN, 4.0, 2.0, 0.0],
            1,
            2,
            3,
            &mut v,
            &mut ix,
        );
        assert_eq!((v[0], v[1], ix), (4.0, 5.0, [1, 0, 0]));
        assert!(v[2].is_nan());
    }
}
