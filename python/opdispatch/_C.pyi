"""Type stubs for ``opdispatch._C``, the native dispatcher module (PyO3)."""

import builtins
import enum
from collections.abc import Callable, Iterator, Sequence
from types import TracebackType
from typing import Any, final

from typing_extensions import Self, disjoint_base

__all__ = [
    "DispatchKey",
    "_RuntimeError",
    "_NotImplementedError",
    "_TypeError",
    "_ValueError",
    "DispatchKeySet",
    "_IncludeDispatchKeyGuard",
    "_ExcludeDispatchKeyGuard",
    "_ForceDispatchKeyGuard",
    "_PreserveDispatchKeyGuard",
    "_EnableHermeticPyObject",
    "_is_hermetic_pyobject_enabled",
    "_DispatchModule",
    "_DispatchOperatorHandle",
    "Tensor",
    "UntypedStorage",
    "dtype",
    "device",
    "bool",
    "uint8",
    "int8",
    "int16",
    "int32",
    "int64",
    "float16",
    "bfloat16",
    "float32",
    "float64",
    "complex64",
    "_dispatch_library",
    "_dispatch_dump",
    "_dispatch_dump_table",
    "_dispatch_check_invariants",
    "_dispatch_check_all_invariants",
    "_dispatch_has_kernel",
    "_dispatch_has_kernel_for_dispatch_key",
    "_dispatch_kernel_for_dispatch_key_is_fallthrough",
    "_dispatch_has_kernel_for_any_dispatch_key",
    "_dispatch_has_computed_kernel_for_dispatch_key",
    "_dispatch_has_backend_fallback",
    "_dispatch_get_all_op_names",
    "_dispatch_find_dangling_impls",
    "_dispatch_get_registrations_for_dispatch_key",
    "_dispatch_keys",
    "_dispatch_tls_local_include_set",
    "_dispatch_tls_local_exclude_set",
    "_dispatch_tls_set_dispatch_key_included",
    "_dispatch_tls_set_dispatch_key_excluded",
    "_dispatch_tls_is_dispatch_key_included",
    "_dispatch_tls_is_dispatch_key_excluded",
    "_dispatch_key_name",
    "_dispatch_key_parse",
    "_parse_dispatch_key",
    "_dispatch_is_alias_key",
    "_dispatch_keyset_full",
    "_dispatch_keyset_full_after",
    "_dispatch_keyset_to_string",
    "_dispatch_num_backends",
    "_dispatch_is_included_in_alias",
    "_dispatch_get_backend_keyset_from_autograd",
    "_dispatch_find_schema_or_throw",
    "_dispatch_call_boxed",
    "ones",
    "zeros",
    "empty",
    "full",
    "arange",
    "tensor",
]

_Key = DispatchKey | str

class DispatchKey(enum.Enum):
    Undefined = 0
    Dense = 1
    Quantized = 5
    Sparse = 8
    SparseCsr = 9
    NestedTensor = 10
    BackendSelect = 11
    Python = 13
    FuncTorchDynamicLayerBackMode = 14
    Functionalize = 15
    Conjugate = 16
    Negative = 17
    ZeroTensor = 18
    ADInplaceOrView = 19
    AutogradOther = 20
    AutogradFunctionality = 21
    AutogradNestedTensor = 22
    AutocastCPU = 24
    AutocastXPU = 27
    AutocastIPU = 28
    AutocastHPU = 29
    AutocastMPS = 31
    AutocastCUDA = 32
    AutocastPrivateUse1 = 33
    FuncTorchBatched = 34
    FuncTorchVmapMode = 36
    FuncTorchGradWrapper = 39
    PythonTLSSnapshot = 41
    FuncTorchDynamicLayerFrontMode = 42
    PreDispatch = 45
    PythonDispatcher = 46
    StartOfDenseBackends = 48
    CPU = 49
    CUDA = 50
    HIP = 51
    XLA = 52
    MPS = 53
    IPU = 54
    XPU = 55
    HPU = 56
    VE = 57
    Lazy = 58
    MTIA = 59
    MAIA = 60
    PrivateUse1 = 61
    PrivateUse2 = 62
    PrivateUse3 = 63
    Meta = 64
    StartOfQuantizedBackends = 65
    QuantizedCPU = 66
    QuantizedCUDA = 67
    QuantizedHIP = 68
    QuantizedXLA = 69
    QuantizedMPS = 70
    QuantizedIPU = 71
    QuantizedXPU = 72
    QuantizedHPU = 73
    QuantizedVE = 74
    QuantizedLazy = 75
    QuantizedMTIA = 76
    QuantizedMAIA = 77
    QuantizedPrivateUse1 = 78
    QuantizedPrivateUse2 = 79
    QuantizedPrivateUse3 = 80
    QuantizedMeta = 81
    StartOfSparseBackends = 82
    SparseCPU = 83
    SparseCUDA = 84
    SparseHIP = 85
    SparseXLA = 86
    SparseMPS = 87
    SparseIPU = 88
    SparseXPU = 89
    SparseHPU = 90
    SparseVE = 91
    SparseLazy = 92
    SparseMTIA = 93
    SparseMAIA = 94
    SparsePrivateUse1 = 95
    SparsePrivateUse2 = 96
    SparsePrivateUse3 = 97
    SparseMeta = 98
    StartOfSparseCsrBackends = 99
    SparseCsrCPU = 100
    SparseCsrCUDA = 101
    SparseCsrHIP = 102
    SparseCsrXLA = 103
    SparseCsrMPS = 104
    SparseCsrIPU = 105
    SparseCsrXPU = 106
    SparseCsrHPU = 107
    SparseCsrVE = 108
    SparseCsrLazy = 109
    SparseCsrMTIA = 110
    SparseCsrMAIA = 111
    SparseCsrPrivateUse1 = 112
    SparseCsrPrivateUse2 = 113
    SparseCsrPrivateUse3 = 114
    SparseCsrMeta = 115
    StartOfNestedTensorBackends = 116
    NestedTensorCPU = 117
    NestedTensorCUDA = 118
    NestedTensorHIP = 119
    NestedTensorXLA = 120
    NestedTensorMPS = 121
    NestedTensorIPU = 122
    NestedTensorXPU = 123
    NestedTensorHPU = 124
    NestedTensorVE = 125
    NestedTensorLazy = 126
    NestedTensorMTIA = 127
    NestedTensorMAIA = 128
    NestedTensorPrivateUse1 = 129
    NestedTensorPrivateUse2 = 130
    NestedTensorPrivateUse3 = 131
    NestedTensorMeta = 132
    StartOfAutogradFunctionalityBackends = 133
    AutogradCPU = 134
    AutogradCUDA = 135
    AutogradHIP = 136
    AutogradXLA = 137
    AutogradMPS = 138
    AutogradIPU = 139
    AutogradXPU = 140
    AutogradHPU = 141
    AutogradVE = 142
    AutogradLazy = 143
    AutogradMTIA = 144
    AutogradMAIA = 145
    AutogradPrivateUse1 = 146
    AutogradPrivateUse2 = 147
    AutogradPrivateUse3 = 148
    AutogradMeta = 149
    Autograd = 150
    CompositeImplicitAutograd = 151
    FuncTorchBatchedDecomposition = 152
    CompositeImplicitAutogradNestedTensor = 153
    CompositeExplicitAutograd = 154
    CompositeExplicitAutogradNonFunctional = 155
    EndOfDenseBackends = 64
    EndOfQuantizedBackends = 81
    EndOfSparseBackends = 98
    EndOfSparseCsrBackends = 115
    EndOfNestedTensorBackends = 132
    EndOfAutogradFunctionalityBackends = 149

@final
class DispatchKeySet:
    def __new__(cls, key: _Key | None = None) -> Self: ...
    def __or__(self, value: DispatchKeySet, /) -> DispatchKeySet: ...
    def __and__(self, value: DispatchKeySet, /) -> DispatchKeySet: ...
    def __sub__(self, value: DispatchKeySet, /) -> DispatchKeySet: ...
    def __ror__(self, value: DispatchKeySet, /) -> DispatchKeySet: ...
    def __rand__(self, value: DispatchKeySet, /) -> DispatchKeySet: ...
    def __rsub__(self, value: DispatchKeySet, /) -> DispatchKeySet: ...
    def __eq__(self, value: object, /) -> builtins.bool: ...
    def __ne__(self, value: object, /) -> builtins.bool: ...
    def __hash__(self) -> builtins.int: ...
    def __iter__(self) -> Iterator[DispatchKey]: ...
    def __getstate__(self) -> tuple[builtins.int]: ...
    def __setstate__(self, state: tuple[builtins.int]) -> None: ...
    def __reduce__(self) -> tuple[Any, ...]: ...
    def add(self, k: _Key) -> DispatchKeySet: ...
    def remove(self, k: _Key) -> DispatchKeySet: ...
    def has(self, k: _Key) -> builtins.bool: ...
    def empty(self) -> builtins.bool: ...
    def highestPriorityTypeId(self) -> DispatchKey: ...
    def raw_repr(self) -> builtins.int: ...
    @staticmethod
    def from_raw_repr(x: builtins.int) -> DispatchKeySet: ...

class _RuntimeError(RuntimeError): ...
class _NotImplementedError(NotImplementedError, RuntimeError): ...
class _TypeError(TypeError): ...
class _ValueError(ValueError): ...

@final
class _IncludeDispatchKeyGuard:
    def __new__(cls, ks: _Key | DispatchKeySet) -> Self: ...
    def __enter__(self) -> Self: ...
    def __exit__(self, *_exc: object) -> None: ...

@final
class _ExcludeDispatchKeyGuard:
    def __new__(cls, ks: DispatchKeySet | _Key) -> Self: ...
    def __enter__(self) -> Self: ...
    def __exit__(self, *_exc: object) -> None: ...

@final
class _ForceDispatchKeyGuard:
    def __new__(cls, included: DispatchKeySet, excluded: DispatchKeySet) -> Self: ...
    def __enter__(self) -> Self: ...
    def __exit__(self, *_exc: object) -> None: ...

@final
class _PreserveDispatchKeyGuard:
    def __new__(cls) -> Self: ...
    def __enter__(self) -> Self: ...
    def __exit__(self, *_exc: object) -> None: ...

@final
class _EnableHermeticPyObject:
    def __new__(cls) -> Self: ...
    def __enter__(self) -> Self: ...
    def __exit__(self, *_exc: object) -> None: ...

def _is_hermetic_pyobject_enabled() -> builtins.bool: ...

@final
class _DispatchModule:
    def def_(self, schema: str, alias: str = "") -> _DispatchModule: ...
    def def_legacy(self, schema: str) -> _DispatchModule: ...
    def def_name_t_t(self, name: str, dispatch: str = "", debug: str = "default_def_name_t_t") -> _DispatchModule: ...
    def def_schema_t_t(
        self, schema: str, dispatch: str = "", alias: str = "", debug: str = "default_def_schema_t_t"
    ) -> _DispatchModule: ...
    def impl_t_t(self, name: str, dispatch: str = "", debug: str = "impl_t_t") -> _DispatchModule: ...
    def fallback_fallthrough(self, dispatch: str = "") -> _DispatchModule: ...
    def define(self, schema: str, alias_analysis: str = "", tags: Sequence[Any] | None = None) -> str: ...
    def impl(
        self, name: str, dispatch: _Key, func: Callable[..., Any], with_keyset: builtins.bool = False
    ) -> None: ...
    def fallback(self, dispatch: _Key, func: Callable[..., Any], with_keyset: builtins.bool = False) -> None: ...
    def reset(self) -> None: ...

@disjoint_base
class _DispatchOperatorHandle:
    def __new__(cls, name: str, overload: str = "", *_args: Any, **_kwargs: Any) -> Self: ...
    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...
    def arguments(self) -> list[tuple[str, str, builtins.bool, builtins.bool]]: ...
    def debug(self) -> str: ...
    def name(self) -> str: ...
    def num_returns(self) -> builtins.int: ...
    def overload_name(self) -> str: ...
    def redispatch_boxed(self, keyset: DispatchKeySet, *args: Any, **kwargs: Any) -> Any: ...
    def schema(self) -> str: ...

@final
class dtype:
    @property
    def is_floating_point(self) -> builtins.bool: ...
    @property
    def itemsize(self) -> builtins.int: ...
    def __eq__(self, value: object, /) -> builtins.bool: ...
    def __ne__(self, value: object, /) -> builtins.bool: ...
    def __hash__(self) -> builtins.int: ...

@final
class device:
    def __new__(cls, spec: str | device) -> Self: ...
    @property
    def type(self) -> str: ...
    def __eq__(self, value: object, /) -> builtins.bool: ...
    def __ne__(self, value: object, /) -> builtins.bool: ...
    def __hash__(self) -> builtins.int: ...

bool: dtype
uint8: dtype
int8: dtype
int16: dtype
int32: dtype
int64: dtype
float16: dtype
bfloat16: dtype
float32: dtype
float64: dtype
complex64: dtype

@disjoint_base
class UntypedStorage:
    @property
    def device(self) -> device: ...
    def data_ptr(self) -> builtins.int: ...
    def nbytes(self) -> builtins.int: ...

@disjoint_base
class Tensor:
    @property
    def device(self) -> device: ...
    @property
    def dtype(self) -> dtype: ...
    @property
    def is_meta(self) -> builtins.bool: ...
    @property
    def shape(self) -> tuple[builtins.int, ...]: ...
    def __len__(self) -> builtins.int: ...
    def clone(self) -> Tensor: ...
    def contiguous(self) -> Tensor: ...
    def cuda(self) -> Tensor: ...
    def data_ptr(self) -> builtins.int: ...
    def dim(self) -> builtins.int: ...
    def is_contiguous(self) -> builtins.bool: ...
    def item(self) -> builtins.float | builtins.int | builtins.bool | complex: ...
    def numel(self) -> builtins.int: ...
    def size(self) -> tuple[builtins.int, ...]: ...
    def stride(self) -> tuple[builtins.int, ...]: ...
    def tolist(self) -> Any: ...
    def untyped_storage(self) -> UntypedStorage: ...

_Size = builtins.int | Sequence[builtins.int]
_Device = device | str | None

def ones(*size: _Size, dtype: dtype | None = None, device: _Device = None) -> Tensor: ...
def zeros(*size: _Size, dtype: dtype | None = None, device: _Device = None) -> Tensor: ...
def empty(*size: _Size, dtype: dtype | None = None, device: _Device = None) -> Tensor: ...
def full(size: _Size, fill_value: complex, *, dtype: dtype | None = None, device: _Device = None) -> Tensor: ...
def arange(
    start: complex,
    end: complex | None = None,
    step: complex | None = None,
    *,
    dtype: dtype | None = None,
    device: _Device = None,
) -> Tensor: ...
def tensor(data: Any, *, dtype: dtype | None = None, device: _Device = None) -> Tensor: ...

def _dispatch_library(
    kind: str, name: str, dispatch: str, file: str = "/dev/null", linenum: builtins.int = 0
) -> _DispatchModule: ...
def _dispatch_dump(name: str) -> str: ...
def _dispatch_dump_table(name: str) -> str: ...
def _dispatch_check_invariants(name: str) -> None: ...
def _dispatch_check_all_invariants() -> None: ...
def _dispatch_has_kernel(name: str) -> builtins.bool: ...
def _dispatch_has_kernel_for_dispatch_key(name: str, dispatch: _Key) -> builtins.bool: ...
def _dispatch_kernel_for_dispatch_key_is_fallthrough(name: str, dispatch: _Key) -> builtins.bool: ...
def _dispatch_has_kernel_for_any_dispatch_key(name: str, ks: DispatchKeySet) -> builtins.bool: ...
def _dispatch_has_computed_kernel_for_dispatch_key(name: str, dispatch: _Key) -> builtins.bool: ...
def _dispatch_has_backend_fallback(dispatch: _Key) -> builtins.bool: ...
def _dispatch_get_all_op_names() -> list[str]: ...
def _dispatch_find_dangling_impls() -> list[str]: ...
def _dispatch_get_registrations_for_dispatch_key(dispatch_key: str = "") -> list[str]: ...
def _dispatch_keys(t: Tensor) -> DispatchKeySet: ...
def _dispatch_tls_local_include_set() -> DispatchKeySet: ...
def _dispatch_tls_local_exclude_set() -> DispatchKeySet: ...
def _dispatch_tls_set_dispatch_key_included(k: _Key, desired: builtins.bool) -> None: ...
def _dispatch_tls_set_dispatch_key_excluded(k: _Key, desired: builtins.bool) -> None: ...
def _dispatch_tls_is_dispatch_key_included(k: _Key) -> builtins.bool: ...
def _dispatch_tls_is_dispatch_key_excluded(k: _Key) -> builtins.bool: ...
def _dispatch_key_name(k: _Key) -> str: ...
def _dispatch_key_parse(k: _Key) -> DispatchKey | str: ...
def _parse_dispatch_key(k: str) -> DispatchKey | str | None: ...
def _dispatch_is_alias_key(k: _Key) -> builtins.bool: ...
def _dispatch_keyset_full() -> DispatchKeySet: ...
def _dispatch_keyset_full_after(k: _Key) -> DispatchKeySet: ...
def _dispatch_keyset_to_string(ks: DispatchKeySet) -> str: ...
def _dispatch_num_backends() -> builtins.int: ...
def _dispatch_is_included_in_alias(k: _Key, alias: _Key) -> builtins.bool: ...
def _dispatch_get_backend_keyset_from_autograd(k: _Key) -> DispatchKeySet: ...
def _dispatch_find_schema_or_throw(name: str, overload: str) -> _DispatchOperatorHandle: ...
def _dispatch_call_boxed(handle: _DispatchOperatorHandle, *args: Any, **kwargs: Any) -> Any: ...
