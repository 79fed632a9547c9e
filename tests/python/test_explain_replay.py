"""explain against what actually runs, over the registration and calls suites (issue 14,
item 5).

Every scenario of the conformance kit's registration and calls suites is replayed with the
kit's own interpreter. Before each call step, and at each table step of the registration suite
(where the operator takes one tensor) with a CPU and a Meta tensor, `library.explain` predicts
the slot and a `library.trace` of the call records the slot that ran. Both must agree on the
runtime key and the kernel's kind, and a predicted missing slot must be a failed call.
"""

from __future__ import annotations

import glob
import importlib.util
import json
import os
import sys
from typing import Any

import pytest

import opdispatch as M
from opdispatch import _C, library

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KIT = os.path.join(os.path.dirname(ROOT), "shared", "conformance")
SUITES = [os.path.join(KIT, "suites", s) for s in ("registration", "calls")]

if not os.path.isfile(os.path.join(KIT, "cf_interp.py")):
    pytest.skip(f"the conformance kit is not at {KIT}", allow_module_level=True)


def _load_interp() -> Any:
    spec = importlib.util.spec_from_file_location("cf_interp", os.path.join(KIT, "cf_interp.py"))
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["cf_interp"] = mod
    spec.loader.exec_module(mod)
    return mod


cf = _load_interp()


class Checked(cf.Scenario):  # type: ignore[misc, name-defined]
    """The kit's interpreter, with every call step explained first and traced."""

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.compared = 0
        self.mismatches: list[str] = []

    def compare(self, idx: int, label: str, target: Any, args: list[Any]) -> None:
        e = library.explain(target, *args)
        raised = False
        with library.trace() as t:
            try:
                target(*args)
            except Exception:  # the comparison below decides whether it should have
                raised = True
        top = [ev for ev in t.events if ev.depth == 0]
        chosen = e.chosen
        self.compared += 1
        if chosen.kind == "missing":
            ok = raised and (not top or top[0].kind == "missing")
        else:
            ok = bool(top) and (top[0].key, top[0].kind) == (chosen.key, chosen.kind)
        if not ok:
            ran = f"{top[0].key}/{top[0].kind}" if top else "nothing"
            self.mismatches.append(
                f"[{idx}] {label}: explain chose {chosen.key}/{chosen.kind}, ran {ran}"
                f" (raised={raised})\n{e}"
            )

    def s_call(self, step: dict[str, Any], idx: int) -> None:
        args = [self.tensor(a) for a in step.get("args", [])]
        target: Any = getattr(getattr(M.ops, self.sub(step.get("ns", "{NS}"))), step["name"])
        if step.get("overload"):
            target = getattr(target, step["overload"])
        try:
            self.with_guards(step, lambda: self.compare(idx, step["name"], target, args))
        finally:
            target = None
            self.clear_ops_cache()

    def s_table(self, step: dict[str, Any], idx: int) -> None:
        super().s_table(step, idx)
        name = self.sub(step["name"])
        ns, _, rest = name.partition("::")
        op, _, overload = rest.partition(".")
        try:
            handle = _C._dispatch_find_schema_or_throw(f"{ns}::{op}", overload)
        except Exception:
            return  # no schema: nothing to call
        if [a[1] for a in handle.arguments()] != ["Tensor"]:
            return
        target: Any = getattr(getattr(getattr(M.ops, ns), op), overload or "default")
        try:
            for device in ("cpu", "meta"):
                self.compare(idx, name, target, [self.tensor(device)])
        finally:
            target = None
            self.clear_ops_cache()


def _scenarios() -> list[dict[str, Any]]:
    out = []
    for path in sorted(p for d in SUITES for p in glob.glob(os.path.join(d, "*.json"))):
        with open(path, encoding="utf-8") as f:
            out.extend(json.load(f)["scenarios"])
    return out


def test_explain_matches_the_kernel_that_runs_over_the_suites() -> None:
    scenarios = _scenarios()
    assert scenarios, f"no scenarios under {SUITES}"
    compared = 0
    mismatches: list[str] = []
    for n, sc in enumerate(scenarios):
        s = Checked(M, _C, library, f"replay_{n}", [], sc.get("error_lines", 1))
        try:
            for idx, step in enumerate(sc["steps"], 1):
                s.run_step(idx, step)
        finally:
            s.close()
        compared += s.compared
        mismatches += [f"{sc['name']} {m}" for m in s.mismatches]
    assert not mismatches, "\n\n".join(mismatches[:5])
    # The suite calls operators in most scenarios; a replay that compared nothing checks nothing.
    assert compared >= len(scenarios) // 2, (compared, len(scenarios))
