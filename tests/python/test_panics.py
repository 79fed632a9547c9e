"""A Rust panic never crosses into Python as an abort.

Each test forces a panic in a kernel (a typed "native" Rust kernel or a boxed one, registered with
the test-only `_C._testing_*` hooks) and reaches it through one kind of Python boundary: the
operator handle (vectorcall), the overload packet, `_dispatch_call_boxed`, `redispatch_boxed`,
the Tensor operators (typed calls), Tensor methods, factories, a fallback, a Python kernel or a
`__torch_dispatch__` mode in between, and the autograd engine. Every one must raise torch's
`RuntimeError` (a C++ exception thrown by a kernel is a RuntimeError in PyTorch) and leave the
dispatcher usable: TLS key sets as they were, invariants holding, the registry unchanged once the
library is gone.
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import opdispatch as torch
from opdispatch import _C as C
from opdispatch.library import Library
from opdispatch.utils._python_dispatch import TorchDispatchMode

from conftest import fresh_ns

MESSAGE = "a kernel panicked: opdispatch testing kernel panicked on purpose"


def state() -> tuple[str, str]:
    return (str(C._dispatch_tls_local_include_set()), str(C._dispatch_tls_local_exclude_set()))


@pytest.fixture
def after_panic() -> Iterator[None]:
    """Checks, after the test, that the panic left the dispatcher as it found it."""
    before = state()
    neg_dump = C._dispatch_dump("aten::neg")
    yield
    assert state() == before
    C._dispatch_check_all_invariants()
    assert C._dispatch_dump("aten::neg") == neg_dump
    # The process still calls kernels normally.
    assert (-torch.ones(2)).tolist() == [-1.0, -1.0]


def expect_kernel_panic(f: Callable[[], Any], kind: str = "") -> None:
    with pytest.raises(RuntimeError) as ei:
        f()
    assert str(ei.value).startswith(MESSAGE), str(ei.value)
    if kind:
        assert f"({kind})" in str(ei.value)


@pytest.fixture
def panicking_op() -> Iterator[tuple[str, Library]]:
    ns = fresh_ns("panic")
    lib = Library(ns, "DEF")
    lib.define("native(Tensor x) -> Tensor")
    lib.define("boxed(Tensor x) -> Tensor")
    C._testing_impl_panicking_kernel(lib.m, "native", "CPU", "native")
    C._testing_impl_panicking_kernel(lib.m, "boxed", "CPU", "boxed")
    yield ns, lib
    lib._destroy()
    assert f"{ns}::native" not in C._dispatch_get_all_op_names()


@pytest.fixture
def panicking_neg() -> Iterator[None]:
    """aten::neg's CPU kernel replaced by a panicking one for the test."""
    lib = Library("aten", "IMPL")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        C._testing_impl_panicking_kernel(lib.m, "neg", "CPU", "boxed")
    yield
    lib._destroy()


KINDS = ["native", "boxed"]


@pytest.mark.usefixtures("after_panic")
@pytest.mark.parametrize("kind", KINDS)
def test_operator_handle(panicking_op, kind):
    ns, _ = panicking_op
    t = torch.ones(2)
    expect_kernel_panic(lambda: getattr(getattr(torch.ops, ns), kind).default(t), kind)


@pytest.mark.usefixtures("after_panic")
@pytest.mark.parametrize("kind", KINDS)
def test_overload_packet(panicking_op, kind):
    ns, _ = panicking_op
    t = torch.ones(2)
    expect_kernel_panic(lambda: getattr(getattr(torch.ops, ns), kind)(t), kind)
    # The packet itself (its own vectorcall), with a keyword argument too.
    packet = C._DispatchOverloadPacket(f"{ns}::{kind}", ["default"])
    expect_kernel_panic(lambda: packet(t), kind)
    expect_kernel_panic(lambda: packet(x=t), kind)


@pytest.mark.usefixtures("after_panic")
@pytest.mark.parametrize("kind", KINDS)
def test_call_boxed_and_redispatch(panicking_op, kind):
    ns, _ = panicking_op
    t = torch.ones(2)
    h = C._dispatch_find_schema_or_throw(f"{ns}::{kind}", "")
    expect_kernel_panic(lambda: C._dispatch_call_boxed(h, t), kind)
    ks = C._dispatch_keys(t)
    expect_kernel_panic(lambda: h.redispatch_boxed(ks, t), kind)


@pytest.mark.usefixtures("after_panic", "panicking_neg")
def test_tensor_operator_typed_call():
    t = torch.ones(2)
    expect_kernel_panic(lambda: -t, "boxed")


@pytest.mark.usefixtures("after_panic", "panicking_neg")
def test_tensor_method_and_function():
    t = torch.ones(2)
    expect_kernel_panic(t.neg, "boxed")
    expect_kernel_panic(lambda: torch.neg(t), "boxed")


@pytest.mark.usefixtures("after_panic")
def test_factory():
    lib = Library("aten", "IMPL")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            C._testing_impl_panicking_kernel(lib.m, "ones", "CompositeExplicitAutograd", "boxed")
        expect_kernel_panic(lambda: torch.ones(2), "boxed")
    finally:
        lib._destroy()


@pytest.mark.usefixtures("after_panic")
def test_fallback(panicking_op):
    ns, lib = panicking_op
    lib.define("ok(Tensor x) -> Tensor")
    lib.impl("ok", lambda x: x, "CPU")
    fb = Library("_", "IMPL")
    try:
        C._testing_fallback_panicking_kernel(fb.m, "PrivateUse1")
        t = torch.ones(2)
        with C._IncludeDispatchKeyGuard(C.DispatchKey.PrivateUse1):
            expect_kernel_panic(lambda: getattr(torch.ops, ns).ok(t), "boxed")
    finally:
        fb._destroy()
    assert not C._dispatch_has_backend_fallback(C.DispatchKey.PrivateUse1)


@pytest.mark.usefixtures("after_panic")
@pytest.mark.parametrize("kind", KINDS)
def test_through_a_python_kernel(panicking_op, kind):
    """Rust -> Python kernel -> Rust -> panicking kernel: the RuntimeError travels out as raised."""
    ns, lib = panicking_op
    inner = getattr(getattr(torch.ops, ns), kind)
    lib.define("outer(Tensor x) -> Tensor")
    lib.impl("outer", lambda x: inner(x), "CPU")
    expect_kernel_panic(lambda: getattr(torch.ops, ns).outer(torch.ones(2)), kind)


@pytest.mark.usefixtures("after_panic")
@pytest.mark.parametrize("kind", KINDS)
def test_through_a_dispatch_mode(panicking_op, kind):
    ns, _ = panicking_op
    seen = []

    class Mode(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            seen.append(str(func))
            return func(*args, **(kwargs or {}))

    t = torch.ones(2)
    with Mode():
        expect_kernel_panic(lambda: getattr(getattr(torch.ops, ns), kind)(t), kind)
    assert seen == [f"{ns}.{kind}.default"]


@pytest.mark.usefixtures("after_panic")
def test_backward():
    x = torch.ones(2, requires_grad=True)
    y = (-x).sum()
    lib = Library("aten", "IMPL")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            C._testing_impl_panicking_kernel(lib.m, "neg", "CPU", "boxed")
        expect_kernel_panic(y.backward, "boxed")
    finally:
        lib._destroy()
    assert torch.is_grad_enabled()


def test_panic_outside_a_kernel_is_pyo3s_panic_exception():
    """A panic in the bindings themselves (not in a kernel) is pyo3's PanicException: a
    BaseException (it is a bug of opdispatch, not an error of the caller), never an abort."""
    with pytest.raises(BaseException) as ei:
        C._testing_panic()
    assert type(ei.value).__name__ == "PanicException"
    assert not isinstance(ei.value, Exception)


def test_unknown_kind_is_a_value_error(panicking_op):
    ns, lib = panicking_op
    with pytest.raises(ValueError, match="unknown kernel kind"):
        C._testing_impl_panicking_kernel(lib.m, "native", "CPU", "neither")


def test_no_abort_in_a_fresh_interpreter():
    """The same panics in a subprocess: the interpreter exits normally (no SIGABRT)."""
    code = (
        "import opdispatch as torch\n"
        "from opdispatch import _C as C\n"
        "from opdispatch.library import Library\n"
        "lib = Library('fresh_panic', 'DEF')\n"
        "lib.define('f(Tensor x) -> Tensor')\n"
        "C._testing_impl_panicking_kernel(lib.m, 'f', 'CPU', 'native')\n"
        "for _ in range(3):\n"
        "    try:\n"
        "        torch.ops.fresh_panic.f(torch.ones(1))\n"
        "    except RuntimeError as e:\n"
        "        assert 'panicked' in str(e)\n"
        "    else:\n"
        "        raise SystemExit(1)\n"
        "print('ok')\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == "ok"
