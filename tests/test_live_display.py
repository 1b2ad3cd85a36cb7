"""Rich output reaches the host while the cell runs: display(),
update_display (display ids), clear_output and figures arrive as events, in
order with the text output, through the VMM, the daemon's run streams and
the SDK, each before the cell ends."""

from __future__ import annotations

import time

import httpx
import pytest

pytestmark = pytest.mark.kvm

CELL = """
import time
from IPython.display import display, update_display, clear_output
print("start", flush=True)
display({"text/plain": "first"}, raw=True)
h = display({"text/plain": "bar 0%"}, raw=True, display_id=True)
time.sleep(0.6)
update_display({"text/plain": "bar 100%"}, raw=True, display_id=h.display_id)
clear_output(wait=True)
display({"text/plain": "last"}, raw=True)
print("end", flush=True)
"""


def check(events: list[tuple[float, str, dict]], ended: float) -> None:
    kinds = [k for _, k, _ in events]
    assert kinds[0] == "stream" and kinds[-1] == "stream", kinds
    displays = [f for _, k, f in events if k == "display"]
    shown = [(f["data"].get("text/plain"), f.get("update", False)) for f in displays]
    assert shown == [("first", False), ("bar 0%", False), ("bar 100%", True), ("last", False)]
    display_id = displays[1]["transient"]["display_id"]
    assert display_id and displays[2]["transient"]["display_id"] == display_id
    assert ("clear_output", {"wait": True}) in [(k, f) for _, k, f in events]
    # The first display was seen while the cell still slept.
    first_at = next(t for t, k, _ in events if k == "display")
    assert ended - first_at > 0.4


def recorder() -> tuple[list, dict]:
    """A list of (arrival time, kind, fields) and the callbacks that fill it."""
    events: list = []
    return events, {
        "on_output": lambda name, text: events.append((time.monotonic(), "stream", {"text": text})),
        "on_display": lambda kind, fields: events.append((time.monotonic(), kind, fields)),
    }


def test_vmm_run_reports_displays_as_they_happen(sandbox):
    events, callbacks = recorder()
    result = sandbox.run(CELL, **callbacks)
    ended = time.monotonic()
    assert result.error is None
    check(events, ended)
    # The result keeps what remains after clear_output, as before.
    assert [d.get("text/plain") for d in result.displays] == ["last"]


def test_sdk_and_daemon_streams_carry_displays(daemon, sb):
    events, callbacks = recorder()
    result = daemon.run_cell(sb, CELL, **callbacks)
    ended = time.monotonic()
    assert result.error is None
    check(events, ended)
    # The synchronous stream of POST /run carries them too.
    conn = daemon.connection
    with httpx.Client(transport=conn.transport(), base_url=conn.base_url + "/v1", timeout=60) as c:
        with c.stream(
            "POST",
            f"/sandboxes/{sb}/run",
            json={"code": CELL},
            headers={"Accept": "text/event-stream"},
        ) as response:
            names = [line[7:] for line in response.iter_lines() if line.startswith("event: ")]
    assert names.count("display") == 4 and "clear_output" in names and names[-1] == "result"
