//! Registration sequences: the input is read as a sequence of def / impl / fallback / drop
//! actions on a few operators of a fresh namespace. After every step each operator's stored
//! dispatch table must equal the computed one (`check_invariants`); at the end the state must
//! equal the one built by registering only the surviving registrations, in their order, into
//! an empty namespace (what a registry built in a canonical order would hold), and tearing
//! everything down must leave nothing behind. [`fuzz_threads`] runs several sequences at once
//! on separate namespaces.

use std::sync::atomic::{AtomicUsize, Ordering};

use opdispatch_dispatch::testing::t_t_kernel;
use opdispatch_dispatch::{
    CppFunction, DispatchKey as K, DispatchKeySet, Dispatcher, Library, LibraryKind,
    OperatorHandle, OperatorName, Stack,
};

/// (name, overload, schema) of the operators a sequence works on.
const OPS: &[(&str, &str, &str)] = &[
    ("op0", "", "op0(Tensor x) -> Tensor"),
    ("op0", "ov", "op0.ov(Tensor x) -> Tensor"),
    ("op1", "", "op1(Tensor x) -> Tensor"),
];

/// Kernel keys; `None` is the catch-all. A sequence draws from one of two pools: PyTorch
/// leaves some autograd entries stale on purpose when a CompositeImplicitAutograd kernel (or
/// the catch-all) meets a CompositeExplicitAutograd, SparseCPU, QuantizedCPU or
/// NestedTensorCPU kernel (see the dispatch crate's `stale_*` tests, kept for conformance), so
/// the two groups are never combined and `check_invariants` must hold after every step.
const KEYS_WITH_CIA: &[Option<K>] = &[
    None,
    Some(K::CPU),
    Some(K::CUDA),
    Some(K::Meta),
    Some(K::PrivateUse1),
    Some(K::AutogradCPU),
    Some(K::AutogradOther),
    Some(K::BackendSelect),
    Some(K::Python),
    Some(K::Autograd),
    Some(K::CompositeImplicitAutograd),
    Some(K::CompositeExplicitAutogradNonFunctional),
];
const KEYS_WITHOUT_CIA: &[Option<K>] = &[
    Some(K::CPU),
    Some(K::CUDA),
    Some(K::SparseCPU),
    Some(K::QuantizedCPU),
    Some(K::NestedTensorCPU),
    Some(K::AutogradCPU),
    Some(K::AutogradOther),
    Some(K::AutogradNestedTensor),
    Some(K::Python),
    Some(K::Autograd),
    Some(K::CompositeExplicitAutograd),
    Some(K::CompositeExplicitAutogradNonFunctional),
];

/// Keys global fallbacks are registered for (none has one in a bare dispatcher).
const FALLBACK_KEYS: &[K] = &[K::PrivateUse1, K::FPGA, K::XLA];

#[derive(Clone, Copy, Debug)]
enum Kind {
    Typed,
    Boxed,
    Fallthrough,
}

#[derive(Clone, Copy, Debug)]
enum Action {
    Def(usize),
    Impl(usize, Option<K>, Kind),
    Fallback(K, Kind),
}

fn boxed_ok(
    _: &OperatorHandle,
    _: DispatchKeySet,
    _: &mut Stack,
) -> opdispatch_dispatch::Result<()> {
    Ok(())
}

fn kernel(kind: Kind) -> CppFunction {
    match kind {
        Kind::Typed => t_t_kernel(),
        Kind::Boxed => CppFunction::boxed(boxed_ok),
        Kind::Fallthrough => CppFunction::fallthrough(),
    }
}

/// Registers `a` in a library of its own; `None` if the dispatcher refused it (a second def,
/// a second fallback for a key...), which is a clean error, not a finding.
fn apply(ns: &str, a: Action) -> Option<Library> {
    let (kind, lib_ns) = match a {
        Action::Fallback(..) => (LibraryKind::Impl, "_"),
        _ => (LibraryKind::Fragment, ns),
    };
    let mut lib = Library::new(kind, lib_ns, None, "/dev/null", 0).ok()?;
    let r = match a {
        Action::Def(i) => lib.def(OPS[i].2, None).map(drop),
        Action::Impl(i, key, kind) => {
            let name = if OPS[i].1.is_empty() {
                OPS[i].0.to_owned()
            } else {
                format!("{}.{}", OPS[i].0, OPS[i].1)
            };
            let mut f = kernel(kind).debug(format!("{a:?}"));
            if let Some(k) = key {
                f = f.dispatch(k);
            }
            lib.impl_(&name, f)
        }
        Action::Fallback(key, kind) => {
            lib.fallback(kernel(kind).dispatch(key).debug(format!("{a:?}")))
        }
    };
    r.ok().map(|()| lib)
}

fn op_names(ns: &str) -> impl Iterator<Item = OperatorName> + '_ {
    OPS.iter()
        .map(move |(n, o, _)| OperatorName::new(format!("{ns}::{n}"), *o))
}

fn check(ns: &str) {
    for name in op_names(ns) {
        if let Some(op) = Dispatcher::singleton().find_op(&name) {
            if let Err(e) = op.check_invariants() {
                panic!("{name:?}: stored table differs from the computed one: {e}");
            }
        }
    }
}

/// Every operator's state and computed table (namespace replaced), plus the fallback keys
/// that have a fallback.
fn snapshot(ns: &str, with_fallbacks: bool) -> Vec<String> {
    let d = Dispatcher::singleton();
    let mut out: Vec<String> = op_names(ns)
        .map(|name| match d.find_op(&name) {
            None => String::new(),
            Some(op) => {
                format!("{}\n{}", op.dump_state(), op.dump_computed_table()).replace(ns, "NS")
            }
        })
        .collect();
    if with_fallbacks {
        for &k in FALLBACK_KEYS {
            out.push(format!(
                "{k}: {}",
                d.has_backend_fallback_for_dispatch_key(k)
            ));
        }
    }
    out
}

fn assert_gone(ns: &str, with_fallbacks: bool) {
    for name in op_names(ns) {
        assert!(
            Dispatcher::singleton().find_op(&name).is_none(),
            "{name:?} left behind after teardown"
        );
    }
    if with_fallbacks {
        for &k in FALLBACK_KEYS {
            assert!(
                !Dispatcher::singleton().has_backend_fallback_for_dispatch_key(k),
                "fallback for {k} left behind"
            );
        }
    }
}

fn fresh_ns() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!("fuzz{}", N.fetch_add(1, Ordering::Relaxed))
}

/// Drops the live libraries in an order read from the input, checking after every drop.
fn teardown(ns: &str, libs: &mut [Option<(Action, Library)>], order: &mut crate::bytes::Bytes<'_>) {
    let mut live: Vec<usize> = (0..libs.len()).filter(|&i| libs[i].is_some()).collect();
    while !live.is_empty() {
        let i = live.swap_remove(order.pick(live.len()));
        libs[i] = None;
        check(ns);
    }
}

fn run(data: &[u8], with_fallbacks: bool) {
    let ns = fresh_ns();
    let mut input = crate::bytes::Bytes::new(data);
    let mut libs: Vec<Option<(Action, Library)>> = Vec::new();
    let keys = if input.pick(2) == 0 {
        KEYS_WITH_CIA
    } else {
        KEYS_WITHOUT_CIA
    };
    let mut steps = 0;
    while !input.is_empty() && steps < 64 {
        steps += 1;
        let kind = [Kind::Typed, Kind::Boxed, Kind::Fallthrough][input.pick(3)];
        let action = match input.pick(if with_fallbacks { 5 } else { 4 }) {
            0 => Action::Def(input.pick(OPS.len())),
            1 | 2 => Action::Impl(input.pick(OPS.len()), keys[input.pick(keys.len())], kind),
            3 => {
                // Drop one live registration.
                let live: Vec<usize> = (0..libs.len()).filter(|&i| libs[i].is_some()).collect();
                if !live.is_empty() {
                    libs[live[input.pick(live.len())]] = None;
                }
                check(&ns);
                continue;
            }
            _ => Action::Fallback(FALLBACK_KEYS[input.pick(FALLBACK_KEYS.len())], kind),
        };
        libs.push(apply(&ns, action).map(|l| (action, l)));
        check(&ns);
    }
    let survivors: Vec<Action> = libs.iter().flatten().map(|(a, _)| *a).collect();
    let built = snapshot(&ns, with_fallbacks);
    teardown(&ns, &mut libs, &mut input);
    assert_gone(&ns, with_fallbacks);

    // The same registrations in a canonical history: only the survivors, in order.
    let mut canonical: Vec<Option<(Action, Library)>> = survivors
        .iter()
        .map(|&a| {
            let lib = apply(&ns, a)
                .unwrap_or_else(|| panic!("replaying {a:?} was refused (history {survivors:?})"));
            check(&ns);
            Some((a, lib))
        })
        .collect();
    let replayed = snapshot(&ns, with_fallbacks);
    assert_eq!(
        built, replayed,
        "the registry depends on the history, not only on the survivors {survivors:?}"
    );
    teardown(&ns, &mut canonical, &mut input);
    assert_gone(&ns, with_fallbacks);
}

/// The single-threaded target body (global fallbacks included). Not to be run concurrently
/// with another instance of itself: fallbacks are process-wide.
pub fn fuzz(data: &[u8]) {
    run(data, true);
}

/// The multi-threaded target body: the input is split into three sequences run at once, each
/// on its own namespace (no fallbacks, which would make the tables depend on the other threads).
pub fn fuzz_threads(data: &[u8]) {
    let third = data.len().div_ceil(3).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = data
            .chunks(third)
            .map(|c| s.spawn(move || run(c, false)))
            .collect();
        for h in handles {
            if let Err(p) = h.join() {
                std::panic::resume_unwind(p);
            }
        }
    });
}
