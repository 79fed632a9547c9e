//! `opdispatch._C`: the native half of the opdispatch Python package. All PyO3 code lives in
//! this crate; the dispatcher crates never link Python.

// The extension module must be named `_C` (PyTorch's name).
#![allow(non_snake_case)]

mod arith;
mod autograd;
mod convert;
mod cuda;
mod custom_op_call;
mod custom_op_kernels;
mod custom_ops;
mod errors;
mod explain;
mod factories;
mod guards;
mod holder;
mod keys;
mod methods;
mod module;
mod overloads;
mod python_dispatch;
mod small_alloc;
mod tags;
mod tensor;
mod testing;
mod threads;
mod torch_function;
mod trace;
mod vectorcall;
mod wrapper;

use pyo3::prelude::*;

// pyo3 0.28+ declares modules free-threading-safe unless told otherwise. The suite has not yet
// passed on a free-threaded interpreter (docs/HARDENING.md: none could be built here), so a
// free-threaded CPython re-enables the GIL on import; `PYTHON_GIL=0` overrides it for testing.
#[pymodule(gil_used = true)]
#[allow(non_snake_case)]
fn _C(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    tensor::install_hooks();
    // PyTorch's operators, registered through the dispatcher like any other library.
    opdispatch_aten::try_register().map_err(errors::to_py)?;
    // Tensors whose class defines __torch_dispatch__ carry the Python key; route them to it.
    // The registration lives as long as the process (as PyTorch's own fallback does).
    static PYTHON_FALLBACK: std::sync::Once = std::sync::Once::new();
    let mut fallback_result = Ok(());
    PYTHON_FALLBACK.call_once(|| {
        fallback_result = opdispatch_dispatch::Dispatcher::singleton()
            .register_fallback(
                opdispatch_dispatch::DispatchKey::Python,
                opdispatch_dispatch::KernelFunction::from_boxed(
                    python_dispatch::python_key_fallback,
                ),
                format!("registered at {}:{}", file!(), line!()),
            )
            .map(opdispatch_dispatch::RegistrationHandle::leak);
    });
    fallback_result.map_err(errors::to_py)?;
    opdispatch_dispatch::set_warning_handler(errors::queue_warning);
    m.add("DispatchKey", keys::make_key_enum(py, "opdispatch._C")?)?;
    m.add("Tag", tags::make_tag_enum(py, "opdispatch")?)?;
    m.add("_RuntimeError", py.get_type::<errors::exc::RuntimeError>())?;
    m.add(
        "_NotImplementedError",
        py.get_type::<errors::exc::NotImplementedError>(),
    )?;
    m.add("_TypeError", py.get_type::<errors::exc::TypeError>())?;
    m.add("_ValueError", py.get_type::<errors::exc::ValueError>())?;
    m.add("_IndexError", py.get_type::<errors::exc::IndexError>())?;
    m.add_class::<keys::PyDispatchKeySet>()?;
    m.add_class::<guards::IncludeGuard>()?;
    m.add_class::<guards::ExcludeGuard>()?;
    m.add_class::<guards::ForceGuard>()?;
    m.add_class::<guards::PreserveGuard>()?;
    m.add_class::<guards::HermeticGuard>()?;
    m.add_class::<guards::AutoDispatchBelowAutograd>()?;
    m.add_function(wrap_pyfunction!(guards::_is_hermetic_pyobject_enabled, m)?)?;
    m.add_class::<module::DispatchModule>()?;
    m.add_class::<module::PyOperatorHandle>()?;
    module::install_vectorcall(m)?;
    m.add_class::<overloads::PyOverloadPacket>()?;
    overloads::install_packet_vectorcall(m)?;
    m.add_class::<tensor::PyTensor>()?;
    m.add_class::<tensor::PyStorage>()?;
    m.add_class::<tensor::PyDType>()?;
    m.add_class::<tensor::PyDevice>()?;
    for st in opdispatch_tensor::ScalarType::ALL {
        m.add(st.name(), tensor::PyDType { st })?;
    }
    macro_rules! fns {
        ($($f:path),* $(,)?) => { $( m.add_function(wrap_pyfunction!($f, m)?)?; )* };
    }
    fns!(
        tags::_validate_tagged_schema,
        module::_dispatch_library,
        module::_dispatch_dump,
        module::_dispatch_dump_table,
        module::_dispatch_check_invariants,
        module::_dispatch_check_all_invariants,
        module::_dispatch_has_kernel,
        module::_dispatch_has_kernel_for_dispatch_key,
        module::_dispatch_kernel_for_dispatch_key_is_fallthrough,
        module::_dispatch_has_kernel_for_any_dispatch_key,
        module::_dispatch_has_computed_kernel_for_dispatch_key,
        module::_dispatch_has_backend_fallback,
        module::_dispatch_get_all_op_names,
        overloads::_dispatch_get_overload_names,
        module::_dispatch_find_dangling_impls,
        module::_dispatch_get_registrations_for_dispatch_key,
        module::_dispatch_keys,
        module::_dispatch_tls_local_include_set,
        module::_dispatch_tls_local_exclude_set,
        module::_dispatch_tls_set_dispatch_key_included,
        module::_dispatch_tls_set_dispatch_key_excluded,
        module::_dispatch_tls_is_dispatch_key_included,
        module::_dispatch_tls_is_dispatch_key_excluded,
        module::_dispatch_key_name,
        module::_dispatch_key_parse,
        module::_parse_dispatch_key,
        module::_dispatch_is_alias_key,
        module::_dispatch_keyset_full,
        module::_dispatch_keyset_full_after,
        module::_dispatch_keyset_to_string,
        module::_dispatch_num_backends,
        module::_dispatch_is_included_in_alias,
        module::_dispatch_get_backend_keyset_from_autograd,
        module::_dispatch_find_schema_or_throw,
        module::_dispatch_call_boxed,
        module::_enable_vectorcall,
        overloads::_enable_packet_vectorcall,
        factories::ones,
        factories::zeros,
        factories::empty,
        factories::full,
        factories::arange,
        tensor::tensor,
        tensor::_tensor_init,
        tensor::_storage_init,
        tensor::_swap_tensors,
        tensor::_disarm_pyobject_hooks,
    );
    explain::register(m)?;
    trace::register(m)?;
    methods::register(m)?;
    autograd::register(m)?;
    python_dispatch::register(m)?;
    torch_function::register(m)?;
    wrapper::register(m)?;
    custom_ops::register(m)?;
    custom_op_call::register(m)?;
    testing::register(m)?;
    threads::register(m)?;
    cuda::register(m)?;
    Ok(())
}
