"""Utilities (PyTorch's ``torch.utils`` subset)."""

from .. import _C
from . import _python_dispatch  # noqa: F401

__all__ = ["swap_tensors"]


def swap_tensors(t1: "_C.Tensor", t2: "_C.Tensor") -> None:
    """Exchanges the contents of two tensors in place; each Python object keeps its identity
    and its attributes."""
    if not (isinstance(t1, _C.Tensor) and isinstance(t2, _C.Tensor)):
        raise TypeError(f"Expected 2 tensors, got {type(t1).__name__} and {type(t2).__name__}")
    _C._swap_tensors(t1, t2)
