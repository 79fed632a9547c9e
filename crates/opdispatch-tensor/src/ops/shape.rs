//! Views (view/reshape/transpose/permute/squeeze/unsqueeze/expand/select/slice/
//! indexing), and data movement (contiguous/clone/copy_/fill_/to/cat/stack).
//! Views are new impls over the *same* storage.

use super::{broadcast_strides, wrap_dim};
use crate::element::{dispatch_dtype, Element, C64};
use crate::error::{Result, TensorError};
use crate::parallel::GRAIN_SIZE;
use crate::tensor::{contiguous_strides, elem_of_scalar, for_each_offset, numel_of};
use crate::{Device, Scalar, ScalarType, Tensor};

/// Resolve a shape that may contain one `-1` against `numel` (ATen's `infer_size`).
pub fn infer_size(shape: &[i64], numel: usize) -> Result<Vec<usize>> {
    let mut infer = None;
    let mut prod = 1usize;
    for (i, &s) in shape.iter().enumerate() {
        if s == -1 {
            if infer.is_some() {
                return Err(TensorError::shape("only one dimension can be inferred"));
            }
            infer = Some(i);
        } else if s < 0 {
            return Err(TensorError::shape(format!("invalid shape dimension {s}")));
        } else {
            prod = prod.saturating_mul(s as usize);
        }
    }
    let invalid = || {
        TensorError::shape(format!(
            "shape '{shape:?}' is invalid for input of size {numel}"
        ))
    };
    let mut out: Vec<usize> = shape.iter().map(|&s| s.max(0) as usize).collect();
    match infer {
        None if prod == numel => Ok(out),
        None => Err(invalid()),
        Some(i) => {
            if prod == 0 {
                return Err(TensorError::shape(format!(
                    "cannot reshape tensor of 0 elements into shape {shape:?} because the unspecified dimension size -1 can be any value and is ambiguous"
                )));
            }
            if !numel.is_multiple_of(prod) {
                return Err(invalid());
            }
            out[i] = numel / prod;
            Ok(out)
        }
    }
}

/// Strides for viewing (`old_sizes`, `old_strides`) as `new_sizes` without a
/// copy, or `None` if a new dimension would span non-contiguous chunks
/// (ATen's `computeStride`).
pub fn compute_view_strides(
    old_sizes: &[usize],
    old_strides: &[usize],
    new_sizes: &[usize],
) -> Option<Vec<usize>> {
    if old_sizes.is_empty() {
        return Some(vec![1; new_sizes.len()]);
    }
    let numel: usize = old_sizes.iter().product();
    if numel == 0 {
        if old_sizes == new_sizes {
            return Some(old_strides.to_vec());
        }
        return Some(contiguous_strides(new_sizes));
    }
    let mut new_strides = vec![0usize; new_sizes.len()];
    let mut view_d = new_sizes.len() as isize - 1;
    let mut chunk_base = *old_strides.last().unwrap();
    let (mut tensor_numel, mut view_numel) = (1usize, 1usize);
    for td in (0..old_sizes.len()).rev() {
        tensor_numel *= old_sizes[td];
        // End of a contiguous chunk?
        if td == 0 || (old_sizes[td - 1] != 1 && old_strides[td - 1] != tensor_numel * chunk_base) {
            while view_d >= 0 && (view_numel < tensor_numel || new_sizes[view_d as usize] == 1) {
                new_strides[view_d as usize] = view_numel * chunk_base;
                view_numel *= new_sizes[view_d as usize];
                view_d -= 1;
            }
            if view_numel != tensor_numel {
                return None;
            }
            if td > 0 {
                chunk_base = old_strides[td - 1];
                tensor_numel = 1;
                view_numel = 1;
            }
        }
    }
    (view_d == -1).then_some(new_strides)
}

/// `t.view(shape)`: a view, or an error if the strides do not allow one.
pub fn view(t: &Tensor, shape: &[i64]) -> Result<Tensor> {
    let sizes = infer_size(shape, t.numel())?;
    let strides = compute_view_strides(t.sizes(), t.strides(), &sizes).ok_or_else(|| {
        TensorError::other(
            "view size is not compatible with input tensor's size and stride (at least one dimension spans across two contiguous subspaces). Use .reshape(...) instead.",
        )
    })?;
    Ok(t.view_with(sizes, strides, t.storage_offset()))
}

/// `t.reshape(shape)`: a view when possible, else a contiguous copy.
pub fn reshape(t: &Tensor, shape: &[i64]) -> Result<Tensor> {
    let sizes = infer_size(shape, t.numel())?;
    match compute_view_strides(t.sizes(), t.strides(), &sizes) {
        Some(strides) => Ok(t.view_with(sizes, strides, t.storage_offset())),
        None => {
            let c = clone(t)?;
            Ok(c.view_with(sizes.clone(), contiguous_strides(&sizes), 0))
        }
    }
}

/// `t.flatten(start_dim, end_dim)`.
pub fn flatten(t: &Tensor, start_dim: i64, end_dim: i64) -> Result<Tensor> {
    let (s, e) = (wrap_dim(start_dim, t.dim())?, wrap_dim(end_dim, t.dim())?);
    if s > e {
        return Err(TensorError::other(
            "flatten() has invalid args: start_dim cannot come after end_dim",
        ));
    }
    if t.dim() == 0 {
        return reshape(t, &[1]);
    }
    let mut shape: Vec<i64> = t.sizes()[..s].iter().map(|&x| x as i64).collect();
    shape.push(t.sizes()[s..=e].iter().product::<usize>() as i64);
    shape.extend(t.sizes()[e + 1..].iter().map(|&x| x as i64));
    reshape(t, &shape)
}

/// `t.transpose(dim0, dim1)` (a view).
pub fn transpose(t: &Tensor, dim0: i64, dim1: i64) -> Result<Tensor> {
    let (a, b) = (wrap_dim(dim0, t.dim())?, wrap_dim(dim1, t.dim())?);
    let (mut sizes, mut strides) = (t.sizes().to_vec(), t.strides().to_vec());
    if t.dim() > 0 {
        sizes.swap(a, b);
        strides.swap(a, b);
    }
    Ok(t.view_with(sizes, strides, t.storage_offset()))
}

/// `t.t()`: transpose of a tensor with at most 2 dimensions.
pub fn t(x: &Tensor) -> Result<Tensor> {
    if x.dim() > 2 {
        return Err(TensorError::other(format!(
            "t() expects a tensor with <= 2 dimensions, but self is {}D",
            x.dim()
        )));
    }
    if x.dim() < 2 {
        return Ok(x.view_with(x.sizes().to_vec(), x.strides().to_vec(), x.storage_offset()));
    }
    transpose(x, 0, 1)
}

/// `t.permute(dims)` (a view).
pub fn permute(t: &Tensor, dims: &[i64]) -> Result<Tensor> {
    if dims.len() != t.dim() {
        return Err(TensorError::other(format!(
            "permute(sparse_coo): number of dimensions in the tensor input does not match the length of the desired ordering of dimensions i.e. input.dim() = {} is not equal to len(dims) = {}",
            t.dim(),
            dims.len()
        )));
    }
    let mut seen = vec![false; t.dim()];
    let (mut sizes, mut strides) = (Vec::with_capacity(t.dim()), Vec::with_capacity(t.dim()));
    for &d in dims {
        let d = wrap_dim(d, t.dim())?;
        if seen[d] {
            return Err(TensorError::other(
                "permute(): duplicate dims are not allowed.",
            ));
        }
        seen[d] = true;
        sizes.push(t.sizes()[d]);
        strides.push(t.strides()[d]);
    }
    Ok(t.view_with(sizes, strides, t.storage_offset()))
}

/// `t.squeeze()` / `t.squeeze(dim)`: drop size-1 dimensions (a view).
pub fn squeeze(t: &Tensor, dim: Option<i64>) -> Result<Tensor> {
    let keep: Vec<bool> = match dim {
        None => t.sizes().iter().map(|&s| s != 1).collect(),
        Some(d) => {
            let d = wrap_dim(d, t.dim())?;
            (0..t.dim()).map(|i| i != d || t.sizes()[i] != 1).collect()
        }
    };
    let sizes = t
        .sizes()
        .iter()
        .zip(&keep)
        .filter(|(_, &k)| k)
        .map(|(&s, _)| s)
        .collect();
    let strides = t
        .strides()
        .iter()
        .zip(&keep)
        .filter(|(_, &k)| k)
        .map(|(&s, _)| s)
        .collect();
    Ok(t.view_with(sizes, strides, t.storage_offset()))
}

/// `t.unsqueeze(dim)`: insert a size-1 dimension (a view).
pub fn unsqueeze(t: &Tensor, dim: i64) -> Result<Tensor> {
    let d = wrap_dim(dim, t.dim() + 1)?;
    let mut sizes = t.sizes().to_vec();
    let mut strides = t.strides().to_vec();
    let st = if d < t.dim() {
        sizes[d] * strides[d]
    } else {
        1
    };
    sizes.insert(d, 1);
    strides.insert(d, st);
    Ok(t.view_with(sizes, strides, t.storage_offset()))
}

/// `t.expand(sizes)`: broadcast to `sizes` (-1 keeps a dimension) as a stride-0 view.
pub fn expand(t: &Tensor, sizes: &[i64]) -> Result<Tensor> {
    if sizes.len() < t.dim() {
        // PyTorch names the tensor by its legacy type (`torch.FloatTensor{[2]}`).
        let device = match t.device() {
            crate::Device::Cpu => String::new(),
            d => format!("{d}."),
        };
        return Err(TensorError::other(format!(
            "expand(torch.{device}{}Tensor{{{:?}}}, size={sizes:?}): the number of sizes provided ({}) must be greater or equal to the number of dimensions in the tensor ({})",
            t.dtype().cpp_name(),
            t.sizes(),
            sizes.len(),
            t.dim()
        )));
    }
    let off = sizes.len() - t.dim();
    let mut out_sizes = Vec::with_capacity(sizes.len());
    let mut out_strides = Vec::with_capacity(sizes.len());
    for (i, &s) in sizes.iter().enumerate() {
        if i < off {
            if s < 0 {
                return Err(TensorError::other(format!(
                    "The expanded size of the tensor ({s}) isn't allowed in a leading, non-existing dimension {i}"
                )));
            }
            out_sizes.push(s as usize);
            out_strides.push(0);
            continue;
        }
        let (cur, st) = (t.sizes()[i - off], t.strides()[i - off]);
        if s == -1 || s as usize == cur {
            out_sizes.push(cur);
            out_strides.push(st);
        } else if cur == 1 && s >= 0 {
            out_sizes.push(s as usize);
            out_strides.push(0);
        } else {
            return Err(TensorError::other(format!(
                "The expanded size of the tensor ({s}) must match the existing size ({cur}) at non-singleton dimension {i}.  Target sizes: {sizes:?}.  Tensor sizes: {:?}",
                t.sizes()
            )));
        }
    }
    Ok(t.view_with(out_sizes, out_strides, t.storage_offset()))
}

/// `t.expand_as(other)`-style broadcast to an explicit shape.
pub fn broadcast_to(t: &Tensor, shape: &[usize]) -> Result<Tensor> {
    let s: Vec<i64> = shape.iter().map(|&x| x as i64).collect();
    expand(t, &s)
}

/// A new tensor over the same storage and geometry (`alias`, `detach`).
pub fn alias(t: &Tensor) -> Tensor {
    t.view_with(t.sizes().to_vec(), t.strides().to_vec(), t.storage_offset())
}

/// `torch.as_strided(t, sizes, strides, offset)`.
pub fn as_strided(
    t: &Tensor,
    sizes: &[usize],
    strides: &[usize],
    storage_offset: Option<usize>,
) -> Result<Tensor> {
    Tensor::from_parts(
        t.storage(),
        sizes.to_vec(),
        strides.to_vec(),
        storage_offset.unwrap_or(t.storage_offset()),
        t.dtype(),
    )
}

/// `t.select(dim, index)`: drop `dim` at `index` (a view).
pub fn select(t: &Tensor, dim: i64, index: i64) -> Result<Tensor> {
    if t.dim() == 0 {
        return Err(TensorError::IndexOutOfRange(
            "select() cannot be applied to a 0-dim tensor.".into(),
        ));
    }
    let d = wrap_dim(dim, t.dim())?;
    let n = t.sizes()[d] as i64;
    if index < -n || index >= n {
        return Err(TensorError::IndexOutOfRange(format!(
            "select(): index {index} out of range for tensor of size {:?} at dimension {d}",
            t.sizes()
        )));
    }
    let i = if index < 0 { index + n } else { index } as usize;
    let mut sizes = t.sizes().to_vec();
    let mut strides = t.strides().to_vec();
    let off = t.storage_offset() + i * strides[d];
    sizes.remove(d);
    strides.remove(d);
    Ok(t.view_with(sizes, strides, off))
}

/// `t[..., start:end:step, ...]` along `dim`, with Python clamping (a view).
pub fn slice(
    t: &Tensor,
    dim: i64,
    start: Option<i64>,
    end: Option<i64>,
    step: i64,
) -> Result<Tensor> {
    if t.dim() == 0 {
        return Err(TensorError::IndexOutOfRange(
            "slice() cannot be applied to a 0-dim tensor.".into(),
        ));
    }
    if step <= 0 {
        return Err(TensorError::Value("slice step must be positive".into()));
    }
    let d = wrap_dim(dim, t.dim())?;
    let n = t.sizes()[d] as i64;
    let clamp = |v: i64| if v < 0 { (v + n).max(0) } else { v.min(n) };
    let s = clamp(start.unwrap_or(0));
    let e = clamp(end.unwrap_or(n)).max(s);
    let len = ((e - s) + step - 1) / step;
    let mut sizes = t.sizes().to_vec();
    let mut strides = t.strides().to_vec();
    let off = t.storage_offset() + s as usize * strides[d];
    sizes[d] = len as usize;
    strides[d] *= step as usize;
    Ok(t.view_with(sizes, strides, off))
}

/// `t.narrow(dim, start, length)` (a view).
pub fn narrow(t: &Tensor, dim: i64, start: i64, length: usize) -> Result<Tensor> {
    let d = wrap_dim(dim, t.dim())?;
    let n = t.sizes()[d] as i64;
    let s = if start < 0 { start + n } else { start };
    if s < 0 || s > n || s + length as i64 > n {
        return Err(TensorError::IndexOutOfRange(format!(
            "start ({start}) + length ({length}) exceeds dimension size ({n})."
        )));
    }
    slice(t, d as i64, Some(s), Some(s + length as i64), 1)
}

/// One component of a basic (view-producing) Python index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TensorIndex {
    /// `t[i]`: drops the dimension.
    Int(i64),
    /// `t[a:b:c]`.
    Slice {
        start: Option<i64>,
        stop: Option<i64>,
        step: i64,
    },
    /// `t[None]`: inserts a size-1 dimension.
    None,
    /// `t[...]`.
    Ellipsis,
}

/// `t[indices]` for integer/slice/None/Ellipsis indices (always a view).
pub fn index(t: &Tensor, indices: &[TensorIndex]) -> Result<Tensor> {
    let consumed = indices
        .iter()
        .filter(|i| matches!(i, TensorIndex::Int(_) | TensorIndex::Slice { .. }))
        .count();
    if indices
        .iter()
        .filter(|i| matches!(i, TensorIndex::Ellipsis))
        .count()
        > 1
    {
        return Err(TensorError::IndexOutOfRange(
            "an index can only have a single ellipsis ('...')".into(),
        ));
    }
    if consumed > t.dim() {
        return Err(TensorError::IndexOutOfRange(format!(
            "too many indices for tensor of dimension {}",
            t.dim()
        )));
    }
    let mut out = t.clone();
    let mut d = 0usize; // current dimension of `out`
    for idx in indices {
        match *idx {
            TensorIndex::Int(i) => {
                let n = out.sizes()[d] as i64;
                if i < -n || i >= n {
                    return Err(TensorError::IndexOutOfRange(format!(
                        "index {i} is out of bounds for dimension {d} with size {n}"
                    )));
                }
                out = select(&out, d as i64, i)?;
            }
            TensorIndex::Slice { start, stop, step } => {
                out = slice(&out, d as i64, start, stop, step)?;
                d += 1;
            }
            TensorIndex::None => {
                out = unsqueeze(&out, d as i64)?;
                d += 1;
            }
            TensorIndex::Ellipsis => d += t.dim() - consumed,
        }
    }
    Ok(out)
}

/// `t[indices] = value` (value broadcast to the indexed view).
pub fn index_put_(t: &Tensor, indices: &[TensorIndex], value: &Tensor) -> Result<()> {
    let v = index(t, indices)?;
    copy_(&v, value)
}

/// `t.contiguous()`: the same handle if already contiguous, else a copy.
pub fn contiguous(t: &Tensor) -> Result<Tensor> {
    if t.is_contiguous() {
        Ok(t.clone())
    } else {
        clone(t)
    }
}

/// `t.clone()`: a contiguous copy with fresh storage.
pub fn clone(t: &Tensor) -> Result<Tensor> {
    crate::release::released(super::work(&[t]), || clone_body(t))
}

fn clone_body(t: &Tensor) -> Result<Tensor> {
    if t.is_contiguous() {
        // One copy into an uninitialized buffer (no zero fill, no temporary).
        let isz = t.element_size();
        let n = t.numel() * isz;
        let mut buf = crate::storage::WordBuf::uninit(n)?;
        {
            let r = t.storage_ref().read()?;
            let src = &r[t.storage_offset() * isz..t.storage_offset() * isz + n];
            let dst = buf.data();
            // SAFETY: at least `n` bytes are writable from `dst`, a fresh allocation that
            // cannot overlap `src`; the copy writes all `n`.
            unsafe {
                crate::parallel::copy_bytes(src.as_ptr(), dst, n, GRAIN_SIZE * isz);
                buf.assume_init(n);
            }
        }
        return Ok(Tensor::from_parts_unchecked(
            buf.into_storage(n),
            t.sizes(),
            crate::contiguous_strides_dims(t.sizes()),
            0,
            t.dtype(),
            false,
        ));
    }
    let out = Tensor::empty(t.sizes(), t.dtype(), t.device())?;
    copy_(&out, t)?;
    Ok(out)
}

/// Computation domain that converts `from` to `to` losslessly enough.
fn copy_domain(from: ScalarType, to: ScalarType) -> u8 {
    if from.is_complex() || to.is_complex() {
        3
    } else if from.is_integral(true) && to.is_integral(true) {
        1
    } else {
        2
    }
}

/// `dst.copy_(src)`: broadcast `src` into `dst`, converting dtype. Safe when
/// they alias (the source is read out before the destination is written).
pub fn copy_(dst: &Tensor, src: &Tensor) -> Result<()> {
    crate::release::released(super::work(&[dst, src]), || copy_inplace_body(dst, src))
}

fn copy_inplace_body(dst: &Tensor, src: &Tensor) -> Result<()> {
    super::meta::copy_(dst, src)?;
    let shape = dst.sizes();
    if dst.numel() == 0 {
        return Ok(());
    }
    let sst = broadcast_strides(src, shape);
    // Fast path: same dtype, both contiguous and same shape -> byte copy.
    if dst.dtype() == src.dtype()
        && dst.is_contiguous()
        && src.is_contiguous()
        && src.sizes() == dst.sizes()
    {
        let isz = dst.element_size();
        let n = dst.numel() * isz;
        let (so, d0) = (src.storage_offset() * isz, dst.storage_offset() * isz);
        if !src.storage_ref().ptr_eq(dst.storage_ref()) {
            // Straight from one buffer to the other; waiting for the destination's lock while
            // holding the source's could deadlock against a copy the other way, so that case
            // takes the temporary below.
            let r = src.storage_ref().read()?;
            if let Some(mut w) = dst.storage_ref().try_write() {
                let (from, to) = (&r[so..so + n], &mut w[d0..d0 + n]);
                // SAFETY: two slices of `n` bytes in different storages (checked above), one
                // read-locked and one write-locked for the whole copy.
                unsafe {
                    crate::parallel::copy_bytes(
                        from.as_ptr(),
                        to.as_mut_ptr(),
                        n,
                        GRAIN_SIZE * isz,
                    );
                };
                return Ok(());
            }
        }
        let bytes: Vec<u8> = {
            let r = src.storage_ref().read()?;
            r[src.storage_offset() * isz..src.storage_offset() * isz + n].to_vec()
        };
        let st = dst.storage_ref();
        let mut w = st.write()?;
        w[dst.storage_offset() * isz..dst.storage_offset() * isz + n].copy_from_slice(&bytes);
        return Ok(());
    }
    match copy_domain(src.dtype(), dst.dtype()) {
        1 => dst.store(&src.load_strided::<i64>(shape, &sst)?),
        2 => dst.store(&src.load_strided::<f64>(shape, &sst)?),
        _ => dst.store(&src.load_strided::<C64>(shape, &sst)?),
    }
}

/// `t.fill_(value)`.
pub fn fill_(t: &Tensor, value: Scalar) -> Result<()> {
    crate::release::released(super::work(&[t]), || fill_inplace_body(t, value))
}

fn fill_inplace_body(t: &Tensor, value: Scalar) -> Result<()> {
    t.device().check_available()?;
    if t.numel() == 0 {
        return Ok(());
    }
    let isz = t.element_size();
    let st = t.storage_ref();
    let mut w = st.write()?;
    dispatch_dtype!(t.dtype(), T => {
        let mut enc = [0u8; 8];
        elem_of_scalar::<T>(value).write(&mut enc[..isz]);
        if t.is_contiguous() {
            let start = t.storage_offset() * isz;
            fill_pattern(&mut w[start..start + t.numel() * isz], &enc[..isz]);
        } else {
            for_each_offset(t.sizes(), t.strides(), t.storage_offset(), |o| {
                w[o * isz..(o + 1) * isz].copy_from_slice(&enc[..isz]);
            });
        }
    });
    Ok(())
}

/// Fills `dst` (a whole number of elements) with repetitions of the element `pat`: one
/// `memset` when all its bytes agree (zeros, ones of a byte type), else by doubling the filled
/// prefix, so a large fill is a few dozen `memcpy`s rather than one copy per element.
fn fill_pattern(dst: &mut [u8], pat: &[u8]) {
    debug_assert!(!pat.is_empty() && dst.len().is_multiple_of(pat.len()));
    if pat.iter().all(|&b| b == pat[0]) {
        dst.fill(pat[0]);
        return;
    }
    let Some(first) = dst.get_mut(..pat.len()) else {
        return;
    };
    first.copy_from_slice(pat);
    let mut filled = pat.len();
    while filled < dst.len() {
        let n = filled.min(dst.len() - filled);
        dst.copy_within(..n, filled);
        filled += n;
    }
}

/// `t.zero_()`.
pub fn zero_(t: &Tensor) -> Result<()> {
    fill_(t, Scalar::Int(0))
}

/// `t.to(dtype, device)`: the same handle when nothing changes.
pub fn to(t: &Tensor, dtype: Option<ScalarType>, device: Option<Device>) -> Result<Tensor> {
    let dtype = dtype.unwrap_or(t.dtype());
    let device = device.unwrap_or(t.device());
    if dtype == t.dtype() && device == t.device() {
        return Ok(t.clone());
    }
    let out = super::meta::to(t, Some(dtype), Some(device))?.empty()?;
    if device.index().is_some() || t.device().index().is_some() {
        crate::cuda::copy_(&out, t)?;
    } else {
        copy_(&out, t)?;
    }
    Ok(out)
}

/// `torch.cat(tensors, dim)`.
pub fn cat(tensors: &[&Tensor], dim: i64) -> Result<Tensor> {
    crate::release::released(super::work(tensors), || cat_body(tensors, dim))
}

fn cat_body(tensors: &[&Tensor], dim: i64) -> Result<Tensor> {
    let (spec, d, parts) = super::meta::cat(tensors, dim)?;
    let out = spec.empty()?;
    let mut at = 0usize;
    for t in parts {
        let n = t.sizes()[d];
        copy_(&narrow(&out, d as i64, at as i64, n)?, t)?;
        at += n;
    }
    Ok(out)
}

/// `torch.stack(tensors, dim)`.
pub fn stack(tensors: &[&Tensor], dim: i64) -> Result<Tensor> {
    let d = super::meta::stack(tensors, dim)?;
    let us: Vec<Tensor> = tensors
        .iter()
        .map(|t| unsqueeze(t, d as i64))
        .collect::<Result<_>>()?;
    let refs: Vec<&Tensor> = us.iter().collect();
    cat(&refs, d as i64)
}

/// Number of elements a shape describes (checked).
pub fn shape_numel(sizes: &[usize]) -> Result<usize> {
    numel_of(sizes)
}
