"""Op sequences and error texts that torch 2.15 shows through a TorchDispatchMode or a Python
kernel, recorded from torch: indexing, AccumulateGrad's ops, binary operators that every
handler declines, and what a Python kernel may return."""

from __future__ import annotations

import re
from typing import Any

import pytest

import opdispatch as M
from opdispatch.utils._python_dispatch import TorchDispatchMode


class Log(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.log: list[str] = []

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        self.log.append(str(func).replace("aten.", "") + str(tuple(args[1:])))
        return func(*args, **(kwargs or {}))


INDEXING = [
    ("x[0:2, 1]", ["select.int(1, 1)"], (2,)),
    ("x[-5:10, 1]", ["slice.Tensor(0, -5, 10)", "select.int(1, 1)"], (2,)),
    ("x[::1, 1]", ["select.int(1, 1)"], (2,)),
    ("x[:1, 1]", ["slice.Tensor(0, 0, 1)", "select.int(1, 1)"], (1,)),
    ("x[:, :]", ["alias.default()"], (2, 3)),
    ("x[...]", ["alias.default()"], (2, 3)),
    ("x[()]", ["alias.default()"], (2, 3)),
    ("x[None]", ["unsqueeze.default(0,)"], (1, 2, 3)),
    ("x[:]", ["slice.Tensor(0, 0, 9223372036854775807)"], (2, 3)),
    ("x[1:, None, 0:3]", ["slice.Tensor(0, 1, 9223372036854775807)", "unsqueeze.default(1,)"], (1, 1, 3)),
    ("x[:, -1]", ["select.int(1, -1)"], (2,)),
    ("x[5:, 1]", ["slice.Tensor(0, 5, 9223372036854775807)", "select.int(1, 1)"], (0,)),
]


@pytest.mark.parametrize("expr,ops,shape", INDEXING)
def test_indexing_dispatches_torchs_ops(expr: str, ops: list[str], shape: tuple[int, ...]) -> None:
    x = M.ones(2, 3)  # noqa: F841 (read by eval)
    with Log() as m:
        r = eval(expr)
    assert m.log == ops
    assert tuple(r.shape) == shape


def test_alias_index_is_a_new_object_with_alias_backward() -> None:
    x = M.ones(2, requires_grad=True)
    y = x[...]
    assert y is not x and type(y.grad_fn).__name__ == "AliasBackward0"


def accumulate_log(f: Any) -> tuple[list[str], Any]:
    x = M.tensor([1.0, 2.0], requires_grad=True)
    with Log() as m:
        f(x)
    return [e.split("(")[0] for e in m.log], x


def test_accumulate_grad_steals_an_unshared_gradient_with_detach() -> None:
    log, x = accumulate_log(lambda x: (x * 2).sum().backward())
    assert log == ["mul.Tensor", "sum.default", "ones_like.default", "expand.default", "mul.Tensor", "detach.default"]
    assert x.grad.tolist() == [2.0, 2.0] and x.grad.grad_fn is None


def test_accumulate_grad_copies_a_gradient_without_the_leafs_layout() -> None:
    # sum's gradient is an expand (stride 0): copied into x's layout.
    log, x = accumulate_log(lambda x: x.sum().backward())
    assert log[-2:] == ["new_empty_strided.default", "copy_.default"]
    assert x.grad.stride() == (1,) and x.grad.tolist() == [1.0, 1.0]


def test_accumulate_grad_adds_in_place_the_second_time() -> None:
    log, x = accumulate_log(lambda x: (x.sum().backward(), (x * 2).sum().backward()))
    assert log[-1] == "add_.Tensor" and x.grad.tolist() == [3.0, 3.0]


def test_accumulate_grad_under_create_graph_records_copy_backwards() -> None:
    log, x = accumulate_log(lambda x: (x * x).sum().backward(create_graph=True))
    assert log[-2:] == ["new_empty_strided.default", "copy_.default"]
    assert type(x.grad.grad_fn).__name__ == "CopyBackwards"
    x.grad = None  # the grad's graph holds x: break the cycle


def test_a_gradient_the_user_still_holds_is_not_stolen() -> None:
    x = M.tensor([1.0, 2.0], requires_grad=True)
    g = M.ones(2)
    x.backward(g)
    assert x.grad is not g
    g.add_(1.0)
    assert x.grad.tolist() == [1.0, 1.0]


def test_new_empty_strided_geometry_and_errors() -> None:
    x = M.ones(2, dtype=M.float64)
    r = M.ops.aten.new_empty_strided(x, [2, 3], [1, 2])
    assert (tuple(r.shape), r.stride(), r.dtype) == ((2, 3), (1, 2), M.float64)
    with pytest.raises(RuntimeError, match="negative dimension -1"):
        M.ops.aten.new_empty_strided(x, [-1, 2], [1, 1])
    with pytest.raises(RuntimeError, match="mismatch in length of strides and shape"):
        M.ops.aten.new_empty_strided(x, [2], [1, 1])


class Declines(M.Tensor):
    @classmethod
    def __torch_dispatch__(cls, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        return NotImplemented


def test_binary_operator_every_handler_declines_is_pythons_type_error() -> None:
    x = M.Tensor._make_wrapper_subclass(Declines, (2,), dtype=M.float32)
    for f, sym in ((lambda: x + x, "+"), (lambda: x * x, "*"), (lambda: x - x, "-"), (lambda: x / x, "/")):
        with pytest.raises(TypeError, match=f"unsupported operand type\\(s\\) for \\{sym}: 'Declines' and 'Declines'"):
            f()
    # The method form keeps the dispatcher's error.
    with pytest.raises(TypeError, match="Multiple dispatch failed"):
        x.add(x)


RETURNS = [
    ("(Tensor x) -> (Tensor, Tensor)", lambda: (M.ones(1), 3), RuntimeError, "Unable to cast 3 to Tensor"),
    ("(Tensor x) -> (Tensor, Tensor)", lambda: M.ones(1), TypeError,
     "Object of type 'Tensor' is not an instance of 'sequence'"),
    ("(Tensor x) -> Tensor", lambda: 3, RuntimeError, "Unable to cast 3 to Tensor"),
    ("(Tensor x) -> Tensor", lambda: "hello", RuntimeError, "Unable to cast hello to Tensor"),
    ("(Tensor x) -> float", lambda: "a", RuntimeError,
     "Unable to cast Python instance of type <class 'str'> to C++ type '?'"),
    ("(Tensor x) -> int", lambda: 1.5, RuntimeError,
     "Unable to cast Python instance of type <class 'float'> to C++ type '?'"),
    ("(Tensor x) -> Tensor[]", lambda: [M.ones(1), 2], RuntimeError,
     "Unable to cast Python instance of type <class 'list'>"),
]


@pytest.mark.parametrize("schema,ret,exc,msg", RETURNS)
def test_python_kernel_return_errors_are_torchs(schema: str, ret: Any, exc: type, msg: str) -> None:
    lib = M.library.Library("parity_ret", "FRAGMENT")
    name = f"op{abs(hash((schema, msg))) % 10**8}"
    lib.define(name + schema)
    lib.impl(name, lambda x: ret(), "CPU")
    with pytest.raises(exc, match=re.escape(msg)):
        getattr(M.ops.parity_ret, name)(M.ones(1))
    lib._destroy()


@pytest.mark.parametrize("schema,ret,want", [
    ("(Tensor x) -> float", 3, 3.0),
    ("(Tensor x) -> int", True, 1),
    ("(Tensor x) -> bool", 1, True),
])
def test_python_kernel_returns_coerce_as_torchs(schema: str, ret: Any, want: Any) -> None:
    lib = M.library.Library("parity_coerce", "FRAGMENT")
    name = f"op{abs(hash((schema, ret))) % 10**8}"
    lib.define(name + schema)
    lib.impl(name, lambda x: ret, "CPU")
    r = getattr(M.ops.parity_coerce, name)(M.ones(1))
    assert r == want and type(r) is type(want)
    lib._destroy()


class Wrap(M.Tensor):
    @staticmethod
    def __new__(cls, elem: Any) -> Any:
        r = M.Tensor._make_wrapper_subclass(cls, elem.shape, dtype=elem.dtype, device=elem.device)
        r.elem = elem
        return r

    @classmethod
    def __torch_dispatch__(cls, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        def un(x: Any) -> Any:
            return x.elem if isinstance(x, Wrap) else x

        r = func(*[un(x) for x in args], **{k: un(v) for k, v in (kwargs or {}).items()})
        return Wrap(r) if isinstance(r, M.Tensor) else r


def test_inplace_ops_return_self_whatever_the_handler_returned() -> None:
    # torch's Autograd/ADInplaceOrView kernels return `self`; the handler's new wrapper is dropped.
    a = Wrap(M.tensor([1.0, 2.0]))
    b = M.tensor([1.0, 1.0])
    assert a.add_(b) is a and M.ops.aten.add_.Tensor(a, b) is a and a.mul_(2) is a
    assert a.copy_(b) is a
    c = a
    c += b
    assert c is a and a.elem.tolist() == [2.0, 2.0]


def test_augmented_assignment_is_the_inplace_op() -> None:
    a, i = M.ones(2), M.ones(2, dtype=M.int64)
    with Log() as m:
        a += 1
        a *= a
        a /= 2
        a -= i
    assert [e.split("(")[0] for e in m.log] == ["add_.Tensor", "mul_.Tensor", "div_.Tensor", "sub_.Tensor"]
    assert a.tolist() == [1.0, 1.0]
    b = M.ones(2, dtype=M.int64)
    with pytest.raises(RuntimeError, match="result type Float can't be cast to the desired output type Long"):
        b += a


def test_integral_tensor_requiring_grad_has_each_entrys_text() -> None:
    # torch has three texts: the method, the setter, and the factories' requires_grad=.
    with pytest.raises(RuntimeError, match="^only Tensors of floating point dtype can require gradients$"):
        M.tensor([1, 2]).requires_grad_()
    with pytest.raises(RuntimeError, match="^only Tensors of floating point and complex dtype can require"):
        M.tensor([1, 2]).requires_grad = True
    for make in (lambda: M.tensor([1, 2], requires_grad=True),
                 lambda: M.ones(2, dtype=M.int64, requires_grad=True),
                 lambda: M.arange(3, requires_grad=True)):
        with pytest.raises(RuntimeError, match="^Only Tensors of floating point and complex dtype can require"):
            make()
    M.tensor([1, 2]).requires_grad_(False)  # turning it off is always allowed


def test_out_overloads_write_into_out_and_return_it() -> None:
    x, o = M.tensor([1.0, 2.0]), M.empty(2)
    with Log() as m:
        r = M.add(x, x, out=o)
    assert r is o and o.tolist() == [2.0, 4.0]
    assert [e.split("(")[0] for e in m.log] == ["add.out"]  # a mode sees only the .out call
    v = o._version
    assert M.exp(M.zeros(2), out=o) is o and o.tolist() == [1.0, 1.0] and o._version == v + 1
    s = M.empty(())
    assert x.sum(0, out=s) is s and s.item() == 3.0


def test_out_overloads_refuse_autograd_and_bad_outputs() -> None:
    a = M.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"^add\(\): functions with out=\.\.\. arguments don't support"):
        M.add(a, a, out=M.empty(2))
    with M.no_grad():
        assert M.add(a, a, out=M.empty(2)).tolist() == [2.0, 2.0]
    with pytest.raises(RuntimeError, match="result type Float can't be cast to the desired output type Long"):
        M.exp(M.ones(2), out=M.empty(2, dtype=M.int64))
    with pytest.raises(RuntimeError, match="cannot resize an out= tensor"):
        M.exp(M.ones(2), out=M.empty(3))
