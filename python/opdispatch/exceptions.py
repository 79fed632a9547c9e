"""Exceptions raised by the dispatcher.

Each class subclasses the builtin exception PyTorch raises for the same failure and keeps its
name, so ``except RuntimeError`` code written for PyTorch keeps working and messages read the
same, while ``except opdispatch.exceptions.NotImplementedError`` catches only the dispatcher's
own "no kernel" errors. Exceptions raised inside Python kernels propagate unchanged (they are
not wrapped in these classes).
"""

from ._C import _IndexError as IndexError  # noqa: A001
from ._C import _NotImplementedError as NotImplementedError  # noqa: A001
from ._C import _RuntimeError as RuntimeError  # noqa: A001
from ._C import _TypeError as TypeError  # noqa: A001
from ._C import _ValueError as ValueError  # noqa: A001

__all__ = ["IndexError", "NotImplementedError", "RuntimeError", "TypeError", "ValueError"]
