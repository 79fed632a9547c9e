"""``opdispatch.library``: the ``torch.library`` registration front end.

A :class:`Library` owns its registrations; they are removed when it is destroyed
(``_destroy()``) or garbage collected.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import Any, cast

from . import _C
from ._ops import ops as _ops_root

__all__ = ["Library", "fallthrough_kernel", "impl", "define", "_scoped_library"]

# "<ns>/<op[.overload]>/<dispatch key>" of every live Python impl (PyTorch's duplicate guard).
_impls: set[str] = set()
# "ns::name[.overload]" of every live Python def.
_defs: set[str] = set()
_reserved_namespaces = ["prim"]


def fallthrough_kernel() -> None:
    """Marker kernel: registering it makes the dispatcher skip the key."""
    raise NotImplementedError("fallthrough_kernel() should never be called.")


def _del_library(
    captured_impls: set[str],
    op_impls: set[str],
    captured_defs: set[str],
    op_defs: set[str],
    m: Any,
    handles: list[Any] | None = None,
) -> None:
    captured_impls -= op_impls
    captured_defs -= op_defs
    for h in reversed(handles or []):
        h.destroy()
    if handles:
        handles.clear()
    if m is not None:
        m.reset()


class Library:
    """A registration block: ``Library(ns, "DEF" | "IMPL" | "FRAGMENT", dispatch_key="")``."""

    def __init__(self, ns: str, kind: str, dispatch_key: str = "") -> None:
        if kind not in ("IMPL", "DEF", "FRAGMENT"):
            raise ValueError("Unsupported kind: ", kind)
        if ns in _reserved_namespaces and (kind == "DEF" or kind == "FRAGMENT"):
            raise ValueError(ns, " is a reserved namespace. Please try creating a library with another name.")
        # The caller's frame fields (traceback.extract_stack also reads source lines).
        caller = sys._getframe(1)
        filename, lineno = caller.f_code.co_filename, caller.f_lineno
        self.m: Any = _C._dispatch_library(kind, ns, dispatch_key, filename, cast(int, lineno))
        self.ns = ns
        self._op_defs: set[str] = set()
        self._op_impls: set[str] = set()
        self._registration_handles: list[Any] = []
        self.kind = kind
        self.dispatch_key = dispatch_key

    def __del__(self, _del_library: Any = _del_library, _impls: set[str] = _impls, _defs: set[str] = _defs) -> None:
        # Collected without `_destroy()`: its registrations go with it (torch uses a
        # weakref.finalize; setting one up was a tenth of the cost of defining a custom op).
        # The default arguments keep what it needs reachable while the interpreter shuts down.
        if "_registration_handles" in vars(self):
            _del_library(_impls, self._op_impls, _defs, self._op_defs, self.m, self._registration_handles)

    def __repr__(self) -> str:
        return f"Library(kind={self.kind}, ns={self.ns}, dispatch_key={self.dispatch_key})>"

    def define(self, schema: str, alias_analysis: str = "", *, tags: Any = ()) -> str:
        """Defines an operator from its schema string; returns the name as written."""
        if alias_analysis not in ["", "FROM_SCHEMA", "CONSERVATIVE"]:
            raise RuntimeError(f"Invalid alias_analysis type {alias_analysis}")
        assert self.m is not None
        name = schema.split("(")[0]
        packet_name = name.split(".")[0] if "." in name else name
        # The ops root is imported with this module: a function-level `from ._ops import ops`
        # costs a failed `__path__` lookup (an AttributeError) on every call.
        ns_obj = vars(_ops_root).get(self.ns)
        if type(tags) is not tuple:  # (isinstance against the Tag enum is the slow check)
            if isinstance(tags, _C.Tag):
                tags = (tags,)
            elif not isinstance(tags, str):
                tags = tuple(tags)
        _C._validate_tagged_schema(schema, tags)  # the checks of Tag.out and Tag.inplace
        result: str = self.m.define(schema, alias_analysis, tags)
        if ns_obj is not None and packet_name in vars(ns_obj):
            delattr(ns_obj, packet_name)
        qualname = self.ns + "::" + name.split("::")[-1]
        self._op_defs.add(qualname)
        _defs.add(qualname)
        return result

    def impl(
        self,
        op_name: Any,
        fn: Callable[..., Any],
        dispatch_key: str = "",
        *,
        with_keyset: bool = False,
        allow_override: bool = False,
    ) -> None:
        """Registers ``fn`` as the kernel of ``op_name`` for ``dispatch_key``."""
        if not callable(fn):
            raise TypeError(f"Input function is required to be a callable but found type {type(fn)}")
        if dispatch_key == "":
            dispatch_key = self.dispatch_key
        if isinstance(op_name, str):
            name = op_name
        elif hasattr(op_name, "_schema") and hasattr(op_name, "_overloadname"):
            name = op_name._schema_name
            if op_name._overloadname and op_name._overloadname != "default":
                name = name + "." + op_name._overloadname
        else:
            raise RuntimeError("impl should be passed either a name or an OpOverload object as the first argument")
        key = self.ns + "/" + name.split("::")[-1] + "/" + dispatch_key
        if key in _impls and not allow_override:
            raise RuntimeError(
                "This is not allowed since there's already a kernel registered from python overriding {}"
                "'s behavior for {} dispatch key and {} namespace.".format(name.split("::")[-1], dispatch_key, self.ns)
            )
        if dispatch_key == "Meta":
            qualified = name if "::" in name else self.ns + "::" + name
            if _C._dispatch_has_kernel(qualified) and _C._dispatch_has_kernel_for_dispatch_key(
                qualified, "CompositeImplicitAutograd"
            ):
                raise RuntimeError(
                    f"We should not register a meta kernel directly to the operator '{name}',"
                    " because it has a CompositeImplicitAutograd kernel in core."
                    " Instead we should let the operator decompose, and ensure that we have meta kernels"
                    " for the base ops that it decomposes into."
                )
        assert self.m is not None
        self.m.impl(name, dispatch_key if dispatch_key != "" else "CompositeImplicitAutograd", fn, with_keyset)
        _impls.add(key)
        self._op_impls.add(key)

    def _impl_custom_op_inplace(self, op_name: str, mutated: list[int]) -> None:
        """Registers a mutating custom op's native ADInplaceOrView kernel: it bumps the version
        counters of the arguments at positions ``mutated`` once per call."""
        key = self.ns + "/" + op_name + "/ADInplaceOrView"
        if key in _impls:
            raise RuntimeError(
                "This is not allowed since there's already a kernel registered from python overriding {}"
                "'s behavior for {} dispatch key and {} namespace.".format(op_name, "ADInplaceOrView", self.ns)
            )
        assert self.m is not None
        self.m.impl_custom_op_inplace(op_name, mutated)
        _impls.add(key)
        self._op_impls.add(key)

    def fallback(self, fn: Callable[..., Any], dispatch_key: str = "", *, with_keyset: bool = False) -> None:
        """Registers a global fallback (needs ``Library("_", "IMPL", key)``)."""
        if dispatch_key == "":
            dispatch_key = self.dispatch_key
        if self.ns != "_":
            raise RuntimeError(
                "Fallback can only be registered using library fragment on the global namespace "
                f'"_" but it is {self.ns}'
            )
        assert dispatch_key != ""
        assert self.m is not None
        self.m.fallback(dispatch_key, fn, with_keyset)

    def _register_torch_dispatch_rule(self, op_name: str, torch_dispatch_class: Any, fn: Callable[..., Any]) -> None:
        """What ``op_name`` does for ``torch_dispatch_class`` (a mode or Tensor subclass): the
        Python-key fallback calls ``fn(mode_or_cls, func, types, args, kwargs)`` instead of
        its ``__torch_dispatch__``. Removed with this library."""
        qualname = f"{self.ns}::{op_name}"
        rules = _C._torch_dispatch_rules.setdefault(qualname, {})
        if rules.get(torch_dispatch_class) is not None:
            raise RuntimeError(
                f"{torch_dispatch_class} already has a `__torch_dispatch__` rule registered for {qualname}"
            )
        rules[torch_dispatch_class] = fn
        self._registration_handles.append(_RuleHandle(qualname, torch_dispatch_class))
    def _register_fake(
        self, op_name: str, fn: Callable[..., Any], _stacklevel: int = 1, *, allow_override: bool = False
    ) -> None:
        """Registers ``fn`` as the fake impl of ``op_name`` (run as its Meta kernel)."""
        # The module-level names are bound at the end of this module (a function-level
        # `from ._library import ...` runs importlib's fromlist handling on every call).
        fake_impl, utils = _fake_impl, _library_utils
        source = utils.get_source(_stacklevel + 1)
        qualname = op_name if "::" in op_name else f"{self.ns}::{op_name}"
        handle = fake_impl.holder_for(qualname).register(fn, source, self, allow_override=allow_override)
        self._registration_handles.append(handle)

    def _destroy(self) -> None:
        # The same teardown as a collection's, now.
        m, self.m = self.m, None
        _del_library(_impls, self._op_impls, _defs, self._op_defs, m, self._registration_handles)
        for name in self._op_defs:
            ns, name_with_overload = name.split("::")
            packet = name_with_overload.split(".")[0]
            ns_obj = vars(_ops_root).get(ns)
            if ns_obj is not None and packet in vars(ns_obj):
                delattr(ns_obj, packet)
        if self._op_defs:
            _C._clear_overload_cache()
        # Forget the names: a library that defined them again (a redefined custom op) owns
        # the same keys, and this one's later collection must not remove them.
        self._op_impls.clear()
        self._op_defs.clear()


class _RuleHandle:
    """Removes one ``register_torch_dispatch`` rule."""

    def __init__(self, qualname: str, cls: Any) -> None:
        self.qualname = qualname
        self.cls = cls

    def destroy(self) -> None:
        rules = _C._torch_dispatch_rules.get(self.qualname)
        if rules is not None:
            rules.pop(self.cls, None)
            if not rules:
                del _C._torch_dispatch_rules[self.qualname]


@contextlib.contextmanager
def _scoped_library(*args: Any, **kwargs: Any) -> Iterator[Library]:
    """A Library destroyed when the ``with`` block ends."""
    lib = Library(*args, **kwargs)
    try:
        yield lib
    finally:
        lib._destroy()


_keep_alive: list[Library] = []


def define(qualname: str, schema: str, *, lib: Library | None = None, tags: Any = ()) -> None:
    """``define("ns::name", "(Tensor x) -> Tensor")``: defines an operator in a fragment."""
    if not isinstance(qualname, str):
        raise ValueError(f"define(qualname, schema): expected qualname to be instance of str, got {type(qualname)}")
    parts = qualname.split("::")
    if len(parts) != 2:
        raise ValueError(
            f'Expected `qualname` to be of the form "namespace::name", but got {qualname}. '
            "The qualname passed to the torch.library APIs must consist of a namespace and a name, e.g. aten::sin"
        )
    ns, name = parts
    if lib is None:
        lib = Library(ns, "FRAGMENT")
        _keep_alive.append(lib)
    lib.define(name + schema, "", tags=tags)


_DEVICE_TYPE_TO_KEY = {"cpu": "CPU", "cuda": "CUDA", "meta": "Meta", "default": "CompositeExplicitAutograd"}


def _key_for_device_type(device_type: str) -> str:
    key = _DEVICE_TYPE_TO_KEY.get(device_type)
    if key is None:
        _C.device(device_type)  # raises torch's "Expected one of cpu, cuda, ... device type" error
        raise RuntimeError(f"opdispatch has no kernels for device type {device_type}")
    return key


def impl(qualname_or_lib: Any, types_or_name: Any, func_or_key: Any = None, *, lib: Library | None = None) -> Any:
    """Registers a kernel. Two forms, as in ``torch.library``:

    - ``@impl(lib, "op", "CPU")`` (a Library, an op name, a dispatch key): a decorator that
      registers the function in ``lib``;
    - ``impl("ns::op", "cpu", func)`` / ``@impl("ns::op", ["cpu", "meta"])``: registers ``func``
      for device types (``"cpu"``, ``"cuda"``, ``"meta"``, ``"default"`` for every device) or
      dispatch key names, in ``lib`` or in a fragment library kept alive for the process.
    """
    if isinstance(qualname_or_lib, Library):
        target, name, key = qualname_or_lib, types_or_name, func_or_key or ""

        def register_in_lib(f: Callable[..., Any]) -> Callable[..., Any]:
            target.impl(name, f, key)
            return f

        return register_in_lib
    qualname = qualname_or_lib
    if not isinstance(qualname, str) or qualname.count("::") != 1:
        raise ValueError(
            f'Expected `qualname` to be of the form "namespace::name", but got {qualname}. '
            "The qualname passed to the torch.library APIs must consist of a namespace and a name, e.g. aten::sin"
        )
    ns, name = qualname.split("::")
    types = [types_or_name] if isinstance(types_or_name, str) else list(types_or_name)
    # As torch: a dispatch key name is used as it is, anything else is a device type
    # ("default": every device), whose parse error is torch's.
    keys = [t if _C._parse_dispatch_key(t) is not None else _key_for_device_type(t) for t in types]

    def register(f: Callable[..., Any]) -> Callable[..., Any]:
        target = lib
        if target is None:
            target = Library(ns, "FRAGMENT")
            _keep_alive.append(target)
        for key in keys:
            target.impl(name, f, key)
        return f

    if func_or_key is not None:
        register(func_or_key)
        return None
    return register


def register_torch_dispatch(
    op: Any, torch_dispatch_class: Any, func: Callable[..., Any] | None = None, /, *, lib: Library | None = None
) -> Any:
    """Registers what ``op`` does for ``torch_dispatch_class``, a TorchDispatchMode or a Tensor
    subclass with ``__torch_dispatch__``: ``func(mode, func, types, args, kwargs)`` (or
    ``func(cls, ...)`` for a subclass) runs instead of its ``__torch_dispatch__`` for this op.
    Usable as a decorator."""
    from ._library.custom_ops import _maybe_get_opdef
    from ._ops import OpOverload

    opdef = _maybe_get_opdef(op) if isinstance(op, (str, OpOverload)) or hasattr(op, "_qualname") else None
    if opdef is not None:  # a custom op keeps its rules itself (re-registering replaces them)
        return opdef.register_torch_dispatch(torch_dispatch_class, func)
    if isinstance(op, OpOverload):
        op = op._name
    if not isinstance(op, str):
        raise ValueError(f"register_torch_dispatch({op}): got unexpected type for op: {type(op)}")
    qualname: str = op

    def register(f: Callable[..., Any]) -> Callable[..., Any]:
        if qualname.count("::") != 1:
            raise ValueError(
                f'Expected `qualname` to be of the form "namespace::name", but got {qualname}. '
                "The qualname passed to the torch.library APIs must consist of a namespace and a name, e.g. aten::sin"
            )
        ns, name = qualname.split("::")
        use_lib = lib
        if use_lib is None:
            use_lib = Library(ns, "FRAGMENT")
            _keep_alive.append(use_lib)
        use_lib._register_torch_dispatch_rule(name, torch_dispatch_class, f)
        return f

    if func is None:
        return register
    return register(func)


__all__ += ["register_torch_dispatch"]


# Seeing the dispatcher (issue 14): beyond torch.library, which has only the text dumps.
from ._explain import DispatchTableView, Explanation, dispatch_table, explain  # noqa: E402

__all__ += ["explain", "dispatch_table", "Explanation", "DispatchTableView"]

from ._trace import DispatchTrace, TraceEvent, trace  # noqa: E402

__all__ += ["trace", "DispatchTrace", "TraceEvent"]


# The custom-op API (issue 12): custom_op, infer_schema, register_kernel/register_fake, opcheck.
from ._library import fake_impl as _fake_impl  # noqa: E402
from ._library import utils as _library_utils  # noqa: E402
from ._library.custom_ops import CustomOpDef, _maybe_get_opdef, custom_op  # noqa: E402
from ._library.fake_impl import get_ctx  # noqa: E402
from ._library.infer_schema import infer_schema  # noqa: E402
from ._library.opcheck import OpCheckError, opcheck  # noqa: E402

__all__ += [
    "custom_op",
    "CustomOpDef",
    "infer_schema",
    "register_kernel",
    "register_fake",
    "register_autograd",
    "get_ctx",
    "opcheck",
    "OpCheckError",
    "register_vmap",
]


def _op_name(op: Any, api: str) -> Any:
    from ._ops import OpOverload

    if not isinstance(op, (str, OpOverload, CustomOpDef)):
        raise ValueError(f"{api}({op}): got unexpected type for op: {type(op)}")
    if isinstance(op, OpOverload):
        return op.name() if op._overloadname != "default" else op._schema_name
    return op


def register_kernel(
    op: Any, device_types: Any, func: Callable[..., Any] | None = None, /, *, lib: Library | None = None
) -> Any:
    """Registers ``func`` for ``device_types`` of ``op`` (a name, an OpOverload or a CustomOpDef)."""
    from ._ops import OpOverload

    if not isinstance(op, (str, OpOverload, CustomOpDef)):
        # PyTorch's message (its f-string prefix is missing there too).
        raise ValueError("register_kernel(op): got unexpected type for op: {type(op)}")
    op = _op_name(op, "register_kernel")
    opdef = _maybe_get_opdef(op)
    if opdef is not None:
        return opdef.register_kernel(device_types, func)
    if device_types is None:
        device_types = "CompositeExplicitAutograd"
    return impl(op, device_types, func, lib=lib)


def register_fake(
    op: Any,
    func: Callable[..., Any] | None = None,
    /,
    *,
    lib: Library | None = None,
    _stacklevel: int = 1,
    allow_override: bool = False,
) -> Any:
    """Registers the fake impl of ``op``: it runs for Meta tensors."""
    from ._ops import OpOverload

    if not isinstance(op, (str, OpOverload, CustomOpDef)):
        raise ValueError(f"register_fake({op}): got unexpected type for op: {type(op)}")
    op = _op_name(op, "register_fake")
    opdef = _maybe_get_opdef(op)
    if opdef is not None:
        return opdef.register_fake if func is None else opdef.register_fake(func)
    stacklevel = _stacklevel

    def register(func: Callable[..., Any]) -> Callable[..., Any]:
        from ._library.utils import parse_namespace

        namespace, op_name = parse_namespace(op)
        use_lib = lib
        if use_lib is None:
            use_lib = Library(namespace, "FRAGMENT")
            _keep_alive.append(use_lib)
        use_lib._register_fake(op_name, func, _stacklevel=stacklevel + 1, allow_override=allow_override)
        return func

    if func is None:
        return register
    stacklevel += 1
    return register(func)


def register_autograd(
    op: Any, backward: Callable[..., Any], /, *, setup_context: Callable[..., Any] | None = None, lib: Any = None
) -> None:
    """Registers a backward formula for ``op``; needs the autograd engine (issue 10)."""
    from ._library import autograd, utils

    op = _op_name(op, "register_autograd")
    opdef = _maybe_get_opdef(op)
    if opdef is not None:
        opdef.register_autograd(backward, setup_context=setup_context)
        return
    overload = utils.lookup_op(op)
    if not utils.is_functional_schema(overload):
        raise RuntimeError(
            f"Cannot register autograd formula for non-functional operator "
            f"{overload} with schema {overload._schema}. Please create "
            f"a functional operator and register an autograd formula for that."
        )
    if utils.has_kwarg_only_tensors(overload):
        raise NotImplementedError(
            f"register_autograd with kwarg-only Tensor args. In the original "
            f"definition of the op, please make your tensors not kwarg-only. "
            f"Got: {overload._schema}"
        )
    kernel = autograd.make_autograd_impl(overload, autograd.Info(backward, setup_context))
    namespace, opname = utils.parse_namespace(op)
    if lib is None:
        lib = Library(namespace, "FRAGMENT")
        _keep_alive.append(lib)
    lib.impl(opname, kernel, "Autograd", with_keyset=True)


def register_vmap(
    op: Any, func: Callable[..., Any] | None = None, /, *, lib: Library | None = None
) -> Any:
    """torch.library.register_vmap. opdispatch has no ``vmap``, so this validates ``op`` as
    torch does and then raises NotImplementedError (a registered rule could never run)."""
    from ._ops import OpOverload

    if not isinstance(op, (str, OpOverload, CustomOpDef)):
        raise ValueError(f"register_vmap({op}): got unexpected type for op: {type(op)}")
    qualname = op._qualname if isinstance(op, CustomOpDef) else _op_name(op, "register_vmap")
    raise NotImplementedError(
        f"register_vmap({qualname}): opdispatch does not implement torch.vmap "
        "(there is no FuncTorchBatched transform to run a vmap rule), so vmap rules cannot "
        "be registered"
    )
