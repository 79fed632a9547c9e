"""Random numbers on PyTorch's CPU generator (``torch.manual_seed``, ``torch.rand``, ...).

The generator is an mt19937 seeded as PyTorch's, and the sampling follows ATen's CPU kernels,
so ``manual_seed(s)`` then ``rand``/``randn``/``randint`` reproduce PyTorch's numbers. Only the
default generator exists (``generator=`` must be None)."""

from __future__ import annotations

import builtins
import time
from typing import Any

from . import _C
from ._ops import ops

__all__ = ["initial_seed", "manual_seed", "rand", "rand_like", "randint", "randn", "randn_like", "seed"]


class Generator:
    """The default CPU generator, as ``manual_seed`` returns it."""

    device = "cpu"

    def manual_seed(self, seed: int) -> Generator:
        _C._manual_seed(int(seed))
        return self

    def initial_seed(self) -> int:
        return _C.initial_seed()


default_generator = Generator()


def manual_seed(seed: int) -> Generator:
    """Seeds the CPU generator; returns it."""
    return default_generator.manual_seed(seed)


def initial_seed() -> int:
    return _C.initial_seed()


def seed() -> int:
    """Seeds the generator from the clock; returns the seed."""
    s = time.time_ns() & ((1 << 63) - 1)
    _C._manual_seed(s)
    return s


def _size(size: tuple[Any, ...]) -> list[int]:
    if len(size) == 1 and isinstance(size[0], (list, tuple)):
        return [builtins.int(s) for s in size[0]]
    return [builtins.int(s) for s in size]


def _finish(t: Any, requires_grad: bool) -> Any:
    if requires_grad:
        t.requires_grad_(True)
    return t


def _check_generator(generator: Any) -> None:
    if generator is not None and generator is not default_generator:
        raise NotImplementedError("opdispatch: only the default CPU generator is supported")


def rand(
    *size: Any, generator: Any = None, dtype: Any = None, device: Any = None, requires_grad: bool = False, **_: Any
) -> Any:
    """Uniform samples in [0, 1)."""
    _check_generator(generator)
    return _finish(ops.aten.rand.default(_size(size), dtype=dtype, device=device), requires_grad)


def randn(
    *size: Any, generator: Any = None, dtype: Any = None, device: Any = None, requires_grad: bool = False, **_: Any
) -> Any:
    """Standard normal samples."""
    _check_generator(generator)
    return _finish(ops.aten.randn.default(_size(size), dtype=dtype, device=device), requires_grad)


def randint(*args: Any, generator: Any = None, dtype: Any = None, device: Any = None, requires_grad: bool = False,
            size: Any = None, **_: Any) -> Any:
    """``randint(high, size)`` or ``randint(low, high, size)``: integers in [low, high)."""
    _check_generator(generator)
    if size is not None:
        args = (*args, size)
    if len(args) == 2:
        t = ops.aten.randint.default(builtins.int(args[0]), _size((args[1],)), dtype=dtype, device=device)
    elif len(args) == 3:
        t = ops.aten.randint.low(builtins.int(args[0]), builtins.int(args[1]), _size((args[2],)), dtype=dtype,
                                 device=device)
    else:
        raise TypeError("randint() expects (high, size) or (low, high, size)")
    return _finish(t, requires_grad)


def rand_like(t: Any, *, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Any:
    return _finish(ops.aten.rand_like.default(t, dtype=dtype, device=device), requires_grad)


def randn_like(t: Any, *, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Any:
    return _finish(ops.aten.randn_like.default(t, dtype=dtype, device=device), requires_grad)
