#!/usr/bin/env python3
"""Python call-overhead benchmark. Prints per-call times and ratios against a plain Python
function call measured in the same run (and against torch, if it is importable).

    .venv/bin/python bench/bench_calls.py [--torch-python PATH]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import timeit

N = 50_000


def per_call(stmt, number=N, repeat=15) -> float:
    # The minimum over many short repeats: shared machines have slow phases that last longer
    # than one repeat, and the minimum is the run least disturbed by them.
    return min(timeit.repeat(stmt, number=number, repeat=repeat)) / number


def measure(mod_name: str) -> dict[str, float]:
    if mod_name == "torch":
        import torch as M
        from torch import _C as C
        from torch.library import Library
    else:
        import opdispatch as M
        from opdispatch import _C as C
        from opdispatch.library import Library
    lib = Library("bench_calls", "DEF")
    lib.define("ident(Tensor self) -> Tensor")
    lib.impl("ident", lambda x: x, "CPU")
    m = C._dispatch_library("FRAGMENT", "bench_calls", "")
    m.def_name_t_t("native_ident", "CPU")
    t = M.ones(4)

    def plain(x):
        return x

    packet = M.ops.bench_calls.ident
    overload = packet.default
    native = M.ops.bench_calls.native_ident
    out = {
        "plain python call": per_call(lambda: plain(t)),
        "ops.ns.op(t), Python kernel": per_call(lambda: packet(t)),
        "ops.ns.op.default(t), Python kernel": per_call(lambda: overload(t)),
        "ops.ns.op(t), native kernel": per_call(lambda: native(t)),
    }
    a4, b4 = M.ones(4), M.ones(4)
    out["a + b, 4 elements"] = per_call(lambda: a4 + b4)
    if mod_name == "torch":
        M.set_num_threads(1)
        big_a, big_b = M.rand(1_000_000), M.rand(1_000_000)
        ma, mb = M.rand(256, 256), M.rand(256, 256)
    else:
        big_a, big_b = M.arange(1_000_000).float(), M.arange(1_000_000).float()
        ma, mb = M.ones(256, 256), M.ones(256, 256)
    out["add, 1M float32"] = per_call(lambda: big_a + big_b, number=50, repeat=15)
    out["matmul 256x256 float32"] = per_call(lambda: ma @ mb, number=25, repeat=15)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--torch-python", help="a python with torch installed, for a side-by-side column")
    ap.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="alternate opdispatch and torch measurements this many times and keep each side's best "
        "(machine slowdowns then hit both sides alike)",
    )
    ap.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--module", default="opdispatch", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.json:
        print(json.dumps(measure(a.module)))
        return
    ours: dict[str, float] = {}
    theirs: dict[str, float] | None = {} if a.torch_python else None
    # Each measurement runs in a fresh interpreter, alternating between the two sides.
    for _ in range(max(1, a.rounds)):
        for python, module, into in ((sys.executable, "opdispatch", ours), (a.torch_python, "torch", theirs)):
            if into is None or python is None:
                continue
            r = subprocess.run([python, __file__, "--json", "--module", module], capture_output=True, text=True)
            if r.returncode != 0:
                raise SystemExit(f"{module} run failed:\n{r.stderr.strip()[-2000:]}")
            for k, v in json.loads(r.stdout).items():
                into[k] = min(v, into.get(k, v))
    base = ours["plain python call"]
    torch_cols = f" {'torch':>10s} {'ours/torch':>10s}" if theirs else ""
    print(f"{'case':40s} {'opdispatch':>12s} {'x plain':>8s}" + torch_cols)
    for k, v in ours.items():
        line = f"{k:40s} {v * 1e6:10.3f}us {v / base:8.2f}"
        if theirs:
            line += f" {theirs[k] * 1e6:8.3f}us {v / theirs[k]:10.2f}"
        print(line)


if __name__ == "__main__":
    main()
