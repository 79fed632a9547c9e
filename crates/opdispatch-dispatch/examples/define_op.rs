//! Defining an operator and Rust kernels without Python, in the spirit of TORCH_LIBRARY.
//!
//! Run: `cargo run --example define_op -p opdispatch-dispatch`

use opdispatch_dispatch::{
    library, CppFunction, DispatchKey, DispatchKeySet, Dispatcher, IncludeDispatchKeyGuard,
};

fn scale_cpu(x: i64, k: i64) -> i64 {
    x * k
}

fn scale_generic(x: i64, k: i64) -> i64 {
    -(x * k)
}

fn main() -> opdispatch_dispatch::Result<()> {
    // TORCH_LIBRARY(example, m) { m.def(...); }
    let _defs = library!(DEF example, |m| {
        m.def("scale(int x, int k=2) -> int", None)?;
        Ok(())
    })?;
    // TORCH_LIBRARY_IMPL(example, CPU, m) { m.impl("scale", scale_cpu); }
    let _cpu = library!(IMPL example, CPU, |m| {
        m.impl_("scale", CppFunction::typed(scale_cpu as fn(i64, i64) -> i64))?;
        Ok(())
    })?;
    // A kernel for every backend (and for calls with no tensor arguments).
    let _cea = library!(IMPL example, CompositeExplicitAutograd, |m| {
        m.impl_("scale", CppFunction::typed(scale_generic as fn(i64, i64) -> i64))?;
        Ok(())
    })?;

    let op = Dispatcher::singleton().find_schema_or_throw("example::scale", "")?;
    let scale = op.typed::<fn(i64, i64) -> i64>()?;
    // No tensor arguments: the Undefined slot is filled by the CompositeExplicitAutograd kernel.
    println!("scale(3, 4) = {}", scale.call(3, 4)?);
    // Forcing the CPU key through the thread-local include set selects the CPU kernel.
    {
        let _g = IncludeDispatchKeyGuard::new(DispatchKeySet::from_key(DispatchKey::CPU));
        println!("scale(3, 4) with CPU included = {}", scale.call(3, 4)?);
    }
    print!("{}", op.dump_state());
    let table = op.dump_computed_table();
    for line in table
        .lines()
        .filter(|l| l.starts_with("Undefined") || l.starts_with("CPU:"))
    {
        println!("{line}");
    }
    // A wrong signature is refused when the typed handle is made.
    if let Err(e) = op.typed::<fn(f64) -> f64>() {
        println!(
            "typed::<fn(f64) -> f64>() refused: {}",
            e.to_string().lines().nth(1).unwrap_or("")
        );
    }
    Ok(())
}
