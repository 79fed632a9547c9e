//! Calls one typed operator in a loop (for profilers: `perf record`, callgrind).
use opdispatch_dispatch::{CppFunction, DispatchKey, Dispatcher, Library, LibraryKind};

fn add_one(x: i64) -> i64 {
    x.wrapping_add(1)
}

fn main() {
    let n: u64 = std::env::var("ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000_000);
    let mut lib = Library::new(LibraryKind::Def, "loop_typed", None, file!(), line!()).unwrap();
    lib.def("add_one(int x) -> int", None).unwrap();
    lib.impl_(
        "add_one",
        CppFunction::typed(add_one as fn(i64) -> i64)
            .dispatch(DispatchKey::CompositeExplicitAutograd),
    )
    .unwrap();
    let op = Dispatcher::singleton()
        .find_schema_or_throw("loop_typed::add_one", "")
        .unwrap();
    let typed = op.typed::<fn(i64) -> i64>().unwrap();
    let mut acc = 0i64;
    let t = std::time::Instant::now();
    for _ in 0..n {
        acc = typed.call(std::hint::black_box(acc)).unwrap();
    }
    let dt = t.elapsed();
    println!("{acc} {:.2} ns/call", dt.as_nanos() as f64 / n as f64);
}
