"""gradgradcheck checks second derivatives against finite differences of the first; tanh's
backward is PyTorch's fused ``tanh_backward`` with its own node (TanhBackwardBackward0)."""

from __future__ import annotations

from typing import Any

import pytest

import opdispatch as od


def _x() -> Any:
    return od.tensor([0.3, -1.2, 0.7, 2.0], dtype=od.float64, requires_grad=True)


@pytest.mark.parametrize(
    "fn", [od.tanh, od.sin, od.exp, od.sigmoid, lambda t: t * t * t], ids=["tanh", "sin", "exp", "sigmoid", "cube"]
)
def test_second_derivatives_match_finite_differences(fn: Any) -> None:
    assert od.autograd.gradgradcheck(fn, (_x(),))


def test_tanh_backward_is_differentiable_in_both_arguments() -> None:
    g = od.tensor([0.5, 1.0, -2.0, 0.25], dtype=od.float64, requires_grad=True)
    assert od.autograd.gradgradcheck(lambda a, b: od.ops.aten.tanh_backward(a, b), (g, _x()))


def test_create_graph_of_tanh_records_torchs_nodes() -> None:
    x = _x()
    (g,) = od.autograd.grad(od.tanh(x).sum(), x, create_graph=True)
    assert type(g.grad_fn).__name__ == "TanhBackwardBackward0"
    assert [type(n).__name__ if n is not None else None for n, _ in g.grad_fn.next_functions] == [
        None,
        "TanhBackward0",
    ]
    assert od.ops.aten.tanh_backward.default.tags == [od.Tag.pointwise, od.Tag.pt2_compliant_tag]


def test_a_wrong_second_derivative_is_caught() -> None:
    class DetachedSquare(od.autograd.Function):
        @staticmethod
        def forward(ctx: Any, x: Any) -> Any:
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx: Any, grad: Any) -> Any:
            (x,) = ctx.saved_tensors
            return grad * 2 * x.detach()  # drops d/dx of the first derivative

    with pytest.raises(od.autograd.GradcheckError, match="Numerical gradient for function expected to be zero"):
        od.autograd.gradgradcheck(DetachedSquare.apply, (_x(),))
    assert od.autograd.gradgradcheck(DetachedSquare.apply, (_x(),), raise_exception=False) is False
