"""The typed path for the plain aten shapes (`od.tanh(x)`, `a.add(b)`, `ops.aten.mul.Tensor(a, b)`,
`ops.aten.add(a, b)`): it must behave exactly as the boxed call it replaces, under modes, with
autograd, on errors, with numbers and keywords (which take the boxed path), and it must not catch
operators whose schema can change (user namespaces)."""

import math

import pytest

import opdispatch as M
from opdispatch import library
from opdispatch.utils import _python_dispatch as pd


class Log(pd.TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.log: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        self.log.append(str(func))
        return func(*args, **(kwargs or {}))


UNARY = ["neg", "abs", "exp", "log", "sin", "cos", "sqrt", "relu", "sigmoid", "tanh", "reciprocal"]


@pytest.mark.parametrize("name", UNARY)
def test_values_and_gradients_match_the_formula(name: str) -> None:
    x = M.tensor([0.5, 1.25, 2.0], requires_grad=True)
    y = getattr(M, name)(x)
    assert type(y.grad_fn).__name__ == {"neg": "NegBackward0"}.get(name, f"{name.capitalize()}Backward0")
    y.sum().backward()
    expected = {
        "neg": lambda v: -1.0,
        "abs": lambda v: 1.0,
        "exp": math.exp,
        "log": lambda v: 1 / v,
        "sin": math.cos,
        "cos": lambda v: -math.sin(v),
        "sqrt": lambda v: 0.5 / math.sqrt(v),
        "relu": lambda v: 1.0,
        "sigmoid": lambda v: (1 / (1 + math.exp(-v))) * (1 - 1 / (1 + math.exp(-v))),
        "tanh": lambda v: 1 - math.tanh(v) ** 2,
        "reciprocal": lambda v: -1 / v**2,
    }[name]
    assert x.grad is not None
    for g, v in zip(x.grad.tolist(), [0.5, 1.25, 2.0], strict=True):
        assert g == pytest.approx(expected(v), rel=1e-5)


def test_no_grad_and_plain_tensors_record_nothing() -> None:
    x = M.tensor([1.0, 2.0], requires_grad=True)
    with M.no_grad():
        assert M.tanh(x).grad_fn is None
    assert M.tanh(M.ones(2)).requires_grad is False


def test_a_mode_sees_the_overload() -> None:
    x = M.ones(3)
    with Log() as m:
        M.tanh(x)
        M.ops.aten.exp.default(x)
        x.relu()
    assert m.log == ["aten.tanh.default", "aten.exp.default", "aten.relu.default"]


def test_errors_are_the_boxed_calls() -> None:
    b = M.tensor([True, False])
    with pytest.raises(RuntimeError, match="clamp_min_scalar_cpu"):
        M.relu(b)
    with pytest.raises(RuntimeError, match="Negation, the `-` operator, on a bool tensor"):
        M.neg(b)
    # Not a tensor: the boxed path's schema-driven message, as torch's.
    with pytest.raises(RuntimeError, match="Expected a value of type 'Tensor' for argument 'self'"):
        M.ops.aten.tanh.default(1.5)


def test_user_namespace_operators_are_not_cached() -> None:
    # A user operator can be dropped and defined again with another schema under one name:
    # its handle must see the new schema every time.
    for sig, fn, arg, want in [
        ("(Tensor x) -> Tensor", lambda x: x * 2, M.ones(2), [2.0, 2.0]),
        ("(Tensor x, int n=3) -> Tensor", lambda x, n=3: x * n, M.ones(2), [3.0, 3.0]),
    ]:
        lib = library.Library("unary_fast_ns", "DEF")
        try:
            lib.define("f" + sig)
            lib.impl("f", fn, "CPU")
            assert M.ops.unary_fast_ns.f.default(arg).tolist() == want
        finally:
            lib._destroy()


def test_binary_calls_all_routes_agree() -> None:
    a, b = M.tensor([1.0, 2.0]), M.tensor([3.0, 5.0])
    want = [4.0, 7.0]
    assert a.add(b).tolist() == want
    assert M.add(a, b).tolist() == want
    assert M.ops.aten.add(a, b).tolist() == want
    assert M.ops.aten.add.Tensor(a, b).tolist() == want
    # Keywords and numbers take the boxed path, with the same meaning.
    assert a.add(b, alpha=2).tolist() == [7.0, 12.0]
    assert M.ops.aten.add(a, b, alpha=2).tolist() == [7.0, 12.0]
    assert M.ops.aten.add(a, 1).tolist() == [2.0, 3.0]
    assert a.mul(b).tolist() == [3.0, 10.0]
    assert M.ops.aten.maximum.default(a, b).tolist() == [3.0, 5.0]


def test_binary_calls_under_a_mode_and_with_grad() -> None:
    a = M.tensor([1.0, 2.0], requires_grad=True)
    b = M.tensor([3.0, 5.0])
    with Log() as m:
        a.add(b)
        M.ops.aten.add(a, b)
        M.ops.aten.mul.Tensor(a, b)
    assert m.log == ["aten.add.Tensor", "aten.add.Tensor", "aten.mul.Tensor"]
    y = M.ops.aten.mul.Tensor(a, b)
    assert type(y.grad_fn).__name__ == "MulBackward0"
    y.sum().backward()
    assert a.grad is not None and a.grad.tolist() == [3.0, 5.0]


def test_binary_errors_are_the_boxed_calls() -> None:
    a, b = M.ones(2), M.ones(3)
    with pytest.raises(RuntimeError, match="The size of tensor a \\(2\\) must match the size of tensor b \\(3\\)"):
        M.ops.aten.add(a, b)
    with pytest.raises(RuntimeError, match="The size of tensor a \\(2\\) must match the size of tensor b \\(3\\)"):
        a.mul(b)
    t, f = M.tensor([True]), M.tensor([False])
    with pytest.raises(RuntimeError, match="Subtraction, the `-` operator, with two bool tensors"):
        M.ops.aten.sub.Tensor(t, f)
