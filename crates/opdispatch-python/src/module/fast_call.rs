//! Typed calls from Python for the plain `aten` shapes: `od.tanh(x)`, `a.add(b)`,
//! `ops.aten.mul.Tensor(a, b)` and `ops.aten.add(a, b)` called with tensors only cost one typed
//! dispatch, as `a + b` does, instead of binding a stack against the schema and boxing the
//! result. Anything else (a number, a keyword, another shape) takes the boxed path, which
//! gives the same result: the typed call runs the same kernels with the same arguments.

use opdispatch_dispatch::{OperatorHandle, TypedOperatorHandle};
use opdispatch_schema::{Argument, DefaultValue, Type};
use opdispatch_tensor::{Scalar, Tensor};
use pyo3::prelude::*;

use crate::errors::{catch_kernel_panic, to_py};
use crate::tensor::{unwrap_tensor, wrap_tensor, PyTensor};

type Res = opdispatch_dispatch::Result<Tensor>;

/// A typed handle for a call made with tensors only.
pub(crate) enum FastCall {
    None,
    Unary(TypedOperatorHandle<fn(Tensor) -> Res>),
    Binary(TypedOperatorHandle<fn(Tensor, Tensor) -> Res>),
    /// `add.Tensor`/`sub.Tensor`: `alpha` keeps its default, 1.
    BinaryAlpha(TypedOperatorHandle<fn(Tensor, Tensor, Scalar) -> Res>),
}

impl FastCall {
    /// The typed entry of `op`, if it is an `aten` operator of a plain shape:
    /// `(Tensor) -> Tensor`, `(Tensor, Tensor) -> Tensor` or
    /// `(Tensor, Tensor, *, Scalar alpha=1) -> Tensor`, without alias annotations. Only
    /// `aten`'s schemas live for the whole process, so only they may be cached by callers.
    pub(crate) fn for_op(op: &OperatorHandle) -> Self {
        if !op.operator_name().name.starts_with("aten::") {
            return Self::None;
        }
        let plain = |a: &Argument| a.ty == Type::Tensor && a.alias_info.is_none() && !a.kwarg_only;
        let arity = op.with_schema(|s| {
            let s = s?;
            let [r] = &s.returns[..] else { return None };
            if r.ty != Type::Tensor || r.alias_info.is_some() {
                return None;
            }
            match &s.arguments[..] {
                [a] if plain(a) => Some(1),
                [a, b] if plain(a) && plain(b) => Some(2),
                [a, b, alpha]
                    if plain(a)
                        && plain(b)
                        && alpha.name == "alpha"
                        && alpha.ty == Type::Scalar
                        && alpha.kwarg_only
                        && matches!(alpha.default, Some(DefaultValue::Int(1))) =>
                {
                    Some(3)
                }
                _ => None,
            }
        });
        match arity {
            Some(1) => op.typed().map_or(Self::None, Self::Unary),
            Some(2) => op.typed().map_or(Self::None, Self::Binary),
            Some(3) => op.typed().map_or(Self::None, Self::BinaryAlpha),
            _ => Self::None,
        }
    }

    /// Calls the operator typed when `pos` (no keywords) are exactly its tensors; `None`: the
    /// boxed path must take the call.
    pub(crate) fn try_call(
        &self,
        py: Python<'_>,
        pos: &[Bound<'_, PyAny>],
    ) -> Option<PyResult<Py<PyAny>>> {
        let tensor = |a: &Bound<'_, PyAny>| a.cast::<PyTensor>().is_ok().then(|| unwrap_tensor(a));
        let r = match (self, pos) {
            (Self::Unary(f), [a]) => {
                let a = tensor(a)?;
                a.and_then(|a| catch_kernel_panic(|| f.call(a).map_err(to_py)))
            }
            (Self::Binary(f), [a, b]) => {
                let (a, b) = (tensor(a)?, tensor(b)?);
                a.and_then(|a| b.and_then(|b| catch_kernel_panic(|| f.call(a, b).map_err(to_py))))
            }
            (Self::BinaryAlpha(f), [a, b]) => {
                let (a, b) = (tensor(a)?, tensor(b)?);
                a.and_then(|a| {
                    b.and_then(|b| {
                        catch_kernel_panic(|| f.call(a, b, Scalar::Int(1)).map_err(to_py))
                    })
                })
            }
            _ => return None,
        };
        Some(r.and_then(|t| wrap_tensor(py, t)))
    }
}
