"""Fan-out over a Ray cluster: one source, its children spread over three
local nodes, through the real daemon.

Run by hand: ``python bench/cluster/bench_cluster.py [--source-mib 1024] [--fanouts 1,12,48]``.

Starts a 3-node Ray cluster on this machine (``ray.cluster_utils``; every
node's agent uses this machine's KVM), a private daemon joined to it, and a
2 GiB source holding SOURCE MiB of random float64s (incompressible, like a
loaded data set). For each fan-out in turn it takes a full branch with that
many children spread over the nodes and runs a first cell in every child,
all at once. Reports per fan-out: the branch's wall time, the time until
every child has answered its first cell, children per node, the bytes
shipped to each remote node (raw and compressed; a node receives only the
blocks its cache lacks, so a later branch of the same source ships its
diff), shipping time and time per GiB shipped, and each node's memory (PSS
of the process holding its sandboxes: the node agent, or the daemon for
the daemon's node) after the fan-out. Children are kept between fan-outs,
so memory accumulates. Writes RESULTS.md and cluster.csv beside this
script.

All nodes share one machine (2 cores here): the numbers show what
shipping and spawning cost, not what a network between hosts adds.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
GIB = 1 << 30
MIB = 1 << 20


def start_cluster(nodes: int):
    from ray.cluster_utils import Cluster

    args = {"num_cpus": 1, "object_store_memory": 512 * MIB}
    cluster = Cluster(initialize_head=True, head_node_args=dict(args))
    for _ in range(nodes - 1):
        cluster.add_node(**args)
    return cluster


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source-mib", type=int, default=1024)
    parser.add_argument("--fanouts", default="1,12,48")
    parser.add_argument("--nodes", type=int, default=3)
    args = parser.parse_args()
    fanouts = [int(n) for n in args.fanouts.split(",")]

    state = Path(tempfile.mkdtemp(prefix="forkd-cluster-bench-"))
    os.chmod(state, 0o700)
    os.environ["FORKD_JUPYTER_STATE_DIR"] = str(state)  # the nodes' block caches too
    sys.path.insert(0, str(ROOT / "tests"))
    from daemon_private import PrivateDaemon

    from forkd_jupyter.client import Controller

    cluster = start_cluster(args.nodes)
    daemon = PrivateDaemon(state / "daemon", args=("--max-sandboxes", "256"))
    (state / "daemon").mkdir(mode=0o700)
    daemon.start()
    rows = []
    try:
        ctl = Controller(f"unix://{daemon.socket}", cluster=cluster.address, timeout=600)
        [src] = ctl.spawn_sandboxes(memory_limit_mib=2048, name="bench-cluster-source")
        n_floats = args.source_mib * MIB // 8
        r = ctl.run_cell(
            src["id"],
            f"import numpy as np\ndata = np.random.default_rng(0).standard_normal({n_floats})\n"
            "float(data[:1000].sum())",
        )
        assert r.error is None, r.error
        for n in fanouts:
            started = time.monotonic()
            out = ctl.branch_sandbox(src["id"], mode="full", count=n, spread=True)
            branch_ms = (time.monotonic() - started) * 1000
            kids = out["children"]

            def first_cell(kid: dict) -> str:
                return ctl.run_cell(kid["id"], "print(float(data[:1000].sum()))").stdout

            with ThreadPoolExecutor(min(len(kids), 16)) as pool:
                answers = set(pool.map(first_cell, kids))
            all_ms = (time.monotonic() - started) * 1000
            assert len(answers) == 1, answers  # every child holds the same data
            per_node = {}
            for kid in kids:
                per_node[kid["node"]] = per_node.get(kid["node"], 0) + 1
            shipped = {s["node"]: s for s in out["snapshot"]["shipped"] or []}
            nodes = {d["label"]: d for d in ctl.cluster_info()["nodes"] if d["usable"]}
            for label in sorted(nodes):
                s = shipped.get(label)
                raw = s["bytes"] if s else 0
                rows.append(
                    {
                        "fanout": n,
                        "node": label + (" (daemon)" if nodes[label]["local"] else ""),
                        "children": per_node.get(label, 0),
                        "branch_ms": round(branch_ms),
                        "all_first_cells_ms": round(all_ms),
                        "shipped_mib": round(raw / MIB, 1),
                        "compressed_mib": round(s["compressed_bytes"] / MIB, 1) if s else 0,
                        "ship_ms": round(s["ms"]) if s else 0,
                        "ms_per_gib": round(s["ms"] / (raw / GIB)) if s and raw else "",
                        "node_pss_mib": round((nodes[label]["pss_bytes"] or 0) / MIB),
                    }
                )
            print(f"fan-out {n}: branch {branch_ms:.0f} ms, all first cells {all_ms:.0f} ms")
            for row in rows[-len(nodes) :]:
                print("   ", row)
    finally:
        daemon.proc.terminate()
        daemon.proc.wait(120)
        cluster.shutdown()
    write(rows, args)


def write(rows: list[dict], args) -> None:
    with open(HERE / "cluster.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    cols = list(rows[0])
    lines = [
        "# Fan-out over a Ray cluster",
        "",
        f"`python bench/cluster/bench_cluster.py --source-mib {args.source_mib} "
        f"--fanouts {args.fanouts}` on {platform.node()} ({os.cpu_count()} cores, "
        f"{platform.release()}), {time.strftime('%Y-%m-%d')}. {args.nodes} Ray nodes on this "
        "one machine; each group of rows is one full branch of a 2 GiB source holding "
        f"{args.source_mib} MiB of random float64s. `shipped`: raw bytes "
        "of the blocks sent to that node (only those its cache lacked); `ship_ms`: from "
        "packing the snapshot to the node having loaded it; `node_pss`: memory of the "
        "process holding the node's sandboxes after the fan-out (children accumulate).",
        "",
        "| " + " | ".join(cols) + " |",
        "|" + "---|" * len(cols),
    ]
    lines += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in rows]
    (HERE / "RESULTS.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
