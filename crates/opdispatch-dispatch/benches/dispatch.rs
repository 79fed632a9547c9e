//! Dispatcher benchmarks (criterion). Every group reports a baseline measured in the same run:
//! a typed call through the dispatcher against a direct call of the same kernel, boxed calls,
//! and bulk registration / deregistration.

use std::hint::black_box;

mod workloads;

use criterion::{criterion_group, criterion_main, Criterion};
use opdispatch_dispatch::IValue;
use workloads::{add_one, register_many, typed_add_one};

fn typed_vs_direct(c: &mut Criterion) {
    let (_lib, op, typed) = typed_add_one("bench_typed");
    let mut g = c.benchmark_group("call");
    g.bench_function("direct_fn", |b| {
        b.iter(|| black_box(add_one as fn(i64) -> i64)(black_box(1)));
    });
    g.bench_function("typed_dispatch", |b| {
        b.iter(|| typed.call(black_box(1)).unwrap());
    });
    g.bench_function("boxed_dispatch", |b| {
        b.iter(|| {
            let mut stack = opdispatch_dispatch::stack![IValue::Int(black_box(1))];
            op.call_boxed(&mut stack).unwrap();
            stack
        });
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
        });
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
        });
    });
    g.finish();
}

criterion_group!(benches, typed_vs_direct, registration);
criterion_main!(benches);
