"""The autograd hook of custom ops: the Autograd kernel a ``CustomOpDef`` (or
``library.register_autograd``) registers. As torch's ``_library/autograd.py``: when an input
requires grad, the call runs through a generated ``autograd.Function`` whose forward is the op
below Autograd and whose backward is the registered formula; otherwise it just runs the op below
Autograd. The ADInplaceOrView kernel of a mutating op is still a fallthrough (mutated custom-op
arguments do not bump version counters yet).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import _C


class Info:
    """What ``register_autograd`` recorded for an op (torch's ``_library.autograd.Info``)."""

    def __init__(self, backward_fn: Callable[..., Any] | None, setup_context_fn: Callable[..., Any] | None) -> None:
        self._backward_fn = backward_fn
        self._setup_context_fn = setup_context_fn


def _kernel(op: Any, info: Any) -> Callable[..., Any]:
    from ..autograd.function import Function

    def _bind(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
        if not kwargs:
            return args
        # Keyword arguments become positional (Function.apply's inputs), in schema order, as far
        # as they are given; the op fills in the defaults of the rest. The schema is read here,
        # not when the op is defined (building it was a tenth of a definition's cost).
        full = list(args)
        for a in op._schema.arguments[len(args):]:
            if a.name not in kwargs:
                break
            full.append(kwargs[a.name])
        return tuple(full)

    # The autograd.Function is built on the first call that needs a graph: building a class
    # was a quarter of the cost of defining a custom op.
    generated: list[Any] = []

    def make_generated() -> Any:
        class Generated(Function):
            @staticmethod
            def forward(*args: Any) -> Any:
                with _C._AutoDispatchBelowAutograd():
                    return op(*args)

            @staticmethod
            def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
                if info._setup_context_fn is not None:
                    info._setup_context_fn(ctx, inputs, output)

            @staticmethod
            def backward(ctx: Any, *grads: Any) -> Any:
                if info._backward_fn is None:
                    raise RuntimeError(
                        f"Trying to backward through {op} but no autograd formula was registered. "
                        f"Please use register_autograd to add one."
                    )
                result = info._backward_fn(ctx, *grads)
                if not isinstance(result, tuple):
                    result = (result,)
                return result

        name = str(op).replace(".", "_")
        Generated.__name__ = f"GeneratedBackwardFor_{name}"
        Generated._backward_name = Generated.__name__ + "Backward"
        generated.append(Generated)
        return Generated

    def kernel(*args: Any, **kwargs: Any) -> Any:
        if _C.is_grad_enabled():
            for a in list(args) + list(kwargs.values()):
                if isinstance(a, _C.Tensor) and a.requires_grad:
                    cls = generated[0] if generated else make_generated()
                    return cls.apply(*_bind(args, kwargs))
        with _C._AutoDispatchBelowAutograd():
            return op(*args, **kwargs)

    return kernel


def make_autograd_impl(op: Any, info: Any) -> Callable[..., Any]:
    """The Autograd kernel (``with_keyset=True``) that runs ``info._backward_fn`` through an
    ``autograd.Function`` when an input requires grad."""
    kernel = _kernel(op, info)

    def with_keyset(keyset: Any, *args: Any, **kwargs: Any) -> Any:
        return kernel(*args, **kwargs)

    # Registered natively in front of the Python kernel: calls that need no graph skip it.
    with_keyset._opdispatch_grad_gate = True  # type: ignore[attr-defined]
    return with_keyset


def autograd_kernel(op: Any, info: Any) -> Callable[..., Any]:
    """What ``CustomOpDef`` registers at Autograd when it is defined: reads ``info`` (the
    CustomOpDef) at call time, so a later ``register_autograd`` takes effect."""
    kernel = _kernel(op, info)
    kernel._opdispatch_grad_gate = True  # type: ignore[attr-defined]
    return kernel


def adinplaceorview_kernel(op: Any) -> Callable[..., Any]:
    """What a mutating ``CustomOpDef`` registers at ADInplaceOrView: a fallthrough until
    version counters exist (then: bump the mutated arguments' versions and redispatch)."""
    from ..library import fallthrough_kernel

    return fallthrough_kernel
