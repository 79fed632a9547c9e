"""Vectorized reductions, in-place kernels, clone/copy_, matmul and the intra-op thread
count, checked against numpy (values, and float32 rounding on long inputs)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import opdispatch as M


def arr(t: Any) -> np.ndarray:
    return np.array(t.tolist(), dtype=np.float64)


def test_num_threads_default_and_errors() -> None:
    import os

    assert M.get_num_threads() >= 1
    assert M.get_num_threads() <= (os.cpu_count() or 1)
    old = M.get_num_threads()
    try:
        M.set_num_threads(3)
        assert M.get_num_threads() == 3
        for bad in (0, -1):
            with pytest.raises(RuntimeError, match="^set_num_threads expects a positive integer$"):
                M.set_num_threads(bad)
        for bad, name in ((1.5, "float"), ("a", "str"), (True, "bool")):
            with pytest.raises(RuntimeError, match=f"^set_num_threads expects an int, but got {name}$"):
                M.set_num_threads(bad)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="Overflow when unpacking long"):
            M.set_num_threads(2**31)
        assert M.get_num_threads() == 3
    finally:
        M.set_num_threads(old)


def test_float32_sum_keeps_precision_on_long_inputs(threads: int) -> None:
    # A running float32 sum stops at 2**24 = 16777216; torch's cascade (and numpy's pairwise
    # sum) do not.
    n = 1 << 25
    assert M.ones(n).sum().item() == float(n)
    # torch 2.15 gives 33554436 here too: the last 8 ones meet a partial of 2**25 and round.
    if threads == 1:
        assert M.ones(n + 8).sum().item() == 33554436.0
    ramp = np.arange(10_000_003, dtype=np.float32) * np.float32(1e-3)
    t = M.tensor(ramp.tolist(), dtype=M.float32)
    exact = float(np.sum(ramp, dtype=np.float64))
    got = t.sum().item()
    assert abs(got - exact) / exact < 2e-7
    assert abs(got - float(np.sum(ramp))) / exact < 2e-7
    assert t.mean().item() == pytest.approx(exact / ramp.size, rel=2e-7)


def test_float32_sum_rounds_as_torch_short_rows() -> None:
    # 8-lane vectors, the tail, then the lanes in order, all in float32 (torch's schedule).
    x = np.random.default_rng(0).standard_normal(23).astype(np.float32)
    lanes = (x[0:8] + x[8:16]).astype(np.float32)
    s = np.float32(0)
    for e in list(x[16:]) + list(lanes):
        s = np.float32(s + e)
    assert M.tensor(x.tolist(), dtype=M.float32).sum().item() == float(s)


def test_float32_sum_matches_float32_rounding_not_float64() -> None:
    # 2**24 + 1 + 1 + ...: in float32 each +1 to 2**24 rounds away; the cascade sums the ones
    # first. The float32 result is a float32 value.
    vals = [2.0**24] + [1.0] * 64
    s = M.tensor(vals, dtype=M.float32).sum().item()
    assert s == float(np.float32(s))
    assert s == 2.0**24 + 64


@pytest.mark.parametrize("shape,dims", [((37, 1000), 0), ((37, 1000), 1), ((5, 64, 33), 1),
                                        ((5, 64, 33), (0, 2)), ((3, 4, 5), (0, 1, 2)), ((7, 1, 9), 1)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sum_mean_dims_match_numpy(shape: tuple[int, ...], dims: Any, dtype: str, threads: int) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(dtype)
    t = M.tensor(x.tolist(), dtype=getattr(M, dtype))
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(arr(t.sum(dims)), x.astype(np.float64).sum(axis=dims), rtol=tol, atol=tol)
    np.testing.assert_allclose(arr(t.mean(dims)), x.astype(np.float64).mean(axis=dims), rtol=tol, atol=tol)
    kd = t.sum(dims, keepdim=True)
    assert list(kd.shape) == list(np.sum(x, axis=dims, keepdims=True).shape)
    # A transposed (non-contiguous) input takes the gather path and agrees.
    tt = t.transpose(0, -1)
    np.testing.assert_allclose(arr(tt.sum(0)), np.swapaxes(x, 0, -1).astype(np.float64).sum(axis=0),
                               rtol=tol, atol=tol)


def test_sum_dtype_and_empty() -> None:
    t = M.tensor([1.5, 2.25, -1.0], dtype=M.float32)
    s = t.sum(dtype=M.float64)
    assert s.dtype == M.float64 and s.item() == 2.75
    e = M.zeros(0, 4)
    assert arr(e.sum(0)).tolist() == [0.0] * 4
    assert list(e.sum(1).shape) == [0]
    assert np.isnan(e.mean().item())


@pytest.mark.parametrize("n", [1, 15, 16, 1000, 100_003])
def test_max_min_argmax_match_numpy(n: int, threads: int) -> None:
    rng = np.random.default_rng(n)
    x = rng.integers(0, 50, n).astype(np.float32)  # many ties: first occurrence wins
    t = M.tensor(x.tolist(), dtype=M.float32)
    assert t.max().item() == x.max() and t.min().item() == x.min()
    assert t.argmax().item() == int(np.argmax(x)) and t.argmin().item() == int(np.argmin(x))
    if n > 3:
        x[n // 2] = np.nan
        x[n - 1] = np.nan
        t = M.tensor(x.tolist(), dtype=M.float32)
        assert np.isnan(t.max().item()) and t.argmax().item() == n // 2
        assert t.argmin().item() == n // 2


def test_max_min_dims_match_numpy(threads: int) -> None:
    rng = np.random.default_rng(1)
    x = rng.integers(0, 9, (6, 300, 40)).astype(np.float64)
    x[2, 7, 3] = np.nan
    t = M.tensor(x.tolist(), dtype=M.float64)
    for d in (0, 1, 2):
        v, i = t.max(d)
        np.testing.assert_array_equal(arr(v), np.max(x, axis=d))
        nan_first = np.argmax(np.isnan(x), axis=d)
        want = np.where(np.isnan(x).any(axis=d), nan_first, np.argmax(np.nan_to_num(x, nan=-1), axis=d))
        np.testing.assert_array_equal(arr(i), want)
        v, i = t.min(d)
        np.testing.assert_array_equal(arr(v), np.min(x, axis=d))
    with pytest.raises(IndexError, match="Expected reduction dim 0 to have non-zero size"):
        M.zeros(0, 3).max(0)


@pytest.mark.parametrize("n", [10, 100_000])
def test_inplace_writes_in_place(n: int, threads: int) -> None:
    a = M.rand(n)
    b = M.rand(n)
    ref = arr(a) + 2.0 * arr(b).astype(np.float32).astype(np.float64)
    ptr = a.data_ptr()
    out = a.add_(b, alpha=2)
    assert out is a and a.data_ptr() == ptr
    np.testing.assert_allclose(arr(a), ref, rtol=1e-6)
    before = arr(a)
    a.mul_(b)
    np.testing.assert_array_equal(arr(a), (before.astype(np.float32) * arr(b).astype(np.float32)).astype(np.float64))
    a.sub_(0.5)
    a.div_(a)  # same storage, same offset
    assert set(arr(a).tolist()) <= {1.0} or np.isnan(arr(a)).any()
    c = M.ones(4, 3)
    c.add_(M.tensor([1.0, 2.0, 3.0]))  # broadcast right operand: the generic path
    assert arr(c).tolist() == [[2.0, 3.0, 4.0]] * 4
    with pytest.raises(RuntimeError, match="doesn't match the broadcast shape"):
        M.ones(3).add_(M.ones(2, 3))
    with pytest.raises(RuntimeError, match="result type Float can't be cast to the desired output type Long"):
        M.ones(3, dtype=M.int64).add_(M.ones(3))


def test_clone_and_copy_are_exact(threads: int) -> None:
    a = M.rand(100_001)
    c = a.clone()
    assert c.data_ptr() != a.data_ptr() and arr(c).tolist() == arr(a).tolist()
    d = M.zeros(100_001)
    d.copy_(a)
    assert arr(d).tolist() == arr(a).tolist()
    d.copy_(d)
    assert arr(d).tolist() == arr(a).tolist()
    v = M.arange(10.0)
    v[2:8].copy_(v[0:6])  # overlapping views of one storage
    assert arr(v).tolist() == [0, 1, 0, 1, 2, 3, 4, 5, 8, 9]
    tr = M.rand(30, 40).t()
    np.testing.assert_array_equal(arr(tr.clone()), arr(tr))


@pytest.mark.parametrize("n", [3, 256, 300])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_matmul_matches_numpy(n: int, dtype: str, threads: int) -> None:
    rng = np.random.default_rng(n)
    x = rng.standard_normal((n, n + 1)).astype(dtype)
    y = rng.standard_normal((n + 1, n - 1)).astype(dtype)
    a = M.tensor(x.tolist(), dtype=getattr(M, dtype))
    b = M.tensor(y.tolist(), dtype=getattr(M, dtype))
    tol = 1e-4 if dtype == "float32" else 1e-10
    np.testing.assert_allclose(arr(a @ b), x.astype(np.float64) @ y.astype(np.float64), rtol=tol, atol=tol)
    # Transposed operands (any strides).
    np.testing.assert_allclose(arr(b.t() @ a.t()), (x @ y).T.astype(np.float64), rtol=tol, atol=tol)


@pytest.mark.parametrize("n", [1000, 100_001])
def test_elementwise_large_matches_small(n: int, threads: int) -> None:
    a = M.rand(n)
    b = M.rand(n) + 0.5
    x, y = arr(a).astype(np.float32), arr(b).astype(np.float32)
    np.testing.assert_array_equal(arr(a + b), (x + y).astype(np.float64))
    np.testing.assert_array_equal(arr(a / b), (x / y).astype(np.float64))
    np.testing.assert_array_equal(arr(a * 3.0), (x.astype(np.float64) * 3.0).astype(np.float32))
