//! Indexing and rearranging copies: `index_select`, `gather`, `scatter`, `flip`, `roll`,
//! `tril`/`triu`, `diag`, `sort` and `topk`.
//!
//! Elements move without arithmetic, so each op runs in the domain that holds its dtype
//! exactly (`i64` for integers and bool, `f64` for floating types, `C64` for complex).

use super::meta;
use super::wrap_dim;
use crate::element::C64;
use crate::error::{Result, TensorError};
use crate::tensor::{tensor_from_domain, Domain};
use crate::{contiguous_strides, Scalar, ScalarType, Tensor};

/// Runs `$body` with `$D` the exact domain of dtype `$dt`.
macro_rules! by_domain {
    ($dt:expr, $D:ident => $body:expr) => {{
        let dt: ScalarType = $dt;
        if dt.is_complex() {
            type $D = C64;
            $body
        } else if dt.is_integral(true) {
            type $D = i64;
            $body
        } else {
            type $D = f64;
            $body
        }
    }};
}

/// Row-major multi-index iteration over `sizes`, calling `f(flat, index)`.
fn for_each_index(sizes: &[usize], mut f: impl FnMut(usize, &[usize]) -> Result<()>) -> Result<()> {
    let n: usize = sizes.iter().product();
    let mut idx = vec![0usize; sizes.len()];
    for flat in 0..n {
        f(flat, &idx)?;
        for d in (0..sizes.len()).rev() {
            idx[d] += 1;
            if idx[d] < sizes[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    Ok(())
}

/// The flat (row-major) position of `idx` in a tensor of `sizes`.
fn flat_of(idx: &[usize], strides: &[usize]) -> usize {
    idx.iter().zip(strides).map(|(i, s)| i * s).sum()
}

/// Index values as i64.
fn indices(index: &Tensor) -> Result<Vec<i64>> {
    index.load::<i64>()
}

/// `index_select(t, dim, index)`.
pub fn index_select(t: &Tensor, dim: i64, index: &Tensor) -> Result<Tensor> {
    let spec = meta::index_select(t, dim, index)?;
    let d = wrap_dim(dim, t.dim())?;
    let idx = indices(index)?;
    let size = if t.dim() == 0 { 1 } else { t.sizes()[d] };
    let mut picked = Vec::with_capacity(idx.len());
    for &i in &idx {
        if i < 0 || i as usize >= size {
            return Err(TensorError::IndexOutOfRange(
                "index out of range in self".into(),
            ));
        }
        picked.push(i as usize);
    }
    if t.dim() == 0 {
        return super::clone(t);
    }
    let in_strides = contiguous_strides(t.sizes());
    by_domain!(t.dtype(), D => {
        let v = t.load::<D>()?;
        let mut out: Vec<D> = Vec::with_capacity(spec.sizes.iter().product());
        let mut src = vec![0usize; t.dim()];
        for_each_index(&spec.sizes, |_, o| {
            src.copy_from_slice(o);
            src[d] = picked[o[d]];
            out.push(v[flat_of(&src, &in_strides)]);
            Ok(())
        })?;
        Ok(tensor_from_domain(&out, &spec.sizes, t.dtype()))
    })
}

fn gather_bound(v: i64, d: usize, size: usize) -> Result<usize> {
    if v < -(size as i64) || v >= size as i64 {
        return Err(TensorError::other(format!(
            "index {v} is out of bounds for dimension {d} with size {size}"
        )));
    }
    Ok(if v < 0 {
        (v + size as i64) as usize
    } else {
        v as usize
    })
}

/// `gather(t, dim, index)`: `out[i][j] = t[index[i][j]][j]` (for `dim == 0`).
pub fn gather(t: &Tensor, dim: i64, index: &Tensor) -> Result<Tensor> {
    let spec = meta::gather(t, dim, index)?;
    let d = wrap_dim(dim, t.dim())?;
    let idx = indices(index)?;
    let tsizes: Vec<usize> = if t.dim() == 0 {
        vec![1]
    } else {
        t.sizes().to_vec()
    };
    let in_strides = contiguous_strides(&tsizes);
    let isizes: Vec<usize> = if index.dim() == 0 {
        vec![1]
    } else {
        index.sizes().to_vec()
    };
    by_domain!(t.dtype(), D => {
        let v = t.load::<D>()?;
        let mut out: Vec<D> = Vec::with_capacity(idx.len());
        let mut src = vec![0usize; tsizes.len()];
        for_each_index(&isizes, |flat, o| {
            src.copy_from_slice(o);
            src[d] = gather_bound(idx[flat], d, tsizes[d])?;
            out.push(v[flat_of(&src, &in_strides)]);
            Ok(())
        })?;
        Ok(tensor_from_domain(&out, &spec.sizes, t.dtype()))
    })
}

/// `scatter(t, dim, index, src)` / `scatter(t, dim, index, value)`: a copy of `t` with
/// `out[index[i][j]][j] = src[i][j]` (for `dim == 0`).
pub fn scatter(
    t: &Tensor,
    dim: i64,
    index: &Tensor,
    src: Option<&Tensor>,
    value: Option<Scalar>,
) -> Result<Tensor> {
    let spec = meta::scatter(t, dim, index, src)?;
    let d = wrap_dim(dim, t.dim())?;
    let idx = indices(index)?;
    let tsizes: Vec<usize> = if t.dim() == 0 {
        vec![1]
    } else {
        t.sizes().to_vec()
    };
    let out_strides = contiguous_strides(&tsizes);
    let isizes: Vec<usize> = if index.dim() == 0 {
        vec![1]
    } else {
        index.sizes().to_vec()
    };
    by_domain!(t.dtype(), D => {
        let mut out = t.load::<D>()?;
        let vals: Vec<D> = match (src, value) {
            (Some(s), _) => {
                let s_strides = if s.dim() == 0 {
                    vec![0usize]
                } else {
                    contiguous_strides(s.sizes())
                };
                let sv = s.load::<D>()?;
                let mut picked = Vec::with_capacity(idx.len());
                for_each_index(&isizes, |_, o| {
                    picked.push(sv[flat_of(o, &s_strides)]);
                    Ok(())
                })?;
                picked
            }
            (None, Some(v)) => {
                let one = Tensor::scalar_tensor(v, t.dtype(), crate::Device::Cpu)?;
                vec![one.load::<D>()?[0]; idx.len()]
            }
            (None, None) => return Err(TensorError::other("scatter(): nothing to scatter")),
        };
        let mut dst = vec![0usize; tsizes.len()];
        for_each_index(&isizes, |flat, o| {
            dst.copy_from_slice(o);
            dst[d] = gather_bound(idx[flat], d, tsizes[d])?;
            out[flat_of(&dst, &out_strides)] = vals[flat];
            Ok(())
        })?;
        Ok(tensor_from_domain(&out, &spec.sizes, t.dtype()))
    })
}

/// A copy of `t` whose element at each index is `t`'s at `map(index)`.
fn remap(t: &Tensor, map: impl Fn(&[usize], &mut [usize])) -> Result<Tensor> {
    let strides = contiguous_strides(t.sizes());
    by_domain!(t.dtype(), D => {
        let v = t.load::<D>()?;
        let mut out: Vec<D> = Vec::with_capacity(v.len());
        let mut src = vec![0usize; t.dim()];
        for_each_index(t.sizes(), |_, o| {
            map(o, &mut src);
            out.push(v[flat_of(&src, &strides)]);
            Ok(())
        })?;
        Ok(tensor_from_domain(&out, t.sizes(), t.dtype()))
    })
}

/// `flip(t, dims)`: the elements in reverse order along each of `dims`.
pub fn flip(t: &Tensor, dims: &[i64]) -> Result<Tensor> {
    let flipped = meta::flip(t, dims)?;
    let sizes = t.sizes().to_vec();
    remap(t, |o, src| {
        for (k, (&i, &f)) in o.iter().zip(&flipped).enumerate() {
            src[k] = if f { sizes[k] - 1 - i } else { i };
        }
    })
}

/// `roll(t, shifts, dims)`: elements shifted circularly; no dims rolls the flattened tensor.
pub fn roll(t: &Tensor, shifts: &[i64], dims: &[i64]) -> Result<Tensor> {
    meta::roll(t, shifts, dims)?;
    if dims.is_empty() {
        let flat = super::reshape(t, &[-1])?;
        let r = roll(&flat, shifts, &[0])?;
        let shape: Vec<i64> = t.sizes().iter().map(|&s| s as i64).collect();
        return super::reshape(&r, &shape);
    }
    if t.dim() == 0 {
        return super::clone(t);
    }
    let sizes = t.sizes().to_vec();
    let mut shift = vec![0i64; t.dim()];
    for (&s, &d) in shifts.iter().zip(dims) {
        let w = wrap_dim(d, t.dim())?;
        shift[w] += s;
    }
    remap(t, |o, src| {
        for k in 0..o.len() {
            let n = sizes[k] as i64;
            src[k] = if n == 0 {
                0
            } else {
                (o[k] as i64 - shift[k]).rem_euclid(n) as usize
            };
        }
    })
}

/// `tril` (`lower`) / `triu` with `diagonal`: the other triangle of the last two dimensions
/// zeroed.
pub fn triangle(t: &Tensor, diagonal: i64, lower: bool) -> Result<Tensor> {
    meta::triangle(t, if lower { "tril" } else { "triu" })?;
    let nd = t.dim();
    by_domain!(t.dtype(), D => {
        let mut v = t.load::<D>()?;
        let zero = <D as Domain>::from_elem(0i64);
        for_each_index(t.sizes(), |flat, o| {
            let (i, j) = (o[nd - 2] as i64, o[nd - 1] as i64);
            let keep = if lower { j - i <= diagonal } else { j - i >= diagonal };
            if !keep {
                v[flat] = zero;
            }
            Ok(())
        })?;
        Ok(tensor_from_domain(&v, t.sizes(), t.dtype()))
    })
}

/// `diag(t, diagonal)`: a vector on a matrix's diagonal, or a matrix's diagonal as a vector.
pub fn diag(t: &Tensor, diagonal: i64) -> Result<Tensor> {
    let spec = meta::diag(t, diagonal)?;
    by_domain!(t.dtype(), D => {
        let v = t.load::<D>()?;
        if t.dim() == 1 {
            let n = spec.sizes[0];
            let mut out = vec![<D as Domain>::from_elem(0i64); n * n];
            for (k, &x) in v.iter().enumerate() {
                let (i, j) = if diagonal >= 0 {
                    (k, k + diagonal as usize)
                } else {
                    (k + diagonal.unsigned_abs() as usize, k)
                };
                out[i * n + j] = x;
            }
            Ok(tensor_from_domain(&out, &spec.sizes, t.dtype()))
        } else {
            let c = t.sizes()[1];
            let out: Vec<D> = (0..spec.sizes[0])
                .map(|k| {
                    let (i, j) = if diagonal >= 0 {
                        (k, k + diagonal as usize)
                    } else {
                        (k + diagonal.unsigned_abs() as usize, k)
                    };
                    v[i * c + j]
                })
                .collect();
            Ok(tensor_from_domain(&out, &spec.sizes, t.dtype()))
        }
    })
}

/// The order of one row for `sort`/`topk`: NaN counts as larger than every number (so it
/// comes last ascending, first descending); ties keep their positions (a stable sort).
fn order_row(row: &[f64], descending: bool) -> Vec<usize> {
    let mut ix: Vec<usize> = (0..row.len()).collect();
    let key = |a: f64, b: f64| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Greater,
        (false, true) => std::cmp::Ordering::Less,
        _ => a.partial_cmp(&b).unwrap_or(std::cmp::Ordering::Equal),
    };
    if descending {
        ix.sort_by(|&a, &b| key(row[b], row[a]));
    } else {
        ix.sort_by(|&a, &b| key(row[a], row[b]));
    }
    ix
}

/// `sort(t, dim, descending)` (`k == None`) or `topk(t, k, dim, largest, sorted)`: values and
/// int64 indices along `dim`.
pub fn sort_topk(
    t: &Tensor,
    dim: i64,
    descending: bool,
    k: Option<usize>,
) -> Result<(Tensor, Tensor)> {
    if t.dtype().is_complex() {
        return Err(TensorError::unsupported(
            if k.is_some() { "topk_cpu" } else { "sort" },
            t.dtype(),
        ));
    }
    let d = wrap_dim(dim, t.dim())?;
    if t.dim() == 0 {
        let idx = Tensor::zeros(&[], ScalarType::Int64, t.device())?;
        let vals = if k == Some(0) {
            return Err(TensorError::IndexOutOfRange(
                "selected index k out of range".into(),
            ));
        } else {
            super::clone(t)?
        };
        return Ok((vals, idx));
    }
    let len = t.sizes()[d];
    let keep = k.unwrap_or(len);
    let mut order: Vec<usize> = (0..t.dim()).filter(|&i| i != d).collect();
    order.push(d);
    let psizes: Vec<usize> = order.iter().map(|&i| t.sizes()[i]).collect();
    let pstrides: Vec<usize> = order.iter().map(|&i| t.strides()[i]).collect();
    let mut back = vec![0i64; t.dim()];
    for (pos, &i) in order.iter().enumerate() {
        back[i] = pos as i64;
    }
    let keys = t.load_strided::<f64>(&psizes, &pstrides)?;
    let mut out_sizes = psizes.clone();
    *out_sizes.last_mut().expect("rank >= 1") = keep;
    let rows = keys.len().checked_div(len).unwrap_or(0);
    let mut picks: Vec<usize> = Vec::with_capacity(rows * keep);
    for r in 0..rows {
        let ix = order_row(&keys[r * len..(r + 1) * len], descending);
        picks.extend(ix.into_iter().take(keep));
    }
    let finish =
        |vals: Tensor| -> Result<Tensor> { super::contiguous(&super::permute(&vals, &back)?) };
    let idx: Vec<i64> = picks.iter().map(|&i| i as i64).collect();
    let idx_t = finish(tensor_from_domain(&idx, &out_sizes, ScalarType::Int64))?;
    let vals_t = by_domain!(t.dtype(), D => {
        let v = t.load_strided::<D>(&psizes, &pstrides)?;
        let out: Vec<D> = (0..rows)
            .flat_map(|r| (0..keep).map(move |j| (r, j)))
            .map(|(r, j)| v[r * len + picks[r * keep + j]])
            .collect();
        finish(tensor_from_domain(&out, &out_sizes, t.dtype()))?
    });
    Ok((vals_t, idx_t))
}

/// `scatter_add(t, dim, index, src)`: a copy of `t` with `out[index[i][j]][j] += src[i][j]`
/// (for `dim == 0`); repeated indices accumulate.
pub fn scatter_add(t: &Tensor, dim: i64, index: &Tensor, src: &Tensor) -> Result<Tensor> {
    let spec = meta::scatter(t, dim, index, Some(src))?;
    let d = wrap_dim(dim, t.dim())?;
    let idx = indices(index)?;
    let tsizes: Vec<usize> = if t.dim() == 0 {
        vec![1]
    } else {
        t.sizes().to_vec()
    };
    let out_strides = contiguous_strides(&tsizes);
    let isizes: Vec<usize> = if index.dim() == 0 {
        vec![1]
    } else {
        index.sizes().to_vec()
    };
    let s_strides = if src.dim() == 0 {
        vec![0usize]
    } else {
        contiguous_strides(src.sizes())
    };
    by_domain!(t.dtype(), D => {
        let mut out = t.load::<D>()?;
        let sv = src.load::<D>()?;
        let mut dst = vec![0usize; tsizes.len()];
        for_each_index(&isizes, |flat, o| {
            dst.copy_from_slice(o);
            dst[d] = gather_bound(idx[flat], d, tsizes[d])?;
            let k = flat_of(&dst, &out_strides);
            out[k] += sv[flat_of(o, &s_strides)];
            Ok(())
        })?;
        Ok(tensor_from_domain(&out, &spec.sizes, t.dtype()))
    })
}

/// `index_add(t, dim, index, source, alpha)`: a copy of `t` with
/// `out[..., index[i], ...] += alpha * source[..., i, ...]`.
pub fn index_add(
    t: &Tensor,
    dim: i64,
    index: &Tensor,
    source: &Tensor,
    alpha: Scalar,
) -> Result<Tensor> {
    let spec = meta::index_add(t, dim, index, source)?;
    let d = wrap_dim(dim, t.dim())?;
    let idx = indices(index)?;
    let tsizes: Vec<usize> = if t.dim() == 0 {
        vec![1]
    } else {
        t.sizes().to_vec()
    };
    let size = tsizes[d];
    for &i in &idx {
        if i < 0 || i as usize >= size {
            return Err(TensorError::IndexOutOfRange(
                "index out of range in self".into(),
            ));
        }
    }
    let out_strides = contiguous_strides(&tsizes);
    let ssizes: Vec<usize> = if source.dim() == 0 {
        vec![1]
    } else {
        source.sizes().to_vec()
    };
    by_domain!(t.dtype(), D => {
        let mut out = t.load::<D>()?;
        let sv = source.load::<D>()?;
        let a = Tensor::scalar_tensor(alpha, t.dtype(), crate::Device::Cpu)?.load::<D>()?[0];
        let mut dst = vec![0usize; tsizes.len()];
        for_each_index(&ssizes, |flat, o| {
            dst.copy_from_slice(o);
            dst[d] = idx[o[d]] as usize;
            let k = flat_of(&dst, &out_strides);
            out[k] += a * sv[flat];
            Ok(())
        })?;
        Ok(tensor_from_domain(&out, &spec.sizes, t.dtype()))
    })
}
