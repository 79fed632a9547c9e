"""``autograd.Function``: an operation with a forward and a backward written in Python.

``apply`` runs ``forward`` with grad mode off, then (if an input requires grad) makes the
outputs outputs of one graph node whose backward calls ``backward`` (``_C._function_attach``).
Saved tensors live in that node as SavedVariables (version-checked, freed after backward); the
``ctx`` keeps only a weak reference to the node, so saving an output makes no cycle."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import _C
from .grad_mode import no_grad

__all__ = ["Function", "FunctionCtx", "once_differentiable"]


class FunctionCtx:
    """The ``ctx`` a Function's forward/setup_context and backward receive."""

    needs_input_grad: tuple[bool, ...]

    def __init__(self) -> None:
        self._to_save: tuple[Any, ...] = ()
        self._non_differentiable: tuple[Any, ...] = ()
        self._dirty: tuple[Any, ...] = ()
        self._materialize_grads = True
        self._node_ref: Any = None
        self.needs_input_grad = ()

    def save_for_backward(self, *tensors: Any) -> None:
        for i, t in enumerate(tensors):
            if t is not None and not isinstance(t, _C.Tensor):
                raise TypeError(
                    f"save_for_backward can only save variables, but argument {i} is of type {type(t).__name__}"
                )
        self._to_save = tensors

    @property
    def saved_tensors(self) -> tuple[Any, ...]:
        if self._node_ref is None:
            # Forward without an input that requires grad: nothing was recorded.
            return tuple(self._to_save)
        saved = list(self._node_ref.saved_tensors())
        out: list[Any] = []
        for t in self._to_save:
            out.append(None if t is None else saved.pop(0))
        return tuple(out)

    def mark_dirty(self, *tensors: Any) -> None:
        self._dirty = tensors

    def mark_non_differentiable(self, *tensors: Any) -> None:
        self._non_differentiable = tensors

    def set_materialize_grads(self, value: bool) -> None:
        self._materialize_grads = bool(value)


class _FunctionMeta(type):
    """Gives each Function subclass its node name (``<Class>Backward``)."""

    def __init__(cls, name: str, bases: tuple[type, ...], attrs: dict[str, Any]) -> None:
        super().__init__(name, bases, attrs)
        cls._backward_name = name + "Backward"


class Function(FunctionCtx, metaclass=_FunctionMeta):
    """Base class of custom autograd operations (``forward``/``backward`` static methods, with
    the ``ctx`` first, or a ``forward`` without ctx plus ``setup_context``)."""

    @staticmethod
    def forward(*args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(
            "You must implement the forward function for custom autograd.Function."
        )

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Any) -> Any:
        raise NotImplementedError("setup_context is not implemented.")

    @staticmethod
    def backward(ctx: Any, *grad_outputs: Any) -> Any:
        raise NotImplementedError(
            "You must implement either the backward or vjp method for your custom autograd.Function "
            "to use it with backward mode AD."
        )

    vjp = backward

    @classmethod
    def apply(cls, *args: Any, **kwargs: Any) -> Any:
        setup_style = cls.setup_context is not Function.setup_context
        ctx = FunctionCtx()
        grad_on = _C.is_grad_enabled()
        is_tensor = [isinstance(a, _C.Tensor) for a in args]
        ctx.needs_input_grad = tuple(
            bool(grad_on and t and a.requires_grad) for a, t in zip(args, is_tensor, strict=False)
        )
        with no_grad():
            if setup_style:
                output = cls.forward(*args, **kwargs)
            else:
                output = cls.forward(ctx, *args, **kwargs)
        if setup_style:
            cls.setup_context(ctx, args, output)
        if not any(ctx.needs_input_grad):
            return output
        outputs = output if isinstance(output, tuple) else (output,)
        out_tensors = [o for o in outputs if isinstance(o, _C.Tensor)]
        tensor_positions = [i for i, t in enumerate(is_tensor) if t]
        inputs = [args[i] for i in tensor_positions]
        name = cls._backward_name
        n_args = len(args)
        backward = cls.backward

        def run_backward(*grads: Any) -> list[Any]:
            result = backward(ctx, *grads)
            if not isinstance(result, tuple):
                result = (result,)
            if len(result) != n_args:
                extra = result[n_args:]
                if len(result) < n_args or any(g is not None for g in extra):
                    raise RuntimeError(
                        f"function {name} returned an incorrect number of gradients "
                        f"(expected {n_args}, got {len(result)})"
                    )
            grads_out: list[Any] = []
            for i in tensor_positions:
                g = result[i]
                if g is not None and not isinstance(g, _C.Tensor):
                    raise TypeError(
                        f"function {name} returned a gradient different than None at position {i + 1}, "
                        "but the corresponding forward input was not a Variable"
                    )
                grads_out.append(g)
            return grads_out

        ctx._node_ref = _C._function_attach(
            name,
            run_backward,
            inputs,
            out_tensors,
            [t for t in ctx._to_save if t is not None],
            list(ctx._non_differentiable),
            list(ctx._dirty),
            ctx._materialize_grads,
        )
        # The node owns the ctx (through run_backward); keeping the tensors here too would make
        # a cycle through native code that the gc cannot see. Only their positions stay.
        ctx._to_save = tuple(None if t is None else True for t in ctx._to_save)
        ctx._non_differentiable = ()
        ctx._dirty = ()
        return output


def once_differentiable(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Runs ``backward`` with grad mode off (its result is not differentiable again)."""

    def wrapper(ctx: Any, *args: Any) -> Any:
        with no_grad():
            return fn(ctx, *args)

    return wrapper
