//! Floating-point sums with PyTorch's rounding: a cascade (multi-level blocked) summation in
//! the input's own precision, over SIMD-width lane vectors.
//!
//! ATen sums float32 in float32, not in a wider type: it keeps four levels of partial sums
//! and folds each level into the next every `2^k` loads (`k` grows with the length), so only
//! sums of similar size meet and the error stays near that of a pairwise sum; a contiguous
//! row is read as vectors of 8 floats (AVX2's width, which torch's sum uses on AVX-512 CPUs too)
//! with four vectors in flight. The same schedule is followed here, so results match torch's
//! bit for bit on one thread (and up to the order partials meet on several), and the loops
//! vectorize: every step is a lane-wise add of independent accumulators.

use crate::parallel::{parallel_for, parallel_reduce, GRAIN_SIZE};

/// Element types summed here (`f32`, `f64`).
pub(crate) trait Float:
    Copy + Send + Sync + PartialOrd + std::ops::Add<Output = Self> + 'static
{
    const ZERO: Self;
    /// Rounds an f64 to this type (exact for values that came from it).
    fn from_f64(v: f64) -> Self;
}
impl Float for f32 {
    const ZERO: Self = 0.0;
    fn from_f64(v: f64) -> Self {
        v as f32
    }
}
impl Float for f64 {
    const ZERO: Self = 0.0;
    fn from_f64(v: f64) -> Self {
        v
    }
}

/// One accumulator: a scalar or a vector of lanes.
trait Summand: Copy {
    fn zero() -> Self;
    fn plus(self, o: Self) -> Self;
}
impl<T: Float> Summand for T {
    #[inline(always)]
    fn zero() -> Self {
        T::ZERO
    }
    #[inline(always)]
    fn plus(self, o: Self) -> Self {
        self + o
    }
}
#[derive(Clone, Copy)]
struct Lanes<T, const W: usize>([T; W]);
impl<T: Float, const W: usize> Summand for Lanes<T, W> {
    #[inline(always)]
    fn zero() -> Self {
        Lanes([T::ZERO; W])
    }
    #[inline(always)]
    fn plus(mut self, o: Self) -> Self {
        for (a, b) in self.0.iter_mut().zip(o.0) {
            *a = *a + b;
        }
        self
    }
}

/// A vector of `W` lanes of `T` the row and column kernels load and store.
trait Vector<T: Float>: Summand {
    const W: usize;
    /// Lanes `x[at..at + W]`; the caller keeps `at + W <= x.len()`.
    fn load(x: &[T], at: usize) -> Self;
    /// Writes the lanes to `out[..W]`.
    fn store(self, out: &mut [T]);
}

impl<T: Float, const W: usize> Vector<T> for Lanes<T, W> {
    const W: usize = W;
    #[inline(always)]
    fn load(x: &[T], at: usize) -> Self {
        assert!(at + W <= x.len());
        // SAFETY: in bounds (checked above); `[T; W]` has `T`'s alignment.
        Lanes(unsafe { std::ptr::read(x.as_ptr().add(at).cast::<[T; W]>()) })
    }
    #[inline(always)]
    fn store(self, out: &mut [T]) {
        out[..W].copy_from_slice(&self.0);
    }
}

/// AVX registers as accumulators: with plain lane arrays LLVM splits the cascade's levels into
/// scalars and rebuilds vectors lane by lane at every fold. Only used inside functions
/// compiled with AVX2 enabled (the intrinsics inline there).
#[cfg(target_arch = "x86_64")]
mod avx {
    use super::{Summand, Vector};
    use std::arch::x86_64::{
        __m256, __m256d, _mm256_add_pd, _mm256_add_ps, _mm256_loadu_pd, _mm256_loadu_ps,
        _mm256_setzero_pd, _mm256_setzero_ps, _mm256_storeu_pd, _mm256_storeu_ps,
    };

    #[derive(Clone, Copy)]
    pub(super) struct F32x8(__m256);
    #[derive(Clone, Copy)]
    pub(super) struct F64x4(__m256d);

    impl Summand for F32x8 {
        #[inline(always)]
        fn zero() -> Self {
            // SAFETY: only reached from AVX2-enabled callers (the CPU has AVX).
            F32x8(unsafe { _mm256_setzero_ps() })
        }
        #[inline(always)]
        fn plus(self, o: Self) -> Self {
            // SAFETY: as above.
            F32x8(unsafe { _mm256_add_ps(self.0, o.0) })
        }
    }
    impl Vector<f32> for F32x8 {
        const W: usize = 8;
        #[inline(always)]
        fn load(x: &[f32], at: usize) -> Self {
            debug_assert!(at + 8 <= x.len());
            // SAFETY: callers keep `at + 8 <= x.len()` (their loops bound every load); an
            // unaligned load; AVX is present as above.
            F32x8(unsafe { _mm256_loadu_ps(x.as_ptr().add(at)) })
        }
        #[inline(always)]
        fn store(self, out: &mut [f32]) {
            assert!(out.len() >= 8);
            // SAFETY: 8 floats fit (checked above).
            unsafe { _mm256_storeu_ps(out.as_mut_ptr(), self.0) }
        }
    }
    impl Summand for F64x4 {
        #[inline(always)]
        fn zero() -> Self {
            // SAFETY: only reached from AVX2-enabled callers (the CPU has AVX).
            F64x4(unsafe { _mm256_setzero_pd() })
        }
        #[inline(always)]
        fn plus(self, o: Self) -> Self {
            // SAFETY: as above.
            F64x4(unsafe { _mm256_add_pd(self.0, o.0) })
        }
    }
    impl Vector<f64> for F64x4 {
        const W: usize = 4;
        #[inline(always)]
        fn load(x: &[f64], at: usize) -> Self {
            debug_assert!(at + 4 <= x.len());
            // SAFETY: callers keep `at + 4 <= x.len()`; AVX is present as above.
            F64x4(unsafe { _mm256_loadu_pd(x.as_ptr().add(at)) })
        }
        #[inline(always)]
        fn store(self, out: &mut [f64]) {
            assert!(out.len() >= 4);
            // SAFETY: 4 doubles fit (checked above).
            unsafe { _mm256_storeu_pd(out.as_mut_ptr(), self.0) }
        }
    }
}

/// `ceil(log2(x))`, 1 for `x <= 2` (as ATen's `CeilLog2`).
fn ceil_log2(x: usize) -> usize {
    if x <= 2 {
        1
    } else {
        (usize::BITS - (x - 1).leading_zeros()) as usize
    }
}

/// `R` interleaved cascade sums over `size` steps; `load(i, k)` is step `i` of sum `k`.
#[inline(always)]
fn multi_row_sum<E: Summand, const R: usize>(
    size: usize,
    load: impl Fn(usize, usize) -> E,
) -> [E; R] {
    const LEVELS: usize = 4;
    let power = 4.max(ceil_log2(size) / LEVELS);
    let step = 1usize << power;
    let mask = step - 1;
    let mut acc = [[E::zero(); R]; LEVELS];
    let mut i = 0;
    while i + step <= size {
        for _ in 0..step {
            for (k, a) in acc[0].iter_mut().enumerate() {
                *a = a.plus(load(i, k));
            }
            i += 1;
        }
        for j in 1..LEVELS {
            let (lower, upper) = acc.split_at_mut(j);
            for (hi, lo) in upper[0].iter_mut().zip(lower[j - 1].iter_mut()) {
                *hi = hi.plus(*lo);
                *lo = E::zero();
            }
            if i & (mask << (j * power)) != 0 {
                break;
            }
        }
    }
    while i < size {
        for (k, a) in acc[0].iter_mut().enumerate() {
            *a = a.plus(load(i, k));
        }
        i += 1;
    }
    let mut out = acc[0];
    for level in &acc[1..] {
        for (o, &a) in out.iter_mut().zip(level) {
            *o = o.plus(a);
        }
    }
    out
}

/// One cascade sum of `size` loads, four in flight (ATen's `row_sum`).
#[inline(always)]
fn row_sum<E: Summand>(size: usize, load: impl Fn(usize) -> E) -> E {
    const ILP: usize = 4;
    let rows = size / ILP;
    let p = multi_row_sum::<E, ILP>(rows, |i, k| load(i * ILP + k));
    let mut s = p[0];
    for i in rows * ILP..size {
        s = s.plus(load(i));
    }
    for &q in &p[1..] {
        s = s.plus(q);
    }
    s
}

/// Sum of one contiguous row, read as `V` vectors when it holds at least one.
#[inline(always)]
fn inner_row<T: Float, V: Vector<T>>(x: &[T]) -> T {
    let n = x.len();
    let w = V::W;
    if n < w {
        return row_sum(n, |i| x[i]);
    }
    let nv = n / w;
    let v = row_sum(nv, |i| V::load(x, i * w));
    let mut s = T::ZERO;
    for &e in &x[nv * w..] {
        s = s + e;
    }
    let mut lanes = [T::ZERO; 8];
    v.store(&mut lanes);
    for &e in &lanes[..w] {
        s = s + e;
    }
    s
}

/// Column sums of a contiguous `[rows, cols]` block (the reduced dimension is the outer one):
/// columns go four vectors at a time, then one vector, then one by one.
#[inline(always)]
fn outer_block<T: Float, V: Vector<T>>(
    x: &[T],
    rows: usize,
    cols: usize,
    c0: usize,
    c1: usize,
    out: &mut [T],
) {
    assert!(rows == 0 || (rows - 1) * cols + c1 <= x.len());
    let w = V::W;
    let mut j = c0;
    if cols >= w {
        while j + 4 * w <= c1 {
            let s = multi_row_sum::<V, 4>(rows, |i, k| V::load(x, i * cols + j + k * w));
            for (k, v) in s.into_iter().enumerate() {
                v.store(&mut out[j - c0 + k * w..]);
            }
            j += 4 * w;
        }
        while j + w <= c1 {
            row_sum(rows, |i| V::load(x, i * cols + j)).store(&mut out[j - c0..]);
            j += w;
        }
    } else {
        while j + 4 <= c1 {
            let s = multi_row_sum::<T, 4>(rows, |i, k| x[i * cols + j + k]);
            out[j - c0..j - c0 + 4].copy_from_slice(&s);
            j += 4;
        }
    }
    while j < c1 {
        out[j - c0] = row_sum(rows, |i| x[i * cols + j]);
        j += 1;
    }
}

/// The vector width of ATen's sum kernel on this machine, in bytes: 32 wherever AVX2 is
/// present, AVX-512 machines included (torch 2.15 on an AVX-512 EPYC rounds as 8 float
/// lanes, measured: its sums of 17 to 300001 random floats match this schedule bit for bit
/// at 8 lanes and not at 16).
fn vector_bytes() -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            return 32;
        }
    }
    16
}

macro_rules! widths {
    ($t:ty, $v256:ty, $w128:literal, $row:ident, $outer:ident) => {
        fn $row(x: &[$t]) -> $t {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2")]
                unsafe fn w256(x: &[$t]) -> $t {
                    inner_row::<$t, $v256>(x)
                }
                match vector_bytes() {
                    // SAFETY: the CPU has AVX2 (detected at run time).
                    32 => return unsafe { w256(x) },
                    _ => {}
                }
            }
            inner_row::<$t, Lanes<$t, $w128>>(x)
        }
        fn $outer(x: &[$t], rows: usize, cols: usize, c0: usize, c1: usize, out: &mut [$t]) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2")]
                unsafe fn w256(
                    x: &[$t],
                    rows: usize,
                    cols: usize,
                    c0: usize,
                    c1: usize,
                    out: &mut [$t],
                ) {
                    outer_block::<$t, $v256>(x, rows, cols, c0, c1, out);
                }
                match vector_bytes() {
                    // SAFETY: the CPU has AVX2 (detected at run time).
                    32 => return unsafe { w256(x, rows, cols, c0, c1, out) },
                    _ => {}
                }
            }
            outer_block::<$t, Lanes<$t, $w128>>(x, rows, cols, c0, c1, out);
        }
    };
}
widths!(f32, avx::F32x8, 4, row_f32, outer_f32);
widths!(f64, avx::F64x4, 2, row_f64, outer_f64);

/// Types with a dispatched row and column kernel.
pub(crate) trait Summable: Float {
    fn row(x: &[Self]) -> Self;
    fn outer(x: &[Self], rows: usize, cols: usize, c0: usize, c1: usize, out: &mut [Self]);
}
impl Summable for f32 {
    fn row(x: &[Self]) -> Self {
        row_f32(x)
    }
    fn outer(x: &[Self], rows: usize, cols: usize, c0: usize, c1: usize, out: &mut [Self]) {
        outer_f32(x, rows, cols, c0, c1, out);
    }
}
impl Summable for f64 {
    fn row(x: &[Self]) -> Self {
        row_f64(x)
    }
    fn outer(x: &[Self], rows: usize, cols: usize, c0: usize, c1: usize, out: &mut [Self]) {
        outer_f64(x, rows, cols, c0, c1, out);
    }
}

/// Sum of all of `x`. Above the grain size each thread sums a chunk and the partials are
/// summed in chunk order, as ATen's two-pass reduction does.
pub(crate) fn sum_all<T: Summable>(x: &[T]) -> T {
    let parts = parallel_reduce(
        x.len(),
        GRAIN_SIZE,
        |r| vec![T::row(&x[r])],
        |mut a, b| {
            a.extend(b);
            a
        },
    );
    if parts.len() == 1 {
        return parts[0];
    }
    T::ZERO + row_sum(parts.len(), |i| parts[i])
}

/// Sums of `x` viewed as contiguous `[outer, rows, cols]`, reducing `rows`, into `out`
/// (`[outer, cols]`). `cols == 1` is the inner-dimension case (one contiguous row per output).
pub(crate) fn sum_dim<T: Summable>(x: &[T], outer: usize, rows: usize, cols: usize, out: &mut [T]) {
    assert!(x.len() == outer * rows * cols && out.len() == outer * cols);
    if rows == 0 {
        out.fill(T::ZERO);
        return;
    }
    let out_ptr = SendPtr(out.as_mut_ptr());
    if cols == 1 {
        parallel_for(outer, (GRAIN_SIZE / rows).max(1), |r| {
            for o in r {
                // SAFETY: each output index is written by exactly one chunk.
                unsafe { *out_ptr.get().add(o) = T::row(&x[o * rows..(o + 1) * rows]) };
            }
        });
        return;
    }
    let per = rows * cols;
    if outer > 1 {
        parallel_for(outer, (GRAIN_SIZE / per).max(1), |r| {
            for o in r {
                // SAFETY: chunks own disjoint output rows `o * cols..(o + 1) * cols`.
                let dst =
                    unsafe { std::slice::from_raw_parts_mut(out_ptr.get().add(o * cols), cols) };
                T::outer(&x[o * per..(o + 1) * per], rows, cols, 0, cols, dst);
            }
        });
        return;
    }
    // One block: split its columns, in whole groups of 64 so each keeps torch's schedule.
    let groups = cols.div_ceil(64);
    parallel_for(groups, (GRAIN_SIZE / (64 * rows)).max(1), |r| {
        let (c0, c1) = (r.start * 64, (r.end * 64).min(cols));
        // SAFETY: chunks own disjoint column ranges of the output.
        let dst = unsafe { std::slice::from_raw_parts_mut(out_ptr.get().add(c0), c1 - c0) };
        T::outer(x, rows, cols, c0, c1, dst);
    });
}

/// A raw output pointer shared by chunks that write disjoint parts of it.
#[derive(Clone, Copy)]
pub(crate) struct SendPtr<T>(pub(crate) *mut T);
// SAFETY: only used to hand disjoint output ranges to the chunks of one parallel loop, which
// all end before the buffer's owner uses it again.
unsafe impl<T> Send for SendPtr<T> {}
// SAFETY: as above.
unsafe impl<T> Sync for SendPtr<T> {}
impl<T> SendPtr<T> {
    pub(crate) fn get(self) -> *mut T {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_float32_sums_keep_their_precision() {
        // A running float32 sum stops growing at 2^24; the cascade stays within one ulp (4 at
        // 2^25). On one thread torch 2.15 returns 33554436 for 2^25 + 3 ones (the 3 tail
        // ones meet the first lane, 2^22, and round up at 2^24 + 3), on two threads 33554432
        // (two chunk partials); `row` is the one-thread schedule.
        let ones = vec![1.0f32; (1 << 25) + 3];
        assert_eq!(f32::row(&ones), 33554436.0);
        let halves =
            f32::row(&ones[..ones.len().div_ceil(2)]) + f32::row(&ones[ones.len().div_ceil(2)..]);
        assert_eq!(halves, 33554432.0);
        let exact = ((1u64 << 25) + 3) as f64;
        assert!((f64::from(sum_all(&ones)) - exact).abs() <= 4.0);
        let ramp: Vec<f32> = (0..1_000_003).map(|i| (i % 1000) as f32 * 0.001).collect();
        let exact: f64 = ramp.iter().map(|&v| f64::from(v)).sum();
        assert!((f64::from(sum_all(&ramp)) - exact).abs() / exact < 1e-6);
    }

    #[test]
    fn dims_match_the_all_reduce_of_each_group() {
        let (o, r, c) = (3, 37, 150);
        let x: Vec<f64> = (0..o * r * c)
            .map(|i| ((i * 7919) % 101) as f64 - 50.0)
            .collect();
        let mut out = vec![0.0; o * c];
        sum_dim(&x, o, r, c, &mut out);
        for a in 0..o {
            for j in 0..c {
                let want: f64 = (0..r).map(|i| x[a * r * c + i * c + j]).sum();
                assert_eq!(out[a * c + j], want);
            }
        }
        let mut rows = vec![0.0; o * r];
        sum_dim(&x, o * r, c, 1, &mut rows);
        for (g, s) in rows.iter().enumerate() {
            assert_eq!(*s, x[g * c..(g + 1) * c].iter().sum::<f64>());
        }
    }
}
