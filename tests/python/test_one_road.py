"""Every public Python entry to an aten operator dispatches (issue 16, "one road").

For each entry, a Python kernel is registered over the aten overload it must reach (CPU for
ops with tensor arguments, CompositeExplicitAutograd for the factories, which have none);
calling the public function must run that kernel. A function that computed its result
without the dispatcher (as the factories once did) fails here.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import pytest

import opdispatch as od
from opdispatch.library import Library

F = od.float32


def _a() -> Any:
    return od.tensor([[1.0, 2.0], [3.0, 4.0]])


# (aten overload, dispatch key, entry); the entry builds its inputs before the override exists.
CASES: list[tuple[str, str, Callable[[], Callable[[], Any]]]] = [
    # factories
    ("ones", "CompositeExplicitAutograd", lambda: lambda: od.ones(2)),
    ("zeros", "CompositeExplicitAutograd", lambda: lambda: od.zeros(2, 2)),
    ("empty.memory_format", "CompositeExplicitAutograd", lambda: lambda: od.empty(3)),
    ("full", "CompositeExplicitAutograd", lambda: lambda: od.full((2,), 3.0)),
    ("arange", "CompositeExplicitAutograd", lambda: lambda: od.arange(3)),
    ("arange.start", "CompositeExplicitAutograd", lambda: lambda: od.arange(1, 3)),
    ("arange.start_step", "CompositeExplicitAutograd", lambda: lambda: od.arange(1, 5, 2)),
    ("lift_fresh", "CompositeExplicitAutograd", lambda: lambda: od.tensor([1.0, 2.0])),
    ("rand", "CompositeExplicitAutograd", lambda: lambda: od.rand(2)),
    ("randn", "CompositeExplicitAutograd", lambda: lambda: od.randn(2)),
    ("randint", "CompositeExplicitAutograd", lambda: lambda: od.randint(5, (2,))),
    ("rand_like", "CompositeExplicitAutograd", lambda: (lambda a: lambda: od.rand_like(a))(_a())),
    # the random factories fill through the in-place operators of the tensor's backend
    ("uniform_", "CPU", lambda: lambda: od.rand(2)),
    ("normal_", "CPU", lambda: lambda: od.randn(2)),
    ("random_.from", "CPU", lambda: lambda: od.randint(5, (2,))),
    # Python operators
    ("add.Tensor", "CPU", lambda: (lambda a: lambda: a + a)(_a())),
    ("add.Tensor", "CPU", lambda: (lambda a: lambda: a + 1)(_a())),  # torch binds numbers as wrapped tensors
    ("sub.Tensor", "CPU", lambda: (lambda a: lambda: a - a)(_a())),
    ("mul.Tensor", "CPU", lambda: (lambda a: lambda: a * a)(_a())),
    ("mul.Tensor", "CPU", lambda: (lambda a: lambda: 2 * a)(_a())),
    ("div.Tensor", "CPU", lambda: (lambda a: lambda: a / a)(_a())),
    ("pow.Tensor_Scalar", "CPU", lambda: (lambda a: lambda: a**2)(_a())),
    ("matmul", "CPU", lambda: (lambda a: lambda: a @ a)(_a())),
    ("neg", "CPU", lambda: (lambda a: lambda: -a)(_a())),
    ("abs", "CPU", lambda: (lambda a: lambda: abs(a))(_a())),
    ("eq.Tensor", "CPU", lambda: (lambda a: lambda: a == a)(_a())),
    ("lt.Scalar", "CPU", lambda: (lambda a: lambda: a < 2)(_a())),
    ("select.int", "CPU", lambda: (lambda a: lambda: a[0])(_a())),
    ("slice.Tensor", "CPU", lambda: (lambda a: lambda: a[0:1])(_a())),
    ("unsqueeze", "CPU", lambda: (lambda a: lambda: a[None])(_a())),
    # methods
    ("clone", "CPU", lambda: (lambda a: lambda: a.clone())(_a())),
    ("contiguous", "CPU", lambda: (lambda a: lambda: a.contiguous())(_a())),
    ("item", "CPU", lambda: (lambda a: lambda: a[0, 0].item())(_a())),
    ("sum", "CPU", lambda: (lambda a: lambda: a.sum())(_a())),
    ("mean", "CPU", lambda: (lambda a: lambda: a.mean())(_a())),
    ("transpose.int", "CPU", lambda: (lambda a: lambda: a.transpose(0, 1))(_a())),
    ("view", "CPU", lambda: (lambda a: lambda: a.view(4))(_a())),
    ("exp", "CPU", lambda: (lambda a: lambda: a.exp())(_a())),
    ("relu", "CPU", lambda: (lambda a: lambda: a.relu())(_a())),
    ("to.dtype", "CPU", lambda: (lambda a: lambda: a.to(od.float64))(_a())),
    ("_to_copy", "CPU", lambda: (lambda a: lambda: a.to("meta"))(_a())),
    ("_to_copy", "CPU", lambda: (lambda a: lambda: a.cuda())(_a())),
    # _to_copy copies through copy_ on the destination's backend
    ("copy_", "CPU", lambda: (lambda a: lambda: a.to(od.float64))(_a())),
    ("copy_", "Meta", lambda: (lambda a: lambda: a.to("meta"))(_a())),
    # module functions
    ("add.Tensor", "CPU", lambda: (lambda a: lambda: od.add(a, a))(_a())),
    ("mm", "CPU", lambda: (lambda a: lambda: od.mm(a, a))(_a())),
    ("tanh", "CPU", lambda: (lambda a: lambda: od.tanh(a))(_a())),
    ("cat", "CPU", lambda: (lambda a: lambda: od.cat([a, a]))(_a())),
    ("where.self", "CPU", lambda: (lambda a: lambda: od.where(a > 2, a, a))(_a())),
]


@pytest.mark.parametrize(("overload", "key", "entry"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_public_entry_reaches_the_aten_kernel(overload: str, key: str, entry: Callable[[], Callable[[], Any]]) -> None:
    call = entry()
    marker = od.zeros(1)
    seen: list[str] = []
    name, _, ovl = overload.partition(".")
    returns_scalar = name == "item"

    def kernel(*args: Any, **kwargs: Any) -> Any:
        seen.append(overload)
        return 42 if returns_scalar else marker

    lib = Library("aten", "IMPL")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Overriding a previously registered kernel"
            lib.impl(overload, kernel, key)
        result = call()
    finally:
        lib._destroy()
    assert seen, f"{overload} was not dispatched to"
    if returns_scalar:
        assert result == 42
    elif name.endswith("_"):
        # An in-place operator returns `self` (torch's Autograd kernel), not what ran below;
        # reaching the kernel (`seen`) is what is checked.
        pass
    else:
        assert result is marker or result.tolist() == marker.tolist()


def test_override_is_gone_after_destroy() -> None:
    assert od.ones(2).tolist() == [1.0, 1.0]
    assert od.arange(1, 5, 2).tolist() == [1, 3]


def test_tensor_from_data_is_one_lift_fresh_call_under_a_mode() -> None:
    from opdispatch.utils._python_dispatch import TorchDispatchMode

    seen: list[str] = []

    class Log(TorchDispatchMode):
        def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            seen.append(str(func))
            return func(*args, **(kwargs or {}))

    with Log():
        t = od.tensor([[1, 2], [3, 4]], dtype=od.float64, requires_grad=True)
    assert seen == ["aten.lift_fresh.default"]
    assert (t.dtype, t.requires_grad, t.tolist()) == (od.float64, True, [[1.0, 2.0], [3.0, 4.0]])


def test_meta_tensors_run_meta_kernels_end_to_end() -> None:
    m = od.tensor([[1.0, 2.0]], device="meta")
    assert (m.device.type, m.shape) == ("meta", (1, 2))
    r = (m + m).sum(0)
    assert (r.device.type, r.shape, r.dtype) == ("meta", (2,), od.float32)
    assert od.randn(3, device="meta").device.type == "meta"
    assert od.ones(2, device="meta").to(od.float64).dtype == od.float64
    with pytest.raises(NotImplementedError, match="Cannot copy out of meta tensor"):
        m.to("cpu")
