//! `Dispatcher::explain` and `explain_table` against what calls actually run.

mod common;

use common::{tensor, unique_ns};
use opdispatch_dispatch::{
    CppFunction, DispatchKey, Dispatcher, ExcludeDispatchKeyGuard, IValue, Library, LibraryKind,
    Provenance, Stack,
};

const CPU_KEYS: &[DispatchKey] = &[
    DispatchKey::CPU,
    DispatchKey::AutogradCPU,
    DispatchKey::ADInplaceOrView,
];

fn tagged(tag: i64) -> CppFunction {
    CppFunction::boxed(
        move |_op: &opdispatch_dispatch::OperatorHandle, _ks, stack: &mut Stack| {
            stack.clear();
            stack.push(IValue::Int(tag));
            Ok(())
        },
    )
}

fn run(op: &opdispatch_dispatch::OperatorHandle, stack: &[IValue]) -> Result<i64, String> {
    let mut s: Stack = stack.iter().cloned().collect();
    op.call_boxed(&mut s).map_err(|e| e.to_string())?;
    match s.pop() {
        Some(IValue::Int(i)) => Ok(i),
        other => Err(format!("unexpected {other:?}")),
    }
}

#[test]
fn direct_kernel_after_autograd_fallback() {
    let ns = unique_ns("explain");
    let mut lib = Library::new(LibraryKind::Def, &ns, None, "here.rs", 1).unwrap();
    lib.def("f(Tensor x, int n) -> int", None).unwrap();
    lib.impl_("f", tagged(1).dispatch(DispatchKey::CPU))
        .unwrap();
    let d = Dispatcher::singleton();
    let op = d.find_schema_or_throw(&format!("{ns}::f"), "").unwrap();
    let stack = vec![IValue::Tensor(tensor(CPU_KEYS)), IValue::Int(3)];
    let e = d.explain(&op, &stack).unwrap();
    assert_eq!(e.arguments.len(), 2);
    assert!(e.arguments[0].dispatch_relevant && !e.arguments[1].dispatch_relevant);
    // The autograd fallback only passes the call on; the CPU kernel runs.
    assert_eq!(e.walk.passed.len(), 1, "{e}");
    assert_eq!(e.walk.passed[0].key, DispatchKey::AutogradCPU);
    assert_eq!(e.walk.passed[0].kind, "redispatch");
    assert_eq!(e.walk.passed[0].rule, Provenance::BackendFallback);
    assert_eq!(e.walk.chosen.key, DispatchKey::CPU);
    assert_eq!(e.walk.chosen.rule, Provenance::Kernel);
    assert_eq!(e.walk.chosen.kind, "boxed");
    assert!(
        e.walk.chosen.debug.contains("here.rs"),
        "{}",
        e.walk.chosen.debug
    );
    assert_eq!(run(&op, &stack), Ok(1));
    let text = e.to_string();
    assert!(
        text.contains("runs CPU: boxed kernel, a kernel registered directly at CPU"),
        "{text}"
    );
    // With Autograd excluded on this thread, the walk starts at CPU.
    let _g = ExcludeDispatchKeyGuard::new(opdispatch_dispatch::DispatchKeySet::from_key(
        DispatchKey::AutogradCPU,
    ));
    let e = d.explain(&op, &stack).unwrap();
    assert!(e.walk.passed.is_empty());
    assert!(e.walk.tls_excluded.has(DispatchKey::AutogradCPU));
}

#[test]
fn alias_rules_and_missing_slots() {
    let ns = unique_ns("explain");
    let mut lib = Library::new(LibraryKind::Def, &ns, None, "here.rs", 1).unwrap();
    lib.def("g(Tensor x) -> int", None).unwrap();
    lib.def("h(int n) -> int", None).unwrap();
    lib.impl_(
        "g",
        tagged(2).dispatch(DispatchKey::CompositeExplicitAutograd),
    )
    .unwrap();
    let d = Dispatcher::singleton();
    let g = d.find_schema_or_throw(&format!("{ns}::g"), "").unwrap();
    let stack = vec![IValue::Tensor(tensor(CPU_KEYS))];
    let e = d.explain(&g, &stack).unwrap();
    assert_eq!(e.walk.chosen.key, DispatchKey::CPU);
    assert_eq!(e.walk.chosen.rule, Provenance::DefaultBackendKernel);
    assert_eq!(
        e.walk.chosen.alias,
        Some(DispatchKey::CompositeExplicitAutograd)
    );
    assert_eq!(run(&g, &stack), Ok(2));
    // A slot nothing fills: the explanation says what to register.
    let h = d.find_schema_or_throw(&format!("{ns}::h"), "").unwrap();
    let e = d.explain(&h, &[IValue::Int(1)]).unwrap();
    assert_eq!(e.walk.chosen.key, DispatchKey::Undefined);
    assert_eq!(e.walk.chosen.kind, "missing");
    assert_eq!(e.walk.chosen.rule, Provenance::Missing);
    assert!(run(&h, &[IValue::Int(1)]).is_err());
    assert!(
        e.to_string()
            .contains("to fix: the call has no tensor arguments"),
        "{e}"
    );
    // The table rows list exactly the valid slots, with their rules.
    let rows = d.explain_table(&g);
    let cpu = rows.iter().find(|r| r.key == DispatchKey::CPU).unwrap();
    assert_eq!(cpu.rule, Provenance::DefaultBackendKernel);
    assert!(rows.iter().all(|r| r.kind != "missing"));
    assert!(rows
        .iter()
        .any(|r| r.key == DispatchKey::AutogradCPU && r.rule == Provenance::BackendFallback));
}

#[test]
fn composite_implicit_fills_autograd_and_below_lists_the_rest() {
    let ns = unique_ns("explain");
    let mut lib = Library::new(LibraryKind::Def, &ns, None, "here.rs", 1).unwrap();
    lib.def("m(Tensor x) -> int", None).unwrap();
    lib.impl_(
        "m",
        tagged(3).dispatch(DispatchKey::CompositeImplicitAutograd),
    )
    .unwrap();
    let d = Dispatcher::singleton();
    let m = d.find_schema_or_throw(&format!("{ns}::m"), "").unwrap();
    let stack = vec![IValue::Tensor(tensor(CPU_KEYS))];
    let e = d.explain(&m, &stack).unwrap();
    assert_eq!(e.walk.chosen.key, DispatchKey::AutogradCPU, "{e}");
    assert_eq!(e.walk.chosen.rule, Provenance::MathKernel);
    assert_eq!(
        e.walk.chosen.alias,
        Some(DispatchKey::CompositeImplicitAutograd)
    );
    assert!(
        e.walk.below.iter().any(|b| b.key == DispatchKey::CPU),
        "{e}"
    );
    assert_eq!(run(&m, &stack), Ok(3));
}
