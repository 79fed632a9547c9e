"""The autograd hook of custom ops: what a ``CustomOpDef`` registers at the Autograd and
ADInplaceOrView keys. The autograd engine is issue 10 (being built by the lead); the two
functions here are the only places it has to fill.

Until it lands no tensor can require grad, so PyTorch's generated autograd kernel would always
take its no-grad path (redispatch below Autograd), which is exactly a fallthrough: that is
what ``autograd_kernel`` returns today, so the call path stays native. Likewise the
ADInplaceOrView kernel of a mutating op only bumps version counters, which do not exist yet.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Info:
    """What ``register_autograd`` recorded for an op (torch's ``_library.autograd.Info``)."""

    def __init__(self, backward_fn: Callable[..., Any] | None, setup_context_fn: Callable[..., Any] | None) -> None:
        self._backward_fn = backward_fn
        self._setup_context_fn = setup_context_fn


def make_autograd_impl(op: Any, info: Any) -> Callable[..., Any]:
    """The Autograd kernel (``with_keyset=True``) that runs ``info._backward_fn`` through an
    ``autograd.Function`` when an input requires grad. TO BE FILLED with issue 10."""
    raise NotImplementedError(
        f"register_autograd for {op}: opdispatch has no autograd engine yet (issue 10); "
        "a backward formula cannot be registered"
    )


def autograd_kernel(op: Any, info: Any) -> Callable[..., Any]:
    """What ``CustomOpDef`` registers at Autograd when it is defined (see the module doc)."""
    from ..library import fallthrough_kernel

    return fallthrough_kernel


def adinplaceorview_kernel(op: Any) -> Callable[..., Any]:
    """What a mutating ``CustomOpDef`` registers at ADInplaceOrView: a fallthrough until
    version counters exist (then: bump the mutated arguments' versions and redispatch)."""
    from ..library import fallthrough_kernel

    return fallthrough_kernel
