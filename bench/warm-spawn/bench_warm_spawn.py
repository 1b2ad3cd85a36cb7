"""Spawn from a warm base against a cold spawn, through the real daemon.

Run by hand: ``python bench/warm-spawn/bench_warm_spawn.py [--rounds 10] [--preload numpy]``.
Starts a private daemon (its own state directory), then, interleaved in one
run:

- cold: ``vmm.Sandbox.spawn`` (boots CPython and the agent) and a first cell;
- warm: ``spawn_sandboxes`` through the daemon, whose sandboxes are children
  of the environment's warm base, and a first cell.

"spawn -> first cell" is from the call until the cell's result (``1 + 1``)
is back. Fresh memory per sandbox, from holding N idle warm sandboxes that
each ran a cell, divided by N, two ways:

- host: what the host spends for them, summed from its parts
  (bench/host_memory.py): the daemon's anonymous memory (the children's
  copied guest pages and the VMM's own heap), the kernel's per-VM tables
  KVM allocates (a memslot's reverse map and write tracking, dirty logs),
  page tables and shared memory; no process's PSS shows the kernel's part.
  MemAvailable's fall is printed beside it, a cross-check only (it moves
  with the page cache);
- daemon PSS: the daemon's proportional set size grown; it also counts the
  base's pages the children map (already resident in the base's image,
  shared), so it is not memory spent per sandbox.

Prints a table; ``--csv FILE`` writes the rows.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from host_memory import host_kib, rollup_kib  # noqa: E402 - bench/host_memory.py
from private_daemon import start_daemon  # noqa: E402 - bench/private_daemon.py

from forkd_jupyter.vmm import Sandbox


def pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--memory", type=int, default=2048, help="guest MiB")
    parser.add_argument("--preload", default="", help="comma-separated modules for the base")
    parser.add_argument("--hold", type=int, default=10, help="idle warm sandboxes for PSS")
    parser.add_argument("--csv", type=Path)
    args = parser.parse_args()
    preload = [m for m in args.preload.split(",") if m] or None

    from forkd_jupyter.client import Controller

    state = Path(tempfile.mkdtemp(prefix="forkd-bench-"))
    daemon = start_daemon(state)
    rows = []
    try:
        c = Controller(autostart=False)
        t = time.perf_counter()
        [first] = c.spawn_sandboxes(memory_limit_mib=args.memory, preload=preload)
        build_ms = (time.perf_counter() - t) * 1000
        c.kill_sandbox(first["id"])
        cold, warm = [], []
        for _ in range(args.rounds):
            t = time.perf_counter()
            sb = Sandbox.spawn(memory_mib=args.memory)
            if preload:
                sb.preload(preload)
            sb.run("1 + 1")
            cold.append((time.perf_counter() - t) * 1000)
            sb.close()
            t = time.perf_counter()
            [rec] = c.spawn_sandboxes(memory_limit_mib=args.memory, preload=preload)
            c.run_cell(rec["id"], "1 + 1")
            warm.append((time.perf_counter() - t) * 1000)
            c.kill_sandbox(rec["id"])
        before = rollup_kib(daemon.pid, "Pss")
        host_before = host_kib(daemon.pid)
        held = [
            c.spawn_sandboxes(memory_limit_mib=args.memory, preload=preload)[0]
            for _ in range(args.hold)
        ]
        for rec in held:
            c.run_cell(rec["id"], "x = 1")
        time.sleep(1.0)  # idle: what a cell's end hands back has gone back
        fresh_kib = (rollup_kib(daemon.pid, "Pss") - before) / args.hold
        host_after = host_kib(daemon.pid)
        grown = {k: (host_after[k] - host_before[k]) / args.hold for k in host_before}
        spent_kib = grown["spent"]
        for rec in held:
            c.kill_sandbox(rec["id"])
        for name, values in (
            ("cold spawn -> first cell", cold),
            ("warm spawn -> first cell", warm),
        ):
            rows.append([name, statistics.median(values), pct(values, 0.9), len(values)])
        print(f"base built in {build_ms:.0f} ms (first spawn of the environment)")
        print(f"{'scenario':28} {'p50 ms':>9} {'p90 ms':>9} {'n':>4}")
        for name, p50, p90, n in rows:
            print(f"{name:28} {p50:9.1f} {p90:9.1f} {n:4d}")
        ratio = statistics.median(cold) / statistics.median(warm)
        print(f"warm / cold: {ratio:.1f}x faster (p50)")
        print(
            f"fresh memory per idle warm sandbox, host: {spent_kib / 1024:.2f} MiB "
            f"(anonymous {grown['anonymous'] / 1024:.2f}, KVM tables "
            f"{grown['kvm_tables'] / 1024:.2f}, page tables {grown['page_tables'] / 1024:.2f}, "
            f"shared {grown['shmem'] / 1024:.2f}; "
            f"MemAvailable fell {-grown['available'] / 1024:.2f})"
        )
        print(
            f"fresh memory per idle warm sandbox, daemon PSS / {args.hold}: "
            f"{fresh_kib / 1024:.2f} MiB"
        )
        if args.csv:
            with args.csv.open("w", newline="") as f:
                w = csv.writer(f)
                w.writerow(["scenario", "p50_ms", "p90_ms", "n"])
                w.writerows(rows)
                w.writerow(["host_mib_per_sandbox", round(spent_kib / 1024, 3), "", args.hold])
                pss_mib = round(fresh_kib / 1024, 3)
                w.writerow(["daemon_pss_mib_per_sandbox", pss_mib, "", args.hold])
    finally:
        daemon.terminate()
        daemon.wait(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
