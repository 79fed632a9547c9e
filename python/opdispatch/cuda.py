"""``torch.cuda``'s device queries.

The CUDA driver is looked up when first needed, so these work on every machine: without a
driver ``is_available()`` is False, ``device_count()`` is 0, and the functions that need a
device raise PyTorch's ``RuntimeError`` ("Found no NVIDIA driver on your system. ...").
CUDA tensor storage and kernels are not there yet: ``.cuda()`` says so on a machine with a GPU.
"""

from __future__ import annotations

from typing import Any

from . import _C

__all__ = ["current_device", "device_count", "is_available", "set_device", "synchronize"]


def is_available() -> bool:
    """Whether a CUDA driver and at least one device are present."""
    return _C._cuda_is_available()


def device_count() -> int:
    """The number of CUDA devices (0 without a driver)."""
    return _C._cuda_device_count()


def current_device() -> int:
    """This thread's current device index."""
    return _C._cuda_current_device()


def _index(device: Any) -> int:
    if device is None:
        return current_device()
    if isinstance(device, int):
        return device
    d = _C.device(device) if isinstance(device, str) else device
    if d.type != "cuda":
        raise ValueError(f"Expected a cuda device, but got: {d}")
    return current_device() if d.index is None else int(d.index)


def set_device(device: Any) -> None:
    """Makes ``device`` this thread's current device."""
    _C._cuda_set_device(_index(device))


def synchronize(device: Any = None) -> None:
    """Waits for all work queued on ``device`` (default: the current device)."""
    _C._cuda_synchronize(_index(device))
