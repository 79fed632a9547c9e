// pyo3's interpreter cfgs (`Py_GIL_DISABLED`, `Py_3_x`) for this crate's own `#[cfg]`s.
fn main() {
    pyo3_build_config::use_pyo3_cfgs();
}
