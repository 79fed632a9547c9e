"""``python -m opdispatch table NS::OP[.OVERLOAD] [--html FILE]``: prints an operator's computed
dispatch table with the rule behind each slot, or writes it as an HTML page."""

from __future__ import annotations

import argparse
import sys

from ._explain import dispatch_table


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m opdispatch")
    sub = ap.add_subparsers(dest="command", required=True)
    t = sub.add_parser("table", help="an operator's computed dispatch table")
    t.add_argument("op", help="qualified operator name, e.g. aten::add.Tensor")
    t.add_argument("--html", metavar="FILE", help="write a standalone HTML page instead")
    t.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                   help="import MODULE first (one that registers the operator)")
    args = ap.parse_args(argv)
    for m in args.imports:
        __import__(m)
    try:
        view = dispatch_table(args.op)
    except RuntimeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.html:
        with open(args.html, "w", encoding="utf-8") as f:
            f.write(view.to_html())
        print(f"wrote {args.html}")
    else:
        print(view)
    return 0


if __name__ == "__main__":
    sys.exit(main())
