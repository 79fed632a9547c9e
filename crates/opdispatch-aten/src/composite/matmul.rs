//! `matmul` as PyTorch's `_matmul_impl` (`aten/src/ATen/native/LinearAlgebra.cpp`), a
//! CompositeImplicitAutograd decomposition: every step is a dispatched call, so autograd records
//! PyTorch's nodes and modes see PyTorch's calls.

use opdispatch_dispatch::{IValue, Result};
use opdispatch_tensor::ops;
use opdispatch_tensor::{Tensor, TensorError};

use super::implicit::{
    d, expand, product2, reshape_to, squeeze_dim, transpose, unsafe_view, unsqueeze,
};
use crate::calling::{aten_op, tv};

/// PyTorch's `isTensorSubclassLike` for our tensors: a Python subclass with
/// `__torch_dispatch__` (it carries the Python key).
fn subclass_like(t: &Tensor) -> bool {
    t.is_python_dispatch()
}

/// `matmul` decomposed as PyTorch's `_matmul_impl`: `dot`, `mv`, `mm` for the 1-D and 2-D
/// cases, the larger operand folded into a matrix when `should_fold` says so, else a
/// broadcast `bmm`; every step is a dispatched call, so autograd records PyTorch's nodes.
pub(crate) fn matmul(a: Tensor, b: Tensor) -> Result<Tensor> {
    let (d1, d2) = (a.dim(), b.dim());
    if d1 == 0 || d2 == 0 {
        return Err(TensorError::other(format!(
            "both arguments to matmul need to be at least 1D, but they are {d1}D and {d2}D"
        ))
        .into());
    }
    match (d1, d2) {
        (1, 1) => product2(aten_op!("dot", ""), &a, &b),
        (2, 1) => product2(aten_op!("mv", ""), &a, &b),
        // PyTorch squeezes the product in place (`squeeze_`); our tensors' geometry is
        // immutable, so the squeeze is the out-of-place view.
        (1, 2) => squeeze_dim(&product2(aten_op!("mm", ""), &unsqueeze(&a, 0)?, &b)?, 0),
        (2, 2) => product2(aten_op!("mm", ""), &a, &b),
        _ if should_fold(&a, &b) => matmul_folded(&a, &b),
        _ => matmul_batched(a, b),
    }
}

/// Whether one operand has at least 3 dimensions and the other at most 2, and folding the
/// larger into a matrix is free (or saves the smaller one's gradient a batch-sized buffer).
fn should_fold(a: &Tensor, b: &Tensor) -> bool {
    let larger_first = a.dim() >= b.dim();
    let (big, small_dim) = if larger_first {
        (a, b.dim())
    } else {
        (b, a.dim())
    };
    if !(big.dim() >= 3 && small_dim <= 2) {
        return false;
    }
    let small_requires_grad = if larger_first {
        b.requires_grad()
    } else {
        a.requires_grad()
    };
    if small_requires_grad {
        return true;
    }
    if a.dim() == 2 {
        return false;
    }
    if big.numel() == 0 {
        return true;
    }
    // The larger operand as matmul sees it (`b.mT()` when it is the right one).
    let (mut sizes, mut strides) = (big.sizes().to_vec(), big.strides().to_vec());
    if !larger_first {
        let n = sizes.len();
        sizes.swap(n - 2, n - 1);
        strides.swap(n - 2, n - 1);
    }
    (0..sizes.len() - 2).all(|i| strides[i] == strides[i + 1] * sizes[i + 1])
}

fn matmul_folded(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let transposed = b.dim() > a.dim();
    let (t1, t2) = if transposed {
        let t2 = if a.dim() == 2 {
            d(
                aten_op!("t", ""),
                opdispatch_dispatch::stack![tv(a.clone())],
            )?
        } else {
            a.clone()
        };
        (transpose(b, -2, -1)?, t2)
    } else {
        (a.clone(), b.clone())
    };
    let s1 = t1.sizes().to_vec();
    let (lead, last) = s1.split_at(s1.len() - 1);
    let mut out_shape = lead.to_vec();
    let folded: usize = lead.iter().product();
    let t2_matrix = t2.dim() == 2;
    if t2_matrix {
        out_shape.push(t2.sizes()[1]);
    }
    let t1_folded = reshape_to(&t1, &[folded, last[0]])?;
    if t2_matrix {
        let out = unsafe_view(&product2(aten_op!("mm", ""), &t1_folded, &t2)?, &out_shape)?;
        if transposed {
            let mt = transpose(&out, -2, -1)?;
            return d(
                aten_op!("contiguous", ""),
                opdispatch_dispatch::stack![tv(mt), IValue::Int(0)],
            );
        }
        Ok(out)
    } else {
        unsafe_view(&product2(aten_op!("mv", ""), &t1_folded, &t2)?, &out_shape)
    }
}

fn matmul_batched(a: Tensor, b: Tensor) -> Result<Tensor> {
    let (d1, d2) = (a.dim(), b.dim());
    let (sa, sb) = (a.sizes().to_vec(), b.sizes().to_vec());
    let n = if d1 > 1 { sa[d1 - 2] } else { 1 };
    let m1 = sa[d1 - 1];
    let batch1 = &sa[..d1.saturating_sub(2)];
    let m2 = if d2 > 1 { sb[d2 - 2] } else { sb[0] };
    let p = if d2 > 1 { sb[d2 - 1] } else { 1 };
    let batch2 = &sb[..d2.saturating_sub(2)];
    // A broadcast batch of one goes through the folding path when it needs a gradient.
    if d1 == 3 && d2 == 3 && batch1[0] != batch2[0] {
        if batch1[0] == 1 && (a.requires_grad() || subclass_like(&a)) {
            return matmul(squeeze_dim(&a, 0)?, b);
        }
        if batch2[0] == 1 && (b.requires_grad() || subclass_like(&b)) {
            return matmul(a, squeeze_dim(&b, 0)?);
        }
    }
    let mut out_shape = ops::broadcast_shapes(batch1, batch2)?.to_vec();
    let batch: usize = out_shape.iter().product();
    let mut size1 = out_shape.clone();
    size1.extend([n, m1]);
    let a3 = reshape_to(&expand(&a, &size1)?, &[batch, n, m1])?;
    let vector_rhs = d2 == 1;
    let mut size2 = out_shape.clone();
    if vector_rhs {
        size2.push(m2);
    } else {
        size2.extend([m2, p]);
    }
    let b_expanded = expand(&b, &size2)?;
    let b3 = if vector_rhs {
        unsqueeze(&reshape_to(&b_expanded, &[batch, m2])?, 2)?
    } else {
        reshape_to(&b_expanded, &[batch, m2, p])?
    };
    if d1 > 1 {
        out_shape.push(n);
    }
    if d2 > 1 {
        out_shape.push(p);
    }
    let prod = product2(aten_op!("bmm", ""), &a3, &b3)?;
    let prod = if vector_rhs {
        squeeze_dim(&prod, -1)?
    } else {
        prod
    };
    unsafe_view(&prod, &out_shape)
}
