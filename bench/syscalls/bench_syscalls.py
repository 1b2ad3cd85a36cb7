"""System calls in the sandbox against the host, side by side in one run.

Run by hand: ``python bench/syscalls/bench_syscalls.py [--rounds 5]``.

For each import (``numpy, pandas``; ``matplotlib.pyplot``), interleaved
over ROUNDS rounds: the time in a fresh sandbox (``vmm.Sandbox.spawn``,
then the import as the first cell after a warm-up cell) and in a fresh host
interpreter (``python -c``, the import timed inside); the sandbox's system
calls by name (``Sandbox.stats()["calls"]``: count and the VMM's time
serving them) beside the host's (``strace -f -c``, when strace is there).
Also the cost of one clock read and of one trivial system call (getppid),
guest and host. Each sandbox measurement is made three ways, alternated
(docs/design.md, "System calls without an exit"): every call an exit
(``FORKD_JUPYTER_FAST_CALLS=0``); a poller serving calls without exits,
entered by the SYSCALL instruction (``=poll``); the same with call sites
rewritten to skip SYSCALL (the default). Prints the tables; writes
RESULTS.md beside this script and bench-syscalls.csv.
"""

from __future__ import annotations

import argparse
import csv
import os
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


# FORKD_JUPYTER_FAST_CALLS, read at each spawn: every call an exit; the
# poller, entered by SYSCALL; the poller, and call sites that skip SYSCALL
# (the default).
WAYS = {"exits": "0", "poll": "poll", "fast": "1"}


def spawn(way: str, mib: int) -> Sandbox:
    os.environ["FORKD_JUPYTER_FAST_CALLS"] = WAYS[way]
    try:
        return Sandbox.spawn(memory_mib=mib)
    finally:
        del os.environ["FORKD_JUPYTER_FAST_CALLS"]


def in_sandbox(mods: str, way: str) -> tuple[float, dict, int]:
    sb = spawn(way, 2048)
    try:
        sb.run("1")
        before, fast0 = sb.stats()["calls"], sb.stats()["fast_syscalls"]
        seconds = float(sb.run(TIMED.format(mods=mods)).result["text/plain"])
        after, fast = sb.stats()["calls"], sb.stats()["fast_syscalls"] - fast0
    finally:
        sb.close()
    calls = {
        name: (
            v["count"] - before.get(name, {}).get("count", 0),
            v["vmm_ms"] - before.get(name, {}).get("vmm_ms", 0.0),
        )
        for name, v in after.items()
    }
    return seconds, {k: c for k, c in calls.items() if c[0]}, fast


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
    rows, profiles, fast_counts = [], {}, {}
    for rnd in range(args.rounds):
        for mods in IMPORTS:
            row = {"round": rnd, "import": mods}
            for way in WAYS:
                guest, calls, fast = in_sandbox(mods, way)
                row[f"sandbox_{way}_s"] = guest
                if way == "fast":
                    profiles.setdefault(mods, []).append(calls)
                    fast_counts.setdefault(mods, []).append(fast)
            row["host_s"] = on_host(mods)
            rows.append(row)
            ways = ", ".join(f"{w} {row[f'sandbox_{w}_s']:.3f} s" for w in WAYS)
            print(f"round {rnd}: import {mods}: sandbox {ways}; host {row['host_s']:.3f} s")
    micro = {}
    for way in WAYS:
        sb = spawn(way, 512)
        try:
            sb.run(MICRO)  # the first run wakes the poller
            micro[way] = eval(sb.run(MICRO).result["text/plain"])
        finally:
            sb.close()
    g_clock = micro["exits"][0]
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
        "Sandbox columns, alternated in each round: **exits**, every call a VM exit"
        " (`FORKD_JUPYTER_FAST_CALLS=0`); **poll**, a poller serves calls without"
        " exits, entered by the SYSCALL instruction (`=poll`); **fast**, the same"
        " with call sites rewritten to skip SYSCALL (the default).",
        "",
        "| import | exits p50 | poll p50 | fast p50 | host p50 "
        "| ratio to host: exits / poll / fast | system calls (fast: served without exit) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for mods in IMPORTS:
        mine = [r for r in rows if r["import"] == mods]
        g = {w: statistics.median(r[f"sandbox_{w}_s"] for r in mine) for w in WAYS}
        h = statistics.median(r["host_s"] for r in mine)
        n = statistics.median(sum(c for c, _ in p.values()) for p in profiles[mods])
        nf = statistics.median(fast_counts[mods])
        cells = " | ".join(f"{g[w] * 1000:.0f} ms" for w in WAYS)
        ratios = " / ".join(f"{g[w] / h:.2f}x" for w in WAYS)
        lines.append(f"| `{mods}` | {cells} | {h * 1000:.0f} ms | {ratios} | {n:.0f} ({nf:.0f}) |")
    lines += [
        "",
        "| one call | sandbox | host |",
        "|---|---:|---:|",
        f"| clock read (`time.monotonic()`, the vDSO) | {g_clock:.2f} us | {h_clock:.2f} us |",
    ]
    for way, what in (
        ("exits", "a VM exit"),
        ("poll", "served by the poller, entered by SYSCALL"),
        ("fast", "served by the poller, from a rewritten site"),
    ):
        lines.append(
            f"| trivial system call (`os.getppid()`), {what} | {micro[way][1]:.2f} us "
            f"| {h_sys:.2f} us |"
        )
    for mods in IMPORTS:
        host = host_counts(mods)
        last = profiles[mods][-1]
        lines += [
            "",
            f"System calls of `import {mods}` (last round, fast; VMM time excludes"
            " the exit itself):",
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
        fields = ["round", "import", *(f"sandbox_{w}_s" for w in WAYS), "host_s"]
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main()
