#!/usr/bin/env python3
"""Instruction counts (callgrind) for the Rust dispatcher's hot paths.

Wall-clock numbers on a shared machine swing by up to 2x from one minute to the next;
instruction counts do not, so they are what to compare before and after a change:

    python3 bench/instructions.py                     # this checkout
    git worktree add /tmp/before HEAD~3
    python3 bench/instructions.py --tree /tmp/before  # the same, for another commit

Reports, from `crates/opdispatch-dispatch/examples`:
  - reg_probe: instructions to register 10,000 operators with 3 kernels each, and to drop that
    library again (the second of two rounds, so the allocator is warm as in the benchmark);
  - typed_loop: instructions per typed call through the dispatcher (the difference of two loop
    lengths, so setup cancels out).
Needs valgrind. Prints numbers only; it asserts nothing.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def build(tree):
    cmd = ["cargo", "build", "--release", "--quiet", "-p", "opdispatch-dispatch",
           "--example", "reg_probe", "--example", "typed_loop"]
    env = dict(os.environ)
    env.pop("CARGO_TARGET_DIR", None)
    subprocess.run(cmd, cwd=tree, env=env, check=True)
    return os.path.join(tree, "target", "release", "examples")


def callgrind(binary, env_extra):
    """Runs `binary` under callgrind; returns {function: inclusive instructions}."""
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "cg.out")
        env = dict(os.environ, **env_extra)
        subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", binary],
                       env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        text = subprocess.run(["callgrind_annotate", "--inclusive=yes", out], check=True,
                              capture_output=True, text=True).stdout
    counts = {"TOTAL": 0}
    for line in text.splitlines():
        m = re.match(r"\s*([\d,]+)\s+\([^)]*\)\s+(.*)", line)
        if not m:
            continue
        n = int(m.group(1).replace(",", ""))
        if "PROGRAM TOTALS" in m.group(2):
            counts["TOTAL"] = n
        else:
            counts.setdefault(m.group(2).split(" [")[0], n)
    return counts


def inclusive(counts, suffix):
    return next((n for f, n in counts.items() if f.endswith(suffix)), None)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tree", default=ROOT,
                    help="root of the checkout to build and measure (default: this one)")
    args = ap.parse_args()
    if not shutil.which("valgrind") or not shutil.which("callgrind_annotate"):
        sys.exit("valgrind is not installed (Debian: apt-get install valgrind)")
    examples = build(args.tree)

    def registration(rounds):
        c = callgrind(os.path.join(examples, "reg_probe"), {"ROUNDS": str(rounds)})
        main_ = inclusive(c, "reg_probe::main")
        drop = inclusive(c, "drop_in_place<opdispatch_dispatch::library::Library>") or 0
        return main_ - drop, drop

    r1, d1 = registration(1)
    r2, d2 = registration(2)
    print(f"register 10k ops x 3 kernels:   {(r2 - r1) / 1e6:8.1f} M instructions")
    print(f"deregister them (drop library): {(d2 - d1) / 1e6:8.1f} M instructions")

    def loop(n):
        return callgrind(os.path.join(examples, "typed_loop"), {"ROUNDS": str(n)})["TOTAL"]

    short, long_ = 100_000, 1_100_000
    per_call = (loop(long_) - loop(short)) / (long_ - short)
    print(f"typed call through the dispatcher: {per_call:6.1f} instructions (loop included)")


if __name__ == "__main__":
    main()
