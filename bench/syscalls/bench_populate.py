"""Fresh memory populated by the host when the guest maps it (the default)
against left to the guest's first touches (``FORKD_JUPYTER_POPULATE=0``),
beside the host, side by side in one run.

Run by hand: ``python bench/syscalls/bench_populate.py [--rounds 7]``.

For each round, alternated: ``import numpy, pandas`` timed by the guest's
clock as the first cell after a warm-up cell, in a fresh sandbox
(``Sandbox.spawn``) and in a child of a full snapshot of one (what a warm
base's children are), each way in a process of its own (the setting is
read once per process); then a fresh host interpreter. Also per sandbox:
the memory the import added (``Sandbox.stats()["memory_bytes"]``) and the
VMM's time in ``mmap`` and ``brk`` (which now include the populating).
Prints one markdown table of medians and the ratios to the host.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

MODS = "numpy, pandas"
TIMED = "import time\n_t = time.perf_counter()\nimport {mods}\ntime.perf_counter() - _t"

# Runs in a process of its own: one measurement, printed as JSON.
ONE = r"""
import json, sys
from forkd_jupyter.vmm import Sandbox
kind, code = sys.argv[1], sys.argv[2]
src = Sandbox.spawn(memory_mib=2048)
src.run("1")
if kind == "child":
    snap = src.snapshot(mode="full")
    [sb] = snap.spawn()
    src.close()
else:
    sb = src
try:
    sb.run("1")
    a = sb.stats()
    seconds = float(sb.run(code).result["text/plain"])
    b = sb.stats()
finally:
    sb.close()
def vmm_ms(name):
    return b["calls"].get(name, {}).get("vmm_ms", 0) - a["calls"].get(name, {}).get("vmm_ms", 0)
print(json.dumps({"ms": seconds * 1000, "mib": (b["memory_bytes"] - a["memory_bytes"]) / 2**20,
                  "mmap_brk_ms": vmm_ms("mmap") + vmm_ms("brk")}))
"""


def in_sandbox(kind: str, populate: bool) -> dict:
    env = dict(os.environ, FORKD_JUPYTER_POPULATE="1" if populate else "0")
    code = TIMED.format(mods=MODS)
    out = subprocess.run([sys.executable, "-c", ONE, kind, code], env=env, check=True,
                         capture_output=True, text=True)  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def on_host() -> float:
    code = f"import time; t = time.perf_counter(); import {MODS}; print(time.perf_counter() - t)"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1]) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    ways = [(kind, populate) for kind in ("fresh", "child") for populate in (True, False)]
    got: dict = {w: [] for w in ways}
    host = []
    for n in range(args.rounds):
        for w in ways:
            got[w].append(in_sandbox(*w))
        host.append(on_host())
        print(f"round {n}: " + ", ".join(
            f"{k} {'populated' if p else 'lazy'} {got[k, p][-1]['ms']:.0f} ms" for k, p in ways
        ) + f", host {host[-1]:.0f} ms", flush=True)  # fmt: skip
    h = statistics.median(host)
    print()
    print(f"`import {MODS}`, p50 of {args.rounds} rounds; host p50 {h:.0f} ms")
    print()
    print(
        "| sandbox | fresh memory | import p50 | ratio to host | memory added | mmap + brk (VMM) |"
    )
    print("|---|---|---:|---:|---:|---:|")
    for kind, populate in ways:
        rows = got[kind, populate]
        ms = statistics.median(r["ms"] for r in rows)
        mib = statistics.median(r["mib"] for r in rows)
        vmm = statistics.median(r["mmap_brk_ms"] for r in rows)
        way = "populated when mapped" if populate else "guest's first touch"
        print(f"| {kind} | {way} | {ms:.0f} ms | {ms / h:.2f}x | {mib:.1f} MiB | {vmm:.1f} ms |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
