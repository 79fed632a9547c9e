//! Meta functions: what each operator's output looks like (sizes, dtype, device), with every
//! argument check the operator makes, and no data touched.
//!
//! This is the layer PyTorch's structured kernels call `TORCH_META_FUNC`: the Meta backend's
//! kernels are a meta function plus an allocation on Meta, and the CPU loops in the sibling
//! modules call the same function to validate and size their output, so the two backends
//! cannot disagree about shapes, promotion or error messages. A new backend (CUDA) reuses
//! these functions and brings only its loops.

pub use super::meta_more::*;

use super::{broadcast_shapes, common_device, result_type, wrap_dim, BinaryOp, UnaryOp};
use crate::dtype::can_cast;
use crate::error::{Result, TensorError};
use crate::{Device, Dims, Scalar, ScalarType, Tensor, DEFAULT_DTYPE};

/// The geometry and type of one operator output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputSpec {
    pub sizes: Dims,
    pub dtype: ScalarType,
    pub device: Device,
}

impl OutputSpec {
    fn new(sizes: impl Into<Dims>, dtype: ScalarType, device: Device) -> Self {
        Self {
            sizes: sizes.into(),
            dtype,
            device,
        }
    }

    /// A fresh (uninitialised on CPU, data-less on Meta) contiguous tensor of this spec.
    pub fn empty(&self) -> Result<Tensor> {
        Tensor::empty(&self.sizes, self.dtype, self.device)
    }
}

// ---- pointwise ----

/// A binary operator's output and the dtype it computes in (they differ for comparisons).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinarySpec {
    pub out: OutputSpec,
    pub compute: ScalarType,
}

/// Output dtype and computation dtype of `op` over `a`, `b`, with PyTorch's checks.
pub(crate) fn binary_dtypes(
    op: BinaryOp,
    a: &Tensor,
    b: &Tensor,
    alpha: Option<Scalar>,
) -> Result<(ScalarType, ScalarType)> {
    if op == BinaryOp::Sub && (a.dtype() == ScalarType::Bool || b.dtype() == ScalarType::Bool) {
        return Err(TensorError::dtype(if a.dtype() == b.dtype() {
            "Subtraction, the `-` operator, with two bool tensors is not supported. Use the `^` or `logical_xor()` operator instead."
        } else {
            "Subtraction, the `-` operator, with a bool tensor is not supported. If you are trying to invert a mask, use the `~` or `logical_not()` operator instead."
        }));
    }
    let common = result_type(&[a, b])?;
    if let Some(al) = alpha {
        if common.is_integral(true) && al.is_floating_point() {
            return Err(TensorError::dtype(
                "For integral input tensors, argument alpha must not be a floating point number.",
            ));
        }
        if common == ScalarType::Bool && !matches!(al, Scalar::Bool(_)) && al.to_i64() != 1 {
            return Err(TensorError::dtype(
                "Boolean alpha only supported for Boolean results.",
            ));
        }
        if !common.is_complex() && al.is_complex() {
            return Err(TensorError::dtype(
                "For non-complex input tensors, argument alpha must not be a complex number.",
            ));
        }
    }
    if common.is_complex()
        && matches!(
            op,
            BinaryOp::Lt
                | BinaryOp::Le
                | BinaryOp::Gt
                | BinaryOp::Ge
                | BinaryOp::Maximum
                | BinaryOp::Minimum
        )
    {
        return Err(TensorError::unsupported(op.kernel_name(), common));
    }
    Ok(match op {
        _ if op.is_comparison() => (ScalarType::Bool, common),
        // True division: integers divide as the default float dtype.
        BinaryOp::Div if common.is_integral(true) => (DEFAULT_DTYPE, DEFAULT_DTYPE),
        _ => (common, common),
    })
}

/// `op(a, b)` (add/sub with `alpha`): broadcast sizes, promoted dtype, the common device.
pub fn binary(op: BinaryOp, a: &Tensor, b: &Tensor, alpha: Option<Scalar>) -> Result<BinarySpec> {
    let device = common_device(&[a, b])?;
    let (dtype, compute) = binary_dtypes(op, a, b, alpha)?;
    let sizes = broadcast_shapes(a.sizes(), b.sizes())?;
    Ok(BinarySpec {
        out: OutputSpec::new(sizes, dtype, device),
        compute,
    })
}

/// In-place `a.op_(b)`: the result must keep `a`'s shape and be castable to its dtype.
pub fn binary_inplace(
    op: BinaryOp,
    a: &Tensor,
    b: &Tensor,
    alpha: Option<Scalar>,
) -> Result<BinarySpec> {
    let spec = binary(op, a, b, alpha)?;
    if spec.out.sizes[..] != *a.sizes() {
        return Err(TensorError::other(format!(
            "output with shape {:?} doesn't match the broadcast shape {:?}",
            a.sizes(),
            &spec.out.sizes[..]
        )));
    }
    if !can_cast(spec.out.dtype, a.dtype()) {
        return Err(TensorError::dtype(format!(
            "result type {} can't be cast to the desired output type {}",
            spec.out.dtype.cpp_name(),
            a.dtype().cpp_name()
        )));
    }
    Ok(spec)
}

/// `tanh_backward(grad_output, output)`: `mul`'s promotion, broadcasting and device rule.
pub fn tanh_backward(g: &Tensor, out: &Tensor) -> Result<BinarySpec> {
    binary(BinaryOp::Mul, g, out, None)
}

/// `op(x)` for the unary pointwise operators.
pub fn unary(op: UnaryOp, x: &Tensor) -> Result<OutputSpec> {
    let dt = x.dtype();
    if dt == ScalarType::Bool && matches!(op, UnaryOp::Neg) {
        return Err(TensorError::dtype(
            "Negation, the `-` operator, on a bool tensor is not supported. If you are trying to invert a mask, use the `~` or `logical_not()` operator instead.",
        ));
    }
    if (dt == ScalarType::Bool || dt.is_complex()) && matches!(op, UnaryOp::Relu) {
        return Err(TensorError::unsupported("clamp_min_scalar_cpu", dt));
    }
    let dtype = if op.is_float_valued() && dt.is_integral(true) {
        DEFAULT_DTYPE
    } else if op == UnaryOp::Abs && dt.is_complex() {
        dt.to_real()
    } else {
        dt
    };
    Ok(OutputSpec::new(x.sizes(), dtype, x.device()))
}

/// `where(cond, a, b)`.
pub fn where_(cond: &Tensor, a: &Tensor, b: &Tensor) -> Result<OutputSpec> {
    if cond.dtype() != ScalarType::Bool {
        return Err(TensorError::dtype(format!(
            "where expected condition to be a boolean tensor, but got a tensor with dtype {}",
            cond.dtype().cpp_name()
        )));
    }
    let device = common_device(&[cond, a, b])?;
    let dtype = result_type(&[a, b])?;
    let sizes = broadcast_shapes(&broadcast_shapes(cond.sizes(), a.sizes())?, b.sizes())?;
    Ok(OutputSpec::new(sizes, dtype, device))
}

// ---- reductions ----

/// Which dimensions a reduction folds, and the output it leaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReductionSpec {
    pub out: OutputSpec,
    /// One flag per input dimension.
    pub reduced: Vec<bool>,
    /// Input elements per output element.
    pub group: usize,
}

/// A reduction of `t` over `dims` (`None` or empty: all) into `dtype`.
pub fn reduction(
    t: &Tensor,
    dims: Option<&[i64]>,
    keepdim: bool,
    dtype: ScalarType,
) -> Result<ReductionSpec> {
    let nd = t.dim();
    let mut reduced = vec![false; nd];
    match dims {
        None | Some([]) => reduced.iter_mut().for_each(|r| *r = true),
        Some(ds) => {
            for &d in ds {
                let w = wrap_dim(d, nd)?;
                if nd > 0 {
                    if reduced[w] {
                        return Err(TensorError::other(format!(
                            "dim {w} appears multiple times in the list of dims"
                        )));
                    }
                    reduced[w] = true;
                }
            }
        }
    }
    let mut sizes = Dims::new();
    let mut group = 1usize;
    for (i, &red) in reduced.iter().enumerate() {
        let s = t.sizes()[i];
        if red {
            group *= s;
            if keepdim {
                sizes.push(1);
            }
        } else {
            sizes.push(s);
        }
    }
    Ok(ReductionSpec {
        out: OutputSpec::new(sizes, dtype, t.device()),
        reduced,
        group,
    })
}

/// `sum(t, dims, keepdim, dtype=)`: integral and bool inputs sum as int64.
pub fn sum(
    t: &Tensor,
    dims: Option<&[i64]>,
    keepdim: bool,
    dtype: Option<ScalarType>,
) -> Result<ReductionSpec> {
    let out = dtype.unwrap_or(if t.dtype().is_integral(true) {
        ScalarType::Int64
    } else {
        t.dtype()
    });
    reduction(t, dims, keepdim, out)
}

/// `mean(t, dims, keepdim, dtype=)`: floating or complex outputs only.
pub fn mean(
    t: &Tensor,
    dims: Option<&[i64]>,
    keepdim: bool,
    dtype: Option<ScalarType>,
) -> Result<ReductionSpec> {
    let out = dtype.unwrap_or(t.dtype());
    if !(out.is_floating_point() || out.is_complex()) {
        return Err(TensorError::dtype(format!(
            "mean(): could not infer output dtype. {} must be either a floating point or complex dtype. Got: {}",
            if dtype.is_some() { "Optional dtype" } else { "Input dtype" },
            out.cpp_name()
        )));
    }
    reduction(t, dims, keepdim, out)
}

/// `max`/`min`/`argmax`/`argmin` (`name`) over one dimension or all: the values' spec (the
/// indices have the same sizes, as int64).
pub fn extreme(t: &Tensor, dim: Option<i64>, keepdim: bool, name: &str) -> Result<ReductionSpec> {
    if t.dtype().is_complex() {
        return Err(TensorError::unsupported(name, t.dtype()));
    }
    let dims: Option<[i64; 1]> = dim.map(|d| [d]);
    let spec = reduction(t, dims.as_ref().map(|d| &d[..]), keepdim, t.dtype())?;
    if spec.group == 0 {
        return Err(TensorError::IndexOutOfRange(match dim {
            None => format!(
                "{name}(): Expected reduction dim to be specified for input.numel() == 0. Specify the reduction dim with the 'dim' argument."
            ),
            Some(d) => format!(
                "{name}(): Expected reduction dim {} to have non-zero size.",
                wrap_dim(d, t.dim())?
            ),
        }));
    }
    Ok(spec)
}

/// `argmax`/`argmin`: int64 indices; `keepdim` without `dim` keeps every dimension at 1.
pub fn arg_extreme(t: &Tensor, dim: Option<i64>, keepdim: bool, name: &str) -> Result<OutputSpec> {
    let spec = extreme(t, dim, keepdim, name)?;
    let sizes = if dim.is_none() && keepdim {
        Dims::from_elem(1, t.dim())
    } else {
        spec.out.sizes
    };
    Ok(OutputSpec::new(sizes, ScalarType::Int64, t.device()))
}

// ---- matrix products ----

fn same_dtype(a: &Tensor, b: &Tensor) -> Result<()> {
    if a.dtype() != b.dtype() {
        return Err(TensorError::dtype(format!(
            "expected mat1 and mat2 to have the same dtype, but got: {} != {}",
            a.dtype().cpp_type_name(),
            b.dtype().cpp_type_name()
        )));
    }
    Ok(())
}

/// `mm(a, b)`: [M, K] x [K, N].
pub fn mm(a: &Tensor, b: &Tensor) -> Result<OutputSpec> {
    if a.dim() != 2 {
        return Err(TensorError::other("self must be a matrix"));
    }
    if b.dim() != 2 {
        return Err(TensorError::other("mat2 must be a matrix"));
    }
    if a.sizes()[1] != b.sizes()[0] {
        return Err(TensorError::shape(format!(
            "mat1 and mat2 shapes cannot be multiplied ({}x{} and {}x{})",
            a.sizes()[0],
            a.sizes()[1],
            b.sizes()[0],
            b.sizes()[1]
        )));
    }
    same_dtype(a, b)?;
    let device = common_device(&[a, b])?;
    Ok(OutputSpec::new(
        &[a.sizes()[0], b.sizes()[1]][..],
        a.dtype(),
        device,
    ))
}

/// `bmm(a, b)`: [B, M, K] x [B, K, N].
pub fn bmm(a: &Tensor, b: &Tensor) -> Result<OutputSpec> {
    if a.dim() != 3 {
        return Err(TensorError::other("batch1 must be a 3D tensor"));
    }
    if b.dim() != 3 {
        return Err(TensorError::other("batch2 must be a 3D tensor"));
    }
    let (bs, k) = (a.sizes()[0], a.sizes()[2]);
    if b.sizes()[0] != bs || b.sizes()[1] != k {
        return Err(TensorError::shape(format!(
            "Expected size for first two dimensions of batch2 tensor to be: [{bs}, {k}] but got: [{}, {}].",
            b.sizes()[0],
            b.sizes()[1]
        )));
    }
    same_dtype(a, b)?;
    let device = common_device(&[a, b])?;
    Ok(OutputSpec::new(
        &[bs, a.sizes()[1], b.sizes()[2]][..],
        a.dtype(),
        device,
    ))
}

/// `dot(a, b)` of two 1-D tensors: a 0-dim result.
pub fn dot(a: &Tensor, b: &Tensor) -> Result<OutputSpec> {
    if a.dim() != 1 || b.dim() != 1 {
        return Err(TensorError::other(format!(
            "1D tensors expected, but got {}D and {}D tensors",
            a.dim(),
            b.dim()
        )));
    }
    if a.numel() != b.numel() {
        return Err(TensorError::shape(format!(
            "inconsistent tensor size, expected tensor [{}] and src [{}] to have the same number of elements, but got {} and {} elements respectively",
            a.numel(),
            b.numel(),
            a.numel(),
            b.numel()
        )));
    }
    if a.dtype() != b.dtype() {
        return Err(TensorError::dtype(format!(
            "dot : expected both vectors to have same dtype, but found {} and {}",
            a.dtype().cpp_name(),
            b.dtype().cpp_name()
        )));
    }
    let device = common_device(&[a, b])?;
    Ok(OutputSpec::new(Dims::new(), a.dtype(), device))
}

/// `mv(a, v)`: a matrix times a vector.
pub fn mv(a: &Tensor, v: &Tensor) -> Result<OutputSpec> {
    if a.dim() != 2 || v.dim() != 1 {
        return Err(TensorError::other(format!(
            "vector + matrix @ vector expected, got 1, {}, {}",
            a.dim(),
            v.dim()
        )));
    }
    matmul(a, v)
}

/// The batch sizes, `(m, k, n)` and output sizes of `matmul(a, b)` for operands of at least
/// one dimension each (1-D operands count as a row or a column that the output then drops).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatmulSpec {
    pub out: OutputSpec,
    pub batch: Dims,
    pub m: usize,
    pub k: usize,
    pub n: usize,
}

/// `matmul(a, b)` with NumPy semantics.
pub fn matmul_geometry(a: &Tensor, b: &Tensor) -> Result<MatmulSpec> {
    let (da, db) = (a.dim(), b.dim());
    if da == 0 || db == 0 {
        return Err(TensorError::other(format!(
            "both arguments to matmul need to be at least 1D, but they are {da}D and {db}D"
        )));
    }
    match (da, db) {
        (1, 1) => {
            let out = dot(a, b)?;
            let k = a.numel();
            return Ok(MatmulSpec {
                out,
                batch: Dims::new(),
                m: 1,
                k,
                n: 1,
            });
        }
        (2, 1) | (1, 2) | (2, 2) => {
            let (m, k) = if da == 1 {
                (1, a.sizes()[0])
            } else {
                (a.sizes()[0], a.sizes()[1])
            };
            let (k2, n) = if db == 1 {
                (b.sizes()[0], 1)
            } else {
                (b.sizes()[0], b.sizes()[1])
            };
            if k != k2 {
                return Err(TensorError::shape(format!(
                    "mat1 and mat2 shapes cannot be multiplied ({m}x{k} and {k2}x{n})"
                )));
            }
            same_dtype(a, b)?;
            let device = common_device(&[a, b])?;
            let mut sizes = Dims::new();
            if da == 2 {
                sizes.push(m);
            }
            if db == 2 {
                sizes.push(n);
            }
            let out = OutputSpec::new(sizes, a.dtype(), device);
            return Ok(MatmulSpec {
                out,
                batch: Dims::new(),
                m,
                k,
                n,
            });
        }
        _ => {}
    }
    same_dtype(a, b)?;
    let device = common_device(&[a, b])?;
    let (sa, sb) = (a.sizes(), b.sizes());
    let (m, k) = if da == 1 {
        (1, sa[0])
    } else {
        (sa[da - 2], sa[da - 1])
    };
    let (k2, n) = if db == 1 {
        (sb[0], 1)
    } else {
        (sb[db - 2], sb[db - 1])
    };
    let batch_a = if da > 2 { &sa[..da - 2] } else { &[][..] };
    let batch_b = if db > 2 { &sb[..db - 2] } else { &[][..] };
    let batch = broadcast_shapes(batch_a, batch_b)?;
    if k != k2 {
        let bn: usize = batch.iter().product();
        return Err(TensorError::shape(format!(
            "Expected size for first two dimensions of batch2 tensor to be: [{bn}, {k}] but got: [{bn}, {k2}]."
        )));
    }
    let mut sizes = batch.clone();
    if da > 1 {
        sizes.push(m);
    }
    if db > 1 {
        sizes.push(n);
    }
    Ok(MatmulSpec {
        out: OutputSpec::new(sizes, a.dtype(), device),
        batch,
        m,
        k,
        n,
    })
}

/// `matmul(a, b)`'s output.
pub fn matmul(a: &Tensor, b: &Tensor) -> Result<OutputSpec> {
    matmul_geometry(a, b).map(|s| s.out)
}

// ---- copies, fills, joins ----

/// `dst.copy_(src)`: `src` must broadcast to `dst`'s shape.
pub fn copy_(dst: &Tensor, src: &Tensor) -> Result<()> {
    let shape = broadcast_shapes(dst.sizes(), src.sizes())?;
    if shape[..] != *dst.sizes() {
        return Err(TensorError::other(format!(
            "output with shape {:?} doesn't match the broadcast shape {:?}",
            dst.sizes(),
            &shape[..]
        )));
    }
    dst.device().check_available()
}

/// `to`/`_to_copy`: the same sizes in `dtype` on `device`.
pub fn to(t: &Tensor, dtype: Option<ScalarType>, device: Option<Device>) -> Result<OutputSpec> {
    let device = device.unwrap_or(t.device());
    device.check_available()?;
    Ok(OutputSpec::new(
        t.sizes(),
        dtype.unwrap_or(t.dtype()),
        device,
    ))
}

/// `cat(tensors, dim)`: the output, and the wrapped dimension with the tensors that take part
/// (1-D empty tensors are skipped, PyTorch's legacy behaviour).
pub fn cat<'t>(tensors: &[&'t Tensor], dim: i64) -> Result<(OutputSpec, usize, Vec<&'t Tensor>)> {
    if tensors.is_empty() {
        return Err(TensorError::other(
            "torch.cat(): expected a non-empty list of Tensors",
        ));
    }
    for (i, t) in tensors.iter().enumerate() {
        if t.dim() == 0 {
            return Err(TensorError::other(format!(
                "zero-dimensional tensor (at position {i}) cannot be concatenated"
            )));
        }
    }
    let dtype = result_type(tensors)?;
    let device = common_device(tensors)?;
    let parts: Vec<(usize, &Tensor)> = tensors
        .iter()
        .enumerate()
        .filter(|(_, t)| !(t.dim() == 1 && t.numel() == 0))
        .map(|(i, t)| (i, *t))
        .collect();
    let Some(&(_, first)) = parts.first() else {
        return Ok((OutputSpec::new(&[0usize][..], dtype, device), 0, Vec::new()));
    };
    let d = wrap_dim(dim, first.dim())?;
    let mut sizes: Dims = first.sizes().into();
    sizes[d] = 0;
    for &(i, t) in &parts {
        if t.dim() != first.dim() {
            return Err(TensorError::other(format!(
                "torch.cat(): Tensors must have same number of dimensions: got {} and {}",
                first.dim(),
                t.dim()
            )));
        }
        for k in 0..t.dim() {
            if k != d && t.sizes()[k] != first.sizes()[k] {
                return Err(TensorError::other(format!(
                    "Sizes of tensors must match except in dimension {d}. Expected size {} but got size {} for tensor number {i} in the list.",
                    first.sizes()[k],
                    t.sizes()[k]
                )));
            }
        }
        sizes[d] += t.sizes()[d];
    }
    let parts = parts.into_iter().map(|(_, t)| t).collect();
    Ok((OutputSpec::new(sizes, dtype, device), d, parts))
}

/// `stack(tensors, dim)`: equal sizes, and the wrapped new dimension.
pub fn stack(tensors: &[&Tensor], dim: i64) -> Result<usize> {
    let Some(first) = tensors.first() else {
        return Err(TensorError::other("stack expects a non-empty TensorList"));
    };
    for (i, t) in tensors.iter().enumerate() {
        if t.sizes() != first.sizes() {
            return Err(TensorError::other(format!(
                "stack expects each tensor to be equal size, but got {:?} at entry 0 and {:?} at entry {i}",
                first.sizes(),
                t.sizes()
            )));
        }
    }
    wrap_dim(dim, first.dim() + 1)
}

// ---- random fills ----

/// `uniform_`/`normal_` fill floating tensors only.
pub fn random_float_fill(t: &Tensor, what: &str) -> Result<()> {
    if !t.is_floating_point() {
        return Err(TensorError::other(format!(
            "{what} expects a floating point tensor, got {}",
            t.dtype()
        )));
    }
    Ok(())
}

/// `normal_(mean, std)`.
pub fn normal_(t: &Tensor, std: f64) -> Result<()> {
    random_float_fill(t, "normal_")?;
    if std < 0.0 {
        return Err(TensorError::other(format!(
            "normal expects std >= 0.0, but found std {std}"
        )));
    }
    Ok(())
}

/// `random_(from, to)`.
pub fn random_from_to_(low: i64, high: i64) -> Result<()> {
    if high <= low {
        return Err(TensorError::other(format!(
            "random_ expects 'from' to be less than 'to', but got from={low} >= to={high}"
        )));
    }
    Ok(())
}
