#!/usr/bin/env bash
# The CUDA backend's check on a machine with an NVIDIA GPU, in one short run (under 5 minutes):
#   1. the CUDA pytest cases (tests/python/test_cuda.py, every case on cpu, meta and cuda),
#   2. the seed demo (examples/seed_walkthrough.py must end with "in my_func_cuda!!!"),
#   3. bench/cuda_vs_torch.py (opdispatch beside torch, synchronized),
# then a summary. No Rust is needed there: `make gpu-bundle` builds the extension for the GPU
# machine's python3 (3.12) into gpu_bundle/, which travels with the tree (carry it).
#
# usage: scripts/gpu_check.sh [PYTHON] [BUNDLE_DIR]      (defaults: python3 gpu_bundle)
# The CUDA libraries come from the driver (libcuda.so.1) and NVIDIA's pip wheels next to torch
# (libnvrtc.so.13, libcublas.so.13; scripts/cuda_libs.py finds them). With
# OPDISPATCH_GPU_CHECK_EMULATED=1 (`make cuda-emu-test`) it runs against the host emulator:
# smaller benchmark sizes, no torch.
set -u
cd "$(dirname "$0")/.."
PY=${1:-python3}
BUNDLE=${2:-gpu_bundle}
EMU=${OPDISPATCH_GPU_CHECK_EMULATED:-0}
if [ -d "$BUNDLE/opdispatch" ]; then
    export PYTHONPATH="$PWD/$BUNDLE${PYTHONPATH:+:$PYTHONPATH}"
fi
libs=$("$PY" scripts/cuda_libs.py)
export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}${libs}"
export PYTHONUNBUFFERED=1
start=$(date +%s)
declare -A result
status=0

echo "== environment"
command -v nvidia-smi >/dev/null && nvidia-smi -L
"$PY" - <<'PYEOF' || { echo "opdispatch does not import or sees no CUDA device"; exit 1; }
import sys, opdispatch as od
print(f"python {sys.version.split()[0]}; opdispatch from {od.__file__}")
print(f"cuda available: {od.cuda.is_available()}, devices: {od.cuda.device_count()}")
sys.exit(0 if od.cuda.is_available() else 1)
PYEOF

echo "== 1. CUDA tests"
if timeout 180 "$PY" -m pytest -q -p no:cacheprovider -rs tests/python/test_cuda.py; then
    result[tests]=PASS
else
    result[tests]=FAIL; status=1
fi

echo "== 2. seed demo"
out=$(timeout 60 "$PY" examples/seed_walkthrough.py 2>&1)
rc=$?
echo "$out" | tail -n 5
last=$(echo "$out" | tail -n 1)
if [ $rc = 0 ] && [ "$last" = "in my_func_cuda!!!" ]; then
    result[seed]=PASS
else
    result[seed]="FAIL (rc $rc, last line: $last)"; status=1
fi

echo "== 3. benchmark against torch"
quick=()
[ "$EMU" = 1 ] && quick=(--quick)
if timeout 150 "$PY" bench/cuda_vs_torch.py "${quick[@]}"; then
    result[bench]=PASS
else
    result[bench]=FAIL; status=1
fi

echo "== summary ($(( $(date +%s) - start )) s)"
for k in tests seed bench; do
    echo "  $k: ${result[$k]}"
done
[ $status = 0 ] && echo "gpu_check: ALL PASSED" || echo "gpu_check: FAILED"
exit $status
