#!/usr/bin/env python3
"""Conformance ratchet: runs ../shared/conformance (and this repository's own scenarios in
conformance/recorded/, written here and recorded from torch 2.15 with the kit's runner) against
the built package and fails if a scenario listed in conformance/passing.txt no longer passes.

    python scripts/conformance_ratchet.py            # check
    python scripts/conformance_ratchet.py --update   # record the current passing set (only grows)

The list only grows: --update refuses to drop a scenario that was passing before.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KIT = os.path.normpath(os.path.join(ROOT, "..", "shared", "conformance"))
LIST = os.path.join(ROOT, "conformance", "passing.txt")
RECORDED = os.path.join(ROOT, "conformance", "recorded")


def suite_files() -> list[str]:
    kit = glob.glob(os.path.join(KIT, "suites", "**", "*.json"), recursive=True)
    return sorted(kit) + sorted(glob.glob(os.path.join(RECORDED, "*.json")))


def all_scenarios() -> list[str]:
    names = []
    for path in suite_files():
        with open(path) as f:
            for s in json.load(f)["scenarios"]:
                if not s.get("skip"):
                    names.append(s["name"])
    return names


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--update", action="store_true")
    args = ap.parse_args()
    if not os.path.isdir(KIT):
        print(f"conformance kit not found at {KIT}; skipping the ratchet")
        return 0
    proc = subprocess.run(
        [sys.executable, os.path.join(KIT, "run.py"), "--impl", "opdispatch", "--python", sys.executable,
         "--suite", os.path.join(KIT, "suites"), "--suite", RECORDED],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    out = proc.stdout + proc.stderr
    summary = [line for line in out.splitlines() if re.match(r"^\d+ passed, \d+ failed", line)]
    print(summary[-1] if summary else out[-4000:])
    failed = set(re.findall(r"^FAIL (\S+)", out, re.M))
    passing = [n for n in all_scenarios() if n not in failed]
    recorded = []
    if os.path.exists(LIST):
        with open(LIST) as f:
            recorded = [line.strip() for line in f if line.strip() and not line.startswith("#")]
    regressed = [n for n in recorded if n in failed]
    if regressed:
        print("conformance ratchet: these scenarios passed before and fail now:")
        for n in regressed:
            print("  " + n)
        print(out[-6000:])
        return 1
    if not summary:
        print("conformance runner produced no summary")
        return 1
    new = sorted(set(passing) - set(recorded))
    if args.update:
        with open(LIST, "w") as f:
            f.write("# Conformance scenarios that pass; CI fails if one of them regresses.\n")
            for n in sorted(set(passing) | set(recorded)):
                f.write(n + "\n")
        print(f"recorded {len(set(passing) | set(recorded))} passing scenarios")
    elif new:
        print(f"{len(new)} scenarios pass that are not in the ratchet yet; run with --update to record them")
    if failed:
        print("still failing (not in the ratchet): " + ", ".join(sorted(failed)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
