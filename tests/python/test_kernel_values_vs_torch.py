"""Kernel results pinned to torch's: float sums on long inputs (the cascade's rounding, one
and two threads), max()/min() without indices (NaN, ties of signed zeros), float32
tensor-scalar arithmetic, and the parallel copy/unary paths.

The expected sums below were recorded with torch 2.15 (CPU, AVX-512 machine, whose sum kernel
runs at AVX2 width) from the same inputs, with ``torch.set_num_threads(1)`` and ``(2)``."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pytest

import opdispatch as M


def inp(n: int, dt: Any = np.float32) -> np.ndarray:
    """A deterministic ramp in [-0.25, 0.75) (no RNG, so the recorded values stay valid)."""
    return _inp(n, dt).copy()


@functools.lru_cache(maxsize=16)
def _inp(n: int, dt: Any) -> np.ndarray:
    i = np.arange(n, dtype=np.int64)
    return (((i * 7919) % 10007).astype(np.float64) / 10007.0 - 0.25).astype(dt)


# threads -> torch 2.15's results, as float.hex.
TORCH_SUMS = {
    1: {
        "f32 1000003": "0x1.e82fc80000000p+17",
        "f32 4000037": "0x1.e830580000000p+19",
        "f64 3000017": "0x1.6e23e943c457bp+19",
        "rows 1000x1003 dim1 [17]": "0x1.f2bf660000000p+7",
        "cols 1000x1003 dim0 [1001]": "0x1.f4a5000000000p+7",
        "cols 300001x5 dim0 [3]": "0x1.24e90a0000000p+16",
    },
    2: {
        "f32 1000003": "0x1.e82fc80000000p+17",
        "f32 4000037": "0x1.e830580000000p+19",
        "f64 3000017": "0x1.6e23e943c457cp+19",
        "rows 1000x1003 dim1 [17]": "0x1.f2bf660000000p+7",
        "cols 1000x1003 dim0 [1001]": "0x1.f4a5000000000p+7",
        "cols 300001x5 dim0 [3]": "0x1.24e90a0000000p+16",
    },
}


def test_long_sums_round_as_torch(threads: int) -> None:
    want = {k: float.fromhex(v) for k, v in TORCH_SUMS[threads].items()}
    for n in (1_000_003, 4_000_037):
        assert M.from_numpy(inp(n)).sum().item() == want[f"f32 {n}"], n
    assert M.from_numpy(inp(3_000_017, np.float64)).sum().item() == want["f64 3000017"]
    x = M.from_numpy(inp(1000 * 1003).reshape(1000, 1003))
    assert x.sum(1)[17].item() == want["rows 1000x1003 dim1 [17]"]
    assert x.sum(0)[1001].item() == want["cols 1000x1003 dim0 [1001]"]
    y = M.from_numpy(inp(300_001 * 5).reshape(300_001, 5))
    assert y.sum(0)[3].item() == want["cols 300001x5 dim0 [3]"]


def test_ones_sum_rounds_as_torch(threads: int) -> None:
    # torch 2.15: 33554436 on one thread (the 3 tail ones meet 2^22 first and round up at
    # 2^24 + 3), 33554432 on two (two partials of 2^24 + 2 and 2^24 + 1, each rounded).
    want = 33554436.0 if threads == 1 else 33554432.0
    assert M.ones(2**25 + 3).sum().item() == want


def test_row_sums_equal_each_rows_own_sum(threads: int) -> None:
    # The inner-dimension kernel sums every row with the same schedule as a lone row.
    x = inp(257 * 1003).reshape(257, 1003)
    t = M.from_numpy(x)
    rows = t.sum(1).tolist()
    for i in (0, 1, 100, 256):
        assert rows[i] == M.from_numpy(x[i].copy()).sum().item()
    assert np.allclose(rows, x.astype(np.float64).sum(1), rtol=1e-6)
    cols = t.sum(0).numpy()
    assert np.allclose(cols, x.astype(np.float64).sum(0), rtol=1e-6)


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 7, 31, 32, 33, 1000, 70_001, 300_001])
def test_max_min_values(threads: int, dt: Any, n: int) -> None:
    x = np.random.default_rng(n).standard_normal(n).astype(dt)
    t = M.from_numpy(x.copy())
    assert t.max().item() == float(x.max())
    assert t.min().item() == float(x.min())
    assert t.argmax().item() == int(x.argmax())
    assert t.argmin().item() == int(x.argmin())
    for at in {0, n // 2, n - 1}:
        y = x.copy()
        y[at] = np.nan
        u = M.from_numpy(y)
        assert np.isnan(u.max().item()) and np.isnan(u.min().item())
        assert u.argmax().item() == at and u.argmin().item() == at


def test_max_of_signed_zeros_takes_the_later_as_torch() -> None:
    # torch 2.15 (one scan): max()/min() of [0.0] * k + [-0.0] * k is -0.0, of the reverse 0.0.
    for n in (6, 100, 1000):
        x = np.zeros(n, dtype=np.float32)
        x[n // 2 :] = -0.0
        for v in (M.from_numpy(x).max().item(), M.from_numpy(x).min().item()):
            assert v == 0.0 and np.signbit(v)
        for v in (M.from_numpy(-x).max().item(), M.from_numpy(-x).min().item()):
            assert v == 0.0 and not np.signbit(v)
        assert M.from_numpy(x).argmax().item() == 0


def test_empty_and_other_dtypes_keep_the_general_path() -> None:
    with pytest.raises(IndexError, match="Expected reduction dim to be specified"):
        M.from_numpy(np.zeros(0, dtype=np.float32)).max()
    assert M.tensor([3, 9, -2]).max().item() == 9
    assert M.tensor([3, 9, -2]).min().item() == -2
    # A non-contiguous float view.
    x = np.arange(20, dtype=np.float32).reshape(4, 5)
    assert M.from_numpy(x).t().max().item() == 19.0


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
def test_float32_scalar_ops_round_as_float32(threads: int, op: str) -> None:
    x = inp(100_003) * np.float32(3.7)
    s = 0.3  # Not a float32 value: torch rounds it to float32 first.
    f = np.float32(s)
    want = {"add": x + f, "sub": x - f, "mul": x * f, "div": x / f}[op]
    t = M.from_numpy(x.copy())
    out = getattr(t, op)(s)
    assert out.numpy().tobytes() == want.tobytes()
    getattr(t, op + "_")(s)
    assert t.numpy().tobytes() == want.tobytes()
    # alpha != 1 keeps one rounding of x + alpha * s.
    if op in ("add", "sub"):
        al = np.float64(np.float32(2.5))
        sign = 1.0 if op == "add" else -1.0
        wide = (x.astype(np.float64) + sign * al * np.float64(f)).astype(np.float32)
        assert getattr(M.from_numpy(x.copy()), op)(s, alpha=2.5).numpy().tobytes() == wide.tobytes()


def test_large_clone_copy_and_unary_in_chunks(threads: int) -> None:
    n = 1_000_003
    x = inp(n)
    t = M.from_numpy(x.copy())
    c = t.clone()
    assert c.numpy().tobytes() == x.tobytes()
    d = M.zeros(n)
    d.copy_(t)
    assert d.numpy().tobytes() == x.tobytes()
    assert t.relu().numpy().tobytes() == np.maximum(x, 0).tobytes()
    assert t.neg().numpy().tobytes() == (-x).tobytes()
    assert M.abs(t).numpy().tobytes() == np.abs(x).tobytes()
    e = t.exp().numpy()
    assert e.tobytes() == np.exp(x.astype(np.float64)).astype(np.float32).tobytes()
