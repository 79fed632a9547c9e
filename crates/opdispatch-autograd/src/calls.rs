//! The aten operators the backward formulas and the engine call, through the dispatcher (so a
//! backward run with `create_graph=True` records its own graph).

use std::sync::OnceLock;

use opdispatch_dispatch::{
    DispatchError, Dispatcher, IValue, KernelArg, KernelSignature, OperatorHandle, Result,
    TypedOperatorHandle,
};
use opdispatch_tensor::{Device, Scalar, ScalarType, Tensor};

pub(crate) fn handle(
    cell: &'static OnceLock<OperatorHandle>,
    name: &str,
    overload: &str,
) -> Result<&'static OperatorHandle> {
    if let Some(h) = cell.get() {
        return Ok(h);
    }
    let h = Dispatcher::singleton().find_schema_or_throw(name, overload)?;
    Ok(cell.get_or_init(|| h))
}

/// The handle of `aten::name.overload`, looked up once per call site.
macro_rules! op {
    ($name:literal, $overload:literal) => {{
        static H: ::std::sync::OnceLock<::opdispatch_dispatch::OperatorHandle> =
            ::std::sync::OnceLock::new();
        $crate::calls::handle(&H, concat!("aten::", $name), $overload)?
    }};
}
pub(crate) use op;

pub(crate) fn call(op: &OperatorHandle, args: Vec<IValue>) -> Result<Tensor> {
    let mut stack: opdispatch_dispatch::Stack = args.into_iter().collect();
    op.call_boxed(&mut stack)?;
    match stack.pop() {
        Some(v) => Tensor::from_ivalue(v),
        None => Err(DispatchError::Internal("operator returned nothing".into())),
    }
}

pub(crate) fn t(x: &Tensor) -> IValue {
    x.clone().into_ivalue()
}

pub(crate) fn s(v: Scalar) -> IValue {
    match v {
        Scalar::Bool(b) => IValue::Bool(b),
        Scalar::Int(i) => IValue::Int(i),
        Scalar::Float(f) => IValue::Double(f),
        Scalar::Complex(re, im) => IValue::Complex(re, im),
    }
}

pub(crate) fn ints(v: &[usize]) -> IValue {
    IValue::IntList(v.iter().map(|&x| x as i64).collect())
}

/// A typed handle to `name.overload`, looked up once into `cell`.
pub(crate) fn typed_handle<F: KernelSignature>(
    cell: &'static OnceLock<TypedOperatorHandle<F>>,
    name: &str,
    overload: &str,
) -> Result<&'static TypedOperatorHandle<F>> {
    if let Some(h) = cell.get() {
        return Ok(h);
    }
    let h = Dispatcher::singleton()
        .find_schema_or_throw(name, overload)?
        .typed::<F>()?;
    Ok(cell.get_or_init(|| h))
}

/// A typed handle, looked up once: the hot arithmetic of the formulas skips boxing.
macro_rules! typed_op {
    ($ty:ty, $name:literal, $overload:literal) => {{
        static H: OnceLock<TypedOperatorHandle<$ty>> = OnceLock::new();
        typed_handle(&H, concat!("aten::", $name), $overload)?
    }};
}

type BinAlpha = fn(Tensor, Tensor, Scalar) -> Result<Tensor>;
type Bin = fn(Tensor, Tensor) -> Result<Tensor>;

pub(crate) fn add(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    typed_op!(BinAlpha, "add", "Tensor").call(a.clone(), b.clone(), Scalar::Int(1))
}
pub(crate) fn add_inplace(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    call(op!("add_", "Tensor"), vec![t(a), t(b), IValue::Int(1)])
}
pub(crate) fn sub(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    typed_op!(BinAlpha, "sub", "Tensor").call(a.clone(), b.clone(), Scalar::Int(1))
}
pub(crate) fn mul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    typed_op!(Bin, "mul", "Tensor").call(a.clone(), b.clone())
}
pub(crate) fn mul_s(a: &Tensor, v: Scalar) -> Result<Tensor> {
    call(op!("mul", "Scalar"), vec![t(a), s(v)])
}
pub(crate) fn div(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    typed_op!(Bin, "div", "Tensor").call(a.clone(), b.clone())
}
pub(crate) fn div_s(a: &Tensor, v: Scalar) -> Result<Tensor> {
    call(op!("div", "Scalar"), vec![t(a), s(v)])
}
/// `grad * (1 - output^2)`, fused.
pub(crate) fn tanh_backward(g: &Tensor, out: &Tensor) -> Result<Tensor> {
    typed_op!(Bin, "tanh_backward", "").call(g.clone(), out.clone())
}
/// `v - a`.
pub(crate) fn rsub_s(a: &Tensor, v: Scalar) -> Result<Tensor> {
    typed_op!(
        fn(Tensor, Scalar, Scalar) -> Result<Tensor>,
        "rsub",
        "Scalar"
    )
    .call(a.clone(), v, Scalar::Int(1))
}
pub(crate) fn neg(a: &Tensor) -> Result<Tensor> {
    call(op!("neg", ""), vec![t(a)])
}
pub(crate) fn pow_s(a: &Tensor, v: Scalar) -> Result<Tensor> {
    call(op!("pow", "Tensor_Scalar"), vec![t(a), s(v)])
}
pub(crate) fn pow(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    call(op!("pow", "Tensor_Tensor"), vec![t(a), t(b)])
}
pub(crate) fn log(a: &Tensor) -> Result<Tensor> {
    call(op!("log", ""), vec![t(a)])
}
pub(crate) fn sin(a: &Tensor) -> Result<Tensor> {
    call(op!("sin", ""), vec![t(a)])
}
pub(crate) fn cos(a: &Tensor) -> Result<Tensor> {
    call(op!("cos", ""), vec![t(a)])
}
pub(crate) fn gt_s(a: &Tensor, v: Scalar) -> Result<Tensor> {
    call(op!("gt", "Scalar"), vec![t(a), s(v)])
}
pub(crate) fn le_s(a: &Tensor, v: Scalar) -> Result<Tensor> {
    call(op!("le", "Scalar"), vec![t(a), s(v)])
}
pub(crate) fn lt_s(a: &Tensor, v: Scalar) -> Result<Tensor> {
    call(op!("lt", "Scalar"), vec![t(a), s(v)])
}
pub(crate) fn gt(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    call(op!("gt", "Tensor"), vec![t(a), t(b)])
}
pub(crate) fn lt(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    call(op!("lt", "Tensor"), vec![t(a), t(b)])
}
pub(crate) fn eq(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    call(op!("eq", "Tensor"), vec![t(a), t(b)])
}
pub(crate) fn ne(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    call(op!("ne", "Tensor"), vec![t(a), t(b)])
}
pub(crate) fn eq_s(a: &Tensor, v: Scalar) -> Result<Tensor> {
    call(op!("eq", "Scalar"), vec![t(a), s(v)])
}
pub(crate) fn ge_s(a: &Tensor, v: Scalar) -> Result<Tensor> {
    call(op!("ge", "Scalar"), vec![t(a), s(v)])
}
/// `arange(n)` as int64 on `device`.
pub(crate) fn arange(n: usize, device: Device) -> Result<Tensor> {
    call(
        op!("arange", ""),
        vec![
            IValue::Int(n as i64),
            IValue::Int(ScalarType::Int64.c10_code()),
            IValue::None,
            IValue::Device(device.to_string().into()),
            IValue::None,
        ],
    )
}
pub(crate) fn where_(c: &Tensor, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    call(op!("where", "self"), vec![t(c), t(a), t(b)])
}
/// A zero for `where` next to `a`: on CPU a wrapped number (it never changes the result
/// dtype), which spares allocating and zero-filling a tensor as large as the gradient.
fn zero_for(a: &Tensor) -> Result<Tensor> {
    if a.device() == Device::Cpu {
        return Ok(Tensor::wrapped_scalar(Scalar::Int(0)));
    }
    zeros_like(a)
}
/// `where(c, a, 0)`.
pub(crate) fn mask(c: &Tensor, a: &Tensor) -> Result<Tensor> {
    where_(c, a, &zero_for(a)?)
}
/// `where(c, 0, a)`.
pub(crate) fn mask_out(c: &Tensor, a: &Tensor) -> Result<Tensor> {
    where_(c, &zero_for(a)?, a)
}
pub(crate) fn zeros_like(a: &Tensor) -> Result<Tensor> {
    call(
        op!("zeros_like", ""),
        vec![
            t(a),
            IValue::None,
            IValue::None,
            IValue::None,
            IValue::None,
            IValue::None,
        ],
    )
}
pub(crate) fn ones_like(a: &Tensor) -> Result<Tensor> {
    call(
        op!("ones_like", ""),
        vec![
            t(a),
            IValue::None,
            IValue::None,
            IValue::None,
            IValue::None,
            IValue::None,
        ],
    )
}
pub(crate) fn zeros(sizes: &[usize], dtype: ScalarType, device: Device) -> Result<Tensor> {
    call(
        op!("zeros", ""),
        vec![
            ints(sizes),
            IValue::Int(dtype.c10_code()),
            IValue::None,
            IValue::Device(device.to_string().into()),
            IValue::None,
        ],
    )
}
pub(crate) fn detach(a: &Tensor) -> Result<Tensor> {
    call(op!("detach", ""), vec![t(a)])
}
pub(crate) fn new_empty_strided(a: &Tensor, sizes: &[usize], strides: &[usize]) -> Result<Tensor> {
    call(
        op!("new_empty_strided", ""),
        vec![
            t(a),
            ints(sizes),
            ints(strides),
            IValue::None,
            IValue::None,
            IValue::None,
            IValue::None,
        ],
    )
}
pub(crate) fn clone(a: &Tensor) -> Result<Tensor> {
    call(op!("clone", ""), vec![t(a), IValue::None])
}
pub(crate) fn to_dtype(a: &Tensor, dtype: ScalarType) -> Result<Tensor> {
    call(
        op!("_to_copy", ""),
        vec![
            t(a),
            IValue::Int(dtype.c10_code()),
            IValue::None,
            IValue::None,
            IValue::None,
            IValue::Bool(false),
            IValue::None,
        ],
    )
}
pub(crate) fn sum_dims(a: &Tensor, dims: &[i64], keepdim: bool) -> Result<Tensor> {
    call(
        op!("sum", "dim_IntList"),
        vec![
            t(a),
            IValue::IntList(dims.to_vec()),
            IValue::Bool(keepdim),
            IValue::None,
        ],
    )
}
pub(crate) fn sum(a: &Tensor) -> Result<Tensor> {
    call(op!("sum", ""), vec![t(a), IValue::None])
}
pub(crate) fn reshape(a: &Tensor, sizes: &[usize]) -> Result<Tensor> {
    call(op!("reshape", ""), vec![t(a), ints(sizes)])
}
pub(crate) fn expand(a: &Tensor, sizes: &[usize]) -> Result<Tensor> {
    call(
        op!("expand", ""),
        vec![t(a), ints(sizes), IValue::Bool(false)],
    )
}
pub(crate) fn unsqueeze(a: &Tensor, dim: i64) -> Result<Tensor> {
    call(op!("unsqueeze", ""), vec![t(a), IValue::Int(dim)])
}
pub(crate) fn transpose(a: &Tensor, d0: i64, d1: i64) -> Result<Tensor> {
    call(
        op!("transpose", "int"),
        vec![t(a), IValue::Int(d0), IValue::Int(d1)],
    )
}
pub(crate) fn permute(a: &Tensor, dims: &[i64]) -> Result<Tensor> {
    call(
        op!("permute", ""),
        vec![t(a), IValue::IntList(dims.to_vec())],
    )
}
pub(crate) fn mm(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    call(op!("mm", ""), vec![t(a), t(b)])
}
pub(crate) fn bmm(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    call(op!("bmm", ""), vec![t(a), t(b)])
}
pub(crate) fn mv(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    call(op!("mv", ""), vec![t(a), t(b)])
}
pub(crate) fn narrow(a: &Tensor, dim: i64, start: i64, len: i64) -> Result<Tensor> {
    call(
        op!("narrow", ""),
        vec![t(a), IValue::Int(dim), IValue::Int(start), IValue::Int(len)],
    )
}
pub(crate) fn select(a: &Tensor, dim: i64, index: i64) -> Result<Tensor> {
    call(
        op!("select", "int"),
        vec![t(a), IValue::Int(dim), IValue::Int(index)],
    )
}
pub(crate) fn slice(a: &Tensor, dim: i64, start: IValue, end: IValue, step: i64) -> Result<Tensor> {
    call(
        op!("slice", "Tensor"),
        vec![t(a), IValue::Int(dim), start, end, IValue::Int(step)],
    )
}
pub(crate) fn copy_(dst: &Tensor, src: &Tensor) -> Result<Tensor> {
    call(op!("copy_", ""), vec![t(dst), t(src), IValue::Bool(false)])
}

/// Sums `grad` down to `sizes` (the reverse of broadcasting; PyTorch's `sum_to`).
pub(crate) fn sum_to(grad: &Tensor, sizes: &[usize]) -> Result<Tensor> {
    if grad.sizes() == sizes {
        return Ok(grad.clone());
    }
    let lead = grad.dim() - sizes.len();
    let mut g = grad.clone();
    if lead > 0 {
        let dims: Vec<i64> = (0..lead as i64).collect();
        g = sum_dims(&g, &dims, false)?;
    }
    let dims: Vec<i64> = sizes
        .iter()
        .zip(g.sizes())
        .enumerate()
        .filter(|(_, (&want, &have))| want == 1 && have != 1)
        .map(|(i, _)| i as i64)
        .collect();
    if !dims.is_empty() {
        g = sum_dims(&g, &dims, true)?;
    }
    Ok(g)
}
