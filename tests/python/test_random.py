"""The CPU generator reproduces PyTorch's numbers after manual_seed (values from torch 2.x)."""

from __future__ import annotations

import pytest

import opdispatch as M
from opdispatch import ops


def r4(t):
    return [round(v, 4) for v in t.reshape([-1]).tolist()]


def test_rand_randn_randint_match_torch_after_manual_seed():
    M.manual_seed(0)
    assert r4(M.rand(3)) == [0.4963, 0.7682, 0.0885]
    M.manual_seed(0)
    assert r4(M.randn(3)) == [1.541, -0.2934, -2.1788]
    M.manual_seed(0)
    assert r4(M.randn(4, 4))[:3] == [-1.1258, -1.1524, -0.2506]
    M.manual_seed(0)
    assert M.randint(0, 10, (5,)).tolist() == [4, 9, 3, 0, 3]
    assert M.initial_seed() == 0


def test_seeding_repeats_and_ops_go_through_the_dispatcher():
    M.manual_seed(123)
    a = M.rand(2, 3)
    M.manual_seed(123)
    b = ops.aten.rand.default([2, 3])
    assert a.tolist() == b.tolist() and list(a.shape) == [2, 3]
    assert str(ops.aten.randint.low._schema).startswith("aten::randint.low(SymInt low, SymInt high, SymInt[] size")
    assert M.randint(5, (3,)).dtype == M.int64
    assert M.rand_like(a).shape == a.shape and M.randn_like(a, dtype=M.float64).dtype == M.float64
    m = M.rand(2, device="meta")
    assert m.is_meta


def test_in_place_fills_and_errors():
    t = M.zeros(1000)
    t.uniform_(2.0, 3.0)
    v = t.tolist()
    assert min(v) >= 2.0 and max(v) < 3.0
    t.normal_(5.0, 0.1)
    assert abs(sum(t.tolist()) / 1000 - 5.0) < 0.05
    with pytest.raises(RuntimeError, match="normal expects std >= 0.0"):
        t.normal_(0.0, -1.0)
    with pytest.raises(RuntimeError, match="random_ expects 'from' to be less than 'to'"):
        M.randint(3, 3, (2,))
    x = M.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad"):
        x.uniform_()
    with pytest.raises(NotImplementedError, match="default CPU generator"):
        M.rand(2, generator=object())
