//! PyTorch-style `repr` of tensors.

use opdispatch_tensor::{Device, Scalar, ScalarType};
use pyo3::prelude::*;

use super::PyTensor;
use crate::errors::IntoPyResult;

/// `repr(t)`: a `__torch_dispatch__` subclass's own format, the meta form, or values.
pub(super) fn tensor_repr(slf: &Bound<'_, PyTensor>) -> PyResult<String> {
    if slf.borrow().t.is_python_dispatch() {
        return crate::wrapper::python_tensor_repr(slf);
    }
    let this = slf.borrow();
    let dev = this.t.device();
    if this.t.is_meta() {
        return Ok(format!(
            "tensor(..., device='meta', size={}{})",
            tuple_str(this.t.sizes()),
            dtype_suffix(this.t.dtype(), true)
        ));
    }
    let body = format_data(&this.t.to_scalars().py()?, this.t.sizes(), this.t.dtype());
    let mut s = format!("tensor({body}");
    if dev != Device::Cpu {
        s.push_str(&format!(", device='{dev}'"));
    }
    s.push_str(&dtype_suffix(this.t.dtype(), false));
    s.push(')');
    subclass_prefix(slf, s)
}

/// torch prints a subclass instance under its class name (`MyT([1., 2.])`), the continuation
/// lines indented to match.
fn subclass_prefix(slf: &Bound<'_, PyTensor>, s: String) -> PyResult<String> {
    if slf.is_exact_instance_of::<PyTensor>() {
        return Ok(s);
    }
    let name = slf.get_type().name()?.to_string();
    let rest = s.strip_prefix("tensor(").unwrap_or(&s);
    let indent = " ".repeat(name.len() + 1);
    let lines: Vec<String> = rest
        .split('\n')
        .enumerate()
        .map(|(i, l)| match (i, l.strip_prefix("       ")) {
            (0, _) | (_, None) => l.to_string(),
            (_, Some(body)) => format!("{indent}{body}"),
        })
        .collect();
    Ok(format!("{name}({}", lines.join("\n")))
}

pub(super) fn tuple_str(s: &[usize]) -> String {
    format!(
        "({})",
        s.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
            + if s.len() == 1 { "," } else { "" }
    )
}

pub(super) fn dtype_suffix(st: ScalarType, always: bool) -> String {
    let default = matches!(
        st,
        ScalarType::Float32 | ScalarType::Int64 | ScalarType::Bool
    );
    if always && st != ScalarType::Float32 || !default {
        format!(", dtype=opdispatch.{}", st.name())
    } else {
        String::new()
    }
}

pub(super) fn format_scalar(v: Scalar, st: ScalarType, all_int_valued: bool) -> String {
    match v {
        Scalar::Bool(b) => if b { "True" } else { "False" }.to_owned(),
        Scalar::Int(i) => i.to_string(),
        Scalar::Float(f) if st.is_floating_point() => {
            if all_int_valued && f.is_finite() {
                format!("{f:.0}.")
            } else {
                format!("{f:.4}")
            }
        }
        Scalar::Float(f) => f.to_string(),
        Scalar::Complex(r, i) => format!("{r:.4}{i:+.4}j"),
    }
}

/// PyTorch-style body: elements formatted alike, right-aligned to a common width, rows
/// broken and indented under the opening bracket.
pub(super) fn format_data(values: &[Scalar], shape: &[usize], st: ScalarType) -> String {
    let all_int = values
        .iter()
        .all(|v| matches!(v, Scalar::Float(f) if f.fract() == 0.0));
    let cells: Vec<String> = values
        .iter()
        .map(|v| format_scalar(*v, st, all_int))
        .collect();
    let width = cells.iter().map(String::len).max().unwrap_or(0);
    fn rec(cells: &[String], shape: &[usize], width: usize, depth: usize) -> String {
        match shape.split_first() {
            None => format!("{:>width$}", cells[0]),
            Some((&n, rest)) => {
                let step: usize = rest.iter().product();
                let sep = if rest.is_empty() {
                    ", ".to_owned()
                } else {
                    format!(",{}{}", "\n".repeat(rest.len()), " ".repeat(depth + 8))
                };
                let parts: Vec<String> = (0..n)
                    .map(|i| rec(&cells[i * step..(i + 1) * step], rest, width, depth + 1))
                    .collect();
                format!("[{}]", parts.join(&sep))
            }
        }
    }
    if shape.is_empty() {
        return cells.first().cloned().unwrap_or_default();
    }
    rec(&cells, shape, width, 0)
}
