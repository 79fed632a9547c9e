//! The second batch of reductions and scans: `amax`/`amin`, `prod`, `all`/`any`,
//! `cumsum`/`cumprod`, `var`/`std` (with `correction`), `logsumexp`, and softmax /
//! log-softmax along a dimension with their backward kernels.
//!
//! Each loads its input with the reduced (or scanned) dimensions last, so every output element
//! owns one contiguous run, and computes in a domain type (`f64`, `i64`, `bool`, `C64`) that
//! the output dtype is converted from once.

use super::meta::{self, ReductionSpec};
use super::wrap_dim;
use crate::element::C64;
use crate::error::Result;
use crate::tensor::{tensor_from_domain, Domain};
use crate::{ScalarType, Tensor};

/// `t`'s elements with the reduced dimensions last (kept ones first, in order): the load
/// order of `reduce.rs`'s plan.
fn grouped<D: Domain>(t: &Tensor, spec: &ReductionSpec) -> Result<Vec<D>> {
    super::reduce::plan(t, spec).load(t)
}

/// `f` over each group of `v` (one per output element).
fn per_group<D: Copy, O>(v: &[D], spec: &ReductionSpec, f: impl Fn(&[D]) -> O) -> Vec<O> {
    let n: usize = spec.out.sizes.iter().product();
    let g = spec.group;
    (0..n).map(|i| f(&v[i * g..(i + 1) * g])).collect()
}

/// `amax`/`amin` (`max`: which): NaN propagates.
pub fn amax_amin(t: &Tensor, dims: &[i64], keepdim: bool, max: bool) -> Result<Tensor> {
    crate::release::released(super::work(&[t]), || {
        let spec = meta::amax_amin(t, dims, keepdim, if max { "amax" } else { "amin" })?;
        let shape = &spec.out.sizes[..];
        Ok(if t.dtype().is_integral(true) {
            let v = grouped::<i64>(t, &spec)?;
            let out = per_group(&v, &spec, |g| {
                let it = g.iter().copied();
                if max {
                    it.max().unwrap_or(i64::MIN)
                } else {
                    it.min().unwrap_or(i64::MAX)
                }
            });
            tensor_from_domain(&out, shape, spec.out.dtype)
        } else {
            let v = grouped::<f64>(t, &spec)?;
            let out = per_group(&v, &spec, |g| {
                g.iter().copied().fold(
                    if max {
                        f64::NEG_INFINITY
                    } else {
                        f64::INFINITY
                    },
                    |a, b| {
                        if a.is_nan() || b.is_nan() {
                            f64::NAN
                        } else if max {
                            a.max(b)
                        } else {
                            a.min(b)
                        }
                    },
                )
            });
            tensor_from_domain(&out, shape, spec.out.dtype)
        })
    })
}

/// `prod` over one dimension or all.
pub fn prod(
    t: &Tensor,
    dim: Option<i64>,
    keepdim: bool,
    dtype: Option<ScalarType>,
) -> Result<Tensor> {
    crate::release::released(super::work(&[t]), || {
        let spec = meta::prod(t, dim, keepdim, dtype)?;
        let (shape, out) = (&spec.out.sizes[..], spec.out.dtype);
        Ok(if out.is_complex() {
            let v = grouped::<C64>(t, &spec)?;
            let r = per_group(&v, &spec, |g| g.iter().product::<C64>());
            tensor_from_domain(&r, shape, out)
        } else if out.is_integral(true) {
            let v = grouped::<i64>(t, &spec)?;
            let r = per_group(&v, &spec, |g| {
                g.iter().fold(1i64, |a, &b| a.wrapping_mul(b))
            });
            tensor_from_domain(&r, shape, out)
        } else {
            let v = grouped::<f64>(t, &spec)?;
            let r = per_group(&v, &spec, |g| g.iter().product::<f64>());
            tensor_from_domain(&r, shape, out)
        })
    })
}

/// `all` (`any == false`) / `any` over one dimension or all.
pub fn all_any(t: &Tensor, dim: Option<i64>, keepdim: bool, any: bool) -> Result<Tensor> {
    crate::release::released(super::work(&[t]), || {
        let spec = meta::all_any(t, dim, keepdim)?;
        let v: Vec<bool> = if t.dtype().is_complex() {
            grouped::<C64>(t, &spec)?
                .into_iter()
                .map(|z| z.re != 0.0 || z.im != 0.0)
                .collect()
        } else {
            grouped::<bool>(t, &spec)?
        };
        let r = per_group(&v, &spec, |g| {
            if any {
                g.iter().any(|&b| b)
            } else {
                g.iter().all(|&b| b)
            }
        });
        Ok(tensor_from_domain(&r, &spec.out.sizes, spec.out.dtype))
    })
}

/// `t` read with dimension `d` last: the values, the permuted sizes, and the permutation that
/// brings a tensor of those sizes back to `t`'s order.
fn along<D: Domain>(t: &Tensor, d: usize) -> Result<(Vec<D>, Vec<usize>, Vec<i64>)> {
    if t.dim() == 0 {
        return Ok((t.load::<D>()?, vec![], vec![]));
    }
    let mut order: Vec<usize> = (0..t.dim()).filter(|&i| i != d).collect();
    order.push(d);
    let sizes: Vec<usize> = order.iter().map(|&i| t.sizes()[i]).collect();
    let strides: Vec<usize> = order.iter().map(|&i| t.strides()[i]).collect();
    let mut back = vec![0i64; t.dim()];
    for (pos, &i) in order.iter().enumerate() {
        back[i] = pos as i64;
    }
    Ok((t.load_strided(&sizes, &strides)?, sizes, back))
}

/// Values computed in [`along`]'s order as a contiguous tensor in the original order.
fn from_along<D: Domain>(
    v: &[D],
    sizes: &[usize],
    back: &[i64],
    dtype: ScalarType,
) -> Result<Tensor> {
    let t = tensor_from_domain(v, sizes, dtype);
    if back.iter().enumerate().all(|(i, &b)| i as i64 == b) {
        return Ok(t);
    }
    super::contiguous(&super::permute(&t, back)?)
}

/// Rows of length `len` of `v` (none if `len` is 0).
fn rows_mut<D>(v: &mut [D], len: usize) -> impl Iterator<Item = &mut [D]> {
    v.chunks_mut(len.max(1)).filter(move |_| len > 0)
}

/// `cumsum` (`prod == false`) / `cumprod` along `dim`.
pub fn cumulative(t: &Tensor, dim: i64, dtype: Option<ScalarType>, prod: bool) -> Result<Tensor> {
    crate::release::released(super::work(&[t]), || {
        let spec = meta::cumulative(t, dim, dtype)?;
        let d = wrap_dim(dim, t.dim())?;
        let len = if t.dim() == 0 { 1 } else { t.sizes()[d] };
        let out = spec.dtype;
        if out.is_complex() {
            let (mut v, s, b) = along::<C64>(t, d)?;
            for r in rows_mut(&mut v, len) {
                scan(r, prod);
            }
            from_along(&v, &s, &b, out)
        } else if out.is_integral(true) {
            let (mut v, s, b) = along::<i64>(t, d)?;
            for r in rows_mut(&mut v, len) {
                for i in 1..r.len() {
                    r[i] = if prod {
                        r[i - 1].wrapping_mul(r[i])
                    } else {
                        r[i - 1].wrapping_add(r[i])
                    };
                }
            }
            from_along(&v, &s, &b, out)
        } else {
            let (mut v, s, b) = along::<f64>(t, d)?;
            let single = out == ScalarType::Float32;
            for r in rows_mut(&mut v, len) {
                // Accumulate in the output's precision, as PyTorch does.
                for i in 1..r.len() {
                    let x = if prod {
                        r[i - 1] * r[i]
                    } else {
                        r[i - 1] + r[i]
                    };
                    r[i] = if single { x as f32 as f64 } else { x };
                }
            }
            from_along(&v, &s, &b, out)
        }
    })
}

fn scan<D: Copy + std::ops::Add<Output = D> + std::ops::Mul<Output = D>>(r: &mut [D], prod: bool) {
    for i in 1..r.len() {
        r[i] = if prod {
            r[i - 1] * r[i]
        } else {
            r[i - 1] + r[i]
        };
    }
}

/// `var` (`sqrt == false`) / `std` over `dims` with `correction` (PyTorch's default 1): the
/// sum of squared deviations divided by `max(0, N - correction)`.
pub fn var_std(
    t: &Tensor,
    dims: Option<&[i64]>,
    correction: f64,
    keepdim: bool,
    sqrt: bool,
) -> Result<Tensor> {
    crate::release::released(super::work(&[t]), || {
        let spec = meta::var_std(t, dims, keepdim, if sqrt { "std" } else { "var" })?;
        let f = |sq: f64, n: usize| {
            let v = sq / (n as f64 - correction).max(0.0);
            if sqrt {
                v.sqrt()
            } else {
                v
            }
        };
        let r = if t.dtype().is_complex() {
            let v = grouped::<C64>(t, &spec)?;
            per_group(&v, &spec, |g| {
                let n = g.len();
                let mean = g.iter().sum::<C64>() / n as f64;
                f(g.iter().map(|&x| (x - mean).norm_sqr()).sum(), n)
            })
        } else {
            let v = grouped::<f64>(t, &spec)?;
            per_group(&v, &spec, |g| {
                let n = g.len();
                let mean = g.iter().sum::<f64>() / n as f64;
                f(g.iter().map(|&x| (x - mean) * (x - mean)).sum(), n)
            })
        };
        Ok(tensor_from_domain(&r, &spec.out.sizes, spec.out.dtype))
    })
}

/// `logsumexp` over `dims`: `log(sum(exp(x - m))) + m` with `m` the group's maximum (an
/// infinite maximum counts as 0, as in PyTorch).
pub fn logsumexp(t: &Tensor, dims: &[i64], keepdim: bool) -> Result<Tensor> {
    crate::release::released(super::work(&[t]), || {
        let spec = meta::logsumexp(t, dims, keepdim)?;
        let v = grouped::<f64>(t, &spec)?;
        let r = per_group(&v, &spec, |g| {
            let m = g.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let m = if m.is_infinite() { 0.0 } else { m };
            g.iter().map(|&x| (x - m).exp()).sum::<f64>().ln() + m
        });
        Ok(tensor_from_domain(&r, &spec.out.sizes, spec.out.dtype))
    })
}

/// `_softmax` (`log == false`) / `_log_softmax` along `dim`.
pub fn softmax(t: &Tensor, dim: i64, half_to_float: bool, log: bool) -> Result<Tensor> {
    crate::release::released(super::work(&[t]), || {
        let name = if log {
            "log_softmax_lastdim_kernel_impl"
        } else {
            "softmax_lastdim_kernel_impl"
        };
        let spec = meta::softmax(t, dim, half_to_float, name)?;
        let d = wrap_dim(dim, t.dim())?;
        let len = if t.dim() == 0 { 1 } else { t.sizes()[d] };
        let (mut v, s, b) = along::<f64>(t, d)?;
        for r in rows_mut(&mut v, len) {
            let m = r.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let sum: f64 = r.iter().map(|&x| (x - m).exp()).sum();
            if log {
                let ls = sum.ln();
                r.iter_mut().for_each(|x| *x = *x - m - ls);
            } else {
                r.iter_mut().for_each(|x| *x = (*x - m).exp() / sum);
            }
        }
        from_along(&v, &s, &b, spec.dtype)
    })
}

/// `_softmax_backward_data` (`log == false`: `out * (g - sum(g * out))`) /
/// `_log_softmax_backward_data` (`g - exp(out) * sum(g)`), along `dim`.
pub fn softmax_backward(g: &Tensor, out: &Tensor, dim: i64, log: bool) -> Result<Tensor> {
    crate::release::released(super::work(&[g, out]), || {
        let spec = meta::softmax_backward(g, out, dim)?;
        let d = wrap_dim(dim, out.dim())?;
        let len = if out.dim() == 0 { 1 } else { out.sizes()[d] };
        let (mut gv, s, b) = along::<f64>(g, d)?;
        let (ov, _, _) = along::<f64>(out, d)?;
        for (gr, or) in rows_mut(&mut gv, len).zip(ov.chunks(len.max(1))) {
            if log {
                let sum: f64 = gr.iter().sum();
                gr.iter_mut()
                    .zip(or)
                    .for_each(|(g, &o)| *g -= o.exp() * sum);
            } else {
                let dot: f64 = gr.iter().zip(or).map(|(&g, &o)| g * o).sum();
                gr.iter_mut()
                    .zip(or)
                    .for_each(|(g, &o)| *g = o * (*g - dot));
            }
        }
        from_along(&gv, &s, &b, spec.dtype)
    })
}
