#!/usr/bin/env python3
"""Regenerates test_dispatch_golden_2.15.filtered.json from the full PyTorch 2.15 golden file.

The full file (/work/shared/spec/test_dispatch_golden_2.15.json, 1.2 MB) holds, for every
test_dispatch.py `commute` scenario and every subset of registrations, the `_dispatch_dump`
state and the full `_dispatch_dump_table` text printed by PyTorch 2.15. opdispatch does not
register PyTorch's other global fallbacks (Python, Functionalize, Tracer, ...), so the tests only
compare table lines of the keys below; this script keeps exactly those lines (unchanged, in
order) so the committed file stays small. States are kept whole.

Usage: python3 filter_golden.py [full.json] > test_dispatch_golden_2.15.filtered.json
"""
import json
import sys

KEYS = [
    "Undefined", "CPU", "CUDA", "XLA", "Meta", "FPGA", "QuantizedCPU", "SparseCPU",
    "PrivateUse1", "AutogradOther", "AutogradCPU", "AutogradCUDA", "AutogradXLA",
    "AutogradPrivateUse1", "AutogradMeta", "BackendSelect", "ADInplaceOrView",
    "AutocastCPU", "AutocastCUDA",
]

src = sys.argv[1] if len(sys.argv) > 1 else "/work/shared/spec/test_dispatch_golden_2.15.json"
full = json.load(open(src))
out = {}
for test, subsets in sorted(full.items()):
    out[test] = {}
    for subset, r in sorted(subsets.items()):
        lines = [l for l in r["table"].splitlines() if l.split(": ", 1)[0] in KEYS]
        out[test][subset] = {"state": r["state"], "table": "".join(l + "\n" for l in lines)}
json.dump(out, sys.stdout, indent=1, sort_keys=True)
sys.stdout.write("\n")
