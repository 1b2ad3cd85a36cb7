"""System calls in the sandbox against the host, side by side in one run.

Run by hand: ``python bench/syscalls/bench_syscalls.py [--rounds 5]``.

For each import (``numpy, pandas``; ``matplotlib.pyplot``), interleaved
over ROUNDS rounds: the time in a fresh sandbox (``vmm.Sandbox.spawn``,
then the import as the first cell after a warm-up cell) and in a fresh host
interpreter (``python -c``, the import timed inside); the sandbox's system
calls by name (``Sandbox.stats()["calls"]``: count and the VMM's time
serving them) beside the host's (``strace -f -c``, when strace is there).
Also the cost of one clock read and of one trivial system call (getppid),
guest and host. Prints the tables; writes RESULTS.md beside this script
and bench-syscalls.csv.
"""

from __future__ import annotations

import argparse
import csv
import platform
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from forkd_jupyter.vmm import Sandbox

HERE = Path(__file__).parent
IMPORTS = ["numpy, pandas", "matplotlib.pyplot"]
TIMED = "import time\n_t = time.perf_counter()\nimport {mods}\ntime.perf_counter() - _t"
MICRO = """
import os, time
N = 20000
t = time.perf_counter_ns()
for _ in range(N): time.monotonic()
clock = (time.perf_counter_ns() - t) / N / 1000
t = time.perf_counter_ns()
for _ in range(N // 10): os.getppid()
sysc = (time.perf_counter_ns() - t) / (N // 10) / 1000
(clock, sysc)
"""


def in_sandbox(mods: str) -> tuple[float, dict]:
    sb = Sandbox.spawn(memory_mib=2048)
    try:
        sb.run("1")
        before = sb.stats()["calls"]
        seconds = float(sb.run(TIMED.format(mods=mods)).result["text/plain"])
        after = sb.stats()["calls"]
    finally:
        sb.close()
    calls = {
        name: (
            v["count"] - before.get(name, {}).get("count", 0),
            v["vmm_ms"] - before.get(name, {}).get("vmm_ms", 0.0),
        )
        for name, v in after.items()
    }
    return seconds, {k: c for k, c in calls.items() if c[0]}


def on_host(mods: str) -> float:
    code = f"import time; t = time.perf_counter(); import {mods}; print(time.perf_counter() - t)"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1])


def host_counts(mods: str) -> dict[str, int]:
    """System calls of the import alone on the host (strace -c of the import
    minus strace -c of an empty interpreter)."""
    strace = shutil.which("strace")
    if not strace:
        return {}

    def count(code: str) -> dict[str, int]:
        out = subprocess.run(
            [strace, "-f", "-c", sys.executable, "-c", code], capture_output=True, text=True
        ).stderr
        found = {}
        for line in out.splitlines():
            m = re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)$", line)
            if m and m.group(2) != "total":
                found[m.group(2)] = int(m.group(1))
        return found

    full, empty = count(f"import {mods}"), count("pass")
    return {k: v - empty.get(k, 0) for k, v in full.items() if v - empty.get(k, 0) > 0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rows, profiles = [], {}
    for rnd in range(args.rounds):
        for mods in IMPORTS:
            guest, calls = in_sandbox(mods)
            host = on_host(mods)
            rows.append({"round": rnd, "import": mods, "sandbox_s": guest, "host_s": host})
            profiles.setdefault(mods, []).append(calls)
            print(f"round {rnd}: import {mods}: sandbox {guest:.3f} s, host {host:.3f} s")
    sb = Sandbox.spawn(memory_mib=512)
    try:
        g_clock, g_sys = eval(sb.run(MICRO).result["text/plain"])
    finally:
        sb.close()
    ns = {}
    exec(MICRO.replace("(clock, sysc)", "result = (clock, sysc)"), ns)
    h_clock, h_sys = ns["result"]

    lines = [
        "# System calls: sandbox against host",
        "",
        f"Host: {platform.processor() or platform.machine()}, {platform.node()}, "
        f"Python {platform.python_version()}. {args.rounds} rounds, interleaved; a fresh "
        "sandbox (2 GiB) per import, after a warm-up cell; a fresh host interpreter per "
        "import. Produced by `bench/syscalls/bench_syscalls.py`; raw rows in "
        "`bench-syscalls.csv`.",
        "",
        "| import | sandbox p50 | host p50 | ratio | sandbox system calls |",
        "|---|---:|---:|---:|---:|",
    ]
    for mods in IMPORTS:
        g = statistics.median(r["sandbox_s"] for r in rows if r["import"] == mods)
        h = statistics.median(r["host_s"] for r in rows if r["import"] == mods)
        n = statistics.median(sum(c for c, _ in p.values()) for p in profiles[mods])
        row = f"| `{mods}` | {g * 1000:.0f} ms | {h * 1000:.0f} ms | {g / h:.2f}x | {n:.0f} |"
        lines.append(row)
    lines += [
        "",
        "| one call | sandbox | host |",
        "|---|---:|---:|",
        f"| clock read (`time.monotonic()`, the vDSO) | {g_clock:.2f} us | {h_clock:.2f} us |",
        f"| trivial system call (`os.getppid()`, a VM exit) | {g_sys:.2f} us | {h_sys:.2f} us |",
    ]
    for mods in IMPORTS:
        host = host_counts(mods)
        last = profiles[mods][-1]
        lines += [
            "",
            f"System calls of `import {mods}` (last round; VMM time excludes the exit itself):",
            "",
            "| call | sandbox count | VMM time | host count |",
            "|---|---:|---:|---:|",
        ]
        for name, (count, ms) in sorted(last.items(), key=lambda kv: -kv[1][0])[:15]:
            lines.append(f"| `{name}` | {count} | {ms:.1f} ms | {host.get(name, '-')} |")
    text = "\n".join(lines) + "\n"
    print()
    print(text)
    (HERE / "RESULTS.md").write_text(text)
    with open(HERE / "bench-syscalls.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["round", "import", "sandbox_s", "host_s"])
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main()
