"""Rust errors reach Python as the exception class torch raises for the same failure
(one mapping, in crates/opdispatch-python/src/errors.rs); one test per class."""

from __future__ import annotations

import builtins

import pytest

import opdispatch as od
from opdispatch import exceptions
from opdispatch.library import Library


def test_index_error_for_a_dimension_out_of_range() -> None:
    msg = r"Dimension out of range \(expected to be in range of \[-1, 0\], but got 5\)"
    with pytest.raises(builtins.IndexError, match=msg):
        od.ones(2).sum(5)


def test_index_error_for_an_index_out_of_range() -> None:
    with pytest.raises(exceptions.IndexError, match="^index 5 is out of bounds for dimension 0 with size 2$"):
        od.ones(2)[5]
    # torch names the dimension of the partial result (after `None` and slices).
    with pytest.raises(builtins.IndexError, match="^index 3 is out of bounds for dimension 2 with size 3$"):
        od.ones(2, 3)[None, :, 3]
    with pytest.raises(builtins.IndexError, match="^index -4 is out of bounds for dimension 1 with size 3$"):
        od.ones(2, 3)[..., -4]
    assert od.ones(2, 3)[1, -3].item() == 1.0


def test_runtime_error_for_a_failed_check() -> None:
    with pytest.raises(builtins.RuntimeError, match="must match the size of tensor b"):
        od.ones(2) + od.ones(3)


def test_not_implemented_error_for_a_dtype_without_kernel() -> None:
    with pytest.raises(builtins.NotImplementedError, match="not implemented for 'ComplexFloat'"):
        od.ones(2, dtype=od.complex64).max()


def test_not_implemented_error_for_a_missing_kernel() -> None:
    lib = Library("exc_classes", "DEF")
    try:
        lib.define("f(Tensor x) -> Tensor")
        with pytest.raises(exceptions.NotImplementedError, match="Could not run 'exc_classes::f'"):
            od.ops.exc_classes.f(od.ones(1))
    finally:
        lib._destroy()


def test_type_error_for_an_argument_of_the_wrong_type() -> None:
    with pytest.raises(builtins.TypeError, match="failed to match any schema"):
        od.ones(2).add("x")


def test_type_error_for_string_data() -> None:
    with pytest.raises(exceptions.TypeError, match=r"^new\(\): invalid data type 'str'$"):
        od.tensor("a")
    with pytest.raises(builtins.TypeError, match=r"^new\(\): invalid data type 'bytes'$"):
        od.tensor([1, b"x"])


def test_type_error_for_len_of_a_0d_tensor() -> None:
    with pytest.raises(exceptions.TypeError, match=r"^len\(\) of a 0-d tensor$"):
        len(od.tensor(1.0))


def test_runtime_error_for_data_without_a_dtype() -> None:
    with pytest.raises(exceptions.RuntimeError, match="^Could not infer dtype of object$"):
        od.tensor(object())


def test_runtime_error_for_a_mode_stack_index_out_of_range() -> None:
    with pytest.raises(exceptions.RuntimeError, match="^Tried to get stack at idx that's too big$"):
        od._C._get_dispatch_stack_at(3)


def test_runtime_error_for_a_bad_device_string() -> None:
    with pytest.raises(exceptions.RuntimeError, match="device type at start of device string: bogus"):
        od.device("bogus")


def test_value_error_for_ragged_data() -> None:
    with pytest.raises(builtins.ValueError, match="expected sequence of length 1 at dim 1"):
        od.tensor([[1], [2, 3]])


def test_kernel_exceptions_pass_through_unchanged() -> None:
    class Boom(Exception):
        pass

    err = Boom("from the kernel")
    lib = Library("exc_classes2", "DEF")
    try:
        lib.define("g(Tensor x) -> Tensor")

        def g(x: od.Tensor) -> od.Tensor:
            raise err

        lib.impl("g", g, "CPU")
        with pytest.raises(Boom) as info:
            od.ops.exc_classes2.g(od.ones(1))
        assert info.value is err
    finally:
        lib._destroy()
