"""Tensor operators and methods routed through the aten library."""

import pytest

import opdispatch as o
from opdispatch import _C


def test_arithmetic_broadcast_and_promotion():
    a = o.ones(2, 3)
    b = o.arange(3)
    assert (a + b).tolist() == [[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]]
    assert (a + b).dtype == o.float32
    assert (b * 2).tolist() == [0, 2, 4] and (b * 2).dtype == o.int64
    assert (b * 0.5).dtype == o.float32
    assert (2 - b).tolist() == [2, 1, 0]
    assert (b / 2).tolist() == [0.0, 0.5, 1.0]
    assert (-b).tolist() == [0, -1, -2]
    assert (b**2).tolist() == [0, 1, 4]
    assert abs(o.tensor([-1.5, 2.0])).tolist() == [1.5, 2.0]


def test_shape_mismatch_message():
    with pytest.raises(RuntimeError, match="The size of tensor a \\(3\\) must match the size of tensor b \\(4\\)"):
        o.ones(3) + o.ones(4)


def test_reductions_and_matmul():
    b = o.arange(6).reshape(2, 3)
    assert b.sum().item() == 15
    assert b.sum(0).tolist() == [3, 5, 7]
    assert b.sum(dim=1, keepdim=True).tolist() == [[3], [12]]
    assert b.float().mean().item() == 2.5
    assert (o.ones(2, 3) @ o.ones(3, 4)).tolist() == [[3.0] * 4] * 2
    assert o.matmul(o.ones(5, 2, 3), o.ones(3, 2)).shape == (5, 2, 2)


def test_views_share_storage_and_indexing():
    b = o.arange(6).reshape(2, 3)
    v = b.view(3, 2)
    assert v.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()
    assert b[1].tolist() == [3, 4, 5]
    assert b[:, 1].tolist() == [1, 4]
    assert b[1, 2].item() == 5
    assert b[..., 0].tolist() == [0, 3]
    assert b[None].shape == (1, 2, 3)
    assert b.t().tolist() == [[0, 3], [1, 4], [2, 5]]
    with pytest.raises(IndexError):
        b[0, 0, 0]


def test_meta_tensors_compute_shapes_only():
    m = o.empty(2, 3, device="meta") + o.empty(3, device="meta")
    assert m.shape == (2, 3) and m.is_meta
    assert repr(m) == "tensor(..., device='meta', size=(2, 3))"
    with pytest.raises(RuntimeError):
        m.tolist()


def test_repr_matches_pytorch_style():
    assert repr(o.arange(6).reshape(2, 3) * -1) == "tensor([[ 0, -1, -2],\n        [-3, -4, -5]])"
    assert repr(o.ones(2) / 3) == "tensor([0.3333, 0.3333])"
    assert repr(o.tensor([True, False])) == "tensor([ True, False])"


def test_cuda_gives_clear_error():
    if o.cuda.is_available():
        pytest.skip("a CUDA machine: scripts/gpu_check.sh covers it")
    with pytest.raises(RuntimeError, match="^Found no NVIDIA driver on your system"):
        o.ones(2).cuda()
    with pytest.raises(RuntimeError, match="^Found no NVIDIA driver on your system"):
        o.ones(2, device="cuda")


def test_cuda_queries_answer_without_a_driver():
    if o.cuda.is_available():
        pytest.skip("a CUDA machine: scripts/gpu_check.sh covers it")
    assert o.cuda.device_count() == 0
    for f in (o.cuda.current_device, o.cuda.synchronize, lambda: o.cuda.set_device(0)):
        with pytest.raises(RuntimeError, match="^Found no NVIDIA driver on your system"):
            f()
    with pytest.raises(ValueError, match="Expected a cuda device"):
        o.cuda.synchronize("cpu")


def test_user_kernel_on_an_aten_op():
    # aten ops dispatch like any other op: a Python kernel registered for aten::add.Tensor at
    # AutogradCPU runs for CPU tensors (also for `a + b`) and can redispatch below autograd.
    seen = []
    after_autograd = _C._dispatch_keyset_full_after(_C.DispatchKey.AutogradOther)

    def add_autograd(ks, a, b, alpha=1):
        seen.append(ks.highestPriorityTypeId().name)
        return o.ops.aten.add.Tensor.redispatch(ks & after_autograd, a, b, alpha=alpha)

    lib = o.library.Library("aten", "IMPL")
    try:
        lib.impl("add.Tensor", add_autograd, "AutogradCPU", with_keyset=True)
        r = o.ones(2) + o.ones(2)
        assert r.tolist() == [2.0, 2.0]
        assert seen == ["AutogradCPU"]
        o.empty(2, device="meta") + o.empty(2, device="meta")  # AutogradMeta: not ours
        assert seen == ["AutogradCPU"]
    finally:
        lib._destroy()
    assert (o.ones(2) + o.ones(2)).tolist() == [2.0, 2.0]
    assert seen == ["AutogradCPU"]


def test_numpy_round_trip():
    np = pytest.importorskip("numpy")
    b = o.arange(6).reshape(2, 3)
    a = b.numpy()
    assert a.dtype == np.int64 and a.tolist() == b.tolist()
    assert o.from_numpy(a).tolist() == b.tolist()


def test_cat_stack_where():
    a = o.ones(2)
    assert o.cat([a, a]).shape == (4,)
    assert o.stack([a, a], 1).shape == (2, 2)
    assert o.where(o.tensor([True, False]), a, -a).tolist() == [1.0, -1.0]


@pytest.mark.parametrize(
    "work",
    [
        lambda a, b: a + b,
        lambda a, b: a.sum(),
        lambda a, b: o.ones(1_000_000),
        lambda a, b: o.full((1_000, 1_000), 2.5),
        lambda a, b: o.arange(1_000_000),
    ],
    ids=["add", "sum", "ones", "full", "arange"],
)
def test_long_computations_release_the_gil(work):
    # PyTorch releases the GIL around operators; here kernels over enough elements do,
    # factories included (`zeros` has no loop: its memory comes zeroed). With timed hand-offs
    # disabled, another thread can only run during the loop below if the kernels release the
    # GIL.
    import sys
    import threading
    import time

    a, b = o.ones(1_000_000), o.ones(1_000_000)
    work(a, b)
    seen = []
    gate = threading.Lock()
    gate.acquire()
    ready = threading.Event()

    def other():
        ready.set()
        with gate:  # waits without the GIL until the main thread opens the gate
            seen.append(time.perf_counter())

    old = sys.getswitchinterval()
    sys.setswitchinterval(1000.0)
    try:
        th = threading.Thread(target=other)
        th.start()
        ready.wait()
        time.sleep(0.05)  # let it reach the gate
        gate.release()  # from here it waits for the GIL
        for _ in range(200):
            work(a, b)
            if seen:
                break
        end = time.perf_counter()
    finally:
        sys.setswitchinterval(old)
    th.join()
    assert seen and seen[0] < end
