//! Tensor operations as plain Rust functions on CPU tensors: each asks its meta
//! function ([`meta`]: argument checks and output geometry, the part a Meta tensor
//! gets) about its output, then runs the CPU loop. No function here branches on the
//! device; the aten crate registers these loops for CPU and the meta functions for Meta. Contiguous same-dtype `f32`/`f64` inputs take tight-loop fast paths;
//! everything else goes through a strided, dtype-generic path that converts
//! elements into a computation domain (`bool`, `i64`, `f64`, `Complex<f64>`).

mod cascade;
mod elementwise;
mod extreme;
mod index_more;
mod linalg;
pub mod meta;
mod meta_more;
mod pointwise_more;
pub mod random;
mod reduce;
mod reduce_more;
mod select_f32;
mod shape;

pub use elementwise::*;
pub use index_more::*;
pub use linalg::*;
pub use pointwise_more::*;
pub use reduce::*;
pub use reduce_more::*;
pub use shape::*;

use crate::error::{Result, TensorError};
use crate::{Device, OperandKind, ResultTypeState, Scalar, ScalarType, Tensor};

/// Normalize a possibly negative dimension for a tensor of rank `ndim`
/// (ATen's `maybe_wrap_dim`; rank 0 accepts -1 and 0).
pub fn wrap_dim(dim: i64, ndim: usize) -> Result<usize> {
    let n = ndim.max(1) as i64;
    if dim < -n || dim >= n {
        return Err(TensorError::DimOutOfRange {
            min: -n,
            max: n - 1,
            got: dim,
        });
    }
    Ok(if dim < 0 {
        (dim + n) as usize
    } else {
        dim as usize
    })
}

/// Broadcast two shapes (numpy rules), with PyTorch's error message.
pub fn broadcast_shapes(a: &[usize], b: &[usize]) -> Result<crate::Dims> {
    if a == b {
        return Ok(crate::Dims::from_slice(a));
    }
    let n = a.len().max(b.len());
    let mut out = crate::Dims::from_elem(0, n);
    for i in 0..n {
        // Align from the right.
        let da = if i + a.len() >= n {
            a[i + a.len() - n]
        } else {
            1
        };
        let db = if i + b.len() >= n {
            b[i + b.len() - n]
        } else {
            1
        };
        out[i] = if da == db || db == 1 {
            da
        } else if da == 1 {
            db
        } else {
            return Err(TensorError::BroadcastMismatch {
                a: da,
                b: db,
                dim: i,
            });
        };
    }
    Ok(out)
}

/// Strides that read `t` as if expanded to `shape` (stride 0 on broadcast dims).
/// `shape` must be a valid broadcast target of `t.sizes()`.
pub(crate) fn broadcast_strides(t: &Tensor, shape: &[usize]) -> Vec<usize> {
    let off = shape.len() - t.dim();
    (0..shape.len())
        .map(|i| {
            if i < off || t.sizes()[i - off] == 1 && shape[i] != 1 {
                0
            } else {
                t.strides()[i - off]
            }
        })
        .collect()
}

/// How a tensor takes part in `result_type`.
pub(crate) fn operand_kind(t: &Tensor) -> OperandKind {
    if t.is_wrapped_number() {
        OperandKind::WrappedNumber
    } else if t.dim() == 0 {
        OperandKind::ZeroDim
    } else {
        OperandKind::Dimensioned
    }
}

/// `torch.result_type` over tensors (wrapped numbers count as scalars).
pub fn result_type(tensors: &[&Tensor]) -> Result<ScalarType> {
    // Tensors of one dtype promote to it whatever their dimensions (the categories only
    // decide between different dtypes): the usual case skips the state machine. Wrapped
    // numbers are excluded, since a wrapped float takes the default dtype.
    if let [first, rest @ ..] = tensors {
        let dt = first.dtype();
        if !first.is_wrapped_number()
            && rest
                .iter()
                .all(|t| t.dtype() == dt && !t.is_wrapped_number())
        {
            return Ok(dt);
        }
    }
    let mut st = ResultTypeState::new();
    for t in tensors {
        st.update(t.dtype(), operand_kind(t))?;
    }
    Ok(st.result()?.unwrap_or(crate::DEFAULT_DTYPE))
}

/// `torch.result_type(tensor, scalar)`.
pub fn result_type_scalar(t: &Tensor, s: Scalar) -> Result<ScalarType> {
    let mut st = ResultTypeState::new();
    st.update(t.dtype(), operand_kind(t))?;
    st.update_scalar(s)?;
    Ok(st.result()?.expect("two operands"))
}

/// The device an op over `tensors` runs on. CPU zero-dim tensors (and wrapped
/// numbers) may mix with any device, as in PyTorch.
pub(crate) fn common_device(tensors: &[&Tensor]) -> Result<Device> {
    let mut dev: Option<Device> = None;
    for t in tensors {
        let d = t.device();
        if d == Device::Cpu && t.dim() == 0 {
            continue;
        }
        match dev {
            None => dev = Some(d),
            Some(prev) if prev != d => {
                return Err(TensorError::Device(format!(
                    "Expected all tensors to be on the same device, but found at least two devices, {prev} and {d}!"
                )))
            }
            _ => {}
        }
    }
    Ok(dev.unwrap_or(Device::Cpu))
}

/// Elements a computation over `tensors` touches, for [`crate::release::released`]: the largest
/// operand (meta tensors have no data, so no work).
pub(crate) fn work<T: std::borrow::Borrow<Tensor>>(tensors: &[T]) -> usize {
    tensors
        .iter()
        .map(|t| {
            let t = t.borrow();
            if t.is_meta() {
                0
            } else {
                t.numel()
            }
        })
        .max()
        .unwrap_or(0)
}

/// Multiply-adds of a matrix product, roughly: `a`'s elements times `b`'s last dimension.
pub(crate) fn matmul_work(a: &Tensor, b: &Tensor) -> usize {
    work(&[a]).saturating_mul(b.sizes().last().copied().unwrap_or(1))
}
