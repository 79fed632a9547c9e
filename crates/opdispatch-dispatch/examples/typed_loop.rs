//! Calls one typed operator in a loop (for profilers: `perf record`, callgrind).
//! Run: `ROUNDS=10000000 cargo run --release --example typed_loop -p opdispatch-dispatch`

#[path = "../benches/workloads/mod.rs"]
mod workloads;

fn main() {
    let n: u64 = std::env::var("ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000_000);
    let (_lib, _op, typed) = workloads::typed_add_one("loop_typed");
    let mut acc = 0i64;
    let t = std::time::Instant::now();
    for _ in 0..n {
        acc = typed.call(std::hint::black_box(acc)).unwrap();
    }
    let dt = t.elapsed();
    println!("{acc} {:.2} ns/call", dt.as_nanos() as f64 / n as f64);
}
