//! Registration: `_dispatch_library` and `_DispatchModule` (PyTorch's `torch.library.Library`
//! backend: def, impl, fallback), whose drop deregisters what it registered.

use opdispatch_dispatch::{
    parse_alias_analysis_kind, testing::t_t_kernel, CppFunction, Library, LibraryKind,
};
use opdispatch_schema::{parse_schema_or_name, SchemaOrName};
use parking_lot::Mutex;
use pyo3::prelude::*;

use crate::errors::IntoPyResult;
use crate::keys::parse_opt_key;
use crate::module::python_kernel;

/// The registrations of one `_dispatch_library` call; dropping it deregisters them.
#[pyclass(name = "_DispatchModule", module = "opdispatch._C")]
pub(crate) struct DispatchModule {
    lib: Mutex<Library>,
}

impl DispatchModule {
    /// Runs a registration on the library, then (with every lock released) issues the
    /// warnings it produced, so warning filters and hooks may run any Python code and
    /// `-W error` turns them into exceptions.
    pub(crate) fn with_lib<R>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut Library) -> opdispatch_dispatch::Result<R>,
    ) -> PyResult<R> {
        let r = f(&mut self.lib.lock());
        crate::errors::flush_warnings(py)?;
        r.py()
    }
}

#[pymethods]
impl DispatchModule {
    #[pyo3(signature = (schema, alias=""))]
    fn def_<'py>(slf: Bound<'py, Self>, schema: &str, alias: &str) -> PyResult<Bound<'py, Self>> {
        let kind = parse_alias_analysis_kind(alias).py()?;
        slf.borrow()
            .with_lib(slf.py(), |l| l.def(schema, Some(kind)))?;
        Ok(slf)
    }
    fn def_legacy<'py>(slf: Bound<'py, Self>, schema: &str) -> PyResult<Bound<'py, Self>> {
        slf.borrow().with_lib(slf.py(), |l| l.def(schema, None))?;
        Ok(slf)
    }
    #[pyo3(signature = (name, dispatch="", debug="default_def_name_t_t"))]
    fn def_name_t_t<'py>(
        slf: Bound<'py, Self>,
        name: &str,
        dispatch: &str,
        debug: &str,
    ) -> PyResult<Bound<'py, Self>> {
        let mut f = t_t_kernel().debug(debug);
        if let Some(k) = parse_opt_key(dispatch)? {
            f = f.dispatch(k);
        }
        slf.borrow()
            .with_lib(slf.py(), |l| l.def_with(name, None, f))?;
        Ok(slf)
    }
    #[pyo3(signature = (schema, dispatch="", alias="", debug="default_def_schema_t_t"))]
    fn def_schema_t_t<'py>(
        slf: Bound<'py, Self>,
        schema: &str,
        dispatch: &str,
        alias: &str,
        debug: &str,
    ) -> PyResult<Bound<'py, Self>> {
        let kind = parse_alias_analysis_kind(alias).py()?;
        let mut f = t_t_kernel().debug(debug);
        if let Some(k) = parse_opt_key(dispatch)? {
            f = f.dispatch(k);
        }
        slf.borrow()
            .lib
            .lock()
            .def_with(schema, Some(kind), f)
            .py()?;
        Ok(slf)
    }
    #[pyo3(signature = (name, dispatch="", debug="impl_t_t"))]
    fn impl_t_t<'py>(
        slf: Bound<'py, Self>,
        name: &str,
        dispatch: &str,
        debug: &str,
    ) -> PyResult<Bound<'py, Self>> {
        let mut f = t_t_kernel().debug(debug);
        if let Some(k) = parse_opt_key(dispatch)? {
            f = f.dispatch(k);
        }
        slf.borrow().with_lib(slf.py(), |l| l.impl_(name, f))?;
        Ok(slf)
    }
    #[pyo3(signature = (dispatch=""))]
    fn fallback_fallthrough<'py>(
        slf: Bound<'py, Self>,
        dispatch: &str,
    ) -> PyResult<Bound<'py, Self>> {
        let mut f = CppFunction::fallthrough();
        if let Some(k) = parse_opt_key(dispatch)? {
            f = f.dispatch(k);
        }
        slf.borrow().with_lib(slf.py(), |l| l.fallback(f))?;
        Ok(slf)
    }
    /// Defines an operator; returns its name as written (no overload, no added namespace).
    #[pyo3(signature = (schema, alias_analysis="", tags=None))]
    fn define(
        &self,
        py: Python<'_>,
        schema: &str,
        alias_analysis: &str,
        tags: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<String> {
        let tags = crate::tags::extract_tags(tags)?;
        let kind = parse_alias_analysis_kind(alias_analysis).py()?;
        match parse_schema_or_name(schema)
            .map_err(|e| crate::errors::runtime_error(e.to_string()))?
        {
            // Parsed once: defining reuses the schema read for the name as written.
            SchemaOrName::Schema(mut s) => {
                let written = s.name.name.clone();
                s.alias_kind = Some(kind);
                self.with_lib(py, |l| l.def_schema_with_tags(s, &tags))?;
                Ok(written)
            }
            SchemaOrName::Name(n) => {
                // Only a name: def_with_tags raises its "only the operator name" error.
                self.with_lib(py, |l| l.def_with_tags(schema, Some(kind), &tags))?;
                Ok(n.name.clone())
            }
        }
    }
    /// Registers a Python kernel (or `library.fallthrough_kernel`) for `dispatch`.
    #[pyo3(signature = (name, dispatch, func, with_keyset=false))]
    fn r#impl(
        &self,
        py: Python<'_>,
        name: &str,
        dispatch: &Bound<'_, PyAny>,
        func: &Bound<'_, PyAny>,
        with_keyset: bool,
    ) -> PyResult<()> {
        let f = python_kernel(py, dispatch, func, with_keyset, false)?;
        self.with_lib(py, |l| l.impl_(name, f))
    }
    /// Registers a mutating custom op's ADInplaceOrView kernel (native): it bumps the version
    /// counters of the arguments at `mutated` (schema positions) once per call, then runs the
    /// op below ADInplaceOrView.
    fn impl_custom_op_inplace(
        &self,
        py: Python<'_>,
        name: &str,
        mutated: Vec<usize>,
    ) -> PyResult<()> {
        let f = CppFunction::boxed(crate::custom_op_kernels::CustomOpInplaceKernel { mutated })
            .dispatch(opdispatch_dispatch::DispatchKey::ADInplaceOrView);
        self.with_lib(py, |l| l.impl_(name, f))
    }
    /// Registers a global Python fallback; the callable receives the op overload first.
    #[pyo3(signature = (dispatch, func, with_keyset=false))]
    fn fallback(
        &self,
        py: Python<'_>,
        dispatch: &Bound<'_, PyAny>,
        func: &Bound<'_, PyAny>,
        with_keyset: bool,
    ) -> PyResult<()> {
        let f = python_kernel(py, dispatch, func, with_keyset, true)?;
        self.with_lib(py, |l| l.fallback(f))
    }
    /// Deregisters everything this module registered.
    fn reset(&self) {
        // Take the registrations out first so the Python objects they own are released (and
        // any Python code that runs then) after this module's lock is released.
        let handles = self.lib.lock().take_registrations();
        opdispatch_dispatch::library::drop_in_reverse(handles);
    }
}

/// `_dispatch_library(kind, ns, dispatch, file="/dev/null", linenum=0)`.
#[pyfunction]
#[pyo3(signature = (kind, name, dispatch, file="/dev/null", linenum=0))]
pub(crate) fn _dispatch_library(
    kind: &str,
    name: &str,
    dispatch: &str,
    file: &str,
    linenum: u32,
) -> PyResult<DispatchModule> {
    let kind = LibraryKind::parse(kind).py()?;
    let key = parse_opt_key(dispatch)?;
    let lib = Library::new(kind, name, key, file, linenum).py()?;
    Ok(DispatchModule {
        lib: Mutex::new(lib),
    })
}
