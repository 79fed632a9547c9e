"""What the define path now defers to the first call (issue 12's define speed): the generated
autograd.Function and the schema the Autograd kernel binds keyword arguments with."""

from __future__ import annotations

import itertools

import opdispatch as M
from opdispatch import library

_counter = itertools.count()


def test_graph_call_with_keyword_arguments_builds_the_function_lazily() -> None:
    qualname = f"define_path::scale{next(_counter)}"

    @library.custom_op(qualname, mutates_args=())
    def scale(x: M.Tensor, factor: float = 2.0) -> M.Tensor:
        return x * factor

    def setup_context(ctx, inputs, output) -> None:  # type: ignore[no-untyped-def]  # noqa: ANN001
        ctx.factor = inputs[1]

    scale.register_autograd(lambda ctx, g: (g * ctx.factor, None), setup_context=setup_context)
    try:
        x = M.ones(3, requires_grad=True)
        y = scale(x, factor=3.0)
        assert type(y.grad_fn).__name__.startswith("GeneratedBackwardFor_define_path_scale")
        y.sum().backward()
        assert x.grad is not None and x.grad.tolist() == [3.0, 3.0, 3.0]
        x.grad = None
        scale(x, 5.0).sum().backward()  # the same generated Function again, positionally
        assert x.grad.tolist() == [5.0, 5.0, 5.0]
        with M.no_grad():
            assert scale(x, factor=4.0).tolist() == [4.0, 4.0, 4.0]
    finally:
        scale._lib._destroy()


def test_register_torch_dispatch_on_a_custom_op() -> None:
    from opdispatch.utils._python_dispatch import TorchDispatchMode

    class Mode(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]  # noqa: ANN001, ANN204
            return func(*args, **(kwargs or {}))

    qualname = f"define_path::td{next(_counter)}"

    @library.custom_op(qualname, mutates_args=())
    def op(x: M.Tensor) -> M.Tensor:
        return x + 1

    try:
        seen = []

        @op.register_torch_dispatch(Mode)
        def rule(mode, func, types, args, kwargs):  # type: ignore[no-untyped-def]  # noqa: ANN001, ANN202
            seen.append(type(mode).__name__)
            return args[0] * 10

        a = M.ones(1)
        with Mode():
            assert op(a).tolist() == [10.0]
        assert seen == ["Mode"]
        # Registering again replaces the rule (torch's CustomOpDef behaviour), also through
        # library.register_torch_dispatch with the op's name.
        library.register_torch_dispatch(qualname, Mode, lambda mode, func, types, args, kwargs: args[0] * 20)
        with Mode():
            assert op(a).tolist() == [20.0]
        assert op(a).tolist() == [2.0]
    finally:
        op._lib._destroy()
    assert qualname not in M._C._torch_dispatch_rules  # the rule left with the library


def test_autograd_kernel_runs_only_for_calls_that_need_a_graph() -> None:
    # The Autograd kernel is an `_AutogradKernel` instance whose class carries the grad-gate
    # flag: the native gate in front of it skips it unless an input requires grad.
    from opdispatch._library import autograd

    calls = []
    original = autograd._AutogradKernel.__call__

    def counting(self, *args, **kwargs):  # type: ignore[no-untyped-def]  # noqa: ANN001, ANN002, ANN003, ANN202
        calls.append(self.op)
        return original(self, *args, **kwargs)

    qualname = f"define_path::gate{next(_counter)}"

    @library.custom_op(qualname, mutates_args=())
    def double(x: M.Tensor) -> M.Tensor:
        return x * 2

    double.register_autograd(lambda ctx, g: g * 2)
    autograd._AutogradKernel.__call__ = counting  # type: ignore[method-assign]
    try:
        assert double(M.ones(2)).tolist() == [2.0, 2.0]
        assert calls == []
        x = M.ones(2, requires_grad=True)
        double(x).sum().backward()
        assert len(calls) == 1
        assert x.grad is not None and x.grad.tolist() == [2.0, 2.0]
    finally:
        autograd._AutogradKernel.__call__ = original  # type: ignore[method-assign]
        double._lib._destroy()


def test_custom_op_calls_forward_natively_to_the_overload() -> None:
    import pytest

    from opdispatch import _C

    qualname = f"define_path::fwd{next(_counter)}"
    op = library.custom_op(qualname, lambda x, k=1: x * k, mutates_args=(), schema="(Tensor x, int k=1) -> Tensor")
    try:
        x = M.ones(2)
        assert op(x).tolist() == [1.0, 1.0]
        assert op(x, k=3).tolist() == [3.0, 3.0]  # keywords go through the vectorcall as is
        assert op(x, 2).tolist() == [2.0, 2.0]
        assert type(op).__call__(op, x, k=4).tolist() == [4.0, 4.0]  # the tp_call path
        with pytest.raises(RuntimeError, match="already set"):
            op._set_call_target(op._opoverload)
        with pytest.raises(RuntimeError, match="Expected a value of type 'int'|int"):
            op(x, k="no")
    finally:
        op._lib._destroy()
    # A bare base object has nothing to call yet.
    bare = _C._CustomOpCall()
    with pytest.raises(RuntimeError, match="not defined yet"):
        bare(x)
