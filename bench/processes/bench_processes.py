"""Processes in a sandbox beside the host, measured in one run.

1. fork() as the parent feels it: a guest holding MIB MiB of written
   memory forks a child that exits at once; the time os.fork() takes in the
   parent (the guest's own clock), for the first fork (no earlier snapshot:
   the parent's mapped memory is copied) and for the forks after it (only
   what the parent wrote since the previous fork is copied), beside the
   same script run natively. The child's own start is reported as well:
   from the fork to the parent seeing its exit in waitpid.
2. Programs: subprocess.run([sys.executable, "-c", "pass"]),
   subprocess.run(["true"]), os.system("true") and a fork-context
   multiprocessing.Pool(2) mapping a tiny function: median wall time of
   REPEATS runs each, sandbox and host interleaved, and the ratio.

Writes processes.csv and RESULTS.md next to this file. Run by hand:

    python bench/processes/bench_processes.py [--repeats 15] [--mib 1024]
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import sys
from pathlib import Path

from forkd_jupyter.vmm import Sandbox
from forkd_jupyter.vmm.guest_env import python_elf

HERE = Path(__file__).parent

# Forks REPEATS + 1 times, writing the page `k * 4096 + SKIP` of `data`
# between forks; prints RESULT {"first": ms, "later": [ms...], "child": [ms...]}.
FORKS = """
import json, os, time
later, child = [], []
def one():
    t = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    forked = time.perf_counter()
    os.waitpid(pid, 0)
    child.append((time.perf_counter() - t) * 1000)
    return (forked - t) * 1000
first = one()
for k in range(REPEATS):
    data[k * 4096 + SKIP] = 2  # a little written between forks
    later.append(one())
print('RESULT ' + json.dumps({'first': first, 'later': later, 'child': child}))
"""
FORK = """
data = bytearray(MIB << 20)
for i in range(0, len(data), 4096):
    data[i] = 1
""" + FORKS.replace("SKIP", "0")

# Prints RESULT {name: [ms...]} for the program workloads.
PROGRAMS = """
import json, multiprocessing as mp, os, subprocess, sys, time
def timed(fn):
    t = time.perf_counter(); fn(); return (time.perf_counter() - t) * 1000
def pool():
    with mp.get_context('fork').Pool(2) as p:
        p.map(abs, range(8))
work = {
    'subprocess.run([sys.executable, "-c", "pass"])':
        lambda: subprocess.run([sys.executable, '-c', 'pass'], check=True),
    'subprocess.run(["true"])': lambda: subprocess.run(['true'], check=True),
    'os.system("true")': lambda: os.system('true'),
    'multiprocessing.Pool(2).map': pool,
}
out = {name: [] for name in work}
for _ in range(REPEATS):
    for name, fn in work.items():
        out[name].append(timed(fn))
print('RESULT ' + json.dumps(out))
"""


def _result(text: str) -> dict:
    line = next(x for x in text.splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


def in_sandbox(code: str, mib: int) -> dict:
    with Sandbox.spawn(memory_mib=max(1024, mib + 512)) as sb:
        out = sb.run(code, timeout=600)
        if out.error is not None:
            raise RuntimeError(f"{out.error.ename}: {out.error.evalue}")
        return _result(out.stdout)


def on_host(code: str) -> dict:
    done = subprocess.run([python_elf(), "-c", code], capture_output=True, text=True, check=True)
    return _result(done.stdout)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--mib", type=int, default=1024)
    args = ap.parse_args()
    rows = []
    fork = FORK.replace("MIB", str(args.mib)).replace("REPEATS", str(args.repeats))
    sb, host = in_sandbox(fork, args.mib), on_host(fork)
    for what, s, h in (
        ("fork() in the parent, first", [sb["first"]], [host["first"]]),
        ("fork() in the parent, later", sb["later"], host["later"]),
        ("fork + child exit seen by waitpid", sb["child"], host["child"]),
    ):
        rows.append(
            (f"{what} ({args.mib} MiB written)", statistics.median(s), statistics.median(h))
        )
    programs = PROGRAMS.replace("REPEATS", str(args.repeats))
    sb, host = in_sandbox(programs, 0), on_host(programs)
    for name in sb:
        rows.append((name, statistics.median(sb[name]), statistics.median(host[name])))
    header = ("workload", "sandbox ms (p50)", "host ms (p50)", "sandbox / host")
    table = [header] + [
        (w, f"{s:.2f}", f"{h:.2f}", f"{s / h:.2f}" if h else "-") for w, s, h in rows
    ]
    widths = [max(len(r[i]) for r in table) for i in range(4)]
    for r in table:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
    with open(HERE / "processes.csv", "w", newline="") as f:
        csv.writer(f).writerows(table)
    md = ["| " + " | ".join(header) + " |", "|" + "---|" * 4]
    md += ["| " + " | ".join(r) + " |" for r in table[1:]]
    (HERE / "RESULTS.md").write_text(
        "# Processes: the sandbox beside the host\n\n"
        f"`python bench/processes/bench_processes.py --repeats {args.repeats} --mib {args.mib}`, "
        f"{sys.platform}, one run, medians. Times are the guest's own clock around the call "
        "(the parent's view), the same script natively beside it.\n\n" + "\n".join(md) + "\n"
    )


if __name__ == "__main__":
    main()
