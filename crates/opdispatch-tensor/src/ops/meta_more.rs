//! Meta functions of the second batch of operators (rounding and transcendental unary ops,
//! the float predicates, clamp, the remainder family, logical ops, lerp, masked_fill, the
//! extra reductions, softmax, indexing and the triangular/diagonal ops): argument checks with
//! PyTorch's messages, output sizes, dtype and device. Re-exported from [`super::meta`], so
//! the CPU loops and the Meta kernels use the same functions.

use super::meta::{reduction, OutputSpec, ReductionSpec};
use super::pointwise_more::{BinaryMore, MathOp};
use super::{broadcast_shapes, common_device, result_type, wrap_dim};
use crate::error::{Result, TensorError};
use crate::{Dims, Scalar, ScalarType, Tensor, DEFAULT_DTYPE};

/// How a unary op's output dtype follows its input's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MathKind {
    /// Integers (and bool) come back unchanged, as a copy (`floor`, `ceil`, `round`, `trunc`).
    Rounding,
    /// Integers and bool compute in the default float dtype (`rsqrt`, `log1p`, ..., `erf`).
    FloatValued,
    /// The input dtype, floating only (`frac`).
    FloatOnly,
    /// The input dtype, any real dtype (`sign`).
    SameReal,
    /// A bool result (`isnan`, `isinf`, `isfinite`, `logical_not`).
    Predicate,
}

/// `op(x)` for the unary operators of [`MathOp`].
pub fn math_unary(op: MathOp, x: &Tensor) -> Result<OutputSpec> {
    let dt = x.dtype();
    let dtype = match op.kind() {
        MathKind::Rounding => {
            if dt.is_complex() {
                return Err(TensorError::NotImplemented(format!(
                    "{} is not supported for complex inputs",
                    op.name()
                )));
            }
            if dt == ScalarType::Bool {
                return Err(TensorError::unsupported(op.kernel_name(), dt));
            }
            dt
        }
        MathKind::FloatValued => {
            if dt.is_complex() && !op.supports_complex() {
                return Err(TensorError::unsupported(op.kernel_name(), dt));
            }
            if dt.is_integral(true) {
                DEFAULT_DTYPE
            } else {
                dt
            }
        }
        MathKind::FloatOnly => {
            if !dt.is_floating_point() {
                return Err(TensorError::unsupported(op.kernel_name(), dt));
            }
            dt
        }
        MathKind::SameReal => {
            if dt.is_complex() {
                return Err(TensorError::NotImplemented(
                    "Unlike NumPy, torch.sign is not intended to support complex numbers. Please use torch.sgn instead."
                        .into(),
                ));
            }
            dt
        }
        MathKind::Predicate => ScalarType::Bool,
    };
    Ok(OutputSpec {
        sizes: x.sizes().into(),
        dtype,
        device: x.device(),
    })
}

/// `nan_to_num(x, ...)`: the input's geometry and dtype (complex inputs are not supported here).
pub fn nan_to_num(x: &Tensor) -> Result<OutputSpec> {
    if x.dtype().is_complex() {
        return Err(TensorError::unsupported("nan_to_num", x.dtype()));
    }
    Ok(OutputSpec {
        sizes: x.sizes().into(),
        dtype: x.dtype(),
        device: x.device(),
    })
}

/// A binary op of [`BinaryMore`]: broadcast sizes, the output dtype and the dtype it computes in.
pub fn binary_more(op: BinaryMore, a: &Tensor, b: &Tensor) -> Result<super::meta::BinarySpec> {
    let device = common_device(&[a, b])?;
    let sizes = broadcast_shapes(a.sizes(), b.sizes())?;
    let common = result_type(&[a, b])?;
    let (out, compute) = match op {
        BinaryMore::LogicalAnd | BinaryMore::LogicalOr | BinaryMore::LogicalXor => {
            (ScalarType::Bool, common)
        }
        BinaryMore::Atan2 => {
            if common.is_complex() {
                return Err(TensorError::unsupported(op.kernel_name(), common));
            }
            let f = if common.is_integral(true) {
                DEFAULT_DTYPE
            } else {
                common
            };
            (f, f)
        }
        BinaryMore::Remainder | BinaryMore::Fmod | BinaryMore::FloorDivide => {
            if common.is_complex() || common == ScalarType::Bool {
                return Err(TensorError::unsupported(op.kernel_name(), common));
            }
            (common, common)
        }
    };
    Ok(super::meta::BinarySpec {
        out: OutputSpec {
            sizes,
            dtype: out,
            device,
        },
        compute,
    })
}

/// `clamp(self, min, max)` with scalar or tensor bounds (`None`: that side is open): the
/// output of `minimum(maximum(self, min), max)`, with PyTorch's checks.
pub fn clamp(x: &Tensor, min: Option<&Tensor>, max: Option<&Tensor>) -> Result<OutputSpec> {
    if min.is_none() && max.is_none() {
        return Err(TensorError::other(
            "torch.clamp: At least one of 'min' or 'max' must not be None",
        ));
    }
    let mut ts: Vec<&Tensor> = vec![x];
    ts.extend(min);
    ts.extend(max);
    let dtype = result_type(&ts)?;
    if dtype.is_complex() {
        return Err(TensorError::NotImplemented(
            "clamp is not supported for complex types".into(),
        ));
    }
    if dtype == ScalarType::Bool {
        return Err(TensorError::unsupported("clamp_scalar_cpu", dtype));
    }
    let device = common_device(&ts)?;
    let mut sizes: Dims = x.sizes().into();
    for t in ts.iter().skip(1) {
        sizes = broadcast_shapes(&sizes, t.sizes())?;
    }
    Ok(OutputSpec {
        sizes,
        dtype,
        device,
    })
}

/// `lerp(self, end, weight)`: `self` and `end` of one dtype, floating or complex; the weight a
/// scalar or a tensor of that dtype.
pub fn lerp(a: &Tensor, end: &Tensor, weight: Option<&Tensor>) -> Result<OutputSpec> {
    if a.dtype() != end.dtype() {
        return Err(TensorError::dtype(format!(
            "expected dtype {} for `end` but got dtype {}",
            a.dtype().cpp_name(),
            end.dtype().cpp_name()
        )));
    }
    if let Some(w) = weight {
        if w.dtype() != a.dtype() {
            return Err(TensorError::dtype(format!(
                "expected dtype {} for `weight` but got dtype {}",
                a.dtype().cpp_name(),
                w.dtype().cpp_name()
            )));
        }
    }
    if !(a.dtype().is_floating_point() || a.dtype().is_complex()) {
        return Err(TensorError::unsupported("lerp_kernel_scalar", a.dtype()));
    }
    let mut ts = vec![a, end];
    ts.extend(weight);
    let device = common_device(&ts)?;
    let mut sizes = broadcast_shapes(a.sizes(), end.sizes())?;
    if let Some(w) = weight {
        sizes = broadcast_shapes(&sizes, w.sizes())?;
    }
    Ok(OutputSpec {
        sizes,
        dtype: a.dtype(),
        device,
    })
}

/// `masked_fill(self, mask, value)`: a bool mask broadcastable to `self`; a tensor value has no
/// dimensions.
pub fn masked_fill(x: &Tensor, mask: &Tensor, value: Option<&Tensor>) -> Result<OutputSpec> {
    if mask.dtype() != ScalarType::Bool {
        return Err(TensorError::dtype(format!(
            "masked_fill_ only supports boolean masks, but got mask with dtype {}",
            mask.dtype().cpp_name()
        )));
    }
    if let Some(v) = value {
        if v.dim() != 0 {
            return Err(TensorError::other(format!(
                "masked_fill_ only supports a 0-dimensional value tensor, but got tensor with {} dimension(s).",
                v.dim()
            )));
        }
    }
    let sizes = broadcast_shapes(x.sizes(), mask.sizes())?;
    let device = common_device(&[x, mask])?;
    Ok(OutputSpec {
        sizes,
        dtype: x.dtype(),
        device,
    })
}

// ---- reductions ----

/// `amax`/`amin` over `dims` (empty: all): the input dtype; reducing a zero-size dimension is
/// an error, as there is no identity.
pub fn amax_amin(t: &Tensor, dims: &[i64], keepdim: bool, name: &str) -> Result<ReductionSpec> {
    if t.dtype().is_complex() {
        return Err(TensorError::unsupported(
            if name == "amax" { "max_all" } else { "min_all" },
            t.dtype(),
        ));
    }
    let spec = reduction(t, Some(dims), keepdim, t.dtype())?;
    if t.numel() == 0 {
        for (i, &r) in spec.reduced.iter().enumerate() {
            if r && t.sizes()[i] == 0 {
                return Err(TensorError::IndexOutOfRange(format!(
                    "{name}(): Expected reduction dim {i} to have non-zero size."
                )));
            }
        }
    }
    Ok(spec)
}

/// `prod`: integral and bool inputs multiply as int64, as `sum` does.
pub fn prod(
    t: &Tensor,
    dim: Option<i64>,
    keepdim: bool,
    dtype: Option<ScalarType>,
) -> Result<ReductionSpec> {
    let out = dtype.unwrap_or(if t.dtype().is_integral(true) {
        ScalarType::Int64
    } else {
        t.dtype()
    });
    let dims: Option<[i64; 1]> = dim.map(|d| [d]);
    reduction(t, dims.as_ref().map(|d| &d[..]), keepdim, out)
}

/// `all`/`any`: a bool result (uint8 inputs keep uint8, as in PyTorch).
pub fn all_any(t: &Tensor, dim: Option<i64>, keepdim: bool) -> Result<ReductionSpec> {
    let out = if t.dtype() == ScalarType::UInt8 {
        ScalarType::UInt8
    } else {
        ScalarType::Bool
    };
    let dims: Option<[i64; 1]> = dim.map(|d| [d]);
    reduction(t, dims.as_ref().map(|d| &d[..]), keepdim, out)
}

/// `cumsum`/`cumprod` along `dim`: the input's sizes; integral inputs accumulate as int64.
pub fn cumulative(t: &Tensor, dim: i64, dtype: Option<ScalarType>) -> Result<OutputSpec> {
    wrap_dim(dim, t.dim())?;
    let out = dtype.unwrap_or(if t.dtype().is_integral(true) {
        ScalarType::Int64
    } else {
        t.dtype()
    });
    Ok(OutputSpec {
        sizes: t.sizes().into(),
        dtype: out,
        device: t.device(),
    })
}

/// `var`/`std` (`name`): floating or complex inputs; the result is real.
pub fn var_std(
    t: &Tensor,
    dims: Option<&[i64]>,
    keepdim: bool,
    name: &str,
) -> Result<ReductionSpec> {
    let dt = t.dtype();
    if !(dt.is_floating_point() || dt.is_complex()) {
        let _ = name;
        return Err(TensorError::NotImplemented(
            "std and var only support floating point and complex dtypes".into(),
        ));
    }
    reduction(t, dims, keepdim, dt.to_real())
}

/// `logsumexp` over `dims`: integers compute in the default float dtype.
pub fn logsumexp(t: &Tensor, dims: &[i64], keepdim: bool) -> Result<ReductionSpec> {
    let out = if t.dtype().is_integral(true) {
        DEFAULT_DTYPE
    } else {
        t.dtype()
    };
    if out.is_complex() {
        return Err(TensorError::unsupported("logsumexp", out));
    }
    reduction(t, Some(dims), keepdim, out)
}

/// `_softmax`/`_log_softmax` (`name`) along `dim`: floating inputs; `half_to_float` only on CUDA.
pub fn softmax(t: &Tensor, dim: i64, half_to_float: bool, name: &str) -> Result<OutputSpec> {
    if half_to_float {
        return Err(TensorError::other(
            "softmax with half to float conversion is not supported on CPU",
        ));
    }
    wrap_dim(dim, t.dim())?;
    if !t.dtype().is_floating_point() {
        return Err(TensorError::unsupported(name, t.dtype()));
    }
    Ok(OutputSpec {
        sizes: t.sizes().into(),
        dtype: t.dtype(),
        device: t.device(),
    })
}

// ---- indexing and matrices ----

/// An index tensor's check: int64 (or int32) only.
fn index_dtype(index: &Tensor, what: &str) -> Result<()> {
    if !matches!(index.dtype(), ScalarType::Int64 | ScalarType::Int32) {
        return Err(TensorError::other(format!(
            "{what}(): Expected dtype int32/int64 for index"
        )));
    }
    Ok(())
}

/// `index_select(self, dim, index)`: `index` is a vector (or a scalar) of int64/int32.
pub fn index_select(t: &Tensor, dim: i64, index: &Tensor) -> Result<OutputSpec> {
    let d = wrap_dim(dim, t.dim())?;
    if index.dim() > 1 {
        return Err(TensorError::IndexOutOfRange(
            "index_select(): Index is supposed to be a vector".into(),
        ));
    }
    if !matches!(index.dtype(), ScalarType::Int64 | ScalarType::Int32) {
        return Err(TensorError::other(
            "index_select(): Expected dtype int32 or int64 for index",
        ));
    }
    let device = common_device(&[t, index])?;
    let mut sizes: Dims = t.sizes().into();
    if t.dim() == 0 {
        sizes = Dims::new();
    } else {
        sizes[d] = index.numel();
    }
    Ok(OutputSpec {
        sizes,
        dtype: t.dtype(),
        device,
    })
}

/// `gather(self, dim, index)`: `index` has `self`'s rank and no larger a size outside `dim`;
/// the output has `index`'s sizes.
pub fn gather(t: &Tensor, dim: i64, index: &Tensor) -> Result<OutputSpec> {
    let d = wrap_dim(dim, t.dim())?;
    index_dtype(index, "gather")?;
    if index.numel() != 0 && index.dim().max(1) != t.dim().max(1) {
        return Err(TensorError::other(
            "Index tensor must have the same number of dimensions as input tensor",
        ));
    }
    for k in 0..index.dim() {
        if k != d && index.sizes()[k] > t.sizes().get(k).copied().unwrap_or(1) {
            return Err(TensorError::other(format!(
                "Size does not match at dimension {k} expected index {:?} to be no larger than self {:?} apart from dimension {d}",
                index.sizes(),
                t.sizes()
            )));
        }
    }
    let device = common_device(&[t, index])?;
    Ok(OutputSpec {
        sizes: index.sizes().into(),
        dtype: t.dtype(),
        device,
    })
}

/// `scatter(self, dim, index, src|value)`: `self`'s geometry; `index` fits in `src` and (outside
/// `dim`) in `self`.
pub fn scatter(t: &Tensor, dim: i64, index: &Tensor, src: Option<&Tensor>) -> Result<OutputSpec> {
    let d = wrap_dim(dim, t.dim())?;
    index_dtype(index, "scatter")?;
    if index.dtype() != ScalarType::Int64 {
        return Err(TensorError::other(
            "scatter(): Expected dtype int64 for index",
        ));
    }
    if let Some(s) = src {
        if s.dtype() != t.dtype() {
            return Err(TensorError::dtype(
                "scatter(): Expected self.dtype to be equal to src.dtype",
            ));
        }
    }
    if index.numel() != 0 {
        if index.dim().max(1) != t.dim().max(1) {
            return Err(TensorError::other(
                "Index tensor must have the same number of dimensions as self tensor",
            ));
        }
        for k in 0..index.dim() {
            let is = index.sizes()[k];
            if k != d && is > t.sizes().get(k).copied().unwrap_or(1) {
                return Err(TensorError::other(format!(
                    "Expected index {:?} to be no larger than self {:?} apart from dimension {d} and to be no larger size than src {:?}",
                    index.sizes(),
                    t.sizes(),
                    src.map(|s| s.sizes().to_vec()).unwrap_or_default()
                )));
            }
            if let Some(s) = src {
                if is > s.sizes().get(k).copied().unwrap_or(1) {
                    return Err(TensorError::other(format!(
                        "Expected index {:?} to be no larger than self {:?} apart from dimension {d} and to be no larger size than src {:?}",
                        index.sizes(),
                        t.sizes(),
                        s.sizes()
                    )));
                }
            }
        }
    }
    let mut ts = vec![t, index];
    ts.extend(src);
    let device = common_device(&ts)?;
    Ok(OutputSpec {
        sizes: t.sizes().into(),
        dtype: t.dtype(),
        device,
    })
}

/// `flip(self, dims)`: distinct dimensions in range; the input's geometry.
pub fn flip(t: &Tensor, dims: &[i64]) -> Result<Vec<bool>> {
    let mut flipped = vec![false; t.dim()];
    for &d in dims {
        let w = wrap_dim(d, t.dim())?;
        if t.dim() == 0 {
            continue;
        }
        if flipped[w] {
            return Err(TensorError::other(format!(
                "dim {w} appears multiple times in the list of dims"
            )));
        }
        flipped[w] = true;
    }
    Ok(flipped)
}

/// `roll(self, shifts, dims)`: one shift per dimension (or one shift and no dims: flattened).
pub fn roll(t: &Tensor, shifts: &[i64], dims: &[i64]) -> Result<()> {
    if shifts.is_empty() {
        return Err(TensorError::other("`shifts` required"));
    }
    if dims.is_empty() && shifts.len() == 1 {
        return Ok(());
    }
    if shifts.len() != dims.len() {
        return Err(TensorError::other(format!(
            "shifts and dimensions must align. shifts: {}, dims:{}",
            shifts.len(),
            dims.len()
        )));
    }
    for &d in dims {
        wrap_dim(d, t.dim())?;
    }
    Ok(())
}

/// `tril`/`triu` (`name`): at least two dimensions.
pub fn triangle(t: &Tensor, name: &str) -> Result<OutputSpec> {
    if t.dim() < 2 {
        return Err(TensorError::other(format!(
            "{name}: input tensor must have at least 2 dimensions"
        )));
    }
    Ok(OutputSpec {
        sizes: t.sizes().into(),
        dtype: t.dtype(),
        device: t.device(),
    })
}

/// `diag(self, diagonal)`: a vector becomes a square matrix, a matrix gives its diagonal.
pub fn diag(t: &Tensor, diagonal: i64) -> Result<OutputSpec> {
    let sizes: Dims = match t.dim() {
        1 => {
            let n = t.sizes()[0] + diagonal.unsigned_abs() as usize;
            [n, n][..].into()
        }
        2 => {
            let (r, c) = (t.sizes()[0] as i64, t.sizes()[1] as i64);
            let len = if diagonal >= 0 {
                (r.min(c - diagonal)).max(0)
            } else {
                ((r + diagonal).min(c)).max(0)
            };
            [len as usize][..].into()
        }
        d => {
            return Err(TensorError::other(format!(
                "diag(): Supports 1D or 2D tensors. Got {d}D"
            )))
        }
    };
    Ok(OutputSpec {
        sizes,
        dtype: t.dtype(),
        device: t.device(),
    })
}

/// `topk(self, k, dim)`: `k` within the dimension's size.
pub fn topk(t: &Tensor, k: i64, dim: i64) -> Result<OutputSpec> {
    let d = wrap_dim(dim, t.dim())?;
    let size = if t.dim() == 0 { 1 } else { t.sizes()[d] };
    if k < 0 || k as usize > size {
        return Err(TensorError::IndexOutOfRange(
            "selected index k out of range".into(),
        ));
    }
    let mut sizes: Dims = t.sizes().into();
    if t.dim() > 0 {
        sizes[d] = k as usize;
    }
    Ok(OutputSpec {
        sizes,
        dtype: t.dtype(),
        device: t.device(),
    })
}

/// A scalar bound as a wrapped-number tensor (for promotion), or nothing.
pub fn wrapped(s: Option<Scalar>) -> Option<Tensor> {
    s.map(Tensor::wrapped_scalar)
}

/// `_softmax_backward_data` / `_log_softmax_backward_data`: the gradient has the output's shape.
pub fn softmax_backward(g: &Tensor, out: &Tensor, dim: i64) -> Result<OutputSpec> {
    if g.sizes() != out.sizes() {
        return Err(TensorError::other(format!(
            "grad_output and output must have the same shape, but got {:?} and {:?}",
            g.sizes(),
            out.sizes()
        )));
    }
    wrap_dim(dim, out.dim())?;
    let device = common_device(&[g, out])?;
    Ok(OutputSpec {
        sizes: out.sizes().into(),
        dtype: out.dtype(),
        device,
    })
}

/// `addmm(self, mat1, mat2)`: `mm`'s checks; `self` broadcasts to the product's shape.
pub fn addmm(s: &Tensor, m1: &Tensor, m2: &Tensor) -> Result<OutputSpec> {
    if m1.dim() != 2 {
        return Err(TensorError::other(format!(
            "mat1 must be a matrix, got {}-D tensor",
            m1.dim()
        )));
    }
    if m2.dim() != 2 {
        return Err(TensorError::other(format!(
            "mat2 must be a matrix, got {}-D tensor",
            m2.dim()
        )));
    }
    let spec = super::meta::mm(m1, m2)?;
    if s.dtype() != m1.dtype() {
        return Err(TensorError::dtype(format!(
            "self and mat2 must have the same dtype, but got {} and {}",
            s.dtype().cpp_name(),
            m2.dtype().cpp_name()
        )));
    }
    let b = broadcast_shapes(s.sizes(), &spec.sizes)?;
    if b[..] != spec.sizes[..] {
        return Err(TensorError::other(format!(
            "The expanded size of the tensor ({}) must match the existing size ({}) at non-singleton dimension {}.  Target sizes: {:?}.  Tensor sizes: {:?}",
            spec.sizes[1],
            s.sizes().last().copied().unwrap_or(1),
            spec.sizes.len() - 1,
            &spec.sizes[..],
            s.sizes()
        )));
    }
    let device = common_device(&[s, m1, m2])?;
    Ok(OutputSpec { device, ..spec })
}

/// `index_add(self, dim, index, source)`: a vector index with one entry per `source` slice
/// along `dim`; `source` matches `self` elsewhere and has its dtype.
pub fn index_add(t: &Tensor, dim: i64, index: &Tensor, source: &Tensor) -> Result<OutputSpec> {
    let d = wrap_dim(dim, t.dim())?;
    if index.dim() > 1 {
        return Err(TensorError::IndexOutOfRange(
            "index_add_(): Index is supposed to be a vector".into(),
        ));
    }
    if !matches!(index.dtype(), ScalarType::Int64 | ScalarType::Int32) {
        return Err(TensorError::other(
            "index_add_(): Expected dtype int32/int64 for index",
        ));
    }
    if source.dtype() != t.dtype() {
        return Err(TensorError::dtype(format!(
            "index_add_(): self ({}) and source ({}) must have the same scalar type",
            t.dtype().cpp_name(),
            source.dtype().cpp_name()
        )));
    }
    let src_size = if source.dim() == 0 {
        1
    } else {
        source.sizes().get(d).copied().unwrap_or(1)
    };
    if index.numel() != src_size {
        return Err(TensorError::other(format!(
            "index_add_(): Number of indices ({}) should be equal to source.size(dim): ({src_size}), for dim: {d}",
            index.numel()
        )));
    }
    if source.dim() > 0 && t.dim() > 0 {
        let mismatch = source.dim() != t.dim()
            || (0..t.dim()).any(|k| k != d && source.sizes()[k] != t.sizes()[k]);
        if mismatch {
            return Err(TensorError::other(format!(
                "index_add_(): source {:?} and self {:?} must match in every dimension but {d}",
                source.sizes(),
                t.sizes()
            )));
        }
    }
    let device = common_device(&[t, index, source])?;
    Ok(OutputSpec {
        sizes: t.sizes().into(),
        dtype: t.dtype(),
        device,
    })
}
