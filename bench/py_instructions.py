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
    args = ap.parse_args()
    for name, (setup, stmt, n) in CASES.items():
        try:
            per = (total(args.python, setup, stmt, 2 * n) - total(args.python, setup, stmt, n)) / n
        except subprocess.CalledProcessError:
            print(f"{name:24s} {'n/a (the case fails in this tree)':>10s}")
            continue
        print(f"{name:24s} {per:10.0f} instructions")


if __name__ == "__main__":
    main()
