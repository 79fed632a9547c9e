"""Tensor methods and module-level functions that route through the ``aten`` operators.

Every method here is a call of ``opdispatch.ops.aten.<op>``, so it dispatches like any other
operator (CPU and Meta kernels, user kernels and fallbacks registered for ``aten`` ops apply).
The hot arithmetic operators (``+ - * / ** @``, unary ``-``/``abs``) are implemented natively
in ``_C.Tensor`` with the same dispatch.
"""

# Tensor methods are attached to the native class by assignment below.
# mypy: disable-error-code="method-assign"

from __future__ import annotations

import builtins
import weakref
from typing import Any

from . import _C
from ._ops import ops
from .overrides import _overridable, _takes_only_self

__all__ = [
    "abs", "add", "argmax", "argmin", "bmm", "cat", "cos", "div", "eq", "exp", "ge", "gt", "le", "log",
    "lt", "matmul", "max", "maximum", "mean", "min", "minimum", "mm", "mul", "ne", "neg", "permute", "pow",
    "reciprocal", "relu", "reshape", "rsub", "sigmoid", "sin", "sqrt", "squeeze", "stack", "sub", "sum", "tanh",
    "transpose", "unsqueeze", "where",
]

Tensor = _C.Tensor


# Methods whose size/dims argument may also be given as separate ints: t.view(2, 3).
_VARARG_SIZES = {"view", "reshape", "expand", "permute"}


# torch binds these (methods and functions) to their ``.Tensor`` overload only, a Python number
# becoming a wrapped-number tensor, so modes and subclasses see ``aten.add.Tensor`` for t.add(1).
_TENSOR_OVERLOAD_ONLY = {"add", "sub", "mul", "div"}


def _method(op_name: str, doc: str) -> Any:
    """``t.<op_name>(...)``: one native callable (``_C._AtenMethod``) that hands its arguments,
    ``self`` first, to ``ops.aten.<op_name>``, or to its ``.Tensor`` overload for the
    ``_TENSOR_OVERLOAD_ONLY`` ops when the operands are tensors or numbers (anything else goes to
    the packet, whose overload resolution raises torch's TypeError)."""
    packet = getattr(ops.aten, op_name)
    overload = packet.Tensor if op_name in _TENSOR_OVERLOAD_ONLY else None
    return _C._AtenMethod(op_name, packet, overload, op_name in _VARARG_SIZES, _takes_only_self(packet))


_METHODS = {
    # pointwise
    "add": "add", "sub": "sub", "mul": "mul", "div": "div", "pow": "pow", "neg": "neg", "exp": "exp",
    "log": "log", "sin": "sin", "cos": "cos", "sqrt": "sqrt", "relu": "relu", "sigmoid": "sigmoid",
    "tanh": "tanh", "abs": "abs", "maximum": "maximum", "minimum": "minimum", "reciprocal": "reciprocal",
    "eq": "eq", "ne": "ne", "lt": "lt", "le": "le", "gt": "gt", "ge": "ge",
    "add_": "add_", "sub_": "sub_", "mul_": "mul_", "div_": "div_",
    # reductions
    "sum": "sum", "mean": "mean", "max": "max", "min": "min", "argmax": "argmax", "argmin": "argmin",
    # linear algebra
    "matmul": "matmul", "mm": "mm", "bmm": "bmm", "dot": "dot",
    # views and copies
    "view": "view", "reshape": "reshape", "transpose": "transpose", "t": "t", "permute": "permute",
    "squeeze": "squeeze", "unsqueeze": "unsqueeze", "expand": "expand", "flatten": "flatten",
    "select": "select", "narrow": "narrow", "detach": "detach", "copy_": "copy_", "fill_": "fill_",
    "view_as": "view_as", "zero_": "zero_", "uniform_": "uniform_", "normal_": "normal_", "clone": "clone",
    "contiguous": "contiguous", "item": "item",
}

for _name, _op in _METHODS.items():
    setattr(Tensor, _name, _method(_op, f"``ops.aten.{_op}(self, ...)``"))


def _to(self: Any, *args: Any, **kwargs: Any) -> Any:
    """``t.to(dtype)`` / ``t.to(device)`` / ``t.to(device, dtype)``."""
    dtype = kwargs.pop("dtype", None)
    device = kwargs.pop("device", None)
    for a in args:
        if isinstance(a, _C.dtype):
            dtype = a
        elif isinstance(a, (str, _C.device)):
            device = a
        else:
            raise TypeError(f"to() received an invalid argument: {a!r}")
    if kwargs:
        raise TypeError(f"to() got unexpected keyword arguments {sorted(kwargs)}")
    if dtype is not None and not isinstance(dtype, _C.dtype):
        raise TypeError(f"to(): argument 'dtype' must be opdispatch.dtype, not {type(dtype).__name__}")
    if device is None:
        if dtype is None or dtype == self.dtype:
            return self
        return ops.aten.to.dtype(self, dtype)
    dev = str(device)
    if dev == "cuda" and self.device.type == "cuda":
        dev = f"cuda:{_C._cuda_current_device()}"  # "cuda" names the current device
    if (dtype is None or dtype == self.dtype) and dev == str(self.device):
        return self
    return ops.aten._to_copy(self, dtype=dtype, device=dev)


def _cuda(self: Any, device: Any = None) -> Any:
    """``t.cuda()``: ``aten::_to_copy`` to the CUDA device (without a driver: PyTorch's RuntimeError)."""
    return _to(self, "cuda" if device is None else (f"cuda:{device}" if isinstance(device, int) else device))


_INT64_MAX = 9223372036854775807


def _getitem(self: Any, idx: Any) -> Any:
    """Indexing by integers, slices, ``None`` and one ``...``. As torch: ``x[...]`` and a tuple
    index that selects all of ``x`` return ``aten::alias(x)``."""
    if idx is Ellipsis:
        return ops.aten.alias(self)
    out = _index(self, idx)
    return ops.aten.alias(out) if out is self else out


def _index(self: Any, idx: Any, skip_whole: bool = False) -> Any:
    """The view ``self[idx]`` selects (``select``/``slice``/``unsqueeze`` calls, one per index).
    A slice covering its whole dimension (start 0, stop at least the size, step 1) is skipped
    within a tuple, and also alone when ``skip_whole`` (assignment), as torch's
    ``applySlicing``/``set_item`` do; ``self`` itself comes back when nothing is left to apply."""
    single = not isinstance(idx, tuple)
    if single:
        idx = (idx,)
    if builtins.sum(1 for i in idx if i is Ellipsis) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    consumed = builtins.sum(1 for i in idx if i is not None and i is not Ellipsis)
    if consumed > self.dim():
        raise IndexError(f"too many indices for tensor of dimension {self.dim()}")
    out = self
    dim = 0  # the dimension of ``out`` the next index applies to (named in errors, as torch)
    for i in idx:
        if i is Ellipsis:
            dim += self.dim() - consumed
        elif i is None:
            out = ops.aten.unsqueeze(out, dim)
            dim += 1
        elif isinstance(i, bool):
            raise IndexError("boolean indices are not supported")
        elif isinstance(i, int):
            size = out.size()[dim]
            if i < -size or i >= size:
                raise _C._IndexError(
                    f"index {i} is out of bounds for dimension {dim} with size {size}"
                )
            out = ops.aten.select.int(out, dim, i)
        elif isinstance(i, slice):
            step = 1 if i.step is None else i.step
            if step <= 0:
                raise ValueError("step must be greater than zero")
            whole = (
                (skip_whole or not single)
                and i.start in (0, None)
                and (i.stop is None or i.stop >= out.size()[dim])
                and step == 1
            )
            if not whole:
                # torch's arguments: 0 and INT64_MAX stand for an absent start and stop.
                start = 0 if i.start is None else i.start
                stop = _INT64_MAX if i.stop is None else i.stop
                out = ops.aten.slice.Tensor(out, dim, start, stop, step)
            dim += 1
        else:
            raise IndexError(f"unsupported index type {type(i).__name__}")
    return out


def _setitem(self: Any, idx: Any, value: Any) -> None:
    """``self[idx] = value``: the indexed view, then ``copy_`` of ``value`` into it (torch's
    ``copy_to``: ``fill_`` for a 0-dimensional value into a larger view, ``value`` broadcast
    otherwise). A number becomes a 0-dimensional tensor of ``self``'s dtype. The writes are
    in-place operations, so autograd records them (``CopySlices`` on ``self``)."""
    if isinstance(value, Tensor):
        src = value
    elif isinstance(value, (builtins.bool, builtins.int, builtins.float, builtins.complex)):
        src = ops.aten.scalar_tensor(value, dtype=self.dtype, device=self.device)
    else:
        raise TypeError(
            "can't assign a " + type(value).__name__ + " to a " + _TYPE_NAMES.get(str(self.dtype), "Tensor")
        )
    dst = self if idx is Ellipsis else _index(self, idx, skip_whole=True)
    if tuple(dst.shape) == tuple(src.shape):
        ops.aten.copy_(dst, src)
        return
    if src.dim() == 0 and str(src.device) == "cpu":
        ops.aten.fill_.Tensor(dst, src)
        return
    # Leading 1s of the value are dropped (torch's slicePrefix1sSize), then it broadcasts.
    sizes = list(src.shape)
    while sizes and sizes[0] == 1:
        sizes.pop(0)
    if len(sizes) != src.dim():
        src = ops.aten.view(src, sizes)
    if tuple(src.shape) != tuple(dst.shape):
        src = ops.aten.expand(src, list(dst.shape))
    ops.aten.copy_(dst, src)


_TYPE_NAMES = {
    "opdispatch.float32": "torch.FloatTensor", "opdispatch.float64": "torch.DoubleTensor",
    "opdispatch.int64": "torch.LongTensor", "opdispatch.int32": "torch.IntTensor",
    "opdispatch.bool": "torch.BoolTensor",
}


def _T(self: Any) -> Any:
    """``t.T``: the dimensions reversed (``aten::numpy_T``)."""
    n = self.dim()
    if n not in (0, 2):
        _warn_once(
            "The use of `x.T` on tensors of dimension other than 2 to reverse their shape is deprecated "
            "and it will throw an error in a future release. Consider `x.mT` to transpose batches of "
            "matrices or `x.permute(*torch.arange(x.ndim - 1, -1, -1))` to reverse the dimensions of a tensor."
        )
    if n == 0:
        _warn_once("Tensor.T is deprecated on 0-D tensors. This function is the identity in these cases.")
    return ops.aten.numpy_T(self)


def _mT(self: Any) -> Any:
    """``t.mT``: the last two dimensions swapped (``aten::mT``)."""
    return ops.aten.mT(self)


_WARNED: set[str] = set()


def _warn_once(msg: str) -> None:
    """torch's ``TORCH_WARN_ONCE``: a UserWarning the first time in the process."""
    if msg not in _WARNED:
        _WARNED.add(msg)
        import warnings

        warnings.warn(msg, UserWarning, stacklevel=3)


def _float(self: Any) -> float:
    return float(self.item())


def _int(self: Any) -> int:
    return int(self.item())


def _bool(self: Any) -> bool:
    if self.numel() != 1:
        raise RuntimeError("Boolean value of Tensor with more than one value is ambiguous")
    return bool(self.item())


def _array(self: Any, dtype: Any = None, copy: Any = None) -> Any:
    import numpy as np  # numpy is optional: only needed for this conversion

    a = np.array(self.tolist(), dtype=_NUMPY_DTYPES.get(str(self.dtype)))
    return a if dtype is None else a.astype(dtype)


_NUMPY_DTYPES = {
    "opdispatch.bool": "bool", "opdispatch.uint8": "uint8", "opdispatch.int8": "int8",
    "opdispatch.int16": "int16", "opdispatch.int32": "int32", "opdispatch.int64": "int64",
    "opdispatch.float16": "float16", "opdispatch.float32": "float32", "opdispatch.float64": "float64",
    "opdispatch.complex64": "complex64",
}


def _numpy(self: Any) -> Any:
    """A numpy copy of the tensor's values (numpy must be installed)."""
    return _array(self)


def from_numpy(a: Any) -> Any:
    """A tensor with the values of numpy array ``a`` (copied)."""
    from . import _C as C

    dt = {v: k for k, v in _NUMPY_DTYPES.items()}.get(str(a.dtype))
    if dt is None:
        raise TypeError(f"can't convert np.ndarray of type {a.dtype}")
    return C.tensor(a.tolist(), dtype=getattr(C, dt.split(".")[1]))


def _tensor_init(self: Any, *args: Any, **kwargs: Any) -> None:
    """Records a Python-created tensor in its impl's PyObject slot. A subclass ``__init__``
    that skips ``super().__init__()`` is covered too: the object is recorded the first time
    it is passed to an operator."""
    _C._tensor_init(self)


def _storage_init(self: Any, *args: Any, **kwargs: Any) -> None:
    _C._storage_init(self)


def _as_subclass(self: Any, cls: type) -> Any:
    """A ``cls`` instance (a Tensor subclass) sharing this tensor's storage; neither
    ``cls.__new__`` nor ``cls.__init__`` runs (as in torch)."""
    return _C._as_subclass(self, cls)


# Objects created from Python (Tensor(...), subclasses, UntypedStorage(n)) are recorded in their
# impl's PyObject slot when constructed, exactly like objects the runtime creates.
Tensor.__init__ = _tensor_init
Tensor.as_subclass = _as_subclass
Tensor._make_wrapper_subclass = staticmethod(_C._make_wrapper_subclass)
_C.UntypedStorage.__init__ = _storage_init
Tensor.to = _overridable(_to, "to")
Tensor.cuda = _overridable(_cuda, "cuda")
Tensor.cpu = _overridable(lambda self: _to(self, "cpu"), "cpu")
Tensor.float = _overridable(lambda self: _to(self, _C.float32), "float")
Tensor.double = _overridable(lambda self: _to(self, _C.float64), "double")
Tensor.long = _overridable(lambda self: _to(self, _C.int64), "long")
Tensor.int = _overridable(lambda self: _to(self, _C.int32), "int")
Tensor.bool = _overridable(lambda self: _to(self, _C.bool), "bool")
Tensor.__getitem__ = _overridable(_getitem, "__getitem__")
Tensor.__setitem__ = _overridable(_setitem, "__setitem__")


def _overridable_property(name: str, fget: Any) -> property:
    """A property whose reads take part in ``__torch_function__`` with ``Tensor.<name>.__get__``
    as ``func``, as torch's ``t.T``."""

    def get(self: Any) -> Any:
        handled = _C._torch_function_args(getattr(Tensor, name).__get__, (self,), None)
        if handled is not _C._TORCH_FUNCTION_NOT_HANDLED:
            return handled
        return fget(self)

    get.__doc__ = fget.__doc__
    return property(get)


setattr(Tensor, "T", _overridable_property("T", _T))  # noqa: B010 (the stub declares a property)
setattr(Tensor, "mT", _overridable_property("mT", _mT))  # noqa: B010
Tensor.__float__ = _float
Tensor.__int__ = _int
Tensor.__bool__ = _bool
Tensor.__array__ = _array
Tensor.numpy = _numpy
# torch's comparison operators: ``==``/``!=`` are their own methods, ``<`` and the others are
# the methods ``lt``/``le``/``gt``/``ge`` themselves (what __torch_function__ sees as ``func``).
Tensor.__eq__ = _C._AtenMethod("__eq__", ops.aten.eq, None, False)
Tensor.__ne__ = Tensor.ne
Tensor.__lt__ = Tensor.lt
Tensor.__le__ = Tensor.le
Tensor.__gt__ = Tensor.gt
Tensor.__ge__ = Tensor.ge
# torch's name for ``s / t`` (``__rtruediv__`` is the same method), what overrides see as func.
setattr(Tensor, "__rdiv__", _C._AtenMethod("__rdiv__", getattr(Tensor, "__rtruediv__")))  # noqa: B009,B010

def _inplace_operator(method: str) -> Any:
    """``a op= b``: the in-place method (``a`` itself back); a ``TypeError`` from the call
    becomes ``NotImplemented``, as torch's operators."""

    def op(self: Any, other: Any) -> Any:
        try:
            return getattr(self, method)(other)
        except TypeError:
            return NotImplemented

    op.__name__ = f"__i{method.rstrip('_')}__"
    return op


Tensor.__iadd__ = _inplace_operator("add_")
Tensor.__isub__ = _inplace_operator("sub_")
Tensor.__imul__ = _inplace_operator("mul_")
Tensor.__itruediv__ = _inplace_operator("div_")
# Tensors stay hashable by identity (as in PyTorch) although __eq__ is elementwise.
Tensor.__hash__ = object.__hash__


def _fn(op_name: str) -> Any:
    """``opdispatch.<op_name>(...)``: the same native forwarding as the methods."""
    packet = getattr(ops.aten, op_name)
    overload = packet.Tensor if op_name in _TENSOR_OVERLOAD_ONLY else None
    return _C._AtenMethod(op_name, packet, overload, False)


add = _fn("add")
sub = _fn("sub")
mul = _fn("mul")
div = _fn("div")
pow = _fn("pow")  # noqa: A001
neg = _fn("neg")
abs = _fn("abs")  # noqa: A001
exp = _fn("exp")
log = _fn("log")
sin = _fn("sin")
cos = _fn("cos")
sqrt = _fn("sqrt")
relu = _fn("relu")
sigmoid = _fn("sigmoid")
tanh = _fn("tanh")
reciprocal = _fn("reciprocal")
rsub = _fn("rsub")
maximum = _fn("maximum")
minimum = _fn("minimum")
eq = _fn("eq")
ne = _fn("ne")
lt = _fn("lt")
le = _fn("le")
gt = _fn("gt")
ge = _fn("ge")
where = _fn("where")
sum = _fn("sum")  # noqa: A001
mean = _fn("mean")
max = _fn("max")  # noqa: A001
min = _fn("min")  # noqa: A001
argmax = _fn("argmax")
argmin = _fn("argmin")
matmul = _fn("matmul")
mm = _fn("mm")
bmm = _fn("bmm")
reshape = _fn("reshape")
transpose = _fn("transpose")
permute = _fn("permute")
squeeze = _fn("squeeze")
unsqueeze = _fn("unsqueeze")
cat = _fn("cat")
stack = _fn("stack")


# ---- autograd (the engine is opdispatch-autograd; see opdispatch.autograd) ----


def _backward(
    self: Any, gradient: Any = None, retain_graph: Any = None, create_graph: bool = False, inputs: Any = None
) -> None:
    """Computes the gradient of this tensor with respect to the graph leaves."""
    if inputs is not None:
        from .autograd import backward

        backward(self, gradient, retain_graph, create_graph, inputs)
        return
    _C._run_backward((self,), (gradient,), retain_graph, create_graph, None)


def _detach_(self: Any) -> Any:
    _C._detach_(self)
    return self


class RemovableHandle:
    """What ``register_hook`` returns: ``remove()`` unregisters the hook."""

    def __init__(self, tensor: Any, hook_id: int) -> None:
        self._tensor = weakref.ref(tensor)
        self.id = hook_id

    def remove(self) -> None:
        t = self._tensor()
        if t is not None:
            t._remove_hook(self.id)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


def _register_hook(self: Any, hook: Any) -> RemovableHandle:
    """Registers ``hook(grad) -> Tensor | None``, run each time a gradient for this tensor is
    computed (a returned tensor replaces the gradient)."""
    return RemovableHandle(self, self._register_hook(hook))


Tensor.backward = _overridable(_backward, "backward")
Tensor.detach_ = _overridable(_detach_, "detach_")
Tensor.register_hook = _overridable(_register_hook, "register_hook")
