"""What a running cell feels when its sandbox is branched live.

The source (MEMORY MiB, TOUCHED MiB touched) runs a probe loop that does a
unit of work and timestamps itself with CLOCK_MONOTONIC (the guest's clock
is the host's), for three workloads:

- idle: sleeps 0.5 ms per step (a cell waiting on a timer);
- compute: a pure-Python arithmetic loop (~15-50 us per step), touching little;
- rewrite: adds 1 to the next 64 KiB of a 256 MiB numpy array per step, so
  it writes every page of it over and over.

Meanwhile the host branches it live (wait=True) ITERATIONS times. From the
guest's timestamps: the longest gap in its progress and the progress lost
(the sum, over the gaps from the start of the branch call until the copy is
done, of each gap minus the median gap of the quiet second before), beside
the VMM's pause_ms and its own stall figures. A quiet window with no branch
gives the machine's noise floor. Results go to bench-busy-source.csv and
the "Busy source" section of RESULTS.md. Run by hand:

    python bench/branch-pause/bench_busy_source.py [--iterations 5]
"""

from __future__ import annotations

import argparse
import csv
import re
import statistics
import threading
import time
from pathlib import Path

import numpy as np

from forkd_jupyter.vmm import Sandbox

HERE = Path(__file__).parent
MARKER = "## Busy source"
WORKLOADS = ["idle", "compute", "rewrite"]

SETUP = """
import time
import numpy as np
blob = bytearray({touched})
for i in range(0, len(blob), 4096):
    blob[i] = 1
ARR = np.zeros(256 << 20, dtype=np.uint8)
TS = np.zeros(16_000_000, dtype=np.int64)  # a compute step takes ~4 us: 64 s of steps


def probe(kind, seconds):
    TS[:] = 0
    n, i, step = 0, 0, 64 << 10
    end = time.monotonic_ns() + int(seconds * 1e9)
    now = time.monotonic_ns()
    while now < end and n < len(TS):
        if kind == "compute":
            x = 0
            for k in range(400):
                x += k
        elif kind == "rewrite":
            ARR[i : i + step] += 1
            i = (i + step) % len(ARR)
        else:
            time.sleep(0.0005)
        now = time.monotonic_ns()
        TS[n] = now
        n += 1
    return n
"""


REFAULT = """
t0 = time.monotonic_ns(); ARR += 1; t1 = time.monotonic_ns(); ARR += 1
t2 = time.monotonic_ns(); REFAULT_NS = (t1 - t0, t2 - t1)
"""


def refault_floor(source: Sandbox, mode: str = "live", rounds: int = 3) -> float:
    """KVM's cost of a guest write to a page after a branch (us per 4 KiB
    page): the guest rewrites the 256 MiB array right after the branch and
    again at once (warm); the difference per page. live: every page was
    write-protected on the host, copied and released, which drops KVM's
    mappings. diff: KVM's dirty log re-protected the written pages in KVM's
    own tables only: the least any tracking of the guest's writes costs here."""
    per_page = []
    for _ in range(rounds):
        source.snapshot(mode=mode, wait=True).close(force=True)
        source.run(REFAULT)
        first, warm = source.pull("REFAULT_NS")
        per_page.append((first - warm) / 1e3 / (256 << 20 >> 12))
    return statistics.median(per_page)


def gaps_in(ts: np.ndarray, start: int, end: int) -> np.ndarray:
    """Gaps (ns) between consecutive steps that end inside [start, end]."""
    gaps = np.diff(ts)
    ends = ts[1:]
    return gaps[(ends >= start) & (ends <= end)]


def measure(ts: np.ndarray, start: int, end: int, quiet: tuple[int, int]) -> tuple[float, float]:
    """(longest gap, progress lost) in ms over [start, end]."""
    if len(ts) == 0 or ts[-1] < end:
        # A window past the probe's last step would read as no gap at all.
        raise RuntimeError("the probe's timestamps end before the window: TS is too small")
    nominal = float(np.median(gaps_in(ts, *quiet)))
    gaps = gaps_in(ts, start, end)
    lost = float(np.clip(gaps - nominal, 0, None).sum())
    return float(gaps.max()) / 1e6, lost / 1e6


def run_workload(source: Sandbox, kind: str, iterations: int) -> list[dict]:
    seconds = 900.0  # ended by the interrupt below: a copy may take seconds on a loaded machine
    result: dict = {}
    t = threading.Thread(
        target=lambda: result.setdefault("n", source.run(f"probe({kind!r}, {seconds})"))
    )
    t.start()
    time.sleep(1.5)
    marks = []
    resumes: dict[int, int] = {}
    quiet_start = time.monotonic_ns()
    time.sleep(1.0)  # the noise floor: a window with no branch
    marks.append(("quiet", quiet_start, time.monotonic_ns(), None))
    for _ in range(iterations):
        t0 = time.monotonic_ns()
        snap = source.snapshot(mode="live", wait=False)  # returns after arming and the pause
        resumed = time.monotonic_ns()
        snap.wait()
        t1 = time.monotonic_ns()
        marks.append(("branch", t0, t1, snap))
        resumes[t0] = resumed
        time.sleep(2.0)
    source.interrupt()  # ends the probe; its steps are the non-zero timestamps
    t.join()
    assert result["n"].error is None or result["n"].error.ename == "KeyboardInterrupt"
    source.run("N_STEPS = int(np.count_nonzero(TS))")
    n = source.pull("N_STEPS")
    ts = _pull_ts(source, n)
    rows = []
    quiet_rate = None  # progress lost per ms of the quiet window: the machine's own noise
    for what, start, end, snap in marks:
        quiet = (start - 600_000_000, start - 100_000_000)
        longest, lost = measure(ts, start, end + 5_000_000, quiet)
        if start in resumes:  # the same split for the arming and pause, and the copy
            arm = measure(ts, start, resumes[start], quiet)
            copy = measure(ts, resumes[start], end + 5_000_000, quiet)
            print(f"   arming+pause: longest {arm[0]:.1f} lost {arm[1]:.1f}; "
                  f"copy: longest {copy[0]:.1f} lost {copy[1]:.1f} ms")  # fmt: skip
        row = {"workload": kind, "window": what, "guest_longest_gap_ms": longest,
               "guest_lost_ms": lost, "window_ms": (end - start) / 1e6 + 5}  # fmt: skip
        if quiet_rate is None:
            quiet_rate = lost / row["window_ms"]
        # What the branch cost beyond the noise of the same length of time.
        row["guest_excess_lost_ms"] = max(0.0, lost - quiet_rate * row["window_ms"])
        if snap is not None:
            row.update(
                pause_ms=snap.pause_ms,
                stall_ms=getattr(snap, "stall_ms", 0.0),  # (older builds lack it)
                stall_total_ms=getattr(snap, "stall_total_ms", 0.0),
                copy_ms=snap.copy_ms,
            )
            snap.close(force=True)
        rows.append(row)
        print(
            f"{kind:8} {what:6} longest gap {longest:8.2f} ms  lost {lost:8.2f} ms  "
            f"pause {row.get('pause_ms', 0):6.2f} ms  VMM stall {row.get('stall_ms', 0):7.2f} ms",
            flush=True,
        )
    return rows


def _pull_ts(source: Sandbox, n: int, piece: int = 1 << 20) -> np.ndarray:
    """The first n timestamps, a piece at a time (one copy of them all does
    not fit beside the touched memory)."""
    parts = []
    for at in range(0, n, piece):
        source.run(f"TS_BYTES = TS[{at}:{min(n, at + piece)}].tobytes()")
        parts.append(np.frombuffer(source.pull("TS_BYTES", timeout=120), dtype=np.int64))
    source.run("del TS_BYTES")
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def p50(rows: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def pmax(rows: list[dict], key: str) -> float:
    return max(r[key] for r in rows)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--memory-mib", type=int, default=2048)
    ap.add_argument("--touched-mib", type=int, default=1280, help="besides the 256 MiB array")
    ap.add_argument("--iterations", type=int, default=5)
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    args = ap.parse_args()
    workloads = args.workloads.split(",")
    source = Sandbox.spawn(memory_mib=args.memory_mib, live_fork=True)
    r = source.run(SETUP.format(touched=args.touched_mib << 20), timeout=1800)
    assert r.error is None, r.error
    rows = []
    for kind in workloads:
        rows += run_workload(source, kind, args.iterations)
    floor_us = refault_floor(source)
    print(f"KVM re-fault after write-protect: {floor_us:.1f} us per page", flush=True)
    dirty_log_us = refault_floor(source, mode="diff")
    print(f"KVM dirty-log write fault: {dirty_log_us:.1f} us per page", flush=True)
    source.close()

    fields = ["workload", "window", "window_ms", "pause_ms", "stall_ms", "stall_total_ms",
              "copy_ms", "guest_longest_gap_ms", "guest_lost_ms",
              "guest_excess_lost_ms"]  # fmt: skip
    with open(HERE / "bench-busy-source.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for row in rows:
            w.writerow({k: row.get(k) for k in fields})

    total = args.touched_mib + 256
    lines = [
        MARKER,
        "",
        f"Source: {args.memory_mib} MiB sandbox, {total} MiB touched (a 256 MiB numpy array "
        f"among it); {args.iterations} live branches (wait=True) per workload, 2 s apart. "
        "Produced by `bench/branch-pause/bench_busy_source.py`; raw rows in "
        "`bench-busy-source.csv`. *Guest* columns come from the guest's own "
        "CLOCK_MONOTONIC timestamps; *VMM* columns are what the snapshot reports "
        "(`pause_ms`, `stall_ms`, `stall_total_ms`). *Quiet* is a window of the same "
        "workload with no branch: the machine's noise floor (other load shares its 2 "
        "cores); *lost beyond noise* subtracts that rate over the branch's window.",
        "",
        "| workload | pause p50 | VMM stall p50 / max | VMM stall total p50 | guest longest gap "
        "p50 / max | guest progress lost p50 / max | lost beyond noise p50 | quiet 1 s: "
        "longest gap / lost |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for kind in workloads:
        b = [r for r in rows if r["workload"] == kind and r["window"] == "branch"]
        (q,) = [r for r in rows if r["workload"] == kind and r["window"] == "quiet"]
        lines.append(
            f"| {kind} | {p50(b, 'pause_ms'):.2f} ms | {p50(b, 'stall_ms'):.1f} / "
            f"{pmax(b, 'stall_ms'):.1f} ms | {p50(b, 'stall_total_ms'):.1f} ms | "
            f"{p50(b, 'guest_longest_gap_ms'):.1f} / {pmax(b, 'guest_longest_gap_ms'):.1f} ms | "
            f"{p50(b, 'guest_lost_ms'):.1f} / {pmax(b, 'guest_lost_ms'):.1f} ms | "
            f"{p50(b, 'guest_excess_lost_ms'):.1f} ms | "
            f"{q['guest_longest_gap_ms']:.1f} / {q['guest_lost_ms']:.1f} ms |"
        )
    lines += [
        "",
        f"Platform floor: after a write-protect cycle KVM re-faults each page the guest "
        f"touches again, measured here at {floor_us:.1f} us per 4 KiB page (the guest "
        "rewriting its 256 MiB array right after a branch completed, minus a warm pass): "
        f"{floor_us * 65536 / 1e3:.0f} ms for that array, whatever the copier does. "
        "Tracking writes with KVM's dirty log instead (what a diff branch does: it "
        "re-protects written pages in KVM's own tables, leaving the host's mapping "
        f"alone) costs {dirty_log_us:.1f} us per page written after a branch: "
        f"{dirty_log_us * 65536 / 1e3:.0f} ms for the array, the least any tracking "
        "of a rewriting guest's writes costs on this host.",
    ]
    section = "\n".join(lines) + "\n"
    results = HERE / "RESULTS.md"
    text = results.read_text() if results.exists() else ""
    head, _, rest = text.partition(MARKER)
    head = head.rstrip("\n")
    # The generated part has no heading of its own: the notes written under
    # it (### subsections, later ## sections) stay.
    notes = re.search(r"^##+ ", rest, re.M)
    tail = "\n" + rest[notes.start() :] if notes else ""
    results.write_text((head + "\n\n" if head else "") + section + tail)
    print(section)


if __name__ == "__main__":
    main()
