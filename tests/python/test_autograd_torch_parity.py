"""Autograd against PyTorch 2.15 (issue 10), without importing torch.

The expected node names and gradients follow PyTorch's sources (``tools/autograd/derivatives.yaml``,
``torch/csrc/autograd/variable.cpp`` and ``functions/tensor.cpp`` for views and ``CopySlices``,
``aten/src/ATen/native/LinearAlgebra.cpp``'s ``_matmul_impl``) and were recorded from torch 2.15.0
running the same expressions. Inputs made with ``rand`` use the same generator as torch, so the
rounding of the formulas is compared bit for bit.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import pytest

import opdispatch as M


def name(t: Any) -> Any:
    return None if t.grad_fn is None else type(t.grad_fn).__name__


def chain(fn: Any, depth: int = 4) -> Any:
    """``[name, [next chains]]`` down to ``depth`` (``None`` for an edge to nothing)."""
    if fn is None or depth == 0:
        return None
    return [type(fn).__name__, [chain(f, depth - 1) for f, _ in fn.next_functions]]


def R(*s: int) -> Any:
    n = math.prod(s)
    return M.arange(1.0, 1.0 + n).reshape(list(s))


ACC = ["AccumulateGrad", []]


# ---- max.dim / min.dim: the gradient goes to the returned index only ----


def test_max_dim_gradient_goes_to_the_returned_index_not_to_every_tie():
    t = M.tensor([[1.0, 3.0, 3.0], [2.0, 2.0, 1.0]], requires_grad=True)
    v, i = t.max(1)
    assert name(v) == "MaxBackward0" and i.tolist() == [1, 0]
    (v * M.tensor([1.0, 10.0])).sum().backward()
    assert t.grad.tolist() == [[0.0, 1.0, 0.0], [10.0, 0.0, 0.0]]
    t.grad = None
    v, i = t.min(0, keepdim=True)
    assert name(v) == "MinBackward0" and i.tolist() == [[0, 1, 1]]
    v.sum().backward()
    assert t.grad.tolist() == [[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]]


def test_max_of_all_elements_shares_among_ties_and_nans():
    t = M.tensor([[1.0, 3.0, 3.0], [2.0, 2.0, 1.0]], requires_grad=True)
    t.max().backward()
    assert t.grad.tolist() == [[0.0, 0.5, 0.5], [0.0, 0.0, 0.0]]
    tn = M.tensor([1.0, float("nan"), 3.0, float("nan")], requires_grad=True)
    tn.max().backward()
    assert tn.grad.tolist() == [0.0, 0.5, 0.0, 0.5]


def test_maximum_minimum_split_ties_and_pass_nans_to_both_sides():
    a = M.tensor([1.0, 2.0, float("nan"), 4.0], requires_grad=True)
    b = M.tensor([1.0, 3.0, 1.0, float("nan")], requires_grad=True)
    M.maximum(a, b).sum().backward()
    assert (a.grad.tolist(), b.grad.tolist()) == ([0.5, 0.0, 1.0, 1.0], [0.5, 1.0, 1.0, 1.0])
    a.grad = None
    b.grad = None
    M.minimum(a, b).sum().backward()
    assert (a.grad.tolist(), b.grad.tolist()) == ([0.5, 1.0, 1.0, 1.0], [0.5, 0.0, 1.0, 1.0])


# ---- matmul: torch's _matmul_impl decomposition ----

MM_CHAINS = {
    "1@1": ["DotBackward0", [ACC, ACC]],
    "2@1": ["MvBackward0", [ACC, ACC]],
    "2@2": ["MmBackward0", [ACC, ACC]],
    # torch squeezes in place (SqueezeBackward4); opdispatch's geometry is immutable, so the
    # out-of-place squeeze.dim records SqueezeBackward1.
    "1@2": ["SqueezeBackward1", [["MmBackward0", [["UnsqueezeBackward0", [ACC]], ACC]]]],
    "3@2": ["UnsafeViewBackward0", [["MmBackward0", [["ViewBackward0", [ACC]], ACC]]]],
    "3@1": ["UnsafeViewBackward0", [["MvBackward0", [["ViewBackward0", [ACC]], ACC]]]],
    "3@3": [
        "UnsafeViewBackward0",
        [["BmmBackward0", [["ViewBackward0", [["ExpandBackward0", [ACC]]]], ["ViewBackward0", [["ExpandBackward0", [ACC]]]]]]],
    ],
}

MM_SHAPES = {
    "1@1": ((3,), (3,)), "2@1": ((2, 3), (3,)), "1@2": ((3,), (3, 4)), "2@2": ((2, 3), (3, 4)),
    "3@2": ((2, 2, 3), (3, 4)), "3@1": ((2, 2, 3), (3,)), "2@3": ((4, 3), (2, 3, 5)), "1@3": ((3,), (2, 3, 4)),
    "3@3": ((2, 2, 3), (2, 3, 4)), "3@3b": ((1, 2, 3), (2, 3, 4)), "3@3b2": ((2, 2, 3), (1, 3, 4)),
    "4@3": ((2, 1, 2, 3), (3, 3, 4)), "4@1": ((2, 2, 2, 3), (3,)), "1@4": ((3,), (2, 2, 3, 4)),
}


@pytest.mark.parametrize("case", sorted(MM_CHAINS))
def test_matmul_records_torchs_nodes(case: str) -> None:
    sa, sb = MM_SHAPES[case]
    a = R(*sa).requires_grad_()
    b = R(*sb).requires_grad_()
    assert chain((a @ b).grad_fn) == MM_CHAINS[case]


def _np_grads(sa: Any, sb: Any, rg: str) -> Any:
    """The gradients of ``(a @ b).sum()`` by numpy's matmul (broadcasting reduced by hand)."""
    np = pytest.importorskip("numpy")
    a = np.arange(1.0, 1.0 + math.prod(sa), dtype=np.float64).reshape(sa)
    b = np.arange(1.0, 1.0 + math.prod(sb), dtype=np.float64).reshape(sb)
    a2 = a if a.ndim > 1 else a[None, :]
    b2 = b if b.ndim > 1 else b[:, None]
    g = np.ones(np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2]) + (a2.shape[-2], b2.shape[-1]))
    ga = g @ np.swapaxes(b2, -1, -2)
    gb = np.swapaxes(a2, -1, -2) @ g

    def reduce(gr: Any, shape: Any) -> Any:
        while gr.ndim > len(shape):
            gr = gr.sum(0)
        for i, s in enumerate(shape):
            if s == 1 and gr.shape[i] != 1:
                gr = gr.sum(i, keepdims=True)
        return gr

    ga = reduce(ga, a2.shape).reshape(sa)
    gb = reduce(gb, b2.shape).reshape(sb)
    return (ga.ravel().tolist() if "a" in rg else None, gb.ravel().tolist() if "b" in rg else None)


@pytest.mark.parametrize("case", sorted(MM_SHAPES))
@pytest.mark.parametrize("rg", ["ab", "a", "b"])
def test_matmul_values_shapes_and_gradients(case: str, rg: str) -> None:
    np = pytest.importorskip("numpy")
    sa, sb = MM_SHAPES[case]
    a = R(*sa).requires_grad_("a" in rg)
    b = R(*sb).requires_grad_("b" in rg)
    r = a @ b
    want = np.arange(1.0, 1.0 + math.prod(sa)).reshape(sa) @ np.arange(1.0, 1.0 + math.prod(sb)).reshape(sb)
    assert list(r.shape) == list(want.shape)
    assert np.allclose(np.array(r.tolist()), want)
    assert r.is_contiguous()
    # torch squeezes 1-D @ 2-D's product in place; here the squeeze is a view of it.
    assert r._is_view() == (case == "1@2")
    r.sum().backward()
    ga, gb = _np_grads(sa, sb, rg)
    got_a = None if a.grad is None else a.grad.reshape(-1).tolist()
    got_b = None if b.grad is None else b.grad.reshape(-1).tolist()
    assert got_a == ga and got_b == gb


def test_matmul_folds_a_batch_when_the_small_operand_needs_grad_and_copies_for_two_d_at_three_d():
    # 2-D @ 3-D with the 2-D operand requiring grad: folded through the transposes, then a copy.
    a = R(4, 3).requires_grad_()
    b = R(2, 3, 5)
    assert chain((a @ b).grad_fn, 2) == ["CloneBackward0", [["TransposeBackward0", [None]]]]
    # A broadcast batch of one that requires grad is squeezed into the folding path.
    a = R(1, 2, 3).requires_grad_()
    b = R(2, 3, 4).requires_grad_()
    assert name(a @ b) == "CloneBackward0"
    # Without grad on the small operand a contiguous batch still folds, a permuted one does not.
    a = R(2, 2, 3).requires_grad_()
    assert chain((a @ R(3, 4)).grad_fn, 3) == ["UnsafeViewBackward0", [["MmBackward0", [["ViewBackward0", [None]], None]]]]
    p = R(2, 3, 2).permute(0, 2, 1).detach().requires_grad_()
    assert chain((p @ R(3, 4)).grad_fn, 3) == ["UnsafeViewBackward0", [["BmmBackward0", [["ViewBackward0", [None]], None]]]]


def test_matmul_errors_as_torch():
    with pytest.raises(RuntimeError, match=r"both arguments to matmul need to be at least 1D, but they are 0D and 2D"):
        M.tensor(1.0) @ R(2, 3)


# ---- reshape / flatten / view_as / T / mT ----


def test_reshape_and_flatten_nodes():
    x = R(2, 3).requires_grad_()
    assert name(x.reshape(6)) == "ViewBackward0"
    assert chain(x.t().reshape(6).grad_fn, 3) == ["UnsafeViewBackward0", [["CloneBackward0", [["TBackward0", [None]]]]]]
    assert name(x.flatten()) == "ViewBackward0"
    assert x.flatten(1, 1) is x
    assert name(M.tensor(2.0, requires_grad=True).flatten()) == "ViewBackward0"
    assert name(x.t().flatten()) == "UnsafeViewBackward0"
    assert name(x.view_as(M.zeros(3, 2))) == "ViewBackward0"
    assert x.view_as(M.zeros(3, 2)).shape == (3, 2)


def test_T_and_mT():
    x = R(2, 3).requires_grad_()
    assert name(x.T) == "PermuteBackward0" and x.T.shape == (3, 2)
    assert name(x.mT) == "TransposeBackward0" and x.mT.shape == (3, 2)
    y = R(2, 3, 4)
    assert y.mT.shape == (2, 4, 3)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        assert y.T.shape == (4, 3, 2)
    with pytest.raises(RuntimeError, match=r"tensor.mT is only supported on matrices or batches of matrices. Got 1-D tensor."):
        R(3).mT


def test_rpow_is_pow_scalar():
    x = R(2, 3).requires_grad_()
    y = 2**x
    assert name(y) == "PowBackward2"
    assert y.tolist() == [[2.0, 4.0, 8.0], [16.0, 32.0, 64.0]]
    y.sum().backward()
    want = [[2.0**v * math.log(2.0) for v in row] for row in [[1, 2, 3], [4, 5, 6]]]
    assert all(math.isclose(g, w, rel_tol=1e-6) for gr, wr in zip(x.grad.tolist(), want) for g, w in zip(gr, wr))
    assert (2 ** M.tensor([1, 2])).dtype == M.int64
    assert (2.5 ** M.tensor([1, 2])).dtype == M.float32


def test_data_is_a_detached_alias():
    x = R(2, 3).requires_grad_()
    d = x.data
    assert not d.requires_grad and not d._is_view() and d.grad_fn is None and d.data_ptr() == x.data_ptr()


# ---- views whose base changes in place ----


def test_view_history_is_regenerated_after_the_base_is_written():
    x = M.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    a = x * 1
    v = a[1:3]
    assert name(v) == "SliceBackward0"
    a.mul_(2)
    assert chain(v.grad_fn, 3) == ["AsStridedBackward0", [["MulBackward0", [["MulBackward0", [None, None]], None]]]]
    assert v.grad_fn.next_functions[0][0] is a.grad_fn
    v.sum().backward()
    assert x.grad.tolist() == [0.0, 2.0, 2.0, 0.0]


def test_in_place_write_to_one_view_rebases_the_base_and_the_sibling_views():
    x = M.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    a = x * 1
    v1 = a[0]
    v2 = a[2:]
    v2.mul_(3)
    assert name(a) == "CopySlices" and name(v1) == "AsStridedBackward0" and name(v2) == "AsStridedBackward0"
    assert chain(v1.grad_fn, 3) == ["AsStridedBackward0", [["CopySlices", [["MulBackward0", [None, None]], None]]]]
    (v1 * 10 + v2.sum() + a.sum()).backward()
    assert x.grad.tolist() == [11.0, 1.0, 6.0, 6.0]


def test_copy_slices_with_a_base_of_any_strides():
    x = M.arange(1.0, 7.0).requires_grad_()
    # A base laid out column-major (not a view: .data drops the view relation).
    base = M.zeros(3, 2).t().data
    assert base.stride() == (1, 2) and not base._is_view()
    w = M.tensor([5.0, 6.0], requires_grad=True)
    base[:, 1].copy_(w)
    assert name(base) == "CopySlices"
    assert base.tolist() == [[0.0, 5.0, 0.0], [0.0, 6.0, 0.0]]
    (base * x.view(2, 3)).sum().backward()
    assert w.grad.tolist() == [2.0, 5.0]
    assert x.grad.tolist() == [0.0, 5.0, 0.0, 0.0, 6.0, 0.0]


# ---- writes into buffers ----


def test_copy_into_a_buffer_row_makes_the_buffer_require_grad():
    buf = M.zeros(3, 2)
    x = M.tensor([1.0, 2.0], requires_grad=True)
    v = buf[1]
    assert v._is_view() and v._base is buf and not v.requires_grad
    buf[1].copy_(x)
    assert buf.requires_grad and not buf.is_leaf and v.requires_grad
    assert chain(buf.grad_fn, 2) == ["CopySlices", [None, ["AccumulateGrad", []]]]
    assert name(v) == "AsStridedBackward0"
    assert buf._version == 1
    (buf * M.arange(1.0, 7.0).view(3, 2)).sum().backward()
    assert x.grad.tolist() == [3.0, 4.0]


def test_setitem_with_tensors_and_numbers():
    buf = M.zeros(4)
    x = M.tensor([1.0, 2.0], requires_grad=True)
    buf[1:3] = x
    assert chain(buf.grad_fn, 2) == ["CopySlices", [None, ACC]]
    assert buf.tolist() == [0.0, 1.0, 2.0, 0.0] and buf._version == 1
    buf[0] = 5.0
    assert name(buf) == "CopySlices" and buf.tolist() == [5.0, 1.0, 2.0, 0.0] and buf._version == 2
    (buf * M.tensor([1.0, 2.0, 3.0, 4.0])).sum().backward()
    assert x.grad.tolist() == [2.0, 3.0]


def test_setitem_ellipsis_none_broadcast_and_dtype():
    buf = M.zeros(2, 3)
    buf[...] = 1.5
    buf[:, None, 1] = M.tensor([[7.0], [8.0]])
    assert buf.tolist() == [[1.5, 7.0, 1.5], [1.5, 8.0, 1.5]] and not buf.requires_grad
    buf = M.zeros(2, 3)
    buf[1] = M.tensor([1, 2, 3])
    assert buf.tolist() == [[0.0, 0.0, 0.0], [1.0, 2.0, 3.0]]
    bi = M.zeros(3, dtype=M.int64)
    bi.copy_(M.tensor([1.5, 2.5, 3.5], requires_grad=True))
    assert not bi.requires_grad and bi.tolist() == [1, 2, 3]


def test_setitem_errors():
    leaf = M.zeros(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="a view of a leaf Variable that requires grad is being used in an in-place operation."):
        leaf[0] = 1.0
    with M.no_grad():
        nv = leaf[1:]
    with pytest.raises(RuntimeError, match="A view was created in no_grad mode and is being modified inplace with grad mode enabled"):
        nv.mul_(M.ones(2, requires_grad=True))


# ---- hooks ----


def test_retain_grad_hook_runs_after_other_hooks():
    x = M.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    y.retain_grad()
    y.register_hook(lambda g: g * 10)
    (y * 1).sum().backward()
    assert y.grad.tolist() == [10.0, 10.0] and x.grad.tolist() == [20.0, 20.0]


def test_retain_grad_follows_an_in_place_write():
    x = M.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    y.retain_grad()
    y.mul_(3)
    (y * 1).sum().backward()
    assert y.grad.tolist() == [1.0, 1.0] and x.grad.tolist() == [6.0, 6.0]


# ---- formulas: torch's order of operations and edge cases ----


def test_pow_gradients_at_zero():
    a = M.tensor([0.0, 0.0, 2.0, -1.0], requires_grad=True)
    e = M.tensor([0.0, 2.0, 0.5, 3.0], requires_grad=True)
    (a**e).sum().backward()
    assert a.grad.tolist()[:2] == [0.0, 0.0] and a.grad.tolist()[3] == 3.0
    assert e.grad.tolist()[:2] == [0.0, 0.0] and math.isnan(e.grad.tolist()[3])
    a = M.tensor([0.0, 2.0, 3.0], requires_grad=True)
    (a**0).sum().backward()
    assert a.grad.tolist() == [0.0, 0.0, 0.0]
