"""The code cells of the benchmark notebooks (bench/time-travel/notebooks),
run one after another in a sandbox at the VMM level, and the command line
the scripts that do so share."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

NOTEBOOKS = Path(__file__).resolve().parent / "time-travel" / "notebooks"


def code_cells(name: str) -> list[str]:
    nb = json.loads((NOTEBOOKS / f"{name}.ipynb").read_text())
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


def parse_args(doc: str | None) -> argparse.Namespace:
    """--notebook, --rounds and --memory-mib (the sandbox's)."""
    ap = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--notebook", default="pandas_exploration")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--memory-mib", type=int, default=1536)
    return ap.parse_args()


def run_cell(sb, code: str) -> float:
    """Runs one cell; its time (ms) as the host sees the run request."""
    t = time.perf_counter()
    result = sb.run(code)
    took = (time.perf_counter() - t) * 1000
    if result.error:
        raise SystemExit(f"cell failed: {result.error}")
    return took
