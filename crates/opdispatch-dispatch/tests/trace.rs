//! `trace`: the per-thread record of dispatcher entries, for typed and boxed calls,
//! redispatches and the calls kernels make.

mod common;

use common::{tensor, unique_ns};
use opdispatch_dispatch::{
    trace, CppFunction, DispatchKey, Dispatcher, IValue, Library, LibraryKind, OperatorHandle,
    Stack, TensorRef,
};

const CPU_KEYS: &[DispatchKey] = &[
    DispatchKey::CPU,
    DispatchKey::AutogradCPU,
    DispatchKey::ADInplaceOrView,
];

fn cpu_k(_t: TensorRef, n: i64) -> i64 {
    n + 1
}

#[test]
fn records_typed_boxed_nested_and_failed_entries() {
    let ns = unique_ns("trace");
    let mut lib = Library::new(LibraryKind::Def, &ns, None, "here.rs", 1).unwrap();
    lib.def("inner(Tensor x, int n) -> int", None).unwrap();
    lib.def("outer(Tensor x, int n) -> int", None).unwrap();
    lib.def("missing(Tensor x, int n) -> int", None).unwrap();
    lib.impl_(
        "inner",
        CppFunction::typed(cpu_k as fn(TensorRef, i64) -> i64).dispatch(DispatchKey::CPU),
    )
    .unwrap();
    let inner_name = format!("{ns}::inner");
    // A boxed kernel that calls `inner`, then redispatches `inner` with its own key set.
    lib.impl_(
        "outer",
        CppFunction::boxed(move |_op: &OperatorHandle, ks, stack: &mut Stack| {
            let d = Dispatcher::singleton();
            let inner = d.find_schema_or_throw(&inner_name, "").unwrap();
            let h = inner.typed::<fn(TensorRef, i64) -> i64>().unwrap();
            let n = match stack.pop() {
                Some(IValue::Int(n)) => n,
                other => panic!("{other:?}"),
            };
            let IValue::Tensor(t) = stack.pop().unwrap() else {
                panic!()
            };
            let a = h.call(t.clone(), n)?;
            let b = h.redispatch(ks, t, a)?;
            stack.push(IValue::Int(b));
            Ok(())
        })
        .dispatch(DispatchKey::CPU),
    )
    .unwrap();
    let d = Dispatcher::singleton();
    let outer = d.find_schema_or_throw(&format!("{ns}::outer"), "").unwrap();
    let missing = d
        .find_schema_or_throw(&format!("{ns}::missing"), "")
        .unwrap();
    let t = tensor(CPU_KEYS);

    let g = trace::start();
    let mut s: Stack = vec![IValue::Tensor(t.clone()), IValue::Int(1)].into();
    outer.call_boxed(&mut s).unwrap();
    let mut s: Stack = vec![IValue::Tensor(t), IValue::Int(1)].into();
    assert!(missing.call_boxed(&mut s).is_err());
    let tr = g.finish();

    let rows: Vec<_> = tr
        .events
        .iter()
        .map(|e| {
            (
                e.op.operator_name().to_string(),
                e.key,
                e.kernel_kind,
                e.redispatch,
                e.depth,
                e.failed,
            )
        })
        .collect();
    let (o, i, m) = (
        format!("{ns}::outer"),
        format!("{ns}::inner"),
        format!("{ns}::missing"),
    );
    assert_eq!(
        rows,
        vec![
            (o, DispatchKey::CPU, "boxed", false, 0, false),
            (i.clone(), DispatchKey::CPU, "native", false, 1, false),
            (i, DispatchKey::CPU, "native", true, 1, false),
            (m, DispatchKey::CPU, "missing", false, 0, true),
        ]
    );
    assert!(tr.events[0].duration_ns >= tr.events[1].duration_ns);
    assert!(tr.duration_ns >= tr.events[0].duration_ns);

    // Outside the trace nothing is recorded.
    let g = trace::start();
    let tr = g.finish();
    assert!(tr.events.is_empty());
}
