"""Thread scaling and threaded branching, the sandbox beside the host.

1. Speed-up from threads: a numpy matrix product (OpenBLAS's own thread
   pool, set to 1 thread and then to every host core) and, when polars is
   installed, a polars group-by (its pool sized by POLARS_MAX_THREADS), each
   run in a sandbox and natively (same interpreter), interleaved, best of
   REPEATS. The figure that matters is the ratio of speed-ups:
   sandbox (t1 / tN) over host (t1 / tN).
2. The pause of a branch of an idle threaded source (a pool of idle
   workers, a thread blocked in a wait), diff and live, beside the same
   source without threads, in one run: pause_ms p50 over ITERATIONS.

Writes threads.csv and RESULTS.md next to this file. Run by hand:

    pip install polars   # optional, for the group-by
    python bench/threads/bench_threads.py [--repeats 5] [--iterations 20]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from forkd_jupyter.vmm import Sandbox
from forkd_jupyter.vmm.guest_env import python_elf

HERE = Path(__file__).parent
CORES = os.cpu_count() or 1

# Prints {"threads": seconds} for the workload, best of REPEATS.
MATMUL = """
import ctypes, glob, json, os, time
import numpy as np
libs = os.path.join(os.path.dirname(np.__file__), os.pardir, 'numpy.libs')
lib = ctypes.CDLL(glob.glob(os.path.join(libs, 'libscipy_openblas*'))[0])
a = np.random.default_rng(0).random((1500, 1500))
out = {}
for n in (1, CORES):
    lib.scipy_openblas_set_num_threads64_(n)
    a @ a
    best = 1e9
    for _ in range(REPEATS):
        t = time.perf_counter(); a @ a; best = min(best, time.perf_counter() - t)
    out[n] = best
print('RESULT ' + json.dumps(out))
"""

# polars sizes its pool once per process (POLARS_MAX_THREADS): prints
# {"1": seconds} for the pool the process has.
GROUPBY = """
import json, time
import numpy as np
import polars as pl
rng = np.random.default_rng(0)
df = pl.DataFrame({'k': rng.integers(0, 100_000, 4_000_000), 'v': rng.random(4_000_000)})
best = 1e9
for _ in range(REPEATS + 1):
    t = time.perf_counter()
    df.group_by('k').agg(pl.col('v').sum().alias('s'), pl.col('v').mean().alias('m'))
    best = min(best, time.perf_counter() - t)
print('RESULT ' + json.dumps({1: best}))
"""

IDLE_THREADS = """
import threading
from concurrent.futures import ThreadPoolExecutor
pool = ThreadPoolExecutor(4)
list(pool.map(abs, range(100)))
ev = threading.Event()
waiter = threading.Thread(target=ev.wait)
waiter.start()
"""


def workload(code: str, repeats: int) -> str:
    return code.replace("CORES", str(CORES)).replace("REPEATS", str(repeats))


def parse(text: str) -> dict[int, float]:
    line = [x for x in text.splitlines() if x.startswith("RESULT ")][-1]
    return {int(k): v for k, v in json.loads(line[7:]).items()}


def native(code: str, env: dict[str, str] | None = None) -> dict[int, float]:
    out = subprocess.run(
        [python_elf(), "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env=os.environ | (env or {}),
    )
    return parse(out.stdout)


def in_sandbox(code: str, env_code: str = "") -> dict[int, float]:
    sb = Sandbox.spawn(memory_mib=2048)
    try:
        r = sb.run(env_code + code, timeout=600)
        if r.error:
            raise RuntimeError(f"{r.error.ename}: {r.error.evalue}")
        return parse(r.stdout)
    finally:
        sb.close()


def polars_times(repeats: int, where: str) -> dict[int, float]:
    """polars sizes its pool once per process: one process per thread count."""
    out = {}
    for n in (1, CORES):
        code = workload(GROUPBY, repeats)
        if where == "host":
            out[n] = native(code, {"POLARS_MAX_THREADS": str(n)})[1]
        else:
            out[n] = in_sandbox(code, f"import os\nos.environ['POLARS_MAX_THREADS'] = '{n}'\n")[1]
    return out


def scaling(repeats: int) -> list[dict]:
    rows = []
    have_polars = (
        subprocess.run([python_elf(), "-c", "import polars"], capture_output=True).returncode == 0
    )
    cases = [
        (
            "numpy matmul 1500x1500",
            lambda where: (
                native(workload(MATMUL, repeats))
                if where == "host"
                else in_sandbox(workload(MATMUL, repeats))
            ),
        )
    ]
    if have_polars:
        cases.append(("polars group-by 4M rows", lambda where: polars_times(repeats, where)))
    else:
        print("polars is not installed: the group-by is left out (pip install polars)")
    for name, run in cases:
        host, guest = run("host"), run("sandbox")
        host_speedup, guest_speedup = host[1] / host[CORES], guest[1] / guest[CORES]
        rows.append(
            {
                "workload": name,
                "host_1_s": round(host[1], 4),
                f"host_{CORES}_s": round(host[CORES], 4),
                "sandbox_1_s": round(guest[1], 4),
                f"sandbox_{CORES}_s": round(guest[CORES], 4),
                "host_speedup": round(host_speedup, 2),
                "sandbox_speedup": round(guest_speedup, 2),
                "speedup_ratio": round(guest_speedup / host_speedup, 3),
            }
        )
        print(rows[-1])
    return rows


def pauses(iterations: int) -> list[dict]:
    rows = []
    plain, threaded = Sandbox.spawn(memory_mib=1024), Sandbox.spawn(memory_mib=1024)
    try:
        plain.run("x = 1")
        threaded.run(IDLE_THREADS)
        time.sleep(0.2)
        for mode in ("diff", "live"):
            got = {"no threads": [], "6 idle threads": []}
            for _ in range(iterations):  # interleaved: the machine's noise hits both alike
                for label, sb in (("no threads", plain), ("6 idle threads", threaded)):
                    got[label].append(sb.snapshot(mode=mode, wait=True).pause_ms)
                    time.sleep(0.05)
            for label, values in got.items():
                rows.append(
                    {
                        "mode": mode,
                        "source": label,
                        "pause_ms_p50": round(statistics.median(values), 3),
                        "pause_ms_max": round(max(values), 3),
                        "n": len(values),
                    }
                )
                print(rows[-1])
    finally:
        threaded.run("ev.set(); waiter.join(); pool.shutdown()")
        plain.close()
        threaded.close()
    return rows


def write(scale: list[dict], pause: list[dict]) -> None:
    with open(HERE / "threads.csv", "w", newline="") as f:
        for rows in (scale, pause):
            if rows:
                w = csv.DictWriter(f, fieldnames=list(rows[0]))
                w.writeheader()
                w.writerows(rows)
    lines = [
        "# Threads: scaling and branching",
        "",
        f"Machine: {CORES} cores; {time.strftime('%Y-%m-%d')}; "
        "`python bench/threads/bench_threads.py`.",
        "",
        "## Speed-up from threads (best of the repeats, seconds)",
        "",
    ]
    if scale:
        keys = list(scale[0])
        lines += ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
        lines += ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in scale]
    lines += [
        "",
        "## Branch pause of an idle source, with and without threads",
        "",
        "| mode | source | pause_ms p50 | max | n |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['mode']} | {r['source']} | {r['pause_ms_p50']} | {r['pause_ms_max']} | {r['n']} |"
        for r in pause
    ]
    (HERE / "RESULTS.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--iterations", type=int, default=20)
    args = ap.parse_args()
    write(scaling(args.repeats), pauses(args.iterations))


if __name__ == "__main__":
    sys.exit(main())
