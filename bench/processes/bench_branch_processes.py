"""Branching a sandbox whose processes run, measured in one run.

For a sandbox running 0, 1, 3 and 5 extra idle processes (`sleep`, each a
VM of its own besides the Python that serves cells), REPEATS branches per
mode (diff and live), after a first one (which copies each process's memory
in full: a later branch copies only what each wrote since):

- pause: the host's view, from the first vCPU stopping to the last one
  resuming, every process included (``Snapshot.pause_ms``);
- stall: the guest's own view, from a forked Python child that spins
  reading its clock (the vDSO: no VM exit) and records its longest gap
  around each branch; the busy child is one of the processes counted;
- child: spawn of the branch to the result of its first cell, which asks
  one carried process for an answer through a pipe.

Prints a table and writes branch.csv next to this file. Run by hand:

    python bench/processes/bench_branch_processes.py [--repeats 15] [--mib 1024]
"""

from __future__ import annotations

import argparse
import csv
import statistics
import time
from pathlib import Path

from forkd_jupyter.vmm import Sandbox

HERE = Path(__file__).parent

SETUP = """
import os, subprocess, time
idle = [subprocess.Popen(['sleep', '3600']) for _ in range(IDLE)]
to_busy, from_busy = os.pipe(), os.pipe()
pid = os.fork()
if pid == 0:
    # The busy process: spins reading the clock, answers "longest gap since
    # the last question" (ms) whenever asked through its pipe.
    os.close(to_busy[1]); os.close(from_busy[0])
    os.set_blocking(to_busy[0], False)
    last = time.monotonic(); worst = 0.0
    while True:
        now = time.monotonic()
        worst = max(worst, now - last); last = now
        try:
            asked = os.read(to_busy[0], 1)
        except BlockingIOError:
            continue
        if not asked:
            os._exit(0)
        os.write(from_busy[1], b'%.3f\\n' % (worst * 1000))
        worst = 0.0; last = time.monotonic()
def ask():
    os.write(to_busy[1], b'?')
    return float(os.read(from_busy[0], 100))
ask()
"""


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def measure(idle: int, mode: str, repeats: int, mib: int) -> dict:
    pauses, stalls, children = [], [], []
    with Sandbox.spawn(memory_mib=mib) as sb:
        res = sb.run(SETUP.replace("IDLE", str(idle)))
        if res.error:
            raise SystemExit(f"setup failed: {res.error.evalue}")
        sb.snapshot(mode=mode).close()  # the first copies every process in full
        for _ in range(repeats):
            sb.run("ask()")  # reset the busy process's gap
            time.sleep(0.05)
            snap = sb.snapshot(mode=mode)
            pauses.append(snap.pause_ms)
            time.sleep(0.05)
            stalls.append(float(sb.run("print(ask())").stdout))
            t = time.perf_counter()
            (child,) = snap.spawn()
            out = child.run("print(ask())")
            children.append((time.perf_counter() - t) * 1000)
            if out.error:
                raise SystemExit(f"the branch failed: {out.error.evalue}")
            child.close()
            snap.close()
        sb.run("[p.kill() for p in idle]; os.kill(pid, 9); os.waitpid(pid, 0)")
    return {
        "processes": idle + 2,  # the idle ones, the busy one, the Python serving cells
        "mode": mode,
        "pause_p50_ms": statistics.median(pauses),
        "pause_p90_ms": percentile(pauses, 0.9),
        "guest_stall_p50_ms": statistics.median(stalls),
        "guest_stall_max_ms": max(stalls),
        "child_first_cell_p50_ms": statistics.median(children),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--mib", type=int, default=1024)
    args = parser.parse_args()
    rows = [
        measure(idle, mode, args.repeats, args.mib)
        for idle in (0, 1, 3, 5)
        for mode in ("diff", "live")
    ]
    print(
        "| processes | mode | pause p50 | pause p90 | busy process's longest gap p50 | max "
        "| branch spawn -> first cell p50 |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['processes']} | {r['mode']} | {r['pause_p50_ms']:.2f} ms "
            f"| {r['pause_p90_ms']:.2f} ms | {r['guest_stall_p50_ms']:.2f} ms "
            f"| {r['guest_stall_max_ms']:.2f} ms | {r['child_first_cell_p50_ms']:.1f} ms |"
        )
    with open(HERE / "branch.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main()
