"""TorchDispatchMode and the mode stack (PyTorch's ``torch.utils._python_dispatch``).

A mode is pushed on a per-thread stack (in ``_C``); while the stack is non-empty the thread's
TLS includes the Python keys, so every operator call reaches the Python-key fallback, which
calls the innermost mode's ``__torch_dispatch__(func, types, args, kwargs)`` with that mode
popped (so calling ``func`` inside the handler runs below it).
"""

from __future__ import annotations

import contextlib
import functools
import re
import warnings
from collections.abc import Callable, Iterator
from typing import Any

from .. import _C

__all__ = [
    "TorchDispatchMode",
    "BaseTorchDispatchMode",
    "_get_current_dispatch_mode",
    "_get_current_dispatch_mode_stack",
    "_len_torch_dispatch_stack",
    "_push_mode",
    "_pop_mode",
    "_pop_mode_temporarily",
    "_disable_current_modes",
    "is_traceable_wrapper_subclass",
    "is_traceable_wrapper_subclass_type",
    "transform_subclass",
    "return_and_correct_aliasing",
]

_len_torch_dispatch_stack = _C._len_torch_dispatch_stack
_get_dispatch_stack_at = _C._get_dispatch_stack_at


class TorchDispatchMode:
    """A context manager whose ``__torch_dispatch__`` sees every operator called inside it
    (below the autograd keys). Inside the handler the mode is not active, so calling
    ``func(*args, **kwargs)`` runs the operator below this mode."""

    supports_higher_order_operators = False

    def __init__(self, _dispatch_key: Any = None) -> None:
        if _dispatch_key is not None:
            if not isinstance(_dispatch_key, _C.DispatchKey):
                raise AssertionError(f"expected a DispatchKey, got {type(_dispatch_key).__name__}")
            self.__dict__["_dispatch_key"] = _dispatch_key

    def __torch_dispatch__(
        self, func: Any, types: tuple[type, ...], args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        raise NotImplementedError

    def __enter__(self) -> Any:
        _push_mode(self)
        return self

    def __exit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        _pop_mode(self.__dict__.get("_dispatch_key", None))

    @classmethod
    def push(cls, *args: Any, **kwargs: Any) -> Any:
        warnings.warn(
            "`Mode.push()` is no longer necessary and can be replaced with just `with Mode()`", stacklevel=2
        )
        return cls(*args, **kwargs)

    @classmethod
    def is_infra_mode(cls) -> bool:
        return False


class BaseTorchDispatchMode(TorchDispatchMode):
    """A mode that runs every operator unchanged (a base for modes that only observe)."""

    def __torch_dispatch__(
        self, func: Any, types: tuple[type, ...], args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        return func(*args, **(kwargs or {}))


def _check_key(k: Any) -> None:
    if k is not None:
        raise NotImplementedError(f"dispatch modes for the key {k} are not supported; only user modes are")


def _get_current_dispatch_mode() -> Any:
    """The innermost active mode, or None."""
    n = _len_torch_dispatch_stack()
    return _get_dispatch_stack_at(n - 1) if n > 0 else None


def _get_current_dispatch_mode_stack() -> list[Any]:
    """The active modes, outermost first."""
    return [_get_dispatch_stack_at(i) for i in range(_len_torch_dispatch_stack())]


def _push_mode(mode: Any) -> None:
    """Pushes ``mode`` on this thread's stack (it becomes the innermost)."""
    _check_key(mode.__dict__.get("_dispatch_key", None))
    _C._push_on_torch_dispatch_stack(mode)


def _pop_mode(k: Any = None) -> Any:
    """Removes and returns the innermost mode."""
    _check_key(k)
    return _C._pop_torch_dispatch_stack()


@contextlib.contextmanager
def _pop_mode_temporarily(k: Any = None) -> Iterator[Any]:
    """Pops the innermost mode for the ``with`` block and pushes it back afterwards."""
    old = _pop_mode(k)
    try:
        yield old
    finally:
        _push_mode(old)


@contextlib.contextmanager
def _disable_current_modes() -> Iterator[list[Any]]:
    """Pops every mode for the ``with`` block (yields them, innermost first) and restores the
    stack afterwards."""
    old_modes = [_pop_mode() for _ in range(_len_torch_dispatch_stack())]
    try:
        yield old_modes
    finally:
        for mode in reversed(old_modes):
            _push_mode(mode)


def is_traceable_wrapper_subclass(t: object) -> bool:
    """Whether ``t`` is a Tensor subclass instance that can be flattened into inner tensors
    (defines ``__tensor_flatten__`` and ``__tensor_unflatten__``)."""
    return (
        isinstance(t, _C.Tensor)
        and type(t) is not _C.Tensor
        and hasattr(t, "__tensor_flatten__")
        and hasattr(t, "__tensor_unflatten__")
    )


def is_traceable_wrapper_subclass_type(t: type) -> bool:
    """``is_traceable_wrapper_subclass`` for a class."""
    return (
        issubclass(t, _C.Tensor)
        and t is not _C.Tensor
        and hasattr(t, "__tensor_flatten__")
        and hasattr(t, "__tensor_unflatten__")
    )


def transform_subclass(
    t: Any, callback: Callable[[str, Any], Any], outer_size: Any = None, outer_stride: Any = None
) -> Any:
    """Rebuilds a traceable wrapper subclass with ``callback(name, inner)`` applied to each of
    its inner tensors (through ``__tensor_flatten__`` / ``__tensor_unflatten__``)."""
    outer_size = t.size() if outer_size is None else outer_size
    outer_stride = t.stride() if outer_stride is None else outer_stride
    attrs, ctx = t.__tensor_flatten__()
    transformed = {attr: callback(attr, getattr(t, attr)) for attr in attrs}
    sub = type(t).__tensor_unflatten__(transformed, ctx, outer_size, outer_stride)
    if tuple(sub.shape) != tuple(outer_size):
        raise AssertionError(
            f"Expected return value from {type(t)}__tensor_unflatten__() to have shape equal to "
            f"{tuple(outer_size)}, but got: {tuple(sub.shape)}"
        )
    return sub


# "Tensor(a!) self" / "Tensor(a) self" / "Tensor(a!)[] out": the alias set and whether it is written.
_ALIAS = re.compile(r"Tensor\(([a-z|]+)(!?)\)")


def _split_top_level(text: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur.strip())
    return parts


def _alias(decl: str) -> tuple[frozenset[str], bool]:
    m = _ALIAS.match(decl)
    if m is None:
        return frozenset(), False
    return frozenset(m.group(1).split("|")), m.group(2) == "!"


_AliasList = list[tuple[frozenset[str], bool]]


@functools.cache
def _alias_info(schema_text: str) -> tuple[_AliasList, _AliasList]:
    """The alias set and write flag of each argument and return of a canonical schema."""
    open_at = schema_text.index("(")
    arrow = schema_text.rindex(" -> ")
    args = [a for a in _split_top_level(schema_text[open_at + 1 : schema_text.rindex(")", 0, arrow)]) if a != "*"]
    rets_text = schema_text[arrow + 4 :].strip()
    if rets_text.startswith("(") and rets_text.endswith(")"):
        rets = _split_top_level(rets_text[1:-1])
    else:
        rets = [rets_text] if rets_text else []
    return [_alias(a) for a in args], [_alias(r) for r in rets]


def return_and_correct_aliasing(func: Any, args: Any, kwargs: Any, out: Any) -> Any:
    """For a wrapper subclass's ``__torch_dispatch__``: returns the *input* object for every
    output the schema marks as a mutable alias of an argument (``add_`` returns ``self``, an
    ``out=`` overload returns ``out``), and ``out`` otherwise. Unlike torch, the storage of a
    view op's output is not re-pointed at its input's storage."""
    arg_info, ret_info = _alias_info(str(func._schema))
    writes = [next(iter(a)) if (a and w and len(a) == 1) else None for a, w in ret_info]
    if not any(w is not None for w in writes):
        return out
    if not all(w is not None for w in writes):
        raise RuntimeError("Unsupported schema: " + str(func._schema))
    names = [a.name for a in func._schema.arguments]
    kwargs = kwargs or {}

    def arg_for(alias: str) -> Any:
        idx = [i for i, (aset, _) in enumerate(arg_info) if alias in aset]
        if len(idx) != 1:
            raise RuntimeError(f"expected one argument aliased by {alias!r} in {func._schema}")
        i = idx[0]
        return kwargs[names[i]] if names[i] in kwargs else args[i]

    if len(writes) == 1:
        return arg_for(writes[0])  # type: ignore[arg-type]
    return type(out)(arg_for(w) for w in writes)  # type: ignore[arg-type]
