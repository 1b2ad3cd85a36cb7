"""numpy's SIMD kernels in a sandbox beside the host: the CPU features numpy
detects in each, and the median time of operations numpy dispatches by CPU
feature (sorting, transcendental functions, reductions, comparisons).

Run by hand: python bench/cpu-features/bench_numpy_kernels.py [--rounds N]
[--python PATH]. One sandbox and one host interpreter run the same code
interleaved, round by round; the table gives medians and the ratio."""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess

from forkd_jupyter import python_env
from forkd_jupyter.vmm import Sandbox

SETUP = """
import json, time
import numpy as np
from numpy._core._multiarray_umath import __cpu_features__
rng = np.random.default_rng(0)
f64 = rng.random(4_000_000)
f32 = f64.astype(np.float32)
i32 = rng.integers(0, 1 << 30, 4_000_000, dtype=np.int32)
OPS = {
    "np.sort(float64, 4M)": lambda: np.sort(f64),
    "np.sort(int32, 4M)": lambda: np.sort(i32),
    "np.exp(float32, 4M)": lambda: np.exp(f32),
    "np.sin(float64, 4M)": lambda: np.sin(f64),
    "np.argmax(float64, 4M)": lambda: np.argmax(f64),
    "(float32 < 0.5).sum(), 4M": lambda: (f32 < 0.5).sum(),
}
def timings():
    out = {}
    for name, op in OPS.items():
        op()
        t = time.perf_counter(); op(); out[name] = (time.perf_counter() - t) * 1000
    return out
features = sorted(k for k, v in __cpu_features__.items() if v)
"""

HOST_ROUND = SETUP + "\nprint(json.dumps([features, [timings() for _ in range(ROUNDS)]]))"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--python", default=None, help="interpreter (default: this one)")
    args = ap.parse_args()
    env = python_env.describe(args.python) if args.python else python_env.current()
    sb = Sandbox.spawn(memory_mib=2048, python=env)
    try:
        r = sb.run(SETUP)
        assert r.error is None, r.error
        guest_features = sb.pull("features")
        guest, host = [], []
        host_features = None
        for _ in range(args.rounds):
            sb.run("last = timings()")
            guest.append(sb.pull("last"))
            out = subprocess.run(
                [env.executable, "-c", HOST_ROUND.replace("ROUNDS", "1")],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            host_features, rounds = json.loads(out.stdout)
            host += rounds
    finally:
        sb.close()
    print("CPU features numpy detects")
    print(f"  host:    {' '.join(host_features)}")
    print(f"  sandbox: {' '.join(guest_features)}")
    missing = sorted(set(host_features) - set(guest_features))
    print(f"  missing in the sandbox: {' '.join(missing) or 'none'}\n")
    print(f"| operation ({args.rounds} rounds, interleaved) | sandbox p50 | host p50 | ratio |")
    print("|---|---:|---:|---:|")
    for name in guest[0]:
        g = statistics.median(r[name] for r in guest)
        h = statistics.median(r[name] for r in host)
        print(f"| `{name}` | {g:.2f} ms | {h:.2f} ms | {g / h:.2f}x |")


if __name__ == "__main__":
    main()
