"""Driving a real kernel cell by cell (jupyter_client), for the tests that
need each message's arrival time or the execute reply."""

from __future__ import annotations

import time


def execute(kc, code: str, timeout: float = 120, **request) -> list[tuple[float, dict]]:
    """Runs ``code``; the cell's iopub messages, each with its arrival time,
    until the kernel is idle again. ``request``: execute_request fields
    (``store_history``, ``silent``...)."""
    msg_id = kc.execute(code, **request)
    got = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = kc.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        got.append((time.monotonic(), msg))
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return got
    raise TimeoutError(code)


def reply_to(kc, msg_id: str, timeout: float = 120) -> dict:
    """The shell channel's reply to the request ``msg_id``."""
    while True:
        reply = kc.get_shell_msg(timeout=timeout)
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply
