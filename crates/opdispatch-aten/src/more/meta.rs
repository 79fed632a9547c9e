//! Meta kernels of the second batch: each runs the operator's meta function (the one the CPU
//! loop sizes its output with) and allocates the result on Meta; in-place forms check that the
//! result fits `self` and return it.

use opdispatch_dispatch::{CppFunction, IValue, Result};
use opdispatch_tensor::ops::meta::{self, OutputSpec};
use opdispatch_tensor::{Device, ScalarType, Tensor};

use super::{check_inplace, BINARY, UNARY};
use crate::args::Args;
use crate::calling::{boxed, tv, Kernels};

fn alloc(spec: &OutputSpec) -> Result<Tensor> {
    Ok(Tensor::empty(&spec.sizes, spec.dtype, Device::Meta)?)
}

/// The out-of-place result on Meta, or `self` after the in-place checks.
fn finish(t: Tensor, spec: &OutputSpec, inplace: bool) -> Result<IValue> {
    if inplace {
        check_inplace(&t, &spec.sizes, spec.dtype)?;
        Ok(tv(t))
    } else {
        Ok(tv(alloc(spec)?))
    }
}

fn reduce_dims(a: &mut Args) -> Result<(Tensor, Vec<i64>, bool)> {
    let t = a.tensor()?;
    let dims = a.int_list()?;
    let keepdim = a.bool()?;
    Ok((t, dims, keepdim))
}

fn var_std(a: &mut Args, name: &'static str) -> Result<IValue> {
    let t = a.tensor()?;
    let dims = a.opt_int_list()?;
    let _correction = a.opt_scalar()?;
    let keepdim = a.bool()?;
    Ok(tv(alloc(
        &meta::var_std(&t, dims.as_deref(), keepdim, name)?.out,
    )?))
}

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

/// Values (`spec`) and int64 indices of the same sizes.
fn values_indices(spec: &OutputSpec) -> Result<Vec<IValue>> {
    let idx = OutputSpec {
        dtype: ScalarType::Int64,
        ..spec.clone()
    };
    Ok(vec![tv(alloc(spec)?), tv(alloc(&idx)?)])
}

pub(crate) fn kernels() -> Kernels {
    let mut k: Kernels = Vec::new();
    for &(name, inplace, op) in UNARY {
        k.push((
            name,
            boxed(move |a| {
                let t = a.tensor()?;
                let spec = meta::math_unary(op, &t)?;
                finish(t, &spec, false)
            }),
        ));
        if let Some(iname) = inplace {
            k.push((
                iname,
                boxed(move |a| {
                    let t = a.tensor()?;
                    let spec = meta::math_unary(op, &t)?;
                    finish(t, &spec, true)
                }),
            ));
        }
    }
    for &(name, iname, op) in BINARY {
        for (n, inplace) in [(name, false), (iname, true)] {
            k.push((
                n,
                boxed(move |a| {
                    let (x, y) = (a.tensor()?, a.tensor()?);
                    let spec = meta::binary_more(op, &x, &y)?.out;
                    finish(x, &spec, inplace)
                }),
            ));
        }
    }
    for (name, inplace) in [("nan_to_num", false), ("nan_to_num_", true)] {
        k.push((
            name,
            boxed(move |a| {
                let t = a.tensor()?;
                let _ = (a.opt_float()?, a.opt_float()?, a.opt_float()?);
                let spec = meta::nan_to_num(&t)?;
                finish(t, &spec, inplace)
            }),
        ));
    }
    for (name, tensor, inplace) in [
        ("clamp", false, false),
        ("clamp.Tensor", true, false),
        ("clamp_", false, true),
        ("clamp_.Tensor", true, true),
    ] {
        k.push((
            name,
            boxed(move |a| {
                let t = a.tensor()?;
                let (lo, hi) = if tensor {
                    (a.opt_tensor()?, a.opt_tensor()?)
                } else {
                    (
                        meta::wrapped(a.opt_scalar()?),
                        meta::wrapped(a.opt_scalar()?),
                    )
                };
                let spec = meta::clamp(&t, lo.as_ref(), hi.as_ref())?;
                finish(t, &spec, inplace)
            }),
        ));
    }
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
                let spec = if min {
                    meta::clamp(&t, Some(&bound), None)?
                } else {
                    meta::clamp(&t, None, Some(&bound))?
                };
                finish(t, &spec, inplace)
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
                    Some(a.tensor()?)
                } else {
                    a.scalar()?;
                    None
                };
                let spec = meta::lerp(&t, &end, w.as_ref())?;
                finish(t, &spec, inplace)
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
                    Some(a.tensor()?)
                } else {
                    a.scalar()?;
                    None
                };
                let spec = meta::masked_fill(&t, &mask, v.as_ref())?;
                // The result keeps `self`'s geometry (the mask broadcasts to it).
                check_inplace(&t, &spec.sizes, spec.dtype)?;
                finish(t, &spec, inplace)
            }),
        ));
    }
    for (name, max) in [("amax", true), ("amin", false)] {
        k.push((
            name,
            boxed(move |a| {
                let (t, d, keep) = reduce_dims(a)?;
                let spec = meta::amax_amin(&t, &d, keep, if max { "amax" } else { "amin" })?;
                Ok(tv(alloc(&spec.out)?))
            }),
        ));
    }
    k.push((
        "prod",
        boxed(|a| {
            let t = a.tensor()?;
            let dtype = a.opt_dtype()?;
            Ok(tv(alloc(&meta::prod(&t, None, false, dtype)?.out)?))
        }),
    ));
    k.push((
        "prod.dim_int",
        boxed(|a| {
            let t = a.tensor()?;
            let (dim, keep) = (a.int()?, a.bool()?);
            let dtype = a.opt_dtype()?;
            Ok(tv(alloc(&meta::prod(&t, Some(dim), keep, dtype)?.out)?))
        }),
    ));
    for (name, with_dim) in [
        ("all", false),
        ("all.dim", true),
        ("any", false),
        ("any.dim", true),
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
                Ok(tv(alloc(&meta::all_any(&t, dim, keep)?.out)?))
            }),
        ));
    }
    for (name, inplace) in [
        ("cumsum", false),
        ("cumprod", false),
        ("cumsum_", true),
        ("cumprod_", true),
    ] {
        k.push((
            name,
            boxed(move |a| {
                let t = a.tensor()?;
                let dim = a.int()?;
                let dtype = a.opt_dtype()?;
                let spec = meta::cumulative(&t, dim, dtype)?;
                finish(t, &spec, inplace)
            }),
        ));
    }
    k.push(("var.correction", boxed(|a| var_std(a, "var"))));
    k.push(("std.correction", boxed(|a| var_std(a, "std"))));
    k.push((
        "logsumexp",
        boxed(|a| {
            let (t, d, keep) = reduce_dims(a)?;
            Ok(tv(alloc(&meta::logsumexp(&t, &d, keep)?.out)?))
        }),
    ));
    for (name, kname) in [
        ("_softmax", "softmax_lastdim_kernel_impl"),
        ("_log_softmax", "log_softmax_lastdim_kernel_impl"),
    ] {
        k.push((
            name,
            boxed(move |a| {
                let t = a.tensor()?;
                let (dim, h2f) = (a.int()?, a.bool()?);
                Ok(tv(alloc(&meta::softmax(&t, dim, h2f, kname)?)?))
            }),
        ));
    }
    for name in ["_softmax_backward_data", "_log_softmax_backward_data"] {
        k.push((
            name,
            boxed(|a| {
                let (g, out) = (a.tensor()?, a.tensor()?);
                let dim = a.int()?;
                let _input_dtype = a.dtype()?;
                Ok(tv(alloc(&meta::softmax_backward(&g, &out, dim)?)?))
            }),
        ));
    }
    k.push((
        "index_select",
        boxed(|a| {
            let t = a.tensor()?;
            let dim = a.int()?;
            let index = a.tensor()?;
            Ok(tv(alloc(&meta::index_select(&t, dim, &index)?)?))
        }),
    ));
    k.push((
        "gather",
        boxed(|a| {
            let t = a.tensor()?;
            let dim = a.int()?;
            let index = a.tensor()?;
            let _sparse_grad = a.bool()?;
            Ok(tv(alloc(&meta::gather(&t, dim, &index)?)?))
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
                let s = if src {
                    Some(a.tensor()?)
                } else {
                    a.scalar()?;
                    None
                };
                let spec = meta::scatter(&t, dim, &index, s.as_ref())?;
                finish(t, &spec, inplace)
            }),
        ));
    }
    k.push((
        "scatter_add",
        boxed(|a| {
            let t = a.tensor()?;
            let dim = a.int()?;
            let (index, src) = (a.tensor()?, a.tensor()?);
            Ok(tv(alloc(&meta::scatter(&t, dim, &index, Some(&src))?)?))
        }),
    ));
    k.push((
        "index_add",
        boxed(|a| {
            let t = a.tensor()?;
            let dim = a.int()?;
            let (index, source) = (a.tensor()?, a.tensor()?);
            let _alpha = a.scalar()?;
            Ok(tv(alloc(&meta::index_add(&t, dim, &index, &source)?)?))
        }),
    ));
    k.push((
        "flip",
        boxed(|a| {
            let t = a.tensor()?;
            let dims = a.int_list()?;
            meta::flip(&t, &dims)?;
            Ok(tv(Tensor::empty(t.sizes(), t.dtype(), Device::Meta)?))
        }),
    ));
    k.push((
        "roll",
        boxed(|a| {
            let t = a.tensor()?;
            let (shifts, dims) = (a.int_list()?, a.int_list()?);
            meta::roll(&t, &shifts, &dims)?;
            Ok(tv(Tensor::empty(t.sizes(), t.dtype(), Device::Meta)?))
        }),
    ));
    for (name, fname, inplace) in [
        ("tril", "tril", false),
        ("triu", "triu", false),
        ("tril_", "tril", true),
        ("triu_", "triu", true),
    ] {
        k.push((
            name,
            boxed(move |a| {
                let t = a.tensor()?;
                let _diagonal = a.int()?;
                let spec = meta::triangle(&t, fname)?;
                finish(t, &spec, inplace)
            }),
        ));
    }
    k.push((
        "diag",
        boxed(|a| {
            let t = a.tensor()?;
            let diagonal = a.int()?;
            Ok(tv(alloc(&meta::diag(&t, diagonal)?)?))
        }),
    ));
    k.push((
        "sort.stable",
        boxed2(|a| {
            let t = a.tensor()?;
            let _stable = a.opt_bool()?;
            let (dim, _desc) = (a.int()?, a.bool()?);
            let spec = meta::topk(&t, 0, dim)?;
            values_indices(&OutputSpec {
                sizes: t.sizes().into(),
                ..spec
            })
        }),
    ));
    k.push((
        "topk",
        boxed2(|a| {
            let t = a.tensor()?;
            let kk = a.int()?;
            let dim = a.int()?;
            let (_largest, _sorted) = (a.bool()?, a.bool()?);
            values_indices(&meta::topk(&t, kk, dim)?)
        }),
    ));
    k.push((
        "addmm",
        boxed(|a| {
            let (s, m1, m2) = (a.tensor()?, a.tensor()?, a.tensor()?);
            let (_beta, _alpha) = (a.scalar()?, a.scalar()?);
            Ok(tv(alloc(&meta::addmm(&s, &m1, &m2)?)?))
        }),
    ));
    k
}
