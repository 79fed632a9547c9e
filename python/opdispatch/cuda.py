"""``torch.cuda``: devices, synchronization and the caching allocator's figures.

The CUDA driver (and NVRTC and cuBLAS) are looked up when first needed, so these work on every
machine: without a driver ``is_available()`` is False, ``device_count()`` is 0, and the functions
that need a device raise PyTorch's ``RuntimeError`` ("Found no NVIDIA driver on your system. ...").
With one, tensors move to the device with ``.cuda()`` / ``.to("cuda")`` and the aten operators run
CUDA kernels (compiled at run time with NVRTC) and cuBLAS on the device's default stream.
"""

from __future__ import annotations

from typing import Any

from . import _C

__all__ = [
    "current_device",
    "device_count",
    "empty_cache",
    "is_available",
    "max_memory_allocated",
    "memory_allocated",
    "memory_reserved",
    "set_device",
    "synchronize",
]


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


def memory_allocated(device: Any = None) -> int:
    """Bytes in device blocks handed to tensors (size-class rounded, as PyTorch counts)."""
    return int(_C._cuda_memory_stats(_index(device))[0])


def memory_reserved(device: Any = None) -> int:
    """Bytes the caching allocator holds from the driver (handed out plus cached)."""
    return int(_C._cuda_memory_stats(_index(device))[1])


def max_memory_allocated(device: Any = None) -> int:
    """The peak of ``memory_allocated``."""
    return int(_C._cuda_memory_stats(_index(device))[2])


def empty_cache() -> None:
    """Returns every cached (unused) block of the current device to the driver."""
    _C._cuda_empty_cache(current_device())
