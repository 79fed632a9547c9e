"""``opdispatch.ops``: ``ops.<ns>.<op>`` overload packets and ``.<overload>`` overloads.

``OpOverload`` subclasses the native ``_DispatchOperatorHandle``, so calling an overload goes
straight into Rust (argument binding, dispatch, result conversion) with no Python frame. A
packet with a single overload is itself bound to that overload in the same way; a packet with
several overloads (``_C._DispatchOverloadPacket``) picks, natively too, the first whose schema
binds the arguments.
"""

from __future__ import annotations

from typing import Any

from . import _C

__all__ = ["ops", "Argument", "FunctionSchema", "OpOverload", "OpOverloadPacket"]


class Argument:
    """One argument or return of a schema (the parts of PyTorch's ``torch._C.Argument`` that
    callers commonly read)."""

    __slots__ = ("name", "type", "kwarg_only", "has_default_value")

    def __init__(self, name: str, type: str, kwarg_only: bool = False, has_default_value: bool = False) -> None:
        self.name = name
        self.type = type
        self.kwarg_only = kwarg_only
        self.has_default_value = has_default_value

    def __repr__(self) -> str:
        return f"Argument(name={self.name!r}, type={self.type!r})"


class FunctionSchema:
    """An operator's schema: ``str()`` is PyTorch's canonical form; ``name``,
    ``overload_name``, ``arguments`` and ``returns`` as on ``torch._C.FunctionSchema``."""

    def __init__(self, handle: Any) -> None:
        native = _C._DispatchOperatorHandle  # OpOverload.name() means something else
        self._text = native.schema(handle)
        self.name = native.name(handle)
        self.overload_name = native.overload_name(handle)
        self.arguments = [Argument(n, t, k, d) for (n, t, k, d) in handle.arguments()]
        self.returns = [Argument(n, t) for (n, t) in handle.returns()]

    def __str__(self) -> str:
        return self._text

    def __repr__(self) -> str:
        return self._text

    def __eq__(self, other: object) -> bool:
        return str(self) == str(other) if isinstance(other, (FunctionSchema, str)) else NotImplemented

    def __hash__(self) -> int:
        return hash(self._text)


class OpOverload(_C._DispatchOperatorHandle):
    """One overload of an operator: ``ops.ns.op.default`` / ``ops.ns.op.ovl``."""

    _packet: OpOverloadPacket
    _overloadname: str
    _schema_name: str
    _name: str
    __name__: str
    __qualname__: str

    # Everything happens in __new__ (no __init__): one Python frame per overload made.
    def __new__(cls, packet: OpOverloadPacket, qualified: str, overloadname: str) -> OpOverload:
        self = super().__new__(cls, qualified, "" if overloadname == "default" else overloadname)
        self._packet = packet
        self._overloadname = overloadname
        self._schema_name = qualified
        ns, op = qualified.split("::")
        # torch's OpOverload attributes (what __torch_dispatch__ handlers and errors read).
        self.__name__ = f"{op}.{overloadname}"
        self.__module__ = f"opdispatch.ops.{ns}"
        self._name = qualified if overloadname == "default" else f"{qualified}.{overloadname}"
        self.__qualname__ = self._name
        return self

    @property
    def namespace(self) -> str:
        return self._schema_name.split("::")[0]

    @property
    def overloadpacket(self) -> OpOverloadPacket:
        return self._packet


    @property
    def _schema(self) -> FunctionSchema:
        return FunctionSchema(self)

    def name(self) -> str:
        """``"ns::op.overload"``, ``"ns::op"`` for the default overload (PyTorch's
        ``OpOverload.name()``)."""
        return self._name

    def redispatch(self, keyset: Any, *args: Any, **kwargs: Any) -> Any:
        """Runs the kernel for ``keyset`` as given (no TLS, no fallthrough masks)."""
        return self.redispatch_boxed(keyset, *args, **kwargs)

    def __str__(self) -> str:
        ns, op = self._schema_name.split("::")
        return f"{ns}.{op}.{self._overloadname}"

    def __repr__(self) -> str:
        ns, op = self._schema_name.split("::")
        return f"<OpOverload(op='{ns}.{op}', overload='{self._overloadname}')>"


class _PacketMixin:
    _ns: str
    _name: str
    _qualified_op_name: str
    _overload_names: list[str]

    def _init_packet(self, ns: str, name: str, overloads: list[str]) -> None:
        self._ns = ns
        self._name = name
        self._qualified_op_name = f"{ns}::{name}"
        self._overload_names = overloads
        attrs = vars(self)
        attrs["__name__"] = name
        attrs["__qualname__"] = self._qualified_op_name
        attrs["__module__"] = f"opdispatch.ops.{ns}"

    def __getattr__(self, key: str) -> OpOverload:
        if key.startswith("__"):
            raise AttributeError(
                f"'{self}' can't have an overload name beginning with '__' and the underlying op "
                f"{self._qualified_op_name} has no attribute {key} either."
            )
        try:
            ov = OpOverload(self, self._qualified_op_name, key)  # type: ignore[arg-type]
        except RuntimeError:
            raise AttributeError(f"The underlying op of '{self}' has no overload name '{key}'") from None
        vars(self)[key] = ov  # not setattr: "tags" is a read-only property of the packet
        return ov

    def overloads(self) -> list[str]:
        return list(self._overload_names)

    def __str__(self) -> str:
        return f"{self._ns}.{self._name}"

    def __repr__(self) -> str:
        return f"<OpOverloadPacket(op='{self._ns}.{self._name}')>"


class OpOverloadPacket(_PacketMixin, _C._DispatchOperatorHandle):
    """All overloads of ``ns::op``. With a single overload, calling the packet calls it
    directly (natively); see ``_MultiOverloadPacket`` for the general case."""

    # Everything happens in __new__ (no __init__): one Python frame per packet made.
    def __new__(cls, ns: str, name: str, overloads: list[str]) -> OpOverloadPacket:
        first = overloads[0]
        self = super().__new__(cls, f"{ns}::{name}", "" if first == "default" else first)
        self._init_packet(ns, name, overloads)
        return self

    @property
    def tags(self) -> Any:
        # Tags belong to overloads: as in torch, `packet.tags` names an overload "tags".
        return _PacketMixin.__getattr__(self, "tags")


# Calls on these go straight to the native vectorcall entry (no argument tuple, no dict).
_C._enable_vectorcall(OpOverload)
_C._enable_vectorcall(OpOverloadPacket)


class _MultiOverloadPacket(OpOverloadPacket, _C._DispatchOverloadPacket):
    """A packet with several overloads. A call binds the arguments to each overload's schema
    in order and calls the first that binds (natively, in ``_DispatchOverloadPacket``, which
    remembers per argument signature which overload bound); binding runs no kernel, so a
    kernel's own error is never mistaken for a mismatch."""

    def __new__(cls, ns: str, name: str, overloads: list[str]) -> _MultiOverloadPacket:
        self: _MultiOverloadPacket = _C._DispatchOverloadPacket.__new__(cls, f"{ns}::{name}", overloads)
        self._init_packet(ns, name, overloads)
        return self


# One class in torch: the multi-overload variant is an implementation detail.
_MultiOverloadPacket.__name__ = _MultiOverloadPacket.__qualname__ = "OpOverloadPacket"
_C._enable_packet_vectorcall(_MultiOverloadPacket)


def _overload_names(qualified: str) -> list[str]:
    # The dispatcher keeps its operators indexed by "ns::op": one lookup, not a scan over
    # every registered operator. Its order is ours: "" (the default overload) first, then
    # the others sorted by code point.
    return ["default" if n == "" else n for n in _C._dispatch_get_overload_names(qualified)]


class _OpNamespace:
    """``ops.<ns>``: resolves operators lazily and caches the packets."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __getattr__(self, op_name: str) -> OpOverloadPacket:
        if op_name.startswith("__"):
            raise AttributeError(f"Invalid attribute '{op_name}' for '_OpNamespace' '{self.name}'")
        overloads = _overload_names(f"{self.name}::{op_name}")
        if not overloads:
            raise AttributeError(f"'_OpNamespace' '{self.name}' object has no attribute '{op_name}'")
        cls = OpOverloadPacket if len(overloads) == 1 else _MultiOverloadPacket
        packet = cls(self.name, op_name, overloads)
        setattr(self, op_name, packet)
        return packet


class _Ops:
    """``opdispatch.ops``."""

    def __init__(self) -> None:
        self._dir: list[str] = []

    def __getattr__(self, name: str) -> _OpNamespace:
        if name.startswith("__"):
            raise AttributeError(name)
        ns = _OpNamespace(name)
        setattr(self, name, ns)
        self._dir.append(name)
        return ns


ops = _Ops()


def _overload_for(qualified: str, overload: str) -> OpOverload:
    """The OpOverload object for ``qualified`` / ``overload`` (given to Python fallbacks)."""
    ns, name = qualified.split("::")
    result: OpOverload = getattr(getattr(getattr(ops, ns), name), overload or "default")
    return result
