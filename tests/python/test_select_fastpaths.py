"""The contiguous float32 paths of comparisons and ``where`` agree with the generic path
(float64 operands take the generic strided loop), NaN and broadcasting cases included."""

from __future__ import annotations

import math

import opdispatch as od

VALS = [0.5, -1.0, float("nan"), 0.0, -0.0, 2.0, float("inf"), -float("inf"), 0.25, 3.0, -2.5, 1e-30]


def _pair() -> tuple[od.Tensor, od.Tensor]:
    a = od.tensor([VALS, VALS[::-1]], dtype=od.float32)
    return a, a.to(od.float64)


def _same(x: list, y: list) -> bool:
    fx = [v for row in x for v in row]
    fy = [v for row in y for v in row]
    return all((math.isnan(p) and math.isnan(q)) or p == q for p, q in zip(fx, fy, strict=True))


def test_comparisons_match_the_generic_path() -> None:
    a, a64 = _pair()
    b = a.flip(1) if hasattr(a, "flip") else a * -1
    b64 = b.to(od.float64)
    for op in ("__lt__", "__le__", "__gt__", "__ge__", "__eq__", "__ne__"):
        assert getattr(a, op)(0.5).tolist() == getattr(a64, op)(0.5).tolist(), op
        assert getattr(a, op)(b).tolist() == getattr(a64, op)(b64).tolist(), op
        assert getattr(a, op)(a).tolist() == getattr(a64, op)(a64).tolist(), op
        zero_dim = od.tensor(0.25)
        assert getattr(a, op)(zero_dim).tolist() == getattr(a64, op)(zero_dim.to(od.float64)).tolist(), op


def test_where_matches_the_generic_path() -> None:
    a, a64 = _pair()
    m = a > 0
    assert _same(od.where(m, a, 0.0).tolist(), od.where(m, a64, 0.0).tolist())
    assert _same(od.where(m, od.tensor(1.5), a).tolist(), od.where(m, od.tensor(1.5), a64).tolist())
    assert _same(od.where(m, a, a * 2).tolist(), od.where(m, a64, a64 * 2).tolist())
    # broadcasting condition and a non-contiguous operand take the generic path, same answers
    row = od.tensor([True, False] * 6)
    assert _same(od.where(row, a, 0.0).tolist(), od.where(row, a64, 0.0).tolist())
    t = a.t()
    assert _same(od.where(t > 0, t, -1.0).tolist(), od.where(t > 0, t.to(od.float64), -1.0).tolist())
    assert od.where(m, a, 0.0).dtype == od.float32


def test_where_with_numbers_in_either_place() -> None:
    m = od.tensor([True, False, True])
    a = od.tensor([1.0, 2.0, 3.0])
    assert od.where(m, -1.0, a).tolist() == [-1.0, 2.0, -1.0]
    assert od.where(m, a, -1.0).tolist() == [1.0, -1.0, 3.0]
    both = od.where(m, 1.0, 0.0)
    assert (both.tolist(), both.dtype) == ([1.0, 0.0, 1.0], od.float32)
    assert od.where(m, 1, 0).dtype == od.int64
