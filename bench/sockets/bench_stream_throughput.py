"""Bytes through a stream between two threads: a loopback TCP connection,
a Unix socket pair and a pipe, in a sandbox beside the host.

Run by hand: ``python bench/sockets/bench_stream_throughput.py [--rounds 3]
[--mib 256]``. Each round runs the same code in a fresh sandbox and in a
host interpreter, alternated: a writer thread sends ``--mib`` chunks of
1 MiB (``sendall``/``write``) while a reader thread receives them; MiB/s by
the writer's clock, from the first byte sent to the reader's last byte
(the guest's own clock in the sandbox). Prints medians and the ratio."""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

from forkd_jupyter.vmm import Sandbox

CODE = """
import os, socket, threading, time
MIB = {mib}
def through(send, recv):
    total = MIB << 20
    def reader():
        n = 0
        while n < total:
            n += recv()
    t = threading.Thread(target=reader)
    t.start()
    chunk = b"x" * (1 << 20)
    started = time.perf_counter()
    for _ in range(MIB):
        send(chunk)
    t.join()
    return MIB / (time.perf_counter() - started)
def tcp():
    srv = socket.create_server(("127.0.0.1", 0))
    a = socket.create_connection(srv.getsockname())
    b, _ = srv.accept()
    buf = bytearray(1 << 20)
    return through(a.sendall, lambda: b.recv_into(buf))
def unix():
    a, b = socket.socketpair()
    buf = bytearray(1 << 20)
    return through(a.sendall, lambda: b.recv_into(buf))
def pipe():
    r, w = os.pipe()
    def send(chunk):
        view = memoryview(chunk)
        while view:
            view = view[os.write(w, view):]
    return through(send, lambda: len(os.read(r, 1 << 20)))
rates = {{"tcp": tcp(), "unix": unix(), "pipe": pipe()}}
"""


def in_sandbox(code: str) -> dict:
    sb = Sandbox.spawn(memory_mib=1024)
    try:
        r = sb.run(code + "rates")
        if r.error is not None:
            raise RuntimeError(f"{r.error.ename}: {r.error.evalue}")
        return eval(r.result["text/plain"])
    finally:
        sb.close()


def on_host(code: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", code + "print(rates)"], capture_output=True, text=True, check=True
    )
    return eval(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--mib", type=int, default=256)
    args = parser.parse_args()
    code = CODE.format(mib=args.mib)
    runs: dict[str, list[dict]] = {"sandbox": [], "host": []}
    for rnd in range(args.rounds):
        runs["sandbox"].append(in_sandbox(code))
        runs["host"].append(on_host(code))
        print(f"round {rnd}: sandbox {runs['sandbox'][-1]}, host {runs['host'][-1]}", flush=True)
    print(f"\n{args.mib} x 1 MiB between two threads, MiB/s, median of {args.rounds} rounds\n")
    print("| stream | sandbox | host | sandbox / host |")
    print("|---|---:|---:|---:|")
    for kind in ("tcp", "unix", "pipe"):
        sb = statistics.median(r[kind] for r in runs["sandbox"])
        host = statistics.median(r[kind] for r in runs["host"])
        print(f"| {kind} | {sb:,.0f} | {host:,.0f} | {sb / host:.2f}x |")


if __name__ == "__main__":
    main()
