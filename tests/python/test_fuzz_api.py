"""Malformed arguments thrown at the public API (hypothesis).

Library, define, impl, fallback, operator calls, tensor constructors and tensor ops get values of
the wrong type, out of range, or garbage strings. Each call must either succeed or raise one of
the exception classes torch raises for bad input (never pyo3's PanicException, a BaseException),
and the registry must be as it was afterwards. The tensor paths, where a crash of the native code
is possible, also run in a subprocess that must exit normally (no signal).
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import opdispatch as torch
from opdispatch import _C as C
from opdispatch.library import Library

from conftest import fresh_ns

# What torch raises for bad arguments (pybind11 conversions give TypeError / OverflowError).
CLEAN = (TypeError, ValueError, RuntimeError, IndexError, NotImplementedError, OverflowError)
# torch.library's Python code calls str methods on what it is given (`schema.split("(")`), so a
# non-string there is an AttributeError in torch too, and `fallback` asserts a dispatch key.
CLEAN_LIBRARY = (*CLEAN, AttributeError, AssertionError)

EXAMPLES = int(os.environ.get("OPDISPATCH_FUZZ_API_EXAMPLES", "60"))
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

schema_chars = st.sampled_from(list("abcxyzT_0123456789()[]?!|*=,.:->\" '\n") + ["Tensor", "int", "float"])
garbage_str = st.one_of(st.text(max_size=30), st.lists(schema_chars, max_size=20).map("".join))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.complex_numbers(allow_nan=False, max_magnitude=1e6),
    garbage_str,
    st.binary(max_size=8),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(st.text(max_size=4), inner, max_size=3),
    ),
    max_leaves=6,
)
keys = st.one_of(
    garbage_str, st.sampled_from(["CPU", "AutogradCPU", "Meta", "", "NotAKey", "cpu", "CompositeImplicitAutograd"])
)


def registry() -> tuple[tuple[str, ...], str, str]:
    names = tuple(sorted(n for n in C._dispatch_get_all_op_names() if n.startswith(("aten::", "fz"))))
    return names, C._dispatch_dump("aten::add.Tensor"), C._dispatch_dump_table("aten::neg")


def attempt(f: Any, *args: Any, clean: tuple[type[BaseException], ...] = CLEAN, **kwargs: Any) -> Any:
    try:
        return f(*args, **kwargs)
    except clean:
        return None
    # Anything else (PanicException, SystemError, AttributeError, ...) propagates and fails.


@pytest.fixture
def lib():
    ns = fresh_ns("fz")
    lib = Library(ns, "DEF")
    lib.define("f(Tensor x, int n=1) -> Tensor")
    lib.impl("f", lambda x, n=1: x, "CPU")
    before = registry()
    yield ns, lib
    lib._destroy()
    assert f"{ns}::f" not in C._dispatch_get_all_op_names()
    assert registry()[1:] == before[1:]


@SETTINGS
@given(ns=values, kind=st.one_of(values, st.sampled_from(["DEF", "IMPL", "FRAGMENT"])), key=st.one_of(values, keys))
def test_library_constructor(ns, kind, key):
    before = registry()
    made = attempt(Library, ns, kind, key, clean=CLEAN_LIBRARY)
    if made is not None:
        made._destroy()
    assert registry() == before


@SETTINGS
@given(schema=st.one_of(values, garbage_str), alias=st.one_of(st.just(""), values))
def test_define(lib, schema, alias):
    ns, lb = lib
    names = [n for n in C._dispatch_get_all_op_names() if n.startswith(ns + "::")]
    scratch = Library(ns, "FRAGMENT")
    attempt(scratch.define, schema, alias_analysis=alias, clean=CLEAN_LIBRARY)
    scratch._destroy()
    assert [n for n in C._dispatch_get_all_op_names() if n.startswith(ns + "::")] == names


@SETTINGS
@given(name=st.one_of(values, garbage_str), fn=st.one_of(values, st.just(lambda *a: None)), key=st.one_of(values, keys))
def test_impl_and_fallback(lib, name, fn, key):
    ns, _ = lib
    dump = C._dispatch_dump(f"{ns}::f")
    scratch = Library(ns, "FRAGMENT")
    attempt(scratch.impl, name, fn, key, clean=CLEAN_LIBRARY)
    scratch._destroy()
    fb = Library("_", "IMPL")
    attempt(fb.fallback, fn, key, clean=CLEAN_LIBRARY)
    fb._destroy()
    assert C._dispatch_dump(f"{ns}::f") == dump


@SETTINGS
@given(
    args=st.lists(values, max_size=4),
    kwargs=st.dictionaries(st.sampled_from(["x", "n", "alpha", "out", "bogus"]), values, max_size=2),
)
def test_op_calls(lib, args, kwargs):
    ns, _ = lib
    for f in (
        getattr(torch.ops, ns).f,
        getattr(torch.ops, ns).f.default,
        torch.ops.aten.add,
        torch.ops.aten.add.Tensor,
    ):
        attempt(f, *args, **kwargs)
    # With one good tensor first, the rest garbage.
    attempt(getattr(torch.ops, ns).f, torch.ones(2), *args[:1], **kwargs)
    attempt(torch.ops.aten.add, torch.ones(2), *args[:2], **kwargs)


# The tensor constructors and ops, run both here and in the subprocess below.
CONSTRUCTORS = ("ones", "zeros", "empty", "full", "arange", "tensor")
METHODS = (
    "view",
    "reshape",
    "sum",
    "add",
    "mul",
    "expand",
    "transpose",
    "permute",
    "select",
    "narrow",
    "__getitem__",
    "to",
    "__add__",
    "__matmul__",
)


def exercise_tensors(args: list[Any], kwargs: dict[str, Any]) -> None:
    for name in CONSTRUCTORS:
        attempt(getattr(torch, name), *args, **kwargs)
    t = torch.ones(2, 3)
    for m in METHODS:
        attempt(getattr(t, m), *args, **kwargs)


tensor_kwargs = st.dictionaries(
    st.sampled_from(["dtype", "device", "dim", "keepdim", "requires_grad", "size", "bogus"]), values, max_size=2
)


@SETTINGS
@given(args=st.lists(values, max_size=3), kwargs=tensor_kwargs)
def test_tensor_constructors_and_ops(args, kwargs):
    before = registry()
    exercise_tensors(args, kwargs)
    assert registry() == before


WORKER = """
import sys
sys.path.insert(0, {tests!r})
from hypothesis import given, settings, strategies as st
import test_fuzz_api as t

@settings(max_examples={n}, deadline=None, derandomize=True, database=None)
@given(args=st.lists(t.values, max_size=3), kwargs=t.tensor_kwargs)
def run(args, kwargs):
    t.exercise_tensors(args, kwargs)

run()
print("ok")
"""


def test_tensor_paths_in_a_subprocess():
    """The native tensor paths with other random draws, where a crash would kill the process."""
    code = WORKER.format(tests=os.path.dirname(__file__), n=EXAMPLES * 2)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"exit {r.returncode}\n{r.stderr[-3000:]}"
    assert r.stdout.strip().endswith("ok")
