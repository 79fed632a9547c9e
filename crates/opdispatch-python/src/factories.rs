//! The tensor factories (`opdispatch.ones`, `zeros`, `empty`, `full`, `arange`) as calls of
//! their `aten` operators, like every other Python entry: a kernel registered over
//! `aten::ones` (or a dispatch mode) sees `opdispatch.ones(2)` exactly as it sees
//! `ops.aten.ones([2])`. Each resolves its overload once and then builds the boxed stack
//! directly from the Python arguments (no schema binding, no keyword dict).

use std::sync::{Arc, OnceLock};

use opdispatch_dispatch::{Dispatcher, IValue, OperatorHandle, Stack};
use opdispatch_tensor::{Device, Scalar};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::convert::to_py;
use crate::errors::{to_py as err_to_py, IntoPyResult};
use crate::tensor::{parse_device, parse_dtype, parse_size, scalar_from_py};

fn handle(
    cell: &'static OnceLock<OperatorHandle>,
    name: &str,
    overload: &str,
) -> PyResult<&'static OperatorHandle> {
    if let Some(h) = cell.get() {
        return Ok(h);
    }
    let op = Dispatcher::singleton()
        .find_schema_or_throw(name, overload)
        .py()?;
    Ok(cell.get_or_init(|| op))
}

macro_rules! aten_op {
    ($fn_name:ident, $name:literal, $ovl:literal) => {
        fn $fn_name() -> PyResult<&'static OperatorHandle> {
            static H: OnceLock<OperatorHandle> = OnceLock::new();
            handle(&H, $name, $ovl)
        }
    };
}

aten_op!(ones_op, "aten::ones", "");
aten_op!(zeros_op, "aten::zeros", "");
aten_op!(empty_op, "aten::empty", "memory_format");
aten_op!(full_op, "aten::full", "");
aten_op!(arange_op, "aten::arange", "");
aten_op!(arange_start_op, "aten::arange", "start");
aten_op!(arange_start_step_op, "aten::arange", "start_step");
aten_op!(lift_fresh_op, "aten::lift_fresh", "");

pub(crate) fn scalar_ivalue(s: Scalar) -> IValue {
    match s {
        Scalar::Bool(b) => IValue::Bool(b),
        Scalar::Int(i) => IValue::Int(i),
        Scalar::Float(f) => IValue::Double(f),
        Scalar::Complex(r, i) => IValue::Complex(r, i),
    }
}

/// The trailing `*, ScalarType? dtype, Layout? layout, Device? device, bool? pin_memory`
/// every factory schema ends with, as the boxed convention encodes them.
fn push_options(
    stack: &mut Stack,
    func: &str,
    dtype: Option<&Bound<'_, PyAny>>,
    device: Option<&Bound<'_, PyAny>>,
) -> PyResult<()> {
    stack.push(match parse_dtype(func, dtype)? {
        Some(st) => IValue::Int(st.c10_code()),
        None => IValue::None,
    });
    stack.push(IValue::None); // layout

    // torch's binding fills in the default device and pin_memory=False, so kernels and modes
    // see `device=device(type='cpu'), pin_memory=False` for `ones(2)`.
    let d: Device = parse_device(device)?;
    stack.push(IValue::Device(Arc::from(d.to_string())));
    stack.push(IValue::Bool(false)); // pin_memory
    Ok(())
}

/// Runs the factory; `requires_grad=True` is applied to the result, as torch's factories do.
fn call(
    py: Python<'_>,
    op: &OperatorHandle,
    mut stack: Stack,
    requires_grad: bool,
) -> PyResult<Py<PyAny>> {
    crate::errors::catch_kernel_panic(|| op.call_boxed(&mut stack).map_err(err_to_py))?;
    match stack.pop() {
        Some(v) if stack.is_empty() => {
            if requires_grad {
                // A factory's own text for an integral dtype (not `requires_grad_()`'s).
                if let Some(t) = v
                    .as_tensor()
                    .and_then(opdispatch_dispatch::TensorRef::downcast::<opdispatch_tensor::Tensor>)
                {
                    opdispatch_autograd::meta::set_requires_grad(&t, true).map_err(err_to_py)?;
                }
            }
            to_py(py, v, None)
        }
        _ => Err(crate::errors::runtime_error(format!(
            "{} returned {} values, expected one tensor",
            op.operator_name(),
            stack.len() + 1
        ))),
    }
}

/// `opdispatch.tensor`'s dispatched step: `aten::lift_fresh` on the tensor built from data.
pub(crate) fn lift_fresh(
    py: Python<'_>,
    t: opdispatch_tensor::Tensor,
    requires_grad: bool,
) -> PyResult<Py<PyAny>> {
    let op = lift_fresh_op()?;
    let mut stack = Stack::new();
    stack.push(opdispatch_dispatch::KernelArg::into_ivalue(t));
    call(py, op, stack, requires_grad)
}

fn sizes_ivalue(size: &Bound<'_, PyTuple>) -> PyResult<IValue> {
    Ok(IValue::IntList(
        parse_size(size)?.into_iter().map(|s| s as i64).collect(),
    ))
}

macro_rules! sized_factory {
    ($name:ident, $op:ident, $doc:literal $(, $extra:expr)?) => {
        #[doc = $doc]
        #[pyfunction]
        #[pyo3(signature = (*size, dtype=None, device=None, requires_grad=false))]
        pub(crate) fn $name(
            py: Python<'_>,
            size: &Bound<'_, PyTuple>,
            dtype: Option<&Bound<'_, PyAny>>,
            device: Option<&Bound<'_, PyAny>>,
            requires_grad: bool,
        ) -> PyResult<Py<PyAny>> {
            let op = $op()?;
            let mut stack = Stack::new();
            stack.push(sizes_ivalue(size)?);
            push_options(&mut stack, stringify!($name), dtype, device)?;
            $( stack.push($extra); )?
            call(py, op, stack, requires_grad)
        }
    };
}

sized_factory!(ones, ones_op, "A tensor filled with ones (`aten::ones`).");
sized_factory!(
    zeros,
    zeros_op,
    "A tensor filled with zeros (`aten::zeros`)."
);
sized_factory!(
    empty,
    empty_op,
    "An uninitialised tensor (`aten::empty.memory_format`; zeros on CPU, no data on Meta).",
    IValue::None
);

/// A tensor filled with `fill_value` (`aten::full`; the dtype follows the value when not given).
#[pyfunction]
#[pyo3(signature = (size, fill_value, *, dtype=None, device=None, requires_grad=false))]
pub(crate) fn full(
    py: Python<'_>,
    size: Vec<i64>,
    fill_value: &Bound<'_, PyAny>,
    dtype: Option<&Bound<'_, PyAny>>,
    device: Option<&Bound<'_, PyAny>>,
    requires_grad: bool,
) -> PyResult<Py<PyAny>> {
    let op = full_op()?;
    let mut stack = Stack::new();
    stack.push(IValue::IntList(size));
    stack.push(scalar_ivalue(scalar_from_py(fill_value)?));
    push_options(&mut stack, "full", dtype, device)?;
    call(py, op, stack, requires_grad)
}

/// Values from `start` to `end` (exclusive) by `step`: `aten::arange`, `.start` or
/// `.start_step`, by how many bounds are given (as `torch.arange` chooses).
#[pyfunction]
#[pyo3(signature = (start, end=None, step=None, *, dtype=None, device=None, requires_grad=false))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn arange(
    py: Python<'_>,
    start: &Bound<'_, PyAny>,
    end: Option<&Bound<'_, PyAny>>,
    step: Option<&Bound<'_, PyAny>>,
    dtype: Option<&Bound<'_, PyAny>>,
    device: Option<&Bound<'_, PyAny>>,
    requires_grad: bool,
) -> PyResult<Py<PyAny>> {
    let mut stack = Stack::new();
    let first = scalar_ivalue(scalar_from_py(start)?);
    let op = match (end, step) {
        (None, None) => {
            stack.push(first);
            arange_op()?
        }
        (Some(end), step) => {
            stack.push(first);
            stack.push(scalar_ivalue(scalar_from_py(end)?));
            match step {
                None => arange_start_op()?,
                Some(s) => {
                    stack.push(scalar_ivalue(scalar_from_py(s)?));
                    arange_start_step_op()?
                }
            }
        }
        // `arange(end, step=s)`: from 0.
        (None, Some(s)) => {
            stack.push(IValue::Int(0));
            stack.push(first);
            stack.push(scalar_ivalue(scalar_from_py(s)?));
            arange_start_step_op()?
        }
    };
    push_options(&mut stack, "arange", dtype, device)?;
    call(py, op, stack, requires_grad)
}
