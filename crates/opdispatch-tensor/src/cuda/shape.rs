//! Copies that make new CUDA tensors: clone, contiguous, cat and stack.

use super::copy_;
use crate::error::Result;
use crate::ops::{self, meta};
use crate::Tensor;

/// `t.clone()`: a contiguous copy with fresh device storage.
pub fn clone(t: &Tensor) -> Result<Tensor> {
    let out = Tensor::empty(t.sizes(), t.dtype(), t.device())?;
    copy_(&out, t)?;
    Ok(out)
}

/// `t.contiguous()`: the same handle when already contiguous.
pub fn contiguous(t: &Tensor) -> Result<Tensor> {
    if t.is_contiguous() {
        Ok(t.clone())
    } else {
        clone(t)
    }
}

/// `torch.cat(tensors, dim)`: each input copied into its slice of the output.
pub fn cat(tensors: &[&Tensor], dim: i64) -> Result<Tensor> {
    let (spec, d, parts) = meta::cat(tensors, dim)?;
    let out = spec.empty()?;
    let mut at = 0usize;
    for t in parts {
        let len = t.sizes()[d];
        if len > 0 {
            let slice = ops::narrow(&out, d as i64, at as i64, len)?;
            copy_(&slice, t)?;
        }
        at += len;
    }
    Ok(out)
}

/// `torch.stack(tensors, dim)`: `cat` of the inputs each with a new dimension `dim`.
pub fn stack(tensors: &[&Tensor], dim: i64) -> Result<Tensor> {
    let d = meta::stack(tensors, dim)?;
    let parts = tensors
        .iter()
        .map(|t| ops::unsqueeze(t, d as i64))
        .collect::<Result<Vec<_>>>()?;
    let refs: Vec<&Tensor> = parts.iter().collect();
    cat(&refs, d as i64)
}
