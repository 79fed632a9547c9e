"""Fake ("meta") kernels: ``register_fake``'s holder per operator and the Meta kernel that
runs it. Meta tensors stand in for FakeTensors here: a fake impl runs for them."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from .. import _C
from .utils import Kernel


class FakeImplHolder:
    """The fake impls registered for one operator, newest last (the newest runs)."""

    def __init__(self, qualname: str) -> None:
        self.qualname = qualname
        self.kernels: list[Kernel] = []

    @property
    def kernel(self) -> Kernel | None:
        return self.kernels[-1] if self.kernels else None

    @kernel.setter
    def kernel(self, value: Any) -> None:
        raise RuntimeError("Unable to directly set kernel.")

    def register(
        self, func: Callable[..., Any], source: str, lib: Any, *, allow_override: bool = False
    ) -> _Deregister:
        """Records ``func`` and registers the Meta kernel that runs it in ``lib``."""
        if not allow_override:
            if self.kernel is not None:
                raise RuntimeError(
                    f"register_fake(...): the operator {self.qualname} "
                    f"already has a fake impl registered at {self.kernel.source}."
                )
            if _C._dispatch_has_kernel_for_dispatch_key(self.qualname, "Meta"):
                raise RuntimeError(
                    f"register_fake(...): the operator {self.qualname} "
                    "already has a DispatchKey::Meta implementation via a "
                    "pre-existing torch.library or TORCH_LIBRARY registration. "
                    "Please either remove that registration or don't call "
                    "register_fake."
                )
            if _C._dispatch_has_kernel_for_dispatch_key(self.qualname, "CompositeImplicitAutograd"):
                raise RuntimeError(
                    f"register_fake(...): the operator {self.qualname} "
                    "already has an implementation for this device type via a "
                    "pre-existing registration to "
                    "DispatchKey::CompositeImplicitAutograd."
                    "CompositeImplicitAutograd operators do not need a fake "
                    "impl; "
                    "instead, the operator will decompose into its constituents "
                    "and those "
                    "can have fake impls defined on them."
                )
        kernel = Kernel(func, source)
        self.kernels.append(kernel)
        try:
            lib.impl(self.qualname, construct_meta_kernel(self.qualname, self), "Meta", allow_override=allow_override)
        except Exception:
            self.kernels.remove(kernel)  # no residue of a failed registration
            raise
        return _Deregister(self, kernel)


class _Deregister:
    """The registration handle of one fake impl. (A class, not a closure: fewer objects per
    defined op.)"""

    __slots__ = ("holder", "kernel")

    def __init__(self, holder: FakeImplHolder, kernel: Kernel) -> None:
        self.holder = holder
        self.kernel = kernel

    def destroy(self) -> None:
        holder = self.holder
        if self.kernel in holder.kernels:
            holder.kernels.remove(self.kernel)
        # An emptied holder is forgotten (holder_for makes a fresh one): defining and
        # destroying ops leaves no holder per name behind.
        if not holder.kernels and _holders.get(holder.qualname) is holder:
            del _holders[holder.qualname]


_holders: dict[str, FakeImplHolder] = {}


def holder_for(qualname: str) -> FakeImplHolder:
    """The fake-impl holder of ``qualname`` (torch's ``simple_registry.singleton.find``)."""
    holder = _holders.get(qualname)
    if holder is None:
        holder = _holders[qualname] = FakeImplHolder(qualname)
    return holder


def construct_meta_kernel(qualname: str, holder: FakeImplHolder) -> Callable[..., Any]:
    assert holder.kernel is not None
    return _MetaKernel(qualname, holder)


class _MetaKernel:
    """The Meta kernel of an op with fake impls: runs the newest one, where ``get_ctx()``
    raises (meta tensors cannot have data-dependent shapes). A class, not a
    ``functools.wraps`` closure: fewer objects per defined op."""

    __slots__ = ("qualname", "holder")

    def __init__(self, qualname: str, holder: FakeImplHolder) -> None:
        self.qualname = qualname
        self.holder = holder

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        kernel = self.holder.kernel
        assert kernel is not None
        qualname, source = self.qualname, kernel.source

        def error_on_ctx() -> Any:
            raise RuntimeError(
                f"{qualname} ({source}): You're trying to run this operator "
                "with meta Tensors (as opposed to FakeTensors), but this "
                "operator may return an output Tensor with data-dependent shape. Meta "
                "Tensors don't support operators with outputs that have data-dependent shapes "
                "but FakeTensors do. "
                "If your operator does not return an output with data-dependent shape, "
                "make sure the FakeTensor and/or meta kernel does not call "
                "torch.library.get_ctx(). Otherwise, please use FakeTensors."
            )

        with set_ctx_getter(error_on_ctx):
            return kernel(*args, **kwargs)


def _get_none() -> Any:
    return None


global_ctx_getter: Callable[[], Any] = _get_none


@contextlib.contextmanager
def set_ctx_getter(ctx_getter: Callable[[], Any]) -> Iterator[None]:
    global global_ctx_getter
    prev = global_ctx_getter
    try:
        global_ctx_getter = ctx_getter
        yield
    finally:
        global_ctx_getter = prev


def get_ctx() -> Any:
    """The fake-impl context (``torch.library.get_ctx``). Only FakeTensors have one; with meta
    tensors (all opdispatch has) asking for it raises, as in PyTorch."""
    return global_ctx_getter()
