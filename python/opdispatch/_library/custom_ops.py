"""``custom_op`` and ``CustomOpDef`` (PyTorch's ``torch/_library/custom_ops.py``).

A custom op is an ordinary operator defined in a FRAGMENT library: calling the
``CustomOpDef`` calls its ``OpOverload``, which goes straight into the native dispatcher.
Kernels are registered per device type (``CompositeExplicitAutograd`` for "every device"),
the fake impl as the Meta kernel, and the autograd hook at Autograd (see ``autograd.py``).
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Union

from .. import _C
from . import autograd, utils
from .infer_schema import infer_schema

log = logging.getLogger(__name__)

device_types_t = Union[str, Sequence[str], None]  # noqa: UP007 (a runtime alias)


def custom_op(
    name: str,
    fn: Callable[..., Any] | None = None,
    /,
    *,
    mutates_args: str | Iterable[str],
    device_types: device_types_t = None,
    schema: str | None = None,
    tags: Sequence[Any] | None = None,
) -> Any:
    """Turns ``fn`` into the operator ``name`` ("ns::op"); a decorator without ``fn``."""

    def inner(fn: Callable[..., Any]) -> CustomOpDef:
        schema_str = infer_schema(fn, mutates_args=mutates_args) if schema is None else schema
        namespace, opname = name.split("::")
        result = CustomOpDef(namespace, opname, schema_str, fn, tags)
        try:
            if schema is not None:
                expected = {a.name for a in utils.schema_info(result._opoverload)[0] if a.is_write}
                if expected != set(mutates_args):
                    raise ValueError(
                        f"Attempted to create a custom op with `mutates_args={mutates_args}` "
                        f"and `schema={schema}. The schema suggests that the op mutates {expected}"
                        "which is different from what was provided to us in `mutates_args`. "
                        "Please make these consistent."
                    )
            result.register_kernel(device_types)(fn)
        except BaseException:
            # torch leaves the half-made op defined; here a failed definition leaves nothing.
            result._lib._destroy()
            raise
        return result

    if fn is None:
        return inner
    return inner(fn)


class CustomOpDef(_C._CustomOpCall):
    """A function turned into an operator by :func:`custom_op`, with methods that register
    more behaviour for it. Not instantiated directly. Calling it calls its ``OpOverload``
    (the native base forwards the call, with no Python frame)."""

    def __init__(
        self, namespace: str, name: str, schema: str, fn: Callable[..., Any], tags: Sequence[Any] | None = None
    ) -> None:
        self._namespace = namespace
        self._name = name
        self._schema = schema
        self._tags: list[Any] = list(tags) if tags is not None else []
        self._init_fn = fn
        self._backend_fns: dict[str | None, Callable[..., Any]] = {}
        self._abstract_fn: Callable[..., Any] | None = None
        self._setup_context_fn: Callable[..., Any] | None = None
        self._backward_fn: Callable[..., Any] | None = None
        self._torch_dispatch_fns: dict[type, Callable[..., Any]] = {}
        self._disabled_kernel: set[str | None] = set()
        self._backend_select_registered = False
        self._lib = get_library_allowing_overwrite(namespace, name)
        try:
            self._register_to_dispatcher(self._tags)
        except BaseException:
            self._lib._destroy()  # no half-registered op is left behind
            raise
        OPDEFS[self._qualname] = self

    @property
    def _qualname(self) -> str:
        return f"{self._namespace}::{self._name}"

    def __repr__(self) -> str:
        return f"<CustomOpDef({self._qualname})>"

    @contextlib.contextmanager
    def set_kernel_enabled(self, device_type: str, enabled: bool = True) -> Iterator[None]:
        """Within the block, the kernel for ``device_type`` is (dis)abled: a disabled one
        runs the op's original function instead."""
        action = "enable" if enabled else "disable"
        originally_disabled = device_type in self._disabled_kernel
        if device_type not in self._backend_fns:
            log.warning(
                "Attempted to %s kernel for %s but no kernel was registered for this device type.", action, device_type
            )
        if not enabled:
            if originally_disabled:
                log.warning("Attempted to disable kernel for %s but it was already disabled.", device_type)
            else:
                self._disabled_kernel.add(device_type)
        elif not originally_disabled:
            log.warning("Attempted to enable kernel for  %s but it was already enabled.", device_type)
        else:
            self._disabled_kernel.remove(device_type)
        try:
            yield
        finally:
            if originally_disabled:
                self._disabled_kernel.add(device_type)
            else:
                self._disabled_kernel.discard(device_type)

    def register_kernel(self, device_types: device_types_t, fn: Callable[..., Any] | None = None, /) -> Any:
        """Registers ``fn`` for ``device_types`` ("cpu", "cuda", ..., or None for all)."""

        def inner(fn: Callable[..., Any]) -> Callable[..., Any]:
            dtypes: list[str | None] = (
                [device_types] if device_types is None or isinstance(device_types, str) else list(device_types)
            )
            for device_type in dtypes:
                if device_type not in self._backend_fns:
                    key = (
                        "CompositeExplicitAutograd"
                        if device_type is None
                        else utils.dispatch_key_for_device(device_type)
                    )
                    # allow_override: the fake impl already holds this library's Meta slot.
                    self._lib.impl(self._name, self._backend_impl(device_type), key, allow_override=True)
                self._backend_fns[device_type] = fn
            return fn

        if device_types is not None and not utils.has_tensor_arg(self._opoverload):
            device_arg_index = utils.get_device_arg_index(self._opoverload)
            if device_arg_index is None:
                raise ValueError(
                    "Functions without tensor inputs are required to have a `device: torch.device` argument"
                )
            self._register_backend_select_dispatcher(device_arg_index)
        if fn is None:
            return inner
        return inner(fn)

    def _backend_impl(self, device_type: str | None) -> Callable[..., Any]:
        # The registered kernel looks its function up on each call, so re-registering a
        # device type swaps the function without touching the dispatcher. Registered, a
        # `_C._CustomOpBackend` becomes a native kernel (CustomOpBackendKernel): the dispatcher
        # converts the stack, calls the user function itself and checks aliasing on the stack.
        # A view op's outputs alias its inputs by declaration: torch skips the check for them.
        return _C._CustomOpBackend(
            self._backend_fns,
            device_type,
            self._disabled_kernel,
            self._init_fn,
            self._raise_aliasing_error,
            not self._is_view,
        )

    def _register_backend_select_dispatcher(self, device_arg_index: int) -> None:
        def backend_select(keyset: Any, *args: Any, **kwargs: Any) -> Any:
            device = args[device_arg_index].type
            if device not in self._backend_fns:
                raise RuntimeError(
                    f"{self._name} does not have a kernel registered for {device}. Please use register_kernel to do so."
                )
            key = getattr(_C.DispatchKey, utils.dispatch_key_for_device(device))
            return self._opoverload.redispatch(_C.DispatchKeySet(key), *args, **kwargs)

        if not self._backend_select_registered:
            self._lib.impl(self._name, backend_select, "BackendSelect", with_keyset=True)
            self._backend_select_registered = True

    def register_fake(self, fn: Callable[..., Any], /) -> Callable[..., Any]:
        """Registers the fake impl: what the op returns for tensors without data (it runs for
        Meta tensors)."""
        self._abstract_fn = fn
        return fn

    def register_autograd(
        self, backward: Callable[..., Any], /, *, setup_context: Callable[..., Any] | None = None
    ) -> None:
        """Registers the backward formula (``backward(ctx, *grads)``, ``setup_context(ctx,
        inputs, output)``). Needs the autograd engine (issue 10): see ``_library/autograd.py``."""
        if not utils.is_functional_schema(self._opoverload, allow_valid_view=True):
            raise RuntimeError(
                f"Cannot register autograd formula for non-functional operator "
                f"{self} with schema {self._opoverload._schema}. Please create "
                f"a functional operator and register an autograd formula for that."
            )
        autograd.make_autograd_impl(self._opoverload, autograd.Info(backward, setup_context))
        self._backward_fn = backward
        self._setup_context_fn = setup_context

    def register_vmap(self, func: Callable[..., Any] | None = None) -> Any:
        """torch's vmap rule registration. opdispatch has no ``vmap`` (no FuncTorchBatched
        transform), so a rule could never run: this raises instead of registering one."""
        raise NotImplementedError(
            f"register_vmap({self._qualname}): opdispatch does not implement torch.vmap "
            "(there is no FuncTorchBatched transform to run a vmap rule), so vmap rules cannot "
            "be registered"
        )

    def register_torch_dispatch(self, torch_dispatch_class: Any, fn: Callable[..., Any] | None = None, /) -> Any:
        """Registers what this op does for ``torch_dispatch_class`` (a TorchDispatchMode or a
        Tensor subclass): ``fn(mode_or_cls, func, types, args, kwargs)`` runs instead of its
        ``__torch_dispatch__``. Registering again for the same class replaces ``fn``."""

        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            if torch_dispatch_class not in self._torch_dispatch_fns:
                fns = self._torch_dispatch_fns

                def inner(*args: Any, **kwargs: Any) -> Any:
                    return fns[torch_dispatch_class](*args, **kwargs)

                self._lib._register_torch_dispatch_rule(self._name, torch_dispatch_class, inner)
            self._torch_dispatch_fns[torch_dispatch_class] = fn
            return fn

        if fn is None:
            return register
        return register(fn)

    def _fake_impl(self, *args: Any, **kwargs: Any) -> Any:
        # The Meta kernel: the registered fake impl, or the trivial one of an op returning None.
        if self._abstract_fn is None:
            if utils.can_generate_trivial_fake_impl(self._opoverload):
                return None
            init_name = getattr(self._init_fn, "__name__", self._name)
            raise RuntimeError(
                f"There was no fake impl registered for {self}. "
                "This is necessary for torch.compile/export/fx tracing to work. "
                f"Please use `{init_name}.register_fake` to add an "
                "fake impl."
            )
        return self._abstract_fn(*args, **kwargs)

    def _raise_aliasing_error(self) -> None:
        # PyTorch names the module of its wrapper of the kernel (its custom_ops module),
        # which is this module here.
        raise utils.aliasing_error(self._name, _this_module)

    def _register_to_dispatcher(self, tags: Sequence[Any]) -> None:
        lib = self._lib
        schema_str = self._name + self._schema
        all_tags: list[Any] = [_C.Tag.pt2_compliant_tag]
        for t in tags:
            if t not in all_tags:
                all_tags.append(t)
        lib.define(schema_str, tags=all_tags)
        self._opoverload = utils.lookup_op(self._qualname)
        self._set_call_target(self._opoverload)
        # One pass over the schema's argument facts (the native rows, ArgInfo's fields):
        # torch's FunctionSchema._is_view_op (an argument aliased without being written), the
        # mutated positions, and no kwarg-only tensors.
        self._is_view = False
        mutated: list[int] = []
        for i, (_, type_, alias_sets, is_write, kwarg_only) in enumerate(
            _C._dispatch_schema_alias_info(self._opoverload)[0]
        ):
            if is_write:
                mutated.append(i)
            elif alias_sets is not None:
                self._is_view = True
            if kwarg_only and type_.startswith("Tensor"):
                raise NotImplementedError(
                    f"custom_op with kwarg-only Tensor args. Please make your tensors not kwarg-only. Got: {schema_str}"
                )
        # Bound methods, not closures: fewer objects per defined op.
        lib._register_fake(self._name, self._fake_impl, _stacklevel=4)
        lib.impl(self._name, autograd.autograd_kernel(self._opoverload, self), "Autograd")
        if mutated:
            # Native: bumps each mutated argument's version once per call, then runs the op
            # below ADInplaceOrView (torch's adinplaceorview_impl).
            lib._impl_custom_op_inplace(self._name, mutated)


# Calls skip `tp_call` (CPython before 3.12 does not pass the vectorcall flag to subclasses).
_C._enable_custom_op_vectorcall(CustomOpDef)


def _this_module() -> Any:
    return inspect.getmodule(CustomOpDef)


OPDEF_TO_LIB: dict[str, Any] = {}
# The live definitions. A plain dict (torch's is weak): an entry goes when its library is
# destroyed (`_ForgetLibrary`), and until then the library's kernels keep the definition alive
# anyway; a WeakValueDictionary entry cost as much to add as a tenth of the rest of a define.
OPDEFS: dict[str, CustomOpDef] = {}


_LIBRARY: list[Any] = []


def _library_class() -> Any:
    # `opdispatch.library` imports this module, so it is imported on first use; kept, since a
    # function-level `from ..library import Library` costs a failed `__path__` lookup per call.
    if not _LIBRARY:
        from ..library import Library

        _LIBRARY.append(Library)
    return _LIBRARY[0]


def get_library_allowing_overwrite(namespace: str, name: str) -> Any:
    """A fresh FRAGMENT for ``namespace::name``; redefining a custom op replaces the old one."""
    Library = _library_class()
    qualname = f"{namespace}::{name}"
    old = OPDEF_TO_LIB.pop(qualname, None)
    if old is not None:
        old._destroy()
    lib = Library(namespace, "FRAGMENT")
    OPDEF_TO_LIB[qualname] = lib
    lib._registration_handles.append(_ForgetLibrary(qualname, weakref.ref(lib)))
    return lib


class _ForgetLibrary:
    """Destroying the library (``opdef._lib._destroy()``) also drops its ``OPDEF_TO_LIB`` and
    ``OPDEFS`` entries, so a destroyed op's Library and definition are not kept alive. A weak
    reference: this handle lives in the library itself. (A class, not a closure: fewer
    objects per defined op.)"""

    __slots__ = ("qualname", "lib_ref")

    def __init__(self, qualname: str, lib_ref: weakref.ref[Any]) -> None:
        self.qualname = qualname
        self.lib_ref = lib_ref

    def destroy(self) -> None:
        lib = self.lib_ref()
        if OPDEF_TO_LIB.get(self.qualname) is lib:
            OPDEF_TO_LIB.pop(self.qualname, None)
        opdef = OPDEFS.get(self.qualname)
        if opdef is not None and opdef._lib is lib:
            del OPDEFS[self.qualname]


def _maybe_get_opdef(op: Any) -> CustomOpDef | None:
    if isinstance(op, CustomOpDef):
        return op
    from .._ops import OpOverload

    if isinstance(op, OpOverload):
        op = op._schema_name if op._overloadname == "default" else f"{op._schema_name}.{op._overloadname}"
    assert isinstance(op, str)
    return OPDEFS.get(op)
