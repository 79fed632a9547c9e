"""PyObject preservation (catalog section 7) and hermetic mode (conformance README, "Hand-written
expectations: hermetic mode")."""

from __future__ import annotations

import gc
import os
import threading
import weakref

import pytest

import opdispatch as M
from opdispatch import _C as C
from opdispatch import ops
from opdispatch.library import _scoped_library

from conftest import fresh_ns

DK = C.DispatchKey


class Env:
    """A FRAGMENT library with a few identity-style ops; ``box`` is where kernels stash tensors."""

    def __init__(self, lib, ns):
        self.lib = lib
        self.ns = ns
        self.box: list = []
        lib.define("ident(Tensor self) -> Tensor")
        lib.define("second(Tensor self, Tensor other) -> Tensor")
        lib.define("stash(Tensor self) -> Tensor")
        lib.define("unstash(Tensor self) -> Tensor")
        lib.impl("ident", lambda x: x, "CPU")
        lib.impl("ident", lambda x: x, "Meta")
        lib.impl("second", lambda x, y: y, "CPU")
        lib.impl("stash", self._stash, "CPU")
        lib.impl("unstash", lambda x: self.box.pop(), "CPU")

    def _stash(self, x):
        self.box.append(x)
        return x

    @property
    def ops(self):
        return getattr(ops, self.ns)


@pytest.fixture
def env():
    ns = fresh_ns("pres")
    with _scoped_library(ns, "FRAGMENT") as lib:
        e = Env(lib, ns)
        yield e
        e.box.clear()
    if ns in vars(ops):
        delattr(ops, ns)
    gc.collect()


# ---------------------------------------------------------------------------------------------
# Identity and attributes
# ---------------------------------------------------------------------------------------------


def test_identity_op_returns_same_object(env):
    t = M.ones(2)
    assert env.ops.ident(t) is t
    assert env.ops.ident.default(t) is t
    mt = M.empty(2, device="meta")
    assert env.ops.ident(mt) is mt
    a, b = M.ones(2), M.zeros(2)
    r = env.ops.second(a, b)
    assert r is b and r is not a
    tt = M.tensor([1.0, 2.0])
    assert env.ops.ident(tt) is tt


def test_attributes_survive_stash_in_kernel(env):
    t = M.ones(3)
    t.foo = 42
    t.bar = [1, 2]
    tid = id(t)
    r = env.ops.stash(t)
    assert r is t
    del t, r
    gc.collect()
    r = env.ops.unstash(M.ones(1))
    assert r.foo == 42 and r.bar == [1, 2]
    assert id(r) == tid


def test_attribute_survives_list_only_reference(env):
    x = M.zeros(2)
    x.tag = "hello"
    holder = [x]
    del x
    gc.collect()
    y = env.ops.ident(holder[0])
    assert y.tag == "hello" and y is holder[0]


def test_kernel_created_tensor_is_stable(env):
    env.lib.define("mk(Tensor self) -> Tensor")
    keep = []

    def mk(x):
        if not keep:
            keep.append(M.zeros(2))
        return keep[0]

    env.lib.impl("mk", mk, "CPU")
    r1 = env.ops.mk(M.ones(1))
    r2 = env.ops.mk(M.ones(1))
    assert r1 is r2
    # In hermetic mode the kernel's object is a throwaway; the caller gets the preserved one.
    assert r1 is not keep[0]


# ---------------------------------------------------------------------------------------------
# Weak references and deallocation
# ---------------------------------------------------------------------------------------------


def test_weakref_fires_once_at_last_reference(env):
    fired = []
    t = M.ones(2)
    w = weakref.ref(t, lambda _: fired.append("t"))
    r = env.ops.ident(t)
    del t
    assert fired == [] and w() is not None
    del r
    assert fired == ["t"] and w() is None
    gc.collect()
    assert fired == ["t"]


def test_weakref_waits_for_kernel_stash(env):
    fired = []
    t = M.ones(2)
    w = weakref.ref(t, lambda _: fired.append("s"))
    env.ops.stash(t)
    del t
    gc.collect()
    assert fired == [] and w() is not None
    env.box.clear()
    assert fired == ["s"] and w() is None
    gc.collect()
    assert fired == ["s"]


def test_weakref_meta_tensor(env):
    fired = []
    t = M.empty(3, device="meta")
    w = weakref.ref(t, lambda _: fired.append("m"))
    r = env.ops.ident(t)
    assert r is t
    del t
    assert fired == []
    del r
    assert fired == ["m"] and w() is None


def test_finalizer_in_dict_runs_on_del():
    class Tracker:
        def __init__(self, marker):
            self.marker = marker

        def __del__(self):
            self.marker.append(True)

    marker = []
    t = M.ones(1)
    t.tracker = Tracker(marker)
    del t
    assert marker == [True]


# ---------------------------------------------------------------------------------------------
# Storages
# ---------------------------------------------------------------------------------------------


def test_untyped_storage_identity(env):
    t = M.ones(4)
    assert t.untyped_storage() is t.untyped_storage()
    s = t.untyped_storage()
    assert env.ops.ident(t).untyped_storage() is s
    assert M.zeros(4).untyped_storage() is not s


def test_storage_weakref_kept_by_tensor():
    fired = []
    a = M.ones(2)
    s = a.untyped_storage()
    s.attr = "kept"
    ws = weakref.ref(s, lambda _: fired.append("s"))
    del s
    gc.collect()
    assert fired == []
    assert ws() is a.untyped_storage()
    assert a.untyped_storage().attr == "kept"
    del a
    gc.collect()
    assert fired == ["s"] and ws() is None


def test_storage_preserved_when_kernel_drops_python_ref(env):
    env.lib.define("kill_storage() -> ()")
    fired = []
    a = M.ones(2)
    g = {"s": a.untyped_storage()}
    ws = weakref.ref(g["s"], lambda _: fired.append("storage"))

    def kill():
        del g["s"]

    env.lib.impl("kill_storage", kill, "CompositeImplicitAutograd")
    env.ops.kill_storage()
    assert fired == [] and ws() is not None
    s2 = a.untyped_storage()
    assert s2 is ws()
    del s2
    assert fired == []
    del a
    gc.collect()
    assert fired == ["storage"] and ws() is None


def test_storage_constructor():
    try:
        s = M.UntypedStorage(10)
    except TypeError as e:
        pytest.skip(f"UntypedStorage(n) is not constructible in opdispatch ({e})")
    fired = []
    w = weakref.ref(s, lambda _: fired.append(1))
    del s
    assert fired == [1] and w() is None


# ---------------------------------------------------------------------------------------------
# Subclasses
# ---------------------------------------------------------------------------------------------


class MyT(M.Tensor):
    pass


def _make_subclass_instance():
    for make in (lambda: MyT(M.ones(2)), lambda: MyT(), lambda: M.ones(2).as_subclass(MyT)):
        try:
            return make()
        except (TypeError, AttributeError, RuntimeError):
            continue
    return None


def test_subclass_type_preserved(env):
    t = _make_subclass_instance()
    if t is None:
        pytest.skip("opdispatch.Tensor subclasses cannot be instantiated (no constructor / as_subclass)")
    assert type(t) is MyT
    assert env.ops.ident(t) is t
    env.ops.stash(t)
    del t
    gc.collect()
    r = env.ops.unstash(M.ones(1))
    assert type(r) is MyT


# ---------------------------------------------------------------------------------------------
# Garbage collection
# ---------------------------------------------------------------------------------------------


def test_cycle_through_dict_is_collected():
    x, y = M.ones(2), M.ones(2)
    x.other = y
    y.other = x
    wx, wy = weakref.ref(x), weakref.ref(y)
    del x, y
    gc.collect()
    assert wx() is None and wy() is None


def test_cycle_survives_while_kernel_stash_holds_it(env):
    x, y = M.ones(2), M.ones(2)
    x.other = y
    y.other = x
    wx, wy = weakref.ref(x), weakref.ref(y)
    env.ops.stash(x)
    del x, y
    gc.collect()
    assert wx() is not None and wy() is not None
    assert wx().other is wy()
    env.box.clear()
    gc.collect()
    assert wx() is None and wy() is None


def test_self_cycle_collected():
    x = M.ones(1)
    x.me = x
    w = weakref.ref(x)
    del x
    gc.collect()
    assert w() is None


# ---------------------------------------------------------------------------------------------
# Hermetic mode
# ---------------------------------------------------------------------------------------------


def test_hermetic_kernel_sees_fresh_object(env):
    env.lib.define("peek(Tensor self) -> Tensor")
    seen = {}
    t = M.ones(2)
    t.foo = 1

    def peek(x):
        seen["is_t"] = x is t
        seen["has_foo"] = hasattr(x, "foo")
        seen["flag"] = C._is_hermetic_pyobject_enabled()
        seen["rewrap"] = x.contiguous() is x
        return x

    env.lib.impl("peek", peek, "CPU")
    r = env.ops.peek(t)
    assert seen == {"is_t": False, "has_foo": False, "flag": True, "rewrap": False}
    assert r is t and r.foo == 1
    assert not C._is_hermetic_pyobject_enabled()


def test_hermetic_guard_from_python():
    t = M.ones(3)
    s = t.untyped_storage()
    assert not C._is_hermetic_pyobject_enabled()
    with C._EnableHermeticPyObject():
        assert C._is_hermetic_pyobject_enabled()
        a = t.contiguous()
        b = t.contiguous()
        assert a is not t and a is not b
        assert t.untyped_storage() is not t.untyped_storage()
    assert not C._is_hermetic_pyobject_enabled()
    assert t.contiguous() is t
    assert t.untyped_storage() is s


def test_hermetic_object_does_not_escape():
    with C._EnableHermeticPyObject():
        u = M.zeros(2)
        u.tag = "x"
    v = u.contiguous()
    assert v is not u
    assert not hasattr(v, "tag")
    assert v.contiguous() is v


def test_hermetic_flag_per_thread_nesting_and_restore(env):
    res = []
    with C._EnableHermeticPyObject():
        th = threading.Thread(target=lambda: res.append(C._is_hermetic_pyobject_enabled()))
        th.start()
        th.join()
        with C._EnableHermeticPyObject():
            assert C._is_hermetic_pyobject_enabled()
        assert C._is_hermetic_pyobject_enabled()
    assert res == [False]
    assert not C._is_hermetic_pyobject_enabled()


def test_hermetic_flag_restored_after_kernel_exception(env):
    env.lib.define("boom(Tensor self) -> Tensor")

    def boom(x):
        assert C._is_hermetic_pyobject_enabled()
        raise ValueError("boom")

    env.lib.impl("boom", boom, "CPU")
    with pytest.raises(ValueError, match="^boom$"):
        env.ops.boom(M.ones(1))
    assert not C._is_hermetic_pyobject_enabled()
    assert not C._dispatch_tls_local_exclude_set().has(DK.Python)


def test_hermetic_guard_restored_after_exception():
    with pytest.raises(KeyError):
        with C._EnableHermeticPyObject():
            raise KeyError("x")
    assert not C._is_hermetic_pyobject_enabled()
    assert not C._dispatch_tls_local_exclude_set().has(DK.Python)


def test_hermetic_guard_excludes_python_key():
    before = C._dispatch_tls_local_exclude_set().raw_repr()
    with C._EnableHermeticPyObject():
        assert C._dispatch_tls_local_exclude_set().has(DK.Python)
        assert not C._dispatch_tls_local_include_set().has(DK.Python)
    assert C._dispatch_tls_local_exclude_set().raw_repr() == before


def test_hermetic_kernel_excludes_python_key(env):
    env.lib.define("tls(Tensor self) -> Tensor")
    seen = []

    def k(x):
        seen.append(C._dispatch_tls_local_exclude_set().has(DK.Python))
        return x

    env.lib.impl("tls", k, "CPU")
    env.ops.tls(M.ones(1))
    assert seen == [True]
    assert not C._dispatch_tls_local_exclude_set().has(DK.Python)


def test_nested_kernel_calls_keep_hermetic(env):
    env.lib.define("outer(Tensor self) -> Tensor")
    flags = []

    def outer(x):
        flags.append(C._is_hermetic_pyobject_enabled())
        r = env.ops.ident(x)
        flags.append(C._is_hermetic_pyobject_enabled())
        return r

    env.lib.impl("outer", outer, "CPU")
    t = M.ones(1)
    assert env.ops.outer(t) is t
    assert flags == [True, True]
    assert not C._is_hermetic_pyobject_enabled()


# ---------------------------------------------------------------------------------------------
# Leaks
# ---------------------------------------------------------------------------------------------


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc/self/statm")
def test_no_leak_over_many_calls(env):
    env.lib.define("mk2(Tensor self) -> Tensor")
    env.lib.impl("mk2", lambda x: M.zeros(4), "CPU")
    ident, mk2 = env.ops.ident.default, env.ops.mk2.default

    def burst(n):
        for _ in range(n):
            t = M.ones(4)
            t.attr = 1
            ident(t)
            mk2(t)

    burst(5000)  # warm up caches and allocator pools
    gc.collect()
    objs0, rss0 = len(gc.get_objects()), _rss_bytes()
    burst(100_000 // 2)  # two op calls per iteration: 1e5 calls
    gc.collect()
    objs1, rss1 = len(gc.get_objects()), _rss_bytes()
    assert objs1 - objs0 < 1000, f"gc objects grew by {objs1 - objs0}"
    assert rss1 - rss0 < 64 * 1024 * 1024, f"RSS grew by {(rss1 - rss0) / 1e6:.1f} MB"


def test_new_tensor_objects_have_working_dict_weakref_and_gc():
    # Tensor objects after the first are allocated directly (their __dict__ is created on
    # first use); they must behave exactly like the ones pyo3 builds.
    objs = [M.ones(2) + M.ones(2) for _ in range(3)]
    with C._EnableHermeticPyObject():
        objs += [M.ones(1) + M.ones(1) for _ in range(2)]
    for o in objs:
        assert type(o) is M.Tensor
        assert o.__dict__ == {}
        o.tag = "x"
        assert o.tag == "x" and o.__dict__ == {"tag": "x"}
        r = weakref.ref(o)
        assert r() is o

    # A reference cycle through a tensor's __dict__ is collected (the object is GC-tracked).
    class Marker:
        pass

    t = M.ones(3) + M.ones(3)
    m = Marker()
    t.m = m
    m.t = t
    rt, rm = weakref.ref(t), weakref.ref(m)
    del t, m
    gc.collect()
    assert rt() is None and rm() is None
