//! Contiguous max/min kernels with their indices: lane-wise running extremes that vectorize,
//! NaN propagating and the first occurrence winning (as ATen's `max`/`argmax`).

use super::cascade::{Float, SendPtr};
use crate::parallel::{parallel_for, parallel_reduce, GRAIN_SIZE};

#[inline(always)]
fn better<T: Float, const MAX: bool>(v: T, b: T) -> bool {
    if MAX {
        v > b
    } else {
        v < b
    }
}

/// Lanes of the value-only scan: four 8-float vectors (or two 4-double ones) in flight, so the
/// compare-and-select chains do not wait on each other.
const VW: usize = 32;

/// The extreme of a non-empty row, NaN propagating (one pass, no index). On ties the later
/// element wins, so `-0.0` after `0.0` is the maximum, as in ATen's scans (`a > b ? a : b`).
#[inline(always)]
fn row_value<T: Float, const MAX: bool>(x: &[T]) -> T {
    // Each lane keeps its running extreme and, apart, the last NaN it saw: two selects per
    // vector, no branch.
    let mut m = [x[0]; VW];
    let mut nan = [T::ZERO; VW];
    let chunks = x.chunks_exact(VW);
    let tail = chunks.remainder();
    for c in chunks {
        for l in 0..VW {
            let v = c[l];
            m[l] = if better::<T, MAX>(m[l], v) { m[l] } else { v };
            #[allow(clippy::eq_op)]
            let is_nan = v != v;
            nan[l] = if is_nan { v } else { nan[l] };
        }
    }
    #[allow(clippy::eq_op)]
    if let Some(&n) = nan.iter().chain(tail).find(|&&v| v != v) {
        return n;
    }
    let mut best = m[0];
    for &v in m[1..].iter().chain(tail) {
        #[allow(clippy::eq_op)]
        if v != v {
            return v;
        }
        if !better::<T, MAX>(best, v) {
            best = v;
        }
    }
    best
}

/// First index of `v` (compared with `==`, or the first NaN when `v` is NaN) in `x`, scanning
/// blocks with a branch-free test first.
#[inline(always)]
fn first_index<T: Float>(x: &[T], v: T) -> Option<usize> {
    #[allow(clippy::eq_op)]
    let want_nan = v != v;
    #[allow(clippy::eq_op)]
    let hit = |e: T| if want_nan { e != e } else { e == v };
    const B: usize = 64;
    let mut base = 0;
    for c in x.chunks(B) {
        if c.iter().fold(false, |a, &e| a | hit(e)) {
            return c.iter().position(|&e| hit(e)).map(|i| base + i);
        }
        base += c.len();
    }
    None
}

/// Index and value of the first extreme of a non-empty row; NaN wins (its first occurrence).
/// Equal values (signed zeros included) resolve to the first one, as a running scan does.
#[inline(always)]
fn row_extreme<T: Float, const MAX: bool>(x: &[T]) -> (usize, T) {
    let best = row_value::<T, MAX>(x);
    let i = first_index(x, best).expect("the extreme occurs in its row");
    (i, x[i])
}

fn value_dispatch<T: Float, const MAX: bool>(x: &[T]) -> T {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2")]
        unsafe fn avx2<T: Float, const MAX: bool>(x: &[T]) -> T {
            row_value::<T, MAX>(x)
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (detected just above).
            return unsafe { avx2::<T, MAX>(x) };
        }
    }
    row_value::<T, MAX>(x)
}

/// The extreme of all of non-empty `x` without its index (`torch.max(t)`), NaN propagating.
pub(crate) fn extreme_value<T: Float, const MAX: bool>(x: &[T]) -> T {
    parallel_reduce(
        x.len(),
        GRAIN_SIZE,
        |r| value_dispatch::<T, MAX>(&x[r]),
        |a, b| {
            #[allow(clippy::eq_op)]
            let (an, bn) = (a != a, b != b);
            // Across chunks the earlier partial wins ties, as ATen's combine does.
            if !an && (bn || better::<T, MAX>(b, a)) {
                b
            } else {
                a
            }
        },
    )
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

    #[test]
    fn values_without_indices() {
        for n in [1usize, 5, 31, 32, 33, 100, 1000, 70_001] {
            let mut x: Vec<f64> = (0..n).map(|i| ((i * 7919) % 1009) as f64 - 500.0).collect();
            let want_max = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let want_min = x.iter().copied().fold(f64::INFINITY, f64::min);
            assert_eq!(extreme_value::<f64, true>(&x), want_max, "{n}");
            assert_eq!(extreme_value::<f64, false>(&x), want_min, "{n}");
            let f: Vec<f32> = x.iter().map(|&v| v as f32).collect();
            assert_eq!(extreme_value::<f32, true>(&f), want_max as f32);
            // NaN anywhere (first, middle, in the tail) propagates.
            for at in [0, n / 2, n - 1] {
                let keep = x[at];
                x[at] = f64::NAN;
                assert!(extreme_value::<f64, true>(&x).is_nan(), "{n} {at}");
                assert!(extreme_value::<f64, false>(&x).is_nan(), "{n} {at}");
                x[at] = keep;
            }
        }
        // Ties go to the later element within a scan: -0.0 after 0.0 (as torch's max()).
        let z: Vec<f32> = (0..40).map(|i| if i < 20 { 0.0 } else { -0.0 }).collect();
        assert!(extreme_value::<f32, true>(&z).is_sign_negative());
        assert!(extreme_value::<f32, false>(&z).is_sign_negative());
    }
}
