"""Managed processes and terminals through the real daemon (REST checked
against the OpenAPI document, the SDK, the CLI, the terminal's WebSocket):
start, stdin, logs (JSON and followed over SSE), stop, kill, a shell on a
terminal typed into over the WebSocket, resize, limits and problems; the
processes run while a cell runs and end with their sandbox."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest

from forkd_jupyter.client.errors import ForkdError

pytestmark = pytest.mark.kvm

FORKD = [sys.executable, "-m", "forkd_jupyter"]


def _wait_state(http, sb, pid, states, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        doc = http.get(f"/sandboxes/{sb}/processes/{pid}").json()
        if doc["state"] in states:
            return doc
        time.sleep(0.05)
    raise AssertionError(f"{pid} stayed {doc['state']}")


def _wait_output(daemon, sb, pid, text, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        chunks = daemon.process_logs(sb, pid)["chunks"]
        if text in "".join(c["data"] for c in chunks):
            return
        time.sleep(0.05)
    raise AssertionError(f"{pid} never wrote {text!r}")


def test_a_process_takes_stdin_and_its_log_says_what_it_wrote(http, sb):
    r = http.post(
        f"/sandboxes/{sb}/processes",
        json={"argv": ["sh", "-c", 'echo "hi $WHO"; while read l; do echo "got $l"; done; '
                       "echo bye >&2; exit 4"], "env": {"WHO": "you"}, "cwd": "/tmp"},
    )  # fmt: skip
    assert r.status_code == 201, r.text
    proc = r.json()
    assert proc["state"] == "running" and proc["pid"] > 1 and not proc["tty"]
    pid = proc["id"]
    r = http.post(f"/sandboxes/{sb}/processes/{pid}/stdin", json={"data": "one\ntwo\n"})
    assert r.status_code == 200, r.text
    http.post(
        f"/sandboxes/{sb}/processes/{pid}/stdin", json={"data_base64": "dGhyZWUK", "eof": True}
    )
    doc = _wait_state(http, sb, pid, ("exited",))
    assert doc["exit_code"] == 4 and doc["signal"] is None
    log = http.get(f"/sandboxes/{sb}/processes/{pid}/logs").json()
    out = "".join(c["data"] for c in log["chunks"] if c["stream"] == "stdout")
    err = "".join(c["data"] for c in log["chunks"] if c["stream"] == "stderr")
    assert out == "hi you\ngot one\ngot two\ngot three\n" and err == "bye\n"
    assert [c["seq"] for c in log["chunks"]] == sorted(c["seq"] for c in log["chunks"])
    later = http.get(
        f"/sandboxes/{sb}/processes/{pid}/logs", params={"after": log["chunks"][0]["seq"]}
    )
    assert later.json()["chunks"] == log["chunks"][1:]
    # An ended process takes nothing more: 409, a problem document.
    r = http.post(f"/sandboxes/{sb}/processes/{pid}/stdin", json={"data": "x"})
    assert r.status_code == 409 and r.json()["type"].endswith("process-not-running")
    assert pid in [p["id"] for p in http.get(f"/sandboxes/{sb}/processes").json()["processes"]]


def test_processes_run_while_a_cell_runs_and_follow_streams_live(http, daemon, sb):
    http.post(f"/sandboxes/{sb}/processes", json={"argv": ["true"]})  # supervisor ready
    cell = threading.Thread(
        target=daemon.run_cell, args=(sb, "import time\ntime.sleep(4)"), daemon=True
    )
    cell.start()
    time.sleep(0.5)
    started = time.monotonic()
    proc = daemon.start_process(
        sb, ["sh", "-c", "for i in 1 2 3; do echo tick $i; sleep 0.3; done"]
    )
    events = list(daemon.follow_process(sb, proc["id"]))
    took = time.monotonic() - started
    assert cell.is_alive(), "the process had to wait for the cell"
    text = "".join(d["data"] for e, d in events if e == "output")
    assert text == "tick 1\ntick 2\ntick 3\n"
    assert events[-1][0] == "exit" and events[-1][1]["exit_code"] == 0
    assert took < 3.5, took
    cell.join(30)


def test_stop_kill_and_a_capped_log(http, daemon, sb):
    proc = daemon.start_process(sb, ["sh", "-c", "trap '' TERM; echo ready; exec sleep 60"])
    _wait_output(daemon, sb, proc["id"], "ready")  # TERM is ignored from here on
    doc = daemon.stop_process(sb, proc["id"], grace=1)
    doc = _wait_state(http, sb, proc["id"], ("exited",), timeout=20)
    assert doc["signal"] == 9, doc  # TERM ignored: killed after the grace
    proc = daemon.start_process(sb, ["sleep", "60"])
    daemon.kill_process(sb, proc["id"], signal=15)
    assert _wait_state(http, sb, proc["id"], ("exited",))["signal"] == 15
    # A runaway writer: the log keeps the newest bytes only.
    proc = daemon.start_process(sb, ["sh", "-c", "yes | head -c 3000000; echo END"],
                                log_limit_bytes=100_000)  # fmt: skip
    doc = _wait_state(http, sb, proc["id"], ("exited",), timeout=60)
    assert doc["output_bytes"]["stdout"] == 3_000_004
    assert doc["log_bytes"] <= 100_000 and doc["dropped_bytes"] >= 2_900_000
    log = daemon.process_logs(sb, proc["id"])
    assert log["gap"] and "".join(c["data"] for c in log["chunks"]).endswith("y\nEND\n")


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "argv"),
        ({"argv": []}, "argv"),
        ({"argv": ["ls"], "env": {"A": 1}}, "env"),
        ({"argv": ["ls"], "log_limit_bytes": 0}, "log_limit_bytes"),
        ({"argv": ["ls"], "tty": True}, "tty"),
    ],
)
def test_bad_starts_are_problems(http, sb, body, field):
    r = http.post(f"/sandboxes/{sb}/processes", json=body)
    assert r.status_code == 400 and field in r.json()["detail"], r.text


def test_unknown_ids_missing_programs_and_the_limit(http, sb):
    assert http.get(f"/sandboxes/{sb}/processes/p-999999").status_code == 404
    assert http.get("/sandboxes/sb-nope/processes").status_code == 404
    r = http.post(f"/sandboxes/{sb}/processes", json={"argv": ["/no/such/program"]})
    assert r.status_code == 400 and "No such file" in r.json()["detail"], r.text
    started = []
    try:
        while True:
            r = http.post(f"/sandboxes/{sb}/processes", json={"argv": ["sleep", "60"]})
            if r.status_code != 201:
                break
            started.append(r.json()["id"])
            assert len(started) <= 64
        assert r.status_code == 429 and r.json()["limit"] == len(started) + _alive_others(
            http, sb, started
        ), r.text
    finally:
        for pid in started:
            http.post(f"/sandboxes/{sb}/processes/{pid}/kill", json={})
    # The sandbox still runs cells.
    r = http.post(f"/sandboxes/{sb}/run", json={"code": "6 * 7"})
    assert r.json()["result"]["text/plain"] == "42"


def _alive_others(http, sb, mine):
    procs = http.get(f"/sandboxes/{sb}/processes").json()["processes"]
    return sum(1 for p in procs if p["state"] == "running" and p["id"] not in mine)


def test_a_terminal_over_its_websocket(http, daemon, sb):
    term = http.post(f"/sandboxes/{sb}/terminals", json={"cols": 91, "rows": 33}).json()
    assert term["tty"] and term["state"] == "running" and (term["cols"], term["rows"]) == (91, 33)
    assert term["id"] in [
        t["id"] for t in http.get(f"/sandboxes/{sb}/terminals").json()["terminals"]
    ]
    ws = _connect(daemon, sb, term["id"])
    assert json.loads(ws.recv()) == ["setup", {}]
    seen = _read_until(ws, "$ ")
    ws.send(json.dumps(["stdin", "echo $((6*7)) $TERM; stty size\r"]))
    seen = _read_until(ws, "33 91")
    assert "42 xterm-256color" in seen, seen
    ws.send(json.dumps(["set_size", 40, 120, 600, 800]))
    time.sleep(0.3)
    ws.send(json.dumps(["stdin", "stty size\r"]))
    assert "40 120" in _read_until(ws, "40 120")
    ws.send(json.dumps(["stdin", "exit\r"]))
    tail = _read_until(ws, None)
    assert tail.endswith("disconnect"), tail
    ws.close()
    doc = _wait_state(http, sb, term["id"], ("exited",))
    assert doc["exit_code"] == 0


def _connect(daemon, sb, term_id):
    """A WebSocket client on the daemon's unix socket."""
    import os
    import socket

    import websocket

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(os.environ["FORKD_JUPYTER_SOCKET"])
    path = daemon.terminal_socket_path(sb, term_id)
    return websocket.create_connection(f"ws://localhost{path}", socket=sock, timeout=30)


def _read_until(ws, needle, timeout=30):
    """Terminal text until needle shows (None: until the disconnect)."""
    text, deadline = "", time.monotonic() + timeout
    while time.monotonic() < deadline:
        kind, *rest = json.loads(ws.recv())
        if kind == "disconnect":
            return text + "disconnect"
        if kind == "stdout":
            text += rest[0]
        if needle is not None and needle in text:
            return text
    raise AssertionError(f"{needle!r} never came: {text!r}")


def test_terminal_problems(http, sb):
    proc = http.post(f"/sandboxes/{sb}/processes", json={"argv": ["sleep", "30"]}).json()
    r = http.post(f"/sandboxes/{sb}/terminals/{proc['id']}/resize", json={"cols": 10, "rows": 10})
    assert r.status_code == 400 and "not a terminal" in r.json()["detail"]
    http.post(f"/sandboxes/{sb}/processes/{proc['id']}/kill", json={})
    r = http.post(f"/sandboxes/{sb}/terminals", json={"argv": ["no-such-shell"]})
    assert r.status_code == 400 and "No such file" in r.json()["detail"], r.text
    r = http.post(f"/sandboxes/{sb}/terminals", json={"argv": ["/tmp"]})
    assert r.status_code == 400 and "Permission denied" in r.json()["detail"], r.text
    r = http.post(f"/sandboxes/{sb}/terminals", json={"cols": 0})
    assert r.status_code == 400 and "cols" in r.json()["detail"]
    term = http.post(f"/sandboxes/{sb}/terminals", json={"argv": ["sh"], "term": "vt100"}).json()
    assert http.delete(f"/sandboxes/{sb}/terminals/{term['id']}").status_code == 204
    doc = _wait_state(http, sb, term["id"], ("exited",))
    assert doc["signal"] in (1, 9), doc


def test_processes_end_with_their_sandbox(daemon):
    [rec] = daemon.spawn_sandboxes(memory_limit_mib=256)
    proc = daemon.start_process(rec["id"], ["sleep", "600"])
    term = daemon.open_terminal(rec["id"])
    assert proc["state"] == term["state"] == "running"
    daemon.kill_sandbox(rec["id"])
    with pytest.raises(ForkdError) as info:
        daemon.get_process(rec["id"], proc["id"])
    assert info.value.status == 409 and "not running" in str(info.value), info.value


def test_cli_processes_and_logs(daemon, sb):
    done = subprocess.run([*FORKD, "process", "start", sb, "--json", "--", "sh", "-c",
                           "echo started; sleep 0.5; echo done"],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    pid = json.loads(done.stdout)["id"]
    done = subprocess.run([*FORKD, "process", "logs", sb, pid, "--follow"],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0 and done.stdout == "started\ndone\n", done
    done = subprocess.run([*FORKD, "process", "list", sb], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert pid in done.stdout and "exited" in done.stdout
    done = subprocess.run([*FORKD, "process", "get", sb, "p-0"], capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode != 0 and "p-0" in done.stderr


def test_a_branch_over_rest_inherits_running_processes(http, daemon):
    [rec] = daemon.spawn_sandboxes(memory_limit_mib=256)
    src = rec["id"]
    try:
        r = http.post(f"/sandboxes/{src}/processes", json={"argv": ["cat"]})
        assert r.status_code == 201, r.text
        pid = r.json()["id"]
        http.post(f"/sandboxes/{src}/processes/{pid}/stdin", json={"data": "source\n"})
        _wait_output(daemon, src, pid, "source")
        r = http.post(f"/sandboxes/{src}/branch", json={"mode": "live", "count": 1})
        assert r.status_code in (200, 201), r.text
        [child] = r.json()["children"]
        kid = child["id"]
        doc = http.get(f"/sandboxes/{kid}/processes/{pid}").json()
        assert doc["state"] == "running" and doc["argv"] == ["cat"]
        http.post(f"/sandboxes/{kid}/processes/{pid}/stdin", json={"data": "child\n", "eof": True})
        _wait_output(daemon, kid, pid, "child")
        assert _wait_state(http, kid, pid, ("exited",))["exit_code"] == 0
        # The source's cat runs on, and never saw the child's input.
        assert http.get(f"/sandboxes/{src}/processes/{pid}").json()["state"] == "running"
        logged = "".join(c["data"] for c in daemon.process_logs(src, pid)["chunks"])
        assert "child" not in logged
        daemon.kill_sandbox(kid)
    finally:
        daemon.kill_sandbox(src)
