"""The __torch_function__ protocol: subclass propagation, TorchFunctionMode, the disable guards,
handler ordering and the failure paths (expectations checked against torch 2.15)."""

import threading

import pytest

import opdispatch as o
from opdispatch import _C
from opdispatch.overrides import (
    BaseTorchFunctionMode,
    TorchFunctionMode,
    handle_torch_function,
    has_torch_function,
    has_torch_function_unary,
)


class MyT(o.Tensor):
    pass


class Logger(TorchFunctionMode):
    def __init__(self, tag="m", log=None):
        super().__init__()
        self.tag = tag
        self.log = [] if log is None else log

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.log.append((self.tag, func.__name__, [t.__name__ for t in types]))
        return func(*args, **(kwargs or {}))


@pytest.fixture
def x():
    return o.tensor([[1.0, 2.0], [3.0, 4.0]]).as_subclass(MyT)


@pytest.mark.parametrize(
    "expr",
    [
        "x + x", "x - 1", "1 - x", "x * 2", "2 / x", "x ** 2", "2 ** x", "-x", "abs(x)", "x @ x",
        "x == x", "x < x", "x.sum()", "o.add(x, x)", "x[0]", "x.view(4)", "x.T", "x.mT", "x.clone()",
        "x.to(o.float64)", "x.detach()", "o.ops.aten.add.Tensor(x, x)", "o.ops.aten.add(x, x)",
        "o.cat([x, o.ones(2, 2)])", "x.softmax(0)", "o.zeros_like(x)", "x.double()",
    ],
)
def test_a_subclass_keeps_its_type_through_every_entry(x, expr):
    r = eval(expr)
    assert type(r) is MyT, expr


def test_tuple_results_are_converted_elementwise(x):
    parts = x.split(1)
    assert [type(p) for p in parts] == [MyT, MyT]
    vals, idx = x.topk(1)
    assert type(vals) is MyT and type(idx) is MyT
    assert type(x.topk(1)).__name__ == "topk"


def test_list_results_and_grad_state_survive_the_native_default(x):
    # unbind and chunk return tuples: each element becomes MyT (as torch 2.15).
    assert [type(p) for p in x.unbind(0)] == [MyT, MyT]
    parts = o.chunk(x, 2)
    assert type(parts) is tuple and [type(p) for p in parts] == [MyT, MyT]


class Other(o.Tensor):
    pass


def test_unrelated_subclasses_fall_back_to_the_python_default():
    # Neither class is a subclass of the other, so each default declines (torch 2.15 alike).
    a = o.ones(2).as_subclass(MyT)
    b = o.ones(2).as_subclass(Other)
    with pytest.raises(TypeError, match="unsupported operand"):
        a + b
    with pytest.raises(TypeError, match="Multiple dispatch failed for 'torch.add'"):
        o.add(a, b)
    assert _C._is_torch_function_enabled()


def test_an_overriding_subclass_is_not_short_cut():
    seen = []

    class Sub(MyT):
        @classmethod
        def __torch_function__(cls, func, types, args=(), kwargs=None):
            seen.append(func.__name__)
            return super().__torch_function__(func, types, args, kwargs)

    s = o.ones(2).as_subclass(Sub)
    assert type(s + s) is Sub and seen == ["add"]


def test_a_raising_call_restores_the_state_under_the_native_default(x):
    with pytest.raises(RuntimeError):
        x.view(3)
    assert _C._is_torch_function_enabled()
    assert type(x + 1) is MyT


def test_plain_tensors_stay_plain():
    a = o.ones(2)
    assert type(a + a) is o.Tensor and type(a.sum()) is o.Tensor and type(a[0]) is o.Tensor


def test_mode_sees_the_functions_torch_reports():
    a, b = o.ones(2), o.ones(2)
    with Logger() as m:
        a + b
        1 - a
        a.sum(dim=0)
        o.add(a, b)
        a[0]
        o.ops.aten.mul.Tensor(a, b)
    assert m.log == [
        ("m", "add", []),
        ("m", "__rsub__", ["Tensor"]),
        ("m", "sum", []),
        ("m", "add", []),
        ("m", "__getitem__", []),
        ("m", "mul.Tensor", []),
    ]


def test_func_identity_is_the_public_callable():
    seen = []

    class Capture(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            seen.append(func)
            return func(*args, **(kwargs or {}))

    a = o.ones(2)
    with Capture():
        _ = a + a
        _ = a < a
        a.sum()
        o.sum(a)
        o.ops.aten.add.Tensor(a, a)
    assert seen[0] is o.Tensor.add
    assert seen[1] is o.Tensor.lt
    assert seen[2] is o.Tensor.sum
    assert seen[3] is o.sum
    assert seen[4] is o.ops.aten.add.Tensor


def test_nested_modes_run_innermost_first_each_popped_for_its_handler():
    log = []
    a = o.ones(2)
    with Logger("outer", log), Logger("inner", log):
        a + a
        assert _C._len_torch_function_stack() == 2
    assert log == [("inner", "add", []), ("outer", "add", [])]
    assert _C._len_torch_function_stack() == 0


def test_subclasses_come_before_superclasses_and_each_type_once():
    log = []

    class A(o.Tensor):
        @classmethod
        def __torch_function__(cls, func, types, args=(), kwargs=None):
            log.append((cls.__name__, [t.__name__ for t in types]))
            return super().__torch_function__(func, types, args, kwargs)

    class B(A):
        pass

    base = o.ones(2)
    p, q = base.as_subclass(A), base.as_subclass(B)
    r = o.add(p, q)
    assert log == [("B", ["B", "A"])] and type(r) is B
    log.clear()
    o.add(p, p)
    assert log == [("A", ["A"])]


def test_mode_runs_before_the_subclass():
    log = []

    class A(o.Tensor):
        @classmethod
        def __torch_function__(cls, func, types, args=(), kwargs=None):
            log.append("A")
            return super().__torch_function__(func, types, args, kwargs)

    p, q = o.ones(2).as_subclass(A), o.ones(2)
    with Logger("m", log):
        r = p + q
    assert log == [("m", "add", ["A"]), "A"] and type(r) is A


def test_disable_guards():
    p = o.ones(2).as_subclass(MyT)
    with _C.DisableTorchFunctionSubclass():
        assert not _C._is_torch_function_enabled()
        assert type(p + p) is o.Tensor
        with Logger() as m:
            p + p
        assert m.log == [("m", "add", [])]  # modes still run
    assert _C._is_torch_function_enabled()
    with _C.DisableTorchFunction():
        with Logger() as m:
            r = p + p
        assert m.log == [] and type(r) is o.Tensor
    assert type(p + p) is MyT


def test_guard_restores_state_when_the_block_raises():
    with pytest.raises(ValueError):
        with _C.DisableTorchFunctionSubclass():
            raise ValueError
    assert _C._is_torch_function_enabled()


def test_handler_that_raises_leaves_the_stack_as_it_was():
    class Boom(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        with Boom():
            o.ones(2) + o.ones(2)
    assert _C._len_torch_function_stack() == 0
    assert type(o.ones(2) + o.ones(2)) is o.Tensor


def test_all_handlers_declining_gives_torchs_type_error():
    class N(o.Tensor):
        @classmethod
        def __torch_function__(cls, func, types, args=(), kwargs=None):
            return NotImplemented

    y = o.ones(2).as_subclass(N)
    with pytest.raises(TypeError) as e:
        y.sum()
    assert str(e.value).splitlines()[0] == (
        "Multiple dispatch failed for 'torch.Tensor.sum'; all __torch_function__ handlers returned NotImplemented:"
    )
    assert "  - tensor subclass <class" in str(e.value)
    with pytest.raises(TypeError, match="'torch.add'"):
        o.add(y, y)
    with pytest.raises(TypeError, match="'torch.opsaten.add'"):
        o.ops.aten.add.Tensor(y, y)
    # Operators turn it into NotImplemented, so Python reports the operand types.
    with pytest.raises(TypeError, match="unsupported operand type"):
        y + y
    with pytest.raises(TypeError, match=r"no implementation found for 'torch._tensor.split'"):
        y.split(1)


def test_a_declining_mode_is_named_in_the_error():
    class Decline(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            return NotImplemented

    with Decline():
        with pytest.raises(TypeError, match="  - mode object <"):
            o.ones(2).sum()


def test_mode_without_handler_raises_not_implemented():
    with TorchFunctionMode():
        with pytest.raises(NotImplementedError):
            o.ones(2).sum()
    assert _C._len_torch_function_stack() == 0


def test_base_mode_runs_everything_unchanged():
    with BaseTorchFunctionMode():
        assert (o.ones(2) + 1).tolist() == [2.0, 2.0]


def test_the_mode_stack_is_per_thread():
    seen = []
    with Logger():
        t = threading.Thread(target=lambda: seen.append(_C._len_torch_function_stack()))
        t.start()
        t.join()
    assert seen == [0]


def test_has_torch_function_and_handle_torch_function():
    a = o.ones(2)
    p = a.as_subclass(MyT)
    assert not has_torch_function((a, 1, None))
    assert has_torch_function((a, p)) and has_torch_function_unary(p)

    def public(t):
        if has_torch_function_unary(t):
            return handle_torch_function(public, (t,), t)
        return t * 3

    assert type(public(p)) is MyT and public(p).tolist() == [3.0, 3.0]


def test_disabled_impl_opts_out():
    class W(o.Tensor):
        __torch_function__ = _C._disabled_torch_function_impl

    w = o.ones(2).as_subclass(W)
    assert not has_torch_function((w,))
    assert type(w + w) is o.Tensor


def test_as_subclass_stays_on_the_autograd_graph():
    a = o.ones(2, requires_grad=True)
    b = a.as_subclass(MyT)
    assert type(b.grad_fn).__name__ == "AliasBackward0" and not b.is_leaf
    x = o.tensor([1.0, 2.0]).as_subclass(MyT).requires_grad_()
    y = (x * 2).sum()
    assert type(y) is MyT
    y.backward()
    assert x.grad.tolist() == [2.0, 2.0]


def test_subclass_repr_uses_the_class_name():
    assert repr(o.tensor([[1.0, 2.0], [3.0, 4.0]]).as_subclass(MyT)) == "MyT([[1., 2.],\n     [3., 4.]])"
