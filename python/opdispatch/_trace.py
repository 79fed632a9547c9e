"""See the dispatcher at work: :func:`trace` records every dispatcher entry of a region.

Each entry (a call from Python, a kernel's call of another operator, a redispatch below the
current key) is recorded by the dispatcher itself with the runtime key that ran, the kind of
kernel in that slot, its nesting depth and its duration. While no trace is active, a call pays
one load and a predicted branch for this.

    with opdispatch.library.trace() as t:
        y = (x * 2).sum()
    print(t)                             # an indented call tree
    t.save_chrome_trace("trace.json")    # for chrome://tracing and Perfetto
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from . import _C

__all__ = ["TraceEvent", "DispatchTrace", "trace"]


@dataclass(frozen=True)
class TraceEvent:
    """One dispatcher entry."""

    #: ``ns::name`` or ``ns::name.overload``.
    operator: str
    #: The runtime key whose kernel ran ("Undefined" for a call without dispatch keys).
    key: str
    #: The slot's kernel: "native", "boxed", "python", ... or "missing" (the call failed).
    kind: str
    #: Entered through a redispatch (a kernel passing the call below its own key).
    redispatch: bool
    #: Nesting below the trace's start: 0 for calls made outside any kernel.
    depth: int
    #: Nanoseconds from the trace's start to the entry, and spent in it (nested entries too).
    start_ns: int
    duration_ns: int
    #: The entry raised.
    failed: bool

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _us(ns: int) -> str:
    return f"{ns / 1000:.1f} us"


class DispatchTrace:
    """The record of one :func:`trace` region (filled in when the region ends)."""

    def __init__(self) -> None:
        self.events: list[TraceEvent] = []
        self.duration_ns = 0
        self._id: int | None = None
        self._thread: int | None = None

    def __enter__(self) -> DispatchTrace:
        if self._id is not None:
            raise RuntimeError("this dispatch trace is already recording")
        self.events = []
        self._thread = threading.get_ident()
        self._id = _C._dispatch_trace_begin()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        rid, self._id = self._id, None
        if rid is None:
            return
        rows, self.duration_ns = _C._dispatch_trace_end(rid)
        self.events = [TraceEvent(*row) for row in rows]

    def __len__(self) -> int:
        return len(self.events)

    def __iter__(self) -> Any:
        return iter(self.events)

    def to_dict(self) -> dict[str, Any]:
        return {"duration_ns": self.duration_ns, "events": [e.to_dict() for e in self.events]}

    def __str__(self) -> str:
        n = len(self.events)
        lines = [f"dispatch trace: {n} {'entry' if n == 1 else 'entries'} in {_us(self.duration_ns)}"]
        for e in self.events:
            how = "redispatch " if e.redispatch else ""
            failed = "  FAILED" if e.failed else ""
            lines.append(
                f"{'  ' * (e.depth + 1)}{e.operator} [{e.key}] {how}{e.kind} {_us(e.duration_ns)}{failed}"
            )
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<DispatchTrace: {len(self.events)} entries>"

    def to_chrome_trace(self) -> dict[str, Any]:
        """The trace in Chrome's trace-event format (complete events, microsecond times)."""
        pid = os.getpid()
        tid = self._thread or 0
        events = [
            {
                "name": e.operator,
                "cat": "redispatch" if e.redispatch else "call",
                "ph": "X",
                "ts": e.start_ns / 1000,
                "dur": e.duration_ns / 1000,
                "pid": pid,
                "tid": tid,
                "args": {"key": e.key, "kernel": e.kind, "depth": e.depth, "failed": e.failed},
            }
            for e in self.events
        ]
        return {"traceEvents": events, "displayTimeUnit": "ns"}

    def save_chrome_trace(self, path: str | os.PathLike[str]) -> None:
        """Writes :meth:`to_chrome_trace` as JSON (open it in chrome://tracing or Perfetto)."""
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.to_chrome_trace(), f)


def trace() -> DispatchTrace:
    """A context manager that records every dispatcher entry on this thread while it is open,
    including redispatches and the calls kernels make; the trace it returns holds them when
    the region ends. Traces nest: an inner region's entries also appear in the outer one."""
    return DispatchTrace()
