"""The custom-op API (issue 12): custom_op, infer_schema, register_kernel/register_fake,
define/impl function forms, opcheck, with their failure paths."""

# Annotations here are the spellings users write (Optional[...], quoted names) on purpose.
# ruff: noqa: UP037, UP045

from __future__ import annotations

import itertools
from typing import Optional

import pytest

import opdispatch as M
from opdispatch import _C, library
from opdispatch._library import custom_ops, fake_impl

T = M.Tensor
_counter = itertools.count()


def fresh_ns() -> str:
    return f"custom_ops_test_{next(_counter)}"


def keys(qualname: str) -> list[str]:
    candidates = ("CPU", "Meta", "CompositeExplicitAutograd", "Autograd", "ADInplaceOrView")
    return [k for k in candidates if _C._dispatch_has_kernel_for_dispatch_key(qualname, k)]


# --- infer_schema -------------------------------------------------------------------------


def test_infer_schema_types_defaults_and_kwonly() -> None:
    def f(
        x: T,
        xs: list[T],
        o: Optional[T],
        n: int,
        ns: list[int],
        s: float = 1.5,
        b: bool = True,
        *,
        name: str = "a",
        dt: M.dtype = M.float32,
        dev: M.device = M.device("cpu"),  # noqa: B008
    ) -> tuple[T, T]:
        raise NotImplementedError

    assert library.infer_schema(f, mutates_args=()) == (
        "(Tensor x, Tensor[] xs, Tensor? o, SymInt n, SymInt[] ns, float s=1.5, bool b=True, *, "
        'str name="a", ScalarType dt=float32, Device dev="cpu") -> (Tensor, Tensor)'
    )


def test_infer_schema_mutates_unknown_and_op_name() -> None:
    def f(x: T, y: Optional[T], n: int) -> None:
        raise NotImplementedError

    assert library.infer_schema(f, mutates_args="unknown") == "(Tensor(a0!) x, Tensor(a1!)? y, SymInt n) -> ()"
    assert library.infer_schema(f, mutates_args={"x"}, op_name="g") == "g(Tensor(a0!) x, Tensor? y, SymInt n) -> ()"


def test_infer_schema_string_annotations() -> None:
    def f(x: "Tensor", n: "Optional[int]") -> "Tensor":  # noqa: F821
        raise NotImplementedError

    assert library.infer_schema(f, mutates_args=()) == "(Tensor x, SymInt? n) -> Tensor"

    def g(x: T | None, n: int | None = None) -> T:
        raise NotImplementedError

    assert library.infer_schema(g, mutates_args=()) == "(Tensor? x, SymInt? n=None) -> Tensor"


@pytest.mark.parametrize(
    ("mutates", "message"),
    [
        (("zz",), "{'zz'} in mutates_args were not found"),
        (("n",), "Parameter n is in mutable_args but only Tensors"),
        ("all", "mutates_args must either be a sequence"),
    ],
)
def test_infer_schema_bad_mutates_args(mutates: object, message: str) -> None:
    def f(x: T, n: int) -> T:
        raise NotImplementedError

    with pytest.raises(ValueError, match=message):
        library.infer_schema(f, mutates_args=mutates)  # type: ignore[arg-type]


def test_infer_schema_annotation_errors() -> None:
    def no_ann(x) -> T:  # type: ignore[no-untyped-def]
        raise NotImplementedError

    def bad(x: dict[str, int]) -> T:
        raise NotImplementedError

    def tup(x: tuple[int, ...]) -> T:
        raise NotImplementedError

    def no_ret(x: T):  # type: ignore[no-untyped-def]
        raise NotImplementedError

    def varargs(*xs: T) -> T:
        raise NotImplementedError

    with pytest.raises(ValueError, match="Parameter x must have a type annotation"):
        library.infer_schema(no_ann, mutates_args=())
    with pytest.raises(ValueError, match="Parameter x has unsupported type"):
        library.infer_schema(bad, mutates_args=())
    with pytest.raises(ValueError, match="We do not support Tuple inputs in schema"):
        library.infer_schema(tup, mutates_args=())
    with pytest.raises(ValueError, match="No return type annotation was provided"):
        library.infer_schema(no_ret, mutates_args=())
    with pytest.raises(ValueError, match="positional-only args, varargs"):
        library.infer_schema(varargs, mutates_args=())
    with pytest.raises(TypeError, match="mutates_args"):
        library.infer_schema(bad)  # type: ignore[call-arg]


# --- custom_op ----------------------------------------------------------------------------


def test_custom_op_defines_calls_and_registers_keys() -> None:
    ns = fresh_ns()

    @library.custom_op(f"{ns}::mul2", mutates_args=())
    def mul2(x: T, k: float = 2.0) -> T:
        return x * k

    assert isinstance(mul2, library.CustomOpDef)
    assert repr(mul2) == f"<CustomOpDef({ns}::mul2)>"
    assert str(mul2._opoverload._schema) == f"{ns}::mul2(Tensor x, float k=2.) -> Tensor"
    assert mul2._opoverload is getattr(M.ops, ns).mul2.default
    assert mul2(M.tensor([1.0, 2.0])).tolist() == [2.0, 4.0]
    assert getattr(M.ops, ns).mul2(M.tensor([1.0]), k=3.0).tolist() == [3.0]
    assert keys(f"{ns}::mul2") == ["Meta", "CompositeExplicitAutograd", "Autograd"]
    assert M.Tag.pt2_compliant_tag in mul2._opoverload.tags


def test_custom_op_device_kernel_and_disable() -> None:
    ns = fresh_ns()

    @library.custom_op(f"{ns}::f", mutates_args=())
    def f(x: T) -> T:
        return x + 1

    f.register_kernel("cpu")(lambda x: x + 2)
    assert f(M.tensor([0.0])).tolist() == [2.0]
    with f.set_kernel_enabled("cpu", enabled=False):
        assert f(M.tensor([0.0])).tolist() == [1.0]
    assert f(M.tensor([0.0])).tolist() == [2.0]
    library.register_kernel(f"{ns}::f", "cpu", lambda x: x + 5)
    assert f(M.tensor([0.0])).tolist() == [5.0]


def test_custom_op_mutation_and_adinplaceorview() -> None:
    ns = fresh_ns()

    @library.custom_op(f"{ns}::addin", mutates_args={"x"})
    def addin(x: T, y: T) -> None:
        x.add_(y)

    t = M.tensor([1.0, 2.0])
    assert addin(t, M.tensor([1.0, 1.0])) is None
    assert t.tolist() == [2.0, 3.0]
    assert "ADInplaceOrView" in keys(f"{ns}::addin")
    # A mutating op returning nothing has a trivial fake impl.
    assert addin(M.empty(2, device="meta"), M.empty(2, device="meta")) is None


def test_custom_op_output_aliasing_input_is_an_error() -> None:
    ns = fresh_ns()

    @library.custom_op(f"{ns}::ident", mutates_args=())
    def ident(x: T) -> T:
        return x.view(-1)

    with pytest.raises(RuntimeError, match="must not also be an input to this custom operator"):
        ident(M.ones(2))

    @library.custom_op(f"{ns}::twice", mutates_args=())
    def twice(x: T) -> tuple[T, T]:
        y = x.clone()
        return y, y.view(-1)

    with pytest.raises(RuntimeError, match="may not alias any inputs to this custom operator or other returns"):
        twice(M.ones(2))

    @library.custom_op(f"{ns}::first", mutates_args=())
    def first(xs: list[T]) -> T:
        return xs[0]

    with pytest.raises(RuntimeError, match="must not also be an input"):
        first([M.ones(1), M.ones(1)])
    # Distinct outputs are fine.
    twice.register_kernel("cpu")(lambda x: (x.clone(), x.clone()))
    assert [t.tolist() for t in twice(M.ones(1))] == [[1.0], [1.0]]


def test_custom_op_fake_impl_on_meta() -> None:
    ns = fresh_ns()

    @library.custom_op(f"{ns}::lin", mutates_args=())
    def lin(x: T, w: T) -> T:
        return x @ w

    with pytest.raises(RuntimeError, match="There was no fake impl registered for"):
        lin(M.empty(2, 3, device="meta"), M.empty(3, 4, device="meta"))

    @lin.register_fake
    def _(x: T, w: T) -> T:
        return M.empty([x.shape[0], w.shape[1]], dtype=x.dtype, device=x.device)

    r = lin(M.empty(2, 3, device="meta"), M.empty(3, 4, device="meta"))
    assert list(r.shape) == [2, 4] and r.is_meta


def test_custom_op_failures_leave_no_operator() -> None:
    ns = fresh_ns()
    with pytest.raises(ValueError, match="in mutates_args were not found"):

        @library.custom_op(f"{ns}::bad", mutates_args={"q"})
        def bad(x: T) -> None:
            raise NotImplementedError

    assert _C._dispatch_get_overload_names(f"{ns}::bad") == []
    with pytest.raises(ValueError, match="The schema suggests that the op mutates"):
        library.custom_op(f"{ns}::s", lambda x: x, mutates_args=(), schema="(Tensor(a!) x) -> ()")


def test_custom_op_redefinition_replaces_the_old_one() -> None:
    ns = fresh_ns()
    first = library.custom_op(f"{ns}::r", lambda x: x + 1, mutates_args=(), schema="(Tensor x) -> Tensor")
    second = library.custom_op(f"{ns}::r", lambda x: x + 10, mutates_args=(), schema="(Tensor x) -> Tensor")
    assert first is not second
    assert getattr(M.ops, ns).r(M.tensor([0.0])).tolist() == [10.0]


def test_register_autograd_rejects_mutating_ops_and_backward_runs_the_formula() -> None:
    ns = fresh_ns()

    @library.custom_op(f"{ns}::m", mutates_args={"x"})
    def m(x: T) -> None:
        raise NotImplementedError

    with pytest.raises(RuntimeError, match="Cannot register autograd formula for non-functional operator"):
        m.register_autograd(lambda ctx, g: g)

    @library.custom_op(f"{ns}::p", mutates_args=())
    def p(x: T) -> T:
        return x.clone()

    x = M.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=f"Trying to backward through {ns}.p.default but no autograd formula"):
        p(x).sum().backward()
    p.register_autograd(lambda ctx, g: g * 3)
    p(x).sum().backward()
    assert x.grad is not None and x.grad.tolist() == [3.0, 3.0]


# --- register_fake / define / impl ---------------------------------------------------------


def test_register_fake_for_a_library_op_and_twice() -> None:
    ns = fresh_ns()
    lib = library.Library(ns, "FRAGMENT")
    try:
        lib.define("op(Tensor x) -> Tensor")
        lib.impl("op", lambda x: x * 3, "CPU")
        with pytest.raises(NotImplementedError, match="attempted to run this operator with Meta tensors"):
            getattr(M.ops, ns).op(M.empty(2, device="meta"))
        library.register_fake(f"{ns}::op", lambda x: M.empty(list(x.shape), device=x.device), lib=lib)
        assert list(getattr(M.ops, ns).op(M.empty(4, device="meta")).shape) == [4]
        with pytest.raises(RuntimeError, match="already has a fake impl registered at"):
            library.register_fake(f"{ns}::op", lambda x: x, lib=lib)
    finally:
        lib._destroy()
    # The library's teardown removed the fake impl too.
    assert fake_impl.holder_for(f"{ns}::op").kernel is None


def test_register_fake_over_a_meta_kernel_and_bad_op() -> None:
    ns = fresh_ns()
    lib = library.Library(ns, "FRAGMENT")
    try:
        lib.define("op(Tensor x) -> Tensor")
        lib.impl("op", lambda x: x, "Meta")
        with pytest.raises(RuntimeError, match="already has a DispatchKey::Meta implementation"):
            library.register_fake(f"{ns}::op", lambda x: x, lib=lib)
        assert fake_impl.holder_for(f"{ns}::op").kernel is None
    finally:
        lib._destroy()
    with pytest.raises(ValueError, match="register_fake\\(3\\): got unexpected type for op: <class 'int'>"):
        library.register_fake(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="register_autograd\\(3\\): got unexpected type for op: <class 'int'>"):
        library.register_autograd(3, lambda ctx, g: g)
    # torch's register_kernel message has no f-string prefix: it prints the braces.
    with pytest.raises(ValueError, match="register_kernel\\(op\\): got unexpected type"):
        library.register_kernel(3, "cpu")  # type: ignore[arg-type]


def test_get_ctx_in_a_meta_kernel_is_an_error() -> None:
    ns = fresh_ns()

    @library.custom_op(f"{ns}::nz", mutates_args=())
    def nz(x: T) -> T:
        return x.clone()

    @nz.register_fake
    def _(x: T) -> T:
        library.get_ctx()
        return x

    with pytest.raises(RuntimeError, match="You're trying to run this operator with meta Tensors"):
        nz(M.empty(2, device="meta"))
    assert library.get_ctx() is None


def test_define_impl_function_forms() -> None:
    ns = fresh_ns()
    lib = library.Library(ns, "FRAGMENT")
    try:
        library.define(f"{ns}::fd", "(Tensor x) -> Tensor", lib=lib, tags=M.Tag.pt2_compliant_tag)
        library.impl(f"{ns}::fd", "cpu", lambda x: x * 2, lib=lib)
        assert getattr(M.ops, ns).fd(M.ones(1)).tolist() == [2.0]
        assert [str(t) for t in getattr(M.ops, ns).fd.default.tags] == ["Tag.pt2_compliant_tag"]
    finally:
        lib._destroy()
    with pytest.raises(ValueError, match='Expected `qualname` to be of the form "namespace::name"'):
        library.define("nonamespace", "(Tensor x) -> Tensor")


# --- opcheck ------------------------------------------------------------------------------


def test_opcheck_good_and_bad_fake() -> None:
    ns = fresh_ns()

    @library.custom_op(f"{ns}::sq", mutates_args=())
    def sq(x: T) -> T:
        return x * x

    sq.register_fake(lambda x: M.empty(list(x.shape), dtype=x.dtype, device=x.device))
    result = library.opcheck(sq, (M.tensor([1.0, 2.0]),))
    assert result == dict.fromkeys(
        ("test_schema", "test_autograd_registration", "test_faketensor", "test_aot_dispatch_dynamic"), "SUCCESS"
    )

    @library.custom_op(f"{ns}::badfake", mutates_args=())
    def badfake(x: T) -> T:
        return x * 2

    badfake.register_fake(lambda x: M.empty([3, 3], dtype=x.dtype, device=x.device))
    res = library.opcheck(badfake, (M.tensor([1.0, 2.0]),), raise_exception=False)
    assert res["test_faketensor"] != "SUCCESS" and res["test_schema"] == "SUCCESS"
    with pytest.raises(library.OpCheckError, match="test_faketensor failed"):
        library.opcheck(badfake, (M.tensor([1.0]),), test_utils="test_faketensor")


def test_opcheck_detects_undeclared_mutation() -> None:
    ns = fresh_ns()
    lib = library.Library(ns, "FRAGMENT")
    try:
        lib.define("sneaky(Tensor x) -> ()")

        def sneaky(x: T) -> None:
            x.add_(M.ones(1))

        lib.impl("sneaky", sneaky, "CPU")
        with pytest.raises(library.OpCheckError, match="is not defined as mutable but was mutated"):
            library.opcheck(getattr(M.ops, ns).sneaky.default, (M.tensor([1.0]),), test_utils="test_schema")
    finally:
        lib._destroy()


def test_opcheck_argument_errors() -> None:
    with pytest.raises(ValueError, match="op must be instance of torch._ops.OpOverload"):
        library.opcheck(lambda x: x, (M.ones(1),))
    ns = fresh_ns()
    op = library.custom_op(f"{ns}::c", lambda x: x.clone(), mutates_args=(), schema="(Tensor x) -> Tensor")
    with pytest.raises(ValueError, match="expected test_utils to be subset of"):
        library.opcheck(op, (M.ones(1),), test_utils="test_nothing")
    assert custom_ops.OPDEFS[f"{ns}::c"] is op


def test_device_types_and_factory_ops_select_the_device_argument() -> None:
    ns = fresh_ns()

    @library.custom_op(f"{ns}::c", mutates_args=(), device_types="cpu")
    def c(x: T) -> T:
        return x + 1

    assert keys(f"{ns}::c") == ["CPU", "Meta", "Autograd"]

    @library.custom_op(f"{ns}::fac", mutates_args=(), device_types="cpu")
    def fac(device: M.device, n: int) -> T:
        return M.ones(n)

    assert fac(M.device("cpu"), 2).tolist() == [1.0, 1.0]
    with pytest.raises(RuntimeError, match="fac does not have a kernel registered for meta"):
        fac(M.device("meta"), 2)
    with pytest.raises(ValueError, match="Functions without tensor inputs are required to have a `device"):

        @library.custom_op(f"{ns}::nodev", mutates_args=(), device_types="cpu")
        def nodev(n: int) -> T:
            return M.ones(n)


def test_opcheck_on_a_mutating_custom_op() -> None:
    ns = fresh_ns()

    @library.custom_op(f"{ns}::mut", mutates_args={"out"})
    def mut(x: T, out: T) -> None:
        out.copy_(x * 2)

    out = M.zeros(2)
    mut(M.ones(2), out)
    assert out.tolist() == [2.0, 2.0]
    result = library.opcheck(mut, (M.ones(2), M.zeros(2)))
    assert set(result.values()) == {"SUCCESS"}
