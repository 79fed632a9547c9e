"""``gradcheck`` / ``gradgradcheck``: analytical gradients (the engine's) against central
finite differences, in float64, with PyTorch's defaults and failure message."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .. import _C

__all__ = ["GradcheckError", "gradcheck", "gradgradcheck"]


class GradcheckError(RuntimeError):
    """Raised by ``gradcheck`` when the gradients disagree (and ``raise_exception``)."""


def _tuple(x: Any) -> tuple[Any, ...]:
    return x if isinstance(x, tuple) else (x,)


def _flat(t: Any) -> list[float]:
    v = t.tolist()

    def walk(x: Any) -> list[float]:
        return [y for e in x for y in walk(e)] if isinstance(x, list) else [float(x)]

    return walk(v)


def _numerical(fn: Callable[..., Any], inputs: tuple[Any, ...], i: int, out_idx: int, eps: float) -> list[list[float]]:
    """d out[out_idx] / d inputs[i], one row per input element (central differences)."""
    from .grad_mode import no_grad

    x = inputs[i]
    rows = []
    base = _flat(x)
    with no_grad():
        for k in range(len(base)):
            vals = []
            for delta in (eps, -eps):
                flat = list(base)
                flat[k] += delta
                xp = _C.tensor(flat, dtype=x.dtype).reshape(list(x.shape))
                args = list(inputs)
                args[i] = xp
                vals.append(_flat(_tuple(fn(*args))[out_idx]))
            rows.append([(a - b) / (2 * eps) for a, b in zip(vals[0], vals[1], strict=False)])
    return rows


def gradcheck(
    func: Callable[..., Any],
    inputs: Any,
    *,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
    nondet_tol: float = 0.0,
    check_undefined_grad: bool = True,
    check_grad_dtypes: bool = False,
    check_batched_grad: bool = False,
    fast_mode: bool = False,
) -> bool:
    """Checks ``func``'s backward against finite differences for every input that requires
    grad (double precision inputs are expected, as in PyTorch)."""
    from . import grad as autograd_grad

    inputs = _tuple(inputs)
    outputs = _tuple(func(*inputs))
    diff_inputs = [i for i, x in enumerate(inputs) if isinstance(x, _C.Tensor) and x.requires_grad]
    for oi, out in enumerate(outputs):
        if not isinstance(out, _C.Tensor):
            continue
        if not out.requires_grad:
            # An output without a graph has an analytical Jacobian of zero: PyTorch checks that
            # the numerical one is zero too (a backward that detached something fails here).
            if out.dtype.is_floating_point:
                for i in diff_inputs:
                    if any(abs(v) > atol for row in _numerical(func, inputs, i, oi, eps) for v in row):
                        if not raise_exception:
                            return False
                        raise GradcheckError("Numerical gradient for function expected to be zero")
            continue
        n_out = out.numel()
        analytical = {i: [[0.0] * n_out for _ in range(inputs[i].numel())] for i in diff_inputs}
        for j in range(n_out):
            go = [0.0] * n_out
            go[j] = 1.0
            g_out = _C.tensor(go, dtype=out.dtype).reshape(list(out.shape))
            grads = autograd_grad(
                out, [inputs[i] for i in diff_inputs], g_out, retain_graph=True, allow_unused=True
            )
            for i, g in zip(diff_inputs, grads, strict=False):
                if g is not None:
                    for k, v in enumerate(_flat(g)):
                        analytical[i][k][j] = v
        for i in diff_inputs:
            numerical = _numerical(func, inputs, i, oi, eps)
            for arow, nrow in (zip(analytical[i], numerical, strict=False)):
                for a, n in zip(arow, nrow, strict=False):
                    if abs(a - n) > atol + rtol * abs(n):
                        if not raise_exception:
                            return False
                        raise GradcheckError(
                            f"Jacobian mismatch for output {oi} with respect to input {i},\n"
                            f"numerical:{numerical}\nanalytical:{analytical[i]}\n"
                        )
    return True


def gradgradcheck(
    func: Callable[..., Any],
    inputs: Any,
    grad_outputs: Sequence[Any] | None = None,
    *,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
    **kwargs: Any,
) -> bool:
    """``gradcheck`` of the first derivative (built with ``create_graph=True``)."""
    from .._ops import ops
    from . import grad as autograd_grad
    from .grad_mode import enable_grad

    inputs = _tuple(inputs)
    diff_pos = [i for i, a in enumerate(inputs) if isinstance(a, _C.Tensor) and a.requires_grad]

    def first(*args: Any) -> tuple[Any, ...]:
        # The finite differences call this with perturbed copies under no_grad: the first
        # derivative still needs a graph, so grad mode is on and the copies require grad.
        with enable_grad():
            args_l = list(args)
            for i in diff_pos:
                if not args_l[i].requires_grad:
                    args_l[i] = args_l[i].detach().requires_grad_(True)
            outs = _tuple(func(*args_l))
            gos = grad_outputs if grad_outputs is not None else [ops.aten.ones_like(o) for o in outs]
            d = [args_l[i] for i in diff_pos]
            return tuple(
                g for g in autograd_grad(outs, d, list(gos), create_graph=True, allow_unused=True) if g is not None
            )

    return gradcheck(first, inputs, eps=eps, atol=atol, rtol=rtol, raise_exception=raise_exception)
