//! Derivative formulas, as PyTorch's `tools/autograd/derivatives.yaml` defines them, with the
//! node names PyTorch gives them. Each returns one gradient per tensor input (in argument
//! order); broadcasting is undone by the engine, which reduces every gradient to its input's
//! shape and dtype.

use opdispatch_dispatch::{IValue, Result};
use opdispatch_tensor::{Scalar, Tensor};

use crate::calls as c;
use crate::kernels::Ctx;

pub(crate) struct Formula {
    pub(crate) name: &'static str,
    /// Argument indices of the tensors the formula needs (`RESULT` for the output).
    pub(crate) save: &'static [usize],
    pub(crate) save_result: bool,
    /// Saves the second output (`indices`).
    pub(crate) save_indices: bool,
    pub(crate) f: fn(&Ctx<'_>) -> Result<Vec<Option<Tensor>>>,
}

type G = Result<Vec<Option<Tensor>>>;

pub(crate) const fn f(name: &'static str, save: &'static [usize], f: fn(&Ctx<'_>) -> G) -> Formula {
    Formula {
        name,
        save,
        save_result: false,
        save_indices: false,
        f,
    }
}

pub(crate) const fn fr(
    name: &'static str,
    save: &'static [usize],
    f: fn(&Ctx<'_>) -> G,
) -> Formula {
    Formula {
        name,
        save,
        save_result: true,
        save_indices: false,
        f,
    }
}

/// A formula that reads the `indices` output (`max.dim`, `min.dim`).
const fn fi(name: &'static str, f: fn(&Ctx<'_>) -> G) -> Formula {
    Formula {
        name,
        save: &[],
        save_result: false,
        save_indices: true,
        f,
    }
}

fn some(v: Vec<Tensor>) -> G {
    Ok(v.into_iter().map(Some).collect())
}

fn scaled(g: &Tensor, s: Scalar) -> Result<Tensor> {
    if matches!(s, Scalar::Int(1)) {
        Ok(g.clone())
    } else {
        c::mul_s(g, s)
    }
}

fn neg_scalar(s: Scalar) -> Scalar {
    match s {
        Scalar::Int(i) => Scalar::Int(-i),
        Scalar::Float(x) => Scalar::Float(-x),
        Scalar::Complex(r, i) => Scalar::Complex(-r, -i),
        Scalar::Bool(b) => Scalar::Int(-i64::from(b)),
    }
}

fn scalar_f64(s: Scalar) -> f64 {
    match s {
        Scalar::Int(i) => i as f64,
        Scalar::Float(x) => x,
        Scalar::Complex(r, _) => r,
        Scalar::Bool(b) => f64::from(u8::from(b)),
    }
}

fn wrap_dim(d: i64, ndim: usize) -> usize {
    let n = ndim.max(1) as i64;
    (if d < 0 { d + n } else { d }).clamp(0, n - 1) as usize
}

/// `grad` of a reduction over `dims` brought back to the input's shape.
fn unreduce(ctx: &Ctx<'_>, g: &Tensor, dims: Option<Vec<i64>>, keepdim: bool) -> Result<Tensor> {
    let sizes = &ctx.input(0).sizes;
    let mut g = g.clone();
    if !keepdim {
        if let Some(dims) = dims.filter(|d| !d.is_empty()) {
            let mut ds: Vec<usize> = dims.iter().map(|&d| wrap_dim(d, sizes.len())).collect();
            ds.sort_unstable();
            for d in ds {
                g = c::unsqueeze(&g, d as i64)?;
            }
        }
    }
    c::expand(&g, sizes)
}

fn reduced_count(ctx: &Ctx<'_>, dims: Option<&[i64]>) -> usize {
    let sizes = &ctx.input(0).sizes;
    match dims.filter(|d| !d.is_empty()) {
        None => sizes.iter().product(),
        Some(d) => d.iter().map(|&x| sizes[wrap_dim(x, sizes.len())]).product(),
    }
}

/// Scatters `grad` into zeros shaped like input 0 through the view `place`.
fn into_zeros(ctx: &Ctx<'_>, g: &Tensor, place: impl Fn(&Tensor) -> Result<Tensor>) -> G {
    let m = ctx.input(0);
    let z = c::zeros(&m.sizes, m.dtype, m.device)?;
    if g.requires_grad() {
        // A higher-order graph: the write is recorded (the zeros get a `CopySlices` history).
        c::copy_(&place(&z)?, g)?;
    } else {
        let _g = opdispatch_dispatch::ExcludeDispatchKeyGuard::new(
            opdispatch_keys::AUTOGRAD_DISPATCH_KEYSET_WITH_AD_INPLACE_OR_VIEW,
        );
        c::copy_(&place(&z)?, g)?;
    }
    some(vec![z])
}

fn sign(x: &Tensor) -> Result<Tensor> {
    let pos = c::to_dtype(&c::gt_s(x, Scalar::Int(0))?, x.dtype())?;
    let neg = c::to_dtype(&c::lt_s(x, Scalar::Int(0))?, x.dtype())?;
    c::sub(&pos, &neg)
}

/// `evenly_distribute_backward`: the gradient of an all-reduction picking an extreme value,
/// shared evenly among the positions holding it (the NaNs when the result is NaN).
fn evenly(ctx: &Ctx<'_>) -> G {
    let (g, x, r) = (ctx.grad()?, ctx.saved(0)?, ctx.result()?);
    let hit = c::where_(&c::ne(r, r)?, &c::ne(x, x)?, &c::eq(x, r)?)?;
    let share = c::div(g, &c::sum(&hit)?)?;
    some(vec![c::mask(&hit, &share)?])
}

/// `value_selecting_reduction_backward`: the gradient of `max.dim`/`min.dim` goes to the
/// position `indices` names along `dim` (one per slice, ties or not), zeros elsewhere.
fn value_selecting(ctx: &Ctx<'_>) -> G {
    let (g, idx) = (ctx.grad()?, ctx.indices()?);
    let sizes = &ctx.input(0).sizes;
    if sizes.is_empty() {
        return some(vec![g.clone()]);
    }
    let dim = wrap_dim(ctx.int(1), sizes.len());
    let (g, idx) = if ctx.flag(2) {
        (g.clone(), idx.clone())
    } else {
        (c::unsqueeze(g, dim as i64)?, c::unsqueeze(idx, dim as i64)?)
    };
    // The index of every position along `dim`, shaped to broadcast against `idx`.
    let mut shape = vec![1usize; sizes.len()];
    shape[dim] = sizes[dim];
    let along = c::reshape(&c::arange(sizes[dim], g.device())?, &shape)?;
    let hit = c::eq(&along, &idx)?;
    some(vec![c::mask(&hit, &c::expand(&g, sizes)?)?])
}

/// `maximum`/`minimum`: `where(self == other, grad / 2, grad)` with the losing side's
/// positions zeroed (NaN comparisons are false, so both sides of a NaN get the gradient).
fn max_min_pair(ctx: &Ctx<'_>, is_max: bool) -> G {
    let (g, a, b) = (ctx.grad()?, ctx.saved(0)?, ctx.saved(1)?);
    let split = c::where_(&c::eq(a, b)?, &c::div_s(g, Scalar::Int(2))?, g)?;
    let (a_loses, b_loses) = if is_max {
        (c::lt(a, b)?, c::gt(a, b)?)
    } else {
        (c::gt(a, b)?, c::lt(a, b)?)
    };
    Ok(vec![
        if ctx.needs(0) {
            Some(c::mask_out(&a_loses, &split)?)
        } else {
            None
        },
        if ctx.needs(1) {
            Some(c::mask_out(&b_loses, &split)?)
        } else {
            None
        },
    ])
}

fn permute_back(ctx: &Ctx<'_>) -> G {
    let dims = ctx.ints(1).unwrap_or_default();
    let n = dims.len();
    let mut inv = vec![0i64; n];
    for (i, &d) in dims.iter().enumerate() {
        inv[wrap_dim(d, n)] = i as i64;
    }
    some(vec![c::permute(ctx.grad()?, &inv)?])
}

fn join_back(ctx: &Ctx<'_>, stacked: bool) -> G {
    let g = ctx.grad()?;
    let dim = wrap_dim(ctx.int(1), g.dim()) as i64;
    let mut out = Vec::with_capacity(ctx.inputs.len());
    let mut offset = 0i64;
    for k in 0..ctx.inputs.len() {
        if stacked {
            out.push(Some(c::select(g, dim, k as i64)?));
        } else {
            let sizes = &ctx.input(k).sizes;
            if sizes.len() == 1 && sizes[0] == 0 && g.dim() != 1 {
                out.push(None);
                continue;
            }
            let len = sizes.get(dim as usize).copied().unwrap_or(0) as i64;
            out.push(Some(c::narrow(g, dim, offset, len)?));
            offset += len;
        }
    }
    Ok(out)
}

static ADD_T: Formula = f("AddBackward0", &[], |c| {
    let g = c.grad()?;
    some(vec![g.clone(), scaled(g, c.scalar(2))?])
});
static ADD_S: Formula = f("AddBackward1", &[], |c| some(vec![c.grad()?.clone()]));
static SUB_T: Formula = f("SubBackward0", &[], |c| {
    let g = c.grad()?;
    some(vec![g.clone(), scaled(g, neg_scalar(c.scalar(2)))?])
});
static SUB_S: Formula = f("SubBackward1", &[], |c| some(vec![c.grad()?.clone()]));
static RSUB_T: Formula = f("RsubBackward0", &[], |c| {
    let g = c.grad()?;
    some(vec![scaled(g, neg_scalar(c.scalar(2)))?, g.clone()])
});
static RSUB_S: Formula = f("RsubBackward1", &[], |c| {
    some(vec![scaled(c.grad()?, neg_scalar(c.scalar(2)))?])
});
static MUL_T: Formula = f("MulBackward0", &[0, 1], |x| {
    let g = x.grad()?;
    Ok(vec![
        if x.needs(0) {
            Some(c::mul(g, x.saved(1)?)?)
        } else {
            None
        },
        if x.needs(1) {
            Some(c::mul(g, x.saved(0)?)?)
        } else {
            None
        },
    ])
});
static MUL_S: Formula = f("MulBackward1", &[], |x| {
    some(vec![c::mul_s(x.grad()?, x.scalar(1))?])
});
static DIV_T: Formula = f("DivBackward0", &[0, 1], |x| {
    let (g, a, b) = (x.grad()?, x.saved(0)?, x.saved(1)?);
    Ok(vec![
        if x.needs(0) {
            Some(c::div(g, b)?)
        } else {
            None
        },
        // div_tensor_other_backward: -grad * ((self / other) / other).
        if x.needs(1) {
            Some(c::mul(&c::neg(g)?, &c::div(&c::div(a, b)?, b)?)?)
        } else {
            None
        },
    ])
});
static DIV_S: Formula = f("DivBackward1", &[], |x| {
    some(vec![c::div_s(x.grad()?, x.scalar(1))?])
});
static POW_S: Formula = f("PowBackward0", &[0], |x| {
    let (g, a) = (x.grad()?, x.saved(0)?);
    let e = x.scalar(1);
    let ef = scalar_f64(e);
    if ef == 0.0 {
        return some(vec![c::zeros_like(g)?]);
    }
    // pow_backward: grad * (exponent * self.pow(exponent - 1)), the exponent as a double.
    let lowered = c::pow_s(a, Scalar::Float(ef - 1.0))?;
    some(vec![c::mul(g, &c::mul_s(&lowered, Scalar::Float(ef))?)?])
});
static POW_T: Formula = fr("PowBackward1", &[0, 1], |x| {
    let (g, a, e, r) = (x.grad()?, x.saved(0)?, x.saved(1)?, x.result()?);
    Ok(vec![
        // pow_backward_self: zero where the exponent is 0.
        if x.needs(0) {
            let em1 = c::sub(e, &c::ones_like(e)?)?;
            let d = c::mul(g, &c::mul(e, &c::pow(a, &em1)?)?)?;
            Some(c::mask_out(&c::eq_s(e, Scalar::Float(0.0))?, &d)?)
        } else {
            None
        },
        // pow_backward_exponent: zero where self is 0 and the exponent is >= 0 (the limit).
        if x.needs(1) {
            // self == 0 and exponent >= 0, as a bool `where` (false where self != 0).
            let zero = c::eq_s(a, Scalar::Float(0.0))?;
            let limit = c::where_(&zero, &c::ge_s(e, Scalar::Float(0.0))?, &zero)?;
            let d = c::mul(r, &c::log(&c::to_dtype(a, r.dtype())?)?)?;
            Some(c::mul(g, &c::mask_out(&limit, &d)?)?)
        } else {
            None
        },
    ])
});
/// `pow.Scalar` (a number to a tensor's power): `pow_backward_exponent` with a number base,
/// `grad * result * log(base)`, zero where the base is 0 and the exponent >= 0.
static POW_ST: Formula = fr("PowBackward2", &[1], |x| {
    let (g, r) = (x.grad()?, x.result()?);
    let base = scalar_f64(x.scalar(0));
    let d = c::mul_s(r, Scalar::Float(base.ln()))?;
    let d = if base == 0.0 {
        c::mask_out(&c::ge_s(x.saved(1)?, Scalar::Float(0.0))?, &d)?
    } else {
        d
    };
    some(vec![c::mul(g, &d)?])
});
static MAXIMUM: Formula = f("MaximumBackward0", &[0, 1], |x| max_min_pair(x, true));
static MINIMUM: Formula = f("MinimumBackward0", &[0, 1], |x| max_min_pair(x, false));
static NEG: Formula = f("NegBackward0", &[], |x| some(vec![c::neg(x.grad()?)?]));
static ABS: Formula = f("AbsBackward0", &[0], |x| {
    some(vec![c::mul(x.grad()?, &sign(x.saved(0)?)?)?])
});
static EXP: Formula = fr("ExpBackward0", &[], |x| {
    some(vec![c::mul(x.grad()?, x.result()?)?])
});
static LOG: Formula = f("LogBackward0", &[0], |x| {
    some(vec![c::div(x.grad()?, x.saved(0)?)?])
});
static SIN: Formula = f("SinBackward0", &[0], |x| {
    some(vec![c::mul(x.grad()?, &c::cos(x.saved(0)?)?)?])
});
static COS: Formula = f("CosBackward0", &[0], |x| {
    some(vec![c::mul(x.grad()?, &c::neg(&c::sin(x.saved(0)?)?)?)?])
});
static SQRT: Formula = fr("SqrtBackward0", &[], |x| {
    some(vec![c::div(
        x.grad()?,
        &c::mul_s(x.result()?, Scalar::Int(2))?,
    )?])
});
static RELU: Formula = fr("ReluBackward0", &[], |x| {
    let r = x.result()?;
    // PyTorch's threshold_backward: zero where `result <= 0`, so a NaN passes the gradient.
    some(vec![c::mask_out(&c::le_s(r, Scalar::Int(0))?, x.grad()?)?])
});
static SIGMOID: Formula = fr("SigmoidBackward0", &[], |x| {
    // sigmoid_backward: grad * (1 - output) * output, in that order.
    let r = x.result()?;
    some(vec![c::mul(
        &c::mul(x.grad()?, &c::rsub_s(r, Scalar::Int(1))?)?,
        r,
    )?])
});
static TANH: Formula = fr("TanhBackward0", &[], |x| {
    some(vec![c::tanh_backward(x.grad()?, x.result()?)?])
});
/// derivatives.yaml: `grad_output: tanh_backward(grad, output)`,
/// `output: grad * (-2 * output * grad_output)`.
static TANH_BACKWARD: Formula = f("TanhBackwardBackward0", &[0, 1], |x| {
    let (g, go, out) = (x.grad()?, x.saved(0)?, x.saved(1)?);
    Ok(vec![
        if x.needs(0) {
            Some(c::tanh_backward(g, out)?)
        } else {
            None
        },
        if x.needs(1) {
            Some(c::mul(g, &c::mul_s(&c::mul(out, go)?, Scalar::Int(-2))?)?)
        } else {
            None
        },
    ])
});
static RECIPROCAL: Formula = fr("ReciprocalBackward0", &[], |x| {
    let r = x.result()?;
    some(vec![c::mul(&c::neg(x.grad()?)?, &c::mul(r, r)?)?])
});
static WHERE: Formula = f("WhereBackward0", &[0], |x| {
    let (g, cond) = (x.grad()?, x.saved(0)?);
    let z = c::zeros_like(g)?;
    Ok(vec![
        None,
        Some(c::where_(cond, g, &z)?),
        Some(c::where_(cond, &z, g)?),
    ])
});
static SUM: Formula = f("SumBackward0", &[], |x| {
    some(vec![c::expand(x.grad()?, &x.input(0).sizes)?])
});
static SUM_DIM: Formula = f("SumBackward1", &[], |x| {
    some(vec![unreduce(x, x.grad()?, x.ints(1), x.flag(2))?])
});
static MEAN: Formula = f("MeanBackward0", &[], |x| {
    let n = reduced_count(x, None);
    let g = c::div_s(x.grad()?, Scalar::Int(n as i64))?;
    some(vec![c::expand(&g, &x.input(0).sizes)?])
});
static MEAN_DIM: Formula = f("MeanBackward1", &[], |x| {
    let dims = x.ints(1);
    let n = reduced_count(x, dims.as_deref());
    let g = c::div_s(x.grad()?, Scalar::Int(n as i64))?;
    some(vec![unreduce(x, &g, dims, x.flag(2))?])
});
static MAX_ALL: Formula = fr("MaxBackward1", &[0], evenly);
static MIN_ALL: Formula = fr("MinBackward1", &[0], evenly);
static MAX_DIM: Formula = fi("MaxBackward0", value_selecting);
static MIN_DIM: Formula = fi("MinBackward0", value_selecting);
static MM: Formula = f("MmBackward0", &[0, 1], |x| {
    let (g, a, b) = (x.grad()?, x.saved(0)?, x.saved(1)?);
    Ok(vec![
        if x.needs(0) {
            Some(c::mm(g, &c::transpose(b, 0, 1)?)?)
        } else {
            None
        },
        if x.needs(1) {
            Some(c::mm(&c::transpose(a, 0, 1)?, g)?)
        } else {
            None
        },
    ])
});
static BMM: Formula = f("BmmBackward0", &[0, 1], |x| {
    let (g, a, b) = (x.grad()?, x.saved(0)?, x.saved(1)?);
    Ok(vec![
        if x.needs(0) {
            Some(c::bmm(g, &c::transpose(b, 1, 2)?)?)
        } else {
            None
        },
        if x.needs(1) {
            Some(c::bmm(&c::transpose(a, 1, 2)?, g)?)
        } else {
            None
        },
    ])
});
static DOT: Formula = f("DotBackward0", &[0, 1], |x| {
    let (g, a, b) = (x.grad()?, x.saved(0)?, x.saved(1)?);
    Ok(vec![
        if x.needs(0) {
            Some(c::mul(g, b)?)
        } else {
            None
        },
        if x.needs(1) {
            Some(c::mul(g, a)?)
        } else {
            None
        },
    ])
});
static MV: Formula = f("MvBackward0", &[0, 1], |x| {
    let (g, a, v) = (x.grad()?, x.saved(0)?, x.saved(1)?);
    Ok(vec![
        if x.needs(0) {
            Some(c::mul(&c::unsqueeze(g, 1)?, &c::unsqueeze(v, 0)?)?)
        } else {
            None
        },
        if x.needs(1) {
            Some(c::mv(&c::transpose(a, 0, 1)?, g)?)
        } else {
            None
        },
    ])
});
fn reshape_back(x: &Ctx<'_>) -> G {
    some(vec![c::reshape(x.grad()?, &x.input(0).sizes)?])
}
static VIEW: Formula = f("ViewBackward0", &[], reshape_back);
static UNSAFE_VIEW: Formula = f("UnsafeViewBackward0", &[], reshape_back);
static RESHAPE_ALIAS: Formula = f("ReshapeAliasBackward0", &[], reshape_back);
static SQUEEZE: Formula = f("SqueezeBackward0", &[], reshape_back);
static SQUEEZE_DIM: Formula = f("SqueezeBackward1", &[], reshape_back);
static UNSQUEEZE: Formula = f("UnsqueezeBackward0", &[], reshape_back);
static EXPAND: Formula = f("ExpandBackward0", &[], |x| {
    some(vec![c::sum_to(x.grad()?, &x.input(0).sizes)?])
});
static TRANSPOSE: Formula = f("TransposeBackward0", &[], |x| {
    some(vec![c::transpose(x.grad()?, x.int(1), x.int(2))?])
});
static T: Formula = f("TBackward0", &[], |x| {
    let g = x.grad()?;
    some(vec![if g.dim() == 2 {
        c::transpose(g, 0, 1)?
    } else {
        g.clone()
    }])
});
static PERMUTE: Formula = f("PermuteBackward0", &[], permute_back);
static SELECT: Formula = f("SelectBackward0", &[], |x| {
    let (dim, index) = (x.int(1), x.int(2));
    into_zeros(x, x.grad()?, |z| c::select(z, dim, index))
});
static SLICE: Formula = f("SliceBackward0", &[], |x| {
    let dim = x.int(1);
    let (start, end) = (x.arg(2).clone(), x.arg(3).clone());
    let step = match x.arg(4) {
        IValue::Int(s) => *s,
        _ => 1,
    };
    into_zeros(x, x.grad()?, |z| {
        c::slice(z, dim, start.clone(), end.clone(), step)
    })
});
static ALIAS: Formula = f("AliasBackward0", &[], |x| some(vec![x.grad()?.clone()]));
static CLONE: Formula = f("CloneBackward0", &[], |x| some(vec![x.grad()?.clone()]));
static TO_COPY: Formula = f("ToCopyBackward0", &[], |x| {
    some(vec![c::to_dtype(x.grad()?, x.input(0).dtype)?])
});
static COPY: Formula = f("CopyBackwards", &[], |x| {
    let g = x.grad()?;
    let src = x.input(1);
    some(vec![
        c::zeros_like(g)?,
        c::sum_to(&c::to_dtype(g, src.dtype)?, &src.sizes)?,
    ])
});
static FILL: Formula = f("FillBackward2", &[], |x| {
    some(vec![c::zeros_like(x.grad()?)?])
});
static FILL_T: Formula = f("FillBackward3", &[], |x| {
    let g = x.grad()?;
    Ok(vec![
        Some(c::zeros_like(g)?),
        if x.needs(1) { Some(c::sum(g)?) } else { None },
    ])
});
static ZERO: Formula = f("ZeroBackward0", &[], |x| {
    some(vec![c::zeros_like(x.grad()?)?])
});
static UNIFORM: Formula = f("UniformBackward0", &[], |x| {
    some(vec![c::zeros_like(x.grad()?)?])
});
static NORMAL: Formula = f("NormalBackward0", &[], |x| {
    some(vec![c::zeros_like(x.grad()?)?])
});
static CAT: Formula = f("CatBackward0", &[], |x| join_back(x, false));
static STACK: Formula = f("StackBackward0", &[], |x| join_back(x, true));

/// Every aten operator with an Autograd kernel, and its formula (`None`: not differentiable, the
/// kernel only runs the operator below autograd).
pub(crate) fn table() -> &'static [(&'static str, Option<&'static Formula>)] {
    crate::formulas_more::joined(TABLE)
}

static TABLE: &[(&str, Option<&Formula>)] = &[
    ("add.Tensor", Some(&ADD_T)),
    ("add.Scalar", Some(&ADD_S)),
    ("sub.Tensor", Some(&SUB_T)),
    ("sub.Scalar", Some(&SUB_S)),
    ("rsub.Tensor", Some(&RSUB_T)),
    ("rsub.Scalar", Some(&RSUB_S)),
    ("mul.Tensor", Some(&MUL_T)),
    ("mul.Scalar", Some(&MUL_S)),
    ("div.Tensor", Some(&DIV_T)),
    ("div.Scalar", Some(&DIV_S)),
    ("pow.Tensor_Scalar", Some(&POW_S)),
    ("pow.Tensor_Tensor", Some(&POW_T)),
    ("pow.Scalar", Some(&POW_ST)),
    ("maximum", Some(&MAXIMUM)),
    ("minimum", Some(&MINIMUM)),
    ("add_.Tensor", Some(&ADD_T)),
    ("sub_.Tensor", Some(&SUB_T)),
    ("mul_.Tensor", Some(&MUL_T)),
    ("div_.Tensor", Some(&DIV_T)),
    ("neg", Some(&NEG)),
    ("abs", Some(&ABS)),
    ("exp", Some(&EXP)),
    ("log", Some(&LOG)),
    ("sin", Some(&SIN)),
    ("cos", Some(&COS)),
    ("sqrt", Some(&SQRT)),
    ("relu", Some(&RELU)),
    ("sigmoid", Some(&SIGMOID)),
    ("tanh", Some(&TANH)),
    ("tanh_backward", Some(&TANH_BACKWARD)),
    ("reciprocal", Some(&RECIPROCAL)),
    ("where.self", Some(&WHERE)),
    ("sum", Some(&SUM)),
    ("sum.dim_IntList", Some(&SUM_DIM)),
    ("mean", Some(&MEAN)),
    ("mean.dim", Some(&MEAN_DIM)),
    ("max", Some(&MAX_ALL)),
    ("min", Some(&MIN_ALL)),
    ("max.dim", Some(&MAX_DIM)),
    ("min.dim", Some(&MIN_DIM)),
    ("mm", Some(&MM)),
    ("bmm", Some(&BMM)),
    ("dot", Some(&DOT)),
    ("mv", Some(&MV)),
    ("view", Some(&VIEW)),
    ("_unsafe_view", Some(&UNSAFE_VIEW)),
    ("_reshape_alias", Some(&RESHAPE_ALIAS)),
    ("squeeze", Some(&SQUEEZE)),
    ("squeeze.dim", Some(&SQUEEZE_DIM)),
    ("unsqueeze", Some(&UNSQUEEZE)),
    ("expand", Some(&EXPAND)),
    ("transpose.int", Some(&TRANSPOSE)),
    ("t", Some(&T)),
    ("permute", Some(&PERMUTE)),
    ("select.int", Some(&SELECT)),
    ("slice.Tensor", Some(&SLICE)),
    ("alias", Some(&ALIAS)),
    ("detach", None),
    ("clone", Some(&CLONE)),
    ("_to_copy", Some(&TO_COPY)),
    ("copy_", Some(&COPY)),
    ("fill_.Scalar", Some(&FILL)),
    ("fill_.Tensor", Some(&FILL_T)),
    ("zero_", Some(&ZERO)),
    ("cat", Some(&CAT)),
    ("stack", Some(&STACK)),
    ("uniform_", Some(&UNIFORM)),
    ("normal_", Some(&NORMAL)),
];
