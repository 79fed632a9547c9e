#!/usr/bin/env python3
"""Autograd timings (issue 10's goals): forward+backward of small graphs, a 2-layer MLP, and the
forward of ``a + b`` on tensors that do not require grad. With ``--torch`` (a python that has
torch) the same workloads run under torch in the same run, and the ratios are printed.

    .venv/bin/python bench/bench_autograd.py
    PYTHONPATH=/tmp/torchenv/lib/python3.11/site-packages .venv/bin/python bench/bench_autograd.py --torch
"""

from __future__ import annotations

import argparse
import importlib
import timeit


def workloads(M):  # noqa: ANN001, ANN201, N803
    x = M.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    y = M.tensor([0.5, -1.0, 2.0, 0.25], requires_grad=True)
    a, b = M.ones(4), M.ones(4)

    def mul_sum() -> None:
        (x * y).sum().backward()

    def tanh_chain() -> None:
        z = x
        for _ in range(10):
            z = M.tanh(z) * y
        z.sum().backward()

    w1 = (M.ones(256, 256) * 0.01).requires_grad_()
    w2 = (M.ones(256, 256) * 0.01).requires_grad_()
    inp = M.ones(256, 256)

    def mlp() -> None:
        (M.relu(inp @ w1) @ w2).sum().backward()

    def add_no_grad() -> None:
        a + b  # noqa: B018

    return {"mul_sum": mul_sum, "tanh_chain": tanh_chain, "mlp_256": mlp, "a+b (no grad)": add_no_grad}


def measure(M) -> dict[str, float]:  # noqa: ANN001, N803
    out = {}
    for name, fn in workloads(M).items():
        n = 20 if name == "mlp_256" else 2000
        fn()
        best = min(timeit.repeat(fn, number=n, repeat=5)) / n
        out[name] = best * 1e6
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--torch", action="store_true", help="also run torch (must be importable)")
    args = ap.parse_args()
    od = importlib.import_module("opdispatch")
    od.set_num_threads(1)  # the goals are single-threaded figures, for both sides
    ours = measure(od)
    theirs = {}
    if args.torch:
        torch = importlib.import_module("torch")
        torch.set_num_threads(1)  # the goals are single-threaded figures
        theirs = measure(torch)
    for k, v in ours.items():
        line = f"{k:16s} opdispatch {v:9.2f} us"
        if k in theirs:
            line += f"   torch {theirs[k]:9.2f} us   ratio {v / theirs[k]:.2f}"
        print(line)


if __name__ == "__main__":
    main()
