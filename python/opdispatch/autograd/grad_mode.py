"""Grad mode (``torch.autograd.grad_mode``): thread-local, as PyTorch's; every class works as a
context manager and as a decorator."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from .. import _C

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["no_grad", "enable_grad", "set_grad_enabled", "inference_mode", "is_grad_enabled"]


def is_grad_enabled() -> bool:
    return _C.is_grad_enabled()


class _DecoratorContextManager:
    """Context manager that also decorates functions (each call runs inside a fresh copy)."""

    def __call__(self, func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self.clone():
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    def clone(self) -> _DecoratorContextManager:
        return self.__class__()

    def __enter__(self) -> None:
        raise NotImplementedError

    def __exit__(self, *exc: object) -> None:
        raise NotImplementedError


class no_grad(_DecoratorContextManager):
    """Disables recording of operations for autograd in its block."""

    def __init__(self) -> None:
        self.prev = False

    def __enter__(self) -> None:
        self.prev = _C.is_grad_enabled()
        _C._set_grad_enabled(False)

    def __exit__(self, *exc: object) -> None:
        _C._set_grad_enabled(self.prev)


class enable_grad(_DecoratorContextManager):
    """Enables recording inside a ``no_grad`` block."""

    def __init__(self) -> None:
        self.prev = False

    def __enter__(self) -> None:
        self.prev = _C.is_grad_enabled()
        _C._set_grad_enabled(True)

    def __exit__(self, *exc: object) -> None:
        _C._set_grad_enabled(self.prev)


class set_grad_enabled(_DecoratorContextManager):
    """``set_grad_enabled(mode)``: sets grad mode now (usable as a plain call), and restores the
    previous mode when used as a context manager."""

    def __init__(self, mode: bool) -> None:
        self.prev = _C.is_grad_enabled()
        self.mode = bool(mode)
        _C._set_grad_enabled(self.mode)

    def __enter__(self) -> None:
        _C._set_grad_enabled(self.mode)

    def __exit__(self, *exc: object) -> None:
        _C._set_grad_enabled(self.prev)

    def clone(self) -> set_grad_enabled:
        return self.__class__(self.mode)


class inference_mode(_DecoratorContextManager):
    """``inference_mode(mode=True)``: no recording in its block (the no-grad part of PyTorch's
    inference mode; tensors made inside are ordinary tensors here)."""

    def __init__(self, mode: bool = True) -> None:
        self.mode = mode
        self.prev_grad = False
        self.prev_inference = False

    def __enter__(self) -> None:
        self.prev_grad = _C.is_grad_enabled()
        self.prev_inference = _C.is_inference_mode_enabled()
        if self.mode:
            _C._set_grad_enabled(False)
            _C._set_inference_mode(True)

    def __exit__(self, *exc: object) -> None:
        _C._set_grad_enabled(self.prev_grad)
        _C._set_inference_mode(self.prev_inference)

    def clone(self) -> inference_mode:
        return self.__class__(self.mode)
