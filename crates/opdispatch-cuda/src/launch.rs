//! Loading the generated kernels into a device's context and launching them on its default
//! stream. A kernel is named by a [`KernelKey`]; its source ([`crate::codegen`]) is compiled by
//! NVRTC once per process, loaded once per device, and its function handle cached, so a launch
//! after the first costs one map lookup and `cuLaunchKernel`.

use std::collections::HashMap;
use std::ffi::{c_void, CString};
use std::sync::OnceLock;

use cudarc::driver::{result as cu, sys};
use parking_lot::Mutex;

use crate::codegen::{self, Binary, Reduce, Ty, Unary, REDUCE_THREADS};
use crate::driver::{bind, driver_error};
use crate::error::{CudaError, Result};

/// One generated kernel entry point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KernelKey {
    /// `op(a, b)` computing in `c` into `out`; `strided` picks the geometry entry.
    Binary {
        op: Binary,
        a: Ty,
        b: Ty,
        c: Ty,
        out: Ty,
        strided: bool,
    },
    Unary {
        op: Unary,
        a: Ty,
        c: Ty,
        out: Ty,
        strided: bool,
    },
    Fill {
        t: Ty,
        strided: bool,
    },
    Where {
        t: Ty,
    },
    Reduce {
        op: Reduce,
        a: Ty,
        acc: Ty,
        out: Ty,
    },
}

impl KernelKey {
    fn source(self) -> String {
        match self {
            KernelKey::Binary {
                op, a, b, c, out, ..
            } => codegen::binary_source(op, a, b, c, out),
            KernelKey::Unary { op, a, c, out, .. } => codegen::unary_source(op, a, c, out),
            KernelKey::Fill { t, .. } | KernelKey::Where { t } => codegen::fill_and_where_source(t),
            KernelKey::Reduce { op, a, acc, out } => codegen::reduce_source(op, a, acc, out),
        }
    }

    /// The entry point's name in the source.
    pub fn entry(self) -> String {
        let variant = |s: bool| if s { "_strided" } else { "_contig" };
        match self {
            KernelKey::Binary {
                op,
                a,
                b,
                c,
                out,
                strided,
            } => codegen::binary_name(op, a, b, c, out) + variant(strided),
            KernelKey::Unary {
                op,
                a,
                c,
                out,
                strided,
            } => codegen::unary_name(op, a, c, out) + variant(strided),
            KernelKey::Fill { t, strided } => codegen::fill_name(t) + variant(strided),
            KernelKey::Where { t } => codegen::where_name(t) + "_strided",
            KernelKey::Reduce { op, a, acc, out } => codegen::reduce_name(op, a, acc, out),
        }
    }
}

/// A loaded kernel's function handle.
#[derive(Debug, Clone, Copy)]
struct Function(sys::CUfunction);
// SAFETY: function handles are opaque driver tokens, usable from any thread whose current
// context is the one they were loaded into (`bind` makes it so before every launch).
unsafe impl Send for Function {}
// SAFETY: as above; shared read-only.
unsafe impl Sync for Function {}

#[derive(Debug, Clone, Copy)]
struct Module(sys::CUmodule);
// SAFETY: as for `Function`.
unsafe impl Send for Module {}

#[derive(Default)]
struct Loaded {
    functions: HashMap<(usize, KernelKey), Function>,
    /// Modules by device and source (one source holds several entry points).
    modules: HashMap<(usize, String), Module>,
}

fn loaded() -> &'static Mutex<Loaded> {
    static LOADED: OnceLock<Mutex<Loaded>> = OnceLock::new();
    LOADED.get_or_init(Default::default)
}

fn function(device: usize, key: KernelKey) -> Result<Function> {
    if let Some(f) = loaded().lock().functions.get(&(device, key)) {
        return Ok(*f);
    }
    // Compile without the lock (NVRTC takes milliseconds); the load is under it.
    let source = key.source();
    let ptx = crate::nvrtc::compile(&source)?;
    let mut l = loaded().lock();
    let module = match l.modules.get(&(device, source.clone())) {
        Some(m) => *m,
        None => {
            let image = CString::new(ptx.to_src())
                .map_err(|_| CudaError::Driver("PTX with a NUL byte".into()))?;
            // SAFETY: `image` is NUL-terminated PTX text; the context is current (`bind`).
            let m =
                unsafe { cu::module::load_data(image.as_ptr().cast()) }.map_err(driver_error)?;
            l.modules.insert((device, source), Module(m));
            Module(m)
        }
    };
    let name = CString::new(key.entry()).expect("kernel names have no NUL");
    // SAFETY: the module was loaded into this device's context and is never unloaded.
    let f = unsafe { cu::module::get_function(module.0, name) }.map_err(driver_error)?;
    l.functions.insert((device, key), Function(f));
    Ok(Function(f))
}

/// Threads per block of the pointwise kernels.
const THREADS: u32 = 256;
/// The most blocks a pointwise launch uses (the grid-stride loop covers the rest).
const MAX_BLOCKS: u64 = 1 << 18;

/// Launches pointwise kernel `key` over `n` elements on `device`'s default stream, with
/// `args` pointing at each kernel parameter's value in order.
///
/// # Safety
/// `args` must match the entry point's parameters (see [`crate::codegen`]) in number and
/// types, and every device pointer among them must address memory of `device` large enough for
/// the geometry passed.
pub unsafe fn launch_pointwise(
    device: usize,
    key: KernelKey,
    n: usize,
    args: &mut [*mut c_void],
) -> Result<()> {
    if n == 0 {
        return Ok(());
    }
    bind(device)?;
    let f = function(device, key)?;
    let blocks = (n as u64).div_ceil(u64::from(THREADS)).min(MAX_BLOCKS) as u32;
    // SAFETY: the caller vouches for the parameters; the function belongs to the current
    // context.
    unsafe {
        cu::launch_kernel(
            f.0,
            (blocks, 1, 1),
            (THREADS, 1, 1),
            0,
            cu::stream::null(),
            args,
        )
    }
    .map_err(driver_error)
}

/// Launches reduction kernel `key` over `outer` rows on `device` (one block per row, up to
/// the grid limit; the kernel loops over the rest).
///
/// # Safety
/// As [`launch_pointwise`], with the reduction parameters of [`codegen::reduce_source`].
pub unsafe fn launch_reduce(
    device: usize,
    key: KernelKey,
    outer: usize,
    args: &mut [*mut c_void],
) -> Result<()> {
    if outer == 0 {
        return Ok(());
    }
    bind(device)?;
    let f = function(device, key)?;
    let blocks = (outer as u64).min(MAX_BLOCKS) as u32;
    // SAFETY: as above.
    unsafe {
        cu::launch_kernel(
            f.0,
            (blocks, 1, 1),
            (REDUCE_THREADS, 1, 1),
            0,
            cu::stream::null(),
            args,
        )
    }
    .map_err(driver_error)
}
