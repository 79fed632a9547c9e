//! The dispatched aten calls the second batch of formulas (`formulas_more.rs`) makes, beyond
//! `calls.rs`'s; through the dispatcher, so `create_graph=True` records them too.

use opdispatch_dispatch::{IValue, Result};
use opdispatch_tensor::{Scalar, ScalarType, Tensor};

use crate::calls::{call, op, s, t};

macro_rules! unary {
    ($($f:ident => $name:literal),* $(,)?) => {$(
        pub(crate) fn $f(a: &Tensor) -> Result<Tensor> {
            call(op!($name, ""), vec![t(a)])
        }
    )*};
}
unary!(exp => "exp", sinh => "sinh", cosh => "cosh", rsqrt => "rsqrt", trunc => "trunc",
    isfinite => "isfinite");

macro_rules! binary {
    ($($f:ident => $name:literal, $ovl:literal),* $(,)?) => {$(
        pub(crate) fn $f(a: &Tensor, b: &Tensor) -> Result<Tensor> {
            call(op!($name, $ovl), vec![t(a), t(b)])
        }
    )*};
}
binary!(ge => "ge", "Tensor", le => "le", "Tensor", logical_and => "logical_and", "",
    floor_divide => "floor_divide", "", mm => "mm", "");

macro_rules! with_scalar {
    ($($f:ident => $name:literal, $ovl:literal),* $(,)?) => {$(
        pub(crate) fn $f(a: &Tensor, v: Scalar) -> Result<Tensor> {
            call(op!($name, $ovl), vec![t(a), s(v)])
        }
    )*};
}
with_scalar!(ge_s => "ge", "Scalar", le_s => "le", "Scalar", eq_s => "eq", "Scalar");

pub(crate) fn add_scalar(a: &Tensor, v: Scalar) -> Result<Tensor> {
    call(op!("add", "Scalar"), vec![t(a), s(v), IValue::Int(1)])
}

pub(crate) fn flip(a: &Tensor, dims: Vec<i64>) -> Result<Tensor> {
    call(op!("flip", ""), vec![t(a), IValue::IntList(dims)])
}
pub(crate) fn roll(a: &Tensor, shifts: Vec<i64>, dims: Vec<i64>) -> Result<Tensor> {
    call(
        op!("roll", ""),
        vec![t(a), IValue::IntList(shifts), IValue::IntList(dims)],
    )
}
pub(crate) fn triangle(a: &Tensor, diagonal: i64, lower: bool) -> Result<Tensor> {
    let op = if lower {
        op!("tril", "")
    } else {
        op!("triu", "")
    };
    call(op, vec![t(a), IValue::Int(diagonal)])
}
pub(crate) fn diag(a: &Tensor, diagonal: i64) -> Result<Tensor> {
    call(op!("diag", ""), vec![t(a), IValue::Int(diagonal)])
}
pub(crate) fn cumsum(a: &Tensor, dim: i64) -> Result<Tensor> {
    call(
        op!("cumsum", ""),
        vec![t(a), IValue::Int(dim), IValue::None],
    )
}
pub(crate) fn mean_dims(a: &Tensor, dims: Option<Vec<i64>>, keepdim: bool) -> Result<Tensor> {
    call(
        op!("mean", "dim"),
        vec![
            t(a),
            dims.map_or(IValue::None, IValue::IntList),
            IValue::Bool(keepdim),
            IValue::None,
        ],
    )
}
pub(crate) fn sum_dims_keep(a: &Tensor, dims: Option<Vec<i64>>) -> Result<Tensor> {
    call(
        op!("sum", "dim_IntList"),
        vec![
            t(a),
            dims.map_or(IValue::None, IValue::IntList),
            IValue::Bool(true),
            IValue::None,
        ],
    )
}
pub(crate) fn prod_dim(a: &Tensor, dim: i64, keepdim: bool) -> Result<Tensor> {
    call(
        op!("prod", "dim_int"),
        vec![t(a), IValue::Int(dim), IValue::Bool(keepdim), IValue::None],
    )
}
pub(crate) fn prod_all(a: &Tensor) -> Result<Tensor> {
    call(op!("prod", ""), vec![t(a), IValue::None])
}
pub(crate) fn softmax_backward_data(
    g: &Tensor,
    out: &Tensor,
    dim: i64,
    dtype: ScalarType,
    log: bool,
) -> Result<Tensor> {
    let op = if log {
        op!("_log_softmax_backward_data", "")
    } else {
        op!("_softmax_backward_data", "")
    };
    call(
        op,
        vec![
            t(g),
            t(out),
            IValue::Int(dim),
            IValue::Int(dtype.c10_code()),
        ],
    )
}
pub(crate) fn scatter_value(a: &Tensor, dim: i64, index: &Tensor, v: Scalar) -> Result<Tensor> {
    call(
        op!("scatter", "value"),
        vec![t(a), IValue::Int(dim), t(index), s(v)],
    )
}
pub(crate) fn scatter_src(a: &Tensor, dim: i64, index: &Tensor, src: &Tensor) -> Result<Tensor> {
    call(
        op!("scatter", "src"),
        vec![t(a), IValue::Int(dim), t(index), t(src)],
    )
}
pub(crate) fn gather(a: &Tensor, dim: i64, index: &Tensor) -> Result<Tensor> {
    call(
        op!("gather", ""),
        vec![t(a), IValue::Int(dim), t(index), IValue::Bool(false)],
    )
}
pub(crate) fn scatter_add(a: &Tensor, dim: i64, index: &Tensor, src: &Tensor) -> Result<Tensor> {
    call(
        op!("scatter_add", ""),
        vec![t(a), IValue::Int(dim), t(index), t(src)],
    )
}
pub(crate) fn index_add(a: &Tensor, dim: i64, index: &Tensor, src: &Tensor) -> Result<Tensor> {
    call(
        op!("index_add", ""),
        vec![t(a), IValue::Int(dim), t(index), t(src), IValue::Int(1)],
    )
}
pub(crate) fn index_select(a: &Tensor, dim: i64, index: &Tensor) -> Result<Tensor> {
    call(
        op!("index_select", ""),
        vec![t(a), IValue::Int(dim), t(index)],
    )
}
