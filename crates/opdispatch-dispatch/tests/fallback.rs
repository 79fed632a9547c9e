//! Global backend fallbacks. Registering one changes the computed table of every operator, so
//! these tests live in their own test binary (no other test here looks at tables).

use opdispatch_dispatch::{DispatchKey, Dispatcher, Library, LibraryKind};

/// test_dispatch.py `test_multiple_fallback`.
#[test]
fn test_multiple_fallback() {
    use opdispatch_dispatch::CppFunction;
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
