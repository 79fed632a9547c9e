"""Leak and load figures (issue 15 item 3): Python-kernel calls from 4 threads while another
thread registers and drops libraries, autograd forward+backward iterations, custom_op
definitions and destructions. Prints failures, RSS and gc live objects before/after.
STRESS_SCALE scales every count (1.0: 1e6 calls, 1e5 autograd iterations, 1e4 custom ops)."""

from __future__ import annotations

import gc
import os
import threading
import time

import opdispatch as torch
from opdispatch.library import Library, custom_op

SCALE = float(os.environ.get("STRESS_SCALE", "1.0"))


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def live() -> int:
    gc.collect()
    return len(gc.get_objects())


def report(name: str, t0: float, rss0: float, obj0: int, n: int, failures: int) -> None:
    dt = time.perf_counter() - t0
    print(f"{name}: {n} in {dt:.1f}s, {failures} failures, RSS {rss0:.1f} -> {rss_mb():.1f} MiB, "
          f"gc objects {obj0} -> {live()}")


def calls_while_registering() -> None:
    n_calls = int(1_000_000 * SCALE)
    lib = Library("stress", "DEF")
    lib.define("f(Tensor x) -> Tensor")
    lib.impl("f", lambda x: x, "CPU")
    x = torch.ones(2)
    op = torch.ops.stress.f
    rss0, obj0, t0 = rss_mb(), live(), time.perf_counter()
    failures = [0]
    stop = threading.Event()

    def caller(k: int) -> None:
        for _ in range(k):
            try:
                if op(x) is not x:
                    failures[0] += 1
            except Exception:
                failures[0] += 1

    def registrar() -> None:
        i = 0
        while not stop.is_set():
            other = Library(f"stress_churn{i % 8}", "FRAGMENT")
            other.define("g(Tensor x) -> Tensor")
            other.impl("g", lambda x: x, "CPU")
            other._destroy()
            i += 1

    reg = threading.Thread(target=registrar)
    reg.start()
    threads = [threading.Thread(target=caller, args=(n_calls // 4,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    reg.join()
    lib._destroy()
    report("python-kernel calls (4 threads) + register/drop thread", t0, rss0, obj0, n_calls, failures[0])


def autograd_iterations() -> None:
    n = int(100_000 * SCALE)
    w = torch.ones(4, requires_grad=True)
    rss0, obj0, t0 = rss_mb(), live(), time.perf_counter()
    failures = 0
    for _ in range(n):
        y = (w * 2.0 + 1.0).sum()
        y.backward()
        if w.grad is None:
            failures += 1
        w.grad = None
    report("autograd forward+backward", t0, rss0, obj0, n, failures)


def custom_ops() -> None:
    n = int(10_000 * SCALE)
    rss0, obj0, t0 = rss_mb(), live(), time.perf_counter()
    failures = 0
    x = torch.ones(2)
    for i in range(n):
        name = f"stress_co::op{i}"

        @custom_op(name, mutates_args=())
        def op(t: torch.Tensor) -> torch.Tensor:
            return t.clone()

        ns, short = name.split("::")
        if getattr(getattr(torch.ops, ns), short)(x).tolist() != [1.0, 1.0]:
            failures += 1
        op._lib._destroy()  # type: ignore[attr-defined]
        del op
    report("custom_op define+call+destroy", t0, rss0, obj0, n, failures)


if __name__ == "__main__":
    print(f"STRESS_SCALE={SCALE}")
    calls_while_registering()
    autograd_iterations()
    custom_ops()
