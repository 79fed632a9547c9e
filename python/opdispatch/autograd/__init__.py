"""``opdispatch.autograd``: reverse-mode automatic differentiation with PyTorch's names.

The engine, the graph and the derivative formulas are in Rust (``crates/opdispatch-autograd``);
this package is the Python front: ``backward``, ``grad``, ``Function``, the grad-mode context
managers and ``gradcheck``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .. import _C
from . import graph
from .function import Function, FunctionCtx, once_differentiable
from .grad_mode import enable_grad, inference_mode, is_grad_enabled, no_grad, set_grad_enabled
from .gradcheck import GradcheckError, gradcheck, gradgradcheck

__all__ = [
    "Function",
    "FunctionCtx",
    "GradcheckError",
    "backward",
    "enable_grad",
    "grad",
    "gradcheck",
    "gradgradcheck",
    "graph",
    "inference_mode",
    "is_grad_enabled",
    "no_grad",
    "once_differentiable",
    "set_grad_enabled",
]


def _as_list(x: Any) -> list[Any]:
    if x is None:
        return []
    if isinstance(x, _C.Tensor):
        return [x]
    return list(x)


def backward(
    tensors: Any,
    grad_tensors: Any = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    inputs: Any = None,
) -> None:
    """Accumulates the gradients of ``tensors`` into the leaves' ``.grad``."""
    ts = _as_list(tensors)
    gs = _as_list(grad_tensors) if grad_tensors is not None else [None] * len(ts)
    if len(gs) != len(ts):
        raise RuntimeError(
            "grad can be implicitly created only for scalar outputs" if not gs else
            f"Mismatch in number of grad_tensors: got {len(gs)} but expected {len(ts)}"
        )
    ins = None if inputs is None else _as_list(inputs)
    if ins is not None and len(ins) == 0:
        raise RuntimeError("`inputs` argument to `backward()` cannot be empty.")
    _C._run_backward(ts, gs, retain_graph, create_graph, ins)


def grad(
    outputs: Any,
    inputs: Any,
    grad_outputs: Any = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    allow_unused: bool | None = None,
    materialize_grads: bool = False,
) -> tuple[Any, ...]:
    """The gradients of ``outputs`` with respect to ``inputs`` (``.grad`` is left alone)."""
    outs = _as_list(outputs)
    ins = _as_list(inputs)
    gos: Sequence[Any] = _as_list(grad_outputs) if grad_outputs is not None else [None] * len(outs)
    if allow_unused is None:
        allow_unused = materialize_grads
    res = _C._autograd_grad(outs, ins, list(gos), retain_graph, create_graph, allow_unused)
    if materialize_grads:
        from .._ops import ops

        res = tuple(ops.aten.zeros_like(i) if g is None else g for g, i in zip(res, ins, strict=False))
    return tuple(res)
