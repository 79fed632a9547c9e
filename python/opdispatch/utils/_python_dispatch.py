"""TorchDispatchMode and the mode stack (PyTorch's ``torch.utils._python_dispatch``).

A mode is pushed on a per-thread stack (in ``_C``); while the stack is non-empty the thread's
TLS includes the Python keys, so every operator call reaches the Python-key fallback, which
calls the innermost mode's ``__torch_dispatch__(func, types, args, kwargs)`` with that mode
popped (so calling ``func`` inside the handler runs below it).
"""

from __future__ import annotations

import contextlib
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
