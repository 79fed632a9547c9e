"""The autograd hook of custom ops: the Autograd kernel a ``CustomOpDef`` (or
``library.register_autograd``) registers. As torch's ``_library/autograd.py``: when grad mode is
on and a positional input requires grad, the call runs through a generated
``autograd.Function`` whose forward is the op below Autograd and whose backward is the
registered formula; otherwise it just runs the op below Autograd. ``setup_context`` receives the
inputs with the defaults the dispatcher dropped filled back in (and, for an op with kwarg-only
arguments, ``keyword_only_inputs``). The ADInplaceOrView kernel of a mutating op is native
(``_C._DispatchModule.impl_custom_op_inplace``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import _C
from ..autograd.function import Function


class Info:
    """What ``register_autograd`` recorded for an op (torch's ``_library.autograd.Info``)."""

    def __init__(self, backward_fn: Callable[..., Any] | None, setup_context_fn: Callable[..., Any] | None) -> None:
        self._backward_fn = backward_fn
        self._setup_context_fn = setup_context_fn


class _Metadata:
    """The extra last input of the generated Function: the kwarg-only arguments (which
    ``Function.apply`` cannot take as inputs) and, for ops with tensor-list arguments or returns,
    how the lists were flattened into separate inputs and outputs (torch's
    ``supports_tensorlist``)."""

    __slots__ = ("keyword_only_args", "input_spec", "output_spec", "result_is_tuple")

    def __init__(self, keyword_only_args: dict[str, Any], input_spec: _Spec | None = None) -> None:
        self.keyword_only_args = keyword_only_args
        self.input_spec = input_spec
        self.output_spec: _Spec | None = None
        self.result_is_tuple = False


# Per value: None (passed as it is) or the length of a list of tensors flattened in its place.
_Spec = tuple[int | None, ...]


def _is_tensor_list(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(t, _C.Tensor) for t in v)


def _flatten(values: tuple[Any, ...]) -> tuple[list[Any], _Spec]:
    flat: list[Any] = []
    spec: list[int | None] = []
    for v in values:
        if _is_tensor_list(v):
            flat.extend(v)
            spec.append(len(v))
        else:
            flat.append(v)
            spec.append(None)
    return flat, tuple(spec)


def _unflatten(flat: tuple[Any, ...] | list[Any], spec: _Spec) -> list[Any]:
    out: list[Any] = []
    i = 0
    for n in spec:
        if n is None:
            out.append(flat[i])
            i += 1
        else:
            out.append(list(flat[i : i + n]))
            i += n
    return out


class _SchemaFacts:
    """What the generated Function reads from the schema, read on the first call that builds a
    graph (not when the op is defined: that was a tenth of a definition's cost)."""

    def __init__(self, op: Any) -> None:
        from .utils import schema_info

        args = _C._dispatch_schema_defaults(op)
        self.arguments = args
        self.has_kwarg_only_args = any(kwarg_only for _, kwarg_only, _, _ in args)
        self.num_positional_args = sum(not kwarg_only for _, kwarg_only, _, _ in args)
        arg_infos, ret_infos = schema_info(op)
        self.has_tensorlist_like_args = any(
            a.type.startswith("Tensor") and "[]" in a.type for a in (*arg_infos, *ret_infos)
        )

    def fill_defaults(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """torch's ``utils.fill_defaults``: every argument, the omitted ones as their default."""
        new_args: list[Any] = []
        new_kwargs: dict[str, Any] = {}
        for i, (name, kwarg_only, _, default) in enumerate(self.arguments):
            if kwarg_only:
                new_kwargs[name] = kwargs[name] if name in kwargs else default
            else:
                new_args.append(args[i] if i < len(args) else default)
        return tuple(new_args), new_kwargs


def _is_out(op: Any) -> bool:
    """An out= variant (torchgen's ``SchemaKind.out``): it writes kwarg-only arguments."""
    from .utils import schema_info

    return any(a.is_write and a.kwarg_only for a in schema_info(op)[0])


def _requires_grad(v: Any) -> bool:
    if isinstance(v, _C.Tensor):
        return bool(v.requires_grad)
    return isinstance(v, (list, tuple)) and any(isinstance(t, _C.Tensor) and t.requires_grad for t in v)


def _make_generated(op: Any, info: Any) -> tuple[Any, _SchemaFacts]:
    # Built on the first call that needs a graph: building a class was a quarter of the cost
    # of defining a custom op.
    facts = _SchemaFacts(op)

    def forward(ctx: Any, *flat_args: Any) -> Any:
        metadata = flat_args[-1]
        spec = metadata.input_spec
        args = tuple(_unflatten(flat_args[:-1], spec)) if spec is not None else flat_args[:-1]
        kwargs = metadata.keyword_only_args
        with _C._AutoDispatchBelowAutograd():
            result = op(*args, **kwargs)
        setup_context = info._setup_context_fn
        if setup_context:
            # The dispatcher dropped the arguments equal to their defaults; the user's
            # setup_context sees every input.
            full_args, full_kwargs = facts.fill_defaults(args, kwargs)
            if facts.has_kwarg_only_args:
                setup_context(ctx=ctx, inputs=full_args, keyword_only_inputs=full_kwargs, output=result)
            else:
                setup_context(ctx=ctx, inputs=full_args, output=result)
        if spec is None:
            return result
        # Tensor lists: every tensor of a returned list is an output of its own.
        if hasattr(ctx, "_pt_metadata"):
            raise RuntimeError("Please don't set ctx._pt_metadata; PyTorch uses it to store info")
        ctx._pt_metadata = metadata
        metadata.result_is_tuple = isinstance(result, tuple)
        flat_out, metadata.output_spec = _flatten(result if metadata.result_is_tuple else (result,))
        return tuple(flat_out)

    def backward(ctx: Any, *grads: Any) -> Any:
        backward_fn = info._backward_fn
        if not backward_fn:
            raise RuntimeError(
                f"Trying to backward through {op} but no autograd "
                "formula was registered. "
                "Please use register_autograd to add one."
            )
        metadata: _Metadata | None = getattr(ctx, "_pt_metadata", None)
        spec = metadata.input_spec if metadata is not None else None
        prev_needs_input_grad = ctx.needs_input_grad
        try:
            if spec is not None:
                assert metadata is not None and metadata.output_spec is not None
                grads = tuple(_unflatten(grads, metadata.output_spec))
                ctx.needs_input_grad = tuple(_unflatten(prev_needs_input_grad[:-1], spec))
            else:
                ctx.needs_input_grad = prev_needs_input_grad[:-1]
            result = backward_fn(ctx, *grads)
        finally:
            ctx.needs_input_grad = prev_needs_input_grad
        num_actual_inputs = len(spec) if spec is not None else len(prev_needs_input_grad) - 1
        num_positional_args = facts.num_positional_args
        actual = len(result) if isinstance(result, tuple) else 1
        if actual not in (num_actual_inputs, num_positional_args):
            expected = (
                str(num_actual_inputs)
                if num_actual_inputs == num_positional_args
                else f"{num_actual_inputs} or {num_positional_args}"
            )
            raise RuntimeError(
                f"The backward formula for {op} returned an incorrect "
                f"number of gradients (expected {expected}, got {actual}). "
                "Expected one gradient for each forward input, or for "
                "each positional input to the operator. Use None for "
                "inputs that do not require a gradient."
            )
        per_input = result[:num_actual_inputs] if isinstance(result, tuple) else (result,)
        if spec is None:
            return (*per_input, None)
        flat: list[Any] = []
        for g, n in zip(per_input, spec, strict=True):
            if n is None:
                flat.append(g)
            elif g is None:
                flat.extend([None] * n)
            elif isinstance(g, (list, tuple)) and len(g) == n:
                flat.extend(g)
            else:
                raise RuntimeError(
                    "Expected the return from backward to be of the same structure as the inputs. "
                    f"Got: {type(g).__name__} (return from backward) for a list of {n} tensors (inputs)"
                )
        return (*flat, None)

    name = "GeneratedBackwardFor_" + str(op).replace(".", "_")
    cls: Any = type(name, (Function,), {"forward": staticmethod(forward), "backward": staticmethod(backward)})
    return cls, facts


class _AutogradKernel:
    """A custom op's Autograd kernel: through the generated ``autograd.Function`` when grad
    mode is on and an input requires grad, otherwise the op below Autograd. (A class, not a
    closure: fewer objects per defined op.) The class flag makes the registration native
    in front of it: calls that need no graph skip it."""

    __slots__ = ("op", "info", "generated")
    _opdispatch_grad_gate = True

    def __init__(self, op: Any, info: Any) -> None:
        self.op = op
        self.info = info
        self.generated: tuple[Any, _SchemaFacts] | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # The dispatcher passes the kwarg-only arguments as keywords, the rest positionally.
        op = self.op
        grad = _C.is_grad_enabled()
        if grad and _is_out(op):
            if any(_requires_grad(a) for a in (*args, *kwargs.values())):
                raise RuntimeError(
                    f"{op._schema_name.split('::')[-1]}(): functions with out=... arguments don't "
                    "support automatic differentiation, but one of the arguments "
                    "requires grad."
                )
        elif grad and any(_requires_grad(a) for a in args):
            generated = self.generated
            if generated is None:
                generated = self.generated = _make_generated(op, self.info)
            cls, facts = generated
            if not facts.has_tensorlist_like_args:
                return cls.apply(*args, _Metadata(kwargs))
            flat_args, spec = _flatten(args)
            metadata = _Metadata(kwargs, spec)
            outs = _unflatten(cls.apply(*flat_args, metadata), metadata.output_spec or ())
            return tuple(outs) if metadata.result_is_tuple else outs[0]
        with _C._AutoDispatchBelowAutograd():
            return op(*args, **kwargs)


def make_autograd_impl(op: Any, info: Any) -> Callable[..., Any]:
    """The Autograd kernel (``with_keyset=True``) that runs ``info._backward_fn`` through an
    ``autograd.Function`` when an input requires grad."""
    kernel = _AutogradKernel(op, info)

    def with_keyset(keyset: Any, *args: Any, **kwargs: Any) -> Any:
        return kernel(*args, **kwargs)

    # Registered natively in front of the Python kernel: calls that need no graph skip it.
    with_keyset._opdispatch_grad_gate = True  # type: ignore[attr-defined]
    return with_keyset


def autograd_kernel(op: Any, info: Any) -> Callable[..., Any]:
    """What ``CustomOpDef`` registers at Autograd when it is defined: reads ``info`` (the
    CustomOpDef) at call time, so a later ``register_autograd`` takes effect."""
    return _AutogradKernel(op, info)
