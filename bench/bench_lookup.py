#!/usr/bin/env python3
"""First-lookup benchmark for ``ops.<ns>.<op>``: the time to resolve an operator name the
namespace object has not cached yet, with 10 and with 10,000 operators registered in one
library (both in the same run), and the ratio between the two (1.0 = independent of the number
of operators).

    .venv/bin/python bench/bench_lookup.py [--ops N]
"""

from __future__ import annotations

import argparse
import time
import timeit

import opdispatch
from opdispatch.library import Library

SAMPLE = 10  # distinct names looked up per timed batch


def define(ns: str, n: int) -> Library:
    lib = Library(ns, "DEF")
    for i in range(n):
        lib.define(f"f{i}(Tensor x) -> Tensor")
        if i % 10 == 0:  # some operators with several overloads
            lib.define(f"f{i}.other(Tensor x, int y) -> Tensor")
    return lib


def first_lookup(ns: str, n: int, number: int = 200, repeat: int = 7) -> float:
    """Seconds per first lookup of ``ops.<ns>.f<i>`` (the cached packet is dropped after each
    lookup, so every lookup takes the uncached path)."""
    space = getattr(opdispatch.ops, ns)
    cache = vars(space)
    names = [f"f{(i * n) // SAMPLE}" for i in range(SAMPLE)]

    def batch() -> None:
        for name in names:
            getattr(space, name)
            del cache[name]

    return min(timeit.repeat(batch, number=number, repeat=repeat)) / (number * SAMPLE)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ops", type=int, default=10_000)
    args = ap.parse_args()
    t0 = time.perf_counter()
    small_lib = define("bench_lookup_small", 10)
    big_lib = define("bench_lookup_big", args.ops)
    print(f"registered 10 + {args.ops} operators in {time.perf_counter() - t0:.2f} s")
    small = first_lookup("bench_lookup_small", 10)
    big = first_lookup("bench_lookup_big", args.ops)
    # A name that is not registered: the AttributeError path, also one index lookup.
    missing_space = opdispatch.ops.bench_lookup_big
    missing = min(
        timeit.repeat(lambda: hasattr(missing_space, "nope"), number=2000, repeat=7)
    ) / 2000
    print(f"first lookup, 10 operators in the library:     {small * 1e6:8.2f} us")
    print(f"first lookup, {args.ops} operators in the library: {big * 1e6:8.2f} us")
    print(f"ratio (big / small):                           {big / small:8.2f}x")
    print(f"missing name (AttributeError), big library:    {missing * 1e6:8.2f} us")
    del small_lib, big_lib


if __name__ == "__main__":
    main()
