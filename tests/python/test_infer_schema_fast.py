"""infer_schema reads plain functions' parameters from their code object (a define-speed
path, issue 12): it must agree with inspect.signature on every kind of function."""

# ruff: noqa: UP037

from __future__ import annotations

import functools
import inspect
from typing import Any

import pytest

import opdispatch as M
from opdispatch import library
from opdispatch._library import infer_schema as infer_mod


def f_defaults(x: M.Tensor, n: int, s: float = 1.5, *, b: bool = True, k: int) -> M.Tensor:
    raise NotImplementedError


def f_strings(x: "M.Tensor", y: "M.Tensor | None" = None) -> "tuple[M.Tensor, M.Tensor]":
    raise NotImplementedError


def f_missing(x, n: int) -> M.Tensor:  # type: ignore[no-untyped-def]  # noqa: ANN001
    raise NotImplementedError


def f_posonly(x: M.Tensor, /) -> M.Tensor:
    raise NotImplementedError


def f_varargs(*xs: M.Tensor) -> M.Tensor:
    raise NotImplementedError


@pytest.mark.parametrize("fn", [f_defaults, f_strings, f_missing])
def test_fast_parameters_match_inspect(fn: Any) -> None:
    fast = infer_mod._fast_parameters(fn)
    sig = inspect.signature(fn)
    assert fast == [(p.name, p.kind, p.annotation, p.default) for p in sig.parameters.values()]


@pytest.mark.parametrize("fn", [f_posonly, f_varargs, functools.partial(f_defaults, k=1), M.Tensor.clone])
def test_fast_parameters_decline(fn: Any) -> None:
    assert infer_mod._fast_parameters(fn) is None


def test_wrapped_function_goes_through_inspect() -> None:
    @functools.wraps(f_strings)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    assert infer_mod._fast_parameters(wrapper) is None
    assert library.infer_schema(wrapper, mutates_args=()) == library.infer_schema(f_strings, mutates_args=())


def test_schemas_and_errors() -> None:
    assert library.infer_schema(f_defaults, mutates_args=()) == (
        "(Tensor x, SymInt n, float s=1.5, *, bool b=True, SymInt k) -> Tensor"
    )
    assert library.infer_schema(f_strings, mutates_args=()) == "(Tensor x, Tensor? y=None) -> (Tensor, Tensor)"
    missing = r"Parameter x must have a type annotation\. Got func with signature \(x, n: 'int'\)"
    with pytest.raises(ValueError, match=missing):
        library.infer_schema(f_missing, mutates_args=())
    with pytest.raises(ValueError, match="We do not support positional-only args, varargs, or varkwargs"):
        library.infer_schema(f_posonly, mutates_args=())
    with pytest.raises(ValueError, match="We do not support positional-only args, varargs, or varkwargs"):
        library.infer_schema(f_varargs, mutates_args=())
