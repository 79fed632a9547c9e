"""library.trace(): every dispatcher entry of a region, as a tree and as Chrome trace JSON
(issue 14, item 2)."""

from __future__ import annotations

import itertools
import json
import threading

import pytest

import opdispatch as M
from opdispatch import library, ops

_ns = itertools.count()


@pytest.fixture
def lib():
    ns = f"trace_t{next(_ns)}"
    lb = library.Library(ns, "DEF")
    yield ns, lb
    lb._destroy()


def test_records_calls_redispatches_and_nesting(lib):
    ns, lb = lib
    lb.define("outer(Tensor x) -> Tensor")

    def outer_cpu(x):
        return x + x  # an aten call made by a kernel: nested one level down

    lb.impl("outer", outer_cpu, "CPU")
    x = M.ones(3)
    with library.trace() as t:
        getattr(ops, ns).outer(x)
    names = [(e.operator, e.key, e.kind, e.depth, e.redispatch) for e in t.events]
    # Autograd keys pass to CPU in the same snapshot (no entry of their own).
    assert names[0] == (f"{ns}::outer", "CPU", "python", 0, False)
    # x + x from inside the kernel: the Autograd kernel, then its redispatch to CPU.
    assert names[1][:4] == ("aten::add.Tensor", "AutogradCPU", "native", 1)
    assert names[2][:2] == ("aten::add.Tensor", "CPU") and names[2][3:] == (2, True)
    assert len(names) == 3
    first = t.events[0]
    assert first.duration_ns >= t.events[1].duration_ns >= 0
    assert first.start_ns <= t.events[1].start_ns
    assert t.duration_ns >= first.duration_ns
    assert not any(e.failed for e in t.events)


def test_failed_and_missing_entries(lib):
    ns, lb = lib
    lb.define("nothing(Tensor x) -> Tensor")
    x = M.ones(1)
    with library.trace() as t:
        with pytest.raises(NotImplementedError):
            getattr(ops, ns).nothing(x)
    assert [(e.key, e.kind, e.failed) for e in t.events] == [("CPU", "missing", True)]

    def boom(x):
        raise ValueError("no")

    lb.impl("nothing", boom, "CPU")
    with library.trace() as t:
        with pytest.raises(ValueError):
            getattr(ops, ns).nothing(x)
    assert [(e.kind, e.failed) for e in t.events] == [("python", True)]


def test_str_is_an_indented_tree_and_json_has_the_chrome_fields(tmp_path):
    x = M.ones(2, requires_grad=True)
    with library.trace() as t:
        (x * x).sum().backward()
    text = str(t)
    lines = text.splitlines()
    assert lines[0].startswith(f"dispatch trace: {len(t)} entries in ")
    assert lines[1].startswith("  aten::mul.Tensor [AutogradCPU]")
    assert lines[2].startswith("    aten::mul.Tensor [CPU] ")
    # The backward pass dispatches too (the engine's own calls).
    assert any(e.operator == "aten::ones_like" for e in t.events)
    path = tmp_path / "t.json"
    t.save_chrome_trace(path)
    data = json.loads(path.read_text())
    evs = data["traceEvents"]
    assert len(evs) == len(t)
    for e in evs:
        assert {"name", "cat", "ph", "ts", "dur", "pid", "tid", "args"} <= set(e)
        assert e["ph"] == "X" and e["dur"] >= 0
    assert evs[0]["name"] == "aten::mul.Tensor" and evs[0]["args"]["key"] == "AutogradCPU"
    assert t.to_dict()["events"][0]["operator"] == "aten::mul.Tensor"


def test_nested_traces_and_other_threads():
    a = M.ones(2)
    with library.trace() as outer:
        a + a
        with library.trace() as inner:
            a.sum()
        done = threading.Event()

        def other():
            a * a  # another thread: not this trace's
            done.set()

        th = threading.Thread(target=other)
        th.start()
        th.join()
        assert done.is_set()
    assert [e.operator for e in inner.events if e.depth == 0] == ["aten::sum"]
    assert [e.operator for e in outer.events if e.depth == 0] == ["aten::add.Tensor", "aten::sum"]
    # No trace active: nothing is recorded, and a finished trace keeps its events.
    a + a
    assert len(outer) == 4


def test_reentering_a_recording_trace_is_an_error():
    t = library.trace()
    with t:
        with pytest.raises(RuntimeError, match="already recording"):
            t.__enter__()
    with pytest.raises(RuntimeError, match="no active dispatch trace"):
        M._C._dispatch_trace_end(10**9)


def test_native_methods_reach_the_overloads_torch_binds():
    # Tensor methods and module functions forward natively to the aten packet, or to the
    # .Tensor overload that torch binds add/sub/mul/div to (a number operand included).
    a, b = M.ones(4), M.ones(4)
    with library.trace() as t:
        a.add(b)
        a.mul(2)
        M.sub(a, 1.5)
        M.Tensor.div(a, b)  # through the class: the method itself, unbound
        bound = a.add
        bound(b, alpha=2)
        a.view(2, 2)
        a.view([4])
        a.sum()
    top = [e.operator for e in t.events if e.depth == 0]
    assert top == [
        "aten::add.Tensor", "aten::mul.Tensor", "aten::sub.Tensor", "aten::div.Tensor",
        "aten::add.Tensor", "aten::view", "aten::view", "aten::sum",
    ]
    assert a.view(2, 2).shape == (2, 2)
    assert M.add.__name__ == "add" and "add" in repr(a.add)
    with pytest.raises(TypeError):
        a.add("x")  # the packet's overload resolution: torch's TypeError
