//! A host-memory emulator of the CUDA driver and cuBLAS entry points opdispatch uses, loaded
//! in place of `libcuda.so` / `libcublas.so` (by `make cuda-emu-test`, through
//! `LD_LIBRARY_PATH`), so the CUDA backend's host side is tested on machines without a GPU.
//!
//! What is real and what is not:
//! - Memory: "device" memory is host memory; copies are `memcpy`; the allocator, storage,
//!   copies in every direction, strides/offsets and kernel parameter marshalling of opdispatch
//!   all run unchanged.
//! - Kernels: opdispatch compiles every kernel with the real NVRTC (PyPI's wheel) and loads
//!   the PTX here; `cuModuleGetFunction` checks the PTX defines the entry. The PTX is not
//!   executed: the launch runs a host implementation chosen by the kernel's name
//!   (`od_<op>_<type tags>_<variant>`, see `opdispatch_cuda::codegen`), reading the
//!   parameters as the CUDA C source declares them. So the emulator checks the host side and
//!   the naming/parameter contract, not the CUDA C bodies; those are checked by NVRTC (they
//!   compile) and on a GPU by `scripts/gpu_check.sh`.
//! - cuBLAS: `cublasGemmStridedBatchedEx` is a plain column-major triple loop.
//! - Streams: everything is synchronous.
//!
//! Every other entry point cudarc loads exists (src/stubs.rs, generated) and answers
//! "not supported".

// The entry points keep the C API's names, and each dereferences the pointers its caller
// passes under the CUDA API's contract (which is what the emulator stands in for).
#![allow(
    non_snake_case,
    clippy::missing_safety_doc,
    clippy::undocumented_unsafe_blocks,
    clippy::too_many_arguments
)]
#![allow(unsafe_op_in_unsafe_fn)]

use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_uint, c_void, CStr};
use std::sync::Mutex;

mod kernels;
pub mod stubs;

use kernels::Kernel;

const SUCCESS: c_int = 0;
const INVALID_VALUE: c_int = 1;
const OUT_OF_MEMORY: c_int = 2;
const NOT_FOUND: c_int = 500;

/// Live "device" allocations: address -> size.
static ALLOCATIONS: Mutex<Option<HashMap<u64, usize>>> = Mutex::new(None);

/// The emulated device count (`OPDISPATCH_CUDA_EMULATOR_DEVICES`, default 1).
fn devices() -> c_int {
    std::env::var("OPDISPATCH_CUDA_EMULATOR_DEVICES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
}

fn layout(size: usize) -> std::alloc::Layout {
    std::alloc::Layout::from_size_align(size.max(1), 256).expect("layout")
}

#[no_mangle]
pub unsafe extern "C" fn cuInit(_flags: c_uint) -> c_int {
    SUCCESS
}

#[no_mangle]
pub unsafe extern "C" fn cuDriverGetVersion(v: *mut c_int) -> c_int {
    *v = 13000;
    SUCCESS
}

#[no_mangle]
pub unsafe extern "C" fn cuDeviceGetCount(n: *mut c_int) -> c_int {
    *n = devices();
    SUCCESS
}

#[no_mangle]
pub unsafe extern "C" fn cuDeviceGet(dev: *mut c_int, ordinal: c_int) -> c_int {
    if ordinal < 0 || ordinal >= devices() {
        return 101; // CUDA_ERROR_INVALID_DEVICE
    }
    *dev = ordinal;
    SUCCESS
}

#[no_mangle]
pub unsafe extern "C" fn cuDevicePrimaryCtxRetain(ctx: *mut *mut c_void, dev: c_int) -> c_int {
    // A distinct non-null token per device.
    *ctx = (0x1000 + dev as usize) as *mut c_void;
    SUCCESS
}

#[no_mangle]
pub unsafe extern "C" fn cuCtxSetCurrent(_ctx: *mut c_void) -> c_int {
    SUCCESS
}

#[no_mangle]
pub unsafe extern "C" fn cuCtxSynchronize() -> c_int {
    SUCCESS
}

#[no_mangle]
pub unsafe extern "C" fn cuMemAlloc_v2(ptr: *mut u64, size: usize) -> c_int {
    let p = std::alloc::alloc(layout(size));
    if p.is_null() {
        return OUT_OF_MEMORY;
    }
    ALLOCATIONS
        .lock()
        .unwrap()
        .get_or_insert_with(HashMap::new)
        .insert(p as u64, size);
    *ptr = p as u64;
    SUCCESS
}

#[no_mangle]
pub unsafe extern "C" fn cuMemFree_v2(ptr: u64) -> c_int {
    let size = ALLOCATIONS
        .lock()
        .unwrap()
        .get_or_insert_with(HashMap::new)
        .remove(&ptr);
    match size {
        Some(s) => {
            std::alloc::dealloc(ptr as *mut u8, layout(s));
            SUCCESS
        }
        None => INVALID_VALUE,
    }
}

/// Whether `[ptr, ptr + n)` lies inside one live allocation (the emulator's memcheck).
fn inside(ptr: u64, n: usize) -> bool {
    let g = ALLOCATIONS.lock().unwrap();
    g.as_ref().is_some_and(|m| {
        m.iter()
            .any(|(&base, &size)| ptr >= base && ptr + n as u64 <= base + size as u64)
    })
}

pub(crate) fn check_range(ptr: u64, n: usize, what: &str) {
    assert!(
        n == 0 || inside(ptr, n),
        "cuda emulator: {what} touches {n} bytes at {ptr:#x}, outside every device allocation"
    );
}

#[no_mangle]
pub unsafe extern "C" fn cuMemsetD8Async(ptr: u64, v: u8, n: usize, _s: *mut c_void) -> c_int {
    check_range(ptr, n, "cuMemsetD8");
    std::ptr::write_bytes(ptr as *mut u8, v, n);
    SUCCESS
}

#[no_mangle]
pub unsafe extern "C" fn cuMemcpyHtoD_v2(dst: u64, src: *const c_void, n: usize) -> c_int {
    check_range(dst, n, "cuMemcpyHtoD");
    std::ptr::copy_nonoverlapping(src.cast::<u8>(), dst as *mut u8, n);
    SUCCESS
}

#[no_mangle]
pub unsafe extern "C" fn cuMemcpyDtoH_v2(dst: *mut c_void, src: u64, n: usize) -> c_int {
    check_range(src, n, "cuMemcpyDtoH");
    std::ptr::copy_nonoverlapping(src as *const u8, dst.cast::<u8>(), n);
    SUCCESS
}

#[no_mangle]
pub unsafe extern "C" fn cuMemcpyDtoDAsync_v2(
    dst: u64,
    src: u64,
    n: usize,
    _s: *mut c_void,
) -> c_int {
    check_range(src, n, "cuMemcpyDtoD (source)");
    check_range(dst, n, "cuMemcpyDtoD (destination)");
    std::ptr::copy(src as *const u8, dst as *mut u8, n);
    SUCCESS
}

/// A loaded module: its PTX text.
struct Module {
    ptx: String,
}

#[no_mangle]
pub unsafe extern "C" fn cuModuleLoadData(module: *mut *mut c_void, image: *const c_void) -> c_int {
    let ptx = CStr::from_ptr(image.cast::<c_char>())
        .to_string_lossy()
        .into_owned();
    if !ptx.contains(".entry") {
        return 218; // CUDA_ERROR_INVALID_PTX
    }
    *module = Box::into_raw(Box::new(Module { ptx })).cast();
    SUCCESS
}

#[no_mangle]
pub unsafe extern "C" fn cuModuleGetFunction(
    f: *mut *mut c_void,
    module: *mut c_void,
    name: *const c_char,
) -> c_int {
    let m = &*module.cast::<Module>();
    let name = CStr::from_ptr(name).to_string_lossy().into_owned();
    // The PTX must define the entry (NVRTC compiled exactly this source).
    if !m.ptx.contains(&format!(".entry {name}(")) {
        return NOT_FOUND;
    }
    match Kernel::parse(&name) {
        Some(k) => {
            *f = Box::into_raw(Box::new(k)).cast();
            SUCCESS
        }
        None => NOT_FOUND,
    }
}

#[no_mangle]
pub unsafe extern "C" fn cuLaunchKernel(
    f: *mut c_void,
    _gx: c_uint,
    _gy: c_uint,
    _gz: c_uint,
    _bx: c_uint,
    _by: c_uint,
    _bz: c_uint,
    _shared: c_uint,
    _stream: *mut c_void,
    params: *mut *mut c_void,
    _extra: *mut *mut c_void,
) -> c_int {
    let k = &*f.cast::<Kernel>();
    k.run(params);
    SUCCESS
}

static NAMES: &[(c_int, &CStr, &CStr)] = &[
    (0, c"CUDA_SUCCESS", c"no error"),
    (1, c"CUDA_ERROR_INVALID_VALUE", c"invalid argument"),
    (2, c"CUDA_ERROR_OUT_OF_MEMORY", c"out of memory"),
    (101, c"CUDA_ERROR_INVALID_DEVICE", c"invalid device ordinal"),
    (
        218,
        c"CUDA_ERROR_INVALID_PTX",
        c"a PTX JIT compilation failed",
    ),
    (500, c"CUDA_ERROR_NOT_FOUND", c"named symbol not found"),
    (801, c"CUDA_ERROR_NOT_SUPPORTED", c"operation not supported"),
];

#[no_mangle]
pub unsafe extern "C" fn cuGetErrorName(e: c_int, s: *mut *const c_char) -> c_int {
    match NAMES.iter().find(|n| n.0 == e) {
        Some(n) => {
            *s = n.1.as_ptr();
            SUCCESS
        }
        None => INVALID_VALUE,
    }
}

#[no_mangle]
pub unsafe extern "C" fn cuGetErrorString(e: c_int, s: *mut *const c_char) -> c_int {
    match NAMES.iter().find(|n| n.0 == e) {
        Some(n) => {
            *s = n.2.as_ptr();
            SUCCESS
        }
        None => INVALID_VALUE,
    }
}

// ---- cuBLAS ----

#[no_mangle]
pub unsafe extern "C" fn cublasCreate_v2(h: *mut *mut c_void) -> c_int {
    *h = 0x2000 as *mut c_void;
    SUCCESS
}

#[no_mangle]
pub unsafe extern "C" fn cublasSetStream_v2(_h: *mut c_void, _s: *mut c_void) -> c_int {
    SUCCESS
}

/// `cudaDataType` codes the emulator's gemm handles.
const R_32F: c_int = 0;
const R_64F: c_int = 1;
const R_16BF: c_int = 14;

unsafe fn read_elem(t: c_int, p: u64, i: i64) -> f64 {
    match t {
        R_32F => f64::from(*(p as *const f32).offset(i as isize)),
        R_64F => *(p as *const f64).offset(i as isize),
        _ => f64::from(kernels::bf16_to_f32(*(p as *const u16).offset(i as isize))),
    }
}

unsafe fn write_elem(t: c_int, p: u64, i: i64, v: f64) {
    match t {
        R_32F => *(p as *mut f32).offset(i as isize) = v as f32,
        R_64F => *(p as *mut f64).offset(i as isize) = v,
        _ => *(p as *mut u16).offset(i as isize) = kernels::f32_to_bf16(v as f32),
    }
}

#[no_mangle]
pub unsafe extern "C" fn cublasGemmStridedBatchedEx(
    _h: *mut c_void,
    transa: c_int,
    transb: c_int,
    m: c_int,
    n: c_int,
    k: c_int,
    alpha: *const c_void,
    a: *const c_void,
    atype: c_int,
    lda: c_int,
    stride_a: i64,
    b: *const c_void,
    btype: c_int,
    ldb: c_int,
    stride_b: i64,
    beta: *const c_void,
    c: *mut c_void,
    ctype: c_int,
    ldc: c_int,
    stride_c: i64,
    batch: c_int,
    _compute: c_int,
    _algo: c_int,
) -> c_int {
    if atype != btype || atype != ctype || ![R_32F, R_64F, R_16BF].contains(&atype) {
        return 15; // CUBLAS_STATUS_NOT_SUPPORTED
    }
    let (al, be) = if atype == R_64F {
        (*alpha.cast::<f64>(), *beta.cast::<f64>())
    } else {
        (
            f64::from(*alpha.cast::<f32>()),
            f64::from(*beta.cast::<f32>()),
        )
    };
    let (m, n, k) = (i64::from(m), i64::from(n), i64::from(k));
    let (lda, ldb, ldc) = (i64::from(lda), i64::from(ldb), i64::from(ldc));
    // Column-major: op(A) is m x k, op(B) k x n, C m x n.
    let at = |i: i64, p: i64| {
        if transa == 0 {
            i + p * lda
        } else {
            p + i * lda
        }
    };
    let bt = |p: i64, j: i64| {
        if transb == 0 {
            p + j * ldb
        } else {
            j + p * ldb
        }
    };
    for bi in 0..i64::from(batch) {
        let (pa, pb, pc) = (
            a as u64 + (bi * stride_a) as u64 * elem_size(atype),
            b as u64 + (bi * stride_b) as u64 * elem_size(btype),
            c as u64 + (bi * stride_c) as u64 * elem_size(ctype),
        );
        for j in 0..n {
            for i in 0..m {
                let mut acc = 0f64;
                for p in 0..k {
                    acc += read_elem(atype, pa, at(i, p)) * read_elem(btype, pb, bt(p, j));
                }
                let idx = i + j * ldc;
                let old = if be == 0.0 {
                    0.0
                } else {
                    read_elem(ctype, pc, idx)
                };
                write_elem(ctype, pc, idx, al * acc + be * old);
            }
        }
    }
    SUCCESS
}

fn elem_size(t: c_int) -> u64 {
    match t {
        R_64F => 8,
        R_32F => 4,
        _ => 2,
    }
}

static BLAS_NAMES: &[(c_int, &CStr)] = &[
    (0, c"CUBLAS_STATUS_SUCCESS"),
    (15, c"CUBLAS_STATUS_NOT_SUPPORTED"),
];

#[no_mangle]
pub unsafe extern "C" fn cublasGetStatusName(s: c_int) -> *const c_char {
    BLAS_NAMES
        .iter()
        .find(|n| n.0 == s)
        .map_or(c"CUBLAS_STATUS_UNKNOWN".as_ptr(), |n| n.1.as_ptr())
}

#[no_mangle]
pub unsafe extern "C" fn cublasGetStatusString(s: c_int) -> *const c_char {
    cublasGetStatusName(s)
}
