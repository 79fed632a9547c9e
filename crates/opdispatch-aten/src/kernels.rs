//! The aten kernels: thin adapters from the dispatcher's calling conventions to `ops::*`.

use std::sync::OnceLock;

use opdispatch_dispatch::{
    CppFunction, DispatchKeySet, Dispatcher, IValue, KernelArg, OperatorHandle, Result, Stack,
    TensorRef,
};

use super::args::{scalar_type_code, tensor_of_ref, Args};
use opdispatch_tensor::ops::{self, BinaryOp};
use opdispatch_tensor::{Device, Scalar, ScalarType, Tensor, TensorError, DEFAULT_DTYPE};

/// Which IMPL block a kernel goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placement {
    /// CPU and Meta (the `ops::*` functions serve both).
    Backend,
    /// CompositeImplicitAutograd (a decomposition).
    Implicit,
    /// CompositeExplicitAutograd (factories: fills the Undefined slot too).
    Explicit,
}

type Fn1 = fn(Tensor) -> Result<Tensor>;
type Fn2 = fn(Tensor, Tensor) -> Result<Tensor>;
type Fn3 = fn(Tensor, Tensor, Tensor) -> Result<Tensor>;
type FnTs = fn(Tensor, Scalar) -> Result<Tensor>;
type FnTts = fn(Tensor, Tensor, Scalar) -> Result<Tensor>;
type FnTss = fn(Tensor, Scalar, Scalar) -> Result<Tensor>;
type FnTi = fn(Tensor, i64) -> Result<Tensor>;
type FnTii = fn(Tensor, i64, i64) -> Result<Tensor>;
type FnTl = fn(Tensor, Vec<i64>) -> Result<Tensor>;
type FnMaxDim = fn(Tensor, i64, bool) -> Result<(Tensor, Tensor)>;
type FnList = fn(Vec<TensorRef>, i64) -> Result<Tensor>;

/// A boxed kernel that pops the operator's arguments into [`Args`] and pushes one return.
fn boxed(f: impl Fn(&mut Args) -> Result<IValue> + Send + Sync + 'static) -> CppFunction {
    CppFunction::boxed(
        move |op: &OperatorHandle, _ks: DispatchKeySet, stack: &mut Stack| {
            let mut args = Args::take(stack, op.num_arguments())?;
            let out = f(&mut args)?;
            stack.push(out);
            Ok(())
        },
    )
}

fn tv(t: Tensor) -> IValue {
    t.into_ivalue()
}

/// A handle to another aten operator, looked up once per call site.
macro_rules! aten_op {
    ($name:literal, $overload:literal) => {{
        static H: OnceLock<OperatorHandle> = OnceLock::new();
        match H.get() {
            Some(h) => h.clone(),
            None => {
                let h = Dispatcher::singleton()
                    .find_schema_or_throw(concat!("aten::", $name), $overload)?;
                H.get_or_init(|| h).clone()
            }
        }
    }};
}

/// Calls an aten operator boxed (a fresh call: TLS and the arguments' keys decide the kernel)
/// and returns its single result.
fn call1(op: OperatorHandle, mut stack: opdispatch_dispatch::Stack) -> Result<IValue> {
    op.call_boxed(&mut stack)?;
    stack.pop().ok_or_else(|| {
        opdispatch_dispatch::DispatchError::Internal("operator returned nothing".into())
    })
}

fn tensor_result(v: IValue) -> Result<Tensor> {
    Tensor::from_ivalue(v)
}

// ---- unary ----

macro_rules! unary_kernels {
    ($($f:ident),*) => {$(
        fn $f(x: Tensor) -> Result<Tensor> {
            Ok(ops::$f(&x)?)
        }
    )*};
}
unary_kernels!(neg, abs, exp, log, sin, cos, sqrt, relu, sigmoid, tanh, reciprocal);

// ---- binary ----

macro_rules! binary_kernels {
    ($($f:ident => $op:ident),*) => {$(
        fn $f(a: Tensor, b: Tensor) -> Result<Tensor> {
            Ok(ops::binary(BinaryOp::$op, &a, &b, None)?)
        }
    )*};
}
binary_kernels!(mul_t => Mul, div_t => Div, pow_tt => Pow, maximum => Maximum, minimum => Minimum,
    eq_t => Eq, ne_t => Ne, lt_t => Lt, le_t => Le, gt_t => Gt, ge_t => Ge);

macro_rules! binary_scalar_kernels {
    ($($f:ident => $op:ident),*) => {$(
        fn $f(a: Tensor, s: Scalar) -> Result<Tensor> {
            Ok(ops::binary_scalar(BinaryOp::$op, &a, s, None)?)
        }
    )*};
}
binary_scalar_kernels!(mul_s => Mul, div_s => Div, pow_ts => Pow,
    eq_s => Eq, ne_s => Ne, lt_s => Lt, le_s => Le, gt_s => Gt, ge_s => Ge);

fn add_t(a: Tensor, b: Tensor, alpha: Scalar) -> Result<Tensor> {
    Ok(ops::add(&a, &b, Some(alpha))?)
}
fn sub_t(a: Tensor, b: Tensor, alpha: Scalar) -> Result<Tensor> {
    Ok(ops::sub(&a, &b, Some(alpha))?)
}
/// `other - alpha * self`.
fn rsub_t(a: Tensor, b: Tensor, alpha: Scalar) -> Result<Tensor> {
    Ok(ops::sub(&b, &a, Some(alpha))?)
}
/// `rsub.Scalar` is CompositeExplicitAutograd in PyTorch: `sub(other as a wrapped number, self)`.
fn rsub_s(a: Tensor, s: Scalar, alpha: Scalar) -> Result<Tensor> {
    Ok(ops::sub(&Tensor::wrapped_scalar(s), &a, Some(alpha))?)
}
fn add_s(a: Tensor, s: Scalar, alpha: Scalar) -> Result<Tensor> {
    Ok(ops::add_scalar(&a, s, Some(alpha))?)
}
fn sub_s(a: Tensor, s: Scalar, alpha: Scalar) -> Result<Tensor> {
    Ok(ops::sub_scalar(&a, s, Some(alpha))?)
}
fn add_inplace(a: Tensor, b: Tensor, alpha: Scalar) -> Result<Tensor> {
    ops::add_(&a, &b, Some(alpha))?;
    Ok(a)
}
fn sub_inplace(a: Tensor, b: Tensor, alpha: Scalar) -> Result<Tensor> {
    ops::sub_(&a, &b, Some(alpha))?;
    Ok(a)
}
fn mul_inplace(a: Tensor, b: Tensor) -> Result<Tensor> {
    ops::mul_(&a, &b)?;
    Ok(a)
}
fn div_inplace(a: Tensor, b: Tensor) -> Result<Tensor> {
    ops::div_(&a, &b)?;
    Ok(a)
}

fn where_self(c: Tensor, a: Tensor, b: Tensor) -> Result<Tensor> {
    Ok(ops::where_(&c, &a, &b)?)
}

/// `where.ScalarOther` decomposes into `where.self` with a wrapped number, as in PyTorch.
fn where_scalar_other(c: Tensor, a: Tensor, s: Scalar) -> Result<Tensor> {
    let w = aten_op!("where", "self");
    tensor_result(call1(
        w,
        opdispatch_dispatch::stack![tv(c), tv(a), tv(Tensor::wrapped_scalar(s))],
    )?)
}

// ---- reductions ----

fn max_all(t: Tensor) -> Result<Tensor> {
    Ok(ops::max(&t)?)
}
fn min_all(t: Tensor) -> Result<Tensor> {
    Ok(ops::min(&t)?)
}
fn max_dim(t: Tensor, dim: i64, keepdim: bool) -> Result<(Tensor, Tensor)> {
    Ok(ops::max_dim(&t, dim, keepdim)?)
}
fn min_dim(t: Tensor, dim: i64, keepdim: bool) -> Result<(Tensor, Tensor)> {
    Ok(ops::min_dim(&t, dim, keepdim)?)
}

// ---- linear algebra ----

/// `matmul` decomposes through the dispatcher as in PyTorch where its decomposition is a
/// single operator (2-D @ 2-D is `mm`, 2-D @ 1-D `mv`, 1-D @ 1-D `dot`), so modes, subclasses and kernels
/// registered for those see the call; the other shapes are computed here directly.
fn matmul(a: Tensor, b: Tensor) -> Result<Tensor> {
    let op = match (a.dim(), b.dim()) {
        (2, 2) => aten_op!("mm", ""),
        (1, 1) => aten_op!("dot", ""),
        (2, 1) => aten_op!("mv", ""),
        _ => return Ok(ops::matmul(&a, &b)?),
    };
    tensor_result(call1(op, opdispatch_dispatch::stack![tv(a), tv(b)])?)
}
fn mm(a: Tensor, b: Tensor) -> Result<Tensor> {
    Ok(ops::mm(&a, &b)?)
}
fn bmm(a: Tensor, b: Tensor) -> Result<Tensor> {
    Ok(ops::bmm(&a, &b)?)
}
fn dot(a: Tensor, b: Tensor) -> Result<Tensor> {
    Ok(ops::dot(&a, &b)?)
}
fn mv(a: Tensor, v: Tensor) -> Result<Tensor> {
    if a.dim() != 2 || v.dim() != 1 {
        return Err(TensorError::other(format!(
            "vector + matrix @ vector expected, got 1, {}, {}",
            a.dim(),
            v.dim()
        ))
        .into());
    }
    Ok(ops::matmul(&a, &v)?)
}

// ---- views and shape ----

fn view(t: Tensor, size: Vec<i64>) -> Result<Tensor> {
    Ok(ops::view(&t, &size)?)
}

/// `reshape`: `view` when the strides allow it, else `clone` then `view`, both through the
/// dispatcher (PyTorch decomposes into `view` / `_unsafe_view` of a clone).
fn reshape(t: Tensor, shape: Vec<i64>) -> Result<Tensor> {
    let sizes = ops::infer_size(&shape, t.numel())?;
    let src = if ops::compute_view_strides(t.sizes(), t.strides(), &sizes).is_some() {
        t
    } else {
        tensor_result(call1(
            aten_op!("clone", ""),
            opdispatch_dispatch::stack![tv(t), IValue::None],
        )?)?
    };
    tensor_result(call1(
        aten_op!("view", ""),
        opdispatch_dispatch::stack![tv(src), IValue::IntList(shape)],
    )?)
}

fn flatten(t: Tensor, start: i64, end: i64) -> Result<Tensor> {
    Ok(ops::flatten(&t, start, end)?)
}
fn transpose(t: Tensor, d0: i64, d1: i64) -> Result<Tensor> {
    Ok(ops::transpose(&t, d0, d1)?)
}
fn t_(t: Tensor) -> Result<Tensor> {
    Ok(ops::t(&t)?)
}
fn permute(t: Tensor, dims: Vec<i64>) -> Result<Tensor> {
    Ok(ops::permute(&t, &dims)?)
}
fn squeeze(t: Tensor) -> Result<Tensor> {
    Ok(ops::squeeze(&t, None)?)
}
fn squeeze_dim(t: Tensor, dim: i64) -> Result<Tensor> {
    Ok(ops::squeeze(&t, Some(dim))?)
}
fn unsqueeze(t: Tensor, dim: i64) -> Result<Tensor> {
    Ok(ops::unsqueeze(&t, dim)?)
}
fn expand(t: Tensor, size: Vec<i64>, _implicit: bool) -> Result<Tensor> {
    Ok(ops::expand(&t, &size)?)
}
fn select(t: Tensor, dim: i64, index: i64) -> Result<Tensor> {
    Ok(ops::select(&t, dim, index)?)
}
fn narrow(t: Tensor, dim: i64, start: i64, length: i64) -> Result<Tensor> {
    let length = usize::try_from(length)
        .map_err(|_| TensorError::other("narrow(): length must be non-negative."))?;
    Ok(ops::narrow(&t, dim, start, length)?)
}
/// A new tensor over the same storage and geometry (`alias` / `detach`).
fn alias(t: Tensor) -> Result<Tensor> {
    Ok(ops::alias(&t))
}

// ---- copies and fills ----

fn copy_(dst: Tensor, src: Tensor, _non_blocking: bool) -> Result<Tensor> {
    ops::copy_(&dst, &src)?;
    Ok(dst)
}
fn fill_scalar(t: Tensor, v: Scalar) -> Result<Tensor> {
    ops::fill_(&t, v)?;
    Ok(t)
}
fn zero_(t: Tensor) -> Result<Tensor> {
    ops::zero_(&t)?;
    Ok(t)
}
fn local_scalar_dense(t: Tensor) -> Result<Scalar> {
    if t.is_meta() {
        return Err(TensorError::other("Tensor.item() cannot be called on meta tensors").into());
    }
    Ok(t.item()?)
}
/// `item` decomposes into `_local_scalar_dense`, as in PyTorch.
fn item(t: Tensor) -> Result<Scalar> {
    let v = call1(
        aten_op!("_local_scalar_dense", ""),
        opdispatch_dispatch::stack![tv(t)],
    )?;
    Scalar::from_ivalue(v)
}

// ---- joining ----

fn tensors(ts: &[TensorRef]) -> Result<Vec<Tensor>> {
    ts.iter().map(tensor_of_ref).collect()
}
fn cat(ts: Vec<TensorRef>, dim: i64) -> Result<Tensor> {
    let ts = tensors(&ts)?;
    let refs: Vec<&Tensor> = ts.iter().collect();
    Ok(ops::cat(&refs, dim)?)
}
fn stack(ts: Vec<TensorRef>, dim: i64) -> Result<Tensor> {
    let ts = tensors(&ts)?;
    let refs: Vec<&Tensor> = ts.iter().collect();
    Ok(ops::stack(&refs, dim)?)
}

// ---- factories ----

/// Sizes from a `SymInt[]`, with PyTorch's negative-dimension check.
fn sizes_of(size: &[i64]) -> Result<Vec<usize>> {
    if let Some(&neg) = size.iter().find(|&&s| s < 0) {
        return Err(TensorError::InvalidShape(format!(
            "Trying to create tensor with negative dimension {neg}: {size:?}"
        ))
        .into());
    }
    Ok(size.iter().map(|&s| s as usize).collect())
}

/// `torch.full`'s dtype when none is given: inferred from the fill value.
fn fill_dtype(v: Scalar) -> ScalarType {
    match v {
        Scalar::Bool(_) => ScalarType::Bool,
        Scalar::Int(_) => ScalarType::Int64,
        Scalar::Float(_) => DEFAULT_DTYPE,
        Scalar::Complex(..) => ScalarType::ComplexFloat,
    }
}

fn like_options(a: &mut Args, t: &Tensor) -> Result<(ScalarType, Device)> {
    let (dtype, device) = a.tensor_options()?;
    a.memory_format()?;
    Ok((dtype.unwrap_or(t.dtype()), device.unwrap_or(t.device())))
}

/// A factory that fills a fresh tensor with random values (`size` first, then the options).
fn random_factory(
    a: &mut Args,
    default_dtype: Option<ScalarType>,
    fill: impl FnOnce(&Tensor) -> opdispatch_tensor::Result<()>,
) -> Result<IValue> {
    let size = sizes_of(&a.int_list()?)?;
    let (dtype, device) = a.tensor_options()?;
    let t = Tensor::empty(
        &size,
        dtype.or(default_dtype).unwrap_or(DEFAULT_DTYPE),
        device.unwrap_or(Device::Cpu),
    )?;
    fill(&t)?;
    Ok(tv(t))
}

fn arange_kernel(a: &mut Args, start: Scalar, end: Scalar, step: Scalar) -> Result<IValue> {
    let (dtype, device) = a.tensor_options()?;
    Ok(tv(Tensor::arange(
        start,
        end,
        step,
        dtype,
        device.unwrap_or(Device::Cpu),
    )?))
}

/// `ops::sum` / `ops::mean`.
type ReduceFn = fn(&Tensor, Option<&[i64]>, bool, Option<ScalarType>) -> opdispatch_tensor::Result<Tensor>;

fn sum_like(a: &mut Args, with_dims: bool, f: ReduceFn) -> Result<IValue> {
    let t = a.tensor()?;
    let (dims, keepdim) = if with_dims {
        (a.opt_int_list()?, a.bool()?)
    } else {
        (None, false)
    };
    let dtype = a.opt_dtype()?;
    Ok(tv(f(&t, dims.as_deref(), keepdim, dtype)?))
}

/// Every kernel, with the block it is registered in.
pub(crate) fn kernels() -> Vec<(&'static str, Placement, CppFunction)> {
    use Placement::{Backend as B, Explicit as E, Implicit as I};
    let mut k: Vec<(&'static str, Placement, CppFunction)> = Vec::new();
    let mut add = |name: &'static str, p: Placement, f: CppFunction| k.push((name, p, f));

    // Factories (no tensor arguments): CompositeExplicitAutograd, device from the arguments.
    add(
        "empty.memory_format",
        E,
        boxed(|a| {
            let size = sizes_of(&a.int_list()?)?;
            let (dtype, device) = a.tensor_options()?;
            a.memory_format()?;
            Ok(tv(Tensor::empty(
                &size,
                dtype.unwrap_or(DEFAULT_DTYPE),
                device.unwrap_or(Device::Cpu),
            )?))
        }),
    );
    add(
        "zeros",
        E,
        boxed(|a| {
            let size = sizes_of(&a.int_list()?)?;
            let (dtype, device) = a.tensor_options()?;
            Ok(tv(Tensor::zeros(
                &size,
                dtype.unwrap_or(DEFAULT_DTYPE),
                device.unwrap_or(Device::Cpu),
            )?))
        }),
    );
    add(
        "ones",
        E,
        boxed(|a| {
            let size = sizes_of(&a.int_list()?)?;
            let (dtype, device) = a.tensor_options()?;
            Ok(tv(Tensor::ones(
                &size,
                dtype.unwrap_or(DEFAULT_DTYPE),
                device.unwrap_or(Device::Cpu),
            )?))
        }),
    );
    add(
        "full",
        E,
        boxed(|a| {
            let size = sizes_of(&a.int_list()?)?;
            let v = a.scalar()?;
            let (dtype, device) = a.tensor_options()?;
            Ok(tv(Tensor::full(
                &size,
                v,
                dtype.unwrap_or(fill_dtype(v)),
                device.unwrap_or(Device::Cpu),
            )?))
        }),
    );
    add(
        "scalar_tensor",
        E,
        boxed(|a| {
            let v = a.scalar()?;
            let (dtype, device) = a.tensor_options()?;
            Ok(tv(Tensor::scalar_tensor(
                v,
                dtype.unwrap_or(DEFAULT_DTYPE),
                device.unwrap_or(Device::Cpu),
            )?))
        }),
    );
    add(
        "arange",
        E,
        boxed(|a| {
            let end = a.scalar()?;
            arange_kernel(a, Scalar::Int(0), end, Scalar::Int(1))
        }),
    );
    add(
        "arange.start",
        E,
        boxed(|a| {
            let (start, end) = (a.scalar()?, a.scalar()?);
            arange_kernel(a, start, end, Scalar::Int(1))
        }),
    );
    add(
        "arange.start_step",
        E,
        boxed(|a| {
            let (start, end, step) = (a.scalar()?, a.scalar()?, a.scalar()?);
            arange_kernel(a, start, end, step)
        }),
    );
    add(
        "empty_like",
        B,
        boxed(|a| {
            let t = a.tensor()?;
            let (dtype, device) = like_options(a, &t)?;
            Ok(tv(Tensor::empty(t.sizes(), dtype, device)?))
        }),
    );
    add(
        "zeros_like",
        B,
        boxed(|a| {
            let t = a.tensor()?;
            let (dtype, device) = like_options(a, &t)?;
            Ok(tv(Tensor::zeros(t.sizes(), dtype, device)?))
        }),
    );
    add(
        "ones_like",
        B,
        boxed(|a| {
            let t = a.tensor()?;
            let (dtype, device) = like_options(a, &t)?;
            Ok(tv(Tensor::ones(t.sizes(), dtype, device)?))
        }),
    );
    add(
        "full_like",
        B,
        boxed(|a| {
            let t = a.tensor()?;
            let v = a.scalar()?;
            let (dtype, device) = like_options(a, &t)?;
            Ok(tv(Tensor::full(t.sizes(), v, dtype, device)?))
        }),
    );

    // Binary arithmetic.
    add("add.Tensor", B, CppFunction::typed(add_t as FnTts));
    add("add.Scalar", B, CppFunction::typed(add_s as FnTss));
    add("sub.Tensor", B, CppFunction::typed(sub_t as FnTts));
    add("sub.Scalar", B, CppFunction::typed(sub_s as FnTss));
    add("rsub.Tensor", B, CppFunction::typed(rsub_t as FnTts));
    add("rsub.Scalar", E, CppFunction::typed(rsub_s as FnTss));
    add("mul.Tensor", B, CppFunction::typed(mul_t as Fn2));
    add("mul.Scalar", B, CppFunction::typed(mul_s as FnTs));
    add("div.Tensor", B, CppFunction::typed(div_t as Fn2));
    add("div.Scalar", B, CppFunction::typed(div_s as FnTs));
    add("pow.Tensor_Tensor", B, CppFunction::typed(pow_tt as Fn2));
    add("pow.Tensor_Scalar", B, CppFunction::typed(pow_ts as FnTs));
    add("maximum", B, CppFunction::typed(maximum as Fn2));
    add("minimum", B, CppFunction::typed(minimum as Fn2));
    add("add_.Tensor", B, CppFunction::typed(add_inplace as FnTts));
    add("sub_.Tensor", B, CppFunction::typed(sub_inplace as FnTts));
    add("mul_.Tensor", B, CppFunction::typed(mul_inplace as Fn2));
    add("div_.Tensor", B, CppFunction::typed(div_inplace as Fn2));

    // Unary.
    for (name, f) in [
        ("neg", neg as Fn1),
        ("abs", abs),
        ("exp", exp),
        ("log", log),
        ("sin", sin),
        ("cos", cos),
        ("sqrt", sqrt),
        ("relu", relu),
        ("sigmoid", sigmoid),
        ("tanh", tanh),
        ("reciprocal", reciprocal),
    ] {
        add(name, B, CppFunction::typed(f));
    }

    // Comparisons and selection.
    for (name, f) in [
        ("eq.Tensor", eq_t as Fn2),
        ("ne.Tensor", ne_t),
        ("lt.Tensor", lt_t),
        ("le.Tensor", le_t),
        ("gt.Tensor", gt_t),
        ("ge.Tensor", ge_t),
    ] {
        add(name, B, CppFunction::typed(f));
    }
    for (name, f) in [
        ("eq.Scalar", eq_s as FnTs),
        ("ne.Scalar", ne_s),
        ("lt.Scalar", lt_s),
        ("le.Scalar", le_s),
        ("gt.Scalar", gt_s),
        ("ge.Scalar", ge_s),
    ] {
        add(name, B, CppFunction::typed(f));
    }
    add("where.self", B, CppFunction::typed(where_self as Fn3));
    add(
        "where.ScalarOther",
        I,
        CppFunction::typed(where_scalar_other as FnTts),
    );

    // Reductions.
    add("sum", B, boxed(|a| sum_like(a, false, ops::sum)));
    add("sum.dim_IntList", B, boxed(|a| sum_like(a, true, ops::sum)));
    add("mean", B, boxed(|a| sum_like(a, false, ops::mean)));
    add("mean.dim", B, boxed(|a| sum_like(a, true, ops::mean)));
    add("max", B, CppFunction::typed(max_all as Fn1));
    add("max.dim", B, CppFunction::typed(max_dim as FnMaxDim));
    add("min", B, CppFunction::typed(min_all as Fn1));
    add("min.dim", B, CppFunction::typed(min_dim as FnMaxDim));
    add(
        "argmax",
        B,
        boxed(|a| {
            let t = a.tensor()?;
            let (dim, keepdim) = (a.opt_int()?, a.bool()?);
            Ok(tv(ops::argmax(&t, dim, keepdim)?))
        }),
    );
    add(
        "argmin",
        B,
        boxed(|a| {
            let t = a.tensor()?;
            let (dim, keepdim) = (a.opt_int()?, a.bool()?);
            Ok(tv(ops::argmin(&t, dim, keepdim)?))
        }),
    );

    // Linear algebra.
    add("matmul", I, CppFunction::typed(matmul as Fn2));
    add("mm", B, CppFunction::typed(mm as Fn2));
    add("bmm", B, CppFunction::typed(bmm as Fn2));
    add("dot", B, CppFunction::typed(dot as Fn2));
    add("mv", B, CppFunction::typed(mv as Fn2));

    // Views and shape.
    add("view", B, CppFunction::typed(view as FnTl));
    add("reshape", I, CppFunction::typed(reshape as FnTl));
    add(
        "flatten.using_ints",
        B,
        CppFunction::typed(flatten as FnTii),
    );
    add("transpose.int", B, CppFunction::typed(transpose as FnTii));
    add("t", B, CppFunction::typed(t_ as Fn1));
    add("permute", B, CppFunction::typed(permute as FnTl));
    add("squeeze", B, CppFunction::typed(squeeze as Fn1));
    add("squeeze.dim", B, CppFunction::typed(squeeze_dim as FnTi));
    add("unsqueeze", B, CppFunction::typed(unsqueeze as FnTi));
    add(
        "expand",
        B,
        CppFunction::typed(expand as fn(Tensor, Vec<i64>, bool) -> Result<Tensor>),
    );
    add("select.int", B, CppFunction::typed(select as FnTii));
    add(
        "slice.Tensor",
        B,
        boxed(|a| {
            let t = a.tensor()?;
            let dim = a.int()?;
            let (start, end) = (a.opt_int()?, a.opt_int()?);
            let step = a.int()?;
            Ok(tv(ops::slice(&t, dim, start, end, step)?))
        }),
    );
    add(
        "narrow",
        B,
        CppFunction::typed(narrow as fn(Tensor, i64, i64, i64) -> Result<Tensor>),
    );
    add("alias", B, CppFunction::typed(alias as Fn1));
    add("detach", B, CppFunction::typed(alias as Fn1));

    // Copies, fills, conversions.
    add(
        "contiguous",
        I,
        boxed(|a| {
            let t = a.tensor()?;
            a.memory_format()?;
            if t.is_contiguous() {
                Ok(tv(t))
            } else {
                call1(
                    aten_op!("clone", ""),
                    opdispatch_dispatch::stack![tv(t), IValue::None],
                )
            }
        }),
    );
    add(
        "clone",
        B,
        boxed(|a| {
            let t = a.tensor()?;
            a.memory_format()?;
            Ok(tv(ops::clone(&t)?))
        }),
    );
    add(
        "copy_",
        B,
        CppFunction::typed(copy_ as fn(Tensor, Tensor, bool) -> Result<Tensor>),
    );
    add("fill_.Scalar", B, CppFunction::typed(fill_scalar as FnTs));
    add("zero_", B, CppFunction::typed(zero_ as Fn1));
    add(
        "to.dtype",
        I,
        boxed(|a| {
            let t = a.tensor()?;
            let dtype = a.dtype()?;
            let non_blocking = a.bool()?;
            let copy = a.bool()?;
            a.memory_format()?;
            if dtype == t.dtype() && !copy {
                return Ok(tv(t));
            }
            call1(
                aten_op!("_to_copy", ""),
                opdispatch_dispatch::stack![
                    tv(t),
                    IValue::Int(scalar_type_code(dtype)),
                    IValue::None,
                    IValue::None,
                    IValue::None,
                    IValue::Bool(non_blocking),
                    IValue::None,
                ],
            )
        }),
    );
    add(
        "_to_copy",
        B,
        boxed(|a| {
            let t = a.tensor()?;
            let (dtype, device) = a.tensor_options()?;
            let _non_blocking = a.bool()?;
            a.memory_format()?;
            let (dtype, device) = (dtype.unwrap_or(t.dtype()), device.unwrap_or(t.device()));
            if dtype == t.dtype() && device == t.device() {
                return Ok(tv(ops::clone(&t)?));
            }
            Ok(tv(ops::to(&t, Some(dtype), Some(device))?))
        }),
    );
    add(
        "item",
        I,
        CppFunction::typed(item as fn(Tensor) -> Result<Scalar>),
    );
    add(
        "_local_scalar_dense",
        B,
        CppFunction::typed(local_scalar_dense as fn(Tensor) -> Result<Scalar>),
    );

    // Joining.
    add("cat", B, CppFunction::typed(cat as FnList));
    add("stack", B, CppFunction::typed(stack as FnList));

    // Random.
    add(
        "rand",
        E,
        boxed(|a| random_factory(a, None, |t| ops::random::uniform_(t, 0.0, 1.0))),
    );
    add(
        "randn",
        E,
        boxed(|a| random_factory(a, None, |t| ops::random::normal_(t, 0.0, 1.0))),
    );
    add(
        "randint",
        E,
        boxed(|a| {
            let high = a.int()?;
            random_factory(a, Some(ScalarType::Int64), move |t| {
                ops::random::random_from_to_(t, 0, high)
            })
        }),
    );
    add(
        "randint.low",
        E,
        boxed(|a| {
            let (low, high) = (a.int()?, a.int()?);
            random_factory(a, Some(ScalarType::Int64), move |t| {
                ops::random::random_from_to_(t, low, high)
            })
        }),
    );
    add(
        "rand_like",
        B,
        boxed(|a| {
            let t = a.tensor()?;
            let (dtype, device) = like_options(a, &t)?;
            let out = Tensor::empty(t.sizes(), dtype, device)?;
            ops::random::uniform_(&out, 0.0, 1.0)?;
            Ok(tv(out))
        }),
    );
    add(
        "randn_like",
        B,
        boxed(|a| {
            let t = a.tensor()?;
            let (dtype, device) = like_options(a, &t)?;
            let out = Tensor::empty(t.sizes(), dtype, device)?;
            ops::random::normal_(&out, 0.0, 1.0)?;
            Ok(tv(out))
        }),
    );
    add(
        "uniform_",
        B,
        boxed(|a| {
            let t = a.tensor()?;
            let (from, to) = (a.float()?, a.float()?);
            a.no_generator()?;
            ops::random::uniform_(&t, from, to)?;
            Ok(tv(t))
        }),
    );
    add(
        "normal_",
        B,
        boxed(|a| {
            let t = a.tensor()?;
            let (mean, std) = (a.float()?, a.float()?);
            a.no_generator()?;
            ops::random::normal_(&t, mean, std)?;
            Ok(tv(t))
        }),
    );

    k
}
