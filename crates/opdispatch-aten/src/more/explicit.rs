//! CompositeExplicitAutograd kernels of the second batch: the `new_*` factories (the options
//! default to `self`'s), `eye` and `linspace` (values computed on the host, then copied by the
//! destination backend's `copy_`, so a Meta destination only checks).

use opdispatch_dispatch::{IValue, Result};
use opdispatch_tensor::{Device, Scalar, ScalarType, Tensor, TensorError, DEFAULT_DTYPE};

use crate::args::Args;
use crate::calling::{aten_op, boxed, call1, tv, Kernels};

/// A `SymInt[] size` argument, with PyTorch's negative-dimension check.
fn sizes(a: &mut Args) -> Result<Vec<usize>> {
    let size = a.int_list()?;
    if let Some(&neg) = size.iter().find(|&&s| s < 0) {
        return Err(TensorError::InvalidShape(format!(
            "Trying to create tensor with negative dimension {neg}: {size:?}"
        ))
        .into());
    }
    Ok(size.iter().map(|&s| s as usize).collect())
}

/// `self.new_*`'s options: the arguments', else `self`'s.
fn new_options(a: &mut Args, t: &Tensor) -> Result<(ScalarType, Device)> {
    let (dtype, device) = a.tensor_options()?;
    Ok((dtype.unwrap_or(t.dtype()), device.unwrap_or(t.device())))
}

/// A tensor of `dtype` on `device` holding `vals` (row-major, `shape`): built on the host and
/// copied by the destination's `copy_`.
fn from_host(vals: Vec<f64>, shape: &[usize], dtype: ScalarType, device: Device) -> Result<IValue> {
    let host = Tensor::from_vec(vals, shape)?;
    let out = Tensor::empty(shape, dtype, device)?;
    call1(
        aten_op!("copy_", ""),
        opdispatch_dispatch::stack![tv(out), tv(host), IValue::Bool(false)],
    )
}

/// `sort(self, dim, descending)` is `sort.stable` with `stable=False`.
fn sort() -> opdispatch_dispatch::CppFunction {
    opdispatch_dispatch::CppFunction::boxed(
        |op: &opdispatch_dispatch::OperatorHandle,
         _ks: opdispatch_dispatch::DispatchKeySet,
         stack: &mut opdispatch_dispatch::Stack| {
            let mut a = Args::take(stack, op.num_arguments())?;
            let t = a.tensor()?;
            let (dim, desc) = (a.int()?, a.bool()?);
            let mut s = opdispatch_dispatch::stack![
                tv(t),
                IValue::Bool(false),
                IValue::Int(dim),
                IValue::Bool(desc)
            ];
            aten_op!("sort", "stable").call_boxed(&mut s)?;
            stack.extend(s);
            Ok(())
        },
    )
}

/// `remainder.Scalar` & co: the Tensor overload with the number as a wrapped-number tensor
/// (PyTorch's CompositeExplicitAutograd kernels).
fn scalar_overload(op: opdispatch_dispatch::OperatorHandle, a: &mut Args) -> Result<IValue> {
    let t = a.tensor()?;
    let s = a.scalar()?;
    call1(
        op,
        opdispatch_dispatch::stack![tv(t), tv(Tensor::wrapped_scalar(s))],
    )
}

/// `masked_fill.Scalar` / `.Tensor`: `self` expanded to the mask's broadcast shape, cloned, then
/// `masked_fill_` (as PyTorch's CompositeExplicitAutograd kernel).
fn masked_fill(a: &mut Args, tensor_value: bool) -> Result<IValue> {
    let t = a.tensor()?;
    let mask = a.tensor()?;
    let value = if tensor_value {
        tv(a.tensor()?)
    } else {
        opdispatch_dispatch::KernelArg::into_ivalue(a.scalar()?)
    };
    let shape = opdispatch_tensor::ops::broadcast_shapes(t.sizes(), mask.sizes())?;
    let shape: Vec<i64> = shape.iter().map(|&s| s as i64).collect();
    let expanded = call1(
        aten_op!("expand", ""),
        opdispatch_dispatch::stack![tv(t), IValue::IntList(shape), IValue::Bool(false)],
    )?;
    let copy = call1(
        aten_op!("clone", ""),
        opdispatch_dispatch::stack![expanded, IValue::None],
    )?;
    let op = if tensor_value {
        aten_op!("masked_fill_", "Tensor")
    } else {
        aten_op!("masked_fill_", "Scalar")
    };
    call1(op, opdispatch_dispatch::stack![copy, tv(mask), value])
}

pub(crate) fn kernels() -> Kernels {
    let mut k: Kernels = vec![("sort", sort())];
    k.push((
        "remainder.Scalar",
        boxed(|a| scalar_overload(aten_op!("remainder", "Tensor"), a)),
    ));
    k.push((
        "remainder_.Scalar",
        boxed(|a| scalar_overload(aten_op!("remainder_", "Tensor"), a)),
    ));
    k.push((
        "fmod.Scalar",
        boxed(|a| scalar_overload(aten_op!("fmod", "Tensor"), a)),
    ));
    k.push((
        "fmod_.Scalar",
        boxed(|a| scalar_overload(aten_op!("fmod_", "Tensor"), a)),
    ));
    k.push((
        "floor_divide.Scalar",
        boxed(|a| scalar_overload(aten_op!("floor_divide", ""), a)),
    ));
    k.push((
        "floor_divide_.Scalar",
        boxed(|a| scalar_overload(aten_op!("floor_divide_", "Tensor"), a)),
    ));
    k.push(("masked_fill.Scalar", boxed(|a| masked_fill(a, false))));
    k.push(("masked_fill.Tensor", boxed(|a| masked_fill(a, true))));
    for (name, fill) in [
        ("new_zeros", Some(0)),
        ("new_ones", Some(1)),
        ("new_empty", None),
    ] {
        k.push((
            name,
            boxed(move |a| {
                let t = a.tensor()?;
                let size = sizes(a)?;
                let (dtype, device) = new_options(a, &t)?;
                Ok(tv(match fill {
                    Some(0) => Tensor::zeros(&size, dtype, device)?,
                    Some(_) => Tensor::ones(&size, dtype, device)?,
                    None => Tensor::empty(&size, dtype, device)?,
                }))
            }),
        ));
    }
    k.push((
        "new_full",
        boxed(|a| {
            let t = a.tensor()?;
            let size = sizes(a)?;
            let v = a.scalar()?;
            let (dtype, device) = new_options(a, &t)?;
            Ok(tv(Tensor::full(&size, v, dtype, device)?))
        }),
    ));
    for (name, with_m) in [("eye", false), ("eye.m", true)] {
        k.push((
            name,
            boxed(move |a| {
                let n = a.int()?;
                let m = if with_m { a.int()? } else { n };
                if n < 0 {
                    return Err(TensorError::other(format!(
                        "n must be greater or equal to 0, got {n}"
                    ))
                    .into());
                }
                if m < 0 {
                    return Err(TensorError::other(format!(
                        "m must be greater or equal to 0, got {m}"
                    ))
                    .into());
                }
                let (dtype, device) = a.tensor_options()?;
                let (n, m) = (n as usize, m as usize);
                let mut v = vec![0.0; n * m];
                for i in 0..n.min(m) {
                    v[i * m + i] = 1.0;
                }
                from_host(
                    v,
                    &[n, m],
                    dtype.unwrap_or(DEFAULT_DTYPE),
                    device.unwrap_or(Device::Cpu),
                )
            }),
        ));
    }
    k.push((
        "linspace",
        boxed(|a| {
            let (start, end) = (a.scalar()?, a.scalar()?);
            let steps = a.int()?;
            if steps < 0 {
                return Err(TensorError::other("number of steps must be non-negative").into());
            }
            let (dtype, device) = a.tensor_options()?;
            let dtype = dtype.unwrap_or(DEFAULT_DTYPE);
            if matches!(start, Scalar::Complex(..)) || matches!(end, Scalar::Complex(..)) {
                return Err(
                    TensorError::unsupported("linspace_cpu", ScalarType::ComplexFloat).into(),
                );
            }
            let (s, e) = (start.to_f64(), end.to_f64());
            let n = steps as usize;
            let vals: Vec<f64> = if n == 1 {
                vec![s]
            } else {
                // As PyTorch's CPU kernel: the first half from `start`, the rest back from `end`.
                let step = (e - s) / (n as f64 - 1.0);
                let half = n / 2;
                (0..n)
                    .map(|i| {
                        if i < half {
                            s + step * i as f64
                        } else {
                            e - step * (n - 1 - i) as f64
                        }
                    })
                    .collect()
            };
            from_host(vals, &[n], dtype, device.unwrap_or(Device::Cpu))
        }),
    ));
    k
}
