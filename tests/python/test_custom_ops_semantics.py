"""Custom-op semantics that follow torch 2.15 closely (issue 12): version counters of mutated
arguments, the native device kernel's behaviour, view ops, setup_context's inputs with defaults
and keyword-only inputs, opcheck's autograd registration check, register_vmap."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

import opdispatch as M
from opdispatch import _C, library
from opdispatch._library import custom_ops, fake_impl

T = M.Tensor
_counter = itertools.count()


def fresh_ns() -> str:
    return f"custom_ops_sem_{next(_counter)}"


# --- mutation: version counters ------------------------------------------------------------


def test_mutated_argument_version_bumps_once_per_call_plus_the_kernels_own() -> None:
    ns = fresh_ns()

    @library.custom_op(f"{ns}::fill_out", mutates_args={"out"})
    def fill_out(x: T, out: T) -> None:
        # The op bumps `out` once, and the kernel's two in-place writes bump it again (only
        # the autograd keys are excluded inside), as in torch 2.15: 3 per call.
        out.copy_(x)
        out.mul_(2.0)

    try:
        x, out = M.tensor([1.0, 2.0]), M.zeros(2)
        v0, vx = out._version, x._version
        fill_out(x, out)
        assert out.tolist() == [2.0, 4.0]
        assert out._version == v0 + 3
        assert x._version == vx  # not mutated: untouched
        getattr(M.ops, ns).fill_out(x, out)
        assert out._version == v0 + 6
        with M.no_grad():  # version counters move under no_grad too
            fill_out(x, out)
        assert out._version == v0 + 9
    finally:
        fill_out._lib._destroy()


def test_mutated_tensor_list_and_several_arguments() -> None:
    ns = fresh_ns()

    @library.custom_op(f"{ns}::zero_all", mutates_args={"xs", "y"})
    def zero_all(xs: list[T], y: T, z: T) -> None:
        for t in xs:
            t.zero_()
        y.zero_()

    try:
        a, b, y, z = M.ones(2), M.ones(3), M.ones(1), M.ones(1)
        before = [t._version for t in (a, b, y, z)]
        zero_all([a, b], y, z)
        assert [t._version - v for t, v in zip((a, b, y, z), before, strict=True)] == [2, 2, 2, 0]
        assert a.tolist() == [0.0, 0.0] and y.tolist() == [0.0]
    finally:
        zero_all._lib._destroy()


def test_saved_tensor_mutated_by_a_custom_op_is_detected_in_backward() -> None:
    ns = fresh_ns()

    @library.custom_op(f"{ns}::scale_", mutates_args={"x"})
    def scale_(x: T) -> None:
        x.mul_(3.0)

    try:
        w = M.tensor([1.0, 2.0], requires_grad=True)
        buf = M.tensor([1.0, 1.0])
        y = (w * buf).sum()  # saves buf for backward
        scale_(buf)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            y.backward()
    finally:
        scale_._lib._destroy()


def test_mutating_op_keys_and_meta_call() -> None:
    ns = fresh_ns()

    @library.custom_op(f"{ns}::bump", mutates_args={"x"})
    def bump(x: T) -> None:
        x.add_(1.0)

    try:
        name = f"{ns}::bump"
        assert _C._dispatch_has_kernel_for_dispatch_key(name, "ADInplaceOrView")
        m = M.empty(2, device="meta")
        v = m._version
        assert bump(m) is None  # trivial fake impl
        assert m._version == v + 1
    finally:
        bump._lib._destroy()
    assert _C._dispatch_get_overload_names(name) == []


# --- the native device kernel --------------------------------------------------------------


def test_device_kernel_swaps_disables_and_checks_aliasing() -> None:
    ns = fresh_ns()

    @library.custom_op(f"{ns}::f", mutates_args=())
    def f(x: T, k: float = 1.0) -> T:
        return x * k

    try:
        x = M.tensor([1.0, 2.0])
        assert f(x).tolist() == [1.0, 2.0]
        assert f(x, k=3.0).tolist() == [3.0, 6.0]
        f.register_kernel("cpu")(lambda x, k=1.0: x * (k + 1))
        assert f(x, 2.0).tolist() == [3.0, 6.0]
        with f.set_kernel_enabled("cpu", False):
            assert f(x, 2.0).tolist() == [2.0, 4.0]
        assert f(x, 2.0).tolist() == [3.0, 6.0]
        f.register_kernel("cpu")(lambda x, k=1.0: x)
        with pytest.raises(RuntimeError, match=r"^f \(with implementation in <module .*\): The output of this custom"):
            f(x)
        f.register_kernel("cpu")(lambda x, k=1.0: (x.clone(), x.clone()))
        with pytest.raises(RuntimeError, match=r"^Unable to cast \(tensor"):
            f(x)
        f.register_kernel("cpu")(lambda x, k=1.0: x + k)
        # Errors left nothing behind: the op still works.
        assert f(x).tolist() == [2.0, 3.0]
        # The kernel object called directly (not through the dispatcher) does the same checks.
        backend = custom_ops.CustomOpDef._backend_impl(f, "cpu")
        assert backend(x, 1.0).tolist() == [2.0, 3.0]
    finally:
        f._lib._destroy()


def test_view_op_with_explicit_schema_may_return_a_view() -> None:
    ns = fresh_ns()

    @library.custom_op(f"{ns}::alias", mutates_args=(), schema="(Tensor(a) x) -> Tensor(a)")
    def alias(x: T) -> T:
        return x.view(-1)

    try:
        x = M.ones(2, 2)
        y = alias(x)
        assert list(y.shape) == [4]
        assert _C._storage_id(y) == _C._storage_id(x)
        # One tensor in, one tensor out: a valid view, so register_autograd accepts it.
        alias.register_autograd(lambda ctx, g: g.view(2, 2))
    finally:
        alias._lib._destroy()


# --- register_autograd: setup_context inputs -----------------------------------------------


def test_setup_context_sees_defaults_the_dispatcher_dropped() -> None:
    ns = fresh_ns()
    seen: list[Any] = []

    @library.custom_op(f"{ns}::scale", mutates_args=())
    def scale(x: T, factor: float = 2.0, flag: bool = False) -> T:
        return x * factor

    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
        seen.append(inputs[1:])
        ctx.factor = inputs[1]

    scale.register_autograd(lambda ctx, g: (g * ctx.factor, None, None), setup_context=setup_context)
    try:
        x = M.ones(2, requires_grad=True)
        scale(x).sum().backward()
        assert seen[-1] == (2.0, False)
        assert x.grad is not None and x.grad.tolist() == [2.0, 2.0]
        scale(x, 3.0)
        assert seen[-1] == (3.0, False)
        scale(x, flag=True)
        assert seen[-1] == (2.0, True)
    finally:
        scale._lib._destroy()


def test_setup_context_gets_keyword_only_inputs() -> None:
    ns = fresh_ns()
    seen: list[Any] = []

    @library.custom_op(f"{ns}::mul", mutates_args=())
    def mul(x: T, *, val: float = 1.5, other: int = 3) -> T:
        return x * val

    def setup_context(ctx: Any, inputs: tuple[Any, ...], keyword_only_inputs: dict[str, Any], output: Any) -> None:
        seen.append((len(inputs), keyword_only_inputs))
        ctx.val = keyword_only_inputs["val"]

    mul.register_autograd(lambda ctx, g: g * ctx.val, setup_context=setup_context)
    try:
        x = M.ones(2, requires_grad=True)
        mul(x, val=4.0).sum().backward()
        assert seen[-1] == (1, {"val": 4.0, "other": 3})
        assert x.grad is not None and x.grad.tolist() == [4.0, 4.0]
        mul(x)
        assert seen[-1] == (1, {"val": 1.5, "other": 3})
    finally:
        mul._lib._destroy()


def test_backward_returning_the_wrong_number_of_gradients() -> None:
    ns = fresh_ns()

    @library.custom_op(f"{ns}::two", mutates_args=())
    def two(x: T, y: T, k: float = 1.0) -> T:
        return x * y * k

    two.register_autograd(lambda ctx, g: (g, g, g, g))
    try:
        x, y = M.ones(2, requires_grad=True), M.ones(2)
        with pytest.raises(
            RuntimeError,
            match=r"The backward formula for .*two\.default returned an incorrect number of gradients "
            r"\(expected 2 or 3, got 4\)",
        ):
            two(x, y).sum().backward()
        # One gradient per positional input (defaults included) is accepted too.
        two.register_autograd(lambda ctx, g: (g, None, None))
        x.grad = None
        two(x, y).sum().backward()
        assert x.grad is not None and x.grad.tolist() == [1.0, 1.0]
    finally:
        two._lib._destroy()


def test_backward_without_a_formula() -> None:
    ns = fresh_ns()

    @library.custom_op(f"{ns}::nof", mutates_args=())
    def nof(x: T) -> T:
        return x.clone()

    try:
        x = M.ones(2, requires_grad=True)
        y = nof(x)
        assert y.requires_grad
        with pytest.raises(RuntimeError, match="no autograd formula was registered"):
            y.sum().backward()
    finally:
        nof._lib._destroy()


# --- register_fake --------------------------------------------------------------------------


def test_register_fake_on_a_custom_op_replaces_and_library_twice_is_an_error() -> None:
    ns = fresh_ns()

    @library.custom_op(f"{ns}::g", mutates_args=())
    def g(x: T) -> T:
        return x.clone()

    try:
        g.register_fake(lambda x: M.empty(list(x.shape), device="meta"))
        g.register_fake(lambda x: M.empty([7], device="meta"))  # a custom op's fake: replaced
        assert g(M.empty(2, device="meta")).shape == (7,)
    finally:
        g._lib._destroy()
    lib = library.Library(ns, "FRAGMENT")
    try:
        lib.define("h(Tensor x) -> Tensor")
        library.register_fake(f"{ns}::h", lambda x: x, lib=lib)
        already = rf"register_fake\(...\): the operator {ns}::h already has a fake impl registered at .*\.py:\d+"
        with pytest.raises(RuntimeError, match=already):
            library.register_fake(f"{ns}::h", lambda x: x, lib=lib)
        holder = fake_impl.holder_for(f"{ns}::h")
        with pytest.raises(RuntimeError, match="Unable to directly set kernel."):
            holder.kernel = None
        assert len(holder.kernels) == 1  # the failed registration left nothing
        # allow_override: the newest fake impl runs; destroying its library restores the first.
        other = library.Library(ns, "FRAGMENT")
        try:
            library.register_fake(f"{ns}::h", lambda x: M.empty([5], device="meta"), lib=other, allow_override=True)
            assert len(holder.kernels) == 2
            assert list(getattr(M.ops, ns).h(M.empty(2, device="meta")).shape) == [5]
        finally:
            other._destroy()
        assert len(holder.kernels) == 1
        m = M.empty(3, device="meta")
        assert getattr(M.ops, ns).h(m) is m
    finally:
        lib._destroy()
    assert f"{ns}::h" not in fake_impl._holders


# --- opcheck: test_autograd_registration ----------------------------------------------------


def test_opcheck_autograd_registration_catches_a_graph_built_in_a_backend_kernel() -> None:
    ns = fresh_ns()
    lib = library.Library(ns, "FRAGMENT")
    try:
        lib.define("bad(Tensor x) -> Tensor")
        lib.impl("bad", lambda x: x * 2, "CPU")  # builds a graph at a backend key
        op = getattr(M.ops, ns).bad.default
        x = M.ones(2, requires_grad=True)
        res = library.opcheck(op, (x,), test_utils="test_autograd_registration", raise_exception=False)
        err = res["test_autograd_registration"]
        assert isinstance(err, AssertionError)
        assert str(err).startswith(
            f"{ns}::bad: at least one output of this operator has requires_grad=True but the operator "
            "does not have an autograd kernel defined at an autograd key"
        )
        with pytest.raises(library.OpCheckError, match="test_autograd_registration failed with"):
            library.opcheck(op, (x,), test_utils="test_autograd_registration")
        # Without inputs requiring grad there is nothing to check.
        assert library.opcheck(op, (M.ones(2),), test_utils="test_autograd_registration") == {
            "test_autograd_registration": "SUCCESS"
        }
        # A kernel that builds no graph passes; so does one at the Autograd key.
        lib.define("good(Tensor x) -> Tensor")
        lib.impl("good", lambda x: x.detach() * 2, "CPU")
        good = getattr(M.ops, ns).good.default
        assert library.opcheck(good, (x,), test_utils="test_autograd_registration") == {
            "test_autograd_registration": "SUCCESS"
        }
        library.register_autograd(f"{ns}::bad", lambda ctx, g: g * 2, lib=lib)
        assert library.opcheck(op, (x,), test_utils="test_autograd_registration") == {
            "test_autograd_registration": "SUCCESS"
        }
    finally:
        lib._destroy()


def test_opcheck_autograd_registration_on_custom_ops_and_meta_inputs() -> None:
    ns = fresh_ns()

    @library.custom_op(f"{ns}::sq", mutates_args=())
    def sq(x: T) -> T:
        return x * x

    try:
        x = M.ones(2, requires_grad=True)
        assert library.opcheck(sq, (x,), test_utils="test_autograd_registration") == {
            "test_autograd_registration": "SUCCESS"
        }
        assert x.grad is None  # opcheck worked on copies
    finally:
        sq._lib._destroy()


# --- register_vmap --------------------------------------------------------------------------


def test_register_vmap_is_not_implemented() -> None:
    ns = fresh_ns()

    @library.custom_op(f"{ns}::v", mutates_args=())
    def v(x: T) -> T:
        return x.clone()

    try:
        with pytest.raises(NotImplementedError, match="does not implement torch.vmap"):
            v.register_vmap(lambda info, in_dims, x: (x, 0))
        with pytest.raises(NotImplementedError, match=rf"register_vmap\({ns}::v\)"):
            library.register_vmap(f"{ns}::v", lambda info, in_dims, x: (x, 0))
        with pytest.raises(NotImplementedError):
            library.register_vmap(v)
        with pytest.raises(ValueError, match="register_vmap\\(3\\): got unexpected type for op: <class 'int'>"):
            library.register_vmap(3)
    finally:
        v._lib._destroy()


# --- failed definitions leave nothing ------------------------------------------------------


def _gone(qualname: str) -> bool:
    return (
        _C._dispatch_get_overload_names(qualname) == []
        and qualname not in custom_ops.OPDEF_TO_LIB
        and custom_ops._maybe_get_opdef(qualname) is None
        and qualname not in fake_impl._holders
    )


def test_failed_definitions_leave_no_registration() -> None:
    ns = fresh_ns()
    with pytest.raises(ValueError, match="The schema suggests that the op mutates"):
        library.custom_op(f"{ns}::s", lambda x: None, mutates_args=(), schema="(Tensor(a!) x) -> ()")
    assert _gone(f"{ns}::s")
    with pytest.raises(ValueError, match="Functions without tensor inputs are required to have a `device"):
        library.custom_op(
            f"{ns}::k", lambda n: M.ones(n), mutates_args=(), device_types="cpu", schema="(int n) -> Tensor"
        )
    assert _gone(f"{ns}::k")
    with pytest.raises(NotImplementedError, match="custom_op with kwarg-only Tensor args"):
        library.custom_op(f"{ns}::kw", lambda x, *, y: x, mutates_args=(), schema="(Tensor x, *, Tensor y) -> Tensor")
    assert _gone(f"{ns}::kw")
    # The names are free again.
    ok = library.custom_op(f"{ns}::s", lambda x: x.clone(), mutates_args=(), schema="(Tensor x) -> Tensor")
    try:
        assert ok(M.ones(1)).tolist() == [1.0]
    finally:
        ok._lib._destroy()
    del ok
    assert _gone(f"{ns}::s")


# --- register_autograd with tensor lists (torch's supports_tensorlist) ---------------------


def test_autograd_through_tensor_list_inputs_and_outputs() -> None:
    ns = fresh_ns()

    @library.custom_op(f"{ns}::wsum", mutates_args=())
    def wsum(xs: list[T], w: float) -> T:
        out = xs[0] * w
        for x in xs[1:]:
            out = out + x * w
        return out

    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
        ctx.w, ctx.n = inputs[1], len(inputs[0])

    def backward(ctx: Any, g: Any) -> Any:
        assert ctx.needs_input_grad == ([True, False], False)
        return [g * ctx.w] * ctx.n, None

    wsum.register_autograd(backward, setup_context=setup_context)

    @library.custom_op(f"{ns}::pair", mutates_args=())
    def pair(x: T) -> list[T]:
        return [x * 2, x * 3]

    pair.register_autograd(lambda ctx, gs: gs[0] * 2 + gs[1] * 3)
    try:
        a, b = M.ones(2, requires_grad=True), M.ones(2)
        y = wsum([a, b], 2.0)
        assert y.tolist() == [4.0, 4.0] and y.requires_grad
        y.sum().backward()
        assert a.grad is not None and a.grad.tolist() == [2.0, 2.0]
        assert b.grad is None
        outs = pair(a)
        assert isinstance(outs, list) and len(outs) == 2 and all(o.requires_grad for o in outs)
        a.grad = None
        (outs[0].sum() + outs[1].sum()).backward()
        assert a.grad.tolist() == [5.0, 5.0]
        wsum.register_autograd(lambda ctx, g: (g, None))  # not a list for the list input
        with pytest.raises(RuntimeError, match="Expected the return from backward to be of the same structure"):
            wsum([a, a.detach()], 1.0).sum().backward()
    finally:
        wsum._lib._destroy()
        pair._lib._destroy()


def test_destroyed_definition_is_forgotten_while_still_referenced() -> None:
    ns = fresh_ns()
    op = library.custom_op(f"{ns}::f", lambda x: x.clone(), mutates_args=(), schema="(Tensor x) -> Tensor")
    assert custom_ops._maybe_get_opdef(f"{ns}::f") is op
    op._lib._destroy()
    # `op` is still referenced here, yet the registries no longer know it.
    assert _gone(f"{ns}::f")
    # Redefining replaces the old definition; destroying the old library again is harmless.
    new = library.custom_op(f"{ns}::f", lambda x: x * 2, mutates_args=(), schema="(Tensor x) -> Tensor")
    try:
        op._lib._destroy()
        assert custom_ops._maybe_get_opdef(f"{ns}::f") is new
        assert new(M.ones(1)).tolist() == [2.0]
    finally:
        new._lib._destroy()
    assert _gone(f"{ns}::f")


def test_collecting_a_replaced_definition_keeps_the_new_ones_keys() -> None:
    import gc

    ns = fresh_ns()
    old = library.custom_op(f"{ns}::f", lambda x: x.clone(), mutates_args=(), schema="(Tensor x) -> Tensor")
    new = library.custom_op(f"{ns}::f", lambda x: x * 2, mutates_args=(), schema="(Tensor x) -> Tensor")
    try:
        del old
        gc.collect()
        # The live op's duplicate guard and definition record survive the old library's end.
        assert f"{ns}::f" in library._defs
        assert f"{ns}/f/Meta" in library._impls
        with pytest.raises(RuntimeError, match="already a kernel registered from python"):
            new._lib.impl("f", lambda x: x, "Meta")
        assert new(M.ones(1)).tolist() == [2.0]
    finally:
        new._lib._destroy()
    assert _gone(f"{ns}::f")
    assert f"{ns}::f" not in library._defs
