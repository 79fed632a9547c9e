"""Defining and destroying custom ops leaves nothing behind (issue 12): no Library, fake-impl
holder or finalizer per op kept by the custom-op registries, neither Python objects nor
traced memory, and no operator left in the dispatcher."""

from __future__ import annotations

import gc
import itertools
import tracemalloc
from collections.abc import Callable

import opdispatch as M
from opdispatch import _C, library
from opdispatch._library import custom_ops, fake_impl

_counter = itertools.count()
CYCLES = 1000
# Before the fix a cycle kept 11 objects and about 2 KiB; what remains is CPython's own
# bounded caches (the type attribute cache holds the last few thousand attribute names).
MAX_OBJECTS = 100
MAX_BYTES = 160 * 1024


def custom_op_cycle() -> None:
    ns = "leak_custom_ops"
    name = f"op{next(_counter)}"

    @library.custom_op(f"{ns}::{name}", mutates_args=())
    def op(x: M.Tensor, n: int, s: float = 1.0) -> M.Tensor:
        return x.clone()

    @op.register_fake
    def _(x: M.Tensor, n: int, s: float = 1.0) -> M.Tensor:
        return M.empty_like(x)

    x = M.ones(2)
    assert op(x, 1).tolist() == [1.0, 1.0]
    assert getattr(M.ops.leak_custom_ops, name)(x, 2).tolist() == [1.0, 1.0]
    op._lib._destroy()


def library_cycle() -> None:
    ns = f"leak_lib_{next(_counter) % 4}"
    with library._scoped_library(ns, "FRAGMENT") as lib:
        library.define(f"{ns}::f", "(Tensor x) -> Tensor", lib=lib)
        library.impl(f"{ns}::f", "cpu", lambda x: x.clone(), lib=lib)
        library.register_fake(f"{ns}::f", lambda x: M.empty_like(x), lib=lib)
        assert getattr(M.ops, ns).f(M.ones(1)).tolist() == [1.0]


def live_objects() -> int:
    gc.collect()
    return len(gc.get_objects())


def assert_no_growth(cycle: Callable[[], None]) -> None:
    for _ in range(CYCLES):  # warm up: caches (CPython's, the ops namespace) reach steady state
        cycle()
    ops_before = len(_C._dispatch_get_all_op_names())
    objects_before = live_objects()
    tracemalloc.start()
    try:
        gc.collect()
        bytes_before = tracemalloc.get_traced_memory()[0]
        for _ in range(CYCLES):
            cycle()
        gc.collect()
        bytes_after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    objects_after = live_objects()
    assert objects_after - objects_before < MAX_OBJECTS, (objects_before, objects_after)
    assert bytes_after - bytes_before < MAX_BYTES, (bytes_before, bytes_after)
    assert len(_C._dispatch_get_all_op_names()) == ops_before


def test_custom_op_define_destroy_does_not_leak() -> None:
    assert_no_growth(custom_op_cycle)
    assert not [q for q in custom_ops.OPDEF_TO_LIB if q.startswith("leak_custom_ops::")]
    assert not [q for q in custom_ops.OPDEFS if q.startswith("leak_custom_ops::")]
    assert not [q for q in fake_impl._holders if q.startswith("leak_custom_ops::")]


def test_library_define_fake_destroy_does_not_leak() -> None:
    assert_no_growth(library_cycle)
    assert not [q for q in fake_impl._holders if q.startswith("leak_lib_")]
    assert not [k for k in library._impls if k.startswith("leak_lib_")]
    assert not [k for k in library._defs if k.startswith("leak_lib_")]


def test_destroyed_custom_op_is_gone_and_can_be_redefined() -> None:
    qualname = f"leak_custom_ops::redef{next(_counter)}"

    @library.custom_op(qualname, mutates_args=())
    def op(x: M.Tensor) -> M.Tensor:
        return x.clone()

    lib = op._lib
    lib._destroy()
    assert qualname not in custom_ops.OPDEF_TO_LIB
    assert not _C._dispatch_has_kernel(qualname)

    @library.custom_op(qualname, mutates_args=())
    def op2(x: M.Tensor) -> M.Tensor:
        return x + 1

    assert custom_ops.OPDEF_TO_LIB[qualname] is op2._lib
    lib._destroy()  # destroying the old library again leaves the new op's entry alone
    assert custom_ops.OPDEF_TO_LIB[qualname] is op2._lib
    assert op2(M.ones(1)).tolist() == [2.0]
    op2._lib._destroy()


def test_redefining_replaces_the_old_library() -> None:
    qualname = f"leak_custom_ops::replace{next(_counter)}"

    @library.custom_op(qualname, mutates_args=())
    def op(x: M.Tensor) -> M.Tensor:
        return x.clone()

    first = op._lib

    @library.custom_op(qualname, mutates_args=())
    def op2(x: M.Tensor) -> M.Tensor:
        return x * 3

    assert first.m is None  # destroyed by the redefinition
    assert custom_ops.OPDEF_TO_LIB[qualname] is op2._lib
    assert op2(M.ones(1)).tolist() == [3.0]
    op2._lib._destroy()
    assert qualname not in custom_ops.OPDEF_TO_LIB
