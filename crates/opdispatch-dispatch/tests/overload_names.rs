//! `Dispatcher::overload_names`: the overloads of `ns::op` that have a schema, found through
//! the registry's base-name index, kept right by registration and deregistration.

mod common;

use common::unique_ns;
use opdispatch_dispatch::{
    CppFunction, DispatchKey as K, DispatchKeySet, Dispatcher, IValue, Library, LibraryKind,
    OperatorHandle, OperatorName, Stack,
};

fn lib(kind: LibraryKind, ns: &str) -> Library {
    Library::new(kind, ns, None, file!(), line!()).unwrap()
}

fn noop() -> CppFunction {
    CppFunction::boxed(|_: &OperatorHandle, _: DispatchKeySet, s: &mut Stack| {
        s.push(IValue::None);
        Ok(())
    })
    .dispatch(K::CPU)
}

fn names(q: &str) -> Vec<String> {
    Dispatcher::singleton().overload_names(q)
}

#[test]
fn lists_defined_overloads_sorted_default_first() {
    let ns = unique_ns("ovl_names");
    let mut l = lib(LibraryKind::Def, &ns);
    l.def("f.zeta(Tensor x) -> Tensor", None).unwrap();
    l.def("f(Tensor x) -> Tensor", None).unwrap();
    l.def("f.alpha(Tensor x, int y) -> Tensor", None).unwrap();
    l.def("fg(Tensor x) -> Tensor", None).unwrap();
    l.def("g.f(Tensor x) -> Tensor", None).unwrap();
    assert_eq!(names(&format!("{ns}::f")), ["", "alpha", "zeta"]);
    assert_eq!(names(&format!("{ns}::fg")), [""]);
    assert_eq!(names(&format!("{ns}::g")), ["f"]);
    assert!(names(&format!("{ns}::h")).is_empty());
    assert!(names(&format!("{ns}_other::f")).is_empty());
    assert!(names("f").is_empty());
    drop(l);
    assert!(names(&format!("{ns}::f")).is_empty());
    assert!(names(&format!("{ns}::g")).is_empty());
}

#[test]
fn impl_only_and_name_only_slots_are_not_overloads() {
    let ns = unique_ns("ovl_impls");
    let mut imp = lib(LibraryKind::Impl, &ns);
    imp.impl_("f.nodef", noop()).unwrap();
    let reserved =
        Dispatcher::singleton().register_name(&OperatorName::new(format!("{ns}::f"), "named"));
    assert!(names(&format!("{ns}::f")).is_empty());
    // A def arriving later makes the slot an overload; removing the def takes it out again
    // while the impl keeps the slot alive.
    let mut def = lib(LibraryKind::Fragment, &ns);
    def.def("f.nodef(Tensor x) -> Tensor", None).unwrap();
    assert_eq!(names(&format!("{ns}::f")), ["nodef"]);
    drop(def);
    assert!(names(&format!("{ns}::f")).is_empty());
    drop(reserved);
    drop(imp);
    assert!(names(&format!("{ns}::f")).is_empty());
}

#[test]
fn survives_many_operators_and_bulk_teardown() {
    let ns = unique_ns("ovl_many");
    let mut l = lib(LibraryKind::Def, &ns);
    for i in 0..600 {
        l.def(
            &format!("op{}.o{}(Tensor x) -> Tensor", i % 200, i / 200),
            None,
        )
        .unwrap();
        l.impl_(&format!("op{}.o{}", i % 200, i / 200), noop())
            .unwrap();
    }
    for i in 0..200 {
        assert_eq!(names(&format!("{ns}::op{i}")), ["o0", "o1", "o2"]);
    }
    // Another fragment's overload outlives the bulk teardown of the first library.
    let mut other = lib(LibraryKind::Fragment, &ns);
    other.def("op7.extra(Tensor x) -> Tensor", None).unwrap();
    drop(l);
    assert_eq!(names(&format!("{ns}::op7")), ["extra"]);
    assert!(names(&format!("{ns}::op8")).is_empty());
    drop(other);
    assert!(names(&format!("{ns}::op7")).is_empty());
}
