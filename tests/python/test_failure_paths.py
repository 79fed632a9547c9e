"""Bad inputs raise clear Python exceptions and leave the registry exactly as it was."""

from __future__ import annotations

from typing import Any

import pytest

import opdispatch as od
from opdispatch import _C as C
from opdispatch.library import Library, _scoped_library

from conftest import first_line, fresh_ns


class Registry:
    """Captures the dump and the table of some ops and checks they did not change."""

    def __init__(self, *qualnames):
        self.qualnames = qualnames
        self.snapshot = self.take()

    def take(self):
        # Op names are compared only within the namespaces involved: other tests' libraries may be
        # collected (and deregistered) at any time.
        prefixes = tuple({q.split("::")[0] + "::" for q in self.qualnames})
        names = tuple(sorted(n for n in C._dispatch_get_all_op_names() if n.startswith(prefixes)))
        return {q: (C._dispatch_dump(q), C._dispatch_dump_table(q)) for q in self.qualnames} | {"__names__": names}

    def assert_unchanged(self):
        assert self.take() == self.snapshot


@pytest.fixture
def setup():
    ns = fresh_ns("fail")
    m = C._dispatch_library("FRAGMENT", ns, "")
    m.def_("foo(Tensor x) -> Tensor")
    m.impl_t_t("foo", "CPU", debug="fn_cpu")
    yield ns, m
    del m


def test_bogus_kind(setup):
    ns, _ = setup
    reg = Registry(f"{ns}::foo")
    with pytest.raises(RuntimeError) as ei:
        C._dispatch_library("BOGUS", ns, "")
    assert str(ei.value) == "could not parse BOGUS"
    reg.assert_unchanged()


@pytest.mark.parametrize("kind", ["def", "Fragment", "", "IMPL "])
def test_bogus_kind_variants(setup, kind):
    ns, _ = setup
    reg = Registry(f"{ns}::foo")
    with pytest.raises(RuntimeError) as ei:
        C._dispatch_library(kind, ns, "")
    assert str(ei.value) == f"could not parse {kind}"
    reg.assert_unchanged()


@pytest.mark.parametrize("key", ["NotAKey", "cpu", "CPU "])
def test_bogus_key(setup, key):
    ns, _ = setup
    reg = Registry(f"{ns}::foo")
    with pytest.raises(RuntimeError) as ei:
        C._dispatch_library("IMPL", ns, key)
    assert str(ei.value) == f"could not parse dispatch key: {key}"
    reg.assert_unchanged()


def test_bogus_key_in_impl(setup):
    ns, m = setup
    reg = Registry(f"{ns}::foo")
    with pytest.raises(RuntimeError) as ei:
        m.impl_t_t("foo", "NotAKey")
    assert str(ei.value) == "could not parse dispatch key: NotAKey"
    with pytest.raises(RuntimeError) as ei:
        m.impl("foo", "NotAKey", lambda x: x)
    assert str(ei.value) == "could not parse dispatch key: NotAKey"
    reg.assert_unchanged()


def test_bogus_alias(setup):
    ns, m = setup
    reg = Registry(f"{ns}::foo", f"{ns}::bar")
    with pytest.raises(RuntimeError) as ei:
        m.def_("bar(Tensor x) -> Tensor", alias="BOGUS")
    assert str(ei.value) == "could not parse BOGUS"
    reg.assert_unchanged()


@pytest.mark.parametrize(
    "schema,first",
    [
        ("bar(Tensor x -> Tensor", "expected ) but found 'arrow' here:"),
        ("bar(Tensr x) -> Tensor", "unknown type specifier. Common valid schema types include Tensor, SymInt, int, "
         "float, bool, Scalar; for a full list, please see "
         "https://github.com/pytorch/pytorch/blob/main/aten/src/ATen/native/README.md#func :"),
        ("bar(Tensor x) -> Tensor junk (", "expected eof but found '(' here:"),
        ("bar(Tensor x) ->", None),
        ("bar.1x(Tensor x) -> Tensor", None),
    ],
)
def test_bad_schema(setup, schema, first):
    ns, m = setup
    reg = Registry(f"{ns}::foo", f"{ns}::bar")
    with pytest.raises(RuntimeError) as ei:
        m.def_(schema)
    line = first_line(str(ei.value))
    assert line.strip()
    if first is not None:
        assert line == first
    reg.assert_unchanged()
    with _scoped_library(ns, "FRAGMENT") as lib:
        with pytest.raises(RuntimeError) as ei2:
            lib.define(schema)
        assert first_line(str(ei2.value)) == line
    reg.assert_unchanged()


def test_impl_foreign_namespace(setup):
    ns, m = setup
    other = f"{ns}_2"
    reg = Registry(f"{ns}::foo", f"{other}::foo")
    with pytest.raises(RuntimeError) as ei:
        m.impl_t_t(f"{other}::foo", "CPU")
    assert first_line(str(ei.value)) == (
        f'impl("{other}::foo", ...): Explicitly provided namespace ({other}) in operator name does not match '
        f"namespace of enclosing TORCH_LIBRARY_FRAGMENT block ({ns}).  Move this definition to the "
        "TORCH_LIBRARY_FRAGMENT block corresponding to this namespace (and consider deleting the namespace from "
        "your schema string.)  (Error occurred while processing TORCH_LIBRARY_FRAGMENT block at /dev/null:0)"
    )
    reg.assert_unchanged()


def test_def_foreign_namespace(setup):
    ns, m = setup
    other = f"{ns}_2"
    reg = Registry(f"{ns}::foo", f"{other}::bar")
    with pytest.raises(RuntimeError) as ei:
        m.def_(f"{other}::bar(Tensor x) -> Tensor")
    assert first_line(str(ei.value)).startswith(
        f"Explicitly provided namespace ({other}) in schema string does not match namespace of enclosing "
        f"TORCH_LIBRARY_FRAGMENT block ({ns}).  Move this definition to the (unique) TORCH_LIBRARY block "
        "corresponding to this namespace (and consider deleting the namespace from your schema string.)  "
    )
    reg.assert_unchanged()


def test_def_in_impl_library(setup):
    ns, _ = setup
    reg = Registry(f"{ns}::foo", f"{ns}::zzz")
    i = C._dispatch_library("IMPL", ns, "")
    with pytest.raises(RuntimeError) as ei:
        i.def_("zzz(Tensor x) -> Tensor")
    assert str(ei.value) == (
        'def("zzz"): Cannot define an operator inside of a TORCH_LIBRARY_IMPL block.  All def()s should be placed '
        "in the (unique) TORCH_LIBRARY block for their namespace.  (Error occurred while processing "
        "TORCH_LIBRARY_IMPL block at /dev/null:0)"
    )
    with pytest.raises(RuntimeError, match="Cannot define an operator inside of a TORCH_LIBRARY_IMPL block"):
        i.define("zzz(Tensor x) -> Tensor")
    del i
    reg.assert_unchanged()


def test_impl_key_mismatch_with_library_key(setup):
    ns, _ = setup
    reg = Registry(f"{ns}::foo")
    i = C._dispatch_library("IMPL", ns, "CPU")
    with pytest.raises(RuntimeError) as ei:
        i.impl_t_t("foo", "XLA")
    assert str(ei.value) == (
        'impl("foo", ...): Explicitly provided dispatch key (XLA) is inconsistent with the dispatch key of the '
        "enclosing TORCH_LIBRARY_IMPL block (CPU).  Please declare a separate TORCH_LIBRARY_IMPL block for this "
        "dispatch key and move your impl() there.  (Error occurred while processing TORCH_LIBRARY_IMPL block at "
        "/dev/null:0)"
    )
    del i
    reg.assert_unchanged()


def test_duplicate_def_namespace():
    ns = fresh_ns("faildef")
    d = C._dispatch_library("DEF", ns, "", "/some/where.py", 7)
    d.def_("foo(Tensor x) -> Tensor")
    reg = Registry(f"{ns}::foo")
    with pytest.raises(RuntimeError) as ei:
        C._dispatch_library("DEF", ns, "", "/else/where.py", 9)
    assert str(ei.value) == (
        f"Only a single TORCH_LIBRARY can be used to register the namespace {ns}; please put all of your "
        "definitions in a single TORCH_LIBRARY block.  If you were trying to specify implementations, consider "
        "using TORCH_LIBRARY_IMPL (which can be duplicated).  If you really intended to define operators for a "
        "single namespace in a distributed way, you can use TORCH_LIBRARY_FRAGMENT to explicitly indicate this.  "
        "Previous registration of TORCH_LIBRARY was registered at /some/where.py:7; latest registration was "
        "registered at /else/where.py:9"
    )
    reg.assert_unchanged()
    # The failed DEF did not take the namespace: once the first is gone a new DEF works.
    del d
    d2 = C._dispatch_library("DEF", ns, "")
    d2.def_("foo(Tensor x) -> Tensor")
    del d2
    assert C._dispatch_dump(f"{ns}::foo") == ""


def test_duplicate_def_namespace_via_library():
    ns = fresh_ns("faildef")
    lib = Library(ns, "DEF")
    try:
        lib.define("foo(Tensor x) -> Tensor")
        reg = Registry(f"{ns}::foo")
        with pytest.raises(RuntimeError, match="Only a single TORCH_LIBRARY can be used to register the namespace"):
            Library(ns, "DEF")
        reg.assert_unchanged()
    finally:
        lib._destroy()


def test_def_with_wildcard_namespace():
    with pytest.raises(RuntimeError) as ei:
        C._dispatch_library("DEF", "_", "")
    assert str(ei.value).startswith(
        "TORCH_LIBRARY: cannot define TORCH_LIBRARY with the wildcard namespace _ (every TORCH_LIBRARY defines "
        "operators for a distinct namespace!) Did you mean to use TORCH_LIBRARY_IMPL instead?  "
    )


def test_duplicate_def(setup):
    ns, m = setup
    reg = Registry(f"{ns}::foo")
    with pytest.raises(RuntimeError) as ei:
        m.def_("foo(Tensor x) -> Tensor")
    assert str(ei.value) == (
        f"Tried to register an operator ({ns}::foo(Tensor x) -> Tensor) with the same name and overload name "
        "multiple times. Each overload's schema should only be registered with a single call to def(). Duplicate "
        "registration: registered at /dev/null:0. Original registration: registered at /dev/null:0"
    )
    reg.assert_unchanged()


def test_schema_mismatch_on_impl(setup):
    ns, m = setup
    m.def_("two(Tensor x, Tensor y) -> Tensor")
    reg = Registry(f"{ns}::foo", f"{ns}::two")
    with pytest.raises(RuntimeError) as ei:
        m.impl_t_t("two", "CPU", debug="dbg")
    assert str(ei.value) == (
        "Inferred operator schema for a C++ kernel function doesn't match the expected function schema.\n"
        f"  operator: {ns}::two\n"
        f"  expected schema: {ns}::two(Tensor x, Tensor y) -> Tensor\n"
        "    registered at /dev/null:0\n"
        "  inferred schema: (Tensor _0) -> Tensor _0\n"
        "    dbg\n"
        "  reason: The number of arguments is different. 2 vs 1."
    )
    reg.assert_unchanged()


def test_multiple_fallback_leaves_first(setup):
    g = C._dispatch_library("IMPL", "_", "XLA")
    g.fallback_fallthrough()
    try:
        g2 = C._dispatch_library("IMPL", "_", "XLA")
        with pytest.raises(
            RuntimeError, match="^Tried to register multiple backend fallbacks for the same dispatch key XLA"
        ):
            g2.fallback_fallthrough()
        del g2
        assert C._dispatch_has_backend_fallback(C.DispatchKey.XLA)
    finally:
        del g
    assert not C._dispatch_has_backend_fallback(C.DispatchKey.XLA)


def test_fallback_in_non_global_library(setup):
    ns, _ = setup
    i = C._dispatch_library("IMPL", ns, "XLA")
    with pytest.raises(RuntimeError) as ei:
        i.fallback_fallthrough()
    assert str(ei.value).startswith(
        f"fallback(...): Fallback functions which apply to only a single namespace (you specified {ns}) are not "
        "supported.  If you intended to apply this fallback function globally, please define a separate block:"
    )
    assert not C._dispatch_has_backend_fallback(C.DispatchKey.XLA)


def test_fallback_in_fragment_library(setup):
    ns, _ = setup
    f = C._dispatch_library("FRAGMENT", ns, "")
    with pytest.raises(RuntimeError) as ei:
        f.fallback_fallthrough("XLA")
    assert str(ei.value).startswith(
        "fallback(...): Cannot define an operator inside of a TORCH_LIBRARY_FRAGMENT block.  Did you mean to call "
        "this function inside a TORCH_LIBRARY_IMPL block?  "
    )
    assert not C._dispatch_has_backend_fallback(C.DispatchKey.XLA)


def test_fragment_with_wildcard_namespace():
    with pytest.raises(RuntimeError) as ei:
        C._dispatch_library("FRAGMENT", "_", "")
    assert str(ei.value).startswith(
        "TORCH_LIBRARY_FRAGMENT: cannot define TORCH_LIBRARY_FRAGMENT with the wildcard namespace _ (every "
        "TORCH_LIBRARY_FRAGMENT defines operators for a distinct namespace!) Did you mean to use TORCH_LIBRARY_IMPL "
        "instead?  "
    )


def test_find_schema_errors(setup):
    ns, m = setup
    with pytest.raises(RuntimeError) as ei:
        C._dispatch_find_schema_or_throw(f"{ns}::nope", "")
    assert str(ei.value) == f"Could not find schema for {ns}::nope."
    m.impl_t_t("implonly", "CPU")
    with pytest.raises(RuntimeError) as ei:
        C._dispatch_find_schema_or_throw(f"{ns}::implonly", "")
    assert str(ei.value) == (
        f"Could not find schema for {ns}::implonly. but we found an implementation; did you forget to def() the "
        "operator?"
    )


def test_kernel_queries_on_missing_op():
    with pytest.raises(RuntimeError) as ei:
        C._dispatch_has_kernel_for_dispatch_key("__nope__::x", "CPU")
    assert str(ei.value) == "operator __nope__::x does not exist"
    assert not C._dispatch_has_kernel("__nope__::x")


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: od.ones(2, dtype="float"), "ones"),
        (lambda: od.zeros(2, dtype=3), "zeros"),
        (lambda: od.empty(2, dtype=int), "empty"),
        (lambda: od.full((2,), 1.0, dtype="x"), "full"),
        (lambda: od.arange(3, dtype="x"), "arange"),
        (lambda: od.tensor([1.0], dtype="x"), "tensor"),
        (lambda: od.ones(2).to(dtype="x"), "to"),
    ],
)
def test_bad_dtype_names_the_function_and_the_type(call: Any, name: str) -> None:
    with pytest.raises(TypeError, match=rf"^{name}\(\): argument 'dtype' must be opdispatch.dtype, not "):
        call()
