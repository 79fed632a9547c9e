//! Tensor operators (`a + b`, `a @ b`, `-a`, ...) as direct typed calls through the dispatcher:
//! each operator resolves its `aten` overload once and then costs one typed dispatch (key
//! extraction, TLS, table lookup) plus wrapping the result.

use std::sync::OnceLock;

use opdispatch_dispatch::{Dispatcher, KernelSignature, TypedOperatorHandle};
use opdispatch_tensor::{Scalar, Tensor};
use pyo3::prelude::*;

use crate::errors::IntoPyResult;
use crate::tensor::{scalar_from_py, unwrap_tensor, wrap_tensor, PyTensor};
use crate::torch_function::{maybe_handle_method, Binding};

type Res = opdispatch_dispatch::Result<Tensor>;
type Tts = fn(Tensor, Tensor, Scalar) -> Res;
type Tss = fn(Tensor, Scalar, Scalar) -> Res;
type Tt = fn(Tensor, Tensor) -> Res;
type Ts = fn(Tensor, Scalar) -> Res;
type T1 = fn(Tensor) -> Res;

pub(crate) fn handle<F: KernelSignature>(
    cell: &'static OnceLock<TypedOperatorHandle<F>>,
    name: &str,
    overload: &str,
) -> PyResult<&'static TypedOperatorHandle<F>> {
    if let Some(h) = cell.get() {
        return Ok(h);
    }
    let op = Dispatcher::singleton()
        .find_schema_or_throw(name, overload)
        .py()?;
    let h = op.typed::<F>().py()?;
    Ok(cell.get_or_init(|| h))
}

macro_rules! typed_op {
    ($fn_name:ident, $ty:ty, $name:literal, $ovl:literal) => {
        fn $fn_name() -> pyo3::PyResult<&'static opdispatch_dispatch::TypedOperatorHandle<$ty>> {
            static H: std::sync::OnceLock<opdispatch_dispatch::TypedOperatorHandle<$ty>> =
                std::sync::OnceLock::new();
            $crate::arith::handle(&H, $name, $ovl)
        }
    };
}

pub(crate) use typed_op;

typed_op!(add_t, Tts, "aten::add", "Tensor");
typed_op!(rsub_s, Tss, "aten::rsub", "Scalar");
typed_op!(sub_t, Tts, "aten::sub", "Tensor");
typed_op!(mul_t, Tt, "aten::mul", "Tensor");
typed_op!(div_t, Tt, "aten::div", "Tensor");
typed_op!(pow_tt, Tt, "aten::pow", "Tensor_Tensor");
typed_op!(pow_ts, Ts, "aten::pow", "Tensor_Scalar");
typed_op!(pow_st, fn(Scalar, Tensor) -> Res, "aten::pow", "Scalar");
typed_op!(matmul_t, Tt, "aten::matmul", "");
typed_op!(neg_t, T1, "aten::neg", "");
typed_op!(abs_t, T1, "aten::abs", "");
typed_op!(reciprocal_t, T1, "aten::reciprocal", "");

/// The right operand of a binary operator: a tensor, a Python number, or neither.
enum Operand {
    T(Tensor),
    S(Scalar),
}

fn operand(o: &Bound<'_, PyAny>) -> Option<Operand> {
    if o.cast::<PyTensor>().is_ok() {
        return unwrap_tensor(o).ok().map(Operand::T);
    }
    scalar_from_py(o).ok().map(Operand::S)
}

fn one() -> Scalar {
    Scalar::Int(1)
}

/// Runs a unary operator's typed call (kernel panics become `RuntimeError`).
fn unary(py: Python<'_>, f: impl FnOnce() -> PyResult<Res>) -> PyResult<Py<PyAny>> {
    done(py, crate::errors::catch_kernel_panic(f)?)
}

fn done(py: Python<'_>, r: Res) -> PyResult<Py<PyAny>> {
    wrap_tensor(py, r.map_err(crate::errors::to_py)?)
}

/// Shared shape of the binary operators: `self op tensor` via `with_tensor`, `self op number`
/// via `with_scalar` (absent: the operator does not take numbers; `+ - * /` call their
/// `.Tensor` overload with the number as a wrapped-number tensor, as torch's binding does, so
/// modes and subclasses see the same call), anything else
/// `NotImplemented` so Python tries the reflected operator.
fn binary(
    slf: &Bound<'_, PyTensor>,
    py: Python<'_>,
    o: &Bound<'_, PyAny>,
    method: &str,
    with_tensor: impl FnOnce(Tensor, Tensor) -> PyResult<Res>,
    with_scalar: Option<&dyn Fn(Tensor, Scalar) -> PyResult<Res>>,
) -> PyResult<Py<PyAny>> {
    // `pow` checks for itself (torch binds it in Python); "" skips the check here.
    if !method.is_empty() {
        if let Some(r) = overridden(py, method, &[slf.as_any(), o], Binding::Native) {
            return r;
        }
    }
    let call = match (operand(o), with_scalar) {
        (Some(Operand::T(b)), _) => {
            let a = unwrap_tensor(slf.as_any())?;
            crate::errors::catch_kernel_panic(|| with_tensor(a, b))
        }
        (Some(Operand::S(s)), Some(f)) => {
            let a = unwrap_tensor(slf.as_any())?;
            crate::errors::catch_kernel_panic(|| f(a, s))
        }
        _ => return Ok(py.NotImplemented()),
    };
    not_implemented_on_type_error(py, call.and_then(|r| done(py, r)))
}

/// torch's binary operators turn a `TypeError` from the call (every `__torch_dispatch__`
/// handler returned `NotImplemented`, say) into `NotImplemented`, so Python tries the reflected
/// operator and then raises its own "unsupported operand type(s)" error.
fn not_implemented_on_type_error(py: Python<'_>, r: PyResult<Py<PyAny>>) -> PyResult<Py<PyAny>> {
    match r {
        Err(e) if e.is_instance_of::<pyo3::exceptions::PyTypeError>(py) => Ok(py.NotImplemented()),
        r => r,
    }
}

/// An operator's `__torch_function__` handling (`Tensor.<method>` as `func`), if an operand
/// or a mode overrides it; as torch's operators, a `TypeError` (every handler declined)
/// becomes `NotImplemented`.
fn overridden(
    py: Python<'_>,
    method: &str,
    args: &[&Bound<'_, PyAny>],
    binding: Binding,
) -> Option<PyResult<Py<PyAny>>> {
    match maybe_handle_method(py, method, args, binding) {
        Ok(None) => None,
        Ok(Some(r)) => Some(Ok(r)),
        Err(e) => Some(not_implemented_on_type_error(py, Err(e))),
    }
}

type Slf<'a, 'py> = &'a Bound<'py, PyTensor>;

#[pymethods]
impl PyTensor {
    fn __add__(slf: Slf<'_, '_>, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        binary(
            slf,
            py,
            o,
            "add",
            |a, b| Ok(add_t()?.call(a, b, one())),
            Some(&|a, s| Ok(add_t()?.call(a, Tensor::wrapped_scalar(s), one()))),
        )
    }
    fn __radd__(slf: Slf<'_, '_>, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        Self::__add__(slf, py, o)
    }
    fn __sub__(slf: Slf<'_, '_>, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        binary(
            slf,
            py,
            o,
            "sub",
            |a, b| Ok(sub_t()?.call(a, b, one())),
            Some(&|a, s| Ok(sub_t()?.call(a, Tensor::wrapped_scalar(s), one()))),
        )
    }
    /// `s - t`: `aten::rsub.Scalar`, as torch's `Tensor.__rsub__`.
    fn __rsub__(slf: Slf<'_, '_>, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        if let Some(r) = overridden(py, "__rsub__", &[slf.as_any(), o], Binding::Python) {
            return r;
        }
        match operand(o) {
            Some(Operand::S(s)) => {
                let a = unwrap_tensor(slf.as_any())?;
                not_implemented_on_type_error(py, unary(py, || Ok(rsub_s()?.call(a, s, one()))))
            }
            _ => Ok(py.NotImplemented()),
        }
    }
    /// `s / t` = `t.reciprocal() * s`, as torch's `Tensor.__rtruediv__`.
    fn __rtruediv__(slf: Slf<'_, '_>, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        if let Some(r) = overridden(py, "__rdiv__", &[slf.as_any(), o], Binding::Python) {
            return r;
        }
        match operand(o) {
            Some(Operand::S(s)) => {
                let a = unwrap_tensor(slf.as_any())?;
                let r = unary(py, || {
                    let r = reciprocal_t()?.call(a).map_err(crate::errors::to_py)?;
                    Ok(mul_t()?.call(r, Tensor::wrapped_scalar(s)))
                });
                not_implemented_on_type_error(py, r)
            }
            _ => Ok(py.NotImplemented()),
        }
    }
    fn __mul__(slf: Slf<'_, '_>, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        binary(
            slf,
            py,
            o,
            "mul",
            |a, b| Ok(mul_t()?.call(a, b)),
            Some(&|a, s| Ok(mul_t()?.call(a, Tensor::wrapped_scalar(s)))),
        )
    }
    fn __rmul__(slf: Slf<'_, '_>, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        Self::__mul__(slf, py, o)
    }
    fn __truediv__(slf: Slf<'_, '_>, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        binary(
            slf,
            py,
            o,
            "div",
            |a, b| Ok(div_t()?.call(a, b)),
            Some(&|a, s| Ok(div_t()?.call(a, Tensor::wrapped_scalar(s)))),
        )
    }
    fn __pow__(
        slf: Slf<'_, '_>,
        py: Python<'_>,
        o: &Bound<'_, PyAny>,
        _modulo: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        if let Some(r) = overridden(py, "pow", &[slf.as_any(), o], Binding::Python) {
            return r;
        }
        binary(
            slf,
            py,
            o,
            "",
            |a, b| Ok(pow_tt()?.call(a, b)),
            Some(&|a, s| Ok(pow_ts()?.call(a, s))),
        )
    }
    /// `s ** t`: `aten::pow.Scalar`, as torch's `Tensor.__rpow__` (`torch.pow(s, t)`).
    fn __rpow__(
        slf: Slf<'_, '_>,
        py: Python<'_>,
        o: &Bound<'_, PyAny>,
        _modulo: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        if let Some(r) = overridden(py, "__rpow__", &[slf.as_any(), o], Binding::Python) {
            return r;
        }
        match operand(o) {
            Some(Operand::S(s)) => {
                let a = unwrap_tensor(slf.as_any())?;
                unary(py, || Ok(pow_st()?.call(s, a)))
            }
            _ => Ok(py.NotImplemented()),
        }
    }
    fn __matmul__(slf: Slf<'_, '_>, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        binary(
            slf,
            py,
            o,
            "matmul",
            |a, b| Ok(matmul_t()?.call(a, b)),
            None,
        )
    }
    fn __neg__(slf: Slf<'_, '_>, py: Python<'_>) -> PyResult<Py<PyAny>> {
        if let Some(r) = maybe_handle_method(py, "neg", &[slf.as_any()], Binding::SelfOnly)? {
            return Ok(r);
        }
        let a = unwrap_tensor(slf.as_any())?;
        unary(py, || Ok(neg_t()?.call(a)))
    }
    fn __abs__(slf: Slf<'_, '_>, py: Python<'_>) -> PyResult<Py<PyAny>> {
        if let Some(r) = maybe_handle_method(py, "abs", &[slf.as_any()], Binding::SelfOnly)? {
            return Ok(r);
        }
        let a = unwrap_tensor(slf.as_any())?;
        unary(py, || Ok(abs_t()?.call(a)))
    }
}
