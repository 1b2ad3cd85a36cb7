"""Many sandboxes on one machine, through the real daemon.

Run by hand: ``python bench/scale/bench_scale.py [--counts 1,10,50] [--touched-mib 1536]``.

Starts a private daemon (its own state directory), spawns a source of
2 GiB with TOUCHED MiB written (a numpy array), takes a full snapshot of it
(the base), then grows a population of children of that base to each count
in turn: each new child is spawned, runs a cell (``x = sum(range(1000))``)
and is branched once (diff). Reports, per count: time per operation p50 and
p99 over the children added for that count, memory per child added after
the first (what the host spends: the daemon's anonymous memory, KVM's
per-VM kernel tables, page tables and shared memory (the branches' images),
bench/host_memory.py; and the daemon's PSS, which leaves the kernel's part
and the snapshot images out and shares the base's pages among the children
that map them), and how many operations failed.
Writes RESULTS.md and bench-scale.csv beside this script.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))
from host_memory import host_kib, rollup_kib  # noqa: E402 - bench/host_memory.py


def mib(value: float) -> str:
    return "-" if value != value else f"{value:.1f} MiB"  # NaN: no child added after the first


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="1,10,50")
    parser.add_argument("--touched-mib", type=int, default=1536)
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    state = Path(tempfile.mkdtemp(prefix="forkd-scale-"))
    os.chmod(state, 0o700)
    os.environ.update(
        FORKD_JUPYTER_STATE_DIR=str(state),
        FORKD_JUPYTER_SOCKET=str(state / "d.sock"),
        FORKD_JUPYTER_URL=f"unix://{state / 'd.sock'}",
    )
    log = open(state / "daemon.log", "ab")  # noqa: SIM115 - the daemon's for its life
    daemon = subprocess.Popen(
        [sys.executable, "-m", "forkd_jupyter", "daemon"], stdout=log, stderr=log
    )
    from forkd_jupyter.client import Controller, ForkdError

    try:
        c = Controller()
        [src] = c.spawn_sandboxes(memory_limit_mib=2048)
        c.run_cell(
            src["id"],
            f"import numpy as np\nA = np.ones({args.touched_mib} << 20, dtype=np.uint8)",
        )
        base = c.branch_sandbox(src["id"], mode="full", tag="scale-base")["snapshot"]
        c.kill_sandbox(src["id"])
        first = None
        children: list[str] = []
        rows, table = [], []
        for count in counts:
            times: dict[str, list[float]] = {"spawn": [], "cell": [], "branch": []}
            failed = 0
            while len(children) < count:
                try:
                    t = time.perf_counter()
                    [child] = c.spawn_sandboxes(snapshot_id=base["id"])
                    times["spawn"].append((time.perf_counter() - t) * 1000)
                    t = time.perf_counter()
                    result = c.run_cell(child["id"], "x = sum(range(1000)); x")
                    times["cell"].append((time.perf_counter() - t) * 1000)
                    if result.error is not None:
                        failed += 1
                    t = time.perf_counter()
                    c.branch_sandbox(child["id"], mode="diff")
                    times["branch"].append((time.perf_counter() - t) * 1000)
                    children.append(child["id"])
                except ForkdError as e:
                    failed += 1
                    print(f"failed at {len(children)} children: {e}", file=sys.stderr)
                    break
            time.sleep(1)
            # What each child after the first adds (the first also pays for
            # the base's pages it maps and for the source going away).
            pss, host = rollup_kib(daemon.pid, "Pss") / 1024, host_kib(daemon.pid)
            if first is None:
                first = (len(children), pss, host)
            added = len(children) - first[0]
            per_child = (pss - first[1]) / added if added else float("nan")
            parts = {k: (host[k] - first[2][k]) / 1024 / added if added else float("nan")
                     for k in host}  # fmt: skip
            spent = parts["spent"]
            line = {
                "count": len(children),
                "failed": failed,
                "pss_per_child_mib": per_child,
                "host_per_child_mib": spent,
                "host_parts_mib": {k: round(v, 2) for k, v in parts.items()},
            }
            for op, values in times.items():
                line[f"{op}_p50_ms"] = statistics.median(values) if values else float("nan")
                line[f"{op}_p99_ms"] = pct(values, 0.99) if values else float("nan")
            table.append(line)
            rows.extend({"count": count, "op": op, "ms": v} for op, vs in times.items() for v in vs)
            print(line, flush=True)
        c.close()
    finally:
        daemon.terminate()
        daemon.wait(60)
    head = (
        "| children | spawn p50 / p99 | first cell p50 / p99 | diff branch p50 / p99 "
        "| host memory per child | daemon PSS per child | failed |"
    )
    lines = [
        "# Many sandboxes on one machine",
        "",
        f"Host: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') >> 30} GiB. A 2 GiB source "
        f"with {args.touched_mib} MiB written, snapshotted (full) as the base; children of it "
        "added one by one up to each count, each spawned, running one cell and branched once "
        "(diff). Times are for the children added for that count. Produced by "
        "`bench/scale/bench_scale.py`; raw rows in `bench-scale.csv`.",
        "",
        head,
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for t in table:
        lines.append(
            f"| {t['count']} | {t['spawn_p50_ms']:.1f} / {t['spawn_p99_ms']:.1f} ms "
            f"| {t['cell_p50_ms']:.1f} / {t['cell_p99_ms']:.1f} ms "
            f"| {t['branch_p50_ms']:.1f} / {t['branch_p99_ms']:.1f} ms "
            f"| {mib(t['host_per_child_mib'])} | {mib(t['pss_per_child_mib'])} "
            f"| {t['failed']} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    (HERE / "RESULTS.md").write_text(text)
    with open(HERE / "bench-scale.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["count", "op", "ms"])
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main()
