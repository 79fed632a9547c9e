//! The Python surface of autograd: Tensor's autograd attributes, grad mode, graph nodes as
//! Python objects, the `autograd.Function` node, and the engine's entry points. The engine and
//! the formulas are in `opdispatch-autograd`; this file only converts.

use std::any::Any;
use std::sync::{Arc, Weak};

use opdispatch_autograd::node::NodeCore;
use opdispatch_autograd::saved::{SavedVariable, SavedVariables};
use opdispatch_autograd::{engine, grad_mode, meta, Edge, Node, TensorMeta};
use opdispatch_dispatch::{DispatchError, ExcludeDispatchKeyGuard};
use opdispatch_keys::AUTOGRAD_DISPATCH_KEYSET;
use opdispatch_tensor::Tensor;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyList, PyTuple};

use crate::errors::{py_to_dispatch, to_py, IntoPyResult};
use crate::tensor::{unwrap_tensor, wrap_tensor, PyTensor};

fn opt_wrap(py: Python<'_>, t: Option<Tensor>) -> PyResult<Py<PyAny>> {
    match t {
        Some(t) => wrap_tensor(py, t),
        None => Ok(py.None()),
    }
}

fn tensors_of(obj: &Bound<'_, PyAny>) -> PyResult<Vec<Tensor>> {
    if obj.cast::<PyTensor>().is_ok() {
        return Ok(vec![unwrap_tensor(obj)?]);
    }
    obj.try_iter()?.map(|o| unwrap_tensor(&o?)).collect()
}

fn opt_tensors_of(obj: &Bound<'_, PyAny>, n: usize) -> PyResult<Vec<Option<Tensor>>> {
    if obj.is_none() {
        return Ok(vec![None; n]);
    }
    if obj.cast::<PyTensor>().is_ok() {
        return Ok(vec![Some(unwrap_tensor(obj)?)]);
    }
    obj.try_iter()?
        .map(|o| {
            let o = o?;
            if o.is_none() {
                Ok(None)
            } else {
                unwrap_tensor(&o).map(Some)
            }
        })
        .collect()
}

// ---- Tensor attributes ----

#[pymethods]
impl PyTensor {
    #[getter]
    fn requires_grad(&self) -> bool {
        self.t.requires_grad()
    }
    #[setter]
    fn set_requires_grad(&self, on: bool) -> PyResult<()> {
        meta::set_requires_grad_with(&self.t, on, meta::SETTER_DTYPE_ERROR).py()
    }
    #[pyo3(signature = (requires_grad=true))]
    fn requires_grad_(slf: Bound<'_, Self>, requires_grad: bool) -> PyResult<Bound<'_, Self>> {
        meta::set_requires_grad_with(&slf.borrow().t, requires_grad, meta::METHOD_DTYPE_ERROR)
            .py()?;
        Ok(slf)
    }
    #[getter]
    fn is_leaf(&self) -> bool {
        meta::is_leaf(&self.t)
    }
    #[getter]
    fn grad(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        if !meta::is_leaf(&self.t) && !meta::retains_grad(&self.t) {
            let warning = py.get_type::<pyo3::exceptions::PyUserWarning>();
            PyErr::warn(
                py,
                &warning,
                c"The .grad attribute of a Tensor that is not a leaf Tensor is being accessed. Its .grad attribute won't be populated during autograd.backward(). If you indeed want the .grad field to be populated for a non-leaf Tensor, use .retain_grad() on the non-leaf Tensor. If you access the non-leaf Tensor by mistake, make sure you access the leaf Tensor instead. See github.com/pytorch/pytorch/pull/30531 for more information.",
                1,
            )?;
        }
        opt_wrap(py, meta::grad(&self.t))
    }
    #[setter]
    fn set_grad(&self, g: Option<Bound<'_, PyAny>>) -> PyResult<()> {
        let g = match g {
            Some(g) if !g.is_none() => Some(unwrap_tensor(&g)?),
            _ => None,
        };
        meta::set_grad(&self.t, g).py()
    }
    #[getter]
    fn grad_fn(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        match meta::grad_fn(&self.t) {
            Some(n) => wrap_node(py, n),
            None => Ok(py.None()),
        }
    }
    #[getter]
    fn _version(&self) -> u64 {
        self.t.version()
    }
    #[getter]
    fn retains_grad(&self) -> bool {
        meta::retains_grad(&self.t)
    }
    fn retain_grad(&self) -> PyResult<()> {
        meta::retain_grad(&self.t).py()
    }
    #[getter]
    fn output_nr(&self) -> u32 {
        meta::output_nr(&self.t)
    }
    /// The tensor this one is a view of (the root of its views), or `None`.
    #[getter]
    fn _base(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        opt_wrap(py, meta::base(&self.t))
    }
    fn _is_view(&self) -> bool {
        meta::base(&self.t).is_some()
    }
    /// `t.data`: the same storage and geometry as a new tensor outside autograd (no history,
    /// no view relation, not dispatched: PyTorch's `variable_data`).
    #[getter]
    fn data(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        wrap_tensor(py, self.t.shallow_alias())
    }
    /// Registers `hook(grad) -> Tensor | None` on this tensor's gradient; returns its id.
    fn _register_hook(&self, hook: Py<PyAny>) -> PyResult<u64> {
        let f: opdispatch_autograd::hooks::GradHook = Arc::new(move |g: &Tensor| {
            Python::attach(|py| -> PyResult<Option<Tensor>> {
                let r = hook.bind(py).call1((wrap_tensor(py, g.clone())?,))?;
                if r.is_none() {
                    Ok(None)
                } else {
                    unwrap_tensor(&r).map(Some)
                }
            })
            .map_err(py_to_dispatch)
        });
        opdispatch_autograd::hooks::register_hook(&self.t, f).py()
    }
    fn _remove_hook(&self, id: u64) {
        opdispatch_autograd::hooks::remove_hook(&self.t, id);
    }
}

// ---- graph nodes ----

/// A backward-graph node as Python sees it; `opdispatch.autograd.graph` wraps it in a class
/// named after the node (`type(t.grad_fn).__name__ == "MulBackward0"`).
#[pyclass(name = "_Node", module = "opdispatch._C", frozen)]
pub(crate) struct PyNodeHandle {
    node: Arc<dyn Node>,
}

#[pymethods]
impl PyNodeHandle {
    fn name(&self) -> String {
        self.node.name()
    }
    /// `((next_node_or_None, input_nr), ...)`.
    fn next_functions<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let items = self
            .node
            .next_edges()
            .iter()
            .map(|e| {
                let f = match &e.function {
                    Some(f) => wrap_node(py, f.clone())?,
                    None => py.None(),
                };
                Ok(
                    PyTuple::new(py, [f, e.input_nr.into_pyobject(py)?.into_any().unbind()])?
                        .into_any(),
                )
            })
            .collect::<PyResult<Vec<_>>>()?;
        PyTuple::new(py, items)
    }
    /// Identity of the node (stable while any handle to it is alive).
    fn _id(&self) -> usize {
        Arc::as_ptr(&self.node).cast::<()>().addr()
    }
    fn _sequence_nr(&self) -> u64 {
        self.node.sequence_nr()
    }
    /// The leaf tensor of an `AccumulateGrad` node (PyTorch's `.variable`).
    fn _variable(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        match self
            .node
            .as_any()
            .downcast_ref::<opdispatch_autograd::node::AccumulateGrad>()
        {
            Some(acc) => wrap_tensor(py, acc.variable().clone()),
            None => Ok(py.None()),
        }
    }
}

fn wrap_node(py: Python<'_>, node: Arc<dyn Node>) -> PyResult<Py<PyAny>> {
    static WRAP: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let wrap = WRAP.get_or_try_init(py, || -> PyResult<_> {
        Ok(py
            .import("opdispatch.autograd.graph")?
            .getattr("_wrap_node")?
            .unbind())
    })?;
    let handle = Py::new(py, PyNodeHandle { node })?;
    Ok(wrap.bind(py).call1((handle,))?.unbind())
}

// ---- autograd.Function ----

/// The node of an `autograd.Function` call: its backward is the Python function `backward`,
/// called with the output gradients and returning one gradient per tensor input.
struct PyFunctionNode {
    name: String,
    core: NodeCore,
    backward: Py<PyAny>,
    saved: SavedVariables,
    materialize: bool,
}

impl Node for PyFunctionNode {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn core(&self) -> &NodeCore {
        &self.core
    }
    fn apply(
        &self,
        grads: Vec<Option<Tensor>>,
    ) -> opdispatch_dispatch::Result<Vec<Option<Tensor>>> {
        Python::attach(|py| -> PyResult<Vec<Option<Tensor>>> {
            let mut args = Vec::with_capacity(grads.len());
            for (g, m) in grads.into_iter().zip(&self.core.inputs) {
                let g = match g {
                    Some(g) => Some(g),
                    None if self.materialize => Some(
                        Tensor::zeros(&m.sizes, m.dtype, m.device)
                            .map_err(|e| crate::errors::tensor_to_py(&e))?,
                    ),
                    None => None,
                };
                args.push(opt_wrap(py, g)?);
            }
            let out = self.backward.bind(py).call1(PyTuple::new(py, args)?)?;
            let list = out.cast::<PyList>().map_err(|_| {
                crate::errors::runtime_error(
                    "internal: Function backward wrapper must return a list",
                )
            })?;
            let mut v = Vec::with_capacity(self.core.next.len());
            for item in list.iter() {
                v.push(if item.is_none() {
                    None
                } else {
                    Some(unwrap_tensor(&item)?)
                });
            }
            v.resize(self.core.next.len(), None);
            Ok(v)
        })
        .map_err(py_to_dispatch)
    }
    fn release_variables(&self) {
        self.saved.release_all();
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// What a Function's `ctx` keeps of its node: a weak reference (the node owns the ctx through
/// its backward closure, so a strong one would be a cycle).
#[pyclass(name = "_FunctionNodeRef", module = "opdispatch._C", frozen)]
pub(crate) struct PyFunctionNodeRef {
    node: Weak<dyn Node>,
}

#[pymethods]
impl PyFunctionNodeRef {
    fn saved_tensors<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let node = self.node.upgrade().ok_or_else(|| {
            crate::errors::runtime_error(opdispatch_autograd::saved::FREED_MESSAGE)
        })?;
        let f = node
            .as_any()
            .downcast_ref::<PyFunctionNode>()
            .ok_or_else(|| crate::errors::runtime_error("not a Function node"))?;
        let ts = f
            .saved
            .unpack_all()
            .map_err(to_py)?
            .into_iter()
            .map(|(_, t)| wrap_tensor(py, t))
            .collect::<PyResult<Vec<_>>>()?;
        PyTuple::new(py, ts)
    }
    fn node(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        match self.node.upgrade() {
            Some(n) => wrap_node(py, n),
            None => Ok(py.None()),
        }
    }
}

/// Makes `outputs` outputs of a new Function node over `inputs` (after the forward ran).
/// `saved` may hold `None`s (kept as saved Nones by the caller); `non_differentiable` and
/// `dirty` are tensors from `outputs` / `inputs`.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (name, backward, inputs, outputs, saved, non_differentiable, dirty, materialize_grads))]
fn _function_attach(
    name: String,
    backward: Py<PyAny>,
    inputs: &Bound<'_, PyAny>,
    outputs: &Bound<'_, PyAny>,
    saved: &Bound<'_, PyAny>,
    non_differentiable: &Bound<'_, PyAny>,
    dirty: &Bound<'_, PyAny>,
    materialize_grads: bool,
) -> PyResult<PyFunctionNodeRef> {
    let inputs = tensors_of(inputs)?;
    let outputs = tensors_of(outputs)?;
    let non_diff: Vec<usize> = tensors_of(non_differentiable)?
        .iter()
        .map(Tensor::impl_id)
        .collect();
    let dirty = tensors_of(dirty)?;
    if grad_mode::is_grad_enabled() {
        for d in &dirty {
            opdispatch_autograd::kernels::check_not_leaf(d).py()?;
        }
    }
    let next: Vec<Edge> = inputs.iter().map(meta::gradient_edge).collect();
    let node = Arc::new(PyFunctionNode {
        name,
        core: NodeCore::new(next, outputs.iter().map(TensorMeta::of).collect()),
        backward,
        saved: SavedVariables::default(),
        materialize: materialize_grads,
    });
    let dyn_node: Arc<dyn Node> = node.clone();
    let saved_list = opt_tensors_of(saved, 0)?;
    for (i, t) in saved_list.into_iter().flatten().enumerate() {
        let out_nr = outputs.iter().position(|o| o.impl_id() == t.impl_id());
        node.saved.push(
            i,
            match out_nr {
                Some(nr) => SavedVariable::output(&t, &dyn_node, nr as u32),
                None => SavedVariable::input(&t),
            },
        );
    }
    for (nr, o) in outputs.iter().enumerate() {
        if meta::is_differentiable(o) && !non_diff.contains(&o.impl_id()) {
            meta::set_history(o, dyn_node.clone(), nr as u32);
        }
    }
    Ok(PyFunctionNodeRef {
        node: Arc::downgrade(&dyn_node),
    })
}

// ---- engine entry points and grad mode ----

#[pyfunction]
#[pyo3(signature = (tensors, grad_tensors, retain_graph, create_graph, inputs))]
fn _run_backward(
    tensors: &Bound<'_, PyAny>,
    grad_tensors: &Bound<'_, PyAny>,
    retain_graph: Option<bool>,
    create_graph: bool,
    inputs: &Bound<'_, PyAny>,
) -> PyResult<()> {
    let ts = tensors_of(tensors)?;
    let gs = opt_tensors_of(grad_tensors, ts.len())?;
    let inputs = if inputs.is_none() {
        None
    } else {
        Some(tensors_of(inputs)?)
    };
    crate::errors::catch_kernel_panic(|| {
        engine::backward(&ts, gs, retain_graph, create_graph, inputs.as_deref()).py()
    })
}

#[pyfunction]
#[pyo3(signature = (outputs, inputs, grad_outputs, retain_graph, create_graph, allow_unused))]
fn _autograd_grad<'py>(
    py: Python<'py>,
    outputs: &Bound<'py, PyAny>,
    inputs: &Bound<'py, PyAny>,
    grad_outputs: &Bound<'py, PyAny>,
    retain_graph: Option<bool>,
    create_graph: bool,
    allow_unused: bool,
) -> PyResult<Bound<'py, PyTuple>> {
    let outs = tensors_of(outputs)?;
    let ins = tensors_of(inputs)?;
    let gs = opt_tensors_of(grad_outputs, outs.len())?;
    let r = crate::errors::catch_kernel_panic(|| {
        engine::grad(&outs, &ins, gs, retain_graph, create_graph, allow_unused).py()
    })?;
    let items = r
        .into_iter()
        .map(|g| opt_wrap(py, g))
        .collect::<PyResult<Vec<_>>>()?;
    PyTuple::new(py, items)
}

#[pyfunction]
fn is_grad_enabled() -> bool {
    grad_mode::is_grad_enabled()
}

#[pyfunction]
fn _set_grad_enabled(on: bool) {
    grad_mode::set_grad_enabled(on);
}

#[pyfunction]
fn is_inference_mode_enabled() -> bool {
    grad_mode::is_inference_mode_enabled()
}

#[pyfunction]
fn _set_inference_mode(on: bool) {
    grad_mode::set_inference_mode(on);
}

/// `t.detach_()`: `t` becomes a leaf that does not require grad.
#[pyfunction]
fn _detach_(t: &Bound<'_, PyAny>) -> PyResult<()> {
    let t = unwrap_tensor(t)?;
    meta::detach_inplace(&t);
    Ok(())
}

/// The Autograd kernel of a custom op (`_library/autograd.py` marks the Python function): when
/// grad mode is on and a tensor argument requires grad it runs the Python kernel (which builds
/// the `autograd.Function` node); otherwise it redispatches below Autograd natively, so a call
/// that needs no graph costs no Python frame here.
pub(crate) struct GradGatedKernel {
    python: crate::holder::PythonKernelHolder,
}

impl GradGatedKernel {
    pub(crate) fn new(python: crate::holder::PythonKernelHolder) -> Self {
        Self { python }
    }
}

impl opdispatch_dispatch::BoxedKernel for GradGatedKernel {
    fn call(
        &self,
        op: &opdispatch_dispatch::OperatorHandle,
        ks: opdispatch_dispatch::DispatchKeySet,
        stack: &mut opdispatch_dispatch::Stack,
    ) -> opdispatch_dispatch::Result<()> {
        if grad_mode::is_grad_enabled() {
            let n = op.num_arguments();
            let start = stack.len().saturating_sub(n);
            let needs = stack[start..].iter().any(|v| match v {
                opdispatch_dispatch::IValue::Tensor(r) => {
                    r.downcast::<Tensor>().is_some_and(|t| t.requires_grad())
                }
                opdispatch_dispatch::IValue::TensorList(l) => l
                    .iter()
                    .any(|r| r.downcast::<Tensor>().is_some_and(|t| t.requires_grad())),
                _ => false,
            });
            if needs {
                return self.python.call(op, ks, stack);
            }
        }
        let _below = ExcludeDispatchKeyGuard::new(AUTOGRAD_DISPATCH_KEYSET);
        op.redispatch_boxed(ks & opdispatch_keys::AFTER_AUTOGRAD_KEYSET, stack)
    }
    fn kind(&self) -> &'static str {
        "python"
    }
}

/// `torch.manual_seed(seed)` for the CPU generator.
#[pyfunction]
fn _manual_seed(seed: i128) -> PyResult<()> {
    // PyTorch takes the seed modulo 2**64 (negative seeds wrap).
    let s = seed.rem_euclid(1i128 << 64) as u64;
    opdispatch_tensor::ops::random::manual_seed(s);
    Ok(())
}

#[pyfunction]
fn initial_seed() -> u64 {
    opdispatch_tensor::ops::random::initial_seed()
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_manual_seed, m)?)?;
    m.add_function(wrap_pyfunction!(initial_seed, m)?)?;
    opdispatch_autograd::register().map_err(|e: DispatchError| to_py(e))?;
    m.add_class::<PyNodeHandle>()?;
    m.add_class::<PyFunctionNodeRef>()?;
    m.add_function(wrap_pyfunction!(_function_attach, m)?)?;
    m.add_function(wrap_pyfunction!(_run_backward, m)?)?;
    m.add_function(wrap_pyfunction!(_autograd_grad, m)?)?;
    m.add_function(wrap_pyfunction!(is_grad_enabled, m)?)?;
    m.add_function(wrap_pyfunction!(_set_grad_enabled, m)?)?;
    m.add_function(wrap_pyfunction!(is_inference_mode_enabled, m)?)?;
    m.add_function(wrap_pyfunction!(_set_inference_mode, m)?)?;
    m.add_function(wrap_pyfunction!(_detach_, m)?)?;
    Ok(())
}
