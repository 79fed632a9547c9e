"""See the dispatcher: :func:`explain` a call and :func:`dispatch_table` of an operator.

Both read the operator's computed table and the precedence rule behind every slot, which the
dispatcher records; nothing runs. PyTorch answers these questions only with text dumps
(``_dispatch_dump_table``) read against the rules by hand.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

from . import _C

__all__ = ["Explanation", "Slot", "DispatchTableView", "explain", "dispatch_table"]


@dataclass(frozen=True)
class Slot:
    """One dispatch-table slot: its runtime key, what it holds and why."""

    key: str
    #: "native", "boxed", "python", "fallthrough", "redispatch", "ambiguous" or "missing".
    kind: str
    #: The precedence rule, as ``_dispatch_dump_table`` labels it ("kernel", "math kernel", ...).
    rule: str
    #: The alias key whose registration fills the slot (alias rules only).
    alias: str | None
    #: The registration's debug string ("registered at FILE:LINE", or the fallback's).
    registered: str
    #: False: an earlier registration left this kernel (PyTorch's incremental table updates
    #: do not recompute every slot); the call still runs it.
    current: bool
    redispatch_mask: list[str] | None
    description: str
    fix: str | None

    @classmethod
    def _of(cls, d: dict[str, Any]) -> Slot:
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Explanation:
    """What a call would run and why (the result of :func:`explain`)."""

    operator: str
    schema: str | None
    #: Per schema argument: name, whether it takes part in key extraction, its key set.
    arguments: list[dict[str, Any]]
    argument_keys: list[str]
    tls_included: list[str]
    tls_excluded: list[str]
    fallthrough_keys: list[str]
    #: The key set the call dispatches on (TLS and fallthrough mask applied), highest first.
    dispatch_keys: list[str]
    #: Slots whose kernel only passes the call on (the autograd fallback, for one).
    passed: list[Slot]
    #: The slot whose kernel runs (kind "missing": the call raises NotImplementedError).
    chosen: Slot
    chosen_keys: list[str]
    #: Non-fallthrough slots below the chosen key that a redispatch would visit, in order.
    below: list[Slot]
    text: str = field(repr=False)

    @property
    def key(self) -> str:
        """The runtime key whose kernel runs."""
        return self.chosen.key

    @property
    def will_run(self) -> bool:
        return self.chosen.kind not in ("missing", "ambiguous")

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "text"}
        d["passed"] = [s.to_dict() for s in self.passed]
        d["chosen"] = self.chosen.to_dict()
        d["below"] = [s.to_dict() for s in self.below]
        return d

    def __str__(self) -> str:
        return self.text


def _overloads_to_try(op: Any) -> list[Any]:
    # A packet resolves as its call does: the first overload whose schema binds the arguments.
    names = getattr(op, "overloads", None)
    if callable(names) and not hasattr(op, "_overloadname"):
        return [getattr(op, n) for n in names()]
    return [op]


def explain(op: Any, /, *args: Any, **kwargs: Any) -> Explanation:
    """Explains, without running any kernel, what ``op(*args, **kwargs)`` would do on this
    thread: the arguments' key sets, the thread-local include/exclude sets, the operator's
    fallthrough keys, the resulting key set, the slot that runs with its kernel kind, where it
    was registered and the precedence rule that put it there, and the keys a redispatch would
    visit below it. ``op`` is an ``OpOverload``, a packet or a ``"ns::op[.overload]"`` name.
    When the slot is missing, ``str()`` ends with what to register.
    """
    candidates = _overloads_to_try(op)
    err: RuntimeError | None = None
    for cand in candidates:
        try:
            d = _C._dispatch_explain(cand, args, kwargs)
        except RuntimeError as e:  # arguments do not bind this overload's schema
            if len(candidates) == 1:
                raise
            err = e
            continue
        d["passed"] = [Slot._of(s) for s in d["passed"]]
        d["chosen"] = Slot._of(d["chosen"])
        d["below"] = [Slot._of(s) for s in d["below"]]
        return Explanation(**d)
    raise TypeError(f"no overload of {op} accepts these arguments (last error: {err})")


# Colours of the HTML view, one per rule.
_RULE_COLOURS = {
    "kernel": "#c6efce",
    "default backend kernel": "#bdd7ee",
    "math kernel": "#ffe699",
    "nested kernel": "#ffe699",
    "autograd kernel": "#f8cbad",
    "batched kernel": "#d9d2e9",
    "backend fallback": "#e7e6e6",
    "ambiguous autogradother": "#ff9999",
    "missing": "#ffffff",
}


class DispatchTableView:
    """An operator's computed dispatch table, one row per valid runtime slot in dispatch-table
    order (the result of :func:`dispatch_table`). Prints as text, renders as HTML in Jupyter
    (``_repr_html_``) and as a standalone page (:meth:`to_html`)."""

    def __init__(self, operator: str, rows: list[Slot]) -> None:
        self.operator = operator
        self.rows = rows

    def __iter__(self) -> Any:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def row(self, key: str) -> Slot | None:
        """The row of runtime key ``key``, if its slot holds a kernel."""
        return next((r for r in self.rows if r.key == key), None)

    def to_dicts(self) -> list[dict[str, Any]]:
        return [r.to_dict() for r in self.rows]

    def __str__(self) -> str:
        head = ("key", "kind", "rule", "alias", "registered")
        cells = [head] + [
            (r.key, r.kind, r.rule + ("" if r.current else " (stale)"), r.alias or "", r.registered)
            for r in self.rows
        ]
        widths = [max(len(c[i]) for c in cells) for i in range(len(head) - 1)]
        lines = [f"dispatch table of {self.operator}"]
        for c in cells:
            lines.append("  ".join(c[i].ljust(widths[i]) for i in range(len(widths))) + "  " + c[-1])
        return "\n".join(line.rstrip() for line in lines)

    def __repr__(self) -> str:
        return f"<DispatchTableView {self.operator}: {len(self.rows)} slots>"

    def _repr_html_(self) -> str:
        rows = []
        for r in self.rows:
            colour = _RULE_COLOURS.get(r.rule, "#ffffff")
            stale = "" if r.current else " <em>(stale)</em>"
            rows.append(
                f'<tr style="background:{colour}" title="{html.escape(r.description)}">'
                f"<td><code>{html.escape(r.key)}</code></td><td>{html.escape(r.kind)}</td>"
                f"<td>{html.escape(r.rule)}{stale}</td><td>{html.escape(r.alias or '')}</td>"
                f"<td>{html.escape(r.registered)}</td></tr>"
            )
        legend = "".join(
            f'<span style="background:{c};padding:0 6px;margin-right:4px">{html.escape(k)}</span>'
            for k, c in _RULE_COLOURS.items()
            if k != "missing"
        )
        return (
            f'<div class="opdispatch-table"><h3><code>{html.escape(self.operator)}</code></h3>'
            f"<p>{legend}</p>"
            '<table border="1" cellspacing="0" cellpadding="3">'
            "<tr><th>runtime key</th><th>kernel</th><th>rule</th><th>alias key</th>"
            "<th>registered at</th></tr>" + "".join(rows) + "</table></div>"
        )

    def to_html(self) -> str:
        """A standalone HTML page of the table."""
        return (
            "<!DOCTYPE html><html><head><meta charset='utf-8'>"
            f"<title>dispatch table of {html.escape(self.operator)}</title></head>"
            f"<body style='font-family:sans-serif'>{self._repr_html_()}</body></html>"
        )


def dispatch_table(op: Any) -> DispatchTableView:
    """The computed dispatch table of ``op`` (``OpOverload``, packet's default overload, or a
    ``"ns::op[.overload]"`` name), each slot with its kernel kind, rule and registration."""
    name = op if isinstance(op, str) else op.name() if hasattr(op, "name") else str(op)
    rows = [Slot._of(d) for d in _C._dispatch_table_rows(op)]
    return DispatchTableView(name, rows)
