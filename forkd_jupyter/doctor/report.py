"""Text and JSON renderings of the doctor's checks."""

from __future__ import annotations

import json

from .check import FAIL, OK, WARN, Check

LABELS = {OK: "ok  ", WARN: "warn", FAIL: "FAIL"}


def all_required_ok(checks: list[Check]) -> bool:
    return all(c.status == OK for c in checks if c.required)


def render_text(checks: list[Check]) -> str:
    """One line a check: `ok|warn|FAIL  name  detail  [fix: hint]`, then a verdict."""
    width = max(len(c.name) for c in checks)
    lines = []
    for c in checks:
        line = f"{LABELS[c.status]}  {c.name:{width}}  {c.detail}"
        if c.fix:
            line += f"  [fix: {c.fix}]"
        lines.append(line)
    verdict = "ready" if all_required_ok(checks) else "NOT ready: fix the FAIL lines above"
    lines.append(f"forkd-jupyter: this machine is {verdict}")
    return "\n".join(lines)


def to_document(checks: list[Check]) -> dict:
    """The report as JSON-ready data (``--json`` and the daemon's /v1/doctor)."""
    return {
        "ok": all_required_ok(checks),
        "checks": {
            c.name: {
                "status": c.status,
                "required": c.required,
                "detail": c.detail,
                "fix": c.fix,
                "data": c.data,
            }
            for c in checks
        },
    }


def render_json(checks: list[Check]) -> str:
    return json.dumps(to_document(checks), indent=2, default=str)
