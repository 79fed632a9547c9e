//! The native kernels `custom_op` registers (issue 12):
//! - `CustomOpBackendKernel`: the device-type kernel. It resolves the op's current function
//!   (the one `register_kernel` last set, or the original while the device type is disabled),
//!   calls it with the stack's arguments as the Python kernel holder does, and checks that no
//!   output shares storage with an input or another output. This is the path of every call,
//!   so the dispatcher reaches the user function with no Python-level callable in between.
//! - `CustomOpInplaceKernel`: the ADInplaceOrView kernel of a mutating op: bumps the version
//!   counter of each mutated argument once, then runs the op below ADInplaceOrView (so the
//!   kernel's own in-place calls bump nothing more), as torch's `adinplaceorview_impl`.

use opdispatch_dispatch::{
    BoxedKernel, DispatchKeySet, EnableHermeticPyObject, ExcludeDispatchKeyGuard, IValue,
    OperatorHandle, Stack,
};
use opdispatch_keys::{
    AFTER_AD_INPLACE_OR_VIEW_KEYSET, AUTOGRAD_DISPATCH_KEYSET_WITH_AD_INPLACE_OR_VIEW,
};
use opdispatch_tensor::Tensor;
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use smallvec::SmallVec;

use crate::convert::args_to_py;
use crate::custom_ops::PyCustomOpBackend;
use crate::errors::py_to_dispatch;
use crate::holder::{arguments_start, has_python_key_arg, push_py_out, vectorcall};

/// The storage identity of a tensor handle (0 for a handle that is not a runtime tensor).
fn storage_of(r: &opdispatch_dispatch::TensorRef) -> usize {
    r.downcast::<Tensor>()
        .map_or(0, |t| t.storage_ref().unsafe_impl_ptr() as usize)
}

/// Storage ids of a call's tensors (most custom ops take and return a few).
type Storages = SmallVec<[usize; 8]>;

/// Pushes the storage ids of the tensors `v` holds (one level into lists).
fn storages(v: &IValue, into: &mut Storages) {
    match v {
        IValue::Tensor(r) => into.push(storage_of(r)),
        IValue::TensorList(l) => into.extend(l.iter().map(storage_of)),
        IValue::OptionalTensorList(l) => into.extend(l.iter().flatten().map(storage_of)),
        IValue::List(l) | IValue::Tuple(l) => {
            for item in l {
                if let IValue::Tensor(r) = item {
                    into.push(storage_of(r));
                }
            }
        }
        _ => {}
    }
}

/// The device kernel of a custom op; `backend` is the `_C._CustomOpBackend` Python registered
/// (it keeps the function table, the disabled set and the aliasing error's factory).
pub(crate) struct CustomOpBackendKernel {
    pub(crate) backend: Py<PyCustomOpBackend>,
}

impl BoxedKernel for CustomOpBackendKernel {
    fn call(
        &self,
        op: &OperatorHandle,
        _ks: DispatchKeySet,
        stack: &mut Stack,
    ) -> opdispatch_dispatch::Result<()> {
        op.with_schema(|schema| {
            let start = arguments_start(op, schema, stack)?;
            let schema = schema.expect("checked by arguments_start");
            let hermetic = crate::python_dispatch::mode_stack_len() == 0
                && !has_python_key_arg(&stack[start..]);
            let backend = self.backend.get();
            let mut inputs = Storages::new();
            if backend.check_aliasing {
                for v in &stack[start..] {
                    storages(v, &mut inputs);
                }
            }
            Python::attach(|py| -> PyResult<()> {
                let f = backend.current_fn(py)?;
                let guard = hermetic.then(EnableHermeticPyObject::new);
                let (pos, kwargs) = args_to_py(py, schema, stack, start)?;
                let out = match kwargs {
                    None => vectorcall(py, f.as_unbound(), &pos)?,
                    Some(kw) => f.call(PyTuple::new(py, pos)?, Some(&kw))?,
                };
                drop(guard);
                let first_out = stack.len();
                push_py_out(op, schema, stack, &out)?;
                if !backend.check_aliasing {
                    return Ok(());
                }
                let mut outputs = Storages::new();
                for v in &stack[first_out..] {
                    storages(v, &mut outputs);
                }
                let aliases = outputs
                    .iter()
                    .enumerate()
                    .any(|(i, o)| inputs.contains(o) || outputs[..i].contains(o));
                if aliases {
                    stack.truncate(first_out);
                    backend.raise_alias_error(py)?;
                }
                Ok(())
            })
            .map_err(py_to_dispatch)
        })
    }
    fn kind(&self) -> &'static str {
        "python"
    }
}

/// The ADInplaceOrView kernel of a mutating custom op; `mutated` are the positions (in the
/// schema's argument list) of the arguments it writes.
pub(crate) struct CustomOpInplaceKernel {
    pub(crate) mutated: Vec<usize>,
}

impl BoxedKernel for CustomOpInplaceKernel {
    fn call(
        &self,
        op: &OperatorHandle,
        ks: DispatchKeySet,
        stack: &mut Stack,
    ) -> opdispatch_dispatch::Result<()> {
        let n = op.num_arguments();
        let start = stack.len().saturating_sub(n);
        for &i in &self.mutated {
            let Some(v) = stack.get(start + i) else {
                continue;
            };
            let bump = |r: &opdispatch_dispatch::TensorRef| {
                if let Some(t) = r.downcast::<Tensor>() {
                    t.bump_version();
                }
            };
            match v {
                IValue::Tensor(r) => bump(r),
                IValue::TensorList(l) => l.iter().for_each(bump),
                IValue::OptionalTensorList(l) => l.iter().flatten().for_each(bump),
                _ => {}
            }
        }
        let _below = ExcludeDispatchKeyGuard::new(AUTOGRAD_DISPATCH_KEYSET_WITH_AD_INPLACE_OR_VIEW);
        op.redispatch_boxed(ks & AFTER_AD_INPLACE_OR_VIEW_KEYSET, stack)
    }
}
