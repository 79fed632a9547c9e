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
