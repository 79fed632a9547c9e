//! CompositeExplicitAutograd: factories (no tensor arguments: they dispatch on Undefined and
//! allocate on the device their arguments name) and kernels that build on other dispatched
//! operators (`rsub.Scalar`, the random factories, `lift_fresh`).

use opdispatch_dispatch::{CppFunction, IValue, Result};
use opdispatch_tensor::{Device, Scalar, ScalarType, Tensor, TensorError, DEFAULT_DTYPE};

use crate::args::Args;
use crate::calling::{aten_op, boxed, call1, tensor_result, tv, Fn1, FnTss, Kernels};
use crate::generic::like_options;

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

/// `rsub.Scalar`: `sub(other as a wrapped number, self)`.
fn rsub_s(a: Tensor, s: Scalar, alpha: Scalar) -> Result<Tensor> {
    let v = call1(
        aten_op!("sub", "Tensor"),
        opdispatch_dispatch::stack![
            tv(Tensor::wrapped_scalar(s)),
            tv(a),
            opdispatch_dispatch::KernelArg::into_ivalue(alpha)
        ],
    )?;
    tensor_result(v)
}

/// `lift_fresh`: the tensor `torch.tensor(data)` just built, unchanged.
fn lift_fresh(t: Tensor) -> Result<Tensor> {
    Ok(t)
}

/// A fresh tensor filled by an in-place random operator through the dispatcher, so the
/// tensor's backend fills it (Meta only checks the arguments).
fn random_fill(
    t: Tensor,
    op: opdispatch_dispatch::OperatorHandle,
    args: Vec<IValue>,
) -> Result<IValue> {
    let mut stack = opdispatch_dispatch::stack![tv(t)];
    stack.extend(args);
    stack.push(IValue::None);
    call1(op, stack)
}

/// The empty tensor of `rand`/`randn`/`randint`: `size`, then the options.
fn random_factory(a: &mut Args, default_dtype: Option<ScalarType>) -> Result<Tensor> {
    let size = sizes_of(&a.int_list()?)?;
    let (dtype, device) = a.tensor_options()?;
    Ok(Tensor::empty(
        &size,
        dtype.or(default_dtype).unwrap_or(DEFAULT_DTYPE),
        device.unwrap_or(Device::Cpu),
    )?)
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

/// Where this block registers (the "registered at" of the dispatch-table dumps).
pub(crate) const REGISTERED_AT: (&str, u32) = (file!(), line!());

pub(crate) fn kernels() -> Kernels {
    let mut k: Kernels = Vec::new();
    let mut add = |name: &'static str, f: CppFunction| k.push((name, f));
    add(
        "empty.memory_format",
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
        boxed(|a| {
            let end = a.scalar()?;
            arange_kernel(a, Scalar::Int(0), end, Scalar::Int(1))
        }),
    );
    add(
        "arange.start",
        boxed(|a| {
            let (start, end) = (a.scalar()?, a.scalar()?);
            arange_kernel(a, start, end, Scalar::Int(1))
        }),
    );
    add(
        "arange.start_step",
        boxed(|a| {
            let (start, end, step) = (a.scalar()?, a.scalar()?, a.scalar()?);
            arange_kernel(a, start, end, step)
        }),
    );
    add("rsub.Scalar", CppFunction::typed(rsub_s as FnTss));
    add("lift_fresh", CppFunction::typed(lift_fresh as Fn1));
    add(
        "rand",
        boxed(|a| {
            let t = random_factory(a, None)?;
            let uniform = aten_op!("uniform_", "");
            random_fill(t, uniform, vec![IValue::Double(0.0), IValue::Double(1.0)])
        }),
    );
    add(
        "randn",
        boxed(|a| {
            let t = random_factory(a, None)?;
            let normal = aten_op!("normal_", "");
            random_fill(t, normal, vec![IValue::Double(0.0), IValue::Double(1.0)])
        }),
    );
    add(
        "randint",
        boxed(|a| {
            let high = a.int()?;
            let t = random_factory(a, Some(ScalarType::Int64))?;
            let random = aten_op!("random_", "from");
            random_fill(t, random, vec![IValue::Int(0), IValue::Int(high)])
        }),
    );
    add(
        "randint.low",
        boxed(|a| {
            let (low, high) = (a.int()?, a.int()?);
            let t = random_factory(a, Some(ScalarType::Int64))?;
            let random = aten_op!("random_", "from");
            random_fill(t, random, vec![IValue::Int(low), IValue::Int(high)])
        }),
    );
    add(
        "rand_like",
        boxed(|a| {
            let t = a.tensor()?;
            let (dtype, device) = like_options(a, &t)?;
            let out = Tensor::empty(t.sizes(), dtype, device)?;
            let uniform = aten_op!("uniform_", "");
            random_fill(out, uniform, vec![IValue::Double(0.0), IValue::Double(1.0)])
        }),
    );
    add(
        "randn_like",
        boxed(|a| {
            let t = a.tensor()?;
            let (dtype, device) = like_options(a, &t)?;
            let out = Tensor::empty(t.sizes(), dtype, device)?;
            let normal = aten_op!("normal_", "");
            random_fill(out, normal, vec![IValue::Double(0.0), IValue::Double(1.0)])
        }),
    );
    k
}
