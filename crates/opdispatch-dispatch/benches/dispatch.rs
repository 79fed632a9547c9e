//! Dispatcher benchmarks (criterion). Every group reports a baseline measured in the same run:
//! a typed call through the dispatcher against a direct call of the same kernel, boxed calls,
//! and bulk registration / deregistration.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use opdispatch_dispatch::{CppFunction, DispatchKey, Dispatcher, IValue, Library, LibraryKind};

fn add_one(x: i64) -> i64 {
    x.wrapping_add(1)
}

fn typed_vs_direct(c: &mut Criterion) {
    let mut lib = Library::new(LibraryKind::Def, "bench_typed", None, file!(), line!()).unwrap();
    lib.def("add_one(int x) -> int", None).unwrap();
    lib.impl_(
        "add_one",
        CppFunction::typed(add_one as fn(i64) -> i64)
            .dispatch(DispatchKey::CompositeExplicitAutograd),
    )
    .unwrap();
    let op = Dispatcher::singleton()
        .find_schema_or_throw("bench_typed::add_one", "")
        .unwrap();
    let typed = op.typed::<fn(i64) -> i64>().unwrap();
    let mut g = c.benchmark_group("call");
    g.bench_function("direct_fn", |b| {
        b.iter(|| black_box(add_one as fn(i64) -> i64)(black_box(1)))
    });
    g.bench_function("typed_dispatch", |b| {
        b.iter(|| typed.call(black_box(1)).unwrap())
    });
    g.bench_function("boxed_dispatch", |b| {
        b.iter(|| {
            let mut stack = vec![IValue::Int(black_box(1))];
            op.call_boxed(&mut stack).unwrap();
            stack
        })
    });
    g.finish();
}

fn registration(c: &mut Criterion) {
    let mut g = c.benchmark_group("registration");
    g.sample_size(10);
    // One library at a time (a second one would re-define the same operators): time only the
    // registering, or only the dropping.
    g.bench_function("register_10k_ops_3_kernels", |b| {
        b.iter_custom(|iters| {
            let mut total = std::time::Duration::ZERO;
            for _ in 0..iters {
                let t = std::time::Instant::now();
                let lib = register_many("bench_reg");
                total += t.elapsed();
                drop(lib);
            }
            total
        })
    });
    g.bench_function("deregister_10k_ops_3_kernels", |b| {
        b.iter_custom(|iters| {
            let mut total = std::time::Duration::ZERO;
            for _ in 0..iters {
                let lib = register_many("bench_dereg");
                let t = std::time::Instant::now();
                drop(lib);
                total += t.elapsed();
            }
            total
        })
    });
    g.finish();
}

fn register_many(ns: &str) -> Library {
    let mut lib = Library::new(LibraryKind::Fragment, ns, None, file!(), line!()).unwrap();
    for i in 0..10_000 {
        let name = format!("op{i}");
        lib.def(&format!("{name}(int x) -> int"), None).unwrap();
        for k in [
            DispatchKey::CPU,
            DispatchKey::CUDA,
            DispatchKey::CompositeExplicitAutograd,
        ] {
            lib.impl_(
                &name,
                CppFunction::typed(add_one as fn(i64) -> i64).dispatch(k),
            )
            .unwrap();
        }
    }
    lib
}

criterion_group!(benches, typed_vs_direct, registration);
criterion_main!(benches);
