//! The workloads the criterion benchmarks time, shared with the profiling examples
//! (`examples/typed_loop.rs`, `examples/reg_probe.rs`) so both measure the same thing.
//! Each target uses part of it.
// TODO(issue 16): workspace lint not yet fixed here (crate being restructured); drop this allow once it is.
#![allow(unreachable_pub)]
#![allow(dead_code)]

use opdispatch_dispatch::{
    CppFunction, DispatchKey, Dispatcher, Library, LibraryKind, OperatorHandle, TypedOperatorHandle,
};

pub type AddOne = fn(i64) -> i64;

pub fn add_one(x: i64) -> i64 {
    x.wrapping_add(1)
}

/// `{ns}::add_one(int x) -> int` with a typed CompositeExplicitAutograd kernel. Keep the
/// library alive for as long as the handles are used.
pub fn typed_add_one(ns: &str) -> (Library, OperatorHandle, TypedOperatorHandle<AddOne>) {
    let mut lib = Library::new(LibraryKind::Def, ns, None, file!(), line!()).unwrap();
    lib.def("add_one(int x) -> int", None).unwrap();
    lib.impl_(
        "add_one",
        CppFunction::typed(add_one as AddOne).dispatch(DispatchKey::CompositeExplicitAutograd),
    )
    .unwrap();
    let op = Dispatcher::singleton()
        .find_schema_or_throw(&format!("{ns}::add_one"), "")
        .unwrap();
    let typed = op.typed::<AddOne>().unwrap();
    (lib, op, typed)
}

/// 10,000 operators with 3 typed kernels each (CPU, CUDA, CompositeExplicitAutograd) in one
/// FRAGMENT library; dropping it deregisters them all.
pub fn register_many(ns: &str) -> Library {
    let mut lib = Library::new(LibraryKind::Fragment, ns, None, file!(), line!()).unwrap();
    for i in 0..10_000 {
        let name = format!("op{i}");
        lib.def(&format!("{name}(int x) -> int"), None).unwrap();
        for k in [
            DispatchKey::CPU,
            DispatchKey::CUDA,
            DispatchKey::CompositeExplicitAutograd,
        ] {
            lib.impl_(&name, CppFunction::typed(add_one as AddOne).dispatch(k))
                .unwrap();
        }
    }
    lib
}
