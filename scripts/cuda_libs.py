"""Prints the folders (colon-separated) that hold the CUDA libraries NVIDIA's PyPI wheels
install (``nvidia-cuda-nvrtc``, ``nvidia-cublas``, ...), for ``LD_LIBRARY_PATH``: opdispatch
opens ``libnvrtc.so.13`` / ``libcublas.so.13`` by name at run time, and pip puts them in
``site-packages/nvidia/<pkg or cu13>/lib``, which the loader does not search by itself.

Usage: python scripts/cuda_libs.py [NAME...]   (NAME: nvrtc, cublas; default both)
"""

from __future__ import annotations

import pathlib
import site
import sys


def lib_dirs(names: list[str]) -> list[str]:
    roots = [pathlib.Path(p) for p in [*site.getsitepackages(), site.getusersitepackages(), *sys.path] if p]
    found: list[str] = []
    for root in roots:
        nv = root / "nvidia"
        if not nv.is_dir():
            continue
        for lib in sorted(nv.glob("*/lib")):
            if any(next(lib.glob(f"lib{n}.so*"), None) is not None for n in names) and str(lib) not in found:
                found.append(str(lib))
    return found


if __name__ == "__main__":
    print(":".join(lib_dirs(sys.argv[1:] or ["nvrtc", "cublas"])))
