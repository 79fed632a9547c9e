//! `copy_` with a CUDA side, and reading device data back to the host.

use opdispatch_cuda::memory;

use super::{cuda_err, index, ptr};
use crate::error::{Result, TensorError};
use crate::ops;
use crate::storage::WordBuf;
use crate::{Device, Tensor};

/// Whether `src` can be copied byte for byte into `dst` (same dtype, sizes, both contiguous).
fn bytewise(dst: &Tensor, src: &Tensor) -> bool {
    dst.dtype() == src.dtype()
        && dst.sizes() == src.sizes()
        && dst.is_contiguous()
        && src.is_contiguous()
}

/// `dst.copy_(src)` where either side is on a CUDA device: broadcasting `src`, converting its
/// dtype, through any strides. Host-to-device and device-to-host copies are ordered after the
/// work queued on the device before them (see [`opdispatch_cuda::memory`]).
pub fn copy_(dst: &Tensor, src: &Tensor) -> Result<()> {
    ops::meta::copy_(dst, src)?;
    if dst.numel() == 0 {
        return Ok(());
    }
    match (dst.device(), src.device()) {
        (Device::Cuda(_), Device::Cuda(_)) if dst.device() == src.device() => {
            if bytewise(dst, src) {
                let n = dst.numel() * dst.element_size();
                // SAFETY: both tensors are contiguous views of `n` bytes of live storage on
                // this device.
                unsafe { memory::copy_on_device(index(dst)?, ptr(dst)?, ptr(src)?, n) }
                    .map_err(cuda_err)
            } else {
                super::pointwise::cast_into(dst, src)
            }
        }
        (Device::Cuda(_), Device::Cuda(_)) => {
            // Between two devices: through the host.
            let host = to_host(src)?;
            copy_(dst, &host)
        }
        (Device::Cuda(_), Device::Cpu) => {
            // A contiguous host buffer in dst's dtype and shape, then one upload.
            let staged = if bytewise(dst, src) {
                src.clone()
            } else {
                let s = Tensor::empty(dst.sizes(), dst.dtype(), Device::Cpu)?;
                ops::copy_(&s, src)?;
                s
            };
            let target = if dst.is_contiguous() {
                dst.clone()
            } else {
                Tensor::empty(dst.sizes(), dst.dtype(), dst.device())?
            };
            {
                let r = staged.storage_ref().read()?;
                let isz = staged.element_size();
                let start = staged.storage_offset() * isz;
                let bytes = &r[start..start + staged.numel() * isz];
                // SAFETY: `target` is a contiguous view of at least `bytes.len()` bytes of
                // device storage.
                unsafe { memory::copy_to_device(index(&target)?, ptr(&target)?, bytes) }
                    .map_err(cuda_err)?;
            }
            if !target.is_alias_of(dst) {
                super::pointwise::cast_into(dst, &target)?;
            }
            Ok(())
        }
        (Device::Cpu, Device::Cuda(_)) => {
            let host = to_host(src)?;
            ops::copy_(dst, &host)
        }
        (d, s) => Err(TensorError::Device(format!(
            "copy_ from {s} to {d} is not handled by the CUDA backend"
        ))),
    }
}

/// A contiguous CPU copy of CUDA tensor `t` (same dtype and sizes), read once the work queued
/// before it has finished.
pub fn to_host(t: &Tensor) -> Result<Tensor> {
    let src = if t.is_contiguous() {
        t.clone()
    } else {
        super::shape::clone(t)?
    };
    let n = src.numel() * src.element_size();
    let mut buf = WordBuf::uninit(n)?;
    // SAFETY: `buf` has room for `n` bytes (rounded up to whole words, which the copy below
    // fills except for the tail zeroed first).
    let dst = unsafe {
        let p = buf.data();
        std::ptr::write_bytes(p, 0, n.div_ceil(8) * 8);
        std::slice::from_raw_parts_mut(p, n)
    };
    // SAFETY: `src` is a contiguous view of `n` bytes of device storage.
    unsafe { memory::copy_to_host(index(&src)?, dst, ptr(&src)?) }.map_err(cuda_err)?;
    // SAFETY: every word was written (zeroed, then the copy).
    unsafe { buf.assume_init(n) };
    let storage = buf.into_storage(n);
    Ok(Tensor::from_storage_contiguous(
        storage,
        src.sizes(),
        src.dtype(),
    ))
}
