//! Derivative formulas of the second batch of aten operators (`tools/autograd/derivatives.yaml`,
//! PyTorch's node names): rounding and transcendental unary ops, clamp, atan2, the remainder
//! family, lerp, masked_fill, amax/amin, prod, cumsum/cumprod, var/std, logsumexp, softmax,
//! flip/roll/tril/triu/diag, addmm, scatter, sort/topk. In-place forms share their
//! out-of-place form's node, as in PyTorch.

use opdispatch_dispatch::{IValue, KernelArg, OperatorHandle, Result};
use opdispatch_tensor::{Scalar, Tensor};

use crate::calls as c;
use crate::calls_more as m;
use crate::formulas::{f, fr, Formula};
use crate::kernels::Ctx;
use crate::runtime;

type G = Result<Vec<Option<Tensor>>>;

fn one(t: Tensor) -> G {
    Ok(vec![Some(t)])
}

fn not_implemented(name: &str) -> G {
    Err(runtime(format!(
        "the derivative for '{name}' is not implemented."
    )))
}

fn wrap(d: i64, ndim: usize) -> i64 {
    let n = ndim.max(1) as i64;
    if d < 0 {
        d + n
    } else {
        d
    }
}

/// A reduction's gradient (or result) with the reduced dimensions put back as size 1, so it
/// broadcasts against the input (`restore_reduced_dims`).
fn restore(ctx: &Ctx<'_>, g: &Tensor, dims: Option<Vec<i64>>, keepdim: bool) -> Result<Tensor> {
    let nd = ctx.input(0).sizes.len();
    let mut g = g.clone();
    if keepdim || nd == 0 {
        return Ok(g);
    }
    let mut ds: Vec<i64> = match dims.filter(|d| !d.is_empty()) {
        Some(d) => d.iter().map(|&x| wrap(x, nd)).collect(),
        None => (0..nd as i64).collect(),
    };
    ds.sort_unstable();
    for d in ds {
        g = c::unsqueeze(&g, d)?;
    }
    Ok(g)
}

fn grad_zero(ctx: &Ctx<'_>) -> G {
    one(c::zeros_like(ctx.grad()?)?)
}

// ---- unary ----

static FLOOR: Formula = f("FloorBackward0", &[], grad_zero);
static CEIL: Formula = f("CeilBackward0", &[], grad_zero);
static ROUND: Formula = f("RoundBackward0", &[], grad_zero);
static TRUNC: Formula = f("TruncBackward0", &[], grad_zero);
static SIGN: Formula = f("SignBackward0", &[], grad_zero);
static FRAC: Formula = f("FracBackward0", &[], |x| one(x.grad()?.clone()));
static RSQRT: Formula = fr("RsqrtBackward0", &[], |x| {
    let r = x.result()?;
    let cube = c::mul(&c::mul(r, r)?, r)?;
    one(c::mul_s(&c::mul(x.grad()?, &cube)?, Scalar::Float(-0.5))?)
});
static LOG1P: Formula = f("Log1PBackward0", &[0], |x| {
    one(c::div(
        x.grad()?,
        &m::add_scalar(x.saved(0)?, Scalar::Int(1))?,
    )?)
});
static EXPM1: Formula = fr("Expm1Backward0", &[], |x| {
    one(c::mul(
        x.grad()?,
        &m::add_scalar(x.result()?, Scalar::Int(1))?,
    )?)
});
static LOG2: Formula = f("Log2Backward0", &[0], |x| {
    let d = c::mul_s(x.saved(0)?, Scalar::Float(std::f64::consts::LN_2))?;
    one(c::div(x.grad()?, &d)?)
});
static LOG10: Formula = f("Log10Backward0", &[0], |x| {
    let d = c::mul_s(x.saved(0)?, Scalar::Float(std::f64::consts::LN_10))?;
    one(c::div(x.grad()?, &d)?)
});
static EXP2: Formula = fr("Exp2Backward0", &[], |x| {
    let d = c::mul_s(x.result()?, Scalar::Float(std::f64::consts::LN_2))?;
    one(c::mul(x.grad()?, &d)?)
});
static TAN: Formula = fr("TanBackward0", &[], |x| {
    let r = x.result()?;
    one(c::mul(
        x.grad()?,
        &m::add_scalar(&c::mul(r, r)?, Scalar::Int(1))?,
    )?)
});
/// `1 - self^2`, the radicand of asin's and acos's derivatives.
fn one_minus_sq(s: &Tensor) -> Result<Tensor> {
    c::rsub_s(&c::mul(s, s)?, Scalar::Int(1))
}
static ASIN: Formula = f("AsinBackward0", &[0], |x| {
    one(c::mul(x.grad()?, &m::rsqrt(&one_minus_sq(x.saved(0)?)?)?)?)
});
static ACOS: Formula = f("AcosBackward0", &[0], |x| {
    one(c::neg(&c::mul(
        x.grad()?,
        &m::rsqrt(&one_minus_sq(x.saved(0)?)?)?,
    )?)?)
});
static ATAN: Formula = f("AtanBackward0", &[0], |x| {
    let s = x.saved(0)?;
    one(c::div(
        x.grad()?,
        &m::add_scalar(&c::mul(s, s)?, Scalar::Int(1))?,
    )?)
});
static SINH: Formula = f("SinhBackward0", &[0], |x| {
    one(c::mul(x.grad()?, &m::cosh(x.saved(0)?)?)?)
});
static COSH: Formula = f("CoshBackward0", &[0], |x| {
    one(c::mul(x.grad()?, &m::sinh(x.saved(0)?)?)?)
});
static ERF: Formula = f("ErfBackward0", &[0], |x| {
    let s = x.saved(0)?;
    let e = m::exp(&c::neg(&c::mul(s, s)?)?)?;
    let k = 2.0 / std::f64::consts::PI.sqrt();
    one(c::mul(x.grad()?, &c::mul_s(&e, Scalar::Float(k))?)?)
});
static NAN_TO_NUM: Formula = f("NanToNumBackward0", &[0], |x| {
    one(c::mask(&m::isfinite(x.saved(0)?)?, x.grad()?)?)
});

// ---- clamp ----

/// A `Scalar?` argument.
fn opt_scalar(v: &IValue) -> Option<Scalar> {
    match v {
        IValue::None => None,
        other => Scalar::from_ivalue(other.clone()).ok(),
    }
}

/// `grad` where `lo <= self <= hi` (each side when given), else 0.
fn clamp_mask(s: &Tensor, lo: Option<Scalar>, hi: Option<Scalar>) -> Result<Option<Tensor>> {
    let a = lo.map(|v| m::ge_s(s, v)).transpose()?;
    let b = hi.map(|v| m::le_s(s, v)).transpose()?;
    Ok(match (a, b) {
        (Some(a), Some(b)) => Some(m::logical_and(&a, &b)?),
        (a, b) => a.or(b),
    })
}

static CLAMP: Formula = f("ClampBackward1", &[0], |x| {
    let (lo, hi) = (opt_scalar(x.arg(1)), opt_scalar(x.arg(2)));
    let g = x.grad()?;
    match clamp_mask(x.saved(0)?, lo, hi)? {
        Some(mask) => one(c::mask(&mask, g)?),
        None => one(g.clone()),
    }
});
static CLAMP_T: Formula = f("ClampBackward0", &[0, 1, 2], |x| {
    let (g, s) = (x.grad()?, x.saved(0)?);
    let (lo, hi) = (x.saved(1).ok(), x.saved(2).ok());
    let above = lo.map(|l| m::ge(s, l)).transpose()?;
    let below = hi.map(|h| m::le(s, h)).transpose()?;
    let inside = match (&above, &below) {
        (Some(a), Some(b)) => m::logical_and(a, b)?,
        (Some(a), None) => a.clone(),
        (None, Some(b)) => b.clone(),
        (None, None) => return one(g.clone()),
    };
    let mut out = vec![Some(c::mask(&inside, g)?)];
    if let Some(a) = &above {
        out.push(Some(c::mask_out(a, g)?));
    }
    if let Some(b) = &below {
        out.push(Some(c::mask_out(b, g)?));
    }
    Ok(out)
});
static CLAMP_MIN: Formula = f("ClampMinBackward0", &[0], |x| {
    one(c::mask(&m::ge_s(x.saved(0)?, x.scalar(1))?, x.grad()?)?)
});
static CLAMP_MAX: Formula = f("ClampMaxBackward0", &[0], |x| {
    one(c::mask(&m::le_s(x.saved(0)?, x.scalar(1))?, x.grad()?)?)
});
static CLAMP_MIN_T: Formula = f("ClampMinBackward1", &[0, 1], |x| {
    let (g, s, b) = (x.grad()?, x.saved(0)?, x.saved(1)?);
    let keep = m::ge(s, b)?;
    Ok(vec![Some(c::mask(&keep, g)?), Some(c::mask_out(&keep, g)?)])
});
static CLAMP_MAX_T: Formula = f("ClampMaxBackward1", &[0, 1], |x| {
    let (g, s, b) = (x.grad()?, x.saved(0)?, x.saved(1)?);
    let keep = m::le(s, b)?;
    Ok(vec![Some(c::mask(&keep, g)?), Some(c::mask_out(&keep, g)?)])
});

// ---- binary ----

static ATAN2: Formula = f("Atan2Backward0", &[0, 1], |x| {
    let (g, a, b) = (x.grad()?, x.saved(0)?, x.saved(1)?);
    let recip = c::div(g, &c::add(&c::mul(a, a)?, &c::mul(b, b)?)?)?;
    Ok(vec![
        Some(c::mul(&recip, b)?),
        Some(c::neg(&c::mul(&recip, a)?)?),
    ])
});
static REMAINDER_S: Formula = f("RemainderBackward0", &[], |x| one(x.grad()?.clone()));
static REMAINDER_T: Formula = f("RemainderBackward1", &[0, 1], |x| {
    let (g, a, b) = (x.grad()?, x.saved(0)?, x.saved(1)?);
    Ok(vec![
        Some(g.clone()),
        Some(c::neg(&c::mul(g, &m::floor_divide(a, b)?)?)?),
    ])
});
static FMOD_S: Formula = f("FmodBackward0", &[], |x| one(x.grad()?.clone()));
static FMOD_T: Formula = f("FmodBackward1", &[0, 1], |x| {
    let (g, a, b) = (x.grad()?, x.saved(0)?, x.saved(1)?);
    Ok(vec![
        Some(g.clone()),
        Some(c::neg(&c::mul(g, &m::trunc(&c::div(a, b)?)?)?)?),
    ])
});
static LERP_S: Formula = f("LerpBackward0", &[], |x| {
    let (g, w) = (x.grad()?, x.scalar(2));
    let keep = match w {
        Scalar::Int(i) => Scalar::Int(1 - i),
        other => Scalar::Float(1.0 - other.to_f64()),
    };
    Ok(vec![Some(c::mul_s(g, keep)?), Some(c::mul_s(g, w)?)])
});
static LERP_T: Formula = f("LerpBackward1", &[0, 1, 2], |x| {
    let (g, a, e, w) = (x.grad()?, x.saved(0)?, x.saved(1)?, x.saved(2)?);
    Ok(vec![
        Some(c::mul(g, &c::rsub_s(w, Scalar::Int(1))?)?),
        Some(c::mul(g, w)?),
        Some(c::mul(g, &c::sub(e, a)?)?),
    ])
});
static MASKED_FILL_S: Formula = f("MaskedFillBackward0", &[1], |x| {
    Ok(vec![Some(c::mask_out(x.saved(1)?, x.grad()?)?), None])
});
static MASKED_FILL_T: Formula = f("MaskedFillBackward1", &[1], |x| {
    let (g, mask) = (x.grad()?, x.saved(1)?);
    Ok(vec![
        Some(c::mask_out(mask, g)?),
        None,
        Some(c::sum(&c::mask(mask, g)?)?),
    ])
});

// ---- reductions and scans ----

/// amax/amin: the gradient shared evenly among the elements equal to the result.
fn amax_amin(x: &Ctx<'_>) -> G {
    let (g, s, r) = (x.grad()?, x.saved(0)?, x.result()?);
    let (dims, keep) = (x.ints(1), x.flag(2));
    let r = restore(x, r, dims.clone(), keep)?;
    let g = restore(x, g, dims.clone(), keep)?;
    let hit = c::to_dtype(&c::eq(s, &r)?, s.dtype())?;
    let count = m::sum_dims_keep(&hit, dims.filter(|d| !d.is_empty()))?;
    one(c::mul(&c::div(&g, &count)?, &hit)?)
}
static AMAX: Formula = fr("AmaxBackward0", &[0], amax_amin);
static AMIN: Formula = fr("AminBackward0", &[0], amax_amin);

/// prod: `grad * result / self`, with zeros handled (one zero: the product of the others
/// there, 0 elsewhere; two or more: 0 everywhere).
fn prod_grad(x: &Ctx<'_>, dim: Option<i64>, keep: bool) -> G {
    let (g, s, r) = (x.grad()?, x.saved(0)?, x.result()?);
    let dims = dim.map(|d| vec![d]);
    let g = restore(x, g, dims.clone(), keep)?;
    let r = restore(x, r, dims.clone(), keep)?;
    let zero = m::eq_s(s, Scalar::Int(0))?;
    let zeros = m::sum_dims_keep(&c::to_dtype(&zero, s.dtype())?, dims.clone())?;
    let others = c::where_(&zero, &c::ones_like(s)?, s)?;
    let rest = match dim {
        Some(d) => m::prod_dim(&others, d, true)?,
        None => m::prod_all(&others)?,
    };
    let single = c::to_dtype(&m::eq_s(&zeros, Scalar::Int(1))?, s.dtype())?;
    let at_zero = c::mul(&single, &rest)?;
    let plain = c::div(&r, s)?;
    let d = c::where_(&zero, &c::expand(&at_zero, &x.input(0).sizes)?, &plain)?;
    one(c::mul(&g, &d)?)
}
static PROD: Formula = fr("ProdBackward0", &[0], |x| prod_grad(x, None, false));
static PROD_DIM: Formula = fr("ProdBackward1", &[0], |x| {
    prod_grad(x, Some(x.int(1)), x.flag(2))
});
/// cumsum: the reversed cumulative sum of the gradient.
static CUMSUM: Formula = f("CumsumBackward0", &[], |x| {
    let g = x.grad()?;
    if g.dim() == 0 {
        return one(g.clone());
    }
    let d = wrap(x.int(1), g.dim());
    one(m::flip(&m::cumsum(&m::flip(g, vec![d])?, d)?, vec![d])?)
});
/// cumprod (inputs without zeros): `sum_{k >= i} grad_k * out_k / self_i`.
static CUMPROD: Formula = fr("CumprodBackward0", &[0], |x| {
    let (g, s, r) = (x.grad()?, x.saved(0)?, x.result()?);
    if m::eq_s(s, Scalar::Int(0))?.to_vec_bool()?.contains(&true) {
        return Err(runtime(
            "opdispatch: the derivative of cumprod over inputs containing zeros is not implemented",
        ));
    }
    if g.dim() == 0 {
        return one(g.clone());
    }
    let d = wrap(x.int(1), g.dim());
    let gr = c::mul(g, r)?;
    let rev = m::flip(&m::cumsum(&m::flip(&gr, vec![d])?, d)?, vec![d])?;
    one(c::div(&rev, s)?)
});
/// var: `2 / (N - correction) * grad * (self - mean)`.
fn var_grad(x: &Ctx<'_>, g: &Tensor) -> Result<Tensor> {
    let s = x.saved(0)?;
    let (dims, correction, keep) = (x.ints(1), x.scalar(2).to_f64(), x.flag(3));
    let sizes = &x.input(0).sizes;
    let n: usize = match dims.as_ref().filter(|d| !d.is_empty()) {
        Some(d) => d
            .iter()
            .map(|&k| sizes[wrap(k, sizes.len()) as usize])
            .product(),
        None => sizes.iter().product(),
    };
    let g = restore(x, g, dims.clone(), keep)?;
    let mean = m::mean_dims(s, dims.filter(|d| !d.is_empty()), true)?;
    let scale = 2.0 / (n as f64 - correction).max(0.0);
    c::mul(&c::mul_s(&g, Scalar::Float(scale))?, &c::sub(s, &mean)?)
}
static VAR: Formula = f("VarBackward0", &[0], |x| one(var_grad(x, x.grad()?)?));
static STD: Formula = fr("StdBackward0", &[0], |x| {
    let r = x.result()?;
    let gv = c::div(x.grad()?, &c::mul_s(r, Scalar::Int(2))?)?;
    let gv = c::mask_out(&m::eq_s(r, Scalar::Int(0))?, &gv)?;
    one(var_grad(x, &gv)?)
});
static LOGSUMEXP: Formula = fr("LogsumexpBackward0", &[0], |x| {
    let (dims, keep) = (x.ints(1), x.flag(2));
    let g = restore(x, x.grad()?, dims.clone(), keep)?;
    let r = restore(x, x.result()?, dims, keep)?;
    one(c::mul(&g, &m::exp(&c::sub(x.saved(0)?, &r)?)?)?)
});
static SOFTMAX: Formula = fr("SoftmaxBackward0", &[], |x| {
    let dt = x.input(0).dtype;
    one(m::softmax_backward_data(
        x.grad()?,
        x.result()?,
        x.int(1),
        dt,
        false,
    )?)
});
static LOG_SOFTMAX: Formula = fr("LogSoftmaxBackward0", &[], |x| {
    let dt = x.input(0).dtype;
    one(m::softmax_backward_data(
        x.grad()?,
        x.result()?,
        x.int(1),
        dt,
        true,
    )?)
});

// ---- rearranging and indexing ----

static FLIP: Formula = f("FlipBackward0", &[], |x| {
    one(m::flip(x.grad()?, x.ints(1).unwrap_or_default())?)
});
static ROLL: Formula = f("RollBackward0", &[], |x| {
    let shifts: Vec<i64> = x.ints(1).unwrap_or_default().iter().map(|s| -s).collect();
    one(m::roll(x.grad()?, shifts, x.ints(2).unwrap_or_default())?)
});
static TRIL: Formula = f("TrilBackward0", &[], |x| {
    one(m::triangle(x.grad()?, x.int(1), true)?)
});
static TRIU: Formula = f("TriuBackward0", &[], |x| {
    one(m::triangle(x.grad()?, x.int(1), false)?)
});
static DIAG: Formula = f("DiagBackward0", &[], |x| {
    let sizes = &x.input(0).sizes;
    let k = x.int(1);
    match sizes.len() {
        1 => one(m::diag(x.grad()?, k)?),
        _ if sizes[0] == sizes[1] => one(m::diag(x.grad()?, k)?),
        _ => not_implemented("diag"),
    }
});
static ADDMM: Formula = f("AddmmBackward0", &[1, 2], |x| {
    let (g, m1, m2) = (x.grad()?, x.saved(1)?, x.saved(2)?);
    let (beta, alpha) = (x.scalar(3), x.scalar(4));
    let scale = |t: Tensor, s: Scalar| -> Result<Tensor> {
        if matches!(s, Scalar::Int(1)) {
            Ok(t)
        } else {
            c::mul_s(&t, s)
        }
    };
    Ok(vec![
        if x.needs(0) {
            Some(scale(g.clone(), beta)?)
        } else {
            None
        },
        if x.needs(1) {
            Some(scale(m::mm(g, &c::transpose(m2, 0, 1)?)?, alpha)?)
        } else {
            None
        },
        if x.needs(2) {
            Some(scale(m::mm(&c::transpose(m1, 0, 1)?, g)?, alpha)?)
        } else {
            None
        },
    ])
});
static SCATTER_SRC: Formula = f("ScatterBackward0", &[2], |x| {
    let (g, index, dim) = (x.grad()?, x.saved(2)?, x.int(1));
    Ok(vec![
        Some(m::scatter_value(g, dim, index, Scalar::Int(0))?),
        None,
        Some(m::gather(g, dim, index)?),
    ])
});
static SCATTER_VALUE: Formula = f("ScatterBackward1", &[2], |x| {
    let (g, index, dim) = (x.grad()?, x.saved(2)?, x.int(1));
    Ok(vec![
        Some(m::scatter_value(g, dim, index, Scalar::Int(0))?),
        None,
    ])
});
/// `zeros(self.sizes()).index_add(dim, index, grad)`.
static INDEX_SELECT: Formula = f("IndexSelectBackward0", &[2], |x| {
    let (g, index, dim) = (x.grad()?, x.saved(2)?, x.int(1));
    let meta = x.input(0);
    let z = c::zeros(&meta.sizes, g.dtype(), meta.device)?;
    if meta.sizes.is_empty() {
        return Ok(vec![Some(c::reshape(g, &[])?), None]);
    }
    Ok(vec![Some(m::index_add(&z, dim, index, g)?), None])
});
/// `zeros_like(self).scatter_add(dim, index, grad)`.
static GATHER: Formula = f("GatherBackward0", &[2], |x| {
    let (g, index, dim) = (x.grad()?, x.saved(2)?, x.int(1));
    let meta = x.input(0);
    let z = c::zeros(&meta.sizes, g.dtype(), meta.device)?;
    Ok(vec![Some(m::scatter_add(&z, dim, index, g)?), None])
});
static SCATTER_ADD: Formula = f("ScatterAddBackward0", &[2], |x| {
    let (g, index, dim) = (x.grad()?, x.saved(2)?, x.int(1));
    Ok(vec![Some(g.clone()), None, Some(m::gather(g, dim, index)?)])
});
/// self: grad; source: `grad.index_select(dim, index)` (times alpha), shaped as source.
static INDEX_ADD: Formula = f("IndexAddBackward0", &[2], |x| {
    let (g, index, dim, alpha) = (x.grad()?, x.saved(2)?, x.int(1), x.scalar(4));
    let src = &x.input(2).sizes;
    let picked = if src.is_empty() {
        c::reshape(&m::index_select(g, dim, index)?, &[])?
    } else {
        m::index_select(g, dim, index)?
    };
    let picked = if matches!(alpha, Scalar::Int(1)) {
        picked
    } else {
        c::mul_s(&picked, alpha)?
    };
    Ok(vec![Some(g.clone()), None, Some(picked)])
});

/// The indices `op` (topk / sort.stable) picks for `args`, recomputed from the saved input.
fn indices_of(op: &OperatorHandle, args: Vec<IValue>) -> Result<Tensor> {
    let mut stack: opdispatch_dispatch::Stack = args.into_iter().collect();
    {
        // Recomputed below autograd: nothing here is differentiated.
        let _g = opdispatch_dispatch::ExcludeDispatchKeyGuard::new(
            opdispatch_keys::AUTOGRAD_DISPATCH_KEYSET_WITH_AD_INPLACE_OR_VIEW,
        );
        op.call_boxed(&mut stack)?;
    }
    let idx = stack.pop().ok_or_else(|| runtime("internal: no indices"))?;
    Tensor::from_ivalue(idx)
}

/// The gradient of values selected along `dim` at `indices`: scattered into zeros.
fn selected(x: &Ctx<'_>, dim: i64, indices: &Tensor) -> G {
    let g = x.grad()?;
    let meta = x.input(0);
    let z = c::zeros(&meta.sizes, g.dtype(), meta.device)?;
    if meta.sizes.is_empty() {
        return one(g.clone());
    }
    one(m::scatter_src(&z, dim, indices, g)?)
}
static TOPK: Formula = f("TopkBackward0", &[0], |x| {
    let s = x.saved(0)?;
    let op = opdispatch_dispatch::Dispatcher::singleton().find_schema_or_throw("aten::topk", "")?;
    let args = vec![
        s.clone().into_ivalue(),
        x.arg(1).clone(),
        x.arg(2).clone(),
        x.arg(3).clone(),
        x.arg(4).clone(),
    ];
    let idx = indices_of(&op, args)?;
    selected(x, x.int(2), &idx)
});
static SORT: Formula = f("SortBackward0", &[0], |x| {
    let s = x.saved(0)?;
    let op = opdispatch_dispatch::Dispatcher::singleton()
        .find_schema_or_throw("aten::sort", "stable")?;
    let args = vec![
        s.clone().into_ivalue(),
        x.arg(1).clone(),
        x.arg(2).clone(),
        x.arg(3).clone(),
    ];
    let idx = indices_of(&op, args)?;
    selected(x, x.int(2), &idx)
});

/// `sort(self, dim, descending)` (CompositeExplicitAutograd): the same node as `sort.stable`.
static SORT_DEFAULT: Formula = f("SortBackward0", &[0], |x| {
    let s = x.saved(0)?;
    let op = opdispatch_dispatch::Dispatcher::singleton()
        .find_schema_or_throw("aten::sort", "stable")?;
    let args = vec![
        s.clone().into_ivalue(),
        IValue::Bool(false),
        x.arg(1).clone(),
        x.arg(2).clone(),
    ];
    let idx = indices_of(&op, args)?;
    selected(x, x.int(1), &idx)
});

/// This batch's operators with an Autograd kernel (in-place forms share their node).
pub(crate) static TABLE: &[(&str, Option<&Formula>)] = &[
    ("floor", Some(&FLOOR)),
    ("floor_", Some(&FLOOR)),
    ("ceil", Some(&CEIL)),
    ("ceil_", Some(&CEIL)),
    ("round", Some(&ROUND)),
    ("round_", Some(&ROUND)),
    ("trunc", Some(&TRUNC)),
    ("trunc_", Some(&TRUNC)),
    ("frac", Some(&FRAC)),
    ("frac_", Some(&FRAC)),
    ("sign", Some(&SIGN)),
    ("sign_", Some(&SIGN)),
    ("rsqrt", Some(&RSQRT)),
    ("rsqrt_", Some(&RSQRT)),
    ("log1p", Some(&LOG1P)),
    ("log1p_", Some(&LOG1P)),
    ("expm1", Some(&EXPM1)),
    ("expm1_", Some(&EXPM1)),
    ("log2", Some(&LOG2)),
    ("log2_", Some(&LOG2)),
    ("log10", Some(&LOG10)),
    ("log10_", Some(&LOG10)),
    ("exp2", Some(&EXP2)),
    ("exp2_", Some(&EXP2)),
    ("tan", Some(&TAN)),
    ("tan_", Some(&TAN)),
    ("asin", Some(&ASIN)),
    ("asin_", Some(&ASIN)),
    ("acos", Some(&ACOS)),
    ("acos_", Some(&ACOS)),
    ("atan", Some(&ATAN)),
    ("atan_", Some(&ATAN)),
    ("sinh", Some(&SINH)),
    ("sinh_", Some(&SINH)),
    ("cosh", Some(&COSH)),
    ("cosh_", Some(&COSH)),
    ("erf", Some(&ERF)),
    ("erf_", Some(&ERF)),
    ("nan_to_num", Some(&NAN_TO_NUM)),
    ("nan_to_num_", Some(&NAN_TO_NUM)),
    ("clamp", Some(&CLAMP)),
    ("clamp_", Some(&CLAMP)),
    ("clamp.Tensor", Some(&CLAMP_T)),
    ("clamp_.Tensor", Some(&CLAMP_T)),
    ("clamp_min", Some(&CLAMP_MIN)),
    ("clamp_min_", Some(&CLAMP_MIN)),
    ("clamp_max", Some(&CLAMP_MAX)),
    ("clamp_max_", Some(&CLAMP_MAX)),
    ("clamp_min.Tensor", Some(&CLAMP_MIN_T)),
    ("clamp_min_.Tensor", Some(&CLAMP_MIN_T)),
    ("clamp_max.Tensor", Some(&CLAMP_MAX_T)),
    ("clamp_max_.Tensor", Some(&CLAMP_MAX_T)),
    ("atan2", Some(&ATAN2)),
    ("atan2_", Some(&ATAN2)),
    ("remainder.Scalar", Some(&REMAINDER_S)),
    ("remainder_.Scalar", Some(&REMAINDER_S)),
    ("remainder.Tensor", Some(&REMAINDER_T)),
    ("remainder_.Tensor", Some(&REMAINDER_T)),
    ("fmod.Scalar", Some(&FMOD_S)),
    ("fmod_.Scalar", Some(&FMOD_S)),
    ("fmod.Tensor", Some(&FMOD_T)),
    ("fmod_.Tensor", Some(&FMOD_T)),
    ("lerp.Scalar", Some(&LERP_S)),
    ("lerp_.Scalar", Some(&LERP_S)),
    ("lerp.Tensor", Some(&LERP_T)),
    ("lerp_.Tensor", Some(&LERP_T)),
    ("masked_fill.Scalar", Some(&MASKED_FILL_S)),
    ("masked_fill_.Scalar", Some(&MASKED_FILL_S)),
    ("masked_fill.Tensor", Some(&MASKED_FILL_T)),
    ("masked_fill_.Tensor", Some(&MASKED_FILL_T)),
    ("amax", Some(&AMAX)),
    ("amin", Some(&AMIN)),
    ("prod", Some(&PROD)),
    ("prod.dim_int", Some(&PROD_DIM)),
    ("cumsum", Some(&CUMSUM)),
    ("cumsum_", Some(&CUMSUM)),
    ("cumprod", Some(&CUMPROD)),
    ("cumprod_", Some(&CUMPROD)),
    ("var.correction", Some(&VAR)),
    ("std.correction", Some(&STD)),
    ("logsumexp", Some(&LOGSUMEXP)),
    ("_softmax", Some(&SOFTMAX)),
    ("_log_softmax", Some(&LOG_SOFTMAX)),
    ("flip", Some(&FLIP)),
    ("roll", Some(&ROLL)),
    ("tril", Some(&TRIL)),
    ("tril_", Some(&TRIL)),
    ("triu", Some(&TRIU)),
    ("triu_", Some(&TRIU)),
    ("diag", Some(&DIAG)),
    ("addmm", Some(&ADDMM)),
    ("scatter.src", Some(&SCATTER_SRC)),
    ("scatter_.src", Some(&SCATTER_SRC)),
    ("scatter.value", Some(&SCATTER_VALUE)),
    ("scatter_.value", Some(&SCATTER_VALUE)),
    ("index_select", Some(&INDEX_SELECT)),
    ("gather", Some(&GATHER)),
    ("scatter_add", Some(&SCATTER_ADD)),
    ("index_add", Some(&INDEX_ADD)),
    ("topk", Some(&TOPK)),
    ("sort.stable", Some(&SORT)),
    ("sort", Some(&SORT_DEFAULT)),
];

/// `base` (formulas.rs's table) followed by this batch's, built once.
pub(crate) fn joined(
    base: &'static [(&'static str, Option<&'static Formula>)],
) -> &'static [(&'static str, Option<&'static Formula>)] {
    static ALL: std::sync::OnceLock<Vec<(&'static str, Option<&'static Formula>)>> =
        std::sync::OnceLock::new();
    ALL.get_or_init(|| base.iter().chain(TABLE).copied().collect())
}
