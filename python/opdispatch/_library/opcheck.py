"""``opcheck`` (PyTorch's ``torch.testing._internal.optests``): checks that an operator's
registrations agree with what it does.

- ``test_schema``: the arguments the schema marks mutated are the ones the op mutates (no
  others), and no output aliases an input unless the schema says so.
- ``test_faketensor``: the fake impl (the Meta kernel here; opdispatch has no FakeTensor) run
  on Meta copies of the inputs gives outputs with the real outputs' sizes, strides and dtype.
- ``test_autograd_registration``: when an input requires grad, the op has a kernel at an
  autograd key (or CompositeImplicitAutograd), or else its backend kernel builds no graph
  (torch's ``autograd_registration_check`` and message); skipped when no input requires grad.
- ``test_aot_dispatch_dynamic``: PyTorch compiles the op with AOTAutograd and compares with
  eager; opdispatch has no compiler, so only the eager call runs (its failure is reported).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .. import _C
from . import utils

DEFAULT_TEST_UTILS = ("test_schema", "test_autograd_registration", "test_faketensor", "test_aot_dispatch_dynamic")


class OpCheckError(Exception):
    pass


def _flatten(args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
    return [*args, *kwargs.values()]


def _clone_inputs(value: Any, device: str | None = None) -> Any:
    if isinstance(value, _C.Tensor):
        if device == "meta":
            return _C.empty(list(value.shape), dtype=value.dtype, device="meta")
        return value.clone()
    if isinstance(value, (list, tuple)):
        return type(value)(_clone_inputs(v, device) for v in value)
    return value


def _snapshot(value: Any) -> Any:
    if isinstance(value, _C.Tensor):
        return None if value.is_meta else value.clone()
    return None


def _same_values(a: _C.Tensor, b: _C.Tensor) -> bool:
    return bool(list(a.shape) == list(b.shape) and a.tolist() == b.tolist())


def _test_schema(op: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    args = _clone_inputs(args)
    kwargs = {k: _clone_inputs(v) for k, v in kwargs.items()}
    arg_infos, ret_infos = utils.schema_info(op)
    by_name = {a.name: a for a in arg_infos}
    bound: list[tuple[str, Any]] = [(arg_infos[i].name, v) for i, v in enumerate(args) if i < len(arg_infos)]
    bound += list(kwargs.items())
    before = [(name, value, _snapshot(value)) for name, value in bound]
    result = op(*args, **kwargs)
    for name, value, snap in before:
        if snap is None:
            continue
        mutated = not _same_values(value, snap)
        declared = by_name[name].is_write if name in by_name else False
        if mutated and not declared:
            raise RuntimeError(
                f"{op._schema}: Argument {name} is not defined as mutable but was mutated"
            )
    outputs = result if isinstance(result, tuple) else (result,)
    inputs = {_C._storage_id(v): name for name, v in bound if isinstance(v, _C.Tensor)}
    for i, out in enumerate(outputs):
        if not isinstance(out, _C.Tensor):
            continue
        aliased = inputs.get(_C._storage_id(out))
        if aliased is None:
            continue
        name = aliased
        ret_alias = ret_infos[i].alias_sets if i < len(ret_infos) else None
        arg_alias = by_name[name].alias_sets if name in by_name else None
        if not ret_alias or not arg_alias or not set(ret_alias) & set(arg_alias):
            raise RuntimeError(
                f"{op._schema}: Argument {name} is not defined to alias output but was aliasing"
            )


def _metadata(t: _C.Tensor) -> tuple[Any, ...]:
    return (list(t.shape), list(t.stride()), t.dtype)


def _test_faketensor(op: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    real = op(*_clone_inputs(args), **{k: _clone_inputs(v) for k, v in kwargs.items()})
    meta_args = _clone_inputs(args, "meta")
    meta_kwargs = {k: _clone_inputs(v, "meta") for k, v in kwargs.items()}
    try:
        fake = op(*meta_args, **meta_kwargs)
    except Exception as e:
        raise RuntimeError(
            f"opcheck(op, ...): test_faketensor failed: the operator {op.name()} could not run on "
            f"meta tensors (its fake impl or Meta kernel): {e}"
        ) from e
    reals = real if isinstance(real, tuple) else (real,)
    fakes = fake if isinstance(fake, tuple) else (fake,)
    if len(reals) != len(fakes):
        raise RuntimeError(f"{op.name()}: the fake impl returned {len(fakes)} outputs, the kernel {len(reals)}")
    for i, (r, f) in enumerate(zip(reals, fakes, strict=True)):
        if isinstance(r, _C.Tensor) != isinstance(f, _C.Tensor):
            raise RuntimeError(f"{op.name()}: output {i} of the fake impl and of the kernel differ in type")
        if isinstance(r, _C.Tensor) and _metadata(r) != _metadata(f):
            raise RuntimeError(
                f"{op.name()}: output {i}: the fake impl gave sizes/strides/dtype {_metadata(f)} but the "
                f"real kernel {_metadata(r)}"
            )


def _autograd_clone(value: Any) -> Any:
    """A copy of the inputs that keeps which tensors require grad (as leaves)."""
    if isinstance(value, _C.Tensor):
        copy = value.detach().clone()
        return copy.requires_grad_(True) if value.requires_grad else copy
    if isinstance(value, (list, tuple)):
        return type(value)(_autograd_clone(v) for v in value)
    return value


def _test_autograd_registration(op: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """torch's ``autograd_registration_check``: an op that gets tensors requiring grad must
    have its autograd behaviour at an autograd key. Without one, the default fallback runs the
    backend kernel with autograd still on, so an output requiring grad there means the kernel
    built a graph itself (regular ops, or an autograd.Function, at a backend key)."""
    args = _autograd_clone(args)
    kwargs = {k: _autograd_clone(v) for k, v in kwargs.items()}
    all_tensors = list(utils.iter_tensors(args, kwargs))
    # As opcheck's safe wrapper: nothing to check when no input requires grad.
    if not any(t.requires_grad for t in all_tensors):
        return
    all_device_types = {t.device.type for t in all_tensors}
    if not all_device_types.issubset(["cpu", "cuda", "xpu"]):
        raise NotImplementedError(
            f"autograd_registration_check: NYI devices other than CPU/CUDA/XPU, got {all_device_types}"
        )
    if "cuda" in all_device_types:
        key = "AutogradCUDA"
    elif "cpu" in all_device_types:
        key = "AutogradCPU"
    else:
        key = "AutogradXPU"
    name = op.name()
    for k in (key, "Autograd", "CompositeImplicitAutograd"):
        if _C._dispatch_has_kernel_for_dispatch_key(name, k):
            return
    all_outs = op(*args, **kwargs)
    inp_ids = {id(a) for a in _flatten(args, kwargs)} | {id(t) for t in all_tensors}
    outs = all_outs if isinstance(all_outs, (tuple, list)) else (all_outs,)
    flat_outs: list[Any] = []
    for o in outs:
        flat_outs.extend(o if isinstance(o, (tuple, list)) else (o,))
    if not any(isinstance(o, _C.Tensor) and o.requires_grad and id(o) not in inp_ids for o in flat_outs):
        return
    raise AssertionError(
        f"{name}: at least one output of this operator has requires_grad=True "
        "but the operator does not have an autograd kernel defined at an autograd "
        "key (e.g. DispatchKey::Autograd). This could mean that you have "
        "incorrectly registered an autograd kernel to a non-Autograd DispatchKey, "
        "which may lead to silently incorrect results. If your operator consists "
        "of regular PyTorch operations, consider not using an operator at all "
        "or registering your operator as CompositeImplicitAutograd. If you have "
        "an autograd.Function registered to a backend (CPU/CUDA/XPU) key, the correct "
        "location for it is the Autograd key."
    )


def _test_aot_dispatch_dynamic(op: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    # AOTAutograd/torch.compile do not exist in opdispatch: the part of this test that can
    # run here is the eager call it compares against.
    op(*_clone_inputs(args), **{k: _clone_inputs(v) for k, v in kwargs.items()})


ALL_TEST_UTILS: dict[str, Callable[[Any, tuple[Any, ...], dict[str, Any]], None]] = {
    "test_schema": _test_schema,
    "test_autograd_registration": _test_autograd_registration,
    "test_faketensor": _test_faketensor,
    "test_aot_dispatch_dynamic": _test_aot_dispatch_dynamic,
}


def opcheck(
    op: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any] | None = None,
    *,
    test_utils: str | Sequence[str] = DEFAULT_TEST_UTILS,
    raise_exception: bool = True,
) -> dict[str, Any]:
    """Runs the ``test_utils`` on ``op(*args, **kwargs)``: ``{name: "SUCCESS" | exception}``."""
    from .._ops import OpOverload, OpOverloadPacket
    from .custom_ops import CustomOpDef

    if kwargs is None:
        kwargs = {}
    if isinstance(op, CustomOpDef):
        op = op._opoverload
    if isinstance(op, OpOverloadPacket) and not isinstance(op, OpOverload):
        overloads = op.overloads()
        if len(overloads) != 1:
            raise RuntimeError(
                f"This function only supports OpOverloadPacket with a single overload, but {op} has "
                f"{len(overloads)}: please pass the OpOverload directly"
            )
        op = getattr(op, overloads[0])
    if not isinstance(op, OpOverload):
        raise ValueError(
            "opcheck(op, ...): op must be instance of torch._ops.OpOverload, "
            f"e.g. torch.ops.aten.sin.default, got {type(op)}"
        )
    if test_utils == "ALL":
        test_utils = tuple(ALL_TEST_UTILS.keys())
    if isinstance(test_utils, str):
        test_utils = (test_utils,)
    if not isinstance(test_utils, (tuple, list)) or not set(test_utils).issubset(ALL_TEST_UTILS.keys()):
        raise ValueError(
            f"opcheck(op, ..., test_utils={test_utils}), expected test_utils "
            f"to be subset of {tuple(ALL_TEST_UTILS.keys())} but it was not"
        )
    results: dict[str, Any] = {}
    for name in test_utils:
        try:
            ALL_TEST_UTILS[name](op, args, kwargs)
            results[name] = "SUCCESS"
        except Exception as ex:
            if raise_exception:
                raise OpCheckError(f"opcheck(op, ...): {name} failed with {ex} (scroll up for stack trace)") from ex
            results[name] = ex
    return results
