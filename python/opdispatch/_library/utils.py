"""Helpers shared by the custom-op layer: names, schema facts, the aliasing constraint."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from .. import _C
from .._ops import ops as _ops_root


class Kernel:
    """A function and where it was registered (``"file:line"``)."""

    __slots__ = ("func", "source")

    def __init__(self, func: Callable[..., Any], source: str) -> None:
        self.func = func
        self.source = source

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.func(*args, **kwargs)


def get_source(stacklevel: int) -> str:
    """``"file:line"`` of the caller ``stacklevel`` frames up."""
    # The frame's own fields: inspect.getframeinfo reads the source file, which made it most
    # of the cost of defining a custom op.
    frame = sys._getframe(stacklevel)
    return f"{frame.f_code.co_filename}:{frame.f_lineno}"


def parse_namespace(qualname: str) -> tuple[str, str]:
    splits = qualname.split("::")
    if len(splits) != 2:
        raise ValueError(
            f'Expected `qualname` to be of the form "namespace::name", but got {qualname}. '
            "The qualname passed to the torch.library APIs must consist of a namespace and a name, e.g. aten::sin"
        )
    return splits[0], splits[1]


def lookup_op(qualname: str) -> Any:
    """The ``OpOverload`` named ``"ns::op[.overload]"``."""
    namespace, name = parse_namespace(qualname)
    name, _, overload = name.partition(".")
    overload = overload or "default"
    # Cached packets and overloads live in the instances' dicts; a miss goes to the
    # resolving __getattr__ directly (through getattr, the failed ordinary lookup first builds
    # an AttributeError, a visible part of defining a custom op).
    ns_obj = getattr(_ops_root, namespace)
    packet = vars(ns_obj).get(name)
    if packet is None:
        packet = type(ns_obj).__getattr__(ns_obj, name)
    result = vars(packet).get(overload)
    if result is None:
        result = type(packet).__getattr__(packet, overload)
    return result


class ArgInfo(NamedTuple):
    """An argument or return with its alias annotation (``Tensor(a!)``: sets ``["a"]``, write)."""

    name: str
    type: str
    alias_sets: list[str] | None
    is_write: bool
    kwarg_only: bool


# The native rows have ArgInfo's five fields: built in C as namedtuple's own `_make` does,
# without a Python-level `__new__` per row (those were most of the cost of this function).
_tuple_new = tuple.__new__


def schema_info(op: Any) -> tuple[list[ArgInfo], list[ArgInfo]]:
    args, rets = _C._dispatch_schema_alias_info(op)
    return [_tuple_new(ArgInfo, a) for a in args], [_tuple_new(ArgInfo, r) for r in rets]


def is_mutable(op: Any) -> bool:
    return any(a.is_write for a in schema_info(op)[0])


def is_functional_schema(op: Any, *, allow_valid_view: bool = False) -> bool:
    """No argument is mutated, something is returned and no return is a view of an input (with
    ``allow_valid_view``, one that views the only tensor input as the only tensor output is)."""
    args, rets = schema_info(op)
    if any(a.is_write for a in args):
        return False
    if any(r.alias_sets is not None and not r.is_write for r in rets):
        n_in = sum(a.type == "Tensor" for a in args)
        n_out = sum(r.type == "Tensor" for r in rets)
        return allow_valid_view and n_in == 1 and n_out == 1
    return bool(rets)


def has_kwarg_only_tensors(op: Any) -> bool:
    return any(a.kwarg_only and a.type.startswith("Tensor") for a in schema_info(op)[0])


def has_tensor_arg(op: Any) -> bool:
    return any(a.type.startswith("Tensor") for a in schema_info(op)[0])


def get_device_arg_index(op: Any) -> int | None:
    for i, a in enumerate(schema_info(op)[0]):
        if a.type == "Device" and a.name == "device":
            return i
    return None


def mutated_args_kwargs(op: Any) -> tuple[list[int], list[str]]:
    """Positions of the mutated positional arguments and names of the mutated kwarg-only ones."""
    idxs: list[int] = []
    keys: list[str] = []
    for i, a in enumerate(schema_info(op)[0]):
        if a.is_write:
            if a.kwarg_only:
                keys.append(a.name)
            else:
                idxs.append(i)
    return idxs, keys


def can_generate_trivial_fake_impl(op: Any) -> bool:
    """A mutating op that returns nothing needs no fake impl (it has nothing to describe)."""
    args, rets = schema_info(op)
    return any(a.is_write for a in args) and not rets


def iter_tensors(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Iterator[_C.Tensor]:
    """The tensors among ``args``/``kwargs``, looking one level into lists and tuples."""

    def check(arg: Any) -> Iterator[_C.Tensor]:
        if isinstance(arg, _C.Tensor):
            yield arg
        elif isinstance(arg, (list, tuple)):
            for a in arg:
                if isinstance(a, _C.Tensor):
                    yield a

    for arg in args:
        yield from check(arg)
    for kwarg in kwargs.values():
        yield from check(kwarg)


def aliasing_error(name: str, get_module: Callable[[], Any]) -> RuntimeError:
    """Torch's error for a custom op whose output aliases an input or another output."""
    return RuntimeError(
        f"{name} (with implementation in {get_module()}): "
        "The output of this custom operator (1) must not "
        "also be an input to this custom operator and "
        "(2) may not alias any inputs to this custom operator "
        "or other returns. "
        "The most common way to trigger this error is if "
        "we have y = custom_op(x) and y and x are the same Tensor. "
        "Please instead return a clone of the offending output "
        "tensor(s) (e.g. return x.clone()) or refactor the custom "
        "operator to not return y."
    )


def check_aliasing_constraint(
    name: str, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any, get_module: Callable[[], Any]
) -> None:
    """Custom ops' outputs may alias neither an input nor another output (by storage). The
    kernels ``custom_op`` registers run this check natively (``_C._CustomOpBackend``)."""
    outputs = result if type(result) is tuple else (result,)
    if _C._any_output_is_alias_to_input_or_output(args, kwargs, outputs):
        raise aliasing_error(name, get_module)


_DEVICE_TYPE_TO_KEY = {"cpu": "CPU", "cuda": "CUDA", "meta": "Meta", "xpu": "XPU", "mps": "MPS", "hpu": "HPU"}


def dispatch_key_for_device(device_type: str) -> str:
    """``torch._C._dispatch_key_for_device``: ``"cpu"`` -> ``"CPU"``."""
    key = _DEVICE_TYPE_TO_KEY.get(device_type)
    if key is None:
        _C.device(device_type)  # raises torch's "Expected one of cpu, cuda, ... device type" error
        raise RuntimeError(f"opdispatch has no kernels for device type {device_type}")
    return key
