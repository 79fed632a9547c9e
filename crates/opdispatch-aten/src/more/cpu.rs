//! CPU kernels of the second batch: the runtime's loops (`opdispatch_tensor::ops`). In-place
//! forms compute the result, check it fits `self` (shape, castable dtype) and copy it in.

use opdispatch_dispatch::{CppFunction, IValue, Result};
use opdispatch_tensor::ops::{self, meta};
use opdispatch_tensor::{Scalar, Tensor};

use super::{check_inplace, BINARY, UNARY};
use crate::args::Args;
use crate::calling::{boxed, tv, Kernels};

/// Writes `r` into `x` (PyTorch's in-place checks first) and returns `x`.
fn write_into(x: Tensor, r: &Tensor) -> Result<IValue> {
    check_inplace(&x, r.sizes(), r.dtype())?;
    ops::copy_(&x, r)?;
    Ok(tv(x))
}

fn scalar_wrapped(s: Option<Scalar>) -> Option<Tensor> {
    meta::wrapped(s)
}

fn clamp_scalar(a: &mut Args) -> Result<Tensor> {
    let t = a.tensor()?;
    let (lo, hi) = (
        scalar_wrapped(a.opt_scalar()?),
        scalar_wrapped(a.opt_scalar()?),
    );
    Ok(ops::clamp(&t, lo.as_ref(), hi.as_ref())?)
}

fn clamp_tensor(a: &mut Args) -> Result<Tensor> {
    let t = a.tensor()?;
    let (lo, hi) = (a.opt_tensor()?, a.opt_tensor()?);
    Ok(ops::clamp(&t, lo.as_ref(), hi.as_ref())?)
}

/// `clamp_min`/`clamp_max` (`min`: which side) with a scalar or tensor bound.
fn clamp_side(t: &Tensor, bound: &Tensor, min: bool) -> Result<Tensor> {
    Ok(if min {
        ops::clamp(t, Some(bound), None)?
    } else {
        ops::clamp(t, None, Some(bound))?
    })
}

fn reduce_dims(a: &mut Args) -> Result<(Tensor, Vec<i64>, bool)> {
    let t = a.tensor()?;
    let dims = a.int_list()?;
    let keepdim = a.bool()?;
    Ok((t, dims, keepdim))
}

/// `var.correction` / `std.correction`.
fn var_std(a: &mut Args, sqrt: bool) -> Result<IValue> {
    let t = a.tensor()?;
    let dims = a.opt_int_list()?;
    let correction = a.opt_scalar()?.map_or(1.0, Scalar::to_f64);
    let keepdim = a.bool()?;
    Ok(tv(ops::var_std(
        &t,
        dims.as_deref(),
        correction,
        keepdim,
        sqrt,
    )?))
}

fn pair(v: (Tensor, Tensor)) -> Vec<IValue> {
    vec![tv(v.0), tv(v.1)]
}

/// A boxed kernel with two returns.
fn boxed2(f: impl Fn(&mut Args) -> Result<Vec<IValue>> + Send + Sync + 'static) -> CppFunction {
    CppFunction::boxed(
        move |op: &opdispatch_dispatch::OperatorHandle,
              _ks: opdispatch_dispatch::DispatchKeySet,
              stack: &mut opdispatch_dispatch::Stack| {
            let mut args = Args::take(stack, op.num_arguments())?;
            for v in f(&mut args)? {
                stack.push(v);
            }
            Ok(())
        },
    )
}

pub(crate) fn kernels() -> Kernels {
    let mut k: Kernels = Vec::new();
    for &(name, inplace, op) in UNARY {
        k.push((
            name,
            boxed(move |a| Ok(tv(ops::math_unary(op, &a.tensor()?)?))),
        ));
        if let Some(iname) = inplace {
            k.push((
                iname,
                boxed(move |a| {
                    let t = a.tensor()?;
                    let r = ops::math_unary(op, &t)?;
                    write_into(t, &r)
                }),
            ));
        }
    }
    for &(name, iname, op) in BINARY {
        k.push((
            name,
            boxed(move |a| {
                let (x, y) = (a.tensor()?, a.tensor()?);
                Ok(tv(ops::binary_more(op, &x, &y)?))
            }),
        ));
        k.push((
            iname,
            boxed(move |a| {
                let (x, y) = (a.tensor()?, a.tensor()?);
                let r = ops::binary_more(op, &x, &y)?;
                write_into(x, &r)
            }),
        ));
    }
    k.push((
        "nan_to_num",
        boxed(|a| {
            let t = a.tensor()?;
            let (n, p, m) = (a.opt_float()?, a.opt_float()?, a.opt_float()?);
            Ok(tv(ops::nan_to_num(&t, n, p, m)?))
        }),
    ));
    k.push((
        "nan_to_num_",
        boxed(|a| {
            let t = a.tensor()?;
            let (n, p, m) = (a.opt_float()?, a.opt_float()?, a.opt_float()?);
            let r = ops::nan_to_num(&t, n, p, m)?;
            write_into(t, &r)
        }),
    ));
    k.push(("clamp", boxed(|a| Ok(tv(clamp_scalar(a)?)))));
    k.push(("clamp.Tensor", boxed(|a| Ok(tv(clamp_tensor(a)?)))));
    k.push((
        "clamp_",
        boxed(|a| {
            let t = a.tensor()?;
            let (lo, hi) = (
                scalar_wrapped(a.opt_scalar()?),
                scalar_wrapped(a.opt_scalar()?),
            );
            let r = ops::clamp(&t, lo.as_ref(), hi.as_ref())?;
            write_into(t, &r)
        }),
    ));
    k.push((
        "clamp_.Tensor",
        boxed(|a| {
            let t = a.tensor()?;
            let (lo, hi) = (a.opt_tensor()?, a.opt_tensor()?);
            let r = ops::clamp(&t, lo.as_ref(), hi.as_ref())?;
            write_into(t, &r)
        }),
    ));
    for (name, min, tensor, inplace) in [
        ("clamp_min", true, false, false),
        ("clamp_max", false, false, false),
        ("clamp_min.Tensor", true, true, false),
        ("clamp_max.Tensor", false, true, false),
        ("clamp_min_", true, false, true),
        ("clamp_max_", false, false, true),
        ("clamp_min_.Tensor", true, true, true),
        ("clamp_max_.Tensor", false, true, true),
    ] {
        k.push((
            name,
            boxed(move |a| {
                let t = a.tensor()?;
                let bound = if tensor {
                    a.tensor()?
                } else {
                    Tensor::wrapped_scalar(a.scalar()?)
                };
                let r = clamp_side(&t, &bound, min)?;
                if inplace {
                    write_into(t, &r)
                } else {
                    Ok(tv(r))
                }
            }),
        ));
    }
    for (name, tensor_w, inplace) in [
        ("lerp.Scalar", false, false),
        ("lerp.Tensor", true, false),
        ("lerp_.Scalar", false, true),
        ("lerp_.Tensor", true, true),
    ] {
        k.push((
            name,
            boxed(move |a| {
                let (t, end) = (a.tensor()?, a.tensor()?);
                let w = if tensor_w {
                    a.tensor()?
                } else {
                    Tensor::wrapped_scalar(a.scalar()?)
                };
                let r = ops::lerp(&t, &end, &w)?;
                if inplace {
                    write_into(t, &r)
                } else {
                    Ok(tv(r))
                }
            }),
        ));
    }
    for (name, tensor_v, inplace) in [
        ("masked_fill_.Scalar", false, true),
        ("masked_fill_.Tensor", true, true),
    ] {
        k.push((
            name,
            boxed(move |a| {
                let (t, mask) = (a.tensor()?, a.tensor()?);
                let v = if tensor_v {
                    let v = a.tensor()?;
                    meta::masked_fill(&t, &mask, Some(&v))?;
                    v.item()?
                } else {
                    a.scalar()?
                };
                let r = ops::masked_fill(&t, &mask, v)?;
                if inplace {
                    write_into(t, &r)
                } else {
                    Ok(tv(r))
                }
            }),
        ));
    }
    // Reductions and scans.
    k.push((
        "amax",
        boxed(|a| {
            let (t, d, keep) = reduce_dims(a)?;
            Ok(tv(ops::amax_amin(&t, &d, keep, true)?))
        }),
    ));
    k.push((
        "amin",
        boxed(|a| {
            let (t, d, keep) = reduce_dims(a)?;
            Ok(tv(ops::amax_amin(&t, &d, keep, false)?))
        }),
    ));
    k.push((
        "prod",
        boxed(|a| {
            let t = a.tensor()?;
            let dtype = a.opt_dtype()?;
            Ok(tv(ops::prod(&t, None, false, dtype)?))
        }),
    ));
    k.push((
        "prod.dim_int",
        boxed(|a| {
            let t = a.tensor()?;
            let (dim, keep) = (a.int()?, a.bool()?);
            let dtype = a.opt_dtype()?;
            Ok(tv(ops::prod(&t, Some(dim), keep, dtype)?))
        }),
    ));
    for (name, any, with_dim) in [
        ("all", false, false),
        ("all.dim", false, true),
        ("any", true, false),
        ("any.dim", true, true),
    ] {
        k.push((
            name,
            boxed(move |a| {
                let t = a.tensor()?;
                let (dim, keep) = if with_dim {
                    (Some(a.int()?), a.bool()?)
                } else {
                    (None, false)
                };
                Ok(tv(ops::all_any(&t, dim, keep, any)?))
            }),
        ));
    }
    for (name, prod, inplace) in [
        ("cumsum", false, false),
        ("cumprod", true, false),
        ("cumsum_", false, true),
        ("cumprod_", true, true),
    ] {
        k.push((
            name,
            boxed(move |a| {
                let t = a.tensor()?;
                let dim = a.int()?;
                let dtype = a.opt_dtype()?;
                let r = ops::cumulative(&t, dim, dtype, prod)?;
                if inplace {
                    write_into(t, &r)
                } else {
                    Ok(tv(r))
                }
            }),
        ));
    }
    k.push(("var.correction", boxed(|a| var_std(a, false))));
    k.push(("std.correction", boxed(|a| var_std(a, true))));
    k.push((
        "logsumexp",
        boxed(|a| {
            let (t, d, keep) = reduce_dims(a)?;
            Ok(tv(ops::logsumexp(&t, &d, keep)?))
        }),
    ));
    for (name, log) in [("_softmax", false), ("_log_softmax", true)] {
        k.push((
            name,
            boxed(move |a| {
                let t = a.tensor()?;
                let (dim, h2f) = (a.int()?, a.bool()?);
                Ok(tv(ops::softmax(&t, dim, h2f, log)?))
            }),
        ));
    }
    for (name, log) in [
        ("_softmax_backward_data", false),
        ("_log_softmax_backward_data", true),
    ] {
        k.push((
            name,
            boxed(move |a| {
                let (g, out) = (a.tensor()?, a.tensor()?);
                let dim = a.int()?;
                let _input_dtype = a.dtype()?;
                Ok(tv(ops::softmax_backward(&g, &out, dim, log)?))
            }),
        ));
    }
    // Indexing and rearranging.
    k.push((
        "index_select",
        boxed(|a| {
            let t = a.tensor()?;
            let dim = a.int()?;
            let index = a.tensor()?;
            Ok(tv(ops::index_select(&t, dim, &index)?))
        }),
    ));
    k.push((
        "gather",
        boxed(|a| {
            let t = a.tensor()?;
            let dim = a.int()?;
            let index = a.tensor()?;
            let _sparse_grad = a.bool()?;
            Ok(tv(ops::gather(&t, dim, &index)?))
        }),
    ));
    for (name, src, inplace) in [
        ("scatter.src", true, false),
        ("scatter.value", false, false),
        ("scatter_.src", true, true),
        ("scatter_.value", false, true),
    ] {
        k.push((
            name,
            boxed(move |a| {
                let t = a.tensor()?;
                let dim = a.int()?;
                let index = a.tensor()?;
                let r = if src {
                    let s = a.tensor()?;
                    ops::scatter(&t, dim, &index, Some(&s), None)?
                } else {
                    let v = a.scalar()?;
                    ops::scatter(&t, dim, &index, None, Some(v))?
                };
                if inplace {
                    write_into(t, &r)
                } else {
                    Ok(tv(r))
                }
            }),
        ));
    }
    k.push((
        "scatter_add",
        boxed(|a| {
            let t = a.tensor()?;
            let dim = a.int()?;
            let (index, src) = (a.tensor()?, a.tensor()?);
            Ok(tv(ops::scatter_add(&t, dim, &index, &src)?))
        }),
    ));
    k.push((
        "index_add",
        boxed(|a| {
            let t = a.tensor()?;
            let dim = a.int()?;
            let (index, source) = (a.tensor()?, a.tensor()?);
            let alpha = a.scalar()?;
            Ok(tv(ops::index_add(&t, dim, &index, &source, alpha)?))
        }),
    ));
    k.push((
        "flip",
        boxed(|a| {
            let t = a.tensor()?;
            let dims = a.int_list()?;
            Ok(tv(ops::flip(&t, &dims)?))
        }),
    ));
    k.push((
        "roll",
        boxed(|a| {
            let t = a.tensor()?;
            let (shifts, dims) = (a.int_list()?, a.int_list()?);
            Ok(tv(ops::roll(&t, &shifts, &dims)?))
        }),
    ));
    for (name, lower, inplace) in [
        ("tril", true, false),
        ("triu", false, false),
        ("tril_", true, true),
        ("triu_", false, true),
    ] {
        k.push((
            name,
            boxed(move |a| {
                let t = a.tensor()?;
                let diagonal = a.int()?;
                let r = ops::triangle(&t, diagonal, lower)?;
                if inplace {
                    write_into(t, &r)
                } else {
                    Ok(tv(r))
                }
            }),
        ));
    }
    k.push((
        "diag",
        boxed(|a| {
            let t = a.tensor()?;
            let diagonal = a.int()?;
            Ok(tv(ops::diag(&t, diagonal)?))
        }),
    ));
    k.push((
        "sort.stable",
        boxed2(|a| {
            let t = a.tensor()?;
            let _stable = a.opt_bool()?;
            let (dim, desc) = (a.int()?, a.bool()?);
            Ok(pair(ops::sort_topk(&t, dim, desc, None)?))
        }),
    ));
    k.push((
        "topk",
        boxed2(|a| {
            let t = a.tensor()?;
            let kk = a.int()?;
            let dim = a.int()?;
            let (largest, _sorted) = (a.bool()?, a.bool()?);
            meta::topk(&t, kk, dim)?;
            Ok(pair(ops::sort_topk(&t, dim, largest, Some(kk as usize))?))
        }),
    ));
    k.push((
        "addmm",
        boxed(|a| {
            let (s, m1, m2) = (a.tensor()?, a.tensor()?, a.tensor()?);
            let (beta, alpha) = (a.scalar()?, a.scalar()?);
            let spec = meta::addmm(&s, &m1, &m2)?;
            let p = ops::mm(&m1, &m2)?;
            let p = if matches!(alpha, Scalar::Int(1)) {
                p
            } else {
                ops::mul_scalar(&p, alpha)?
            };
            let r = if matches!(beta, Scalar::Int(0)) {
                p
            } else if matches!(beta, Scalar::Int(1)) {
                ops::add(&p, &s, None)?
            } else {
                ops::add(&p, &ops::mul_scalar(&s, beta)?, None)?
            };
            debug_assert_eq!(r.sizes(), &spec.sizes[..]);
            Ok(tv(r))
        }),
    ));
    k
}
