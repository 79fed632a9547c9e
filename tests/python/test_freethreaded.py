"""The paths that have a separate free-threaded (`Py_GIL_DISABLED`) implementation in the
extension, exercised from several threads; on a free-threaded interpreter (`make freethreaded`)
they run the free-threaded code, elsewhere the GIL code. See docs/HARDENING.md."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import threading
from typing import Any

import pytest

import opdispatch
from opdispatch import _C as C

FREE_THREADED = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
HAVE_VECTORCALL = 1 << 11  # Py_TPFLAGS_HAVE_VECTORCALL


class _W(opdispatch.Tensor):
    """A wrapper subclass whose handler records the `func` objects it is given."""

    seen: list[Any] = []
    lock = threading.Lock()

    @staticmethod
    def __new__(cls, e: Any) -> Any:
        r = opdispatch.Tensor._make_wrapper_subclass(cls, e.shape, dtype=e.dtype, device=e.device)
        r.e = e
        return r

    @classmethod
    def __torch_dispatch__(cls, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        with cls.lock:
            cls.seen.append(func)
        out = func(*[x.e if isinstance(x, _W) else x for x in args], **(kwargs or {}))
        return _W(out)


def _run_threads(n: int, body: Any) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(n)

    def run(i: int) -> None:
        try:
            barrier.wait()
            body(i)
        except BaseException as e:  # noqa: B036 - reported to the main thread below
            errors.append(e)

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # on GIL builds, switch threads as often as possible
    try:
        threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old)
    if errors:
        raise errors[0]


def test_handlers_get_one_overload_object_per_operator_from_all_threads():
    # The cache of `func` objects starts empty, so the threads race to fill it; every thread
    # must still be handed the same object (the first insert wins).
    C._clear_overload_cache()
    _W.seen.clear()
    a, b = _W(opdispatch.ones(3)), _W(opdispatch.ones(3))

    def body(_: int) -> None:
        for _ in range(30):
            assert (a + b).e.tolist() == [2.0, 2.0, 2.0]

    _run_threads(4, body)
    adds = [f for f in _W.seen if str(f) == "aten.add.Tensor"]
    assert len(adds) == 4 * 30
    assert len({id(f) for f in adds}) == 1


def test_class_attribute_lookup_while_another_thread_changes_the_class():
    # `__torch_dispatch__` is found in the MRO's dicts (class_attr); a thread adding and deleting
    # other class attributes meanwhile must neither break the lookup nor free what it found.
    a = _W(opdispatch.ones(2))
    stop = threading.Event()

    def body(i: int) -> None:
        if i == 0:
            for k in range(300):
                setattr(_W, f"extra{k % 7}", object())
                delattr(_W, f"extra{k % 7}")
            stop.set()
            return
        while not stop.is_set():
            assert (a * a).e.tolist() == [1.0, 1.0]

    _run_threads(3, body)


def test_enabled_subclasses_carry_the_vectorcall_flag():
    class Handle(C._DispatchOperatorHandle):
        pass

    class Packet(C._DispatchOverloadPacket):
        pass

    class CustomPacket(C._DispatchOverloadPacket):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            return "custom"

    assert C._enable_vectorcall(Handle) is True
    assert C._enable_packet_vectorcall(Packet) is True
    assert C._enable_packet_vectorcall(CustomPacket) is False
    assert Handle.__flags__ & HAVE_VECTORCALL
    assert Packet.__flags__ & HAVE_VECTORCALL
    assert not CustomPacket.__flags__ & HAVE_VECTORCALL
    a = opdispatch.ones(2)
    h, p = Handle("aten::add", "Tensor"), Packet("aten::add", ["Tensor"])

    def body(_: int) -> None:
        for _ in range(200):
            assert h(a, a).tolist() == [2.0, 2.0]
            assert p(a, a).tolist() == [2.0, 2.0]

    _run_threads(4, body)
    assert CustomPacket("aten::add", ["Tensor"])() == "custom"
    with pytest.raises(TypeError, match="subclass of _DispatchOverloadPacket"):
        C._enable_packet_vectorcall(int)


@pytest.mark.skipif(not FREE_THREADED, reason="needs a free-threaded CPython (make freethreaded)")
def test_import_keeps_the_gil_until_the_module_declares_it_unused():
    code = "import sys, opdispatch; print(sys._is_gil_enabled())"
    env = {k: v for k, v in os.environ.items() if k != "PYTHON_GIL"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
    out = subprocess.run(
        [sys.executable, "-c", code], env=dict(env, PYTHON_GIL="0"), capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"
