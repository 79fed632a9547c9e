//! Matrix products: `mm`, `bmm`, `dot`, `matmul` (with batch broadcasting).
//! `f32`/`f64` use the `gemm` crate (any strides, multi-threaded on the kernel pool for large
//! products); other dtypes use a straightforward loop in their computation domain.
//!
//! `gemm` was picked over `matrixmultiply` (with its `threading` feature) by measuring both
//! on this project's 2-core AMD EPYC (AVX-512) dev machine, best of 50 (256) / 5 (1024) runs,
//! ms, 1 thread: f32 256: 0.299 vs 0.323; f32 1024: 20.8 vs 21.3; f64 256: 0.615 vs 0.614;
//! f64 1024: 40.8 vs 55.1 (torch 2.15 there: 0.327, 22.2, 0.698, 65.3). `gemm` also takes its
//! thread count per call, so it follows `set_num_threads`; `matrixmultiply` reads an
//! environment variable once.
//!
//! `gemm`'s `x86-v4` feature (0.19) enables its AVX-512 microkernels on stable Rust; without it
//! an Intel Xeon with AVX-512, where torch's MKL uses AVX-512, ran f32 256 at 2.0x torch's time
//! (1 thread); with it 0.97x (f32 1024 0.96x, f64 256 0.95x, f64 1024 1.00x, same run).

use super::{expand, meta, reshape, squeeze, unsqueeze};
use crate::element::{cast_slice, C64};
use crate::error::Result;
use crate::tensor::{tensor_from_domain, Domain};
use crate::{contiguous_strides, ScalarType, Tensor};

/// `a @ b` for 3-D `a` [B, M, K] and `b` [B, K, N] (any strides) into a fresh
/// contiguous [B, M, N].
fn batched_gemm(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let (bs, m) = (a.sizes()[0], a.sizes()[1]);
    let n = b.sizes()[2];
    let shape = [bs, m, n];
    let dtype = a.dtype();
    match dtype {
        ScalarType::Float32 => gemm_f32(a, b, &shape),
        ScalarType::Float64 => gemm_f64(a, b, &shape),
        t if t.is_complex() => naive::<C64>(a, b, &shape, dtype),
        t if t.is_integral(true) => naive::<i64>(a, b, &shape, dtype),
        _ => naive::<f64>(a, b, &shape, dtype),
    }
}

trait Ring: Domain + std::ops::Add<Output = Self> + std::ops::Mul<Output = Self> {
    const ZERO: Self;
}
impl Ring for f64 {
    const ZERO: Self = 0.0;
}
impl Ring for i64 {
    const ZERO: Self = 0;
}
impl Ring for C64 {
    const ZERO: Self = C64::new(0.0, 0.0);
}

fn naive<D: Ring>(a: &Tensor, b: &Tensor, shape: &[usize; 3], dtype: ScalarType) -> Result<Tensor> {
    let [bs, m, n] = *shape;
    let k = a.sizes()[2];
    let (x, y) = (a.load::<D>()?, b.load::<D>()?);
    let mut out = vec![D::ZERO; bs * m * n];
    for bi in 0..bs {
        for i in 0..m {
            for kk in 0..k {
                let av = x[(bi * m + i) * k + kk];
                for j in 0..n {
                    let o = &mut out[(bi * m + i) * n + j];
                    *o = *o + av * y[(bi * k + kk) * n + j];
                }
            }
        }
    }
    Ok(tensor_from_domain(&out, shape, dtype))
}

/// The output pointer, shared by the row blocks of one GEMM (each writes only its rows).
struct SyncPtr<T>(*mut T);
// SAFETY: the blocks a `SyncPtr` is shared between write disjoint rows (see `gemm_impl`).
unsafe impl<T> Sync for SyncPtr<T> {}
impl<T> SyncPtr<T> {
    // A method, so closures capture the wrapper (which is `Sync`), not the raw field.
    fn get(&self) -> *mut T {
        self.0
    }
}

macro_rules! gemm_impl {
    ($name:ident, $t:ty) => {
        fn $name(a: &Tensor, b: &Tensor, shape: &[usize; 3]) -> Result<Tensor> {
            let [bs, m, n] = *shape;
            let k = a.sizes()[2];
            let isz = std::mem::size_of::<$t>();
            let total = bs * m * n;
            let nbytes = total * isz;
            // The GEMM writes every element (it does not read the output), so the buffer
            // starts uninitialized (no zeroing pass), 64-byte aligned as c10's allocator
            // aligns; zeroed only when there is no product to write (k == 0).
            let writes = total > 0 && k > 0;
            let mut buf = if writes {
                crate::storage::WordBuf::uninit(nbytes)?
            } else {
                crate::storage::WordBuf::zeroed(nbytes)?
            };
            let (sa, sb) = (a.storage_ref(), b.storage_ref());
            let ra = sa.read()?;
            let rb_guard;
            let rb: &[u8] = if sa.ptr_eq(sb) {
                &ra
            } else {
                rb_guard = sb.read()?;
                &rb_guard
            };
            let xa = cast_slice::<$t>(&ra).expect("aligned");
            let xb = cast_slice::<$t>(rb).expect("aligned");
            let st = |t: &Tensor, i: usize| t.strides()[i] as isize;
            if writes {
                // Small products stay on this thread. Larger ones split the output's rows
                // (across the batch first) into one block per thread, each a serial GEMM:
                // on 256x256 f32, `gemm`'s own rayon split ran 0.216 ms on 2 threads against
                // 0.241 on 1; this split runs 0.13 (torch: 0.10). Splitting finer (2 or 4
                // blocks per thread, for late-waking workers) measured no better.
                let threads = if m * n * k >= crate::parallel::GRAIN_SIZE * 16 {
                    crate::parallel::get_num_threads()
                } else {
                    1
                };
                let per_batch = if bs >= threads {
                    1
                } else {
                    threads.div_ceil(bs).min(m.div_ceil(16)).max(1)
                };
                let out = SyncPtr(buf.data().cast::<$t>());
                crate::parallel::parallel_for(bs * per_batch, 1, |units| {
                    for u in units {
                        let (bi, block) = (u / per_batch, u % per_batch);
                        let rows = block * m / per_batch..(block + 1) * m / per_batch;
                        let pa =
                            a.storage_offset() + bi * a.strides()[0] + rows.start * a.strides()[1];
                        let pb = b.storage_offset() + bi * b.strides()[0];
                        let pc = bi * m * n + rows.start * n;
                        // SAFETY: `a`/`b` are valid views of their storages (checked
                        // when they were built), so every element addressed through
                        // their sizes/strides from these offsets lies inside `xa`/`xb`;
                        // `buf` holds `total` elements of the fresh, unaliased output,
                        // addressed row-major with strides (n, 1), and each unit writes
                        // only its own rows.
                        unsafe {
                            gemm::gemm(
                                rows.len(),
                                n,
                                k,
                                out.get().add(pc),
                                1,
                                n as isize,
                                false,
                                xa.as_ptr().add(pa),
                                st(a, 2),
                                st(a, 1),
                                xb.as_ptr().add(pb),
                                st(b, 2),
                                st(b, 1),
                                0.0,
                                1.0,
                                false,
                                false,
                                false,
                                gemm::Parallelism::None,
                            );
                        }
                    }
                });
            }
            drop(ra);
            if writes {
                // SAFETY: the GEMM units together wrote all `total` elements (every row block
                // of every batch).
                unsafe { buf.assume_init(nbytes) };
            }
            let storage = buf.into_storage(nbytes);
            Tensor::from_parts(
                storage,
                shape.to_vec(),
                contiguous_strides(shape),
                0,
                a.dtype(),
            )
        }
    };
}
gemm_impl!(gemm_f32, f32);
gemm_impl!(gemm_f64, f64);

/// `torch.mm(a, b)`: [M, K] x [K, N].
pub fn mm(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    crate::release::released(super::matmul_work(a, b), || mm_body(a, b))
}

fn mm_body(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    meta::mm(a, b)?;
    let r = batched_gemm(&unsqueeze(a, 0)?, &unsqueeze(b, 0)?)?;
    squeeze(&r, Some(0))
}

/// `torch.bmm(a, b)`: [B, M, K] x [B, K, N].
pub fn bmm(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    crate::release::released(super::matmul_work(a, b), || bmm_body(a, b))
}

fn bmm_body(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    meta::bmm(a, b)?;
    batched_gemm(a, b)
}

/// `torch.dot(a, b)` for 1-D tensors: a 0-dim result.
pub fn dot(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    crate::release::released(super::work(&[a, b]), || dot_body(a, b))
}

fn dot_body(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    meta::dot(a, b)?;
    let r = mm(&unsqueeze(a, 0)?, &unsqueeze(b, 1)?)?;
    reshape(&r, &[])
}

/// `torch.matmul(a, b)` with NumPy semantics: 1-D operands are promoted to
/// matrices and the added dimension removed again; batch dimensions broadcast.
pub fn matmul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    crate::release::released(super::matmul_work(a, b), || matmul_body(a, b))
}

fn matmul_body(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let (da, db) = (a.dim(), b.dim());
    let spec = meta::matmul_geometry(a, b)?;
    match (da, db) {
        (1, 1) => return dot(a, b),
        (2, 1) => return squeeze(&mm(a, &unsqueeze(b, 1)?)?, Some(-1)),
        (1, 2) => return squeeze(&mm(&unsqueeze(a, 0)?, b)?, Some(0)),
        (2, 2) => return mm(a, b),
        _ => {}
    }
    let a2 = if da == 1 { unsqueeze(a, 0)? } else { a.clone() };
    let b2 = if db == 1 { unsqueeze(b, 1)? } else { b.clone() };
    let (m, k, n) = (spec.m, spec.k, spec.n);
    let bn: usize = spec.batch.iter().product();
    let to_i = |v: &[usize]| v.iter().map(|&x| x as i64).collect::<Vec<i64>>();
    let mut ta = spec.batch.clone();
    ta.extend([m, k]);
    let mut tb = spec.batch.clone();
    tb.extend([k, n]);
    let a3 = reshape(&expand(&a2, &to_i(&ta))?, &[bn as i64, m as i64, k as i64])?;
    let b3 = reshape(&expand(&b2, &to_i(&tb))?, &[bn as i64, k as i64, n as i64])?;
    let r = batched_gemm(&a3, &b3)?;
    reshape(&r, &to_i(&spec.out.sizes))
}
