//! Global backend fallbacks. Registering one changes the computed table of every operator, so
//! these tests live in their own test binary (no other test here looks at tables).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{t, unique_ns};
use opdispatch_dispatch::{
    CppFunction, DispatchKey, DispatchKeySet, Dispatcher, IValue, Library, LibraryKind,
    OperatorHandle, OperatorName, Stack,
};

/// test_dispatch.py `test_multiple_fallback`.
#[test]
fn test_multiple_fallback() {
    let d = Dispatcher::singleton();
    let mut global_m = Library::new(
        LibraryKind::Impl,
        "_",
        Some(DispatchKey::XLA),
        "/dev/null",
        0,
    )
    .unwrap();
    global_m.fallback(CppFunction::fallthrough()).unwrap();
    assert!(d.has_backend_fallback_for_dispatch_key(DispatchKey::XLA));
    let e = global_m.fallback(CppFunction::fallthrough()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "Tried to register multiple backend fallbacks for the same dispatch key XLA; previous registration registered at /dev/null:0, new registration registered at /dev/null:0"
    );
    // The failed registration changed nothing; dropping the block removes the fallback.
    assert!(d.has_backend_fallback_for_dispatch_key(DispatchKey::XLA));
    drop(global_m);
    assert!(!d.has_backend_fallback_for_dispatch_key(DispatchKey::XLA));
}

/// `Dispatcher::register_fallback` takes runtime keys only (`Library::fallback` expands alias
/// keys into them): a fallback stored for any other key would share a runtime key's table slot
/// without that slot being updated when it comes or goes.
#[test]
fn dispatcher_fallbacks_need_runtime_keys() {
    use opdispatch_dispatch::KernelFunction;
    let d = Dispatcher::singleton();
    for k in [
        DispatchKey::CompositeImplicitAutograd,
        DispatchKey::Autograd,
        DispatchKey::Dense,
        DispatchKey::Undefined,
    ] {
        let e = d
            .register_fallback(k, KernelFunction::fallthrough(), "test".into())
            .unwrap_err();
        assert!(
            e.to_string().contains("is not a runtime dispatch key"),
            "{k:?}: {e}"
        );
        assert!(!d.has_backend_fallback_for_dispatch_key(k), "{k:?}");
    }
    assert!(!d.has_backend_fallback_for_dispatch_key(DispatchKey::CPU));
}

/// Counts drops of the value it is captured in.
struct DropCount(Arc<AtomicUsize>);
impl Drop for DropCount {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A global fallback for `k` returning 42, and a counter of the drops of its kernel.
fn counted_fallback(k: DispatchKey) -> (Library, Arc<AtomicUsize>) {
    let drops = Arc::new(AtomicUsize::new(0));
    let guard = DropCount(drops.clone());
    let mut lib = Library::new(LibraryKind::Impl, "_", Some(k), file!(), line!()).unwrap();
    lib.fallback(CppFunction::boxed(
        move |_op: &OperatorHandle, _ks: DispatchKeySet, st: &mut Stack| {
            let _ = &guard;
            st.clear();
            st.push(IValue::Int(42));
            Ok(())
        },
    ))
    .unwrap();
    (lib, drops)
}

/// An operator that leaves the registry while a handle to it is kept, however its last
/// registration goes, must not keep pointing at a backend fallback removed afterwards (the
/// fallback is freed), and later calls rebuild its table from the fallbacks of that moment.
#[test]
fn detached_operators_drop_their_tables() {
    let d = Dispatcher::singleton();
    let call = |op: &OperatorHandle, k: DispatchKey| {
        let mut s: Stack = vec![t(&[k])].into_iter().collect();
        op.call_boxed(&mut s).map(|()| s.pop())
    };
    // (how the last registration goes, fallback key)
    for (case, k) in [
        ("register_name", DispatchKey::FPGA),
        ("handles dropped one by one", DispatchKey::MAIA),
        ("second library", DispatchKey::IPU),
    ] {
        let ns = unique_ns("fallback_detached");
        let (fallback, drops) = counted_fallback(k);
        let op = match case {
            "register_name" => {
                let name = OperatorName::new(format!("{ns}::op"), "");
                let reg = d.register_name(&name);
                let op = d.find_op(&name).unwrap();
                assert!(op.with_schema(|s| s.is_none()));
                drop(reg);
                op
            }
            "handles dropped one by one" => {
                let mut a =
                    Library::new(LibraryKind::Fragment, &ns, None, file!(), line!()).unwrap();
                a.def("op(Tensor x) -> int", None).unwrap();
                let op = d.find_schema_or_throw(&format!("{ns}::op"), "").unwrap();
                assert!(matches!(call(&op, k), Ok(Some(IValue::Int(42)))), "{case}");
                drop(a.take_registrations());
                op
            }
            _ => {
                let mut a =
                    Library::new(LibraryKind::Fragment, &ns, None, file!(), line!()).unwrap();
                a.def("op(Tensor x) -> int", None).unwrap();
                let mut b =
                    Library::new(LibraryKind::Fragment, &ns, None, file!(), line!()).unwrap();
                b.impl_("op", CppFunction::fallthrough().dispatch(DispatchKey::CPU))
                    .unwrap();
                let op = d.find_schema_or_throw(&format!("{ns}::op"), "").unwrap();
                drop(a);
                drop(b);
                op
            }
        };
        assert!(d.find_op(op.operator_name()).is_none(), "{case}");
        drop(fallback);
        assert_eq!(drops.load(Ordering::SeqCst), 1, "{case}: fallback freed");
        op.check_invariants().unwrap();
        // The detached operator's first call builds its table from the fallbacks of then, and
        // keeps it: no registration updates it any more.
        let (again, again_drops) = counted_fallback(k);
        assert!(
            d.has_computed_kernel_for_dispatch_key(&op, k).unwrap(),
            "{case}"
        );
        drop(again);
        assert_eq!(
            again_drops.load(Ordering::SeqCst),
            0,
            "{case}: the table owns it"
        );
        assert!(
            d.has_computed_kernel_for_dispatch_key(&op, k).unwrap(),
            "{case}"
        );
        if op.has_schema() {
            assert!(matches!(call(&op, k), Ok(Some(IValue::Int(42)))), "{case}");
        }
        drop(op);
        assert_eq!(
            again_drops.load(Ordering::SeqCst),
            1,
            "{case}: released with the handle"
        );
    }
}
