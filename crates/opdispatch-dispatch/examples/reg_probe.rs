//! Times bulk registration and deregistration (10,000 ops x 3 kernels) once.
//! Run: `cargo run --release --example reg_probe -p opdispatch-dispatch`
use std::time::Instant;

use opdispatch_dispatch::{CppFunction, DispatchKey, Library, LibraryKind};

fn add_one(x: i64) -> i64 {
    x + 1
}

fn main() {
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    for round in 0..rounds {
        let t0 = Instant::now();
        let mut lib =
            Library::new(LibraryKind::Fragment, "reg_probe", None, file!(), line!()).unwrap();
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
