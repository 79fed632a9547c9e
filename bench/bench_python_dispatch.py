#!/usr/bin/env python3
"""Python-dispatch and custom-op timings (issues 11 and 12), with torch side by side.

    .venv/bin/python bench/bench_python_dispatch.py
    PYTHONPATH=/tmp/torchenv/lib/python3.11/site-packages .venv/bin/python bench/bench_python_dispatch.py --torch

Cases (4-element float32 tensors): plain ``a + b``; ``a + b`` under a pass-through
TorchDispatchMode; ``a + b`` on a wrapper subclass that unwraps, calls and rewraps; a
``custom_op`` whose kernel returns ``x.clone()`` against the same kernel registered through
``Library``; defining a ``custom_op`` (decorator with type hints). Best of 5 rounds; prints
microseconds and the ratios the issues' goals name.
"""


import argparse
import importlib
import itertools
import timeit
from collections.abc import Callable
from typing import Any

_ns = itertools.count()


def workloads(M: Any) -> dict[str, tuple[Callable[[], object], int]]:  # noqa: N803
    pd = importlib.import_module(M.__name__ + ".utils._python_dispatch")
    a, b = M.ones(4), M.ones(4)

    class PassThrough(pd.TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
            return func(*args, **(kwargs or {}))

    class Wrapper(M.Tensor):
        @staticmethod
        def __new__(cls, elem):  # noqa: ANN001, ANN205
            r = M.Tensor._make_wrapper_subclass(cls, elem.shape, dtype=elem.dtype, device=elem.device)
            r.elem = elem
            return r

        @classmethod
        def __torch_dispatch__(cls, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN206
            def unwrap(x):  # noqa: ANN001, ANN202
                return x.elem if isinstance(x, Wrapper) else x

            out = func(*[unwrap(x) for x in args], **{k: unwrap(v) for k, v in (kwargs or {}).items()})
            return Wrapper(out) if isinstance(out, M.Tensor) else out

    wa, wb = Wrapper(a), Wrapper(b)
    mode = PassThrough()

    def plain() -> object:
        return a + b

    def under_mode() -> object:
        with mode:
            return a + b

    def mode_entered() -> object:
        return a + b

    def wrapper() -> object:
        return wa + wb

    ns = f"bench_pd_{next(_ns)}"
    lib = M.library.Library(ns, "DEF")
    lib.define("clone_lib(Tensor x) -> Tensor")
    lib.impl("clone_lib", lambda x: x.clone(), "CPU")

    @M.library.custom_op(f"{ns}::clone_custom", mutates_args=())
    def clone_custom(x: M.Tensor) -> M.Tensor:
        return x.clone()

    lib_op = getattr(M.ops, ns).clone_lib
    custom = getattr(M.ops, ns).clone_custom

    def call_library_op() -> object:
        return lib_op(a)

    def call_custom_op() -> object:
        return clone_custom(a)

    def call_custom_via_ops() -> object:
        return custom(a)

    def define_custom_op() -> object:
        name = f"{ns}::d{next(_ns)}"

        @M.library.custom_op(name, mutates_args=())
        def f(x: M.Tensor, n: int, s: float = 1.0) -> M.Tensor:
            return x.clone()

        return f

    workloads.keep = (lib, mode)  # type: ignore[attr-defined]
    return {
        "a + b": (plain, 20000),
        "a + b, pass-through mode": (mode_entered, 20000),
        "with mode: a + b": (under_mode, 20000),
        "wrapper a + b": (wrapper, 5000),
        "Library op (clone)": (call_library_op, 20000),
        "custom_op (clone)": (call_custom_op, 20000),
        "custom_op via ops.ns": (call_custom_via_ops, 20000),
        "define custom_op": (define_custom_op, 200),
    }


def measure(M: Any) -> dict[str, float]:  # noqa: N803
    out = {}
    w = workloads(M)
    mode = workloads.keep[1]  # type: ignore[attr-defined]
    for name, (fn, n) in w.items():
        if name == "a + b, pass-through mode":
            with mode:
                fn()
                best = min(timeit.repeat(fn, number=n, repeat=5)) / n
        else:
            fn()
            best = min(timeit.repeat(fn, number=n, repeat=5)) / n
        out[name] = best * 1e6
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--torch", action="store_true", help="also run torch (must be importable)")
    args = ap.parse_args()
    ours = measure(importlib.import_module("opdispatch"))
    theirs: dict[str, float] = {}
    if args.torch:
        torch = importlib.import_module("torch")
        torch.set_num_threads(1)
        theirs = measure(torch)
    for k, v in ours.items():
        line = f"{k:26s} opdispatch {v:9.2f} us"
        if k in theirs:
            line += f"   torch {theirs[k]:9.2f} us   ratio {v / theirs[k]:.2f}"
        print(line)
    print(f"wrapper / plain: opdispatch {ours['wrapper a + b'] / ours['a + b']:.1f}x"
          + (f", torch {theirs['wrapper a + b'] / theirs['a + b']:.1f}x" if theirs else ""))
    print(f"custom_op / Library op: opdispatch {ours['custom_op (clone)'] / ours['Library op (clone)']:.2f}x"
          + (f", torch {theirs['custom_op (clone)'] / theirs['Library op (clone)']:.2f}x" if theirs else ""))


if __name__ == "__main__":
    main()
