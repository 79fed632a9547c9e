#!/usr/bin/env python3
"""Packet-call benchmark: ``ops.aten.add(a, b)`` (a packet with several overloads, resolved
per call) against ``ops.aten.add.Tensor(a, b)`` (the overload itself), in the same run, plus
the tensor method ``a.add(b)`` and a packet call that takes the second overload.

    .venv/bin/python bench/bench_packet.py
"""

from __future__ import annotations

import timeit
from collections.abc import Callable
from typing import Any

import opdispatch
from opdispatch import ops

N = 50_000


def per_call(f: Callable[[], Any], number: int = N, repeat: int = 15) -> float:
    # The minimum over many short repeats (see bench_calls.py).
    return min(timeit.repeat(f, number=number, repeat=repeat)) / number


def main() -> None:
    a, b = opdispatch.ones(4), opdispatch.ones(4)
    packet, overload, scalar = ops.aten.add, ops.aten.add.Tensor, ops.aten.add.Scalar
    assert len(packet.overloads()) > 1
    calls: dict[str, Callable[[], Any]] = {
        "ops.aten.add.Tensor(a, b)": lambda: overload(a, b),
        "ops.aten.add(a, b)": lambda: packet(a, b),
        "ops.aten.add.Scalar(a, 2)": lambda: scalar(a, 2),
        "ops.aten.add(a, 2) (add.Scalar)": lambda: packet(a, 2),
        "ops.aten.add(a, b, alpha=2)": lambda: packet(a, b, alpha=2),
        "a.add(b)": lambda: a.add(b),
    }
    # Two rounds, best of each: the first case measured alone ran ~1.8x slow (clock ramp-up,
    # caches), which skewed every ratio against it.
    rows: dict[str, float] = {}
    for _ in range(2):
        for name, f in calls.items():
            rows[name] = min(rows.get(name, float("inf")), per_call(f))
    base = rows["ops.aten.add.Tensor(a, b)"]
    for name, t in rows.items():
        print(f"{name:34s} {t * 1e6:7.3f} us  {t / base:5.2f}x")


if __name__ == "__main__":
    main()
