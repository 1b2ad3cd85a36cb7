"""Ready children off, on with one per base, and on with two while spawns
come back to back (the default), side by side: three private daemons
(``FORKD_JUPYTER_READY_CHILDREN=0``; ``FORKD_JUPYTER_READY_BURST_DEPTH=1``;
the default), their rounds alternated in one run.

Run by hand: ``python bench/warm-spawn/bench_ready_children.py [--rounds 15]``.

Per daemon and round: ``spawn_sandboxes`` then a first cell (``1 + 1``)
through the daemon; "spawn" is the call, "spawn -> first cell" until the
cell's result is back. Two pacings:

- paced: the next spawn comes ``--gap`` seconds after the previous sandbox
  was killed (a user or an agent spawning now and then; the ready child is
  there by then);
- back-to-back: ``--burst`` spawns in a row on one daemon, each at once
  after the previous kill (with one ready child per base, from the second
  on the ready child is still being made: the spawn waits for it; with
  two, the burst's spawns find theirs made meanwhile).

Rounds alternate between the daemons (a burst at a time).

Also printed: the second cell's time (the floor a cell costs through the
daemon, once the first has paid for its pages), and what the host spends
for the daemon with one idle sandbox (bench/host_memory.py), the ready
child beside it when on.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from host_memory import host_kib  # noqa: E402 - bench/host_memory.py
from private_daemon import start_daemon, stop_daemons  # noqa: E402 - bench/private_daemon.py


def one_round(c, gap: float) -> tuple[float, float, float]:
    t = time.perf_counter()
    [rec] = c.spawn_sandboxes()
    spawned = time.perf_counter()
    assert c.run_cell(rec["id"], "1 + 1").result["text/plain"] == "2"
    first = time.perf_counter()
    c.run_cell(rec["id"], "2 + 2")
    second = (time.perf_counter() - first) * 1000
    c.kill_sandbox(rec["id"])
    time.sleep(gap)
    return (spawned - t) * 1000, (first - t) * 1000, second


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--gap", type=float, default=0.5, help="seconds between paced spawns")
    parser.add_argument("--burst", type=int, default=5, help="back-to-back spawns in a row")
    args = parser.parse_args()

    from forkd_jupyter.client import Controller

    daemons, controllers = {}, {}
    for ready, depth in (("off", "2"), ("1", "1"), ("2", "2")):
        os.environ["FORKD_JUPYTER_READY_CHILDREN"] = "0" if ready == "off" else "1"
        os.environ["FORKD_JUPYTER_READY_BURST_DEPTH"] = depth
        daemons[ready] = start_daemon(Path(tempfile.mkdtemp(prefix="forkd-bench-")))
        controllers[ready] = Controller(os.environ["FORKD_JUPYTER_URL"], autostart=False)
    try:
        for c in controllers.values():
            c.kill_sandbox(c.spawn_sandboxes()[0]["id"])  # builds the base
        time.sleep(args.gap)
        rows = {}
        for pacing, gap, burst in (("paced", args.gap, 1), ("back-to-back", 0.0, args.burst)):
            got = {ready: [] for ready in controllers}
            for _ in range(max(1, args.rounds // burst)):
                for ready, c in controllers.items():
                    got[ready] += [one_round(c, gap) for _ in range(burst)]
                    time.sleep(args.gap)  # the next burst starts with a ready child
            for ready, values in got.items():
                rows[pacing, ready] = [statistics.median(v) for v in zip(*values, strict=True)]
        memory, held = {}, {}
        for ready, c in controllers.items():
            [rec] = c.spawn_sandboxes()
            c.run_cell(rec["id"], "x = 1")
            time.sleep(1.0)
            memory[ready] = host_kib(daemons[ready].pid)["spent"] / 1024
            held[ready] = max(b["ready_children"] for b in c.list_bases())
            c.kill_sandbox(rec["id"])
        print(f"{'pacing':14} {'ready':6} {'spawn':>9} {'-> first cell':>14} {'2nd cell':>9}")
        for (pacing, ready), (spawn, first, second) in rows.items():
            print(f"{pacing:14} {ready:6} {spawn:7.1f}ms {first:12.1f}ms {second:7.1f}ms")
        for pacing in ("paced", "back-to-back"):
            for ready in ("1", "2"):
                ratio = rows[pacing, "off"][1] / rows[pacing, ready][1]
                print(
                    f"{pacing}: spawn -> first cell {ratio:.2f}x faster with ready children "
                    f"({ready} in a burst) than without (p50)"
                )
        for ready in ("1", "2"):
            print(
                f"host memory for the daemon with one idle sandbox and {held[ready]} ready "
                f"child(ren) (burst depth {ready}): {memory[ready]:.1f} MiB against "
                f"{memory['off']:.1f} MiB without: {memory[ready] - memory['off']:.1f} MiB"
            )
    finally:
        stop_daemons(daemons.values())
    return 0


if __name__ == "__main__":
    sys.exit(main())
