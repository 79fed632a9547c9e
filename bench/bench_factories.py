#!/usr/bin/env python3
"""Factory-call benchmark: each public factory (``ones``, ``zeros``, ``empty``, ``full``,
``arange``, ``tensor``) against a direct call of its aten overload (``ops.aten.ones.default``,
...), measured in the same interpreter, with the ratio. Both roads make one dispatcher call; the
ratio shows what the public function's argument handling (Python sizes, dtype/device
defaults) costs beside the overload's schema binding.

    .venv/bin/python bench/bench_factories.py [--torch-python PATH]

``tensor`` has no aten overload of its own; its row compares it with ``ones`` of the same
size (the allocation it needs plus reading the Python list).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import timeit
from collections.abc import Callable
from typing import Any

N = 20_000


def per_call(stmt: Callable[[], object], number: int = N, repeat: int = 15) -> float:
    # The minimum over many short repeats (shared machines have slow phases).
    return min(timeit.repeat(stmt, number=number, repeat=repeat)) / number


def measure(mod_name: str) -> dict[str, tuple[float, float]]:
    import importlib

    M: Any = importlib.import_module(mod_name)
    aten = M.ops.aten
    data = [1.0, 2.0, 3.0, 4.0]
    cases: dict[str, tuple[Callable[[], object], Callable[[], object]]] = {
        "ones(4)": (lambda: M.ones(4), lambda: aten.ones.default([4])),
        "zeros(4)": (lambda: M.zeros(4), lambda: aten.zeros.default([4])),
        "empty(4)": (lambda: M.empty(4), lambda: aten.empty.memory_format([4])),
        "full((4,), 2.0)": (lambda: M.full((4,), 2.0), lambda: aten.full.default([4], 2.0)),
        "arange(4)": (lambda: M.arange(4), lambda: aten.arange.default(4)),
        "tensor([4 floats]) vs ones(4)": (lambda: M.tensor(data), lambda: M.ones(4)),
    }
    # Warm up (first calls resolve and cache the overloads).
    for f, g in cases.values():
        f()
        g()
    return {k: (per_call(f), per_call(g)) for k, (f, g) in cases.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--torch-python", help="a python with torch installed, for the same rows in torch")
    ap.add_argument("--rounds", type=int, default=2, help="fresh interpreters per side; the best is kept")
    ap.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--module", default="opdispatch", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.json:
        print(json.dumps(measure(a.module)))
        return
    sides = [("opdispatch", sys.executable)]
    if a.torch_python:
        sides.append(("torch", a.torch_python))
    best: dict[str, dict[str, list[float]]] = {}
    for _ in range(max(1, a.rounds)):
        for module, python in sides:
            r = subprocess.run([python, __file__, "--json", "--module", module], capture_output=True, text=True)
            if r.returncode != 0:
                raise SystemExit(f"{module} run failed:\n{r.stderr.strip()[-2000:]}")
            into = best.setdefault(module, {})
            for k, (f, g) in json.loads(r.stdout).items():
                old = into.get(k, [f, g])
                into[k] = [min(f, old[0]), min(g, old[1])]
    header = f"{'case':32s}"
    for module, _ in sides:
        header += f" {module + ' public':>18s} {'direct':>9s} {'ratio':>6s}"
    print(header)
    for k in best["opdispatch"]:
        line = f"{k:32s}"
        for module, _ in sides:
            f, g = best[module][k]
            line += f" {f * 1e6:16.3f}us {g * 1e6:7.3f}us {f / g:6.2f}"
        print(line)


if __name__ == "__main__":
    main()
