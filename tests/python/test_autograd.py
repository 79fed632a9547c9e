"""Autograd through the dispatcher: gradients, grad modes, Function, errors, and no leaks."""

from __future__ import annotations

import gc
import threading
import warnings
import weakref

import pytest

import opdispatch as M
from opdispatch import library, ops


def vals(t):
    return [round(v, 4) for v in t.tolist()]


def test_chain_of_ops_and_broadcast_gradients():
    x = M.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    b = M.tensor([1.0, -1.0], requires_grad=True)
    y = ((x + b).tanh() * x).mean()
    y.backward()
    assert list(x.grad.shape) == [2, 2] and list(b.grad.shape) == [2]
    assert M.autograd.gradcheck(
        lambda a, c: ((a + c).tanh() * a).mean(),
        (x.detach().to(M.float64).requires_grad_(), b.detach().to(M.float64).requires_grad_()),
    )


@pytest.mark.parametrize(
    "f",
    [
        lambda a: (a.exp() * a.sin()).sum(),
        lambda a: (a.sigmoid() / (a.cos() + 2)).sum(),
        lambda a: (a.reshape([2, 3]).t() @ M.ones(2, dtype=M.float64)).sum(),
        lambda a: M.cat([a, a * 2]).max(),
        lambda a: (a.unsqueeze(0).expand([3, 6]) * a).sum(),
        lambda a: (a[1:4] * a[2]).sum(),
        lambda a: M.stack([a, a.relu()], 1).sum(1).pow(2).sum(),
    ],
)
def test_gradcheck_of_composites(f):
    a = M.tensor([0.3, -0.5, 1.2, 0.8, -1.1, 2.0], dtype=M.float64, requires_grad=True)
    assert M.autograd.gradcheck(f, (a,))


def test_gradcheck_reports_a_wrong_backward():
    class Wrong(M.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g * 3

    x = M.tensor([1.0, 2.0], dtype=M.float64, requires_grad=True)
    with pytest.raises(M.autograd.GradcheckError, match="Jacobian mismatch"):
        M.autograd.gradcheck(Wrong.apply, (x,))
    assert M.autograd.gradcheck(Wrong.apply, (x,), raise_exception=False) is False


def test_grad_modes_are_thread_local_and_decorate():
    seen = []
    with M.no_grad():
        t = threading.Thread(target=lambda: seen.append(M.is_grad_enabled()))
        t.start()
        t.join()
        assert not M.is_grad_enabled()
    assert seen == [True]

    @M.no_grad()
    def f(x):
        return x * 2

    x = M.ones(2, requires_grad=True)
    assert not f(x).requires_grad
    with M.inference_mode():
        assert not (x * 2).requires_grad and M.is_inference_mode_enabled()
    assert not M.is_inference_mode_enabled()


def test_requires_grad_errors_and_non_leaf_grad_warning():
    with pytest.raises(RuntimeError, match="only Tensors of floating point dtype can require gradients"):
        M.ones(2, dtype=M.int64).requires_grad_()
    x = M.ones(2, requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match="you can only change requires_grad flags of leaf variables"):
        y.requires_grad_(False)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        assert y.grad is None
    assert "not a leaf Tensor" in str(w[0].message)
    with pytest.raises(RuntimeError, match="assigned grad has data of a different size"):
        x.grad = M.ones(3)


def test_version_counter_is_shared_by_views():
    x = M.zeros(4)
    v = x.view([2, 2])
    assert x._version == 0
    v.add_(M.ones(2, 2))
    assert x._version == 1 and v._version == 1
    x.zero_()
    assert v._version == 2


def test_in_place_on_a_view_of_a_leaf_is_refused():
    x = M.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="a view of a leaf Variable that requires grad"):
        x[0:2].mul_(M.ones(2))
    with M.no_grad():
        x.mul_(M.ones(3) * 2)
    assert vals(x) == [2.0, 2.0, 2.0]


def test_in_place_on_a_view_of_a_non_leaf_rebases_the_base():
    x = M.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 1
    v = y[0:2]
    v.mul_(M.tensor([3.0, 4.0]))
    assert type(y.grad_fn).__name__ == "CopySlices"
    (y * M.tensor([1.0, 10.0, 100.0])).sum().backward()
    assert vals(x.grad) == [3.0, 40.0, 100.0]

    a = M.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    w = M.tensor([5.0, 6.0], requires_grad=True)
    b = a.clone()
    b[1].add_(w * 2)
    (b * b).sum().backward()
    # d/da of sum(b^2) = 2b, rows as written; d/dw = 2 * 2 * b[1]
    assert vals(a.grad[0]) == [2.0, 4.0] and vals(a.grad[1]) == [26.0, 32.0]
    assert vals(w.grad) == [52.0, 64.0]


def test_function_backward_exception_propagates_unchanged():
    class Boom(M.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x.clone()

        @staticmethod
        def backward(ctx, g):
            raise KeyError("from backward")

    y = Boom.apply(M.ones(2, requires_grad=True)).sum()
    with pytest.raises(KeyError, match="from backward"):
        y.backward()


def test_saved_output_makes_no_cycle_and_mark_non_differentiable():
    class Exp(M.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            r = x.exp()
            ctx.save_for_backward(r)
            return r

        @staticmethod
        def backward(ctx, g):
            (r,) = ctx.saved_tensors
            return g * r

    x = M.tensor([0.0, 1.0], requires_grad=True)
    y = Exp.apply(x)
    ref = weakref.ref(y)
    y.sum().backward()
    assert vals(x.grad) == [1.0, 2.7183]
    del y
    gc.collect()
    assert ref() is None

    class Pair(M.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            idx = x.argmax()
            ctx.mark_non_differentiable(idx)
            return x * 2, idx

        @staticmethod
        def backward(ctx, g, _gi):
            return g * 2

    v, i = Pair.apply(M.ones(2, requires_grad=True))
    assert v.requires_grad and not i.requires_grad


def test_retain_graph_and_inputs_argument():
    x = M.tensor([1.0, 2.0], requires_grad=True)
    w = M.tensor([3.0, 4.0], requires_grad=True)
    y = (x * w).sum()
    y.backward(inputs=[x], retain_graph=True)
    assert vals(x.grad) == [3.0, 4.0] and w.grad is None
    y.backward()
    assert vals(x.grad) == [6.0, 8.0] and vals(w.grad) == [1.0, 2.0]
    with pytest.raises(RuntimeError, match="does not require grad"):
        M.autograd.grad(y, M.ones(1))


def test_library_register_autograd_and_grad_fn_identity():
    ns = "ag_lib_test"
    lib = library.Library(ns, "FRAGMENT")
    try:
        lib.define("cube(Tensor x) -> Tensor")
        lib.impl("cube", lambda x: x * x * x, "CPU")

        def setup(ctx, inputs, output):
            ctx.save_for_backward(inputs[0])

        def bw(ctx, g):
            (x,) = ctx.saved_tensors
            return g * 3 * x * x

        library.register_autograd(f"{ns}::cube", bw, setup_context=setup, lib=lib)
        x = M.tensor([1.0, 2.0], requires_grad=True)
        y = getattr(ops, ns).cube(x)
        assert y.grad_fn is y.grad_fn
        y.sum().backward()
        assert vals(x.grad) == [3.0, 12.0]
    finally:
        lib._destroy()


def test_forward_backward_loop_leaks_nothing():
    w = M.tensor([0.5, -0.5, 1.5, 2.0], requires_grad=True)
    _C_count = len(gc.get_objects())

    def step():
        x = M.tensor([1.0, 2.0, 3.0, 4.0])
        z = x
        for _ in range(3):
            z = (z.tanh() * w)
        z.sum().backward()

    for _ in range(200):
        step()
    gc.collect()
    base = len(gc.get_objects())
    for _ in range(10000):
        step()
    gc.collect()
    assert len(gc.get_objects()) - base < 50
    assert gc.collect() == 0
    assert _C_count > 0 and w.grad is not None


def test_retain_grad_and_hooks():
    x = M.ones(2, requires_grad=True)
    x.retain_grad()  # a leaf: a no-op, as in PyTorch
    y = x * 3
    y.retain_grad()
    seen = []
    h = y.register_hook(lambda g: seen.append(vals(g)))
    x.register_hook(lambda g: g * 10)  # replaces the leaf's gradient
    (y * y).sum().backward(retain_graph=True)
    assert vals(y.grad) == [6.0, 6.0] and seen == [[6.0, 6.0]]
    assert vals(x.grad) == [180.0, 180.0]
    h.remove()
    (y * y).sum().backward()
    assert seen == [[6.0, 6.0]] and vals(y.grad) == [12.0, 12.0]
    with pytest.raises(RuntimeError, match="requires_grad=False"):
        M.ones(2).retain_grad()
    with pytest.raises(RuntimeError, match="doesn't require gradient"):
        M.ones(2).register_hook(lambda g: g)
