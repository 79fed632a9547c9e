#!/usr/bin/env python3
"""The dispatch-table page in a real browser (issue 14): headless Chromium renders
`dispatch_table(op).to_html()` for an operator whose slots come from several precedence rules;
the rendered DOM must show every runtime key of the table with its rule, and a screenshot must
come out as a non-trivial PNG.

    python scripts/browser_test.py [--chromium PATH] [--keep DIR]

Exit 0 on success, 1 on a failure, 77 (skipped, with the reason on stderr) where no Chromium
is installed.
"""

from __future__ import annotations

import argparse
import html.parser
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

from opdispatch import library


class _Text(html.parser.HTMLParser):
    """The rendered page's table cells, row by row."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self.rows:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _png_size_and_colours(path: str) -> tuple[int, int, int]:
    """Width, height and the number of distinct byte values in the decoded image data."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise AssertionError(f"{path} is not a PNG")
    width, height = struct.unpack(">II", data[16:24])
    idat = b""
    pos = 8
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        if kind == b"IDAT":
            idat += data[pos + 8 : pos + 8 + n]
        pos += 12 + n
    return width, height, len(set(zlib.decompress(idat)))


def main(argv: list[str] | None = None) -> int:
    tmp = tempfile.mkdtemp(prefix="opdispatch-browser-")
    try:
        return _run(argv, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _run(argv: list[str] | None, tmp: str) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser"))
    ap.add_argument("--keep", help="write the page and the screenshot into this directory")
    a = ap.parse_args(argv)
    if not a.chromium:
        print("browser test skipped: no chromium on PATH (Debian: apt-get install chromium)", file=sys.stderr)
        return 77

    lib = library.Library("browser_t", "DEF")
    try:
        lib.define("f(Tensor x) -> Tensor")
        lib.impl("f", lambda x: x, "CPU")
        lib.impl("f", lambda x: x, "CompositeImplicitAutograd")
        lib.impl("f", lambda x: x, "AutogradCPU")
        view = library.dispatch_table("browser_t::f")
        expected = {r.key: r.rule for r in view.rows}
        out = a.keep or tmp
        os.makedirs(out, exist_ok=True)
        page = os.path.join(out, "table.html")
        shot = os.path.join(out, "table.png")
        with open(page, "w", encoding="utf-8") as f:
            f.write(view.to_html())
    finally:
        lib._destroy()

    base = [a.chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    url = "file://" + os.path.abspath(page)
    dom = subprocess.run(base + ["--dump-dom", url], capture_output=True, text=True, timeout=120)
    if dom.returncode != 0 or "<table" not in dom.stdout:
        print(f"chromium --dump-dom failed (rc={dom.returncode}):\n{dom.stderr[-2000:]}", file=sys.stderr)
        return 1
    parser = _Text()
    parser.feed(dom.stdout)
    rendered = {row[0]: row[2] for row in parser.rows[1:] if len(row) >= 3}
    missing = {k: r for k, r in expected.items() if rendered.get(k) != r}
    if missing:
        print(f"rows not rendered as expected (key: rule): {missing}", file=sys.stderr)
        return 1
    for key in ("CPU", "AutogradCPU", "Meta"):
        if key not in rendered:
            print(f"the rendered table lacks the {key} row", file=sys.stderr)
            return 1

    shot_run = subprocess.run(
        base + [f"--screenshot={shot}", "--window-size=1200,900", url],
        capture_output=True, text=True, timeout=120,
    )
    if shot_run.returncode != 0 or not os.path.exists(shot):
        print(f"chromium --screenshot failed (rc={shot_run.returncode}):\n{shot_run.stderr[-2000:]}", file=sys.stderr)
        return 1
    w, h, colours = _png_size_and_colours(shot)
    # The rule colours and the text make many distinct values; a blank page has one or two.
    if (w, h) != (1200, 900) or colours < 16:
        print(f"screenshot looks empty: {w}x{h}, {colours} distinct byte values", file=sys.stderr)
        return 1
    print(f"browser test: {len(rendered)} rows rendered by {os.path.basename(a.chromium)}, "
          f"rules as computed; screenshot {w}x{h} ({shot if a.keep else 'temporary'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
