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

# torch 2.15's ``(a @ b).grad_fn`` chains (4 levels), by case and by which operand requires grad.
TORCH_MM_CHAINS = {
    ("1@1", "ab"): "DotBackward0(AccumulateGrad, AccumulateGrad)",
    ("1@1", "a"): "DotBackward0(AccumulateGrad, None)",
    ("1@1", "b"): "DotBackward0(None, AccumulateGrad)",
    ("2@1", "ab"): "MvBackward0(AccumulateGrad, AccumulateGrad)",
    ("2@1", "a"): "MvBackward0(AccumulateGrad, None)",
    ("2@1", "b"): "MvBackward0(None, AccumulateGrad)",
    ("1@2", "ab"): "SqueezeBackward4(MmBackward0(UnsqueezeBackward0(AccumulateGrad), AccumulateGrad))",
    ("1@2", "a"): "SqueezeBackward4(MmBackward0(UnsqueezeBackward0(AccumulateGrad), None))",
    ("1@2", "b"): "SqueezeBackward4(MmBackward0(None, AccumulateGrad))",
    ("2@2", "ab"): "MmBackward0(AccumulateGrad, AccumulateGrad)",
    ("2@2", "a"): "MmBackward0(AccumulateGrad, None)",
    ("2@2", "b"): "MmBackward0(None, AccumulateGrad)",
    ("3@2", "ab"): "UnsafeViewBackward0(MmBackward0(ViewBackward0(AccumulateGrad), AccumulateGrad))",
    ("3@2", "a"): "UnsafeViewBackward0(MmBackward0(ViewBackward0(AccumulateGrad), None))",
    ("3@2", "b"): "UnsafeViewBackward0(MmBackward0(None, AccumulateGrad))",
    ("3@1", "ab"): "UnsafeViewBackward0(MvBackward0(ViewBackward0(AccumulateGrad), AccumulateGrad))",
    ("3@1", "a"): "UnsafeViewBackward0(MvBackward0(ViewBackward0(AccumulateGrad), None))",
    ("3@1", "b"): "UnsafeViewBackward0(MvBackward0(None, AccumulateGrad))",
    ("2@3", "ab"): "CloneBackward0(TransposeBackward0(UnsafeViewBackward0(MmBackward0(None, None))))",
    ("2@3", "a"): "CloneBackward0(TransposeBackward0(UnsafeViewBackward0(MmBackward0(None, None))))",
    ("2@3", "b"): "UnsafeViewBackward0(BmmBackward0(None, ViewBackward0(ExpandBackward0(None))))",
    ("1@3", "ab"): "UnsafeViewBackward0(MvBackward0(UnsafeViewBackward0(CloneBackward0(None)), AccumulateGrad))",
    ("1@3", "a"): "UnsafeViewBackward0(MvBackward0(None, AccumulateGrad))",
    ("1@3", "b"): "UnsafeViewBackward0(BmmBackward0(None, ViewBackward0(ExpandBackward0(None))))",
    (
        "3@3",
        "ab",
    ): "UnsafeViewBackward0(BmmBackward0(ViewBackward0(ExpandBackward0(None)), ViewBackward0(ExpandBackward0(None))))",
    ("3@3", "a"): "UnsafeViewBackward0(BmmBackward0(ViewBackward0(ExpandBackward0(None)), None))",
    ("3@3", "b"): "UnsafeViewBackward0(BmmBackward0(None, ViewBackward0(ExpandBackward0(None))))",
    ("3@3b", "ab"): "CloneBackward0(TransposeBackward0(UnsafeViewBackward0(MmBackward0(None, None))))",
    ("3@3b", "a"): "CloneBackward0(TransposeBackward0(UnsafeViewBackward0(MmBackward0(None, None))))",
    ("3@3b", "b"): "UnsafeViewBackward0(BmmBackward0(None, ViewBackward0(ExpandBackward0(None))))",
    (
        "3@3b2",
        "ab",
    ): "UnsafeViewBackward0(MmBackward0(ViewBackward0(AccumulateGrad), SqueezeBackward1(AccumulateGrad)))",
    ("3@3b2", "a"): "UnsafeViewBackward0(BmmBackward0(ViewBackward0(ExpandBackward0(None)), None))",
    ("3@3b2", "b"): "UnsafeViewBackward0(MmBackward0(None, SqueezeBackward1(AccumulateGrad)))",
    (
        "4@3",
        "ab",
    ): "UnsafeViewBackward0(BmmBackward0(UnsafeViewBackward0(CloneBackward0(None)), UnsafeViewBackward0(CloneBackward0(None))))",  # noqa: E501
    ("4@3", "a"): "UnsafeViewBackward0(BmmBackward0(UnsafeViewBackward0(CloneBackward0(None)), None))",
    ("4@3", "b"): "UnsafeViewBackward0(BmmBackward0(None, UnsafeViewBackward0(CloneBackward0(None))))",
    ("4@1", "ab"): "UnsafeViewBackward0(MvBackward0(ViewBackward0(AccumulateGrad), AccumulateGrad))",
    ("4@1", "a"): "UnsafeViewBackward0(MvBackward0(ViewBackward0(AccumulateGrad), None))",
    ("4@1", "b"): "UnsafeViewBackward0(MvBackward0(None, AccumulateGrad))",
    ("1@4", "ab"): "UnsafeViewBackward0(MvBackward0(UnsafeViewBackward0(CloneBackward0(None)), AccumulateGrad))",
    ("1@4", "a"): "UnsafeViewBackward0(MvBackward0(None, AccumulateGrad))",
    ("1@4", "b"): "UnsafeViewBackward0(BmmBackward0(None, ViewBackward0(ExpandBackward0(None))))",
    ("3@2", "nograd"): "UnsafeViewBackward0(MmBackward0(ViewBackward0(AccumulateGrad), None))",
}

MM_SHAPES = {
    "1@1": ((3,), (3,)),
    "2@1": ((2, 3), (3,)),
    "1@2": ((3,), (3, 4)),
    "2@2": ((2, 3), (3, 4)),
    "3@2": ((2, 2, 3), (3, 4)),
    "3@1": ((2, 2, 3), (3,)),
    "2@3": ((4, 3), (2, 3, 5)),
    "1@3": ((3,), (2, 3, 4)),
    "3@3": ((2, 2, 3), (2, 3, 4)),
    "3@3b": ((1, 2, 3), (2, 3, 4)),
    "3@3b2": ((2, 2, 3), (1, 3, 4)),
    "4@3": ((2, 1, 2, 3), (3, 3, 4)),
    "4@1": ((2, 2, 2, 3), (3,)),
    "1@4": ((3,), (2, 2, 3, 4)),
}


def fmt(c: Any) -> str:
    """A chain as ``Name(next, ...)``."""
    if c is None:
        return "None"
    n, nx = c
    return n if not nx else n + "(" + ", ".join(fmt(x) for x in nx) + ")"


@pytest.mark.parametrize("case, rg", sorted(TORCH_MM_CHAINS))
def test_matmul_records_torchs_nodes(case: str, rg: str) -> None:
    sa, sb = MM_SHAPES[case]
    a = R(*sa).detach().requires_grad_("a" in rg)
    b = R(*sb).detach().requires_grad_("b" in rg)
    want = TORCH_MM_CHAINS[(case, rg)]
    # torch squeezes 1-D @ 2-D's product in place (SqueezeBackward4, squeeze_.dim); tensor
    # geometry is immutable here, so the out-of-place squeeze.dim records SqueezeBackward1.
    want = want.replace("SqueezeBackward4", "SqueezeBackward1")
    assert fmt(chain((a @ b).grad_fn)) == want


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
    assert chain((a @ R(3, 4)).grad_fn, 3) == [
        "UnsafeViewBackward0",
        [["MmBackward0", [["ViewBackward0", [None]], None]]],
    ]
    p = R(2, 3, 2).permute(0, 2, 1).detach().requires_grad_()
    # torch: UnsafeViewBackward0(BmmBackward0(ReshapeAliasBackward0(ExpandBackward0(None)), None))
    want = "UnsafeViewBackward0(BmmBackward0(ReshapeAliasBackward0(ExpandBackward0(None)), None))"
    assert fmt(chain((p @ R(3, 4)).grad_fn)) == want


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
    with pytest.raises(
        RuntimeError, match=r"tensor.mT is only supported on matrices or batches of matrices. Got 1-D tensor."
    ):
        R(3).mT


def test_rpow_is_pow_scalar():
    x = R(2, 3).requires_grad_()
    y = 2**x
    assert name(y) == "PowBackward2"
    assert y.tolist() == [[2.0, 4.0, 8.0], [16.0, 32.0, 64.0]]
    y.sum().backward()
    want = [[2.0**v * math.log(2.0) for v in row] for row in [[1, 2, 3], [4, 5, 6]]]
    assert all(
        math.isclose(g, w, rel_tol=1e-6)
        for gr, wr in zip(x.grad.tolist(), want, strict=True)
        for g, w in zip(gr, wr, strict=True)
    )  # noqa: E501
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
    with pytest.raises(
        RuntimeError, match="a view of a leaf Variable that requires grad is being used in an in-place operation."
    ):
        leaf[0] = 1.0
    with M.no_grad():
        nv = leaf[1:]
    with pytest.raises(
        RuntimeError, match="A view was created in no_grad mode and is being modified inplace with grad mode enabled"
    ):
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


# ---- node names of the aten operators (torch 2.15's grad_fn class names) ----


def _si(val: Any, idx: Any) -> Any:
    b = M.zeros(2, 3)
    b[idx] = val
    return b


_X = R(2, 3).requires_grad_()
_Y = R(2, 3).requires_grad_()
NAME_CASES: list[tuple[str, Any, Any]] = [
    ("fill_", "FillBackward2", lambda: (_X * 1).fill_(2)),
    ("fill_T", "FillBackward3", lambda: (_X * 1).fill_(M.tensor(2.0))),
    ("zero_", "ZeroBackward0", lambda: (_X * 1).zero_()),
    ("uniform_", "UniformBackward0", lambda: (_X * 1).uniform_()),
    ("normal_", "NormalBackward0", lambda: (_X * 1).normal_()),
    ("add_", "AddBackward0", lambda: (_X * 1).add_(_Y)),
    ("sub_", "SubBackward0", lambda: (_X * 1).sub_(_Y)),
    ("mul_", "MulBackward0", lambda: (_X * 1).mul_(_Y)),
    ("div_", "DivBackward0", lambda: (_X * 1).div_(_Y)),
    ("add_s", "AddBackward1", lambda: M.ops.aten.add.Scalar(_X, 2)),
    ("_X+2", "AddBackward0", lambda: _X + 2),
    ("2-_X", "RsubBackward1", lambda: 2 - _X),
    ("_X-2", "SubBackward0", lambda: _X - 2),
    ("rsub_t", "RsubBackward0", lambda: M.rsub(_X, _Y)),
    ("_X*2", "MulBackward0", lambda: _X * 2),
    ("_X/2", "DivBackward0", lambda: _X / 2),
    ("mul_s", "MulBackward1", lambda: M.ops.aten.mul.Scalar(_X, 2)),
    ("div_s", "DivBackward1", lambda: M.ops.aten.div.Scalar(_X, 2)),
    ("2/_X", "MulBackward0", lambda: 2 / _X),
    ("_X**2", "PowBackward0", lambda: _X**2),
    ("_X**_Y", "PowBackward1", lambda: _X**_Y),
    ("narrow", "SliceBackward0", lambda: _X.narrow(0, 0, 1)),
    ("t", "TBackward0", lambda: _X.t()),
    ("select", "SelectBackward0", lambda: _X.select(0, 1)),
    ("getitem int", "SelectBackward0", lambda: _X[1]),
    ("getitem slice", "SliceBackward0", lambda: _X[:, 1:]),
    ("getitem none", "UnsqueezeBackward0", lambda: _X[None]),
    ("getitem ell", "AliasBackward0", lambda: _X[...]),
    ("where", "WhereBackward0", lambda: M.where(_X > 2, _X, _Y)),
    ("max", "MaxBackward1", lambda: _X.max()),
    ("alias", "AliasBackward0", lambda: M.ops.aten.alias(_X)),
    ("clone", "CloneBackward0", lambda: _X.clone()),
    ("to64", "ToCopyBackward0", lambda: _X.to(M.float64)),
    ("expand", "ExpandBackward0", lambda: _X[:1].expand(4, 3)),
    ("cat", "CatBackward0", lambda: M.cat([_X, _Y])),
    ("stack", "StackBackward0", lambda: M.stack([_X, _Y])),
    ("mean0", "MeanBackward1", lambda: _X.mean(0)),
    ("mean", "MeanBackward0", lambda: _X.mean()),
    ("sum0", "SumBackward1", lambda: _X.sum(0)),
    ("sum", "SumBackward0", lambda: _X.sum()),
    ("squeeze", "SqueezeBackward0", lambda: _X[:1].squeeze()),
    ("squeeze0", "SqueezeBackward1", lambda: _X[:1].squeeze(0)),
    ("unsqueeze", "UnsqueezeBackward0", lambda: _X.unsqueeze(0)),
    ("permute", "PermuteBackward0", lambda: _X.permute(1, 0)),
    ("transpose", "TransposeBackward0", lambda: _X.transpose(0, 1)),
    ("contig", "CloneBackward0", lambda: _X.t().contiguous()),
    ("copy_", "CopyBackwards", lambda: (_X * 1).copy_(_Y)),
    ("pow.Scalar", "PowBackward2", lambda: M.pow(2, _X)),
    ("detach", None, lambda: _X.detach()),
    ("maximum", "MaximumBackward0", lambda: M.maximum(_X, _Y)),
    ("relu", "ReluBackward0", lambda: _X.relu()),
    ("sigmoid", "SigmoidBackward0", lambda: _X.sigmoid()),
    ("tanh", "TanhBackward0", lambda: _X.tanh()),
    ("abs", "AbsBackward0", lambda: _X.abs()),
    ("view", "ViewBackward0", lambda: _X.view(6)),
    ("reshape", "ViewBackward0", lambda: _X.reshape(3, 2)),
    ("flatten", "ViewBackward0", lambda: _X.flatten()),
    (
        "matmul_err",
        "ERR RuntimeError: both arguments to matmul need to be at least 1D, but they are 0D and 2D",
        lambda: M.tensor(1.0) @ _X,
    ),
    ("to_same", None, lambda: _X.to(M.float32)),
    ("contig_same", None, lambda: _X.contiguous()),
    ("getitem full", "SliceBackward0", lambda: _X[:]),
    ("getitem full2", "AliasBackward0", lambda: _X[:, :]),
    ("getitem 0:2", "SliceBackward0", lambda: _X[0:2]),
    ("getitem neg", "SelectBackward0", lambda: _X[-1]),
    ("getitem big stop", "SliceBackward0", lambda: _X[:100]),
    ("setitem full", "CopyBackwards", lambda: _si(_Y, slice(None))),
    ("setitem ell", "CopyBackwards", lambda: _si(_Y, Ellipsis)),
    ("setitem ell num", None, lambda: _si(2.0, Ellipsis)),
    ("setitem row num", None, lambda: _si(2.0, 0)),
    ("setitem elem num", None, lambda: _si(2.0, (0, 1))),
    ("setitem row bcast", "CopySlices", lambda: _si(_Y[0:1, :1], 0)),
    ("setitem 0d tensor", "CopySlices", lambda: _si(M.tensor(3.0, requires_grad=True), 0)),
]


@pytest.mark.parametrize("key, want, f", NAME_CASES, ids=[c[0] for c in NAME_CASES])
def test_grad_fn_names_as_torch(key: str, want: Any, f: Any) -> None:
    try:
        got = name(f())
    except Exception as e:  # noqa: BLE001 - the error text is what torch records for these
        got = "ERR " + type(e).__name__ + ": " + str(e)
    assert got == want


SETITEM_CHAINS = {
    "full": "CopyBackwards(None, AccumulateGrad)",
    "ell": "CopyBackwards(None, AccumulateGrad)",
    "row": "CopySlices(None, SelectBackward0(AccumulateGrad))",
    "rownum": "None",
    "elemnum": "None",
    "0d": "CopySlices(None, AccumulateGrad)",
    "bcast": "CopySlices(None, ExpandBackward0(ViewBackward0(SliceBackward0(None))))",
    "ell0d": "FillBackward3(None, AccumulateGrad)",
}


def test_setitem_records_what_torch_records():
    t = M.tensor(3.0, requires_grad=True)
    cases = {
        "full": (_Y, slice(None)),
        "ell": (_Y, Ellipsis),
        "row": (_Y[0], 0),
        "rownum": (2.0, 0),
        "elemnum": (2.0, (0, 1)),
        "0d": (t, 0),
        "bcast": (_Y[0:1, :1], 0),
        "ell0d": (t, Ellipsis),
    }
    for k, (v, i) in cases.items():
        assert fmt(chain(_si(v, i).grad_fn)) == SETITEM_CHAINS[k], k


def test_getitem_returns_an_alias_for_whole_tuple_indexes():
    x = R(2, 3).requires_grad_()
    assert name(x[...]) == "AliasBackward0" and name(x[:, :]) == "AliasBackward0"
    assert name(x[:]) == "SliceBackward0" and name(x[:100]) == "SliceBackward0"


def test_setitem_shape_error_is_expands():
    buf = M.zeros(3)
    with pytest.raises(
        RuntimeError,
        match=r"^expand\(torch.FloatTensor\{\[2\]\}, size=\[\]\): the number of sizes provided \(0\) must be "
        r"greater or equal to the number of dimensions in the tensor \(1\)$",
    ):
        buf[0] = M.ones(2)


def test_views_made_under_no_grad():
    leaf = M.zeros(3, requires_grad=True)
    with M.no_grad():
        nv = leaf[1:]
    assert nv.requires_grad and nv.is_leaf and nv.grad_fn is None and nv._is_view()
    with pytest.raises(RuntimeError) as e:
        nv.mul_(2)
    assert str(e.value) == (
        "A view was created in no_grad mode and is being modified inplace with grad mode enabled. Given that this "
        "use case is ambiguous and error-prone, it is forbidden. You can clarify your code by moving both the view "
        "and the inplace either both inside the no_grad block (if you don't want the inplace to be tracked) or both "
        "outside (if you want the inplace to be tracked)."
    )
    assert not M.ones(3).detach()._is_view()


# ---- formulas rounded as torch's (inputs from the shared generator, gradients as float.hex) ----

TORCH_DIV = [
    [
        "0x1.fc2ab00000000p-2",
        "0x1.89545e0000000p-1",
        "0x1.6a67500000000p-4",
        "0x1.0e66000000000p-3",
        "0x1.3acd0c0000000p-2",
        "0x1.44a5f60000000p-1",
        "0x1.f5db0c0000000p-2",
        "0x1.caface0000000p-1",
        "0x1.d290240000000p-2",
        "0x1.43bda60000000p-1",
        "0x1.6544540000000p-2",
        "0x1.9b5bc80000000p-2",
        "0x1.6dc9000000000p-6",
        "0x1.59d2b80000000p-3",
        "0x1.2cf1180000000p-2",
        "0x1.097bb00000000p-1",
    ],
    [
        "0x1.9867e40000000p-1",
        "0x1.ccce4c0000000p-1",
        "0x1.0b4b4e0000000p-2",
        "0x1.87716a0000000p-2",
        "0x1.902f000000000p-1",
        "0x1.03e3c00000000p+0",
        "0x1.fd07c20000000p-2",
        "0x1.f2c4900000000p-1",
        "0x1.09efe40000000p-1",
        "0x1.4e49d60000000p-1",
        "0x1.0d803e0000000p+0",
        "0x1.16dd940000000p-3",
        "0x1.24139a0000000p-2",
        "0x1.e4c7860000000p-2",
        "0x1.9ed28a0000000p-2",
        "0x1.08312e0000000p+0",
    ],
    [
        "0x1.40ef880000000p+0",
        "0x1.1c70da0000000p+0",
        "0x1.ea5dba0000000p+1",
        "0x1.4ed7d60000000p+1",
        "0x1.4787980000000p+0",
        "0x1.f8564e0000000p-1",
        "0x1.017e560000000p+1",
        "0x1.06caa80000000p+0",
        "0x1.ecde540000000p+0",
        "0x1.8817b20000000p+0",
        "0x1.e659ce0000000p-1",
        "0x1.d604c60000000p+2",
        "0x1.c0c2500000000p+1",
        "0x1.0e5fe20000000p+1",
        "0x1.3bf8aa0000000p+1",
        "0x1.f01fb40000000p-1",
    ],
    [
        "-0x1.8f54920000000p-1",
        "-0x1.e5946a0000000p-1",
        "-0x1.4c6cc20000000p+0",
        "-0x1.ce99f80000000p-1",
        "-0x1.01a5fc0000000p-1",
        "-0x1.3b00d80000000p-1",
        "-0x1.fbba780000000p+0",
        "-0x1.e3a7ee0000000p-1",
        "-0x1.b058d80000000p+0",
        "-0x1.7bb8980000000p+0",
        "-0x1.425e400000000p-2",
        "-0x1.5aaa640000000p+4",
        "-0x1.1901080000000p-2",
        "-0x1.81bff00000000p-1",
        "-0x1.ca74d00000000p+0",
        "-0x1.f28c5a0000000p-2",
    ],
]
TORCH_COS = [
    "0x1.0b1fce0000000p-1",
    "0x1.ed60a60000000p-1",
    "0x1.5c450a0000000p-2",
    "-0x1.230f300000000p-1",
    "0x1.71a4be0000000p-1",
    "0x1.2b7af00000000p-2",
    "-0x1.f450000000000p-1",
    "-0x1.ddbd900000000p-1",
    "-0x1.aba8d20000000p-3",
    "0x1.c627f80000000p-1",
    "-0x1.40a4580000000p-1",
    "-0x1.1e36000000000p-1",
    "0x1.fd51400000000p-3",
    "0x1.c36f620000000p-1",
    "-0x1.2896f00000000p-1",
    "-0x1.6df77c0000000p-1",
]
TORCH_RECIPROCAL = [
    "-0x1.30a9a20000000p-3",
    "-0x1.2e052c0000000p-2",
    "-0x1.063dfe0000000p-3",
    "-0x1.23db000000000p-4",
    "-0x1.77a3840000000p-3",
    "-0x1.5a74f60000000p-4",
    "-0x1.416dd60000000p-2",
    "-0x1.10729a0000000p-2",
    "-0x1.698cb20000000p+4",
    "-0x1.e6faec0000000p-3",
    "-0x1.177db40000000p+1",
    "-0x1.25a6700000000p-4",
    "-0x1.ea53600000000p-4",
    "-0x1.e19e0a0000000p-3",
    "-0x1.418a900000000p-3",
    "-0x1.7456d40000000p-3",
]


def _hex(t: Any) -> list[str]:
    return [v.hex() for v in t.tolist()]


def test_formulas_round_as_torchs():
    M.manual_seed(0)
    a = M.rand(16, requires_grad=True)
    b = M.rand(16) + 0.1
    b.requires_grad_()
    (a / b).sum().backward()
    assert [_hex(a.detach()), _hex(b.detach())] == TORCH_DIV[:2]  # the same inputs
    # div_tensor_other_backward: -grad * ((self / other) / other)
    assert [_hex(a.grad), _hex(b.grad)] == TORCH_DIV[2:]
    s = M.rand(16) * 8 - 4
    c = s.detach().requires_grad_()
    M.cos(c).sum().backward()
    assert _hex(c.grad) == TORCH_COS
    r = s.detach().requires_grad_()
    M.reciprocal(r).sum().backward()
    assert _hex(r.grad) == TORCH_RECIPROCAL
