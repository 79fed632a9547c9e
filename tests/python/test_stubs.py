"""The type stubs for opdispatch._C match the native module."""

from __future__ import annotations

import ast
import os
import subprocess
import sys

import pytest

import opdispatch
from opdispatch import _C as C

PKG_DIR = os.path.dirname(opdispatch.__file__)
STUB = os.path.join(PKG_DIR, "_C.pyi")


def _stub_names() -> set[str]:
    with open(STUB) as f:
        tree = ast.parse(f.read())
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def test_stub_files_exist():
    assert os.path.isfile(STUB)
    assert os.path.isfile(os.path.join(PKG_DIR, "py.typed"))


def test_stub_covers_every_public_name():
    public = {n for n in dir(C) if not (n.startswith("__") and n.endswith("__"))}
    missing = sorted(public - _stub_names())
    assert missing == [], f"names of opdispatch._C missing from _C.pyi: {missing}"


def test_stub_dispatch_key_members():
    with open(STUB) as f:
        tree = ast.parse(f.read())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "DispatchKey")
    members = {
        t.id: node.value.value
        for node in cls.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
        for t in node.targets
        if isinstance(t, ast.Name)
    }
    assert members == {name: k.value for name, k in C.DispatchKey.__members__.items()}


def test_stubtest_passes(tmp_path):
    pytest.importorskip("mypy")
    proc = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "opdispatch._C", "--mypy-config-file", os.devnull],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
