//! Matrix products through cuBLAS (found at run time like the driver), one handle per device
//! bound to its default stream, as PyTorch's `at::cuda::blas` calls it: `cublasGemmStridedBatchedEx`
//! with float32 accumulation for float32 and bfloat16 (no TF32, PyTorch's default) and float64
//! for float64.

use std::ffi::c_void;
use std::sync::OnceLock;

use cudarc::cublas::sys as blas;

use crate::codegen::Ty;
use crate::driver::{bind, probe};
use crate::error::{CudaError, Result};

/// One row-major operand of a product: `[rows, cols]` per batch entry, at `ptr`, either stored
/// row-major with row stride `ld` (`trans == false`) or column-major with column stride `ld`
/// (`trans == true`, a transposed view), batch entries `batch_stride` elements apart.
#[derive(Debug, Clone, Copy)]
pub struct Operand {
    pub ptr: u64,
    pub ld: i64,
    pub batch_stride: i64,
    pub trans: bool,
}

#[derive(Debug, Clone, Copy)]
struct Handle(blas::cublasHandle_t);
// SAFETY: a cuBLAS handle may be used from any thread, one call at a time; calls go through
// the mutex below.
unsafe impl Send for Handle {}

/// Whether libcublas can be loaded with every symbol the bindings need.
pub fn is_available() -> bool {
    static PRESENT: OnceLock<bool> = OnceLock::new();
    // SAFETY: only probes whether the shared library can be opened.
    *PRESENT.get_or_init(|| probe(|| unsafe { blas::is_culib_present() }).unwrap_or(false))
}

fn blas_error(e: blas::cublasStatus_t) -> CudaError {
    CudaError::Driver(format!("cuBLAS error: {e:?}"))
}

fn handle(device: usize) -> Result<&'static parking_lot::Mutex<Handle>> {
    const MAX: usize = 64;
    static HANDLES: [OnceLock<parking_lot::Mutex<Handle>>; MAX] = [const { OnceLock::new() }; MAX];
    let cell = HANDLES.get(device).ok_or(CudaError::InvalidDevice {
        index: device,
        count: MAX,
    })?;
    if let Some(h) = cell.get() {
        return Ok(h);
    }
    if !is_available() {
        return Err(CudaError::Driver(
            "cuBLAS (libcublas.so) was not found: install the nvidia-cublas package or a CUDA toolkit".into(),
        ));
    }
    bind(device)?;
    let mut h = std::ptr::null_mut();
    // SAFETY: `h` receives a fresh handle for the current context; it lives for the process.
    unsafe { blas::cublasCreate_v2(&mut h) }
        .result()
        .map_err(|e| blas_error(e.0))?;
    // SAFETY: the NULL stream is the device's default stream.
    unsafe { blas::cublasSetStream_v2(h, std::ptr::null_mut()) }
        .result()
        .map_err(|e| blas_error(e.0))?;
    Ok(cell.get_or_init(|| parking_lot::Mutex::new(Handle(h))))
}

fn data_type(t: Ty) -> Result<(blas::cudaDataType, blas::cublasComputeType_t)> {
    use blas::cublasComputeType_t as C;
    use blas::cudaDataType as D;
    Ok(match t {
        Ty::F32 => (D::CUDA_R_32F, C::CUBLAS_COMPUTE_32F),
        Ty::F64 => (D::CUDA_R_64F, C::CUBLAS_COMPUTE_64F),
        Ty::BF16 => (D::CUDA_R_16BF, C::CUBLAS_COMPUTE_32F),
        other => {
            return Err(CudaError::Driver(format!(
                "cuBLAS has no matrix product for {other:?}"
            )))
        }
    })
}

/// `c[i] = a[i] @ b[i]` for `batch` entries: `a` is `[m, k]`, `b` `[k, n]`, `c` a contiguous
/// row-major `[m, n]` (batch stride `m * n`), all of element type `t`.
///
/// # Safety
/// Every pointer must address device memory of `device` holding the geometry described.
#[allow(clippy::too_many_arguments)]
pub unsafe fn gemm(
    device: usize,
    t: Ty,
    m: usize,
    n: usize,
    k: usize,
    a: Operand,
    b: Operand,
    c: u64,
    batch: usize,
) -> Result<()> {
    if m == 0 || n == 0 || batch == 0 {
        return Ok(());
    }
    let (dt, compute) = data_type(t)?;
    let h = handle(device)?.lock();
    bind(device)?;
    let int = |v: usize| {
        i32::try_from(v).map_err(|_| CudaError::Driver("matrix dimension exceeds 2^31".into()))
    };
    let (m, n, k, batch) = (int(m)?, int(n)?, int(k)?, int(batch)?);
    let op = |tr: bool| {
        if tr {
            blas::cublasOperation_t::CUBLAS_OP_T
        } else {
            blas::cublasOperation_t::CUBLAS_OP_N
        }
    };
    let (one32, zero32, one64, zero64) = (1f32, 0f32, 1f64, 0f64);
    let (alpha, beta): (*const c_void, *const c_void) = if t == Ty::F64 {
        (
            std::ptr::addr_of!(one64).cast(),
            std::ptr::addr_of!(zero64).cast(),
        )
    } else {
        (
            std::ptr::addr_of!(one32).cast(),
            std::ptr::addr_of!(zero32).cast(),
        )
    };
    // Row-major C = A B is column-major C^T = B^T A^T: swap the operands and m with n.
    // SAFETY: the caller vouches for the pointers and geometry; the handle is locked.
    unsafe {
        blas::cublasGemmStridedBatchedEx(
            h.0,
            op(b.trans),
            op(a.trans),
            n,
            m,
            k,
            alpha,
            b.ptr as *const c_void,
            dt,
            int(b.ld as usize)?,
            b.batch_stride,
            a.ptr as *const c_void,
            dt,
            int(a.ld as usize)?,
            a.batch_stride,
            beta,
            c as *mut c_void,
            dt,
            n,
            i64::from(m) * i64::from(n),
            batch,
            compute,
            blas::cublasGemmAlgo_t::CUBLAS_GEMM_DFALT,
        )
    }
    .result()
    .map_err(|e| blas_error(e.0))
}

#[cfg(test)]
mod tests {
    /// With `OPDISPATCH_REQUIRE_CUBLAS=1` and a real `libcublas.so.13` on `LD_LIBRARY_PATH`
    /// (torch's nvidia-cublas wheel, say), the bindings find every symbol they load: the check
    /// that the CUDA-13 bindings match the library a GPU machine has. Skipped otherwise.
    #[test]
    fn cublas_loads_with_every_symbol_when_present() {
        if std::env::var_os("OPDISPATCH_REQUIRE_CUBLAS").is_none() {
            eprintln!("skipped: OPDISPATCH_REQUIRE_CUBLAS not set");
            return;
        }
        assert!(
            super::is_available(),
            "libcublas.so not loadable with every symbol"
        );
    }
}
