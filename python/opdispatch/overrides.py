"""The ``__torch_function__`` protocol (torch's ``torch.overrides``).

Before a Tensor method, operator, module function or ``opdispatch.ops`` call binds its arguments
it asks whether a ``TorchFunctionMode`` is active or an argument's class overrides
``__torch_function__`` (the check is native and costs nothing on plain tensors). If so, the call
goes to the innermost mode first (popped while its handler runs, so ``func(*args, **kwargs)``
inside it runs below it), then to each overloaded argument's ``__torch_function__`` (subclasses
before superclasses, otherwise left to right) until one returns something other than
``NotImplemented``. ``Tensor.__torch_function__`` itself runs ``func`` with subclass handling
off and turns plain results back into the caller's subclass, so a ``Tensor`` subclass keeps its
type through every operation.

Properties (``t.shape``, ``t.dtype``, ``t.grad``) are read natively and do not take part, except
``t.T`` and ``t.mT``.
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from collections.abc import Callable, Iterator
from typing import Any

from . import _C

__all__ = [
    "BaseTorchFunctionMode",
    "TorchFunctionMode",
    "get_default_nowrap_functions",
    "handle_torch_function",
    "has_torch_function",
    "has_torch_function_unary",
    "has_torch_function_variadic",
    "is_tensor_like",
]

has_torch_function = _C._has_torch_function
has_torch_function_unary = _C._has_torch_function_unary
has_torch_function_variadic = _C._has_torch_function_variadic


class TorchFunctionMode:
    """A context manager whose ``__torch_function__(func, types, args, kwargs)`` sees every
    overridable call made inside it (Tensor methods and operators, module functions, operator
    calls through ``opdispatch.ops``)."""

    inner: TorchFunctionMode

    def __init__(self) -> None:
        pass

    def __torch_function__(
        self, func: Any, types: tuple[type, ...], args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        raise NotImplementedError

    def __enter__(self) -> Any:
        _push_mode(self)
        return self

    def __exit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        _pop_mode()

    @classmethod
    def push(cls, *args: Any, **kwargs: Any) -> Any:
        warnings.warn(
            "`Mode.push()` is no longer necessary and can be replaced with just `with Mode()`", stacklevel=2
        )
        return cls(*args, **kwargs)


class BaseTorchFunctionMode(TorchFunctionMode):
    """A mode that runs every function unchanged (a base for modes that only observe)."""

    def __torch_function__(
        self, func: Any, types: tuple[type, ...], args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        return func(*args, **(kwargs or {}))


def _push_mode(mode: TorchFunctionMode) -> None:
    _C._push_on_torch_function_stack(mode)


def _pop_mode() -> TorchFunctionMode:
    mode: TorchFunctionMode = _C._pop_torch_function_stack()
    return mode


def _get_current_function_mode() -> TorchFunctionMode | None:
    n = _C._len_torch_function_stack()
    return _C._get_function_stack_at(n - 1) if n > 0 else None


def _get_current_function_mode_stack() -> list[TorchFunctionMode]:
    return [_C._get_function_stack_at(i) for i in range(_C._len_torch_function_stack())]


@contextlib.contextmanager
def _pop_mode_temporarily() -> Iterator[TorchFunctionMode]:
    """The innermost mode, off the stack for the block and back on it afterwards (also when the
    block raises)."""
    old = _pop_mode()
    try:
        yield old
    finally:
        _push_mode(old)


@contextlib.contextmanager
def _no_torch_function_mode() -> Iterator[None]:
    """No TorchFunctionMode is active inside the block (the stack comes back afterwards)."""
    stack = []
    try:
        while _C._len_torch_function_stack() > 0:
            stack.append(_pop_mode())
        yield
    finally:
        for m in reversed(stack):
            _push_mode(m)


def is_tensor_like(inp: Any) -> bool:
    """Whether ``inp`` is a Tensor or behaves as one (its class defines ``__torch_function__``)."""
    return type(inp) is _C.Tensor or hasattr(inp, "__torch_function__")


@functools.lru_cache(None)
def get_default_nowrap_functions() -> set[Callable[..., Any]]:
    """The functions whose results ``Tensor.__torch_function__`` does not turn into the
    subclass (the accessors of ``.grad`` and ``._base``)."""
    T = _C.Tensor
    return {getattr(T, n).__get__ for n in ("_base", "grad", "_grad") if n in T.__dict__}


def _get_overloaded_args(relevant_args: Any) -> list[Any]:
    """torch's Python-level collection: every argument whose class defines
    ``__torch_function__`` (plain tensors included), one per type, subclasses first. Empty
    while subclass handling is off."""
    if not _C._is_torch_function_enabled():
        return []
    out: list[Any] = []
    seen: set[type] = set()
    for arg in relevant_args:
        t = type(arg)
        tf = getattr(t, "__torch_function__", None)
        if t in seen or tf is None or tf is _C._disabled_torch_function_impl:
            continue
        seen.add(t)
        index = len(out)
        for i, old in enumerate(out):
            if issubclass(t, type(old)):
                index = i
                break
        out.insert(index, arg)
    return out


def _call_overrides(func: Any, overloaded: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The mode first, then each overloaded argument; ``NotImplemented`` when all decline
    (``mode`` is returned beside it for the error)."""
    types = tuple(type(a) for a in overloaded)
    mode = None
    if _C._is_torch_function_mode_enabled():
        with _pop_mode_temporarily() as mode:
            result = mode.__torch_function__(func, types, args, kwargs)
        if result is not NotImplemented:
            return result, mode
    for arg in overloaded:
        result = arg.__torch_function__(func, types, args, kwargs)
        if result is not NotImplemented:
            return result, mode
    return NotImplemented, mode


def handle_torch_function(public_api: Callable[..., Any], relevant_args: Any, *args: Any, **kwargs: Any) -> Any:
    """Calls the overrides of ``public_api`` (a Python function whose ``relevant_args``
    ``has_torch_function`` reported) and returns the first result that is not
    ``NotImplemented``; raises torch's ``TypeError`` when all decline."""
    overloaded = _get_overloaded_args(relevant_args)
    result, mode = _call_overrides(public_api, overloaded, args, kwargs)
    if result is not NotImplemented:
        return result
    # The native operators torch writes in Python (``Tensor.__rsub__``) live in torch._tensor.
    module = getattr(public_api, "__module__", None) or "torch._tensor"
    func_name = f"{module}.{public_api.__name__}"
    msg = (
        f"no implementation found for '{func_name}' on types that implement "
        f"__torch_function__: {[type(arg) for arg in overloaded]}"
    )
    if _C._is_torch_function_mode_enabled():
        msg += f" nor in mode {_get_current_function_mode()}"
    raise TypeError(msg)


def _public_name(func: Any) -> str:
    """How torch names a native entry in its errors: ``torch.Tensor.sum``, ``torch.add``,
    ``torch.opsaten.add`` (sic: torch joins ``torch.ops`` and the namespace without a dot)."""
    from ._ops import OpOverload, OpOverloadPacket

    qualified = None
    if isinstance(func, OpOverload):
        qualified = func._schema_name
    elif isinstance(func, OpOverloadPacket):
        qualified = func._qualified_op_name
    if qualified is not None:
        ns, op = qualified.split("::", 1)
        return f"torch.ops{ns}.{op}"
    name = getattr(func, "__name__", repr(func))
    if _C.Tensor.__dict__.get(name) is func:
        return f"torch.Tensor.{name}"
    return f"torch.{name}"


def _handle_torch_function(
    func: Any, overloaded: tuple[Any, ...], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """The native entries' handler (``overloaded`` collected natively: subclasses only, as
    torch's C++ bindings)."""
    result, mode = _call_overrides(func, overloaded, args, kwargs)
    if result is not NotImplemented:
        return result
    lines = []
    if mode is not None:
        lines.append(f"  - mode object {mode!r}")
    lines.extend(f"  - tensor subclass {type(a)!r}" for a in overloaded)
    raise TypeError(
        f"Multiple dispatch failed for '{_public_name(func)}'; all __torch_function__ handlers returned "
        "NotImplemented:\n\n" + "\n".join(lines) + "\n\nFor more information, try re-running with "
        "TORCH_LOGS=not_implemented"
    )


def _handle_python_level(func: Any, args: tuple[Any, ...]) -> Any:
    """For the native operators torch writes in Python (``__rsub__``, ``__rdiv__``, ``__pow__``,
    ``__rpow__``): its ``handle_torch_function`` with the arguments as relevant."""
    return handle_torch_function(func, args, *args)


def _overridable(fn: Callable[..., Any], name: str) -> Any:
    """``fn`` (a Python-defined Tensor method or function) taking part as torch's native ones
    do, as ``name``: a ``_C._AtenMethod`` forwarding to ``fn``, which first offers the call to a
    mode or an overriding argument (one level into lists) with itself as ``func``. Native, so
    the plain call costs no extra Python frame."""
    return _C._AtenMethod(name, fn, None, False)


def _takes_only_self(packet: Any) -> bool:
    """Whether every signature of the Tensor method over ``packet`` is ``(self)`` (``out=``
    variants are not methods): torch's binding then offers ``__torch_function__`` with ``self``
    as the overloaded argument, a plain tensor included."""
    names = [n for n in packet.overloads() if n != "out" and not n.endswith("_out")]
    for n in names:
        args = getattr(packet, n)._schema.arguments
        if any(a.name == "out" for a in args) or len(args) != 1:
            return False
    return bool(names)


def _overridable_python(fn: Callable[..., Any], name: str) -> Callable[..., Any]:
    """For the methods torch writes in Python (``split``, ``unbind``): its
    ``handle_torch_function`` with all arguments relevant (plain tensors too), named
    ``torch._tensor.<name>`` in its error."""

    @functools.wraps(fn)
    def method(*args: Any, **kwargs: Any) -> Any:
        if _C._has_torch_function(args):
            return handle_torch_function(method, args, *args, **kwargs)
        return fn(*args, **kwargs)

    method.__name__ = method.__qualname__ = name
    method.__module__ = "torch._tensor"
    return method




def _is_nowrap(func: Any) -> bool:
    try:
        return func in get_default_nowrap_functions()
    except TypeError:  # an unhashable func
        return False


def _convert(ret: Any, cls: type) -> Any:
    if cls is _C.Tensor:
        return ret
    if isinstance(ret, _C.Tensor) and not isinstance(ret, cls):
        ret = ret.as_subclass(cls)
    if isinstance(ret, (tuple, list)):
        # type(ret)(...) keeps named tuples' type (their fields are positional).
        items = [_convert(r, cls) for r in ret]
        ret = type(ret)(*items) if hasattr(ret, "_fields") else type(ret)(items)
    return ret


def _tensor_torch_function(
    cls: type, func: Any, types: tuple[type, ...], args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
) -> Any:
    """This method is the default ``__torch_function__`` of every Tensor subclass: it runs
    ``func`` and returns its results as ``cls`` instances (a subclass that does not accept all
    ``types`` returns ``NotImplemented``)."""
    if kwargs is None:
        kwargs = {}
    if not all(issubclass(cls, t) for t in types):
        return NotImplemented
    with _C.DisableTorchFunctionSubclass():
        ret = func(*args, **kwargs)
        if _is_nowrap(func):
            return ret
        return _convert(ret, cls)


_C.Tensor.__torch_function__ = classmethod(_tensor_torch_function)  # type: ignore[assignment]
# The native entries run this default themselves while a subclass inherits it unchanged (the
# identical classmethod object), so it costs no Python frame; `_convert` serves the results
# they do not convert natively (named tuples).
_C._set_torch_function_handler(
    _handle_torch_function, _handle_python_level, _C.Tensor.__dict__["__torch_function__"], _convert
)
