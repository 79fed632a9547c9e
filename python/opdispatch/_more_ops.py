"""The second batch of torch functions and Tensor methods: ``*_like`` and ``new_*`` factories,
``eye``/``linspace``, more reductions (``amax``, ``prod``, ``all``/``any``, ``cumsum``, ``var``/``std``,
``logsumexp``, ``softmax``), rounding and transcendental unary ops, ``clamp`` and the remainder
family, logical ops, ``lerp``, ``masked_fill``, indexing (``index_select``, ``gather``, ``scatter``),
``flip``/``roll``, ``chunk``/``split``/``unbind``, ``tril``/``triu``/``diag``, ``outer``, ``addmm``,
``topk``/``sort``.

Each is a call of ``opdispatch.ops.aten.<op>`` (``_C._AtenMethod`` forwarding to the packet, so
overload resolution picks ``clamp`` or ``clamp.Tensor`` as torch does), except where torch's
Python binding itself rearranges arguments (``var(unbiased=)``, ``split`` by int or sizes).
"""

# Tensor methods are attached to the native class by assignment below.
# mypy: disable-error-code="method-assign"

from __future__ import annotations

import builtins
from typing import Any, NamedTuple

from . import _C
from ._ops import ops
from .overrides import _overridable, _overridable_python, _takes_only_self

Tensor = _C.Tensor

# Methods (and functions) that forward unchanged to the aten packet of the same name.
_PLAIN = [
    "amax", "amin", "prod", "all", "any", "cumsum", "cumprod", "logsumexp",
    "floor", "ceil", "round", "trunc", "frac", "sign", "square", "rsqrt", "log1p", "expm1", "log2",
    "log10", "exp2", "tan", "asin", "acos", "atan", "sinh", "cosh", "erf", "isnan", "isinf", "isfinite",
    "logical_not", "nan_to_num", "clamp", "clamp_min", "clamp_max", "clip", "atan2", "remainder", "fmod",
    "floor_divide", "logical_and", "logical_or", "logical_xor", "lerp", "masked_fill", "index_select",
    "gather", "scatter", "scatter_add", "index_add", "roll", "tril", "triu", "diag", "outer", "addmm",
]
# In-place methods (torch has no function for them).
_INPLACE = [
    "floor_", "ceil_", "round_", "trunc_", "frac_", "sign_", "rsqrt_", "log1p_", "expm1_", "log2_",
    "log10_", "exp2_", "tan_", "asin_", "acos_", "atan_", "sinh_", "cosh_", "erf_", "logical_not_",
    "nan_to_num_", "clamp_", "clamp_min_", "clamp_max_", "clip_", "atan2_", "remainder_", "fmod_",
    "floor_divide_", "logical_and_", "logical_or_", "logical_xor_", "lerp_", "masked_fill_", "scatter_",
    "cumsum_", "cumprod_", "tril_", "triu_",
]

__all__ = [
    *_PLAIN, "chunk", "empty_like", "eye", "flip", "full_like", "linspace", "log_softmax", "ones_like",
    "softmax", "sort", "split", "std", "topk", "unbind", "var", "zeros_like",
]


def _forward(op_name: str, vararg: bool = False, method: bool = False) -> Any:
    packet = getattr(ops.aten, op_name)
    return _C._AtenMethod(op_name, packet, None, vararg, method and _takes_only_self(packet))


for _name in _PLAIN:
    setattr(Tensor, _name, _forward(_name, method=True))
    globals()[_name] = _forward(_name)
for _name in _INPLACE:
    setattr(Tensor, _name, _forward(_name, method=True))
# t.flip(0, 1) as well as t.flip([0, 1]).
Tensor.flip = _forward("flip", True, method=True)
flip = _forward("flip")


def _as_method(f: Any, name: str | None = None) -> Any:
    """``f`` as a Tensor method (``self`` first; the stub's ``(self, *args, **kwargs)``), taking
    part in ``__torch_function__`` as ``Tensor.<name>``."""

    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        return f(self, *args, **kwargs)

    method.__doc__ = f.__doc__
    return _overridable(method, name or f.__name__)


def _finish(t: Any, requires_grad: bool) -> Any:
    if requires_grad:
        t.requires_grad_(True)
    return t


def _like(op: Any) -> Any:
    def like(
        input: Any, *, dtype: Any = None, layout: Any = None, device: Any = None, requires_grad: bool = False,
        memory_format: Any = None,
    ) -> Any:
        return _finish(op(input, dtype=dtype, layout=layout, device=device, memory_format=memory_format),
                       requires_grad)

    return like


zeros_like = _like(ops.aten.zeros_like.default)
ones_like = _like(ops.aten.ones_like.default)
empty_like = _like(ops.aten.empty_like.default)
zeros_like.__doc__ = "A tensor of zeros shaped like ``input`` (``aten::zeros_like``)."
ones_like.__doc__ = "A tensor of ones shaped like ``input`` (``aten::ones_like``)."
empty_like.__doc__ = "An uninitialised tensor shaped like ``input`` (``aten::empty_like``)."


def full_like(
    input: Any, fill_value: Any, *, dtype: Any = None, layout: Any = None, device: Any = None,
    requires_grad: bool = False, memory_format: Any = None,
) -> Any:
    """A tensor shaped like ``input`` filled with ``fill_value`` (``aten::full_like``)."""
    return _finish(ops.aten.full_like.default(input, fill_value, dtype=dtype, layout=layout, device=device,
                                              memory_format=memory_format), requires_grad)


def _sizes(size: tuple[Any, ...]) -> list[int]:
    if len(size) == 1 and isinstance(size[0], (list, tuple)):
        return [builtins.int(s) for s in size[0]]
    return [builtins.int(s) for s in size]


def _new(op: Any) -> Any:
    def new(self: Any, *size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False,
            layout: Any = None, pin_memory: bool = False) -> Any:
        return _finish(op(self, _sizes(size), dtype=dtype, layout=layout, device=device), requires_grad)

    return new


Tensor.new_zeros = _as_method(_new(ops.aten.new_zeros.default), "new_zeros")
Tensor.new_ones = _as_method(_new(ops.aten.new_ones.default), "new_ones")
Tensor.new_empty = _as_method(_new(ops.aten.new_empty.default), "new_empty")


def _new_full(self: Any, size: Any, fill_value: Any, *, dtype: Any = None, device: Any = None,
              requires_grad: bool = False, layout: Any = None, pin_memory: bool = False) -> Any:
    """``self.new_full(size, fill_value)``: ``aten::new_full``, the options defaulting to ``self``'s."""
    return _finish(ops.aten.new_full.default(self, _sizes((size,)), fill_value, dtype=dtype, layout=layout,
                                             device=device), requires_grad)


def _new_tensor(self: Any, data: Any, *, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Any:
    """``self.new_tensor(data)``: a copy of ``data`` with ``self``'s dtype and device unless given."""
    if isinstance(data, Tensor):
        data = data.tolist()
    t = _C.tensor(data, dtype=self.dtype if dtype is None else dtype,
                  device=str(self.device) if device is None else device)
    return _finish(t, requires_grad)


Tensor.new_full = _as_method(_new_full, "new_full")
Tensor.new_tensor = _as_method(_new_tensor, "new_tensor")


def eye(n: int, m: Any = None, *, dtype: Any = None, layout: Any = None, device: Any = None,
        requires_grad: bool = False) -> Any:
    """The ``n`` x ``n`` (or ``n`` x ``m``) identity (``aten::eye`` / ``aten::eye.m``)."""
    if m is None:
        t = ops.aten.eye.default(n, dtype=dtype, layout=layout, device=device)
    else:
        t = ops.aten.eye.m(n, m, dtype=dtype, layout=layout, device=device)
    return _finish(t, requires_grad)


def linspace(start: Any, end: Any, steps: int, *, dtype: Any = None, layout: Any = None, device: Any = None,
             requires_grad: bool = False) -> Any:
    """``steps`` evenly spaced values from ``start`` to ``end`` (``aten::linspace``)."""
    return _finish(ops.aten.linspace.default(start, end, steps, dtype=dtype, layout=layout, device=device),
                   requires_grad)


def _var_std(name: str) -> Any:
    correction_op = getattr(ops.aten, name).correction

    def f(input: Any, dim: Any = None, unbiased: Any = None, keepdim: bool = False, *,
          correction: Any = None) -> Any:
        # torch's binding: ``unbiased`` (bool) is ``correction`` 1 or 0; a bool in the ``dim``
        # position is ``unbiased`` (``t.var(False)``).
        if isinstance(dim, bool):
            dim, unbiased = None, dim
        if unbiased is not None:
            if correction is not None:
                raise RuntimeError(f"{name}: can't specify both unbiased and correction")
            correction = 1 if unbiased else 0
        if isinstance(dim, int):
            dim = [dim]
        return correction_op(input, dim, correction=correction, keepdim=keepdim)

    f.__name__ = name
    return f


var = _var_std("var")
std = _var_std("std")
Tensor.var = _as_method(var)
Tensor.std = _as_method(std)


def softmax(input: Any, dim: int, dtype: Any = None) -> Any:
    """``aten::softmax.int`` (``_softmax`` of the input, converted to ``dtype`` first if given)."""
    return ops.aten.softmax.int(input, dim, dtype)


def log_softmax(input: Any, dim: int, dtype: Any = None) -> Any:
    """``aten::log_softmax.int``."""
    return ops.aten.log_softmax.int(input, dim, dtype)


Tensor.softmax = _as_method(softmax)
Tensor.log_softmax = _as_method(log_softmax)


def split(tensor: Any, split_size_or_sections: Any, dim: int = 0) -> tuple[Any, ...]:
    """Pieces of ``split_size`` (an int) or of the given sizes (a list) along ``dim``: views."""
    if isinstance(split_size_or_sections, int):
        return tuple(ops.aten.split.Tensor(tensor, split_size_or_sections, dim))
    return tuple(ops.aten.split_with_sizes.default(tensor, list(split_size_or_sections), dim))


def chunk(input: Any, chunks: int, dim: int = 0) -> tuple[Any, ...]:
    """``chunks`` views of (nearly) equal size along ``dim`` (``aten::chunk``)."""
    return tuple(ops.aten.chunk.default(input, chunks, dim))


def unbind(input: Any, dim: int = 0) -> tuple[Any, ...]:
    """The slices along ``dim``, as views (``aten::unbind.int``)."""
    return tuple(ops.aten.unbind.int(input, dim))


class _TopkResult(NamedTuple):
    """``torch.return_types.topk``: ``(values, indices)``."""

    values: Any
    indices: Any


class _SortResult(NamedTuple):
    """``torch.return_types.sort``: ``(values, indices)``."""

    values: Any
    indices: Any


_TopkResult.__name__ = _TopkResult.__qualname__ = "topk"
_SortResult.__name__ = _SortResult.__qualname__ = "sort"


def topk(input: Any, k: int, dim: int = -1, largest: bool = True, sorted: bool = True) -> _TopkResult:
    """The ``k`` largest (or smallest) values along ``dim`` and their indices (``aten::topk``)."""
    values, indices = ops.aten.topk.default(input, k, dim, largest, sorted)
    return _TopkResult(values, indices)


def sort(input: Any, dim: int = -1, descending: bool = False, stable: bool = False) -> _SortResult:
    """Values sorted along ``dim`` and their indices (``aten::sort`` / ``aten::sort.stable``)."""
    if stable:
        values, indices = ops.aten.sort.stable(input, stable=True, dim=dim, descending=descending)
    else:
        values, indices = ops.aten.sort.default(input, dim, descending)
    return _SortResult(values, indices)


for _name, _f in [("chunk", chunk), ("unbind", unbind), ("topk", topk), ("sort", sort)]:
    setattr(Tensor, _name, _as_method(_f))
_split = split


def _split_method(self: Any, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
    return _split(self, *args, **kwargs)


_split_method.__doc__ = split.__doc__
# torch writes Tensor.split in Python (its overrides see plain tensors too).
Tensor.split = _overridable_python(_split_method, "split")


# The Python-defined functions take part in __torch_function__ as torch's (the Tensor methods
# above were made from the unwrapped functions, so each is its own ``func``).
for _name in ["zeros_like", "ones_like", "empty_like", "full_like", "var", "std", "softmax", "log_softmax",
              "chunk", "unbind", "topk", "sort"]:
    globals()[_name] = _overridable(globals()[_name], _name)
split = _overridable_python(split, "split")
