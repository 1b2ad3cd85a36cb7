"""`forkd-jupyter doctor`: probes, for real, what sandboxes need from this
machine. One module per check group; each group returns a list of checks."""

from __future__ import annotations

from collections.abc import Callable

from . import kvm, memory, python, uffd
from .check import FAIL, OK, WARN, Check
from .report import all_required_ok, render_json, render_text, to_document

GROUPS: list[tuple[str, Callable[[], list[Check]]]] = [
    ("kvm", kvm.checks),
    ("userfaultfd", uffd.checks),
    ("memory", memory.checks),
    ("python", python.checks),
]


def run_checks() -> list[Check]:
    checks: list[Check] = []
    for name, group in GROUPS:
        try:
            checks += group()
        except Exception as e:  # a probe that cannot even run is itself a finding
            checks.append(
                Check(
                    name,
                    FAIL,
                    f"probe failed: {type(e).__name__}: {e}",
                    "reinstall with `bash scripts/install.sh` (the compiled core may be missing)",
                )
            )
    return checks


__all__ = [
    "FAIL",
    "GROUPS",
    "OK",
    "WARN",
    "Check",
    "all_required_ok",
    "render_json",
    "render_text",
    "run_checks",
    "to_document",
]
