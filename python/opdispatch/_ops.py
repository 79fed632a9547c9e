"""``opdispatch.ops``: ``ops.<ns>.<op>`` overload packets and ``.<overload>`` overloads."""

from __future__ import annotations

from typing import Any

from . import _C

__all__ = ["ops", "OpOverload", "OpOverloadPacket"]


class OpOverload:
    """One overload of an operator: ``ops.ns.op.default`` / ``ops.ns.op.ovl``."""

    def __init__(self, packet: "OpOverloadPacket", handle: Any, overloadname: str) -> None:
        self._packet = packet
        self._handle = handle
        self._overloadname = overloadname
        self._schema_name = handle.name()
        self._op = handle.__call__
        self.__call__ = handle.__call__  # type: ignore[method-assign]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._handle(*args, **kwargs)

    @property
    def _schema(self) -> str:
        return self._handle.schema()

    def name(self) -> str:
        """``"ns::op.overload"`` (PyTorch's OpOverload.name())."""
        return self._schema_name + "." + self._overloadname

    def redispatch(self, keyset: Any, *args: Any, **kwargs: Any) -> Any:
        """Runs the kernel for ``keyset`` as given (no TLS, no fallthrough masks)."""
        return self._handle.redispatch_boxed(keyset, *args, **kwargs)

    def __str__(self) -> str:
        ns, op = self._schema_name.split("::")
        return f"{ns}.{op}.{self._overloadname}"

    def __repr__(self) -> str:
        ns, op = self._schema_name.split("::")
        return f"<OpOverload(op='{ns}.{op}', overload='{self._overloadname}')>"


class OpOverloadPacket:
    """All overloads of ``ns::op``; calling it picks the overload whose schema binds."""

    def __init__(self, ns: str, name: str) -> None:
        self._ns = ns
        self._name = name
        self._qualified_op_name = f"{ns}::{name}"
        self._overload_names = _overload_names(self._qualified_op_name)
        if not self._overload_names:
            raise AttributeError(f"'_OpNamespace' '{ns}' object has no attribute '{name}'")
        self._default = None
        if len(self._overload_names) == 1:
            self._default = getattr(self, self._overload_names[0])

    def __getattr__(self, key: str) -> OpOverload:
        if key.startswith("__"):
            raise AttributeError(
                f"'{self}' can't have an overload name beginning with '__' and the underlying op "
                f"{self._qualified_op_name} has no attribute {key} either."
            )
        overload = "" if key == "default" else key
        try:
            handle = _C._dispatch_find_schema_or_throw(self._qualified_op_name, overload)
        except RuntimeError:
            raise AttributeError(f"The underlying op of '{self}' has no overload name '{key}'") from None
        ov = OpOverload(self, handle, key)
        setattr(self, key, ov)
        return ov

    def overloads(self) -> list[str]:
        return list(self._overload_names)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._default is not None:
            return self._default._handle(*args, **kwargs)
        errors = []
        for name in self._overload_names:
            ov = getattr(self, name)
            try:
                return ov._handle(*args, **kwargs)
            except RuntimeError as e:
                msg = str(e)
                if "Expected a value of type" in msg or "missing value for argument" in msg or "expected at most" in msg or "Unknown keyword argument" in msg:
                    errors.append(msg)
                    continue
                raise
        raise TypeError(
            "Overloaded torch operator invoked from Python failed to match any schema:\n" + "\n\n".join(errors)
        )

    def __str__(self) -> str:
        return f"{self._ns}.{self._name}"

    def __repr__(self) -> str:
        return f"<OpOverloadPacket(op='{self._ns}.{self._name}')>"


def _overload_names(qualified: str) -> list[str]:
    names = []
    for full in _C._dispatch_get_all_op_names():
        base, _, ovl = full.partition(".")
        if base == qualified:
            try:
                _C._dispatch_find_schema_or_throw(base, ovl)
            except RuntimeError:
                continue
            names.append(ovl or "default")
    names.sort(key=lambda n: (n != "default", n))
    return names


class _OpNamespace:
    """``ops.<ns>``: resolves operators lazily and caches the packets."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __getattr__(self, op_name: str) -> OpOverloadPacket:
        if op_name.startswith("__"):
            raise AttributeError(f"Invalid attribute '{op_name}' for '_OpNamespace' '{self.name}'")
        packet = OpOverloadPacket(self.name, op_name)
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
    return getattr(getattr(getattr(ops, ns), name), overload or "default")
