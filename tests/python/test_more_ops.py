"""The second batch of aten operators through the Python surface: values (hand-computed),
dtypes, torch's errors, gradients (gradcheck in float64, torch's node names) and Meta shapes."""

from __future__ import annotations

import math
from typing import Any

import pytest

import opdispatch as o
from opdispatch.autograd import gradcheck


def f64(data: Any, requires_grad: bool = True) -> Any:
    return o.tensor(data, dtype=o.float64, requires_grad=requires_grad)


def close(t: Any, expected: Any, tol: float = 1e-6) -> bool:
    a = t.tolist()

    def flat(x: Any) -> list[float]:
        return [y for e in x for y in flat(e)] if isinstance(x, list) else [float(x)]

    fa, fe = flat(a), flat(expected)
    return len(fa) == len(fe) and all(
        (math.isnan(p) and math.isnan(q)) or abs(p - q) <= tol * max(1.0, abs(q)) for p, q in zip(fa, fe, strict=True)
    )


# ---- factories ----


def test_like_factories_take_dtype_and_device():
    x = o.ones(2, 3)
    z = o.zeros_like(x)
    assert z.tolist() == [[0.0] * 3] * 2 and z.dtype == o.float32
    assert o.ones_like(x, dtype=o.int64).tolist() == [[1] * 3] * 2
    assert o.full_like(x, 7).tolist() == [[7.0] * 3] * 2
    assert o.empty_like(x, device="meta").is_meta
    assert o.zeros_like(x, requires_grad=True).requires_grad


def test_new_factories_follow_self():
    x = o.ones(2, dtype=o.float64)
    assert x.new_zeros(3).dtype == o.float64 and x.new_zeros(3).tolist() == [0.0] * 3
    assert x.new_ones((2, 2)).shape == (2, 2)
    assert x.new_empty(4).shape == (4,)
    assert x.new_full((2,), 3).tolist() == [3.0, 3.0]
    assert x.new_zeros(2, dtype=o.int32).dtype == o.int32
    t = x.new_tensor([1, 2])
    assert t.dtype == o.float64 and t.tolist() == [1.0, 2.0]
    assert o.ones(2, device="meta").new_zeros(5).is_meta


def test_eye_and_linspace():
    assert o.eye(2).tolist() == [[1.0, 0.0], [0.0, 1.0]]
    assert o.eye(2, 3).tolist() == [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    assert o.linspace(0, 1, 5).tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert o.linspace(0, 1, 5).dtype == o.float32
    assert o.eye(3, device="meta").shape == (3, 3)
    with pytest.raises(RuntimeError, match="number of steps must be non-negative"):
        o.linspace(0, 1, -1)


# ---- reductions ----


def test_amax_amin_prod_all_any():
    x = o.tensor([[1.0, 5.0, 3.0], [4.0, 2.0, 6.0]])
    assert x.amax().item() == 6.0 and x.amax(1).tolist() == [5.0, 6.0]
    assert x.amin(0).tolist() == [1.0, 2.0, 3.0]
    assert x.amax(dim=(0, 1), keepdim=True).shape == (1, 1)
    assert x.prod().item() == 720.0 and x.prod(1).tolist() == [15.0, 48.0]
    assert o.tensor([1, 2, 3]).prod().dtype == o.int64
    b = o.tensor([[True, False], [True, True]])
    assert not b.all().item() and b.any().item()
    assert b.all(1).tolist() == [False, True] and b.any(0).tolist() == [True, True]
    assert o.tensor([0.0, 1.0]).all().dtype == o.bool
    with pytest.raises(IndexError, match=r"amax\(\): Expected reduction dim 0 to have non-zero size"):
        o.ones(0, 3).amax(0)


def test_cumsum_cumprod():
    x = o.tensor([[1, 2, 3], [4, 5, 6]])
    assert x.cumsum(1).tolist() == [[1, 3, 6], [4, 9, 15]]
    assert x.cumsum(0).tolist() == [[1, 2, 3], [5, 7, 9]]
    assert x.cumprod(1).tolist() == [[1, 2, 6], [4, 20, 120]]
    assert o.tensor([1, 2], dtype=o.int32).cumsum(0).dtype == o.int64
    assert o.tensor([1.0, 2.0]).cumsum(0, dtype=o.float64).dtype == o.float64


def test_var_std_correction_and_unbiased():
    x = o.tensor([1.0, 2.0, 3.0, 4.0])
    assert close(x.var(), [5.0 / 3.0])
    assert close(x.var(unbiased=False), [1.25])
    assert close(x.var(correction=0), [1.25])
    assert close(x.std(), [math.sqrt(5.0 / 3.0)])
    m = o.tensor([[1.0, 3.0], [2.0, 6.0]])
    assert close(m.var(1), [2.0, 8.0]) and close(m.var(0, keepdim=True), [[0.5, 4.5]])
    with pytest.raises(NotImplementedError, match="std and var only support floating point and complex dtypes"):
        o.tensor([1, 2]).var()


def test_logsumexp_softmax_log_softmax():
    x = o.tensor([[0.0, math.log(3.0)], [1.0, 1.0]])
    assert close(x.logsumexp(1), [math.log(4.0), 1.0 + math.log(2.0)])
    assert close(x.softmax(1), [[0.25, 0.75], [0.5, 0.5]])
    assert close(o.log_softmax(x, 1), [[math.log(0.25), math.log(0.75)], [math.log(0.5)] * 2])
    assert o.softmax(o.tensor([1.0, 2.0]), 0, dtype=o.float64).dtype == o.float64
    assert o.tensor([1e4, 0.0]).softmax(0).tolist() == [1.0, 0.0]
    with pytest.raises(NotImplementedError, match="not implemented for 'Long'"):
        o.tensor([1, 2]).softmax(0)


# ---- unary ----


def test_rounding_and_sign():
    x = o.tensor([-1.5, -0.5, 0.5, 1.5, 2.7])
    assert x.floor().tolist() == [-2.0, -1.0, 0.0, 1.0, 2.0]
    assert x.ceil().tolist() == [-1.0, -0.0, 1.0, 2.0, 3.0]
    assert x.round().tolist() == [-2.0, -0.0, 0.0, 2.0, 3.0]  # half to even
    assert x.trunc().tolist() == [-1.0, -0.0, 0.0, 1.0, 2.0]
    assert close(x.frac(), [-0.5, -0.5, 0.5, 0.5, 0.7])
    assert x.sign().tolist() == [-1.0, -1.0, 1.0, 1.0, 1.0]
    i = o.tensor([-3, 0, 4])
    assert i.floor().dtype == o.int64 and i.floor().tolist() == [-3, 0, 4]
    assert i.sign().tolist() == [-1, 0, 1]
    with pytest.raises(NotImplementedError, match="\"frac_cpu\" not implemented for 'Long'"):
        i.frac()
    y = o.tensor([1.4, 2.6])
    assert y.floor_() is y and y.tolist() == [1.0, 2.0]


def test_transcendental_values_and_promotion():
    x = o.tensor([0.25, 0.5], dtype=o.float64)
    for name, fn in [
        ("rsqrt", lambda v: 1 / math.sqrt(v)), ("log1p", math.log1p), ("expm1", math.expm1),
        ("log2", math.log2), ("log10", math.log10), ("exp2", lambda v: 2.0**v), ("tan", math.tan),
        ("asin", math.asin), ("acos", math.acos), ("atan", math.atan), ("sinh", math.sinh),
        ("cosh", math.cosh), ("erf", math.erf),
    ]:
        assert close(getattr(x, name)(), [fn(0.25), fn(0.5)], 1e-12), name
        assert close(getattr(o, name)(x), [fn(0.25), fn(0.5)], 1e-12), name
    assert o.tensor([1, 4]).rsqrt().dtype == o.float32
    assert close(o.tensor([1.0, 4.0]).rsqrt(), [1.0, 0.5])
    assert o.square(o.tensor([3])).tolist() == [9]
    z = o.tensor([0.5, 0.25], dtype=o.float64)
    assert z.tan_() is z and close(z, [math.tan(0.5), math.tan(0.25)], 1e-12)


def test_predicates_and_nan_to_num():
    x = o.tensor([1.0, float("nan"), float("inf"), -float("inf")])
    assert x.isnan().tolist() == [False, True, False, False]
    assert x.isinf().tolist() == [False, False, True, True]
    assert x.isfinite().tolist() == [True, False, False, False]
    assert o.tensor([0, 2]).logical_not().tolist() == [True, False]
    r = x.nan_to_num(posinf=9.0)
    assert r.tolist()[:3] == [1.0, 0.0, 9.0] and r.tolist()[3] < -3e38
    assert o.tensor([1, 2]).isnan().tolist() == [False, False]


# ---- binary ----


def test_clamp_scalar_and_tensor_bounds():
    x = o.tensor([-2.0, 0.5, 3.0])
    assert x.clamp(0, 1).tolist() == [0.0, 0.5, 1.0]
    assert x.clamp(min=0).tolist() == [0.0, 0.5, 3.0]
    assert x.clamp(max=0).tolist() == [-2.0, 0.0, 0.0]
    assert x.clamp(o.tensor([0.0, 1.0, 2.0])).tolist() == [0.0, 1.0, 3.0]
    assert o.clip(x, -1, 1).tolist() == [-1.0, 0.5, 1.0]
    assert x.clamp_min(1).tolist() == [1.0, 1.0, 3.0] and x.clamp_max(1).tolist() == [-2.0, 0.5, 1.0]
    assert o.tensor([1, 5]).clamp(0, 2.5).dtype == o.float32  # promotes like torch
    assert o.tensor([1, 5]).clamp(0, 2).dtype == o.int64
    with pytest.raises(RuntimeError, match="At least one of 'min' or 'max' must not be None"):
        x.clamp()
    y = o.tensor([5.0, -5.0])
    assert y.clamp_(-1, 1) is y and y.tolist() == [1.0, -1.0]
    assert math.isnan(o.tensor([float("nan")]).clamp(0, 1).item())


def test_remainder_fmod_floor_divide_atan2():
    a, b = o.tensor([5.0, -5.0, 5.0, -5.0]), o.tensor([3.0, 3.0, -3.0, -3.0])
    assert a.remainder(b).tolist() == [2.0, 1.0, -1.0, -2.0]
    assert a.fmod(b).tolist() == [2.0, -2.0, 2.0, -2.0]
    assert o.floor_divide(a, b).tolist() == [1.0, -2.0, -2.0, 1.0]
    assert o.tensor([5, -5]).remainder(3).tolist() == [2, 1]
    assert o.tensor([5, -5]).fmod(3).tolist() == [2, -2]
    assert o.tensor([7, -7]).floor_divide(2).tolist() == [3, -4]
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        o.tensor([1]).remainder(0)
    assert close(o.atan2(o.tensor([1.0]), o.tensor([-1.0])), [3 * math.pi / 4])
    assert o.atan2(o.tensor([1]), o.tensor([1])).dtype == o.float32


def test_logical_lerp_masked_fill():
    p, q = o.tensor([True, True, False]), o.tensor([1, 0, 0])
    assert p.logical_and(q).tolist() == [True, False, False]
    assert p.logical_or(q).tolist() == [True, True, False]
    assert p.logical_xor(q).tolist() == [False, True, False]
    a, e = o.tensor([0.0, 10.0]), o.tensor([10.0, 20.0])
    assert a.lerp(e, 0.25).tolist() == [2.5, 12.5]
    assert a.lerp(e, o.tensor([0.5, 1.0])).tolist() == [5.0, 20.0]
    m = o.tensor([True, False])
    assert a.masked_fill(m, -1).tolist() == [-1.0, 10.0]
    assert a.masked_fill(m, o.tensor(7.0)).tolist() == [7.0, 10.0]
    assert o.tensor([1, 2]).masked_fill(m, 5).dtype == o.int64
    with pytest.raises(RuntimeError, match="masked_fill_ only supports boolean masks"):
        a.masked_fill(o.tensor([1, 0]), 0)


# ---- indexing and shape ----


def test_index_select_gather_scatter():
    x = o.tensor([[1, 2, 3], [4, 5, 6]])
    assert x.index_select(1, o.tensor([2, 0])).tolist() == [[3, 1], [6, 4]]
    assert x.gather(1, o.tensor([[0, 0], [2, 1]])).tolist() == [[1, 1], [6, 5]]
    z = o.zeros(2, 3, dtype=o.int64)
    assert z.scatter(1, o.tensor([[2], [0]]), o.tensor([[9], [8]])).tolist() == [[0, 0, 9], [8, 0, 0]]
    assert z.scatter(0, o.tensor([[1, 0, 1]]), 7).tolist() == [[0, 7, 0], [7, 0, 7]]
    with pytest.raises(IndexError, match="index out of range in self"):
        x.index_select(0, o.tensor([5]))
    with pytest.raises(RuntimeError, match="index 3 is out of bounds for dimension 1 with size 3"):
        x.gather(1, o.tensor([[3]]))


def test_flip_roll_tril_triu_diag_outer():
    x = o.tensor([[1, 2, 3], [4, 5, 6]])
    assert x.flip(0).tolist() == [[4, 5, 6], [1, 2, 3]]
    assert x.flip(0, 1).tolist() == [[6, 5, 4], [3, 2, 1]]
    assert x.roll(1, 1).tolist() == [[3, 1, 2], [6, 4, 5]]
    assert x.roll(1).tolist() == [[6, 1, 2], [3, 4, 5]]
    assert x.tril().tolist() == [[1, 0, 0], [4, 5, 0]]
    assert x.triu(1).tolist() == [[0, 2, 3], [0, 0, 6]]
    assert o.tensor([1, 2]).diag().tolist() == [[1, 0], [0, 2]]
    assert x.diag().tolist() == [1, 5] and x.diag(1).tolist() == [2, 6]
    assert o.outer(o.tensor([1, 2]), o.tensor([3, 4])).tolist() == [[3, 4], [6, 8]]
    with pytest.raises(RuntimeError, match="tril: input tensor must have at least 2 dimensions"):
        o.tensor([1]).tril()


def test_chunk_split_unbind_are_views():
    x = o.arange(6).reshape(2, 3)
    parts = x.split(2, 1)
    assert [p.tolist() for p in parts] == [[[0, 1], [3, 4]], [[2], [5]]]
    assert [p.shape for p in x.split([1, 2], 1)] == [(2, 1), (2, 2)]
    assert [p.tolist() for p in x.unbind()] == [[0, 1, 2], [3, 4, 5]]
    assert [p.shape for p in o.chunk(x, 3, 1)] == [(2, 1)] * 3
    assert parts[0].untyped_storage().data_ptr() == x.untyped_storage().data_ptr()


def test_addmm_topk_sort():
    m = o.addmm(o.ones(2, 2), o.eye(2), o.tensor([[1.0, 2.0], [3.0, 4.0]]), beta=2, alpha=3)
    assert m.tolist() == [[5.0, 8.0], [11.0, 14.0]]
    v, i = o.tensor([3.0, 1.0, 4.0, 1.0, 5.0]).topk(2)
    assert v.tolist() == [5.0, 4.0] and i.tolist() == [4, 2]
    r = o.tensor([3.0, 1.0]).sort()
    assert r.values.tolist() == [1.0, 3.0] and r.indices.tolist() == [1, 0] and type(r).__name__ == "sort"
    v, i = o.tensor([[3, 1, 2]]).sort()
    assert v.tolist() == [[1, 2, 3]] and i.tolist() == [[1, 2, 0]]
    v, i = o.sort(o.tensor([2.0, float("nan"), 1.0]), descending=True)
    assert math.isnan(v.tolist()[0]) and i.tolist() == [1, 0, 2]


# ---- autograd ----


UNARY_GRADS = [
    ("rsqrt", "RsqrtBackward0"), ("log1p", "Log1PBackward0"), ("expm1", "Expm1Backward0"),
    ("log2", "Log2Backward0"), ("log10", "Log10Backward0"), ("exp2", "Exp2Backward0"),
    ("tan", "TanBackward0"), ("asin", "AsinBackward0"), ("acos", "AcosBackward0"),
    ("atan", "AtanBackward0"), ("sinh", "SinhBackward0"), ("cosh", "CoshBackward0"),
    ("erf", "ErfBackward0"), ("frac", "FracBackward0"), ("floor", "FloorBackward0"),
    ("sign", "SignBackward0"), ("nan_to_num", "NanToNumBackward0"),
]


@pytest.mark.parametrize(("name", "node"), UNARY_GRADS)
def test_unary_gradients(name: str, node: str):
    x = f64([0.2, 0.45, 0.7])
    y = getattr(x, name)()
    assert type(y.grad_fn).__name__ == node
    assert gradcheck(lambda t: getattr(t, name)(), (x,))


CASES = [
    ("amax", lambda t: t.amax(1), "AmaxBackward0"),
    ("amin", lambda t: t.amin(), "AminBackward0"),
    ("prod", lambda t: t.prod(), "ProdBackward0"),
    ("prod_dim", lambda t: t.prod(0), "ProdBackward1"),
    ("cumsum", lambda t: t.cumsum(1), "CumsumBackward0"),
    ("cumprod", lambda t: t.cumprod(1), "CumprodBackward0"),
    ("var", lambda t: t.var(1), "VarBackward0"),
    ("std", lambda t: t.std(), "StdBackward0"),
    ("logsumexp", lambda t: t.logsumexp(0), "LogsumexpBackward0"),
    ("softmax", lambda t: t.softmax(1), "SoftmaxBackward0"),
    ("log_softmax", lambda t: t.log_softmax(0), "LogSoftmaxBackward0"),
    ("clamp", lambda t: t.clamp(0.3, 0.8), "ClampBackward1"),
    ("clamp_min", lambda t: t.clamp_min(0.4), "ClampMinBackward0"),
    ("clamp_max", lambda t: t.clamp_max(0.4), "ClampMaxBackward0"),
    ("remainder", lambda t: t.remainder(0.31), "RemainderBackward0"),
    ("fmod", lambda t: t.fmod(0.31), "FmodBackward0"),
    ("lerp", lambda t: t.lerp(t * 2, 0.3), "LerpBackward0"),
    ("masked_fill", lambda t: t.masked_fill(t > 0.5, 0.0), "MaskedFillBackward0"),
    ("flip", lambda t: t.flip(0), "FlipBackward0"),
    ("roll", lambda t: t.roll(1, 1), "RollBackward0"),
    ("tril", lambda t: t.tril(), "TrilBackward0"),
    ("triu", lambda t: t.triu(), "TriuBackward0"),
    ("topk", lambda t: t.topk(2)[0], "TopkBackward0"),
    ("sort", lambda t: t.sort()[0], "SortBackward0"),
]


@pytest.mark.parametrize(("name", "fn", "node"), CASES, ids=[c[0] for c in CASES])
def test_gradients(name: str, fn: Any, node: str):
    x = f64([[0.2, 0.9, 0.45], [0.7, 0.35, 0.6]])
    assert type(fn(x).grad_fn).__name__ == node
    assert gradcheck(fn, (x,))


def test_binary_gradients():
    a, b = f64([[0.3, 0.8], [0.5, 0.9]]), f64([[0.6, 0.4], [0.2, 0.7]])
    assert type(o.atan2(a, b).grad_fn).__name__ == "Atan2Backward0"
    assert gradcheck(o.atan2, (a, b))
    assert type(a.clamp(b).grad_fn).__name__ == "ClampBackward0"
    assert gradcheck(lambda p, q: p.clamp(min=q), (a, b))
    assert gradcheck(lambda p, q: p.lerp(q, q), (a, b))
    assert gradcheck(lambda p, q: p.remainder(q + 1.0), (a, b))
    assert gradcheck(lambda p, q: o.addmm(p, p, q, beta=0.5, alpha=2), (a, b))
    assert type(o.addmm(a, a, b).grad_fn).__name__ == "AddmmBackward0"
    idx = o.tensor([[1, 0], [0, 1]])
    assert gradcheck(lambda p, q: p.scatter(1, idx, q), (a, b))
    assert type(a.scatter(1, idx, b).grad_fn).__name__ == "ScatterBackward0"


def test_prod_gradient_with_zeros():
    x = f64([[0.0, 2.0, 3.0], [0.0, 0.0, 4.0]])
    x.prod(1).sum().backward()
    assert x.grad.tolist() == [[6.0, 0.0, 0.0], [0.0, 0.0, 0.0]]


def test_not_implemented_derivatives_raise_at_backward():
    x = f64([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    y = x.diag()
    with pytest.raises(RuntimeError, match="the derivative for 'diag' is not implemented"):
        y.sum().backward()


def test_indexing_gradients():
    x = f64([[0.2, 0.9, 0.45], [0.7, 0.35, 0.6]])
    idx = o.tensor([2, 0, 2])
    assert type(x.index_select(1, idx).grad_fn).__name__ == "IndexSelectBackward0"
    assert gradcheck(lambda t: t.index_select(1, idx), (x,))
    g = o.tensor([[0, 0], [2, 1]])
    assert type(x.gather(1, g).grad_fn).__name__ == "GatherBackward0"
    assert gradcheck(lambda t: t.gather(1, g), (x,))
    s = f64([[1.0, 2.0], [3.0, 4.0]])
    assert type(x.scatter_add(1, g, s).grad_fn).__name__ == "ScatterAddBackward0"
    assert gradcheck(lambda t, u: t.scatter_add(1, g, u), (x, s))
    src = f64([[1.0, 2.0, 3.0]])
    assert type(x.index_add(0, o.tensor([1]), src).grad_fn).__name__ == "IndexAddBackward0"
    assert gradcheck(lambda t, u: t.index_add(0, o.tensor([1]), u, alpha=2), (x, src))


def test_scatter_add_and_index_add_values():
    z = o.zeros(3, dtype=o.int64)
    assert z.scatter_add(0, o.tensor([0, 2, 0]), o.tensor([1, 2, 3])).tolist() == [4, 0, 2]
    assert z.index_add(0, o.tensor([1, 1]), o.tensor([5, 6]), alpha=2).tolist() == [0, 22, 0]
    with pytest.raises(IndexError, match="index out of range in self"):
        z.index_add(0, o.tensor([5]), o.tensor([1]))
    with pytest.raises(RuntimeError, match=r"Number of indices \(1\) should be equal to source.size\(dim\): \(2\)"):
        o.zeros(3).index_add(0, o.tensor([0]), o.ones(2))


def test_inplace_gradients():
    x = f64([0.2, 0.6])
    y = x * 1.0
    y.clamp_(0.3, 0.5)
    assert type(y.grad_fn).__name__ == "ClampBackward1"
    y.sum().backward()
    assert x.grad.tolist() == [0.0, 0.0]


# ---- meta ----


def test_meta_shapes_and_dtypes():
    m = o.empty(2, 3, device="meta")
    assert m.amax(1).shape == (2,) and m.prod().shape == ()
    assert m.var(0, keepdim=True).shape == (1, 3)
    assert m.softmax(1).shape == (2, 3) and m.cumsum(0).shape == (2, 3)
    assert m.floor().is_meta and m.isnan().dtype == o.bool
    assert m.clamp(0, 1).shape == (2, 3)
    assert m.topk(2)[1].dtype == o.int64 and m.topk(2)[0].shape == (2, 2)
    assert m.index_select(1, o.empty(4, dtype=o.int64, device="meta")).shape == (2, 4)
    assert m.tril().shape == (2, 3) and m.flip(0).shape == (2, 3)
    assert o.empty(3, device="meta").diag().shape == (3, 3)
    assert [p.shape for p in m.split(2, 1)] == [(2, 2), (2, 1)]
    assert o.empty(3, dtype=o.int64, device="meta").rsqrt().dtype == o.float32


def test_torch_error_classes_and_messages():
    with pytest.raises(NotImplementedError, match="\"floor_vml_cpu\" not implemented for 'Bool'"):
        o.tensor([True]).floor()
    with pytest.raises(NotImplementedError, match="clamp is not supported for complex types"):
        o.tensor([1.0], dtype=o.complex64).clamp(0, 1)
    with pytest.raises(NotImplementedError, match="Unlike NumPy, torch.sign is not intended"):
        o.tensor([1.0], dtype=o.complex64).sign()
    with pytest.raises(IndexError, match="Dimension specified as 0 but tensor has no dimensions"):
        o.tensor(1.0).unbind()
    with pytest.raises(RuntimeError, match=r"scatter\(\): Expected self.dtype to be equal to src.dtype"):
        o.zeros(2, 2).scatter(0, o.tensor([[0]]), o.tensor([[1]]))
    assert o.tensor([[1, 2, 3]]).gather(1, o.tensor([[2]], dtype=o.int32)).tolist() == [[3]]
    with pytest.raises(RuntimeError, match="split_with_sizes expects split_sizes to sum exactly to 3"):
        o.zeros(3).split([1, 1])
    assert o.tensor([1.0, 2.0], dtype=o.complex64).exp2().dtype == o.complex64


def test_composite_explicit_overloads_as_torch():
    # remainder.Scalar & co. and masked_fill are CompositeExplicitAutograd in torch: the Tensor
    # overload with a wrapped number / clone + masked_fill_, for every backend.
    names = ["aten::remainder.Scalar", "aten::fmod.Scalar", "aten::floor_divide.Scalar", "aten::masked_fill.Scalar"]
    for name in names:
        assert o._C._dispatch_has_kernel_for_dispatch_key(name, "CompositeExplicitAutograd"), name
    m = o.tensor([[True, False, True], [False, False, False]])
    assert o.zeros(3).masked_fill(m, 1.0).tolist() == [[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]]
    assert o.empty(3, device="meta").remainder(2).is_meta
    y = o.tensor([5.0, 7.0])
    assert y.remainder_(3) is y and y.tolist() == [2.0, 1.0]
