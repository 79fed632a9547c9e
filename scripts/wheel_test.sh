#!/usr/bin/env bash
# Builds the wheel with `maturin build --release` (reusing the cargo target dir, so the build is
# incremental after `make develop`), installs it into a fresh virtualenv without the network and
# checks that the Python package, py.typed and the stubs shipped with the extension module.
set -euo pipefail
MATURIN=${MATURIN:-.venv/bin/maturin}
PYTHON=${PYTHON:-.venv/bin/python}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
start=$(date +%s)

"$MATURIN" build --release --quiet --interpreter "$PYTHON" --out "$tmp/dist"
wheels=("$tmp"/dist/*.whl)
[ "${#wheels[@]}" -eq 1 ] || { echo "wheel-test: expected one wheel, got ${wheels[*]}" >&2; exit 1; }

"$PYTHON" - "${wheels[0]}" <<'PY'
import sys
import zipfile

names = set(zipfile.ZipFile(sys.argv[1]).namelist())
want = ["__init__.py", "library.py", "_ops.py", "_tensor_methods.py", "py.typed", "_C.pyi"]
missing = [n for n in want if f"opdispatch/{n}" not in names]
if missing or not any(n.startswith("opdispatch/_C.") and n.endswith((".so", ".pyd")) for n in names):
    sys.exit(f"wheel-test: the wheel lacks {missing or 'the extension module'}: {sorted(names)}")
PY

"$PYTHON" -m venv "$tmp/venv"
"$tmp/venv/bin/python" -m pip install --quiet --no-index --no-deps "${wheels[0]}"
# Run outside the checkout so only the installed package can be imported.
(cd "$tmp" && "$tmp/venv/bin/python" -c '
import opdispatch
import opdispatch.library
from opdispatch.library import Library, impl

lib = Library("wheel_test", "DEF")
lib.define("double(Tensor x) -> Tensor")

@impl(lib, "double", "CPU")
def double(x):
    return x + x

out = opdispatch.ops.wheel_test.double(opdispatch.ones(3))
assert out.tolist() == [2.0, 2.0, 2.0], out.tolist()
assert "site-packages" in opdispatch.__file__, opdispatch.__file__
print("wheel-test: ok,", opdispatch.__file__)
')
echo "wheel-test: passed in $(( $(date +%s) - start ))s"
