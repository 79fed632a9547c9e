"""library.explain / library.dispatch_table / `python -m opdispatch table` (issue 14).

The central check is that explain's answer is what the call then actually runs, over random
registrations, inputs and thread-local guards (hypothesis)."""

from __future__ import annotations

import html.parser
import itertools
import json
import subprocess
import sys

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import opdispatch as M
from opdispatch import _C, library, ops

_ns_counter = itertools.count()

KEYS = [
    "CPU",
    "Meta",
    "CompositeExplicitAutograd",
    "CompositeImplicitAutograd",
    "AutogradCPU",
    "AutogradMeta",
    "Autograd",
]


def fresh_ns() -> str:
    return f"explain_t{next(_ns_counter)}"


@settings(max_examples=150, deadline=None)
@given(
    keys=st.lists(st.sampled_from(KEYS), unique=True, max_size=5),
    fallthrough_cpu=st.booleans(),
    device=st.sampled_from(["cpu", "meta"]),
    guard=st.sampled_from(["none", "include_meta", "exclude_autograd_cpu"]),
)
def test_explain_predicts_the_kernel_that_runs(keys, fallthrough_cpu, device, guard):
    # torch.library refuses a Meta kernel beside a CompositeImplicitAutograd one.
    assume(not ("Meta" in keys and "CompositeImplicitAutograd" in keys))
    ns = fresh_ns()
    lib = library.Library(ns, "DEF")
    try:
        lib.define("f(Tensor x) -> Tensor")
        ran: list[str] = []

        def kernel_for(tag: str):
            def k(x):
                ran.append(tag)
                return x

            return k

        for k in keys:
            if k == "CPU" and fallthrough_cpu:
                continue
            lib.impl("f", kernel_for(k), k)
        if fallthrough_cpu:
            lib.impl("f", library.fallthrough_kernel, "CPU")
        x = M.ones(2) if device == "cpu" else M.empty(2, device="meta")
        op = getattr(ops, ns).f.default
        if guard == "include_meta":
            g = _C._IncludeDispatchKeyGuard(_C.DispatchKey.Meta)
        elif guard == "exclude_autograd_cpu":
            g = _C._ExcludeDispatchKeyGuard(_C.DispatchKeySet(_C.DispatchKey.AutogradCPU))
        else:
            g = None
        if g is not None:
            g.__enter__()
        try:
            e = library.explain(op, x)
            try:
                op(x)
                outcome = ran[0] if ran else "native"
            except NotImplementedError:
                outcome = "raised"
        finally:
            if g is not None:
                g.__exit__(None, None, None)
        c = e.chosen
        if c.kind == "missing" or (c.key == "Meta" and c.rule == "backend fallback"):
            # No kernel, or the Meta fallback, whose kernel raises "no fake impl or Meta kernel".
            expected = "raised"
        elif c.kind == "python":
            # A Python kernel registered at the alias key of an alias rule, else at the slot's key.
            expected = c.alias or c.key
        else:
            expected = "native"
        assert outcome == expected, str(e)
        assert len(ran) <= 1
        if fallthrough_cpu:
            assert "CPU" in e.fallthrough_keys
            assert e.chosen.key != "CPU"
    finally:
        lib._destroy()


def test_explain_aten_add_text_and_fields():
    a = M.ones(2)
    e = library.explain(ops.aten.add.Tensor, a, a)
    assert e.operator == "aten::add.Tensor"
    # The autograd kernel runs first and redispatches to CPU below it.
    assert e.key == "AutogradCPU" and e.will_run
    assert "CPU" in [b.key for b in e.below]
    assert [a["name"] for a in e.arguments] == ["self", "other", "alpha"]
    assert [a["dispatch_relevant"] for a in e.arguments] == [True, True, False]
    assert "CPU" in e.dispatch_keys
    text = str(e)
    assert text.startswith("aten::add.Tensor(Tensor self, Tensor other, *, Scalar alpha=1) -> Tensor")
    assert "runs AutogradCPU:" in text
    # to_dict is plain data.
    json.dumps(e.to_dict())


def test_explain_packet_resolves_like_the_call():
    a = M.ones(2)
    assert library.explain(ops.aten.add, a, a).operator == "aten::add.Tensor"
    assert library.explain(ops.aten.add, a, 2).operator == "aten::add.Scalar"
    assert library.explain("aten::add.Tensor", a, a).operator == "aten::add.Tensor"


def test_explain_meta_and_missing_slot_with_fix():
    m = M.empty(2, device="meta")
    assert library.explain(ops.aten.add.Tensor, m, m).key == "AutogradMeta"
    ns = fresh_ns()
    lib = library.Library(ns, "DEF")
    try:
        lib.define("g(int n) -> Tensor")
        e = library.explain(getattr(ops, ns).g.default, 3)
        assert e.chosen.kind == "missing" and not e.will_run
        assert e.key == "Undefined"
        assert "to fix: the call has no tensor arguments" in str(e)
        assert e.chosen.fix is not None
        with pytest.raises(NotImplementedError):
            getattr(ops, ns).g.default(3)
    finally:
        lib._destroy()


def test_explain_runs_nothing():
    ns = fresh_ns()
    lib = library.Library(ns, "DEF")
    ran = []
    try:
        lib.define("h(Tensor x) -> Tensor")
        lib.impl("h", lambda x: ran.append(1) or x, "CPU")
        e = library.explain(getattr(ops, ns).h.default, M.ones(1))
        assert e.chosen.kind == "python"
        assert ran == []
    finally:
        lib._destroy()


def test_explain_errors():
    with pytest.raises(RuntimeError, match="does not exist"):
        library.explain("nope_ns::nope", M.ones(1))
    with pytest.raises(TypeError, match="expected an operator"):
        library.explain(42, M.ones(1))
    # Arguments that do not bind the schema: the call's own binding error.
    with pytest.raises(RuntimeError, match="expected at most"):
        library.explain(ops.aten.neg.default, M.ones(1), M.ones(1))
    with pytest.raises(TypeError, match="no overload"):
        library.explain(ops.aten.add, "x", "y")


class _Cells(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_dispatch_table_rows_text_and_html(tmp_path):
    ns = fresh_ns()
    lib = library.Library(ns, "DEF")
    try:
        lib.define("f(Tensor x) -> Tensor")
        lib.impl("f", lambda x: x, "CompositeImplicitAutograd")
        lib.impl("f", lambda x: x, "CPU")
        t = library.dispatch_table(f"{ns}::f")
        cpu = t.row("CPU")
        assert cpu is not None and cpu.rule == "kernel" and cpu.kind == "python"
        meta = t.row("Meta")
        assert meta is not None and meta.rule == "math kernel"
        assert meta.alias == "CompositeImplicitAutograd"
        # Rows follow the dump: the same keys as _dispatch_dump_table, in its order.
        dump_keys = [line.split(":")[0] for line in _C._dispatch_dump_table(f"{ns}::f").splitlines()]
        assert [r.key for r in t] == dump_keys
        assert "dispatch table of" in str(t)
        page = t.to_html()
        p = _Cells()
        p.feed(page)
        assert "CPU" in p.text and "AutogradCPU" in p.text
        assert t._repr_html_() in page
        out = tmp_path / "t.html"
        code = (
            "import sys, opdispatch as M; from opdispatch import library;"
            f"lib = library.Library('{ns}', 'DEF'); lib.define('f(Tensor x) -> Tensor');"
            "lib.impl('f', lambda x: x, 'CPU');"
            "from opdispatch.__main__ import main;"
            f"sys.exit(main(['table', '{ns}::f', '--html', {str(out)!r}]) or main(['table', '{ns}::f']))"
        )
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert "CPU" in r.stdout and "python" in r.stdout
        assert "<table" in out.read_text()
    finally:
        lib._destroy()


def test_cli_unknown_operator():
    r = subprocess.run(
        [sys.executable, "-m", "opdispatch", "table", "nope_ns::nope"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2
    assert "does not exist" in r.stderr
