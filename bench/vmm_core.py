"""VMM core benchmark: spawn-to-ready, guest vs host speed, system calls.

Run by hand: ``python bench/vmm_core.py [--spawns 5]``. Prints medians and
ratios measured side by side in one run (guest and host alternate).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from forkd_jupyter.vmm import Sandbox
from forkd_jupyter.vmm.guest_env import python_elf

CPU_LOOP = """
import time
t = time.perf_counter()
s = 0
for i in range(3_000_000):
    s += i * i % 7
print(time.perf_counter() - t)
"""
IMPORT_NUMPY = """
import time
t = time.perf_counter()
import numpy
print(time.perf_counter() - t)
"""
SYSCALLS = """
import os, time
n = 20000
t = time.perf_counter()
for i in range(n):
    os.getppid()
loop = time.perf_counter() - t
t = time.perf_counter()
for i in range(n):
    pass
base = time.perf_counter() - t
print((loop - base) / n)
"""


def host_seconds(code: str) -> float:
    out = subprocess.run([python_elf(), "-c", code], check=True, capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1])


def guest_seconds(code: str) -> float:
    # A fresh sandbox per sample, so imports are cold like on the host.
    with Sandbox.spawn(memory_mib=1024) as sb:
        result = sb.run(code)
        if result.error:
            raise RuntimeError(result.error.evalue)
        return float(result.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--spawns", type=int, default=5)
    ap.add_argument("--samples", type=int, default=3)
    args = ap.parse_args()

    spawn = []
    for _ in range(args.spawns):
        t = time.perf_counter()
        sb = Sandbox.spawn(memory_mib=2048)
        spawn.append(time.perf_counter() - t)
        sb.close()
    rows = [("spawn-to-ready (s)", statistics.median(spawn), None)]
    for label, code in (
        ("CPU-bound loop (s)", CPU_LOOP),
        ("import numpy (s)", IMPORT_NUMPY),
        ("system call round trip (s)", SYSCALLS),
    ):
        guest, host = [], []
        for _ in range(args.samples):
            guest.append(guest_seconds(code))
            host.append(host_seconds(code))
        scale = 1e6 if label.endswith("(us)") else 1.0
        rows.append((label, statistics.median(guest) * scale, statistics.median(host) * scale))

    print(f"python {sys.version.split()[0]}; medians of {args.samples} (spawn: {args.spawns})")
    print(f"{'measure':32} {'guest':>12} {'host':>12} {'host/guest':>11}")
    for label, g, h in rows:
        ratio = f"{h / g:10.2f}x" if h else ""
        hs = f"{h:12.6f}" if h else f"{'':12}"
        print(f"{label:32} {g:12.6f} {hs} {ratio}")


if __name__ == "__main__":
    main()
