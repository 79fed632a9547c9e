//! The CUDA loops: what the aten crate's CUDA block registers, as the sibling [`crate::ops`]
//! holds the CPU loops. Each operator asks the same meta function as CPU and Meta
//! ([`crate::ops::meta`]: checks, promotion, broadcasting, the common device), allocates its
//! output on the device, and launches a generated kernel ([`opdispatch_cuda::launch`]) or
//! cuBLAS on the device's default stream.
//!
//! - [`copy`]: `copy_` in every direction (host<->device, device<->device), `to_host`.
//! - [`pointwise`]: binary, unary, cast, fill and where kernels over contiguous or strided,
//!   broadcast operands.
//! - [`reduce`]: sum/mean and max/min/argmax/argmin, over dims or all.
//! - [`linalg`]: mm/bmm/dot/mv through cuBLAS.
//! - [`shape`]: clone, contiguous, cat and stack (views need no kernel: they are the
//!   device-generic kernels of the aten crate).

mod copy;
mod linalg;
mod pointwise;
mod reduce;
mod shape;

pub use copy::{copy_, to_host};
pub use linalg::{bmm, dot, matmul, mm, mv};
pub use pointwise::{
    binary, binary_, binary_scalar, fill_, tanh_backward, unary, where_, where_scalar,
};
pub use reduce::{arg_extreme, extreme, extreme_dim, mean, sum};
pub use shape::{cat, clone, contiguous, stack};

use opdispatch_cuda::codegen::{Geometry, Ty, MAX_DIMS};
use opdispatch_cuda::CudaError;

use crate::error::{Result, TensorError};
use crate::{Device, ScalarType, Tensor};

/// A CUDA runtime error as the tensor runtime reports it (PyTorch's text where it has one).
pub(crate) fn cuda_err(e: CudaError) -> TensorError {
    TensorError::Device(e.to_string())
}

/// The kernel element type of `dtype` (`op` names the operator for the error).
pub(crate) fn ty(dtype: ScalarType, op: &str) -> Result<Ty> {
    Ok(match dtype {
        ScalarType::Bool => Ty::Bool,
        ScalarType::UInt8 => Ty::U8,
        ScalarType::Int8 => Ty::I8,
        ScalarType::Int16 => Ty::I16,
        ScalarType::Int32 => Ty::I32,
        ScalarType::Int64 => Ty::I64,
        ScalarType::BFloat16 => Ty::BF16,
        ScalarType::Float32 => Ty::F32,
        ScalarType::Float64 => Ty::F64,
        ScalarType::Float16 | ScalarType::ComplexFloat => {
            return Err(TensorError::unsupported(op, dtype))
        }
    })
}

/// The device index of a CUDA tensor.
pub(crate) fn index(t: &Tensor) -> Result<usize> {
    match t.device() {
        Device::Cuda(i) => Ok(usize::from(i)),
        d => Err(TensorError::Device(format!(
            "expected a CUDA tensor, got one on {d}"
        ))),
    }
}

/// The device address of `t`'s first element.
pub(crate) fn ptr(t: &Tensor) -> Result<u64> {
    let base = t
        .storage_ref()
        .device_ptr()
        .ok_or(TensorError::NoData(t.device()))?;
    Ok(base + (t.storage_offset() * t.element_size()) as u64)
}

/// The strided-kernel geometry of `N` operands over `sizes` (output first), each with its own
/// strides (broadcast operands have stride 0) and offset within the pointer passed.
/// Size-1 dimensions are dropped and neighbouring dimensions that are contiguous in every
/// operand merged, so most shapes fit [`MAX_DIMS`].
pub(crate) fn geometry<const N: usize>(
    sizes: &[usize],
    strides: [&[usize]; N],
) -> Result<Geometry<N>> {
    // Collapse: walk dims from the last, merging d into the previous kept one when
    // stride[d-1] == stride[d] * size[d] for every operand.
    let mut dims: Vec<(usize, [usize; N])> = Vec::with_capacity(sizes.len());
    for d in (0..sizes.len()).rev() {
        if sizes[d] == 1 {
            continue;
        }
        let st: [usize; N] = std::array::from_fn(|k| strides[k][d]);
        if let Some((inner_size, inner_st)) = dims.last_mut() {
            if (0..N).all(|k| st[k] == inner_st[k] * *inner_size) {
                *inner_size *= sizes[d];
                continue;
            }
        }
        dims.push((sizes[d], st));
    }
    dims.reverse();
    if dims.len() > MAX_DIMS {
        return Err(TensorError::other(format!(
            "CUDA kernels index at most {MAX_DIMS} dimensions after merging, got {}",
            dims.len()
        )));
    }
    let mut g = Geometry {
        ndim: dims.len() as i64,
        sizes: [1; MAX_DIMS],
        strides: [[0; MAX_DIMS]; N],
        offsets: [0; N],
    };
    for (i, (s, st)) in dims.iter().enumerate() {
        g.sizes[i] = *s as i64;
        for (row, &v) in g.strides.iter_mut().zip(st) {
            row[i] = v as i64;
        }
    }
    Ok(g)
}

/// `t` on CUDA device `device`: itself, or (a CPU zero-dim tensor, which TensorIterator lets
/// mix with any device) a copy there.
pub(crate) fn on_device(t: &Tensor, device: Device) -> Result<Tensor> {
    if t.device() == device {
        return Ok(t.clone());
    }
    let out = Tensor::empty(t.sizes(), t.dtype(), device)?;
    copy_(&out, t)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_merges_contiguous_dims_and_drops_size_one() {
        // [2, 3, 4] contiguous out, a broadcast over dim 1, b transposed-ish.
        let g = geometry::<2>(&[2, 3, 4], [&[12, 4, 1], &[12, 4, 1]]).unwrap();
        assert_eq!((g.ndim, g.sizes[0]), (1, 24));
        assert_eq!(g.strides[0][0], 1);
        let g = geometry::<2>(&[2, 1, 4], [&[4, 4, 1], &[1, 9, 2]]).unwrap();
        assert_eq!(g.ndim, 2);
        assert_eq!(&g.sizes[..2], &[2, 4]);
        assert_eq!((g.strides[0][0], g.strides[0][1]), (4, 1));
        assert_eq!((g.strides[1][0], g.strides[1][1]), (1, 2));
        let g = geometry::<2>(&[3, 5], [&[5, 1], &[0, 1]]).unwrap();
        assert_eq!(g.ndim, 2);
        let g = geometry::<1>(&[], [&[]]).unwrap();
        assert_eq!(g.ndim, 0);
        let many = [2usize; 9];
        let strides: Vec<usize> = (0..9).map(|d| 1 << (2 * d)).collect();
        assert!(geometry::<1>(&many, [&strides]).is_err());
    }

    #[test]
    fn kernel_types_cover_the_supported_dtypes() {
        assert_eq!(ty(ScalarType::BFloat16, "x").unwrap(), Ty::BF16);
        assert!(matches!(
            ty(ScalarType::Float16, "add_cuda"),
            Err(TensorError::NotImplementedForDtype { .. })
        ));
    }
}
