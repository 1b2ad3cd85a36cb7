"""`bench --all`: the scenarios a user feels, each beside the host or a
published anchor, in one table (docs/cli.md). Through the daemon like every
command; the host side runs in subprocesses of this interpreter.

Each scenario yields rows ``{"scenario", "sandbox_ms", "reference_ms",
"reference", "rounds"}``; ``ratio`` is sandbox / reference (lower is
better for all of them). A scenario whose workload cannot run here (numpy or
pandas missing) yields a row with ``sandbox_ms`` None and the reason."""

from __future__ import annotations

import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

README_START = "<!-- bench --all: start -->"
README_END = "<!-- bench --all: end -->"

# Published anchors (README "references"): ms, and where they come from.
MITOS_ACTIVATE_MS = 27.0
FORKD_LIVE_PAUSE_MS = 56.0
MITOS_FORK_TO_EXEC_MS = 100.0

MICRO = (
    "import os, time\n"
    "t = time.perf_counter_ns()\n"
    "for _ in range(20000): time.monotonic()\n"
    "clock = (time.perf_counter_ns() - t) / 20000 / 1e6\n"
    "t = time.perf_counter_ns()\n"
    "for _ in range(2000): os.getppid()\n"
    "sysc = (time.perf_counter_ns() - t) / 2000 / 1e6\n"
    "(clock, sysc)"
)
IMPORT = (
    "import time\n_t = time.perf_counter()\nimport numpy, pandas\n(time.perf_counter() - _t) * 1000"
)
STRIDED = (
    "import time\n_t = time.perf_counter()\n_s = int(A[::32768].sum())\n"
    "(time.perf_counter() - _t) * 1000"
)
HOST_FORKED_READ = """
import os, sys, time
import numpy as np
A = np.ones({mib} << 20, dtype=np.uint8)
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    t = time.perf_counter(); s = int(A[::32768].sum()); ms = (time.perf_counter() - t) * 1000
    os.write(w, repr(ms).encode()); os._exit(0)
os.waitpid(pid, 0)
print(os.read(r, 100).decode())
"""


def _value(result) -> float:
    if result.error is not None:
        raise RuntimeError(f"{result.error.ename}: {result.error.evalue}")
    return float(result.result["text/plain"])


def _host(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr else "failed")
    return done.stdout.strip().splitlines()[-1]


def _row(scenario, sandbox, reference, label, rounds, note=None) -> dict:
    return {
        "scenario": scenario,
        "sandbox_ms": sandbox,
        "reference_ms": reference,
        "reference": label,
        "ratio": (sandbox / reference) if sandbox is not None and reference else None,
        "rounds": rounds,
        "note": note,
    }


# Spawns a user makes come apart; the base's ready child (made after each
# spawn, ~0.1 s) is waiting by then. Back-to-back spawns:
# bench/warm-spawn/bench_ready_children.py.
SPAWN_GAP_S = 0.5


def spawn_first_cell(c, rounds: int) -> Iterator[dict]:
    c.kill_sandbox(c.spawn_sandboxes()[0]["id"])  # the environment's base exists after this
    times = []
    for _ in range(rounds):
        time.sleep(SPAWN_GAP_S)
        t = time.perf_counter()
        [sb] = c.spawn_sandboxes()
        c.run_cell(sb["id"], "1 + 1")
        times.append((time.perf_counter() - t) * 1000)
        c.kill_sandbox(sb["id"])
    yield _row(
        f"spawn -> first cell (warm base, spawns {SPAWN_GAP_S} s apart)",
        statistics.median(times),
        MITOS_ACTIVATE_MS,
        "Mitos, warm sandbox activation",
        rounds,
    )


def branching(c, rounds: int, mib: int) -> Iterator[dict]:
    [src] = c.spawn_sandboxes(memory_limit_mib=max(2048, mib + 1024))
    try:
        code = f"import numpy as np\nA = np.ones({mib} << 20, dtype=np.uint8)\nNone"
        numpy = c.run_cell(src["id"], code).error is None
        if not numpy:
            c.run_cell(src["id"], f"A = bytearray(b'\\x01') * ({mib} << 20)\nNone")
        pauses, firsts, strided = [], [], []
        for _ in range(rounds):
            done = c.branch_sandbox(src["id"], mode="live", count=1)
            pauses.append(done["snapshot"]["pause_ms"])
            child = done["children"][0]["id"]
            t = time.perf_counter()
            c.run_cell(child, "1 + 1")
            firsts.append((time.perf_counter() - t) * 1000)
            if numpy:
                strided.append(_value(c.run_cell(child, STRIDED)))
            c.delete_snapshot(done["snapshot"]["id"], cascade=True)
    finally:
        c.kill_sandbox(src["id"])
    yield _row(
        f"live branch pause, idle source ({mib} MiB written)",
        statistics.median(pauses),
        FORKD_LIVE_PAUSE_MS,
        "forkd live pause p50 (1.5 GiB)",
        rounds,
    )
    yield _row(
        "child's first cell after a live branch",
        statistics.median(firsts),
        MITOS_FORK_TO_EXEC_MS,
        "Mitos, fork to first exec",
        rounds,
    )
    name = f"child reads its inherited {mib} MiB at a 32 KiB stride"
    if not numpy:
        yield _row(name, None, None, "-", 0, "numpy is not in the sandbox's environment")
        return
    try:
        host = float(_host(HOST_FORKED_READ.format(mib=mib)))
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        yield _row(name, statistics.median(strided), None, "-", rounds, f"host: {e}")
        return
    yield _row(name, statistics.median(strided), host, "host, forked child", rounds)


def imports(c, rounds: int) -> Iterator[dict]:
    name = "import numpy, pandas (fresh sandbox)"
    guest = []
    for _ in range(rounds):
        [sb] = c.spawn_sandboxes()
        try:
            guest.append(_value(c.run_cell(sb["id"], IMPORT)))
        except RuntimeError as e:
            yield _row(name, None, None, "-", 0, str(e))
            return
        finally:
            c.kill_sandbox(sb["id"])
    host = [float(_host(IMPORT.replace("(time", "print((time") + ")")) for _ in range(rounds)]
    yield _row(name, statistics.median(guest), statistics.median(host), "host", rounds)


def micro(c, rounds: int) -> Iterator[dict]:
    [sb] = c.spawn_sandboxes()
    try:
        guest = [eval(c.run_cell(sb["id"], MICRO).result["text/plain"]) for _ in range(rounds)]
    finally:
        c.kill_sandbox(sb["id"])
    host_code = MICRO.replace("(clock, sysc)", "print((clock, sysc))")
    host = [eval(_host(host_code)) for _ in range(rounds)]
    names = ("clock read (time.monotonic)", "trivial system call (os.getppid)")
    for i, name in enumerate(names):  # MICRO's answer is (clock, sysc)
        g, h = statistics.median(x[i] for x in guest), statistics.median(x[i] for x in host)
        yield _row(name, g, h, "host", rounds)


def scenarios(rounds: int, mib: int) -> list[tuple[str, Callable]]:
    return [
        ("spawn", lambda c: spawn_first_cell(c, rounds)),
        ("branch", lambda c: branching(c, rounds, mib)),
        ("imports", lambda c: imports(c, max(1, rounds // 2))),
        ("system calls", lambda c: micro(c, 3)),
    ]


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": time.strftime("%Y-%m-%d"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30),
    }


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 0.1:
        return f"{value * 1000:.2f} us"
    return f"{value:.2f} ms" if value < 10 else f"{value:.1f} ms"


def _ratio(row: dict) -> str:
    if row["ratio"] is None:
        return row["note"] or "-"
    return f"{row['ratio']:.3g}x"


def render_markdown(report: dict) -> str:
    m = report["machine"]
    lines = [
        f"`forkd-jupyter bench --all`, {m['date']}, {m['cpu']} ({m['cores']} cores, "
        f"{m['memory_gib']} GiB); medians.",
        "",
        "| scenario | sandbox | reference | ratio |",
        "|---|---:|---:|---:|",
    ]
    for r in report["rows"]:
        ref = f"{_ms(r['reference_ms'])} ({r['reference']})" if r["reference_ms"] else "-"
        lines.append(f"| {r['scenario']} | {_ms(r['sandbox_ms'])} | {ref} | {_ratio(r)} |")
    return "\n".join(lines) + "\n"


def render_rows(report: dict) -> list[tuple]:
    return [
        (
            r["scenario"],
            _ms(r["sandbox_ms"]),
            _ms(r["reference_ms"]),
            r["reference"],
            _ratio(r),
        )
        for r in report["rows"]
    ]


def update_readme(path: Path, markdown: str) -> None:
    """Replaces the block between the bench markers in ``path``."""
    text = path.read_text()
    pattern = re.compile(re.escape(README_START) + r".*?" + re.escape(README_END), re.S)
    if not pattern.search(text):
        raise ValueError(f"{path} has no {README_START} ... {README_END} block")
    path.write_text(pattern.sub(lambda _: f"{README_START}\n{markdown}{README_END}", text))
