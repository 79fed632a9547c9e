"""``infer_schema``: a function's type hints -> an operator schema string (PyTorch 2.15's
mapping, see ``torch/_library/infer_schema.py``)."""

# The tables hold typing objects (Optional[...], Union[...]) as keys: annotations are compared
# with them at run time, so the PEP 604 spellings ruff prefers would not be the same keys.
# ruff: noqa: UP007, UP045

from __future__ import annotations

import collections.abc
import inspect
import types
import typing
from collections.abc import Callable, Iterable
from typing import Any, NoReturn, Optional, Union

from .. import _C

__all__ = ["infer_schema", "Number", "SUPPORTED_PARAM_TYPES", "SUPPORTED_RETURN_TYPES"]

# ``torch.types.Number``.
Number = Union[int, float, bool]

_UNKNOWN_MUTATES = "unknown"


def _seq_types(typ: Any) -> list[Any]:
    # Every spelling of "a sequence of typ" that annotations use.
    return [
        typing.Sequence[typ],
        typing.List[typ],  # noqa: UP006
        types.GenericAlias(collections.abc.Sequence, (typ,)),
        types.GenericAlias(list, (typ,)),
    ]


def _derived(base: Any, name: str, list_base: bool, optional_base_list: bool, optional_list_base: bool) -> list[Any]:
    result: list[tuple[Any, str]] = [(base, name), (Optional[base], f"{name}?")]
    if list_base:
        result += [(t, f"{name}[]") for t in _seq_types(base)]
    if optional_base_list:
        result += [(t, f"{name}?[]") for t in _seq_types(Optional[base])]
    if optional_list_base:
        result += [(Optional[t], f"{name}[]?") for t in _seq_types(base)]
    return result


def _supported_param_types() -> dict[Any, str]:
    rows = [
        # python type, schema type, T[], T?[], T[]?
        (_C.Tensor, "Tensor", True, True, False),
        (int, "SymInt", True, False, True),
        (float, "float", True, False, True),
        (bool, "bool", True, False, True),
        (str, "str", False, False, False),
        (Number, "Scalar", True, False, False),
        (_C.dtype, "ScalarType", False, False, False),
        (_C.device, "Device", False, False, False),
    ]
    result: dict[Any, str] = {}
    for row in rows:
        result.update(_derived(*row))
    return result


SUPPORTED_PARAM_TYPES: dict[Any, str] = _supported_param_types()

SUPPORTED_RETURN_TYPES: dict[Any, str] = {
    _C.Tensor: "Tensor",
    typing.List[_C.Tensor]: "Tensor[]",  # noqa: UP006
    list[_C.Tensor]: "Tensor[]",
    int: "SymInt",
    float: "float",
    bool: "bool",
    Number: "Scalar",
}


# Read once: each `inspect.Parameter.X` is two attribute lookups per use.
_EMPTY = inspect.Parameter.empty
_POSITIONAL_OR_KEYWORD = inspect.Parameter.POSITIONAL_OR_KEYWORD
_KEYWORD_ONLY = inspect.Parameter.KEYWORD_ONLY
_VARIADIC = inspect.CO_VARARGS | inspect.CO_VARKEYWORDS

_Param = tuple[str, Any, Any, Any]  # name, inspect kind, annotation, default


def _fast_parameters(fn: Any) -> list[_Param] | None:
    """The parameters of a plain function read from its code object, as ``inspect.signature``
    reports them (which was a third of the cost of defining a custom op); None for anything
    else (wrapped functions, partials, callables, positional-only or variadic parameters)."""
    # (Not `fn.__dict__`: reading it gives every user function a dict of its own.)
    if type(fn) is not types.FunctionType or hasattr(fn, "__wrapped__") or hasattr(fn, "__signature__"):
        return None
    code = fn.__code__
    if code.co_posonlyargcount or code.co_flags & _VARIADIC:
        return None
    annotations = fn.__annotations__
    n_pos = code.co_argcount
    names = code.co_varnames[: n_pos + code.co_kwonlyargcount]
    defaults = fn.__defaults__ or ()
    first_default = n_pos - len(defaults)
    result: list[_Param] = [
        (
            name,
            _POSITIONAL_OR_KEYWORD,
            annotations.get(name, _EMPTY),
            defaults[i - first_default] if i >= first_default else _EMPTY,
        )
        for i, name in enumerate(names[:n_pos])
    ]
    if len(names) > n_pos:
        kwdefaults = fn.__kwdefaults__ or {}
        result += [
            (name, _KEYWORD_ONLY, annotations.get(name, _EMPTY), kwdefaults.get(name, _EMPTY)) for name in names[n_pos:]
        ]
    return result


def _tuple_to_list(tuple_type: Any) -> Any:
    args = typing.get_args(tuple_type)
    if not args:
        return typing.List  # noqa: UP006
    if len(args) == 1 or (len(args) == 2 and args[1] is Ellipsis):
        return typing.List[args[0]]  # type: ignore[valid-type]  # noqa: UP006
    return typing.List[Union[tuple(args)]]  # type: ignore[misc]  # noqa: UP006


def _string_annotation_namespace() -> dict[str, Any]:
    # String annotations ("Tensor", "Optional[int]") name torch's and typing's objects.
    import opdispatch

    return {
        "torch": opdispatch,
        "opdispatch": opdispatch,
        "Tensor": _C.Tensor,
        "device": _C.device,
        "dtype": _C.dtype,
        "types": types,
        "Optional": Optional,
        "List": typing.List,  # noqa: UP006
        "Sequence": typing.Sequence,
        "Union": Union,
        "list": list,
        "tuple": tuple,
    }


_compiled_annotations: dict[str, Any] = {}


def _compiled(annotation: str) -> Any:
    """``annotation`` compiled as an expression, once per distinct string (compiling was most
    of the cost of a string annotation; evaluating stays per call, in the function's module)."""
    code = _compiled_annotations.get(annotation)
    if code is None:
        code = compile(annotation, "<annotation>", "eval")
        if len(_compiled_annotations) < 1024:
            _compiled_annotations[annotation] = code
    return code


def _default_repr(default: Any) -> str | None:
    if default is None or isinstance(default, (int, float, bool)):
        return str(default)
    if isinstance(default, (str, _C.device)):
        return f'"{default}"'
    if isinstance(default, _C.dtype):
        return str(default).rsplit(".", 1)[-1]
    return None


def _error(prototype_function: Callable[..., Any], what: str) -> NoReturn:
    sig = inspect.signature(prototype_function)
    raise ValueError(f"infer_schema(func): {what} Got func with signature {sig})")


def _convert_type_string(
    prototype_function: Callable[..., Any], annotation: str, namespaces: list[dict[str, Any]]
) -> Any:
    try:
        # The function's module first (`from __future__ import annotations` code), then
        # the names PyTorch resolves unqualified. Built once per call, on the first string.
        if not namespaces:
            namespace = _string_annotation_namespace()
            namespace.update(getattr(prototype_function, "__globals__", {}))
            namespaces.append(namespace)
        namespace = namespaces[0]
        result = eval(_compiled(annotation), namespace)  # noqa: S307
        # A quoted annotation under `from __future__ import annotations` is a string twice.
        return eval(_compiled(result), namespace) if isinstance(result, str) else result  # noqa: S307
    except Exception:
        _error(prototype_function, f"Unsupported type annotation {annotation}. It is not a type.")


def infer_schema(
    prototype_function: Callable[..., Any],
    /,
    *,
    mutates_args: str | Iterable[str],
    op_name: str | None = None,
) -> str:
    """The schema of ``prototype_function`` from its type hints, e.g. ``"(Tensor x) -> Tensor"``
    (``"name(Tensor x) -> Tensor"`` with ``op_name``). ``mutates_args`` names the mutated
    arguments (annotated ``Tensor(a<i>!)``) or is ``"unknown"`` (every Tensor argument)."""
    parameters = _fast_parameters(prototype_function)
    if parameters is None:
        sig = inspect.signature(prototype_function)
        parameters = [(p.name, p.kind, p.annotation, p.default) for p in sig.parameters.values()]
        return_annotation = sig.return_annotation
    else:
        return_annotation = prototype_function.__annotations__.get("return", _EMPTY)

    namespaces: list[dict[str, Any]] = []  # the string-annotation namespace, built on first use

    if isinstance(mutates_args, str):
        if mutates_args != _UNKNOWN_MUTATES:
            raise ValueError(
                "mutates_args must either be a sequence of the names of "
                "the arguments that are mutated or the string 'unknown'. "
            )
        mutated: frozenset[str] | None = None
    else:
        mutated = frozenset(mutates_args)

    params: list[str] = []
    seen_args: set[str] = set()
    saw_kwarg_only_arg = False
    for idx, (name, kind, param_annotation, param_default) in enumerate(parameters):
        if kind not in (_POSITIONAL_OR_KEYWORD, _KEYWORD_ONLY):
            _error(prototype_function, "We do not support positional-only args, varargs, or varkwargs.")
        if kind == _KEYWORD_ONLY and not saw_kwarg_only_arg:
            params.append("*")
            saw_kwarg_only_arg = True
        if param_annotation is _EMPTY:
            _error(prototype_function, f"Parameter {name} must have a type annotation.")
        annotation: Any = param_annotation
        if isinstance(annotation, str):
            annotation = _convert_type_string(prototype_function, annotation, namespaces)
        if isinstance(annotation, types.UnionType):  # `Tensor | None` is `Optional[Tensor]`
            annotation = Union[typing.get_args(annotation)]
        try:
            schema_type = SUPPORTED_PARAM_TYPES.get(annotation)
        except TypeError:  # an unhashable annotation
            schema_type = None
        if schema_type is None:
            if typing.get_origin(annotation) is tuple:
                list_type = _tuple_to_list(annotation)
                example = "\n\n"
                if list_type in SUPPORTED_PARAM_TYPES:
                    example = f"For example, {list_type}.\n\n"
                _error(
                    prototype_function,
                    f"Parameter {name} has unsupported type {param_annotation}. "
                    "We do not support Tuple inputs in schema. As a workaround, please try to use List instead. "
                    f"{example}"
                    f"The valid types are: {SUPPORTED_PARAM_TYPES.keys()}.",
                )
            _error(
                prototype_function,
                f"Parameter {name} has unsupported type {param_annotation}. "
                f"The valid types are: {SUPPORTED_PARAM_TYPES.keys()}.",
            )
        if mutated is None:
            if schema_type.startswith("Tensor"):
                schema_type = f"Tensor(a{idx}!){schema_type[len('Tensor') :]}"
        elif name in mutated:
            if not schema_type.startswith("Tensor"):
                _error(
                    prototype_function,
                    f"Parameter {name} is in mutable_args but only Tensors or collections of Tensors can be mutated",
                )
            schema_type = f"Tensor(a{idx}!){schema_type[len('Tensor') :]}"
        seen_args.add(name)
        if param_default is _EMPTY:
            params.append(f"{schema_type} {name}")
            continue
        default = _default_repr(param_default)
        if default is None:
            _error(
                prototype_function,
                f"Parameter {name} has an unsupported default value type {type(param_default)}. "
                "Please file an issue on GitHub so we can prioritize this.",
            )
        params.append(f"{schema_type} {name}={default}")
    if mutated is not None:
        not_seen = set(mutated) - seen_args
        if not_seen:
            _error(
                prototype_function,
                f"{not_seen} in mutates_args were not found in "
                "the custom op's signature. "
                "mutates_args should contain the names of all args that the "
                "custom op mutates, or just the string 'unknown' if you don't know.",
            )
    if isinstance(return_annotation, str):
        return_annotation = _convert_type_string(prototype_function, return_annotation, namespaces)
    ret = _parse_return(return_annotation, prototype_function)
    if op_name is not None:
        return f"{op_name}({', '.join(params)}) -> {ret}"
    return f"({', '.join(params)}) -> {ret}"


def _return_type(annotation: Any) -> str | None:
    try:
        return SUPPORTED_RETURN_TYPES.get(annotation)
    except TypeError:
        return None


def _parse_return(annotation: Any, prototype_function: Callable[..., Any]) -> str:
    if annotation is None:
        return "()"
    if annotation is _EMPTY:
        _error(prototype_function, "No return type annotation was provided. Please add one.")
    # The supported types are not tuples: a hit needs no `get_origin` (a Python-level call).
    ret = _return_type(annotation)
    if ret is not None:
        return ret
    if typing.get_origin(annotation) is not tuple:
        _error(
            prototype_function,
            f"Return has unsupported type {annotation}. The valid types are: {SUPPORTED_RETURN_TYPES}.",
        )
    names = []
    for arg in typing.get_args(annotation):
        ret = _return_type(arg)
        if ret is None:
            _error(
                prototype_function,
                f"Return has unsupported type {annotation}. The valid types are: {SUPPORTED_RETURN_TYPES}.",
            )
        names.append(ret)
    return "(" + ", ".join(names) + ")"
