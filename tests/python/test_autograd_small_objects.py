"""Issue 10's speed work: the relu backward as PyTorch's threshold_backward, and tensors and
graphs made on one thread and freed on another (the per-thread small-block caches)."""

from __future__ import annotations

import math
import threading

import opdispatch as M


def test_relu_backward_is_threshold_backward() -> None:
    x = M.tensor([-1.0, 0.0, 2.0, float("nan")], requires_grad=True)
    M.relu(x).backward(M.tensor([-1.0, -2.0, 3.0, 4.0]))
    assert x.grad is not None
    # Zero where the result is <= 0 (a positive zero, also for a negative gradient); a NaN
    # result passes its gradient, as in PyTorch.
    got = x.grad.tolist()
    assert got == [0.0, 0.0, 3.0, 4.0]
    assert all(math.copysign(1.0, v) > 0 for v in got[:2])
    assert x.grad.dtype == M.float32


def test_relu_double_backward_and_dtypes() -> None:
    x = M.tensor([-1.0, 0.5, 2.0], dtype=M.float64, requires_grad=True)
    (gx,) = M.autograd.grad((M.relu(x) ** 2).sum(), x, create_graph=True)
    assert gx.dtype == M.float64 and gx.tolist() == [0.0, 1.0, 4.0]
    gx.sum().backward()
    assert x.grad is not None and x.grad.tolist() == [0.0, 2.0, 2.0]


def test_max_ties_share_the_gradient() -> None:
    a = M.tensor([1.0, 3.0, 3.0], requires_grad=True)
    a.max().backward()
    assert a.grad is not None and a.grad.tolist() == [0.0, 0.5, 0.5]


def test_graphs_built_on_one_thread_and_freed_on_another() -> None:
    made: list[M.Tensor] = []

    def build() -> None:
        x = M.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
        for _ in range(200):
            z = x
            for _ in range(5):
                z = M.tanh(z) * x
            made.append(z)

    threads = [threading.Thread(target=build) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    total = 0.0
    for z in made:
        z.sum().backward()
        total += z.sum().item()
    made.clear()
    assert math.isfinite(total)
