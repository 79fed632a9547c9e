//! Run-time compilation of the generated kernels with NVRTC, found at run time like the
//! driver (the `nvidia-cuda-nvrtc` wheel or a toolkit provides `libnvrtc.so`). Each source is
//! compiled once per process; the PTX is loaded into a device's context by the launcher.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

use crate::error::{CudaError, Result};

/// Whether `libnvrtc` can be loaded on this machine.
pub fn is_available() -> bool {
    static PRESENT: OnceLock<bool> = OnceLock::new();
    *PRESENT.get_or_init(|| {
        // SAFETY: only probes whether the shared library can be opened (with every symbol the
        // bindings load: a library of another major version panics inside cudarc, caught here).
        crate::driver::probe(|| unsafe { cudarc::nvrtc::sys::is_culib_present() }).unwrap_or(false)
    })
}

/// PTX of `source`, compiled on first use and cached by source text.
pub fn compile(source: &str) -> Result<Arc<cudarc::nvrtc::Ptx>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<cudarc::nvrtc::Ptx>>>> = OnceLock::new();
    if !is_available() {
        return Err(CudaError::Driver(
            "NVRTC (libnvrtc.so) was not found: install the nvidia-cuda-nvrtc package or a CUDA toolkit".into(),
        ));
    }
    let cache = CACHE.get_or_init(Default::default);
    if let Some(p) = cache.lock().get(source) {
        return Ok(p.clone());
    }
    let ptx = cudarc::nvrtc::compile_ptx(source)
        .map_err(|e| CudaError::Driver(format!("NVRTC compilation failed: {e:?}")))?;
    let ptx = Arc::new(ptx);
    cache.lock().insert(source.to_owned(), ptx.clone());
    Ok(ptx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codegen::{self, Binary, Reduce, Ty, Unary};

    /// Every generated kernel compiles to PTX (NVRTC needs no GPU). Skipped where libnvrtc is
    /// absent; `make cuda-codegen-test` provides it from PyPI's nvidia-cuda-nvrtc wheel.
    #[test]
    fn every_generated_kernel_compiles_with_nvrtc() {
        if !is_available() {
            // `make cuda-codegen-test` sets this: there, a missing library is a failure.
            assert!(
                std::env::var_os("OPDISPATCH_REQUIRE_NVRTC").is_none(),
                "libnvrtc.so not found on LD_LIBRARY_PATH"
            );
            eprintln!("skipped: libnvrtc.so not found");
            return;
        }
        let mut n = 0;
        let types = [Ty::F32, Ty::F64, Ty::I64, Ty::I32, Ty::BF16, Ty::U8];
        for op in Binary::ALL {
            for c in types {
                if op == Binary::Div && !c.is_float() {
                    continue;
                }
                let out = if op.is_comparison() { Ty::Bool } else { c };
                let src = codegen::binary_source(op, c, Ty::I64, c, out);
                let ptx = compile(&src).unwrap_or_else(|e| panic!("{op:?} {c:?}: {e}\n{src}"));
                let name = codegen::binary_name(op, c, Ty::I64, c, out);
                assert!(ptx.to_src().contains(&format!("{name}_strided")), "{name}");
                n += 1;
            }
        }
        for op in Unary::ALL {
            for c in [Ty::F32, Ty::F64, Ty::BF16].into_iter().chain(
                (!op.needs_float())
                    .then_some([Ty::I64, Ty::U8])
                    .into_iter()
                    .flatten(),
            ) {
                let out = if op == Unary::Cast { Ty::Bool } else { c };
                let src = codegen::unary_source(op, c, c, out);
                compile(&src).unwrap_or_else(|e| panic!("{op:?} {c:?}: {e}\n{src}"));
                n += 1;
            }
        }
        for t in Ty::ALL {
            compile(&codegen::fill_and_where_source(t))
                .unwrap_or_else(|e| panic!("fill/where {t:?}: {e}"));
            n += 1;
        }
        for op in [Reduce::Sum, Reduce::Max, Reduce::Min] {
            for (a, acc) in [
                (Ty::F32, Ty::F32),
                (Ty::BF16, Ty::F32),
                (Ty::I64, Ty::I64),
                (Ty::Bool, Ty::I64),
            ] {
                let out = if op == Reduce::Sum { acc } else { a };
                let src = codegen::reduce_source(op, a, acc, out);
                compile(&src).unwrap_or_else(|e| panic!("{op:?} {a:?}: {e}\n{src}"));
                n += 1;
            }
        }
        eprintln!("{n} kernel sources compiled");
    }
}
