"""The one vocabulary for a sandbox's state, as the JupyterLab panel and
the widgets show it: ``idle`` (running, ready for a cell), ``busy``
(running a cell) or ``dead (why)``."""

from __future__ import annotations


def state_word(record: dict) -> str:
    if record.get("status") == "dead":
        reason = record.get("exit_reason")
        return f"dead ({reason})" if reason else "dead"
    return "busy" if record.get("busy") else "idle"
