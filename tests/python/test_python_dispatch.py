"""TorchDispatchMode, the Python-key fallback, wrapper subclasses and register_torch_dispatch."""

import threading

import pytest

import opdispatch as M
from opdispatch import _C, library
from opdispatch.library import _scoped_library
from opdispatch.utils import _python_dispatch as pd

PY = _C.DispatchKey.Python


class Log(pd.TorchDispatchMode):
    def __init__(self, tag=None, sink=None):
        super().__init__()
        self.tag = tag
        self.log = [] if sink is None else sink

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.log.append(str(func) if self.tag is None else f"{self.tag} {func}")
        return func(*args, **(kwargs or {}))


class W(M.Tensor):
    """A wrapper subclass: the data lives in ``elem``."""

    # As torch's own wrapper subclasses: results come from __torch_dispatch__ unconverted.
    __torch_function__ = _C._disabled_torch_function_impl

    @staticmethod
    def __new__(cls, elem):
        r = M.Tensor._make_wrapper_subclass(cls, elem.shape, dtype=elem.dtype, device=elem.device)
        r.elem = elem
        return r

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        def un(x):
            if isinstance(x, (list, tuple)):
                return type(x)(un(y) for y in x)
            return x.elem if isinstance(x, W) else x

        def wr(x):
            return W(x) if isinstance(x, M.Tensor) and not isinstance(x, W) else x

        out = func(*[un(a) for a in args], **{k: un(v) for k, v in (kwargs or {}).items()})
        return tuple(wr(x) for x in out) if isinstance(out, tuple) else wr(out)

    def __tensor_flatten__(self):
        return ["elem"], None

    @staticmethod
    def __tensor_unflatten__(inner, ctx, outer_size, outer_stride):
        return W(inner["elem"])


def test_mode_logs_ops_with_their_overloads_and_python_keys_in_tls():
    a, b = M.tensor([1.0, 2.0]), M.tensor([3.0, 4.0])
    assert not _C._dispatch_tls_is_dispatch_key_included(PY)
    with Log() as m:
        assert _C._dispatch_tls_is_dispatch_key_included(PY)
        assert _C._dispatch_tls_is_dispatch_key_included(_C.DispatchKey.PythonTLSSnapshot)
        r = (a + b) * 2 - a.sum()
    assert m.log == ["aten.add.Tensor", "aten.mul.Tensor", "aten.sum.default", "aten.sub.Tensor"]
    assert r.tolist() == [5.0, 9.0]
    assert not _C._dispatch_tls_is_dispatch_key_included(PY)
    assert pd._len_torch_dispatch_stack() == 0


def test_nested_modes_run_innermost_first_and_reentrancy_pops_the_mode():
    sink, seen = [], []

    class Peek(pd.TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            seen.append((type(pd._get_current_dispatch_mode()).__name__, pd._len_torch_dispatch_stack()))
            seen.append(_C._dispatch_tls_is_dispatch_key_included(PY))
            return func(*args, **(kwargs or {}))

    a = M.ones(2)
    with Log("outer", sink), Peek():
        a + a
    # Peek ran with itself popped (Log left on the stack), then Log saw the same op.
    assert seen == [("Log", 1), True]
    assert sink == ["outer aten.add.Tensor"]
    with Log("A", sink) as ma, Log("B", sink) as mb:
        assert pd._get_current_dispatch_mode_stack() == [ma, mb]
        a * a
    assert sink[-2:] == ["B aten.mul.Tensor", "A aten.mul.Tensor"]


def test_handler_exception_propagates_unchanged_and_the_stack_is_restored():
    err = ValueError("boom")

    class Boom(pd.TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            raise err

    a = M.ones(1)
    mode = Boom()
    with pytest.raises(ValueError) as info:
        with mode:
            try:
                a + a
            finally:
                # Still inside the with block: the handler's pop was undone.
                assert pd._get_current_dispatch_mode() is mode
    assert info.value is err
    assert pd._len_torch_dispatch_stack() == 0
    assert not _C._dispatch_tls_is_dispatch_key_included(PY)
    assert (a + a).tolist() == [2.0]


def test_handler_returning_the_wrong_type_raises():
    class Bad(pd.TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            return "not a tensor"

    a = M.ones(1)
    with pytest.raises(RuntimeError), Bad():
        a + a
    assert pd._len_torch_dispatch_stack() == 0


def test_all_handlers_declining_raises_torchs_type_error():
    class NI(pd.TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            return NotImplemented

    class Declines(W):
        @classmethod
        def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
            return NotImplemented

    d = Declines(M.ones(1))
    with pytest.raises(TypeError) as info, NI():
        M.ops.aten.add.Tensor(d, d)
    msg = str(info.value)
    assert msg.startswith("Multiple dispatch failed for 'opdispatch.ops.aten.add.Tensor'; all __torch_dispatch__")
    assert "  - mode object <" in msg and "  - tensor subclass <class" in msg and "Declines" in msg


def test_mode_declining_moves_on_to_the_subclass():
    class NI(pd.TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.seen.append(types)
            # The mode is back on the stack while the subclass runs: it sees the inner call too.
            return NotImplemented if types else func(*args, **(kwargs or {}))

    w = W(M.tensor([1.0, 2.0]))
    with NI() as m:
        m.seen = []
        r = w + w
    assert m.seen == [(W,), ()]
    assert type(r) is W and r.elem.tolist() == [2.0, 4.0]


def test_overloaded_args_put_subclasses_before_their_bases():
    order = []

    class A(W):
        @classmethod
        def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
            order.append((cls.__name__, [t.__name__ for t in types]))
            return NotImplemented if cls is B else 0

    class B(A):
        pass

    a, b = A(M.ones(1)), B(M.ones(1))
    with pytest.raises(RuntimeError):  # 0 is not a Tensor: the result check still applies
        M.ops.aten.add.Tensor(a, b)
    assert order == [("B", ["B", "A"]), ("A", ["B", "A"])]


def test_modes_are_per_thread():
    seen = []
    a = M.ones(1)
    with Log() as m:

        def other():
            seen.append(pd._get_current_dispatch_mode())
            seen.append(_C._dispatch_tls_is_dispatch_key_included(PY))
            a + a

        t = threading.Thread(target=other)
        t.start()
        t.join()
    assert seen == [None, False] and m.log == []


def test_push_pop_and_disable_current_modes():
    with pytest.raises(RuntimeError, match="trying to pop from empty mode stack"):
        pd._pop_mode()
    m = Log()
    pd._push_mode(m)
    try:
        with pd._disable_current_modes() as old:
            assert old == [m] and pd._get_current_dispatch_mode() is None
            M.ones(1) + 1
        with pd._pop_mode_temporarily() as popped:
            assert popped is m
    finally:
        assert pd._pop_mode() is m
    assert m.log == []


def test_classmethod_handler_on_a_mode_is_rejected():
    class Cm(pd.TorchDispatchMode):
        @classmethod
        def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
            return func(*args, **(kwargs or {}))

    with pytest.raises(RuntimeError, match="as a classmethod is not supported"), Cm():
        M.ones(1) + 1

    class Sm(pd.TorchDispatchMode):
        @staticmethod
        def __torch_dispatch__(func, types, args=(), kwargs=None):
            return func(*args, **(kwargs or {}))

    with pytest.raises(RuntimeError, match="as a classmethod is not supported"), Sm():
        M.ones(1) + 1


def test_an_instance_attribute_handler_wins_like_attribute_lookup():
    seen = []
    m = Log()
    m.__torch_dispatch__ = lambda func, types, args=(), kwargs=None: seen.append(str(func))
    # A plain function in the instance dict is not bound to the mode: PyTorch rejects it.
    with pytest.raises(RuntimeError, match="as a classmethod is not supported"), m:
        M.ones(1)
    assert seen == [] and m.log == []


def test_wrapper_subclass_metadata_errors_and_repr():
    w = W(M.tensor([[1.0, 2.0, 3.0]]))
    assert (type(w), list(w.shape), w.dtype, str(w.device)) == (W, [1, 3], M.float32, "cpu")
    assert _C._dispatch_keys(w).has(PY) and not _C._dispatch_keys(w.elem).has(PY)
    with pytest.raises(RuntimeError, match=r"\.tolist\(\) is not supported for tensor subclasses, got W"):
        w.tolist()
    assert repr(w) == "W(..., size=(1, 3), dtype=opdispatch.float32, device='cpu')"

    class NoTd(M.Tensor):
        pass

    with pytest.raises(TypeError, match="NoTd must define __torch_dispatch__"):
        M.Tensor._make_wrapper_subclass(NoTd, (2,))
    with pytest.raises(TypeError, match="cls must be a type"):
        M.Tensor._make_wrapper_subclass(3, (2,))


def test_handler_printing_its_arguments_does_not_recurse():
    lines = []

    class Loud(W):
        @classmethod
        def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
            lines.append(repr(args))
            return super().__torch_dispatch__(func, types, args, kwargs)

    x = Loud(M.ones(2))
    assert type(x * x) is W
    assert "Loud(..., size=(2,)" in lines[0]


def test_wrapper_subclass_works_for_views_reductions_lists_and_library_ops(ns):
    w = W(M.tensor([[1.0, 2.0], [3.0, 4.0]]))
    assert w.t().elem.tolist() == [[1.0, 3.0], [2.0, 4.0]]
    assert w.sum(0).elem.tolist() == [4.0, 6.0]
    assert M.cat([w, w]).elem.tolist() == [[1.0, 2.0], [3.0, 4.0], [1.0, 2.0], [3.0, 4.0]]
    with _scoped_library(ns, "FRAGMENT") as lib:
        lib.define("f(Tensor x, Tensor y) -> Tensor")
        lib.impl("f", lambda x, y: x * y, "CPU")
        r = getattr(M.ops, ns).f(w, M.ones(2))
    assert type(r) is W and r.elem.tolist() == [[1.0, 2.0], [3.0, 4.0]]


def test_traceable_wrapper_subclass_helpers():
    w = W(M.ones(2))
    assert pd.is_traceable_wrapper_subclass(w)
    assert not pd.is_traceable_wrapper_subclass(M.ones(2))
    assert pd.is_traceable_wrapper_subclass_type(W)
    t = pd.transform_subclass(w, lambda name, inner: inner * 3)
    assert type(t) is W and t.elem.tolist() == [3.0, 3.0]


def test_as_subclass_runs_no_constructor_and_keeps_the_python_key():
    class Sub(W):
        def __init__(self, *a, **k):
            raise AssertionError("not called")

    s = M.ones(2).as_subclass(Sub)
    assert type(s) is Sub and _C._dispatch_keys(s).has(PY)
    with pytest.raises(RuntimeError, match="does not inherit from Tensor"):
        M.ones(1).as_subclass(int)


def test_python_kernels_run_hermetic_only_without_a_mode_or_subclass(ns):
    seen = []
    with _scoped_library(ns, "FRAGMENT") as lib:
        lib.define("g(Tensor x) -> Tensor")

        def k(x):
            seen.append((_C._is_hermetic_pyobject_enabled(), x))
            return x

        lib.impl("g", k, "CPU")
        lib.impl("g", k, "Python")
        g = getattr(M.ops, ns).g
        a = M.ones(1)
        g(a)
        # No mode, no subclass: the CPU kernel ran hermetic (a fresh object).
        assert seen[-1][0] is True and seen[-1][1] is not a
        # Under a mode the Python-key kernel runs, non-hermetic: it gets the preserved object.
        with Log() as m:
            r = g(a)
        assert r is a and seen[-1] == (False, a) and m.log == []


def test_python_key_kernel_and_library_op_under_a_mode(ns):
    with _scoped_library(ns, "FRAGMENT") as lib:
        lib.define("p(Tensor x) -> Tensor")
        lib.impl("p", lambda x: x + 100, "CPU")
        lib.impl("p", lambda x: x * 0, "Python")
        p = getattr(M.ops, ns).p
        a = M.tensor([1.0])
        assert p(a).tolist() == [101.0]
        with Log() as m:
            assert p(a).tolist() == [0.0]
        assert m.log == ["aten.mul.Tensor"]
        lib.define("q(Tensor x) -> Tensor")
        lib.impl("q", lambda x: x * 2, "CPU")
        with Log() as m:
            getattr(M.ops, ns).q(a)
        assert m.log == [f"{ns}.q.default"]


def test_register_torch_dispatch_rules_and_their_removal(ns):
    class RuleMode(Log):
        pass

    calls = []
    with _scoped_library(ns, "FRAGMENT") as lib:
        lib.define("h(Tensor x) -> Tensor")
        lib.impl("h", lambda x: x + 1, "CPU")
        h = getattr(M.ops, ns).h

        def rule(mode, func, types, args, kwargs):
            calls.append((type(mode).__name__, str(func)))
            return args[0] * 10

        library.register_torch_dispatch(f"{ns}::h", RuleMode, rule, lib=lib)
        with pytest.raises(RuntimeError, match="already has a `__torch_dispatch__` rule registered"):
            library.register_torch_dispatch(h.default, RuleMode, rule, lib=lib)
        a = M.tensor([1.0])
        with RuleMode() as m:
            assert h(a).tolist() == [10.0]
        # The rule runs with the mode popped, like its __torch_dispatch__ would.
        assert calls == [("RuleMode", f"{ns}.h.default")] and m.log == []
        with Log() as other:
            assert h(a).tolist() == [2.0]
        assert other.log == [f"{ns}.h.default"]

        @library.register_torch_dispatch(f"{ns}::h", W, lib=lib)
        def wrule(cls, func, types, args, kwargs):
            return W(args[0].elem - 1)

        assert h(W(a)).elem.tolist() == [0.0]
    assert f"{ns}::h" not in _C._torch_dispatch_rules


def test_numbers_bind_as_wrapped_tensors_like_torchs_bindings():
    a = M.tensor([1.0, 2.0])
    with Log() as m:
        a + 1
        2 * a
        a.add(1)
        M.mul(a, 2)
        b = a.clone().sub_(1)
    assert m.log == ["aten.add.Tensor", "aten.mul.Tensor", "aten.add.Tensor", "aten.mul.Tensor"] + [
        "aten.clone.default",
        "aten.sub_.Tensor",
    ]
    assert b.tolist() == [0.0, 1.0]
    # A wrapped number does not promote: an int tensor plus a float is float32, plus an int stays int64.
    assert (M.tensor([1, 2]) + 2.5).dtype == M.float32 and (M.tensor([1, 2]) + 1).dtype == M.int64


def test_wrapper_subclass_requires_grad_goes_through_autograd():
    if hasattr(M.Tensor, "requires_grad"):
        w = M.Tensor._make_wrapper_subclass(W, (2,), requires_grad=True)
        assert w.requires_grad
    else:
        with pytest.raises(NotImplementedError, match="needs autograd"):
            M.Tensor._make_wrapper_subclass(W, (2,), requires_grad=True)


def test_multiple_returns_through_a_wrapper_subclass():
    w = W(M.tensor([[1.0, 5.0], [3.0, 2.0]]))
    values, indices = w.max(0)
    assert (type(values), type(indices)) == (W, W)
    assert values.elem.tolist() == [3.0, 5.0] and indices.elem.tolist() == [1, 0]
    assert float(w.sum()) == 11.0


def test_factories_pass_the_default_device_and_pin_memory_like_torchs_bindings():
    seen = []

    class K(pd.TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            seen.append((str(func), args, {k: str(v) for k, v in (kwargs or {}).items()}))
            return func(*args, **(kwargs or {}))

    with K():
        M.ones(2)
        M.zeros(1, dtype=M.float64)
    assert seen == [
        ("aten.ones.default", ([2],), {"device": "cpu", "pin_memory": "False"}),
        ("aten.zeros.default", ([1],), {"dtype": "opdispatch.float64", "device": "cpu", "pin_memory": "False"}),
    ]


def test_return_and_correct_aliasing_returns_the_mutated_input():
    class A(W):
        @classmethod
        def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
            raw = [x.elem if isinstance(x, W) else x for x in args]
            out = func(*raw, **(kwargs or {}))
            wrapped = tuple(A(o) for o in out) if isinstance(out, tuple) else A(out)
            return pd.return_and_correct_aliasing(func, args, kwargs, wrapped)

    a = A(M.tensor([1.0, 2.0]))
    r = a.add_(1)
    assert r is a and a.elem.tolist() == [2.0, 3.0]
    s = a + 1
    assert s is not a and type(s) is A
    values, _ = A(M.tensor([[1.0, 3.0]])).max(1)
    assert values.elem.tolist() == [3.0]


def test_reflected_operators_dispatch_like_torchs():
    a = M.tensor([1.0, 2.0, 4.0])
    with Log() as m:
        r = 1 - a
        q = 2 / a
    assert m.log == ["aten.rsub.Scalar", "aten.reciprocal.default", "aten.mul.Tensor"]
    assert r.tolist() == [0.0, -1.0, -3.0] and q.tolist() == [2.0, 1.0, 0.5]
    assert (1 / M.tensor([2, 4])).tolist() == [0.5, 0.25]
    assert M.rsub(a, a, alpha=2).tolist() == [-1.0, -2.0, -4.0] and a.reciprocal().tolist() == [1.0, 0.5, 0.25]


def test_matmul_decomposes_into_mm_mv_and_dot():
    a, v = M.tensor([[1.0, 2.0], [3.0, 4.0]]), M.tensor([1.0, 1.0])
    with Log() as m:
        a @ a
        a @ v
        v @ v
    assert m.log == ["aten.mm.default", "aten.mv.default", "aten.dot.default"]
