//! Overload lookup for `ops.<ns>.<op>`: the overload names of an operator, from the
//! dispatcher's base-name index (no scan over every registered operator).

use opdispatch_dispatch::Dispatcher;
use pyo3::prelude::*;

/// The overloads of `qualified_name` (`"ns::op"`) that have a schema (a def): their overload
/// names, `""` for the default overload, sorted (so `""` comes first). Empty when there is no
/// such operator.
#[pyfunction]
pub fn _dispatch_get_overload_names(qualified_name: &str) -> Vec<String> {
    Dispatcher::singleton().overload_names(qualified_name)
}
