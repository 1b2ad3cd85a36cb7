"""What a guest's first touch of a page costs, beside the host's, and how
many shadow-MMU faults `import numpy, pandas` takes, side by side in one run.

Run by hand (root, for KVM's tracepoints): ``python bench/syscalls/bench_faults.py
[--rounds 3]``.

1. Per page, by the guest's clock, touching 64 MiB one byte a page, a fresh
   mapping each round (the earlier ones kept, so it lands on pages never
   used), the three alternated: memory the host has not
   allocated (the guest's fault allocates it), memory the host populated
   at the mapping (``MAP_POPULATE``: the guest still takes KVM's fault), the
   same pages touched again (no fault); beside the host's own first touch.
2. ``import numpy, pandas`` in a fresh sandbox and in a child of a full
   snapshot of one (what a warm base's children are), with KVM's
   tracepoints counting the faults (``kvmmmu:kvm_mmu_pagetable_walk`` of
   user addresses), the mappings KVM made (``kvm_mmu_set_spte``: more than
   faults when it prefetched neighbours) and the exits to the VMM
   (``kvm:kvm_userspace_exit``), and the import's time by the guest's clock.

Prints markdown tables of medians.
"""

from __future__ import annotations

import argparse
import mmap
import re
import statistics
import time
from pathlib import Path

from forkd_jupyter.vmm import Sandbox

TRACING = Path("/sys/kernel/tracing")
EVENTS = ("kvmmmu/kvm_mmu_pagetable_walk", "kvmmmu/kvm_mmu_set_spte", "kvm/kvm_userspace_exit")
MIB = 64

TOUCH = """
import mmap, time
def per_page(m, value):
    t = time.perf_counter()
    for i in range(0, len(m), 4096):
        m[i] = value
    return (time.perf_counter() - t) * 1e6 / (len(m) // 4096)
lazy = mmap.mmap(-1, {mib} << 20)
flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | mmap.MAP_POPULATE
populated = mmap.mmap(-1, {mib} << 20, flags=flags)
result = (per_page(lazy, 1), per_page(populated, 1), per_page(lazy, 2))
# Kept mapped: a mapping made where one was unmapped reuses its pages
# (spare memory) and would take no fault.
kept = globals().setdefault('_kept', [])
kept += [lazy, populated]
result
"""
IMPORT = (
    "import time\n_t = time.perf_counter()\nimport numpy, pandas\n(time.perf_counter() - _t) * 1000"
)


def host_first_touch(mib: int) -> float:
    m = mmap.mmap(-1, mib << 20)
    t = time.perf_counter()
    for i in range(0, len(m), 4096):
        m[i] = 1
    us = (time.perf_counter() - t) * 1e6 / (len(m) // 4096)
    m.close()
    return us


def tracing_ok() -> bool:
    try:
        (TRACING / "tracing_on").write_text("0")
        return all((TRACING / "events" / e / "enable").exists() for e in EVENTS)
    except OSError:
        return False


def traced(sb: Sandbox, code: str) -> tuple[float, dict | None]:
    """Runs code (its value: ms) with the tracepoints on, when they are
    offered; the counts of faults, mappings and exits."""
    if not tracing_ok():
        return float(sb.run(code).result["text/plain"]), None
    (TRACING / "buffer_size_kb").write_text("65536")
    for e in EVENTS:
        (TRACING / "events" / e / "enable").write_text("1")
    (TRACING / "trace").write_text("")
    (TRACING / "tracing_on").write_text("1")
    try:
        ms = float(sb.run(code).result["text/plain"])
    finally:
        (TRACING / "tracing_on").write_text("0")
        for e in EVENTS:
            (TRACING / "events" / e / "enable").write_text("0")
    text = (TRACING / "trace").read_text()
    faults = sum(
        1
        for m in re.finditer(r"kvm_mmu_pagetable_walk: addr ([0-9a-f]+)", text)
        if int(m.group(1), 16) < 1 << 47
    )
    counts = {
        "faults": faults,
        "mappings": text.count("kvm_mmu_set_spte:"),
        "exits": text.count("kvm_userspace_exit:"),
    }
    return ms, counts


def imports(rounds: int) -> dict[str, list]:
    out: dict[str, list] = {"fresh": [], "child": []}
    for _ in range(rounds):
        for kind in out:
            src = Sandbox.spawn(memory_mib=2048)
            src.run("1")
            if kind == "child":
                snap = src.snapshot(mode="full")
                [sb] = snap.spawn()
                src.close()
            else:
                sb, snap = src, None
            sb.run("1")
            out[kind].append(traced(sb, IMPORT))
            sb.close()
            if snap is not None:
                snap.close(force=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    sb = Sandbox.spawn(memory_mib=2048)
    touches, host = [], []
    for _ in range(args.rounds):
        touches.append(eval(sb.run(TOUCH.format(mib=MIB)).result["text/plain"]))
        host.append(host_first_touch(MIB))
    sb.close()
    med = [statistics.median(t[i] for t in touches) for i in range(3)]
    print(f"## A page's first touch ({MIB} MiB, one byte a page, {args.rounds} rounds)\n")
    print("| memory | guest, us a page | host, us a page |")
    print("|---|---:|---:|")
    print(f"| not allocated by the host yet | {med[0]:.2f} | {statistics.median(host):.2f} |")
    print(f"| populated by the host at the mapping | {med[1]:.2f} | - |")
    print(f"| touched again | {med[2]:.2f} | - |")

    print("\n## `import numpy, pandas`: KVM's faults\n")
    print("| sandbox | import (guest clock) | faults | mappings | exits |")
    print("|---|---:|---:|---:|---:|")
    for kind, runs in imports(args.rounds).items():
        ms = statistics.median(r[0] for r in runs)
        counts = [r[1] for r in runs if r[1]]

        def col(key: str, counts: list = counts) -> str:
            return f"{statistics.median(c[key] for c in counts):.0f}" if counts else "-"

        print(f"| {kind} | {ms:.0f} ms | {col('faults')} | {col('mappings')} | {col('exits')} |")


if __name__ == "__main__":
    main()
