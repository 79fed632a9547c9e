//! Reductions: sum, mean, max/min (all-reduce and along a dimension, with
//! indices), argmax/argmin.
//!
//! Every reduction loads the input with its dimensions permuted so that the
//! reduced ones come last; each output element then owns one contiguous run.

use super::meta::{self, ReductionSpec};
use super::{cascade, extreme};
use crate::element::{cast_slice, Element, Pod, C64};
use crate::error::Result;
use crate::tensor::{tensor_from_domain, Domain};
use crate::{ScalarType, Tensor};

/// Output shapes and the grouped input values of a reduction over `dims`.
pub(super) struct Plan {
    out_shape: Vec<usize>,
    /// Which input dimensions are reduced.
    reduced: Vec<bool>,
    /// Elements per output group.
    group: usize,
    perm_sizes: Vec<usize>,
    perm_strides: Vec<usize>,
}

/// The load order for a reduction whose output the meta function has sized: kept
/// dimensions first, reduced ones last.
pub(super) fn plan(t: &Tensor, spec: &ReductionSpec) -> Plan {
    let (mut ps, mut pst, mut rs, mut rst) = (vec![], vec![], vec![], vec![]);
    for (i, &red) in spec.reduced.iter().enumerate() {
        let (s, st) = (t.sizes()[i], t.strides()[i]);
        if red {
            rs.push(s);
            rst.push(st);
        } else {
            ps.push(s);
            pst.push(st);
        }
    }
    ps.extend(rs);
    pst.extend(rst);
    Plan {
        out_shape: spec.out.sizes.to_vec(),
        reduced: spec.reduced.clone(),
        group: spec.group,
        perm_sizes: ps,
        perm_strides: pst,
    }
}

impl Plan {
    pub(super) fn load<D: Domain>(&self, t: &Tensor) -> Result<Vec<D>> {
        t.load_strided(&self.perm_sizes, &self.perm_strides)
    }
    /// `[outer, rows, cols]` when `t` is contiguous and its reduced dimensions are adjacent
    /// (size-1 dimensions aside): the reduction is then over `rows` of a contiguous block.
    fn block(&self, t: &Tensor) -> Option<(usize, usize, usize)> {
        if !t.is_contiguous() {
            return None;
        }
        let (mut outer, mut rows, mut cols) = (1, 1, 1);
        // 0: leading kept dims, 1: reduced dims, 2: trailing kept dims.
        let mut phase = 0;
        for (&s, &r) in t.sizes().iter().zip(&self.reduced) {
            if s == 1 {
                continue;
            }
            match (phase, r) {
                (0, false) => outer *= s,
                (0 | 1, true) => {
                    phase = 1;
                    rows *= s;
                }
                (1 | 2, false) => {
                    phase = 2;
                    cols *= s;
                }
                _ => return None,
            }
        }
        if t.sizes().contains(&0) {
            // Any split of an empty tensor; what matters is which side the zero is on.
            let zero_reduced = t
                .sizes()
                .iter()
                .zip(&self.reduced)
                .any(|(&s, &r)| s == 0 && r);
            let n_out: usize = self.out_shape.iter().product();
            return Some(if zero_reduced {
                (n_out, 0, 1)
            } else {
                (0, self.group, 1)
            });
        }
        Some((outer, rows, cols))
    }
    fn groups<'a, D>(&self, v: &'a [D]) -> impl Iterator<Item = &'a [D]> {
        let n: usize = self.out_shape.iter().product();
        let g = self.group;
        (0..n).map(move |i| &v[i * g..(i + 1) * g])
    }
}

/// Floating sums along the plan in `T` (`t`'s elements converted to `T` first, as torch
/// converts the input to `dtype=`), with torch's cascade; `None` when `T` is not `t`'s
/// computation type here (half types, complex, integers keep the generic path).
fn float_sums<T: cascade::Summable + Element + Pod>(t: &Tensor, p: &Plan) -> Result<Vec<T>> {
    let n_out: usize = p.out_shape.iter().product();
    if t.dtype() == T::DTYPE {
        if let Some((outer, rows, cols)) = p.block(t) {
            let st = t.storage_ref().read()?;
            let x = &cast_slice::<T>(&st).expect("aligned")
                [t.storage_offset()..t.storage_offset() + t.numel()];
            if n_out == 1 && t.numel() > 0 {
                return Ok(vec![cascade::sum_all(x)]);
            }
            let mut out = vec![T::ZERO; n_out];
            cascade::sum_dim(x, outer, rows, cols, &mut out);
            return Ok(out);
        }
    }
    // Other layouts and input types: gather each group into a contiguous run first.
    let v: Vec<T> = p
        .load::<f64>(t)?
        .into_iter()
        .map(<T as cascade::Float>::from_f64)
        .collect();
    let mut out = vec![T::ZERO; n_out];
    if n_out == 1 && !v.is_empty() {
        out[0] = cascade::sum_all(&v);
    } else if n_out > 0 {
        cascade::sum_dim(&v, n_out, p.group, 1, &mut out);
    }
    Ok(out)
}

/// Whether the float kernels sum `t` into `out_dtype`.
fn float_fast(t: &Tensor, out_dtype: ScalarType) -> bool {
    matches!(out_dtype, ScalarType::Float32 | ScalarType::Float64) && t.dtype().is_floating_point()
}

/// `torch.sum(t, dim, keepdim, dtype=)`; `dims = None` (or empty) reduces all.
/// Integral and bool inputs sum as int64.
pub fn sum(
    t: &Tensor,
    dims: Option<&[i64]>,
    keepdim: bool,
    dtype: Option<ScalarType>,
) -> Result<Tensor> {
    crate::release::released(super::work(&[t]), || sum_body(t, dims, keepdim, dtype))
}

fn sum_body(
    t: &Tensor,
    dims: Option<&[i64]>,
    keepdim: bool,
    dtype: Option<ScalarType>,
) -> Result<Tensor> {
    let spec = meta::sum(t, dims, keepdim, dtype)?;
    let out_dtype = spec.out.dtype;
    let p = plan(t, &spec);
    if float_fast(t, out_dtype) {
        return match out_dtype {
            ScalarType::Float32 => Tensor::from_vec(float_sums::<f32>(t, &p)?, &p.out_shape),
            _ => Tensor::from_vec(float_sums::<f64>(t, &p)?, &p.out_shape),
        };
    }
    Ok(if out_dtype.is_complex() || t.dtype().is_complex() {
        let v = p.load::<C64>(t)?;
        let out: Vec<C64> = p.groups(&v).map(|g| g.iter().sum()).collect();
        tensor_from_domain(&out, &p.out_shape, out_dtype)
    } else if out_dtype.is_integral(true) && t.dtype().is_integral(true) {
        let v = p.load::<i64>(t)?;
        let out: Vec<i64> = p
            .groups(&v)
            .map(|g| g.iter().fold(0i64, |a, &b| a.wrapping_add(b)))
            .collect();
        tensor_from_domain(&out, &p.out_shape, out_dtype)
    } else {
        let v = p.load::<f64>(t)?;
        let out: Vec<f64> = p.groups(&v).map(|g| g.iter().sum()).collect();
        tensor_from_domain(&out, &p.out_shape, out_dtype)
    })
}

/// `torch.mean(t, dim, keepdim, dtype=)`: floating or complex inputs only.
pub fn mean(
    t: &Tensor,
    dims: Option<&[i64]>,
    keepdim: bool,
    dtype: Option<ScalarType>,
) -> Result<Tensor> {
    crate::release::released(super::work(&[t]), || mean_body(t, dims, keepdim, dtype))
}

fn mean_body(
    t: &Tensor,
    dims: Option<&[i64]>,
    keepdim: bool,
    dtype: Option<ScalarType>,
) -> Result<Tensor> {
    let spec = meta::mean(t, dims, keepdim, dtype)?;
    let out_dtype = spec.out.dtype;
    let p = plan(t, &spec);
    // As torch: the sum, then divided by the count in the output type.
    if float_fast(t, out_dtype) {
        return match out_dtype {
            ScalarType::Float32 => {
                let n = p.group as f32;
                let v = float_sums::<f32>(t, &p)?
                    .into_iter()
                    .map(|s| s / n)
                    .collect();
                Tensor::from_vec::<f32>(v, &p.out_shape)
            }
            _ => {
                let n = p.group as f64;
                let v = float_sums::<f64>(t, &p)?
                    .into_iter()
                    .map(|s| s / n)
                    .collect();
                Tensor::from_vec::<f64>(v, &p.out_shape)
            }
        };
    }
    let n = p.group as f64;
    Ok(if out_dtype.is_complex() {
        let v = p.load::<C64>(t)?;
        let out: Vec<C64> = p.groups(&v).map(|g| g.iter().sum::<C64>() / n).collect();
        tensor_from_domain(&out, &p.out_shape, out_dtype)
    } else {
        let v = p.load::<f64>(t)?;
        let out: Vec<f64> = p.groups(&v).map(|g| g.iter().sum::<f64>() / n).collect();
        tensor_from_domain(&out, &p.out_shape, out_dtype)
    })
}

/// (index, value) of the extreme of a group; NaN wins and the first occurrence is kept.
fn extreme<D: Copy + PartialOrd>(
    g: &[D],
    want_max: bool,
    is_nan: impl Fn(D) -> bool,
) -> (usize, D) {
    let mut best = (0, g[0]);
    if is_nan(best.1) {
        return best;
    }
    for (i, &x) in g.iter().enumerate().skip(1) {
        if is_nan(x) {
            return (i, x);
        }
        if (want_max && x > best.1) || (!want_max && x < best.1) {
            best = (i, x);
        }
    }
    best
}

/// Shared body of max/min/argmax/argmin: (values, indices) over `dims`.
fn extreme_reduce(
    t: &Tensor,
    dim: Option<i64>,
    keepdim: bool,
    want_max: bool,
    name: &str,
) -> Result<(Tensor, Tensor)> {
    let p = plan(t, &meta::extreme(t, dim, keepdim, name)?);
    match t.dtype() {
        ScalarType::Float32 => {
            if let Some(r) = float_extremes::<f32>(t, &p, want_max)? {
                return Ok(r);
            }
        }
        ScalarType::Float64 => {
            if let Some(r) = float_extremes::<f64>(t, &p, want_max)? {
                return Ok(r);
            }
        }
        _ => {}
    }
    let (vals, idx) = if t.dtype().is_integral(true) {
        let v = p.load::<i64>(t)?;
        let r: Vec<(usize, i64)> = p
            .groups(&v)
            .map(|g| extreme(g, want_max, |_| false))
            .collect();
        (
            tensor_from_domain(
                &r.iter().map(|x| x.1).collect::<Vec<_>>(),
                &p.out_shape,
                t.dtype(),
            ),
            r.iter().map(|x| x.0 as i64).collect::<Vec<_>>(),
        )
    } else {
        let v = p.load::<f64>(t)?;
        let r: Vec<(usize, f64)> = p
            .groups(&v)
            .map(|g| extreme(g, want_max, f64::is_nan))
            .collect();
        (
            tensor_from_domain(
                &r.iter().map(|x| x.1).collect::<Vec<_>>(),
                &p.out_shape,
                t.dtype(),
            ),
            r.iter().map(|x| x.0 as i64).collect::<Vec<_>>(),
        )
    };
    Ok((
        vals,
        tensor_from_domain(&idx, &p.out_shape, ScalarType::Int64),
    ))
}

/// Values and indices of a contiguous float reduction with adjacent reduced dims, through the
/// vectorized kernels; `None` for other layouts. The group is non-empty (checked by the caller).
fn float_extremes<T: cascade::Float + Element + Pod>(
    t: &Tensor,
    p: &Plan,
    want_max: bool,
) -> Result<Option<(Tensor, Tensor)>> {
    let Some((outer, rows, cols)) = p.block(t) else {
        return Ok(None);
    };
    let n_out: usize = p.out_shape.iter().product();
    let st = t.storage_ref().read()?;
    let x =
        &cast_slice::<T>(&st).expect("aligned")[t.storage_offset()..t.storage_offset() + t.numel()];
    let (mut vals, mut idx) = (vec![T::ZERO; n_out], vec![0i64; n_out]);
    if n_out == 1 {
        let (i, v) = if want_max {
            extreme::extreme_all::<T, true>(x)
        } else {
            extreme::extreme_all::<T, false>(x)
        };
        (vals[0], idx[0]) = (v, i as i64);
    } else if n_out > 0 {
        if want_max {
            extreme::extreme_dim::<T, true>(x, outer, rows, cols, &mut vals, &mut idx);
        } else {
            extreme::extreme_dim::<T, false>(x, outer, rows, cols, &mut vals, &mut idx);
        }
    }
    Ok(Some((
        Tensor::from_vec(vals, &p.out_shape)?,
        Tensor::from_vec(idx, &p.out_shape)?,
    )))
}

/// `max()`/`min()` of a non-empty contiguous float tensor without its index (one vectorized
/// pass); `None` for other inputs (and storages without data), which take the general path.
fn float_extreme_value(t: &Tensor, want_max: bool) -> Result<Option<Tensor>> {
    fn go<T: cascade::Float + Element + Pod>(t: &Tensor, want_max: bool) -> Result<Option<Tensor>> {
        let Ok(st) = t.storage_ref().read() else {
            return Ok(None);
        };
        let x = &cast_slice::<T>(&st).expect("aligned")
            [t.storage_offset()..t.storage_offset() + t.numel()];
        let v = if want_max {
            extreme::extreme_value::<T, true>(x)
        } else {
            extreme::extreme_value::<T, false>(x)
        };
        Tensor::from_vec(vec![v], &[]).map(Some)
    }
    if t.numel() == 0 || !t.is_contiguous() {
        return Ok(None);
    }
    match t.dtype() {
        ScalarType::Float32 => go::<f32>(t, want_max),
        ScalarType::Float64 => go::<f64>(t, want_max),
        _ => Ok(None),
    }
}

/// `torch.max(t)`: the largest element as a 0-dim tensor (NaN propagates).
pub fn max(t: &Tensor) -> Result<Tensor> {
    crate::release::released(super::work(&[t]), || max_body(t))
}

fn max_body(t: &Tensor) -> Result<Tensor> {
    if let Some(v) = float_extreme_value(t, true)? {
        return Ok(v);
    }
    Ok(extreme_reduce(t, None, false, true, "max")?.0)
}
/// `torch.min(t)`.
pub fn min(t: &Tensor) -> Result<Tensor> {
    crate::release::released(super::work(&[t]), || min_body(t))
}

fn min_body(t: &Tensor) -> Result<Tensor> {
    if let Some(v) = float_extreme_value(t, false)? {
        return Ok(v);
    }
    Ok(extreme_reduce(t, None, false, false, "min")?.0)
}
/// `torch.max(t, dim, keepdim)`: (values, indices).
pub fn max_dim(t: &Tensor, dim: i64, keepdim: bool) -> Result<(Tensor, Tensor)> {
    crate::release::released(super::work(&[t]), || max_dim_body(t, dim, keepdim))
}

fn max_dim_body(t: &Tensor, dim: i64, keepdim: bool) -> Result<(Tensor, Tensor)> {
    extreme_reduce(t, Some(dim), keepdim, true, "max")
}
/// `torch.min(t, dim, keepdim)`: (values, indices).
pub fn min_dim(t: &Tensor, dim: i64, keepdim: bool) -> Result<(Tensor, Tensor)> {
    crate::release::released(super::work(&[t]), || min_dim_body(t, dim, keepdim))
}

fn min_dim_body(t: &Tensor, dim: i64, keepdim: bool) -> Result<(Tensor, Tensor)> {
    extreme_reduce(t, Some(dim), keepdim, false, "min")
}
/// `torch.argmax(t, dim=None, keepdim)`: without `dim`, the flat index.
pub fn argmax(t: &Tensor, dim: Option<i64>, keepdim: bool) -> Result<Tensor> {
    crate::release::released(super::work(&[t]), || argmax_body(t, dim, keepdim))
}

fn argmax_body(t: &Tensor, dim: Option<i64>, keepdim: bool) -> Result<Tensor> {
    arg_extreme(t, dim, keepdim, true, "argmax")
}
/// `torch.argmin(t, dim=None, keepdim)`.
pub fn argmin(t: &Tensor, dim: Option<i64>, keepdim: bool) -> Result<Tensor> {
    crate::release::released(super::work(&[t]), || argmin_body(t, dim, keepdim))
}

fn argmin_body(t: &Tensor, dim: Option<i64>, keepdim: bool) -> Result<Tensor> {
    arg_extreme(t, dim, keepdim, false, "argmin")
}

fn arg_extreme(
    t: &Tensor,
    dim: Option<i64>,
    keepdim: bool,
    want_max: bool,
    name: &str,
) -> Result<Tensor> {
    let (_, idx) = extreme_reduce(t, dim, keepdim, want_max, name)?;
    if dim.is_none() && keepdim {
        // keepdim without a dim keeps every dimension at size 1.
        let ones: Vec<i64> = vec![1; t.dim()];
        return super::reshape(&idx, &ones);
    }
    Ok(idx)
}
