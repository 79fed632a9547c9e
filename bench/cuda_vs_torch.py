"""opdispatch's CUDA backend side by side with torch on the same GPU, each timed with a device
synchronize at the end of its loop (CUDA work is asynchronous):

- add of two 16M-element float32 tensors (memory-bound: one kernel);
- matmul 4096x4096 in float32 and bfloat16 (both call cuBLAS);
- ``a + b`` on 4-element tensors (launch-bound: what one call costs on the host).

Each result is also checked against torch's (same inputs, through numpy). ``--quick`` shrinks
the sizes (for the host emulator, where only the plumbing is exercised). Prints one line per
case and a final ``bench: OK`` or ``bench: FAILED``.
"""

from __future__ import annotations

import argparse
import ctypes
import math
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import opdispatch as od

try:
    import torch
except ImportError:  # the emulator run: opdispatch only
    torch = None


def to_od(a: np.ndarray) -> Any:
    """A CPU float32 opdispatch tensor holding ``a``'s values (one memcpy: ``from_numpy`` goes
    through Python lists, too slow for 16M elements)."""
    a = np.ascontiguousarray(a, dtype=np.float32)
    t = od.empty(*a.shape)
    ctypes.memmove(t.data_ptr(), a.ctypes.data, a.nbytes)
    return t


def to_np(t: Any) -> np.ndarray:
    """The values of opdispatch tensor ``t`` as a float32 numpy array (one device->host copy
    and one memcpy)."""
    h = t.cpu().to(od.float32).contiguous()
    n = math.prod(h.shape)
    buf = (ctypes.c_float * n).from_address(h.data_ptr())
    return np.ctypeslib.as_array(buf).reshape(tuple(h.shape)).copy()


def timed(fn: Callable[[], Any], sync: Callable[[], None], iters: int, warmup: int = 3) -> float:
    """Seconds per call of ``fn``: ``iters`` calls after ``warmup``, one sync at the end."""
    for _ in range(warmup):
        fn()
    sync()
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
    sync()
    return (time.perf_counter() - t0) / iters


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="small sizes (emulator)")
    args = ap.parse_args()
    add_n = 1 << 16 if args.quick else 16 << 20
    mm_n = 64 if args.quick else 4096
    rng = np.random.default_rng(0)
    ok = True
    rows: list[tuple[str, float, float | None, float]] = []

    def ours_sync() -> None:
        od.cuda.synchronize()

    def torch_sync() -> None:
        torch.cuda.synchronize()

    def compare(name: str, mine: Any, theirs: Any, rtol: float) -> None:
        nonlocal ok
        a = to_np(mine)
        if theirs is None:
            return
        b = theirs.float().cpu().numpy()
        if not np.allclose(a, b, rtol=rtol, atol=rtol):
            ok = False
            print(f"  MISMATCH {name}: max abs diff {np.max(np.abs(a - b))}")

    # add 16M float32
    x, y = (rng.standard_normal(add_n, dtype=np.float32) for _ in range(2))
    a, b = to_od(x).cuda(), to_od(y).cuda()
    mine = timed(lambda: a + b, ours_sync, 20 if not args.quick else 3)
    theirs = None
    ta = tb = None
    if torch is not None:
        ta, tb = torch.from_numpy(x).cuda(), torch.from_numpy(y).cuda()
        theirs = timed(lambda: ta + tb, torch_sync, 20)
    compare("add", a + b, None if torch is None else ta + tb, 1e-6)
    rows.append((f"add {add_n} float32", mine, theirs, 1.2))

    # matmul float32 / bfloat16
    p, q = (rng.standard_normal((mm_n, mm_n), dtype=np.float32) for _ in range(2))
    for dt, tdt, target, rtol in (("float32", "float32", 1.1, 1e-3), ("bfloat16", "bfloat16", 1.1, 5e-2)):
        ma = to_od(p).cuda().to(getattr(od, dt))
        mb = to_od(q).cuda().to(getattr(od, dt))
        mine = timed(lambda ma=ma, mb=mb: ma @ mb, ours_sync, 10 if not args.quick else 2)
        theirs = None
        ref = None
        if torch is not None:
            tma = torch.from_numpy(p).cuda().to(getattr(torch, tdt))
            tmb = torch.from_numpy(q).cuda().to(getattr(torch, tdt))
            theirs = timed(lambda tma=tma, tmb=tmb: tma @ tmb, torch_sync, 10)
            ref = tma @ tmb
        # Compare scaled by sqrt(k) (the entries' size).
        scale = float(np.sqrt(mm_n))
        compare(f"matmul {dt}", (ma @ mb) / scale, None if ref is None else ref.float() / scale, rtol)
        rows.append((f"matmul {mm_n} {dt}", mine, theirs, target))

    # 4-element a + b (launch-bound)
    s, u = od.ones(4).cuda(), od.ones(4).cuda()
    iters = 200 if args.quick else 20000
    mine = timed(lambda: s + u, ours_sync, iters, warmup=100)
    theirs = None
    if torch is not None:
        ts, tu = torch.ones(4, device="cuda"), torch.ones(4, device="cuda")
        theirs = timed(lambda: ts + tu, torch_sync, iters, warmup=100)
    rows.append(("a + b, 4 elements", mine, theirs, 1.0))

    print(f"{'case':<28}{'opdispatch':>14}{'torch':>14}{'ratio':>9}{'target':>9}")
    for name, m, t, target in rows:
        if t is None:
            print(f"{name:<28}{m * 1e6:>11.1f} us{'-':>14}{'-':>9}{'-':>9}")
            continue
        ratio = m / t
        mark = "" if ratio <= target else "  (over target)"
        print(f"{name:<28}{m * 1e6:>11.1f} us{t * 1e6:>11.1f} us{ratio:>8.2f}x{target:>8.1f}x{mark}")
    print("bench: OK" if ok else "bench: FAILED (results differ from torch)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
