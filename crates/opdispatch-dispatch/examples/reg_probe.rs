//! Times bulk registration and deregistration (10,000 ops x 3 kernels), `ROUNDS` times (3).
//! Run: `cargo run --release --example reg_probe -p opdispatch-dispatch`
use std::time::Instant;

#[path = "../benches/workloads/mod.rs"]
mod workloads;

fn main() {
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    for round in 0..rounds {
        let t0 = Instant::now();
        let lib = workloads::register_many("reg_probe");
        let t1 = Instant::now();
        drop(lib);
        let t2 = Instant::now();
        println!(
            "round {round}: register {:?}, deregister {:?}",
            t1 - t0,
            t2 - t1
        );
    }
}
