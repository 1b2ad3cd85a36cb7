"""Memory freed and allocated again: a sandbox that keeps freed pages as
spares (the default) against one that hands them back at once
(``FORKD_JUPYTER_SPARE_MEMORY=0``), beside the host.

Run by hand: ``python bench/memory-reuse/bench_memory_reuse.py [--rounds 5]
[--csv FILE] [--markdown FILE]``. In-process VMM (no daemon). Each round,
alternating the ways, runs every workload below in a fresh 4 GiB sandbox of
this interpreter (after a warm-up cell that imports numpy and pandas), in a
child of a live branch of such a sandbox (a copy-on-write view, as every
sandbox spawned from a warm base is), and in a fresh host interpreter. Times
are the guest's own clock around the workload (``time.perf_counter`` in the
cell), so what the cell feels; medians over the rounds.

Workloads (each allocates buffers larger than glibc's mmap threshold and
frees them, as numpy and pandas do with their temporaries):

- ``alloc 256 MiB x8``: ``np.ones(32M)`` then ``del``, eight times;
- ``temporaries 3 x 32 MB x50``: ``(x * 2 + 1) ** 2 - x`` on a 32 MB array;
- ``pandas x3``: groupby-aggregate, sort and merge of a 2M-row frame.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
from pathlib import Path

from forkd_jupyter.vmm import Sandbox

HERE = Path(__file__).resolve().parent

SETUP = """
import time, numpy as np, pandas as pd
def timed(fn):
    t = time.perf_counter(); fn(); return (time.perf_counter() - t) * 1e3
def alloc():
    for _ in range(8):
        a = np.ones(32 << 20); del a
x = np.random.rand(4_000_000)
def temporaries():
    for _ in range(50):
        y = (x * 2 + 1) ** 2 - x
df = pd.DataFrame({"a": np.random.randint(0, 1000, 2_000_000), "b": np.random.rand(2_000_000)})
def frames():
    for _ in range(3):
        g = df.groupby("a").b.agg(["mean", "std"]); s = df.sort_values("b")
        m = df.merge(g, left_on="a", right_index=True)
"""
WORKLOADS = {
    "alloc 256 MiB x8": "alloc",
    "temporaries 3 x 32 MB x50": "temporaries",
    "pandas x3": "frames",
}
MEASURE = "[" + ", ".join(f"timed({fn})" for fn in WORKLOADS.values()) + "]"
WAYS = ("spares", "no spares", "host")


def guest(sb: Sandbox, code: str):
    r = sb.run(code, timeout=600)
    if r.error is not None:
        raise RuntimeError(f"{r.error.ename}: {r.error.evalue}")
    return r


def in_sandbox(child: bool) -> list[float]:
    sb = Sandbox.spawn(memory_mib=4096)
    try:
        guest(sb, SETUP)
        if not child:
            return eval(guest(sb, MEASURE).result["text/plain"])
        snap = sb.snapshot("live")
        kid = snap.spawn(1)[0]
        try:
            return eval(guest(kid, MEASURE).result["text/plain"])
        finally:
            kid.close()
            snap.close()
    finally:
        sb.close()


def on_host() -> list[float]:
    out = subprocess.run(
        [sys.executable, "-c", SETUP + f"\nprint({MEASURE})"],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return eval(out.stdout)


def measure(way: str, child: bool) -> list[float]:
    if way == "host":
        return on_host()
    if way == "no spares":
        os.environ["FORKD_JUPYTER_SPARE_MEMORY"] = "0"
    try:
        return in_sandbox(child)
    finally:
        os.environ.pop("FORKD_JUPYTER_SPARE_MEMORY", None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--csv", default=str(HERE / "memory-reuse.csv"))
    ap.add_argument("--markdown", default=str(HERE / "RESULTS.md"))
    args = ap.parse_args()
    rows = []  # (round, where, way, workload, ms)
    for rnd in range(args.rounds):
        for where in ("sandbox", "child"):
            for way in WAYS if where == "sandbox" else WAYS[:2]:
                for name, ms in zip(WORKLOADS, measure(way, where == "child"), strict=True):
                    rows.append((rnd, where, way, name, ms))
                print(f"round {rnd + 1}/{args.rounds}: {where} {way} done", flush=True)
    with open(args.csv, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["round", "where", "way", "workload", "ms"])
        w.writerows([(r, wh, wy, n, f"{ms:.2f}") for r, wh, wy, n, ms in rows])

    def p50(where: str, way: str, name: str) -> float:
        return statistics.median(m for _, *key, m in rows if tuple(key) == (where, way, name))

    lines = [
        "| workload | sandbox: spares | sandbox: no spares | child: spares | child: no spares"
        " | host | spares / no spares (sandbox, child) | sandbox / host: spares, no spares |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in WORKLOADS:
        s, n = p50("sandbox", "spares", name), p50("sandbox", "no spares", name)
        cs, cn = p50("child", "spares", name), p50("child", "no spares", name)
        h = p50("sandbox", "host", name)
        lines.append(
            f"| {name} | {s:.0f} ms | {n:.0f} ms | {cs:.0f} ms | {cn:.0f} ms | {h:.0f} ms"
            f" | {s / n:.2f}x, {cs / cn:.2f}x | {s / h:.2f}x, {n / h:.2f}x |"
        )
    table = "\n".join(lines)
    print(table)
    Path(args.markdown).write_text(
        "# Freed memory reused: spares against handing pages back\n\n"
        f"Host: {os.uname().machine}, Python {sys.version.split()[0]}. {args.rounds} rounds,"
        " ways interleaved in each; medians of the guest's own clock around each workload"
        " (a busy cell's time, as the user feels it). Produced by"
        " `bench/memory-reuse/bench_memory_reuse.py`; raw rows in `memory-reuse.csv`.\n\n"
        f"{table}\n"
    )


if __name__ == "__main__":
    main()
