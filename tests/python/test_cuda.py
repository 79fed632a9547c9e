"""The CUDA backend, case by case, with every case defined once and run per device (cpu, meta,
cuda) through conftest's ``device`` fixture, as candle's ``test_device!`` does.

The cuda runs need a CUDA device: a GPU (scripts/gpu_check.sh) or the host emulator
(``make cuda-emu-test``, tests/cuda_emulator); elsewhere they skip with the reason. On Meta only
the output geometry and dtype are checked (Meta has no data).
"""

from __future__ import annotations

import gc
import math
from collections.abc import Sequence
from typing import Any

import pytest

import opdispatch as od


def t(data: Any, device: str, dtype: Any = None) -> Any:
    return od.tensor(data, dtype=dtype, device=device)


def check(x: Any, expected: Any, dtype: Any, shape: Sequence[int] | None = None, tol: float = 1e-5) -> None:
    """``x`` has ``expected`` values (except on Meta), the dtype, and the shape ``expected`` has."""
    assert x.dtype == dtype, (x.dtype, dtype)
    if shape is None:
        shape = _shape(expected)
    assert tuple(x.shape) == tuple(shape)
    if x.device.type == "meta":
        return
    got = x.cpu().tolist()
    _close(got, expected, tol)


def _shape(v: Any) -> tuple[int, ...]:
    if isinstance(v, list):
        return (len(v),) + (_shape(v[0]) if v else ())
    return ()


def _close(got: Any, exp: Any, tol: float) -> None:
    if isinstance(exp, list):
        assert isinstance(got, list) and len(got) == len(exp), (got, exp)
        for g, e in zip(got, exp, strict=True):
            _close(g, e, tol)
    elif isinstance(exp, float) and math.isnan(exp):
        assert math.isnan(got), got
    elif isinstance(exp, bool) or isinstance(exp, int) and not isinstance(got, float):
        assert got == exp, (got, exp)
    else:
        assert abs(got - exp) <= tol * max(1.0, abs(exp)), (got, exp)


# ---- pointwise ----


def test_binary_ops_broadcast(device: str) -> None:
    a = t([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], device)
    b = t([10.0, 20.0, 30.0], device)
    check(a + b, [[11.0, 22.0, 33.0], [14.0, 25.0, 36.0]], od.float32)
    check(od.sub(a, b, alpha=2), [[-19.0, -38.0, -57.0], [-16.0, -35.0, -54.0]], od.float32)
    check(a * b, [[10.0, 40.0, 90.0], [40.0, 100.0, 180.0]], od.float32)
    check(b / a, [[10.0, 10.0, 10.0], [2.5, 4.0, 5.0]], od.float32)
    check(od.maximum(a, t([[3.0], [4.5]], device)), [[3.0, 3.0, 3.0], [4.5, 5.0, 6.0]], od.float32)
    check(a**2, [[1.0, 4.0, 9.0], [16.0, 25.0, 36.0]], od.float32)
    check(a.t() + a.t(), [[2.0, 8.0], [4.0, 10.0], [6.0, 12.0]], od.float32)


def test_type_promotion(device: str) -> None:
    i = t([1, 2, 3], device)
    f = t([0.5, 0.5, 0.5], device)
    check(i + f, [1.5, 2.5, 3.5], od.float32)
    check(i + 1.5, [2.5, 3.5, 4.5], od.float32)
    check(i * 2, [2, 4, 6], od.int64)
    check(i / 2, [0.5, 1.0, 1.5], od.float32)
    check(i.to(od.float64) + f, [1.5, 2.5, 3.5], od.float64)
    bb = t([True, False, True], device)
    check(bb + bb, [True, False, True], od.bool)
    check(bb + i, [2, 2, 4], od.int64)


def test_comparisons_and_where(device: str) -> None:
    a = t([1.0, float("nan"), 3.0, -2.0], device)
    b = t([1.0, 1.0, 2.0, 5.0], device)
    check(a == b, [True, False, False, False], od.bool)
    check(a != b, [False, True, True, True], od.bool)
    check(a < b, [False, False, False, True], od.bool)
    check(a >= 1, [True, False, True, False], od.bool)
    check(od.where(a > b, a, b), [1.0, 1.0, 3.0, 5.0], od.float32)
    check(od.where(t([[True], [False]], device), t([1, 2], device), 0.5), [[1.0, 2.0], [0.5, 0.5]], od.float32)


def test_unary_ops(device: str) -> None:
    x = t([-1.0, 0.0, 2.0], device)
    check(-x, [1.0, -0.0, -2.0], od.float32)
    check(od.abs(x), [1.0, 0.0, 2.0], od.float32)
    check(x.exp(), [math.exp(-1), 1.0, math.exp(2)], od.float32)
    check(x.relu(), [0.0, 0.0, 2.0], od.float32)
    check(x.sigmoid(), [1 / (1 + math.e), 0.5, 1 / (1 + math.exp(-2))], od.float32)
    check(x.tanh(), [math.tanh(-1), 0.0, math.tanh(2)], od.float32)
    check(t([1, 4, 9], device).sqrt(), [1.0, 2.0, 3.0], od.float32)
    check(od.abs(t([-3, 4], device)), [3, 4], od.int64)


def test_inplace_and_fill(device: str) -> None:
    x = t([1.0, 2.0, 3.0], device)
    x.add_(t([1.0, 1.0, 1.0], device), alpha=3)
    check(x, [4.0, 5.0, 6.0], od.float32)
    x.mul_(t(2.0, device))
    check(x, [8.0, 10.0, 12.0], od.float32)
    x.fill_(7)
    check(x, [7.0, 7.0, 7.0], od.float32)
    x.zero_()
    check(x, [0.0, 0.0, 0.0], od.float32)
    m = od.zeros(2, 3, device=device)
    m.t()[1].fill_(5)  # a strided fill
    check(m, [[0.0, 5.0, 0.0], [0.0, 5.0, 0.0]], od.float32)
    check(od.ones(2, dtype=od.int32, device=device), [1, 1], od.int32)
    check(od.full((2,), 2.5, device=device), [2.5, 2.5], od.float32)


# ---- reductions ----


def test_reductions(device: str) -> None:
    a = t([[1.0, 5.0, 3.0], [4.0, 2.0, 6.0]], device)
    check(a.sum(), 21.0, od.float32)
    check(a.sum(0), [5.0, 7.0, 9.0], od.float32)
    check(a.sum(1, keepdim=True), [[9.0], [12.0]], od.float32)
    check(a.mean(), 3.5, od.float32)
    check(a.mean(0), [2.5, 3.5, 4.5], od.float32)
    check(a.max(), 6.0, od.float32)
    check(a.min(), 1.0, od.float32)
    values, indices = a.max(1)
    check(values, [5.0, 6.0], od.float32)
    check(indices, [1, 2], od.int64)
    values, indices = od.min(a, 0)
    check(values, [1.0, 2.0, 3.0], od.float32)
    check(indices, [0, 1, 0], od.int64)
    check(a.argmax(), 5, od.int64)
    check(a.argmax(0), [1, 0, 1], od.int64)
    check(a.t().argmin(1), [0, 1, 0], od.int64)
    check(t([1, 2, 3], device).sum(), 6, od.int64)
    check(t([True, True, False], device).sum(), 2, od.int64)
    check(t([1.0, float("nan"), 2.0], device).max(), float("nan"), od.float32)
    check(t([3.0, 7.0, 7.0, 1.0], device).argmax(), 1, od.int64)


# ---- matrix products ----


def test_matmul(device: str) -> None:
    a = t([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], device)
    b = t([[1.0, 0.0, 2.0], [0.0, 1.0, 3.0]], device)
    check(a @ b, [[1.0, 2.0, 8.0], [3.0, 4.0, 18.0], [5.0, 6.0, 28.0]], od.float32)
    check(od.mm(b, a), [[11.0, 14.0], [18.0, 22.0]], od.float32)
    check(a.t() @ a, [[35.0, 44.0], [44.0, 56.0]], od.float32)  # a transposed operand
    ab = [[1.0, 2.0, 8.0], [3.0, 4.0, 18.0], [5.0, 6.0, 28.0]]
    check(od.bmm(od.stack([a, a]), od.stack([b, b]))[1], ab, od.float32)
    check(a @ t([1.0, 1.0], device), [3.0, 7.0, 11.0], od.float32)
    check(t([1.0, 2.0], device) @ t([3.0, 4.0], device), 11.0, od.float32)
    batched = od.stack([a, a, a]) @ b
    check(batched.sum(), 3 * 75.0, od.float32, shape=())
    assert tuple(batched.shape) == (3, 3, 3)


@pytest.mark.cuda
def test_matmul_bfloat16_on_cuda() -> None:
    a = t([[1.0, 2.0], [3.0, 4.0]], "cuda").to(od.bfloat16)
    r = a @ a
    check(r, [[7.0, 10.0], [15.0, 22.0]], od.bfloat16)


# ---- shapes, copies ----


def test_cat_stack_clone_contiguous(device: str) -> None:
    a = t([[1, 2], [3, 4]], device)
    b = t([[5, 6]], device)
    check(od.cat([a, b]), [[1, 2], [3, 4], [5, 6]], od.int64)
    check(od.cat([a, a.t()], 1), [[1, 2, 1, 3], [3, 4, 2, 4]], od.int64)
    check(od.stack([a[0], b[0]], 1), [[1, 5], [2, 6]], od.int64)
    c = a.t().contiguous()
    assert c.is_contiguous()
    check(c, [[1, 3], [2, 4]], od.int64)
    check(a.t().clone(), [[1, 3], [2, 4]], od.int64)
    check(od.cat([a.to(od.float32), b]), [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], od.float32)


def test_views_need_no_kernel(device: str) -> None:
    a = t([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], device)
    check(a.view(3, 2), [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], od.float32)
    check(a[:, 1:], [[2.0, 3.0], [5.0, 6.0]], od.float32)
    check(a.narrow(1, 0, 2).t(), [[1.0, 4.0], [2.0, 5.0]], od.float32)
    check(a.unsqueeze(0).expand(2, 2, 3)[1, 1], [4.0, 5.0, 6.0], od.float32)
    check(a.reshape(6), [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], od.float32)
    check(a.t().reshape(6), [1.0, 4.0, 2.0, 5.0, 3.0, 6.0], od.float32)


def test_copy_between_devices(device: str) -> None:
    host = od.tensor([[1.0, 2.0], [3.0, 4.0]])
    x = host.to(device)
    assert x.device.type == device
    check(x, [[1.0, 2.0], [3.0, 4.0]], od.float32)
    dst = od.zeros(2, 2, dtype=od.float64, device=device)
    dst.copy_(host.t())  # across devices, a dtype change and a transposed source
    check(dst, [[1.0, 3.0], [2.0, 4.0]], od.float64)
    back = od.zeros(2, 2, dtype=od.int32)
    if device != "meta":
        back.t().copy_(x)
        assert back.tolist() == [[1, 3], [2, 4]]
        assert x.to("cpu", od.float64).tolist() == [[1.0, 2.0], [3.0, 4.0]]


# ---- CUDA only ----


@pytest.mark.cuda
def test_cuda_devices_keys_and_round_trip() -> None:
    assert od.cuda.is_available() and od.cuda.device_count() >= 1
    x = od.ones(3).cuda()
    assert str(x.device) == "cuda:0"
    assert "CUDA" in repr(od._C._dispatch_keys(x)) and "AutogradCUDA" in repr(od._C._dispatch_keys(x))
    assert x.to("cuda") is x
    assert x.cpu().tolist() == [1.0, 1.0, 1.0]
    assert repr(x) == "tensor([1., 1., 1.], device='cuda:0')"
    assert (x + 1).sum().item() == 6.0
    od.cuda.synchronize()


@pytest.mark.cuda
def test_mixed_devices_raise_torchs_message() -> None:
    a = od.ones(3).cuda()
    msg = r"Expected all tensors to be on the same device, but found at least two devices, cuda:0 and cpu!"
    with pytest.raises(RuntimeError, match=msg):
        a + od.ones(3)
    with pytest.raises(RuntimeError, match="Expected all tensors to be on the same device"):
        od.mm(od.ones(2, 2), od.ones(2, 2).cuda())
    # CPU zero-dim tensors are allowed with any device (TensorIterator's rule).
    assert (a * od.tensor(2.0)).cpu().tolist() == [2.0, 2.0, 2.0]
    assert (od.tensor(2.0) - a).device.type == "cuda"


@pytest.mark.cuda
def test_caching_allocator_figures() -> None:
    gc.collect()  # no cyclic garbage freed halfway through the figures
    gc.disable()
    try:
        _allocator_figures()
    finally:
        gc.enable()


def _allocator_figures() -> None:
    od.cuda.empty_cache()
    base = od.cuda.memory_allocated()
    x = od.empty(1000, device="cuda")
    assert od.cuda.memory_allocated() == base + 4096  # 4000 bytes rounded to 512-byte steps
    del x
    assert od.cuda.memory_allocated() == base
    assert od.cuda.memory_reserved() >= 4096
    od.cuda.empty_cache()
    assert od.cuda.memory_reserved() == od.cuda.memory_allocated() == base
    assert od.cuda.max_memory_allocated() >= base + 4096


@pytest.mark.cuda
def test_python_kernel_for_cuda_sees_cuda_tensors() -> None:
    """A Python kernel registered for CUDA gets CUDA tensors, preserved/hermetic as CPU's are."""
    lib = od.library.Library("cuda_py_test", "DEF")
    lib.define("f(Tensor x) -> Tensor")
    seen: dict[str, tuple[str, bool]] = {}

    def kernel(x: Any) -> Any:
        seen[x.device.type] = (str(x.device), x is inputs[x.device.type])
        return x * 2

    lib.impl("f", kernel, "CPU")
    lib.impl("f", kernel, "CUDA")
    inputs = {"cpu": od.ones(2), "cuda": od.ones(2).cuda()}
    out = od.ops.cuda_py_test.f(inputs["cuda"])
    od.ops.cuda_py_test.f(inputs["cpu"])
    assert seen["cuda"][0] == "cuda:0"
    assert seen["cuda"][1] == seen["cpu"][1]
    assert out.device.type == "cuda" and out.cpu().tolist() == [2.0, 2.0]


def test_cuda_without_a_driver_raises_torchs_error() -> None:
    if od.cuda.is_available():
        pytest.skip("a CUDA device is present")
    assert od.cuda.device_count() == 0
    with pytest.raises(RuntimeError, match="Found no NVIDIA driver on your system"):
        od.ones(2).cuda()
    with pytest.raises(RuntimeError, match="Found no NVIDIA driver on your system"):
        od.empty(2, device="cuda")
    with pytest.raises(RuntimeError, match="Found no NVIDIA driver on your system"):
        od.cuda.synchronize()
