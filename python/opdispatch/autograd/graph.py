"""Backward-graph nodes as Python objects (``torch.autograd.graph.Node``): ``t.grad_fn`` is an
instance of a class named after the node (``MulBackward0``, ``AccumulateGrad``, ``SqBackward``),
one object per node while it is referenced."""

from __future__ import annotations

import weakref
from typing import Any

__all__ = ["Node"]


class Node:
    """A node of the backward graph."""

    __slots__ = ("_handle", "__weakref__")

    def __init__(self, handle: Any) -> None:
        self._handle = handle

    def name(self) -> str:
        return str(self._handle.name())

    @property
    def next_functions(self) -> tuple[tuple[Node | None, int], ...]:
        return tuple(self._handle.next_functions())

    @property
    def variable(self) -> Any:
        """The leaf tensor of an ``AccumulateGrad`` node."""
        v = self._handle._variable()
        if v is None:
            raise AttributeError(f"'{type(self).__name__}' object has no attribute 'variable'")
        return v

    def __repr__(self) -> str:
        return f"<{self.name()} object at {hex(id(self))}>"


_classes: dict[str, type[Node]] = {}
_live: weakref.WeakValueDictionary[int, Node] = weakref.WeakValueDictionary()


def _wrap_node(handle: Any) -> Node:
    key = handle._id()
    node = _live.get(key)
    if node is not None:
        return node
    name = handle.name()
    cls = _classes.get(name)
    if cls is None:
        cls = type(name, (Node,), {"__slots__": ()})
        _classes[name] = cls
    node = cls(handle)
    _live[key] = node
    return node
