"""TestPythonRegistration-style scenarios (catalog sections 4 and 5.3) on opdispatch.library."""

from __future__ import annotations

import gc
import re

import pytest

import opdispatch
from opdispatch import _C as C
from opdispatch import library, ops
from opdispatch.library import Library, _scoped_library, fallthrough_kernel

from conftest import filter_key_lists, first_line, fresh_ns

DK = C.DispatchKey
KS = C.DispatchKeySet
# Not exposed as DispatchKey attributes (as in torch 2.15); parsing gives a usable key.
GENERIC_MODE = C._dispatch_key_parse("TESTING_ONLY_GenericMode")
GENERIC_WRAPPER = C._dispatch_key_parse("TESTING_ONLY_GenericWrapper")


def _forget_ns(ns: str) -> None:
    # The torch tests' tearDown: drop the cached ops.<ns> namespace.
    if ns in vars(ops):
        delattr(ops, ns)


@pytest.fixture
def ns():
    name = fresh_ns("pyreg")
    yield name
    _forget_ns(name)


# ---------------------------------------------------------------------------------------------
# Library construction
# ---------------------------------------------------------------------------------------------


def test_unsupported_kind():
    with pytest.raises(ValueError, match="Unsupported kind") as ei:
        Library("myns", "BLA")
    assert ei.value.args == ("Unsupported kind: ", "BLA")


@pytest.mark.parametrize("kind", ["DEF", "FRAGMENT"])
def test_reserved_namespace(kind):
    with pytest.raises(ValueError, match="reserved namespace") as ei:
        Library("prim", kind)
    assert ei.value.args == ("prim", " is a reserved namespace. Please try creating a library with another name.")


def test_reserved_namespace_impl_allowed():
    lib = Library("prim", "IMPL")
    lib._destroy()


def test_library_repr(ns):
    lib = Library(ns, "IMPL", "CPU")
    try:
        assert repr(lib) == f"Library(kind=IMPL, ns={ns}, dispatch_key=CPU)>"
    finally:
        lib._destroy()


def test_bogus_dispatch_key_in_library(ns):
    with pytest.raises(RuntimeError) as ei:
        Library(ns, "IMPL", "NotAKey")
    assert str(ei.value) == "could not parse dispatch key: NotAKey"


def test_second_def_library_names_both_call_sites(ns):
    lib1 = Library(ns, "DEF")  # FIRST_LIB_MARKER
    try:
        lib1.define("duplicate_op(Tensor x) -> Tensor")
        with pytest.raises(RuntimeError) as ei:
            Library(ns, "DEF")  # SECOND_LIB_MARKER
        msg = str(ei.value)
        assert msg.startswith(f"Only a single TORCH_LIBRARY can be used to register the namespace {ns}; ")
        assert "/dev/null" not in msg
        lines = [int(n) for n in re.findall(r"test_python_registration\.py:(\d+)", msg)]
        assert len(lines) == 2
        with open(__file__) as f:
            src = f.read().split("\n")
        assert "FIRST_LIB_MARKER" in src[lines[0] - 1]
        assert "SECOND_LIB_MARKER" in src[lines[1] - 1]
    finally:
        lib1._destroy()


# ---------------------------------------------------------------------------------------------
# define / impl / dump
# ---------------------------------------------------------------------------------------------


def test_define_returns_name_and_dump(ns):
    with _scoped_library(ns, "FRAGMENT") as lib:
        assert lib.define("foo(Tensor x) -> Tensor") == "foo"
        assert lib.define("foo.ovl(Tensor x, *, int k=2) -> (Tensor, Tensor)") == "foo"
        lib.impl("foo", lambda x: x, "CPU")
        lib.impl("foo", fallthrough_kernel, "AutogradCPU")
        lib.impl("foo", lambda x: x, "CompositeExplicitAutograd")
        dump = C._dispatch_dump(f"{ns}::foo")
        loc = re.escape(library.__file__) + r":\d+"
        assert re.fullmatch(
            rf"name: {ns}::foo\n"
            rf"schema: {ns}::foo\(Tensor x\) -> Tensor\n"
            rf"debug: registered at {loc}\n"
            r"alias analysis kind: FROM_SCHEMA\n"
            rf"CPU: registered at {loc} :: \(none\) \[ boxed \]\n"
            rf"AutogradCPU: registered at {loc} :: \(none\) \[ fallthrough boxed \]\n"
            rf"CompositeExplicitAutograd\[alias\]: registered at {loc} :: \(none\) \[ boxed \]\n",
            dump,
        ), dump
        assert C._dispatch_dump(f"{ns}::foo.ovl").split("\n")[1] == (
            f"schema: {ns}::foo.ovl(Tensor x, *, int k=2) -> (Tensor, Tensor)"
        )
        table = C._dispatch_dump_table(f"{ns}::foo")
        keyed = {line.split(":", 1)[0]: line for line in table.split("\n") if line}
        assert keyed["Undefined"].endswith("[default backend kernel]")
        assert keyed["CPU"].endswith(" [kernel]")
        assert keyed["AutogradCPU"].startswith("AutogradCPU: fallthrough registered at ")
        assert keyed["AutogradCPU"].endswith(" [kernel]")
        assert keyed["AutogradCUDA"].endswith("[backend fallback]")
    assert C._dispatch_dump(f"{ns}::foo") == ""
    assert C._dispatch_dump(f"{ns}::foo.ovl") == ""


def test_define_invalid_alias_analysis(ns):
    with _scoped_library(ns, "FRAGMENT") as lib:
        with pytest.raises(RuntimeError) as ei:
            lib.define("foo(Tensor x) -> Tensor", alias_analysis="PURE_FUNCTION")
        assert str(ei.value) == "Invalid alias_analysis type PURE_FUNCTION"
        assert C._dispatch_dump(f"{ns}::foo") == ""


def test_define_with_conservative_alias(ns):
    with _scoped_library(ns, "FRAGMENT") as lib:
        lib.define("foo(Tensor x) -> Tensor", alias_analysis="CONSERVATIVE")
        assert C._dispatch_dump(f"{ns}::foo").split("\n")[3] == "alias analysis kind: CONSERVATIVE"


def test_impl_not_callable(ns):
    with _scoped_library(ns, "FRAGMENT") as lib:
        lib.define("foo(Tensor x) -> Tensor")
        with pytest.raises(TypeError) as ei:
            lib.impl("foo", [], "AutogradCPU")
        assert str(ei.value) == "Input function is required to be a callable but found type <class 'list'>"


def test_python_duplicate_impl_guard(ns):
    with _scoped_library(ns, "FRAGMENT") as lib:
        lib.define("foo(Tensor x) -> Tensor")
        lib.impl("foo", lambda x: x, "CPU")
        before = C._dispatch_dump(f"{ns}::foo")
        with pytest.raises(RuntimeError) as ei:
            lib.impl("foo", lambda x: x, "CPU")
        assert str(ei.value) == (
            "This is not allowed since there's already a kernel registered from python overriding foo's "
            f"behavior for CPU dispatch key and {ns} namespace."
        )
        assert C._dispatch_dump(f"{ns}::foo") == before
        # A second library hits the same (global) guard.
        with _scoped_library(ns, "FRAGMENT") as lib2:
            with pytest.raises(RuntimeError, match="already a kernel registered from python"):
                lib2.impl(f"{ns}::foo", lambda x: x, "CPU")
    # Once the first library is gone the key is free again.
    with _scoped_library(ns, "FRAGMENT") as lib:
        lib.define("foo(Tensor x) -> Tensor")
        lib.impl("foo", lambda x: x, "CPU")


def test_allow_override(ns):
    with _scoped_library(ns, "FRAGMENT") as lib:
        lib.define("foo(Tensor x) -> Tensor")
        lib.impl("foo", lambda x: opdispatch.zeros(1), "CPU")
        lib.impl("foo", lambda x: x, "CPU", allow_override=True)
        t = opdispatch.ones(2)
        assert getattr(ops, ns).foo(t) is t


def test_impl_with_overload_object(ns):
    with _scoped_library(ns, "FRAGMENT") as lib:
        lib.define("foo(Tensor x) -> Tensor")
        lib.define("foo.two(Tensor x, Tensor y) -> Tensor")
        lib.impl(getattr(ops, ns).foo.two, lambda x, y: y, "CPU")
        lib.impl(getattr(ops, ns).foo.default, lambda x: x, "CPU")
        a, b = opdispatch.ones(1), opdispatch.zeros(1)
        assert getattr(ops, ns).foo.two(a, b) is b
        assert getattr(ops, ns).foo.default(a) is a
        with pytest.raises(RuntimeError) as ei:
            lib.impl(42, lambda x: x, "CPU")
        assert str(ei.value) == "impl should be passed either a name or an OpOverload object as the first argument"


def test_impl_decorator(ns):
    lib = Library(ns, "DEF")
    try:
        lib.define("sum(Tensor self) -> Tensor")

        @library.impl(lib, "sum", "CPU")
        def my_sum(x):
            return x

        t = opdispatch.ones(3)
        assert getattr(ops, ns).sum(t) is t
    finally:
        lib._destroy()


def test_library_dispatch_key_inherited_and_inconsistent(ns):
    with _scoped_library(ns, "FRAGMENT") as d:
        d.define("sum(Tensor self) -> Tensor")
        with _scoped_library(ns, "IMPL", dispatch_key="CPU") as lib:
            with pytest.raises(RuntimeError) as ei:
                lib.impl("sum", lambda x: x, "Conjugate")
            assert first_line(str(ei.value)).startswith(
                'impl("sum", ...): Explicitly provided dispatch key (Conjugate) is inconsistent with the dispatch '
                "key of the enclosing TORCH_LIBRARY_IMPL block (CPU).  Please declare a separate TORCH_LIBRARY_IMPL "
                "block for this dispatch key and move your impl() there.  (Error occurred while processing "
                "TORCH_LIBRARY_IMPL block at "
            )
            lib.impl(f"{ns}::sum", lambda x: x)  # key inherited from the library
            assert C._dispatch_has_kernel_for_dispatch_key(f"{ns}::sum", "CPU")
            t = opdispatch.ones(2)
            assert getattr(ops, ns).sum(t) is t


def test_impl_foreign_namespace_in_def_library(ns):
    with _scoped_library(ns, "DEF") as lib:
        lib.define("neg(Tensor x) -> Tensor")
        with pytest.raises(RuntimeError) as ei:
            lib.impl(f"{ns}_other::neg", lambda x: x, "CPU")
        assert first_line(str(ei.value)).startswith(
            f'impl("{ns}_other::neg", ...): Explicitly provided namespace ({ns}_other) in operator name does not '
            f"match namespace of enclosing TORCH_LIBRARY block ({ns}).  Move this definition to the TORCH_LIBRARY "
            "block corresponding to this namespace (and consider deleting the namespace from your schema string.)"
        )


def test_meta_impl_refused_over_cia(ns):
    with _scoped_library(ns, "FRAGMENT") as lib:
        lib.define("foo(Tensor x) -> Tensor")
        lib.impl("foo", lambda x: x, "CompositeImplicitAutograd")
        with pytest.raises(RuntimeError) as ei:
            lib.impl("foo", lambda x: x, "Meta")
        assert str(ei.value) == (
            "We should not register a meta kernel directly to the operator 'foo', because it has a "
            "CompositeImplicitAutograd kernel in core. Instead we should let the operator decompose, and ensure "
            "that we have meta kernels for the base ops that it decomposes into."
        )


# ---------------------------------------------------------------------------------------------
# Lifetime
# ---------------------------------------------------------------------------------------------


def test_scoped_library_restores(ns):
    with _scoped_library(ns, "FRAGMENT") as outer:
        outer.define("foo(Tensor x) -> Tensor")
        outer.impl("foo", lambda x: opdispatch.zeros(1), "CPU")
        before = C._dispatch_dump(f"{ns}::foo")
        with _scoped_library(ns, "IMPL") as inner:
            inner.impl("foo", lambda x: x, "Meta")
            assert C._dispatch_has_kernel_for_dispatch_key(f"{ns}::foo", "Meta")
        assert C._dispatch_dump(f"{ns}::foo") == before
        assert not C._dispatch_has_kernel_for_dispatch_key(f"{ns}::foo", "Meta")
    assert C._dispatch_dump(f"{ns}::foo") == ""


def test_destroying_library_by_gc(ns):
    lib = Library(ns, "FRAGMENT")
    lib.define("foo(Tensor x) -> Tensor")
    lib.impl("foo", lambda x: x, "CPU")
    assert f"{ns}/foo/CPU" in library._impls
    assert f"{ns}::foo" in library._defs
    del lib
    gc.collect()
    assert C._dispatch_dump(f"{ns}::foo") == ""
    assert f"{ns}/foo/CPU" not in library._impls
    assert f"{ns}::foo" not in library._defs


def test_destroy_clears_ops_cache(ns):
    lib = Library(ns, "FRAGMENT")
    lib.define("my_func(Tensor x) -> Tensor")
    lib.impl("my_func", lambda x: x, "CPU")
    t = opdispatch.ones(1)
    assert getattr(ops, ns).my_func(t) is t
    lib._destroy()
    assert C._dispatch_dump(f"{ns}::my_func") == ""
    assert "my_func" not in vars(getattr(ops, ns))
    with pytest.raises(AttributeError) as ei:
        getattr(ops, ns).my_func
    assert str(ei.value) == f"'_OpNamespace' '{ns}' object has no attribute 'my_func'"


def test_define_after_packet_cached_sees_new_overload(ns):
    with _scoped_library(ns, "FRAGMENT") as lib:
        lib.define("foo(Tensor x) -> Tensor")
        assert getattr(ops, ns).foo.overloads() == ["default"]
        lib.define("foo.two(Tensor x, Tensor y) -> Tensor")
        assert sorted(getattr(ops, ns).foo.overloads()) == ["default", "two"]


# ---------------------------------------------------------------------------------------------
# ops.<ns>.<op>
# ---------------------------------------------------------------------------------------------


def test_ops_packets_and_overloads(ns):
    with _scoped_library(ns, "FRAGMENT") as lib:
        lib.define("foo(Tensor x) -> Tensor")
        lib.define("foo.ovl(Tensor x, Tensor y) -> Tensor")
        lib.impl("foo", lambda x: x, "CPU")
        lib.impl("foo.ovl", lambda x, y: y, "CPU")
        nsobj = getattr(ops, ns)
        packet = nsobj.foo
        assert packet is nsobj.foo  # cached
        assert str(packet) == f"{ns}.foo"
        assert repr(packet) == f"<OpOverloadPacket(op='{ns}.foo')>"
        assert packet.overloads() == ["default", "ovl"]
        d = packet.default
        assert str(d) == f"{ns}.foo.default"
        assert repr(d) == f"<OpOverload(op='{ns}.foo', overload='default')>"
        assert d.name() == f"{ns}::foo"
        assert packet.ovl.name() == f"{ns}::foo.ovl"
        assert str(d._schema) == f"{ns}::foo(Tensor x) -> Tensor"
        assert str(packet.ovl._schema) == f"{ns}::foo.ovl(Tensor x, Tensor y) -> Tensor"
        a, b = opdispatch.ones(1), opdispatch.zeros(1)
        assert packet(a) is a  # overload resolution picks the one-argument schema
        assert packet(a, b) is b
        with pytest.raises(AttributeError) as ei:
            packet.nope
        assert str(ei.value) == f"The underlying op of '{ns}.foo' has no overload name 'nope'"


def test_ops_unknown_op():
    with pytest.raises(AttributeError) as ei:
        ops.nonexistent_ns_odt.foo
    assert str(ei.value) == "'_OpNamespace' 'nonexistent_ns_odt' object has no attribute 'foo'"
    _forget_ns("nonexistent_ns_odt")


def test_ops_dunder_on_namespace():
    with pytest.raises(AttributeError) as ei:
        ops.some_ns_odt.__origin__
    assert str(ei.value) == "Invalid attribute '__origin__' for '_OpNamespace' 'some_ns_odt'"
    _forget_ns("some_ns_odt")


# ---------------------------------------------------------------------------------------------
# Calls
# ---------------------------------------------------------------------------------------------


def test_calls_bind_keywords_through_vectorcall_and_tp_call(ns):
    # OpOverload calls take the native vectorcall entry; the same binding rules must hold
    # there as through tp_call (`_dispatch_call_boxed`, a plain `__call__` invocation).
    with _scoped_library(ns, "FRAGMENT") as lib:
        lib.define("f(Tensor self, int a=1, *, int k=2) -> int[]")
        lib.impl("f", lambda self, a=1, *, k=2: [a, k], "CPU")
        t = opdispatch.ones(1)
        op = getattr(ops, ns).f.default
        handle = C._dispatch_find_schema_or_throw(f"{ns}::f", "")
        callers = [
            op,
            getattr(ops, ns).f,
            lambda *a, **k: C._DispatchOperatorHandle.__call__(op, *a, **k),
            lambda *a, **k: C._dispatch_call_boxed(handle, *a, **k),
        ]
        for call in callers:
            assert call(t) == [1, 2]
            assert call(t, 5) == [5, 2]
            assert call(t, k=7) == [1, 7]
            assert call(self=t, a=3, k=4) == [3, 4]
            assert call(t, **{"k": 9, "a": 8}) == [8, 9]
            with pytest.raises(RuntimeError, match="Unknown keyword argument 'z'"):
                call(t, z=1)
            with pytest.raises(RuntimeError, match="specified both as positional and keyword"):
                call(t, self=t)
            with pytest.raises(RuntimeError, match="missing value for argument 'self'"):
                call()
            with pytest.raises(RuntimeError, match=r"takes 2 positional argument\(s\) but 3 was/were given"):
                call(t, 1, 2)
            with pytest.raises(RuntimeError, match="Expected a value of type 'int' for argument 'a'"):
                call(t, "x")


def test_enable_vectorcall_respects_overridden_call():
    class Custom(C._DispatchOperatorHandle):
        def __call__(self, *args, **kwargs):
            return "custom"

    class Plain(C._DispatchOperatorHandle):
        pass

    assert C._enable_vectorcall(Custom) is False
    assert C._enable_vectorcall(Plain) is True
    assert Custom("aten::add", "Tensor")() == "custom"
    a = opdispatch.ones(2)
    assert Plain("aten::add", "Tensor")(a, a).tolist() == [2.0, 2.0]
    with pytest.raises(TypeError, match="subclass of _DispatchOperatorHandle"):
        C._enable_vectorcall(int)


def test_with_keyset_receives_dispatch_keyset(ns):
    seen = []

    def kern(ks, x):
        seen.append(ks)
        return x

    with _scoped_library(ns, "FRAGMENT") as lib:
        lib.define("foo(Tensor x) -> Tensor")
        lib.impl("foo", kern, "CPU", with_keyset=True)
        t = opdispatch.ones(2)
        assert getattr(ops, ns).foo(t) is t
    assert len(seen) == 1
    assert isinstance(seen[0], KS)
    assert repr(seen[0]) == "DispatchKeySet(CPU)"
    assert seen[0].highestPriorityTypeId() == DK.CPU


def test_with_keyset_autograd_kernel_redispatch(ns):
    seen = []

    def autograd_kernel(ks, x):
        seen.append(("autograd", repr(ks)))
        below = ks & C._dispatch_keyset_full_after(DK.AutogradOther)
        return getattr(ops, ns).foo.default.redispatch(below, x)

    def cpu_kernel(x):
        seen.append(("cpu", None))
        return x

    with _scoped_library(ns, "FRAGMENT") as lib:
        lib.define("foo(Tensor x) -> Tensor")
        lib.impl("foo", autograd_kernel, "AutogradCPU", with_keyset=True)
        lib.impl("foo", cpu_kernel, "CPU")
        t = opdispatch.ones(2)
        assert getattr(ops, ns).foo(t) is t
    assert seen == [("autograd", "DispatchKeySet(CPU, AutogradCPU)"), ("cpu", None)]


def test_fallthrough_kernel_skips_key(ns):
    calls = []
    with _scoped_library(ns, "FRAGMENT") as lib:
        lib.define("foo(Tensor x) -> Tensor")
        lib.impl("foo", lambda x: calls.append("autograd") or x, "AutogradCPU")
        lib.impl("foo", lambda x: calls.append("cpu") or x, "CPU")
        t = opdispatch.ones(1)
        getattr(ops, ns).foo(t)
        assert calls == ["autograd"]
        with _scoped_library(ns, "IMPL") as over:
            over.impl("foo", fallthrough_kernel, "AutogradCPU", allow_override=True)
            assert C._dispatch_kernel_for_dispatch_key_is_fallthrough(f"{ns}::foo", "AutogradCPU")
            getattr(ops, ns).foo(t)
            assert calls == ["autograd", "cpu"]
        getattr(ops, ns).foo(t)
        assert calls == ["autograd", "cpu", "autograd"]


def test_fallthrough_kernel_never_called_directly():
    with pytest.raises(NotImplementedError) as ei:
        fallthrough_kernel()
    assert str(ei.value) == "fallthrough_kernel() should never be called."


def test_fallthrough_for_dense_key_with_meta_in_tls(ns):
    called = []

    def sum_meta(x):
        called.append("meta")
        return x

    with _scoped_library(ns, "FRAGMENT") as lib:
        lib.define("sum(Tensor self) -> Tensor")
        lib.impl("sum", fallthrough_kernel, "CPU")
        lib.impl("sum", sum_meta, "Meta")
        a = opdispatch.ones(2)
        with C._IncludeDispatchKeyGuard(DK.Meta):
            getattr(ops, ns).sum.default(a)
    assert called == ["meta"]


def test_python_fallback_receives_op(ns):
    seen = []

    def my_fallback(op, *args, **kwargs):
        seen.append((op, args, kwargs))
        with C._ExcludeDispatchKeyGuard(KS(GENERIC_MODE)):
            return op(*args, **kwargs)

    with _scoped_library(ns, "FRAGMENT") as lib:
        lib.define("foo(Tensor x, *, int k=2) -> Tensor")
        lib.impl("foo", lambda x, k=2: x, "CPU")
        with _scoped_library("_", "IMPL") as g:
            g.fallback(my_fallback, "TESTING_ONLY_GenericMode")
            t = opdispatch.ones(1)
            include = C._dispatch_tls_local_include_set() | KS(GENERIC_MODE)
            with C._ForceDispatchKeyGuard(include, C._dispatch_tls_local_exclude_set()):
                assert getattr(ops, ns).foo(t, k=3) is t
        assert not C._dispatch_has_backend_fallback(GENERIC_MODE)
    assert len(seen) == 1
    op, args, kwargs = seen[0]
    assert str(op) == f"{ns}.foo.default"
    # The fallback runs hermetically: it gets a fresh wrapper of the same tensor.
    assert len(args) == 1 and isinstance(args[0], opdispatch.Tensor)
    assert kwargs == {"k": 3}


def test_python_fallback_with_keyset_and_fallthrough(ns):
    order = []

    def first(ks, op, *args, **kwargs):
        order.append(("first", ks.has(GENERIC_MODE)))
        return op.redispatch(ks.remove(GENERIC_MODE), *args, **kwargs)

    def second(op, *args, **kwargs):
        order.append(("second",))
        with C._ExcludeDispatchKeyGuard(KS(GENERIC_WRAPPER)):
            return op(*args, **kwargs)

    with _scoped_library(ns, "FRAGMENT") as lib:
        lib.define("foo(Tensor x) -> Tensor")
        lib.impl("foo", lambda x: x, "CPU")
        t = opdispatch.ones(1)
        keys = KS(GENERIC_MODE) | KS(GENERIC_WRAPPER)
        include = C._dispatch_tls_local_include_set() | keys
        with _scoped_library("_", "IMPL") as g:
            g.fallback(first, "TESTING_ONLY_GenericMode", with_keyset=True)
            g.fallback(second, "TESTING_ONLY_GenericWrapper")
            with C._ForceDispatchKeyGuard(include, C._dispatch_tls_local_exclude_set()):
                assert getattr(ops, ns).foo(t) is t
            # second's own call re-enters the dispatcher, where GenericMode is still included.
            assert order == [("first", True), ("second",), ("first", True)]
        order.clear()
        with _scoped_library("_", "IMPL") as g:
            g.fallback(fallthrough_kernel, "TESTING_ONLY_GenericMode")
            g.fallback(second, "TESTING_ONLY_GenericWrapper")
            with C._ForceDispatchKeyGuard(include, C._dispatch_tls_local_exclude_set()):
                assert getattr(ops, ns).foo(t) is t
            assert order == [("second",)]


def test_fallback_needs_global_namespace(ns):
    with _scoped_library(ns, "IMPL") as lib:
        with pytest.raises(RuntimeError) as ei:
            lib.fallback(lambda op, *a: None, "CPU")
        assert str(ei.value) == (
            f'Fallback can only be registered using library fragment on the global namespace "_" but it is {ns}'
        )


def test_kernel_exception_propagates_unchanged(ns):
    class MyError(Exception):
        pass

    err = MyError("boom from kernel")

    def kern(x):
        raise err

    with _scoped_library(ns, "FRAGMENT") as lib:
        lib.define("foo(Tensor x) -> Tensor")
        lib.impl("foo", kern, "CPU")
        with pytest.raises(MyError) as ei:
            getattr(ops, ns).foo(opdispatch.ones(1))
        assert ei.value is err
        assert str(ei.value) == "boom from kernel"
        # Builtin exception types too, and the dispatcher still works afterwards.
        lib.impl("foo", lambda x: {}["missing"], "CPU", allow_override=True)
        with pytest.raises(KeyError) as ei2:
            getattr(ops, ns).foo(opdispatch.ones(1))
        assert ei2.value.args == ("missing",)
        lib.impl("foo", lambda x: x, "CPU", allow_override=True)
        t = opdispatch.ones(1)
        assert getattr(ops, ns).foo(t) is t


def test_reentrant_call_from_kernel(ns):
    depth = []

    def outer(x):
        depth.append("outer")
        return getattr(ops, ns).inner(x)

    def inner(x):
        depth.append("inner")
        return x

    with _scoped_library(ns, "FRAGMENT") as lib:
        lib.define("outer(Tensor x) -> Tensor")
        lib.define("inner(Tensor x) -> Tensor")
        lib.impl("outer", outer, "CPU")
        lib.impl("inner", inner, "CPU")
        t = opdispatch.ones(1)
        assert getattr(ops, ns).outer(t) is t
        # recursion through the same op
        lib.define("countdown(Tensor x, int n) -> Tensor")
        lib.impl("countdown", lambda x, n: x if n == 0 else getattr(ops, ns).countdown(x, n - 1), "CPU")
        assert getattr(ops, ns).countdown(t, 20) is t
    assert depth == ["outer", "inner"]


def test_multiple_returns(ns):
    with _scoped_library(ns, "FRAGMENT") as lib:
        lib.define("two(Tensor x) -> (Tensor, Tensor)")
        lib.impl("two", lambda x: (x, x), "CPU")
        t = opdispatch.ones(1)
        r = getattr(ops, ns).two(t)
        assert isinstance(r, tuple) and len(r) == 2 and r[0] is t and r[1] is t


def test_wrong_return_type_is_torchs_cast_error(ns):
    with _scoped_library(ns, "FRAGMENT") as lib:
        lib.define("m1(Tensor x) -> Tensor")
        lib.impl("m1", lambda x: 3, "CPU")
        with pytest.raises(RuntimeError) as ei:
            getattr(ops, ns).m1(opdispatch.ones(1))
        assert str(ei.value) == "Unable to cast 3 to Tensor"


def test_none_returning_op_must_return_none(ns):
    with _scoped_library(ns, "FRAGMENT") as lib:
        lib.define("n0(Tensor x) -> ()")
        lib.impl("n0", lambda x: 5, "CPU")
        with pytest.raises(RuntimeError) as ei:
            getattr(ops, ns).n0(opdispatch.ones(1))
        assert str(ei.value) == (
            f"Expected PythonKernelHolder for {ns}::n0 to return None but it returned something else instead."
        )


def test_wrong_return_count_tuple_names_op(ns):
    with _scoped_library(ns, "FRAGMENT") as lib:
        lib.define("two(Tensor x) -> (Tensor, Tensor)")
        lib.impl("two", lambda x: (x, x, x), "CPU")
        with pytest.raises(RuntimeError) as ei:
            getattr(ops, ns).two(opdispatch.ones(1))
        assert f"{ns}::two" in str(ei.value)


def test_single_tensor_for_two_returns_is_not_a_sequence(ns):
    # torch's text (pybind's py::sequence cast): a tensor is iterable, but not a sequence.
    with _scoped_library(ns, "FRAGMENT") as lib:
        lib.define("two(Tensor x) -> (Tensor, Tensor)")
        lib.impl("two", lambda x: x, "CPU")
        with pytest.raises(TypeError) as ei:
            getattr(ops, ns).two(opdispatch.ones(1))
        assert str(ei.value) == "Object of type 'Tensor' is not an instance of 'sequence'"


NO_TENSOR = (
    "There were no tensor arguments to this function (e.g., you passed an empty list of Tensors), but no fallback "
    "function is registered for schema {op}.  This usually means that this function requires a non-empty list of "
    "Tensors, or that you (the operator writer) forgot to register a fallback function.  Available functions are "
    "[{keys}]."
)
BASE_KEYS = "Meta, BackendSelect, ADInplaceOrView, AutogradOther, AutogradCPU, AutogradCUDA, AutogradXLA, " \
    "AutogradPrivateUse1, AutogradMeta"


def test_no_tensor_arguments_error(ns):
    with _scoped_library(ns, "FRAGMENT") as lib:
        lib.define("f0() -> ()")
        lib.define("fn(int x) -> ()")
        with pytest.raises(NotImplementedError) as ei:
            getattr(ops, ns).f0()
        assert filter_key_lists(first_line(str(ei.value))) == NO_TENSOR.format(op=f"{ns}::f0", keys=BASE_KEYS)
        lib.impl("fn", lambda x: None, "CPU")
        with pytest.raises(NotImplementedError) as ei:
            getattr(ops, ns).fn(1)
        assert filter_key_lists(first_line(str(ei.value))) == NO_TENSOR.format(
            op=f"{ns}::fn", keys="CPU, " + BASE_KEYS
        )
        # The rest of the message is the computed table.
        assert "\n\nMeta: " in str(ei.value) or "\n\nCPU: " in str(ei.value)
        # A CompositeImplicitAutograd kernel serves calls without tensors.
        lib.impl("f0", lambda: None, "CompositeImplicitAutograd")
        assert getattr(ops, ns).f0() is None


def test_meta_fallback_error(ns):
    with _scoped_library(ns, "FRAGMENT") as lib:
        lib.define("f1(Tensor self) -> Tensor")
        lib.impl("f1", lambda x: x, "CPU")
        with pytest.raises(NotImplementedError) as ei:
            getattr(ops, ns).f1(opdispatch.empty(2, device="meta"))
        assert first_line(str(ei.value)) == (
            f"{ns}::f1: attempted to run this operator with Meta tensors, but there was no fake impl or Meta kernel "
            "registered. You may have run into this message while using an operator with PT2 compilation APIs "
            "(torch.compile/torch.export); in order to use this operator with those APIs you'll need to add a fake "
            "impl. Please see the following for next steps:  "
            "https://pytorch.org/tutorials/advanced/custom_ops_landing_page.html"
        )


def test_could_not_run_error(ns):
    with _scoped_library(ns, "FRAGMENT") as lib:
        lib.define("f1(Tensor self) -> Tensor")
        lib.impl("f1", lambda x: x, "Meta")
        with pytest.raises(NotImplementedError) as ei:
            getattr(ops, ns).f1(opdispatch.ones(2))
        assert filter_key_lists(first_line(str(ei.value))) == (
            f"Could not run '{ns}::f1' with arguments from the 'CPU' backend. This could be because the operator "
            "doesn't exist for this backend, or was omitted during the selective/custom build process (if using "
            "custom build). If you are a Facebook employee using PyTorch on mobile, please visit "
            f"https://fburl.com/ptmfixes for possible resolutions. '{ns}::f1' is only available for these backends: "
            f"[{BASE_KEYS}]."
        )


def test_meta_kernel_and_mixed_devices(ns):
    with _scoped_library(ns, "FRAGMENT") as lib:
        lib.define("f2(Tensor self, Tensor other) -> Tensor")
        lib.impl("f2", lambda x, y: x, "CPU")
        lib.impl("f2", lambda x, y: y, "Meta")
        c, m = opdispatch.ones(1), opdispatch.empty(1, device="meta")
        assert getattr(ops, ns).f2(c, c) is c
        assert getattr(ops, ns).f2(m, m) is m
        # Meta has a higher priority than CPU in a mixed call.
        assert getattr(ops, ns).f2(c, m) is m


def test_call_boxed_and_find_schema(ns):
    with _scoped_library(ns, "FRAGMENT") as lib:
        lib.define("foo(Tensor x) -> Tensor")
        lib.impl("foo", lambda x: x, "CPU")
        h = C._dispatch_find_schema_or_throw(f"{ns}::foo", "")
        assert h.schema() if isinstance(h.schema(), str) else str(h.schema())
        t = opdispatch.ones(1)
        assert C._dispatch_call_boxed(h, t) is t
        with pytest.raises(RuntimeError) as ei:
            C._dispatch_find_schema_or_throw(f"{ns}::foo", "nope")
        assert str(ei.value).startswith(f"Could not find schema for {ns}::foo.nope")


def test_functional_impl_forms(ns):
    import opdispatch as o
    from opdispatch.library import Library, impl

    lib = Library(ns, "DEF")
    try:
        lib.define("f(Tensor x) -> Tensor")
        lib.define("g(Tensor x) -> Tensor")
        seen = []

        @impl(f"{ns}::f", ["cpu", "meta"], lib=lib)
        def f_kernel(x):
            seen.append(x.device.type)
            return x

        impl(f"{ns}::g", "default", lambda x: (seen.append("g"), x)[1], lib=lib)
        getattr(o.ops, ns).f(o.ones(1))
        getattr(o.ops, ns).f(o.empty(1, device="meta"))
        getattr(o.ops, ns).g(o.ones(1))
        assert seen == ["cpu", "meta", "g"]
        dump = o._C._dispatch_dump(f"{ns}::f")
        assert "\nCPU: " in dump and "\nMeta: " in dump
        with pytest.raises(ValueError, match="namespace::name"):
            impl("no_namespace", "cpu", lambda x: x)
    finally:
        lib._destroy()


def test_overload_schema_object():
    import opdispatch as o

    s = o.ops.aten.add.Tensor._schema
    assert str(s) == "aten::add.Tensor(Tensor self, Tensor other, *, Scalar alpha=1) -> Tensor"
    assert (s.name, s.overload_name) == ("aten::add", "Tensor")
    assert [a.name for a in s.arguments] == ["self", "other", "alpha"]
    assert [a.kwarg_only for a in s.arguments] == [False, False, True]
    assert [a.has_default_value for a in s.arguments] == [False, False, True]
    assert [(r.name, r.type) for r in s.returns] == [("", "Tensor")]
    assert o.ops.aten.add.Tensor.name() == "aten::add.Tensor"


# ---------------------------------------------------------------------------------------------
# Tags
# ---------------------------------------------------------------------------------------------


def test_tag_enum_matches_torch():
    Tag = opdispatch.Tag
    assert Tag is C.Tag
    # torch 2.15's members, values and printing; like its pybind11 enum, int() and hash() give
    # the value, but a tag is not an int.
    assert [t.name for t in Tag] == [
        "core", "cudagraph_unsafe", "data_dependent_output", "dynamic_output_shape",
        "flexible_layout", "generated", "inplace", "inplace_view", "maybe_aliasing_or_mutating",
        "needs_contiguous_strides", "needs_exact_strides", "needs_fixed_stride_order",
        "nondeterministic_bitwise", "nondeterministic_seeded", "out", "out_variant",
        "pointwise", "pt2_compliant_tag", "reduction", "view_copy",
    ]
    assert [int(t) for t in Tag] == list(range(20))
    assert repr(Tag.pointwise) == "<Tag.pointwise: 16>"
    assert str(Tag.pointwise) == "Tag.pointwise"
    assert Tag(16) is Tag.pointwise
    assert hash(Tag.pointwise) == hash(16) and Tag.pointwise != 16
    assert bool(Tag.core) and not isinstance(Tag.core, int)
    assert Tag.core not in [0] and Tag.core in [Tag.core]
    with pytest.raises(TypeError):
        Tag.pointwise + 1


def test_define_stores_tags(ns):
    Tag = opdispatch.Tag
    lib = Library(ns, "DEF")
    lib.define("f(Tensor x) -> Tensor", tags=(Tag.pointwise, Tag.pt2_compliant_tag))
    lib.define("g(Tensor x) -> Tensor", tags=Tag.core)  # one tag alone is accepted too
    lib.define("h(Tensor x) -> Tensor")
    library.define(f"{ns}::k", "(Tensor x) -> Tensor", lib=lib, tags=[Tag.inplace_view])
    op = getattr(ops, ns)
    assert op.f.default.tags == [Tag.pointwise, Tag.pt2_compliant_tag]
    assert op.g.default.tags == [Tag.core]
    assert op.h.default.tags == []
    assert op.k.default.tags == [Tag.inplace_view]
    assert isinstance(op.f.default.tags, list)
    # A packet has no tags of its own: torch looks for an overload named "tags".
    with pytest.raises(AttributeError, match=f"The underlying op of '{ns}.f' has no overload name 'tags'"):
        op.f.tags


@pytest.mark.parametrize("bad", [("pointwise",), (1,), "pointwise", (opdispatch.Tag.core, None)])
def test_define_rejects_non_tags(ns, bad):
    lib = Library(ns, "DEF")
    with pytest.raises(TypeError, match="tags must be opdispatch.Tag members"):
        lib.define("f(Tensor x) -> Tensor", tags=bad)
    # Nothing was registered: the same def goes through afterwards.
    lib.define("f(Tensor x) -> Tensor", tags=())
    assert getattr(ops, ns).f.default.tags == []


# torch.library's checks of schemas tagged Tag.out / Tag.inplace; messages recorded from torch 2.15.
_TAGGED_SCHEMA_CASES = [
    ("g(Tensor x) -> Tensor", "inplace",
     "Schema tagged with torch.Tag.inplace requires the first positional argument to be mutable (e.g., Tensor(a!)). Got: g(Tensor x) -> Tensor"),
    ("g2(Tensor(a!) x) -> Tensor(a!)", "inplace", None),
    ("h(Tensor x) -> Tensor", "out",
     "Schema tagged with torch.Tag.out must have at least one mutable argument. Got: h(Tensor x) -> Tensor"),
    ("h2(Tensor(a!) x) -> Tensor(a!)", "out",
     "Schema tagged with torch.Tag.out requires all mutable arguments to be keyword-only (after the *). Found mutable positional args: ['x']. Got: h2(Tensor(a!) x) -> Tensor(a!)"),
    ("h3(Tensor x, *, Tensor(a!) out) -> Tensor(b!)", "out",
     "Return 0 of schema tagged with torch.Tag.out must alias mutable arg 'out' (return aliases {'b'} but arg aliases {'a'}). Got: h3(Tensor x, *, Tensor(a!) out) -> Tensor(b!)"),
    ("h4(Tensor x, *, Tensor(a!) out) -> Tensor", "out",
     "Return 0 of schema tagged with torch.Tag.out must alias mutable arg 'out'. Got: h4(Tensor x, *, Tensor(a!) out) -> Tensor"),
    ("h5(Tensor x, *, Tensor(a!) out) -> Tensor(a!)", "out", None),
    ("i(int x) -> Tensor", "inplace",
     "Schema tagged with torch.Tag.inplace requires the first positional argument to be mutable (e.g., Tensor(a!)). Got: i(int x) -> Tensor"),
    ("i2(Tensor(a!) x) -> (Tensor(a!), Tensor)", "inplace",
     "Schema tagged with torch.Tag.inplace must return exactly one value (the first argument). Got 2 returns. Got: i2(Tensor(a!) x) -> (Tensor(a!), Tensor)"),
    ("i3(Tensor(a!) x) -> Tensor", "inplace",
     "Schema tagged with torch.Tag.inplace must return the first mutable argument (return must alias the first argument). Got: i3(Tensor(a!) x) -> Tensor"),
    ("i4(Tensor(a!) x) -> int", "inplace",
     "Schema tagged with torch.Tag.inplace must return the first mutable argument (return must be a Tensor, got type 'int'). Got: i4(Tensor(a!) x) -> int"),
]


@pytest.mark.parametrize("schema,tag,message", _TAGGED_SCHEMA_CASES)
def test_out_and_inplace_tags_check_the_schema(ns, schema, tag, message):
    lib = Library(ns, "DEF")
    name = schema.split("(")[0]
    if message is None:
        lib.define(schema, tags=getattr(opdispatch.Tag, tag))
        assert getattr(getattr(ops, ns), name).default.tags == [getattr(opdispatch.Tag, tag)]
    else:
        with pytest.raises(ValueError) as e:
            lib.define(schema, tags=[getattr(opdispatch.Tag, tag)])
        assert str(e.value) == message
        assert not hasattr(getattr(ops, ns), name), "nothing registered"


def test_aten_operators_carry_torchs_tags():
    # Recorded from torch 2.15 (`torch.ops.aten.<op>.<overload>.tags`).
    Tag = opdispatch.Tag
    assert ops.aten.add.Tensor.tags == [Tag.core, Tag.pointwise, Tag.pt2_compliant_tag]
    assert ops.aten.mm.default.tags == [Tag.core, Tag.pt2_compliant_tag]
    assert ops.aten.zeros.default.tags == [Tag.pt2_compliant_tag]


def test_dispatch_get_overload_names(ns):
    q = f"{ns}::foo"
    assert C._dispatch_get_overload_names(q) == []
    with _scoped_library(ns, "FRAGMENT") as lib:
        lib.define("foo.zz(Tensor x) -> Tensor")
        lib.define("foo(Tensor x) -> Tensor")
        lib.define("foo.Tensor(Tensor x, Tensor y) -> Tensor")
        lib.define("foobar(Tensor x) -> Tensor")
        # Sorted, the default overload ("") first; other operators sharing a prefix are not
        # overloads.
        assert C._dispatch_get_overload_names(q) == ["", "Tensor", "zz"]
        assert C._dispatch_get_overload_names(f"{ns}::foobar") == [""]
        assert C._dispatch_get_overload_names(f"{ns}::fo") == []
        assert getattr(ops, ns).foo.overloads() == ["default", "Tensor", "zz"]
        # An impl without a def is not an overload.
        with _scoped_library(ns, "IMPL") as imp:
            imp.impl("foo.nodef", lambda x: x, "CPU")
            assert C._dispatch_get_overload_names(q) == ["", "Tensor", "zz"]
    assert C._dispatch_get_overload_names(q) == []
    assert C._dispatch_get_overload_names("aten::add") == ["Scalar", "Scalar_out", "Tensor", "out"]


def test_first_lookup_among_many_operators(ns):
    # ops.<ns>.<op> finds its overloads by name, not by scanning; the answers are the same.
    with _scoped_library(ns, "FRAGMENT") as lib:
        for i in range(300):
            lib.define(f"g{i}(Tensor x) -> Tensor")
            lib.define(f"g{i}.two(Tensor x, Tensor y) -> Tensor")
        nsobj = getattr(ops, ns)
        for i in (0, 150, 299):
            assert getattr(nsobj, f"g{i}").overloads() == ["default", "two"]
        with pytest.raises(AttributeError):
            nsobj.g300


def _tracing_lib(lib, calls, schemas):
    for s in schemas:
        lib.define(s)
        name = s.split("(")[0]
        ovl = name.partition(".")[2] or "default"

        def kernel(*args, _ovl=ovl, **kwargs):
            calls.append(_ovl)
            return args[0]

        lib.impl(name, kernel, "CPU")


def test_packet_resolution_follows_argument_types_not_the_last_choice(ns):
    calls: list[str] = []
    with _scoped_library(ns, "FRAGMENT") as lib:
        _tracing_lib(lib, calls, [
            "f.a(Tensor x, int y) -> Tensor",
            "f.b(Tensor x, float y) -> Tensor",
            "f.c(Tensor x, Tensor[] ts) -> Tensor",
            "f.d(Tensor x, int[] ys) -> Tensor",
            "f.e(Tensor x, *, int k) -> Tensor",
            "f.g(Tensor x, *, int j) -> Tensor",
        ])
        f = getattr(ops, ns).f
        assert isinstance(f, opdispatch._ops.OpOverloadPacket)
        assert isinstance(f, C._DispatchOverloadPacket)
        t = opdispatch.ones(1)
        f(t, 1), f(t, 1.5), f(t, 2), f(t, 2.5)
        assert calls == ["a", "b", "a", "b"]
        calls.clear()
        # An int too large for int64 binds as a float, and the next small int still as an int.
        f(t, 2**70), f(t, 3), f(t, 2**70)
        assert calls == ["b", "a", "b"]
        calls.clear()
        f(t, [t]), f(t, [1, 2]), f(t, [t, t]), f(t, (1,)), f(t, []), f(t, [1])
        assert calls == ["c", "d", "c", "d", "c", "d"]
        for bad in ([1, 2**70], True, [[1]]):
            with pytest.raises(TypeError, match="failed to match any schema"):
                f(t, bad)
        f(t, [3])
        assert calls[-1] == "d"
        calls.clear()
        f(t, k=1), f(t, j=1), f(t, k=2), f(x=t, y=1), f(x=t, y=1.0)
        assert calls == ["e", "g", "e", "a", "b"]
        calls.clear()
        # tp_call (a dict of keyword arguments) resolves the same way.
        type(f).__call__(f, t, 1), type(f).__call__(f, t, j=1), f.__call__(t, y=0.5)
        assert calls == ["a", "g", "b"]


def test_packet_mismatch_message_lists_every_overload(ns):
    with _scoped_library(ns, "FRAGMENT") as lib:
        _tracing_lib(lib, [], ["f(Tensor x) -> Tensor", "f.two(Tensor x, int y) -> Tensor"])
        f = getattr(ops, ns).f
        for args, kwargs in [(("s",), {}), ((opdispatch.ones(1), "s"), {}), ((opdispatch.ones(1),), {"z": 1})]:
            expected = "Overloaded torch operator invoked from Python failed to match any schema:\n" + "\n\n".join(
                getattr(f, n)._bind_error(*args, **kwargs) for n in f.overloads()
            )
            for _ in range(2):  # the second time with a cached signature
                with pytest.raises(TypeError) as ei:
                    f(*args, **kwargs)
                assert str(ei.value) == expected


def test_packet_reentrant_kernel_and_kernel_errors(ns):
    calls: list[str] = []
    with _scoped_library(ns, "FRAGMENT") as lib:
        lib.define("f(Tensor x) -> Tensor")
        lib.define("f.n(Tensor x, int n) -> Tensor")

        def one(x):
            calls.append("default")
            return x

        def rec(x, n):
            calls.append(f"n{n}")
            if n == 99:
                raise ValueError("kernel failed")
            return getattr(ops, ns).f(x, n - 1) if n > 0 else getattr(ops, ns).f(x)

        lib.impl("f", one, "CPU")
        lib.impl("f.n", rec, "CPU")
        t = opdispatch.ones(1)
        assert getattr(ops, ns).f(t, 2) is t
        assert calls == ["n2", "n1", "n0", "default"]
        calls.clear()
        with pytest.raises(ValueError, match="kernel failed"):
            getattr(ops, ns).f(t, 99)
        assert calls == ["n99"]  # the kernel's error is not a mismatch: no other overload runs
