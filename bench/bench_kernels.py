#!/usr/bin/env python3
"""Kernel benchmark: reductions, elementwise, in-place, clone, matmul, at 1 thread and the
default thread count, with minor page faults per call. With ``--torch PY`` the same cases run
in torch's interpreter in the same run (alternating rounds), and the ratios are printed.

    .venv/bin/python bench/bench_kernels.py [--torch /tmp/torchenv/bin/python] [--quick]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

SIZES = [1_000, 100_000, 1_000_000, 10_000_000]


def timed(f: Callable[[], Any], budget: float = 0.25) -> tuple[float, float]:
    """(best seconds per call, minor page faults per call)."""
    f()
    n = 1
    while True:
        t = time.perf_counter()
        for _ in range(n):
            f()
        if time.perf_counter() - t > 0.02 or n >= 1 << 16:
            break
        n *= 2
    best = float("inf")
    faults = 0
    calls = 0
    end = time.perf_counter() + budget
    while True:
        f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        t = time.perf_counter()
        for _ in range(n):
            f()
        best = min(best, (time.perf_counter() - t) / n)
        faults += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0
        calls += n
        if time.perf_counter() > end:
            break
    return best, faults / calls


def cases(M: Any, quick: bool) -> dict[str, Callable[[], Any]]:
    out: dict[str, Callable[[], Any]] = {}
    sizes = [1_000, 1_000_000] if quick else SIZES
    for n in sizes:
        a = M.rand(n)
        b = M.rand(n)
        c = M.rand(n)
        out[f"sum f32 {n}"] = a.sum
        out[f"mean f32 {n}"] = a.mean
        out[f"max f32 {n}"] = a.max
        out[f"argmax f32 {n}"] = a.argmax
        out[f"add f32 {n}"] = lambda a=a, b=b: a + b
        out[f"mul f32 {n}"] = lambda a=a, b=b: a * b
        out[f"add_ f32 {n}"] = lambda c=c, b=b: c.add_(b)
        out[f"mul_ scalar f32 {n}"] = lambda c=c: c.mul_(1.0)
        out[f"clone f32 {n}"] = a.clone
        out[f"copy_ f32 {n}"] = lambda c=c, a=a: c.copy_(a)
        out[f"relu f32 {n}"] = a.relu
    m = M.rand(1000, 1000)
    out["sum dim=0 1000x1000"] = lambda: m.sum(0)
    out["sum dim=1 1000x1000"] = lambda: m.sum(1)
    out["amax-like max dim=1 1000x1000"] = lambda: m.max(1)
    out["sum f64 1M"] = M.rand(1_000_000, dtype=M.float64).sum
    for k in ([256] if quick else [256, 1024]):
        for dt in (M.float32, M.float64):
            x = M.rand(k, k, dtype=dt)
            y = M.rand(k, k, dtype=dt)
            out[f"matmul {k} {str(dt).split('.')[-1]}"] = lambda x=x, y=y: x @ y
    return out


def measure(mod: str, threads: int | None, quick: bool) -> dict[str, list[float]]:
    M: Any
    if mod == "torch":
        import torch as M
    else:
        import opdispatch as M
    if threads is not None and hasattr(M, "set_num_threads"):
        M.set_num_threads(threads)
    res = {}
    for name, f in cases(M, quick).items():
        t, pf = timed(f, 0.1 if quick else 0.25)
        res[name] = [t, pf]
    return {"threads": getattr(M, "get_num_threads", lambda: 1)(), "results": res}  # type: ignore[dict-item]


def child(args: argparse.Namespace) -> None:
    print(json.dumps(measure(args.child, args.threads, args.quick)))


def run(py: str, mod: str, threads: int | None, quick: bool) -> dict[str, Any]:
    cmd = [py, __file__, "--child", mod]
    if threads is not None:
        cmd += ["--threads", str(threads)]
    if quick:
        cmd.append("--quick")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--torch", help="python interpreter with torch, for side-by-side ratios")
    p.add_argument("--rounds", type=int, default=2, help="alternating rounds (best is kept)")
    p.add_argument("--quick", action="store_true", help="fewer sizes, shorter budgets")
    p.add_argument("--threads", type=int, help=argparse.SUPPRESS)
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args)
        return
    for threads in (1, None):
        best: dict[str, dict[str, list[float]]] = {}
        nthreads = {}
        for _ in range(args.rounds):
            impls = [("opdispatch", sys.executable)]
            if args.torch:
                impls.append(("torch", args.torch))
            for mod, py in impls:
                r = run(py, mod, threads, args.quick)
                nthreads[mod] = r["threads"]
                for k, v in r["results"].items():
                    cur = best.setdefault(mod, {}).get(k)
                    if cur is None or v[0] < cur[0]:
                        best[mod][k] = v
        label = ", ".join(f"{m} {n}" for m, n in nthreads.items())
        print(f"\n== threads: {label}")
        print(f"{'case':32s} {'opdispatch':>12s} {'faults':>8s}", end="")
        print(f" {'torch':>12s} {'faults':>8s} {'ratio':>7s}" if args.torch else "")
        for k, (t, pf) in best["opdispatch"].items():
            line = f"{k:32s} {t * 1e6:10.2f}us {pf:8.1f}"
            if args.torch and k in best.get("torch", {}):
                tt, tpf = best["torch"][k]
                line += f" {tt * 1e6:10.2f}us {tpf:8.1f} {t / tt:6.2f}x"
            print(line)


if __name__ == "__main__":
    main()
