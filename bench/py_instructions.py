#!/usr/bin/env python3
"""Instruction counts (callgrind) per Python-level call: the steady figure for paths that go
through the interpreter, where wall-clock numbers on a shared machine swing too much.

    .venv/bin/python bench/py_instructions.py                       # this checkout's .venv
    .venv/bin/python bench/py_instructions.py --python /tmp/before/.venv/bin/python

Each case runs twice, with N and 2N iterations, under callgrind; the difference divided by N is
the cost of one iteration (start-up and imports cancel out). Needs valgrind. Prints numbers only.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile

CASES = {
    "a + b (no grad)": ("a, b = M.ones(4), M.ones(4)", "a + b", 20000),
    "(x*y).sum() fwd+bwd": (
        "x = M.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)\n"
        "y = M.tensor([0.5, -1.0, 2.0, 0.25], requires_grad=True)",
        "(x * y).sum().backward()",
        2000,
    ),
    "a.add(b)": ("a, b = M.ones(4), M.ones(4)", "a.add(b)", 20000),
    "ones(4)": ("", "M.ones(4)", 20000),
    "Library op (clone)": (
        "a = M.ones(4)\nlib = M.library.Library('pyi_l', 'DEF')\nlib.define('c(Tensor x) -> Tensor')\n"
        "lib.impl('c', lambda x: x.clone(), 'CPU')\nop = M.ops.pyi_l.c.default",
        "op(a)",
        10000,
    ),
    "custom_op (clone)": (
        "a = M.ones(4)\n"
        "f = M.library.custom_op('pyi_c::c', lambda x: x.clone(), mutates_args=(), schema='(Tensor x) -> Tensor')",
        "f(a)",
        10000,
    ),
    "wrapper a + b": (
        "class W(M.Tensor):\n"
        "    @staticmethod\n"
        "    def __new__(cls, e):\n"
        "        r = M.Tensor._make_wrapper_subclass(cls, e.shape, dtype=e.dtype, device=e.device)\n"
        "        r.e = e\n"
        "        return r\n"
        "    @classmethod\n"
        "    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):\n"
        "        out = func(*[x.e if isinstance(x, W) else x for x in args], **(kwargs or {}))\n"
        "        return W(out)\n"
        "a, b = W(M.ones(4)), W(M.ones(4))",
        "a + b",
        5000,
    ),
    "define custom_op": (
        "import itertools\nc = itertools.count()\nkeep = []\n"
        "def define():\n"
        "    @M.library.custom_op(f'pyi_d::d{next(c)}', mutates_args=())\n"
        "    def f(x: M.Tensor, n: int, s: float = 1.0) -> M.Tensor:\n"
        "        return x.clone()\n"
        "    return f",
        "keep.append(define())",
        300,
    ),
}


def total(python: str, setup: str, stmt: str, n: int) -> int:
    code = f"import opdispatch as M\n{setup}\nfor _ in range({n}):\n    {stmt}\n"
    with tempfile.TemporaryDirectory() as d:
        script = os.path.join(d, "case.py")
        with open(script, "w") as f:
            f.write(code)
        out = os.path.join(d, "cg.out")
        subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", python, script],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        text = subprocess.run(["callgrind_annotate", out], check=True, capture_output=True, text=True).stdout
    m = re.search(r"([\d,]+)\s+\(100\.0%\)\s+PROGRAM TOTALS", text)
    if m is None:
        raise SystemExit("could not read callgrind's total")
    return int(m.group(1).replace(",", ""))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--case", action="append", help="run only the cases whose name contains this")
    args = ap.parse_args()
    for name, (setup, stmt, n) in CASES.items():
        if args.case and not any(c in name for c in args.case):
            continue
        try:
            per = (total(args.python, setup, stmt, 2 * n) - total(args.python, setup, stmt, n)) / n
        except subprocess.CalledProcessError:
            print(f"{name:24s} {'n/a (the case fails in this tree)':>10s}")
            continue
        print(f"{name:24s} {per:10.0f} instructions")


if __name__ == "__main__":
    main()
