"""opdispatch: PyTorch's extensible operator dispatcher, rebuilt in Rust.

Code written against ``torch.library`` / ``torch._C._dispatch_*`` runs after swapping the
import: ``opdispatch._C`` holds the native dispatcher surface, ``opdispatch.library`` the
``Library`` front end and ``opdispatch.ops`` the operator namespaces.
"""

import atexit as _atexit

from . import _C

# Tensors still held by Rust after the interpreter finalizes must not call back into it.
_atexit.register(_C._disarm_pyobject_hooks)
from ._C import (  # noqa: F401
    Tag,
    Tensor,
    UntypedStorage,
    arange,
    device,
    dtype,
    empty,
    full,
    ones,
    tensor,
    zeros,
)
from ._C import bool, uint8, int8, int16, int32, int64, float16, bfloat16, float32, float64, complex64  # noqa: F401,A004
from . import cuda, exceptions, library, overrides, utils  # noqa: E402,F401
from ._C import get_num_threads, set_num_threads  # noqa: E402,F401
from ._ops import ops  # noqa: E402
from ._tensor_methods import *  # noqa: E402,F401,F403
from ._tensor_methods import from_numpy  # noqa: E402,F401
from ._more_ops import *  # noqa: E402,F401,F403

from . import autograd  # noqa: E402
from .random import (  # noqa: E402,F401
    Generator,
    default_generator,
    initial_seed,
    manual_seed,
    rand,
    rand_like,
    randint,
    randn,
    randn_like,
    seed,
)
from .autograd import enable_grad, inference_mode, no_grad, set_grad_enabled  # noqa: E402,F401
from ._C import is_grad_enabled, is_inference_mode_enabled  # noqa: E402,F401
from ._more_ops import eye, linspace  # noqa: E402,F401
from .overrides import _overridable  # noqa: E402

# The factories take part in __torch_function__ too (a TorchFunctionMode sees ``torch.ones``).
for _name in ("ones", "zeros", "empty", "full", "arange", "tensor", "rand", "randn", "randint", "rand_like",
              "randn_like", "eye", "linspace"):
    globals()[_name] = _overridable(globals()[_name], _name)
del _name

__all__ = [
    "Tag",
    "Tensor",
    "UntypedStorage",
    "arange",
    "autograd",
    "cuda",
    "enable_grad",
    "inference_mode",
    "is_grad_enabled",
    "no_grad",
    "set_grad_enabled",
    "device",
    "dtype",
    "empty",
    "full",
    "library",
    "manual_seed",
    "rand",
    "rand_like",
    "randint",
    "randn",
    "randn_like",
    "ones",
    "ops",
    "tensor",
    "zeros",
]
