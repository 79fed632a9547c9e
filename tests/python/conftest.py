"""Shared helpers for the opdispatch Python test suite.

Everything here is written for opdispatch; the scenarios follow PyTorch's test_dispatch.py /
test_python_dispatch.py / test_torch.py (see shared/spec/pytorch_tests_catalog.md), but the code is
our own.
"""

from __future__ import annotations

import itertools
import math
import os
import random
import re
from collections.abc import Callable, Iterable, Sequence

import pytest

import opdispatch  # noqa: F401  (loads the whole package: Tensor methods, ops)
from opdispatch import _C as C

# The keys opdispatch registers global fallbacks for or kernels in; tables are compared on these.
TABLE_KEYS = (
    "Undefined",
    "CPU",
    "CUDA",
    "XLA",
    "Meta",
    "FPGA",
    "QuantizedCPU",
    "SparseCPU",
    "PrivateUse1",
    "AutogradOther",
    "AutogradCPU",
    "AutogradCUDA",
    "AutogradXLA",
    "AutogradPrivateUse1",
    "AutogradMeta",
    "BackendSelect",
    "ADInplaceOrView",
)

# test_dispatch.py's default key selection.
DEFAULT_KEYS = ("Undefined", "CPU", "CUDA", "XLA", "AutogradOther", "AutogradCPU", "AutogradCUDA", "AutogradXLA")

_counter = itertools.count()


def fresh_ns(prefix: str = "odt") -> str:
    """A namespace no other test (or run in this process) uses."""
    return f"{prefix}_{os.getpid()}_{next(_counter)}_"


@pytest.fixture
def ns() -> str:
    return fresh_ns()


_BUILTIN_FALLBACK = re.compile(r"registered at (?!/dev/null:)\S+:\d+ \[backend fallback\]")


def mask_builtin(line: str) -> str:
    """Masks the file:line of a fallback the test did not register itself."""
    return _BUILTIN_FALLBACK.sub("registered in pytorch framework [backend fallback]", line)


def extract_table(table: str, keys: Sequence[str] = DEFAULT_KEYS) -> str:
    """The lines of ``table`` for ``keys`` (in the order of ``keys``), built-in fallbacks masked."""
    lines = table.split("\n")
    out = []
    for k in keys:
        for line in lines:
            if line.split(":", 1)[0] == k:
                out.append(mask_builtin(line) + "\n")
    return "".join(out)


def table_keys_only(table: str) -> str:
    """The lines of ``table`` for TABLE_KEYS, in table order, built-in fallbacks masked."""
    return "".join(
        mask_builtin(line) + "\n" for line in table.split("\n") if line and line.split(":", 1)[0] in TABLE_KEYS
    )


def first_line(msg: str) -> str:
    for line in msg.split("\n"):
        if line.strip():
            return line
    return ""


_KEYLIST = re.compile(r"(Available functions are|only available for these backends:) \[([^\]]*)\]")


def filter_key_lists(msg: str) -> str:
    """Keeps only TABLE_KEYS in the key lists of dispatch errors (the conformance kit's rule 7)."""

    def repl(m: re.Match[str]) -> str:
        keys = [k.strip() for k in m.group(2).split(",") if k.strip() in TABLE_KEYS]
        return f"{m.group(1)} [{', '.join(keys)}]"

    return _KEYLIST.sub(repl, msg)


def dump_of(qualname: str) -> tuple[str, str]:
    return C._dispatch_dump(qualname), C._dispatch_dump_table(qualname)


# ---------------------------------------------------------------------------------------------
# The commute harness: registration state must not depend on the order of registrations, and
# deregistration must restore earlier states exactly.
# ---------------------------------------------------------------------------------------------

Op = Callable[[object], object]


def _orders(n: int, fixed: Sequence[int] | None, limit: int) -> list[tuple[int, ...]]:
    if fixed is not None:
        return [tuple(fixed)]
    perms = list(itertools.permutations(range(n)))
    if len(perms) > limit:
        rng = random.Random(1234 + n)
        perms = [perms[0], perms[-1]] + rng.sample(perms[1:-1], limit - 2)
    return perms


def run_ops(
    name: str,
    ops: Sequence[Op],
    *,
    ctor_order: Sequence[int] | None = None,
    expect_raises: bool = False,
    ctor_limit: int = 60,
    dtor_per_ctor: int = 3,
) -> tuple[str, str]:
    """Registers ``ops`` (each gets its own FRAGMENT library) in many orders and deregisters them
    in several orders; after every step the (dump, table) of ``ns::name`` is recorded per set of
    live registrations and must agree across orders. Returns the state for all registrations.
    With ``expect_raises``, a failing registration records its (normalized) message as the
    state, and must leave the dispatcher exactly as it was before it."""
    results: dict[frozenset[int], tuple[str, str]] = {}
    n = len(ops)
    rng = random.Random(42)

    def record(ns: str, active: Iterable[int], what: str, value: tuple[str, str] | None = None) -> None:
        if value is None:
            state, table = dump_of(f"{ns}::{name}")
            value = (state.replace(ns, "test"), table.replace(ns, "test"))
        key = frozenset(active)
        prev = results.setdefault(key, value)
        assert prev == value, f"state for {sorted(key)} differs ({what})"

    for ctor in _orders(n, ctor_order, ctor_limit):
        dtor_orders = {tuple(reversed(ctor)), tuple(ctor)}
        target = min(dtor_per_ctor, math.factorial(n))
        while len(dtor_orders) < target:
            perm = list(range(n))
            rng.shuffle(perm)
            dtor_orders.add(tuple(perm))
        for dtor in sorted(dtor_orders):
            ns = fresh_ns("test")
            refs: list[object | None] = [None] * n
            active: set[int] = set()
            record(ns, active, "initial")
            raised = False
            for i in ctor:
                before = dump_of(f"{ns}::{name}")
                refs[i] = C._dispatch_library("FRAGMENT", ns, "")
                try:
                    ops[i](refs[i])
                except RuntimeError as e:
                    if not expect_raises:
                        raise
                    msg = str(e).replace(ns, "test").split("\nException raised from ")[0]
                    assert dump_of(f"{ns}::{name}") == before, "a failed registration changed the dispatcher"
                    record(ns, active | {i}, f"error in ctor {ctor}", (msg, ""))
                    refs[i] = None
                    raised = True
                    break
                active.add(i)
                record(ns, active, f"ctor {ctor}")
            if expect_raises:
                assert raised, f"expected a registration to raise for ctor order {ctor}"
            for i in dtor:
                if i not in active:
                    continue
                refs[i] = None
                active.discard(i)
                record(ns, active, f"dtor {dtor} after ctor {ctor}")
            assert dump_of(f"{ns}::{name}") == ("", ""), "deregistering everything must leave no trace"
    return results[frozenset(range(n))]


@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"])
def threads(request: pytest.FixtureRequest) -> object:
    """Runs a kernel test at one and at two intra-op threads, restoring the count after."""
    old = opdispatch.get_num_threads()
    opdispatch.set_num_threads(request.param)
    yield request.param
    opdispatch.set_num_threads(old)


# ---- devices: one test definition, run per device (candle's `test_device!`) ----

CUDA_SKIP_REASON = (
    "no CUDA device: no NVIDIA driver here and no emulator loaded "
    "(`make cuda-emu-test` runs these against tests/cuda_emulator; scripts/gpu_check.sh on a GPU)"
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "cuda: needs a CUDA device (a GPU, or the host emulator); skipped otherwise")


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("cuda") is not None and not opdispatch.cuda.is_available():
        pytest.skip(CUDA_SKIP_REASON)


DEVICES = ["cpu", "meta", pytest.param("cuda", marks=pytest.mark.cuda)]


@pytest.fixture(params=DEVICES)
def device(request: pytest.FixtureRequest) -> str:
    """The device a per-device test case runs on."""
    return str(request.param)
