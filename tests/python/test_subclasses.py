"""Tensor subclasses, Python-created objects, swap_tensors and __torch_dispatch__ routing."""

import gc
import weakref

import pytest

import opdispatch as o
from opdispatch import _C
from opdispatch.library import _scoped_library


def test_as_subclass_shares_storage_and_keeps_type_through_a_kernel_stash(ns):
    class Sub(o.Tensor):
        pass

    with _scoped_library(ns, "FRAGMENT") as lib:
        box = []
        lib.define("stash(Tensor self) -> Tensor")
        lib.define("unstash(Tensor self) -> Tensor")
        lib.impl("stash", lambda x: (box.append(x), x)[1], "CPU")
        lib.impl("unstash", lambda x: box.pop(), "CPU")
        base = o.ones(2)
        t = base.as_subclass(Sub)
        assert type(t) is Sub
        assert t.untyped_storage().data_ptr() == base.untyped_storage().data_ptr()
        t.tag = "kept"
        getattr(o.ops, ns).stash(t)
        del t
        gc.collect()
        r = getattr(o.ops, ns).unstash(o.ones(1))
        # The kernel ran hermetically, so Rust alone held the tensor: the Sub object survived.
        assert type(r) is Sub and r.tag == "kept"


def test_as_subclass_rejects_non_tensor_types():
    with pytest.raises(RuntimeError, match="does not inherit from Tensor"):
        o.ones(1).as_subclass(int)


def test_untyped_storage_constructor_and_weakref_callback():
    s = o.UntypedStorage(10)
    assert s.nbytes() == 10
    fired = []
    w = weakref.ref(s, lambda _: fired.append(1))
    del s
    assert fired == [1] and w() is None


def test_swap_tensors_keeps_identity_and_attributes():
    a, b = o.ones(2), o.zeros(2)
    a.name = "a"
    ia, ib = id(a), id(b)
    o.utils.swap_tensors(a, b)
    assert (id(a), id(b)) == (ia, ib)
    assert a.tolist() == [0.0, 0.0] and b.tolist() == [1.0, 1.0]
    assert a.name == "a"
    # The runtime hands back the swapped objects for the swapped impls.
    assert a.contiguous() is a and b.contiguous() is b
    with pytest.raises(TypeError):
        o.utils.swap_tensors(a, 1)


def test_torch_dispatch_subclass_gets_python_key_and_is_routed():
    seen = []

    class Logging(o.Tensor):
        __torch_function__ = _C._disabled_torch_function_impl

        @classmethod
        def __torch_dispatch__(cls, func, types, args, kwargs):
            seen.append((str(func), [t.__name__ for t in types]))
            return o.zeros(1)

    t = Logging(o.ones(2))
    assert _C._dispatch_keys(t).has(_C.DispatchKey.Python)
    r = o.ops.aten.neg(t)
    assert r.tolist() == [0.0]
    assert seen == [("aten.neg.default", ["Logging"])]


def test_python_key_argument_skips_hermetic_mode(ns):
    class Sub(o.Tensor):
        @classmethod
        def __torch_dispatch__(cls, func, types, args, kwargs):
            return NotImplemented

    with _scoped_library(ns, "FRAGMENT") as lib:
        seen = {}
        lib.define("peek(Tensor self) -> Tensor")

        def peek(x):
            seen["flag"] = _C._is_hermetic_pyobject_enabled()
            seen["same"] = x is t
            return x

        # A kernel at the Python key itself runs with the subclass object, not hermetically.
        lib.impl("peek", peek, "Python")
        t = Sub(o.ones(1))
        assert getattr(o.ops, ns).peek(t) is t
        assert seen == {"flag": False, "same": True}


def test_creating_a_torch_dispatch_subclass_in_hermetic_mode_raises():
    class TD(o.Tensor):
        @classmethod
        def __torch_dispatch__(cls, func, types, args, kwargs):
            return NotImplemented

    with _C._EnableHermeticPyObject():
        with pytest.raises(
            RuntimeError,
            match="^While HermeticPyObject was enabled, we attempted to create a tensor subclass "
            "with __torch_dispatch__",
        ):
            TD(o.ones(1))
