"""A child reads memory it inherited: full images in the image store (2 MiB
pages) against memfds (4 KiB pages), beside a forked host process.

Run by hand: ``python bench/inherited-reads/bench_inherited_reads.py
[--rounds 5] [--mib 1024] [--csv FILE] [--markdown FILE]``. In-process VMM
(no daemon): a source holds a numpy array of ``--mib`` MiB; each round takes
a live snapshot of it with full images in the image store, then one with
memfds (the store switched off for that snapshot only), alternating; for
each snapshot a child is spawned and reads the array at a 32 KiB stride
(every eighth page):

- spawn -> first cell: from the spawn call until the first cell's result
  (``1 + 1``) is back, the host's view;
- strided read: the guest's own clock around ``A[::32768].sum()`` (its
  first touch of those pages), and the host's view of the whole request;
- per page: the guest's strided read over the pages it touched;
- KVM mappings the read added (``Sandbox.stats()["kvm_pages"]``);
- spawn + first cell + read: the issue's end-to-end figure.

Reference: the same read in a forked host process (``os.fork``; its parent
wrote the array), and the memory sharing check: the anonymous memory ten
idle children that each read the array add to the process (their
copy-on-write copies; the image they share is in memory once either way),
as a share of the array."""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from forkd_jupyter.commands.bench_all import HOST_FORKED_READ, STRIDED
from forkd_jupyter.vmm import Sandbox, image_store
from forkd_jupyter.vmm._ffi import lib


def value(sb: Sandbox, code: str) -> float:
    r = sb.run(code)
    if r.error is not None:
        raise RuntimeError(f"{r.error.ename}: {r.error.evalue}")
    return float(r.result["text/plain"])


def anon_kib() -> int:
    """This process's anonymous memory: the children's copy-on-write copies
    of guest pages (and the VMM's heap)."""
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines():
        if line.startswith("Anonymous:"):
            return int(line.split()[1])
    raise RuntimeError("no Anonymous line")


def snapshot(src: Sandbox, store: bool):
    """A live snapshot whose full image is in the store (or a memfd)."""
    lib.fj_snapshot_image_store(image_store.ensure() if store else -1)
    try:
        return src.snapshot(mode="live").wait()
    finally:
        lib.fj_snapshot_image_store(image_store.ensure())


def one_child(snap, touched: int) -> dict:
    t = time.perf_counter()
    (child,) = snap.spawn()
    try:
        value(child, "1 + 1")
        spawn_ms = (time.perf_counter() - t) * 1000
        before = child.stats()["kvm_pages"]
        t = time.perf_counter()
        guest_ms = value(child, STRIDED)
        host_ms = (time.perf_counter() - t) * 1000
        after = child.stats()["kvm_pages"]
    finally:
        child.close()
    return {
        "spawn_first_cell_ms": spawn_ms,
        "read_guest_ms": guest_ms,
        "read_host_ms": host_ms,
        "us_per_page": guest_ms * 1000 / touched,
        "kvm_2m_added": after["2m"] - before["2m"],
        "kvm_4k_added": after["4k"] - before["4k"],
        "end_to_end_ms": spawn_ms + host_ms,
    }


def sharing(snap, mib: int, n: int = 10) -> float:
    """Memory ten idle children that each read the array copy, over the
    array: they share the image (in memory once, either way) and copy only
    what they write."""
    before = anon_kib()
    children = snap.spawn(n)
    try:
        for c in children:
            value(c, STRIDED)
        time.sleep(1.0)
        return (anon_kib() - before) / (mib * 1024)
    finally:
        for c in children:
            c.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--mib", type=int, default=1024, help="the inherited array, MiB")
    parser.add_argument("--csv", type=Path)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args()
    if image_store.ensure() is None:
        print(f"no image store here: {image_store.status()}", file=sys.stderr)
        return 1
    touched = (args.mib << 20) // 32768
    src = Sandbox.spawn(memory_mib=args.mib + 1024)
    rows: list[dict] = []
    try:
        value(src, f"import numpy as np\nA = np.ones({args.mib} << 20, dtype=np.uint8)\n0")
        for r in range(args.rounds):
            for store in (True, False) if r % 2 == 0 else (False, True):
                snap = snapshot(src, store)
                try:
                    row = one_child(snap, touched)
                finally:
                    snap.close(force=True)
                row.update(images="image store" if store else "memfd", round=r)
                rows.append(row)
                print(f"round {r} {row['images']}: read {row['read_guest_ms']:.1f} ms", flush=True)
        shares = {}
        for store in (True, False):
            snap = snapshot(src, store)
            try:
                shares[store] = sharing(snap, args.mib)
            finally:
                snap.close(force=True)
    finally:
        src.close()
    done = subprocess.run(
        [sys.executable, "-c", HOST_FORKED_READ.format(mib=args.mib)],
        capture_output=True,
        text=True,
        check=True,
    )
    host_ms = float(done.stdout.strip().splitlines()[-1])
    print_table(rows, shares, host_ms, touched, args)
    if args.csv:
        with args.csv.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    return 0


FIELDS = (
    ("spawn -> first cell, ms", "spawn_first_cell_ms", "{:.1f}"),
    ("strided read, guest's clock, ms", "read_guest_ms", "{:.1f}"),
    ("strided read, host's view of the request, ms", "read_host_ms", "{:.1f}"),
    ("per page touched, us", "us_per_page", "{:.2f}"),
    ("spawn + first cell + read, ms", "end_to_end_ms", "{:.1f}"),
    ("KVM 2 MiB mappings the read added", "kvm_2m_added", "{:.0f}"),
    ("KVM 4 KiB mappings the read added", "kvm_4k_added", "{:.0f}"),
)


def print_table(rows, shares, host_ms, touched, args) -> None:
    def med(images: str, key: str) -> float:
        return statistics.median(r[key] for r in rows if r["images"] == images)

    lines = [
        f"A child reads its inherited {args.mib} MiB at a 32 KiB stride ({touched} pages); "
        f"p50 of {args.rounds} rounds each, alternated, one run, {time.strftime('%Y-%m-%d')}, "
        f"{os.cpu_count()} cores.",
        "",
        "| | image store (2 MiB pages) | memfd (4 KiB pages) | ratio |",
        "|---|---:|---:|---:|",
    ]
    for label, key, fmt in FIELDS:
        a, b = med("image store", key), med("memfd", key)
        ratio = f"{b / a:.1f}x" if a and key.endswith(("ms", "page")) else "-"
        lines.append(f"| {label} | {fmt.format(a)} | {fmt.format(b)} | {ratio} |")
    lines.append(
        f"| ten idle children that read it: memory they copy / array | {shares[True]:.1%} | "
        f"{shares[False]:.1%} | - |"
    )
    lines += [
        "",
        f"Host: a forked process reads its parent's array the same way in {host_ms:.1f} ms "
        f"({host_ms * 1000 / touched:.2f} us a page).",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.markdown:
        args.markdown.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
