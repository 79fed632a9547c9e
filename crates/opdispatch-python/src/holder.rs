//! `PythonKernelHolder`: a Python callable registered as a boxed kernel (spec 5.2).
//!
//! The kernel pops its arguments, converts them per the schema (kwarg-only ones as kwargs),
//! calls the callable under the hermetic-PyObject guard with the Python key excluded unless a
//! TorchDispatchMode is active or an argument carries the Python key (then it runs
//! non-hermetic), and pushes the converted results. A Python exception propagates unchanged.
//! The Python key's own fallback is in `python_dispatch.rs`.

use opdispatch_dispatch::{
    BoxedKernel, DispatchError, DispatchKey, DispatchKeySet, EnableHermeticPyObject, IValue,
    OperatorHandle, Stack,
};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::convert::{args_to_py, to_ivalue};
use crate::errors::py_to_dispatch;
use crate::keys::PyDispatchKeySet;

pub(crate) struct PythonKernelHolder {
    pub func: Py<PyAny>,
    pub with_keyset: bool,
    pub with_op: bool,
}

/// Where the operator's arguments start on the stack.
pub(crate) fn arguments_start(
    op: &OperatorHandle,
    schema: Option<&opdispatch_schema::FunctionSchema>,
    stack: &Stack,
) -> opdispatch_dispatch::Result<usize> {
    let schema = schema.ok_or_else(|| {
        DispatchError::Runtime(format!(
            "Tried to access the schema for {} which doesn't have a schema registered yet",
            op.operator_name()
        ))
    })?;
    let n = schema.arguments.len();
    if stack.len() < n {
        return Err(DispatchError::Internal(format!(
            "stack underflow calling {}",
            op.operator_name()
        )));
    }
    Ok(stack.len() - n)
}

pub(crate) fn has_python_key_arg(args: &[IValue]) -> bool {
    args.iter().any(|v| v.key_set().has(DispatchKey::Python))
}

impl BoxedKernel for PythonKernelHolder {
    fn call(
        &self,
        op: &OperatorHandle,
        ks: DispatchKeySet,
        stack: &mut Stack,
    ) -> opdispatch_dispatch::Result<()> {
        op.with_schema(|schema| self.call_with_schema(op, schema, ks, stack))
    }
    fn kind(&self) -> &'static str {
        "python"
    }
}

impl PythonKernelHolder {
    fn call_with_schema(
        &self,
        op: &OperatorHandle,
        schema: Option<&opdispatch_schema::FunctionSchema>,
        ks: DispatchKeySet,
        stack: &mut Stack,
    ) -> opdispatch_dispatch::Result<()> {
        let start = arguments_start(op, schema, stack)?;
        let schema = schema.expect("checked by arguments_start");
        // The three branches (spec 5.2.1): a mode is active, or an argument is a Python
        // subclass: the kernel runs non-hermetic, so the mode sees the preserved objects and the
        // kernel's own calls reach it; otherwise the seed's hermetic call.
        let hermetic =
            crate::python_dispatch::mode_stack_len() == 0 && !has_python_key_arg(&stack[start..]);
        Python::attach(|py| -> PyResult<()> {
            let _h = hermetic.then(EnableHermeticPyObject::new);
            let (mut pos, kwargs) = args_to_py(py, schema, stack, start)?;
            if self.with_op {
                pos.insert(0, crate::module::op_overload_object(py, op)?);
            }
            if self.with_keyset {
                pos.insert(0, Py::new(py, PyDispatchKeySet::new_set(ks))?.into_any());
            }
            let out = match kwargs {
                // The common case: positional arguments only, passed by vectorcall (no tuple).
                None => vectorcall(py, &self.func, &pos)?,
                Some(kw) => self.func.bind(py).call(PyTuple::new(py, pos)?, Some(&kw))?,
            };
            drop(_h);
            push_py_out(op, schema, stack, &out)
        })
        .map_err(py_to_dispatch)
    }
}

/// Calls `func(*args)` through the vectorcall protocol.
pub(crate) fn vectorcall<'py>(
    py: Python<'py>,
    func: &Py<PyAny>,
    args: &[Py<PyAny>],
) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY: `Py<PyAny>` has the layout of an object pointer, so `args` is the array
    // vectorcall expects; `func` and every argument are live objects owned by the caller for
    // the duration of the call (the GIL is held); the returned reference is new (or NULL with
    // an exception set, which `from_owned_ptr_or_err` turns into the error).
    unsafe {
        let r = pyo3::ffi::PyObject_Vectorcall(
            func.as_ptr(),
            args.as_ptr().cast(),
            args.len(),
            std::ptr::null_mut(),
        );
        Bound::from_owned_ptr_or_err(py, r)
    }
}

/// `pushPyOutToStack`.
pub(crate) fn push_py_out(
    op: &OperatorHandle,
    schema: &opdispatch_schema::FunctionSchema,
    stack: &mut Stack,
    out: &Bound<'_, PyAny>,
) -> PyResult<()> {
    match schema.returns.len() {
        0 => {
            if !out.is_none() {
                return Err(crate::errors::runtime_error(format!(
                    "Expected PythonKernelHolder for {} to return None but it returned something else instead.",
                    op.operator_name()
                )));
            }
        }
        1 => stack.push(return_to_ivalue(out, &schema.returns[0].ty)?),
        n => {
            // pybind's `py::cast<py::sequence>` text, as torch's.
            let not_seq = || {
                crate::errors::type_error(format!(
                    "Object of type '{}' is not an instance of 'sequence'",
                    out.get_type()
                        .name()
                        .map(|s| s.to_string())
                        .unwrap_or_default()
                ))
            };
            // A tensor is iterable but, as torch's, not a sequence.
            if out.cast::<crate::tensor::PyTensor>().is_ok() {
                return Err(not_seq());
            }
            let seq: Vec<Bound<'_, PyAny>> = out
                .try_iter()
                .map_err(|_| not_seq())?
                .collect::<PyResult<_>>()
                .map_err(|_| not_seq())?;
            if seq.len() != n {
                return Err(crate::errors::runtime_error(format!(
                    "Python kernel for {} returned {} values but its schema has {n} returns",
                    op.operator_name(),
                    seq.len()
                )));
            }
            for (v, r) in seq.iter().zip(&schema.returns) {
                stack.push(return_to_ivalue(v, &r.ty)?);
            }
        }
    }
    Ok(())
}

/// One returned value as its schema type, with torch's `toIValue` coercions (a bool where an
/// int is declared, an int where a bool is) and its error texts: `Unable to cast <str(obj)> to
/// Tensor` for tensors, pybind's cast text for everything else.
fn return_to_ivalue(obj: &Bound<'_, PyAny>, ty: &opdispatch_schema::Type) -> PyResult<IValue> {
    use opdispatch_schema::Type;
    use pyo3::types::{PyBool, PyInt};
    if let Ok(v) = to_ivalue(obj, ty) {
        return Ok(v);
    }
    let base = match ty {
        Type::Optional(inner) => inner.as_ref(),
        t => t,
    };
    match base {
        Type::Int | Type::SymInt if obj.is_instance_of::<PyBool>() => {
            return Ok(IValue::Int(i64::from(obj.extract::<bool>()?)))
        }
        Type::Bool if obj.is_instance_of::<PyInt>() => return Ok(IValue::Bool(obj.is_truthy()?)),
        Type::Tensor => {
            return Err(crate::errors::runtime_error(format!(
                "Unable to cast {} to Tensor",
                obj.str()?
            )))
        }
        _ => {}
    }
    Err(crate::errors::runtime_error(format!(
        "Unable to cast Python instance of type {} to C++ type '?' (#define PYBIND11_DETAILED_ERROR_MESSAGES or compile in debug mode for details)",
        obj.get_type().repr()?
    )))
}
